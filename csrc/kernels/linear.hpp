#pragma once
#include <cstdint>

namespace fastbp::kernels {

// z[i, :] += b for every row i of the m x n row-major z.
template <typename T>
void add_bias_rows(T* z, const T* b, int64_t m, int64_t n);

// out[j] = sum_i x[i, j]: the bias gradient db = sum over samples of dZ.
template <typename T>
void column_sums(const T* x, int64_t m, int64_t n, T* out);

}  // namespace fastbp::kernels
