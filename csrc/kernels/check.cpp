#include "check.hpp"

#include <cmath>

namespace fastbp::kernels {

template <typename T>
bool all_finite(const T* x, int64_t n) {
  // x - x is 0 for finite x and NaN for NaN or inf; summing keeps the loop branch-free
  // so it vectorises, and NaN is sticky.
  T acc = T(0);
  for (int64_t i = 0; i < n; ++i) acc += x[i] - x[i];
  return acc == T(0);
}

int64_t first_bad_label(const int64_t* labels, int64_t n, int64_t classes) {
  for (int64_t i = 0; i < n; ++i) {
    if (labels[i] < 0 || labels[i] >= classes) return i;
  }
  return -1;
}

template bool all_finite<float>(const float*, int64_t);
template bool all_finite<double>(const double*, int64_t);

}  // namespace fastbp::kernels
