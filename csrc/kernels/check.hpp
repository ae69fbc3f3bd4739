#pragma once
#include <cstdint>

namespace fastbp::kernels {

// True when no element is NaN or +-inf.
template <typename T>
bool all_finite(const T* x, int64_t n);

// Index of the first NaN or +-inf, or -1 when there is none. A plain loop: it serves
// error messages, after all_finite has said no.
template <typename T>
int64_t first_nonfinite(const T* x, int64_t n);

// Index of the first label outside [0, classes), or -1 when all are in range.
int64_t first_bad_label(const int64_t* labels, int64_t n, int64_t classes);

}  // namespace fastbp::kernels
