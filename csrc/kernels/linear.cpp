#include "linear.hpp"

#include <algorithm>

#include "threads.hpp"

namespace fastbp::kernels {

template <typename T>
void add_bias_rows(T* z, const T* b, int64_t m, int64_t n) {
  const int threads = pick_threads(m * n);
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
  for (int64_t i = 0; i < m; ++i) {
    T* __restrict zi = z + i * n;
    for (int64_t j = 0; j < n; ++j) zi[j] += b[j];
  }
}

template <typename T>
void column_sums(const T* x, int64_t m, int64_t n, T* out) {
  // Row-wise accumulation keeps the inner loop unit-stride; threads would need a
  // reduction over n-wide partials, which does not pay at MLP sizes.
  std::fill(out, out + n, T(0));
  for (int64_t i = 0; i < m; ++i) {
    const T* __restrict xi = x + i * n;
    for (int64_t j = 0; j < n; ++j) out[j] += xi[j];
  }
}

template void add_bias_rows<float>(float*, const float*, int64_t, int64_t);
template void add_bias_rows<double>(double*, const double*, int64_t, int64_t);
template void column_sums<float>(const float*, int64_t, int64_t, float*);
template void column_sums<double>(const double*, int64_t, int64_t, double*);

}  // namespace fastbp::kernels
