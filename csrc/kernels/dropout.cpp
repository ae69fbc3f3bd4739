#include "dropout.hpp"

#include "threads.hpp"

namespace fastbp::kernels {
namespace {

// A hash costs about as much as a few multiply-adds, so pick_threads gets that weight.
constexpr int64_t kHashCost = 8;

template <typename T>
void apply_mask(const T* in, T* out, int64_t n, double p, uint64_t key, uint64_t first) {
  if (p == 0.0) {
    if (in != out)
      parallel_for(n, pick_threads(n), [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) out[i] = in[i];
      });
    return;
  }
  const T scale = common::dropout_scale<T>(p);
  parallel_for(n, pick_threads(n * kHashCost), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      out[i] =
          common::dropout_keeps(key, first + static_cast<uint64_t>(i), p) ? in[i] * scale : T(0);
  });
}

}  // namespace

template <typename T>
void dropout_forward(const T* x, T* y, int64_t n, double p, uint64_t key, uint64_t first) {
  apply_mask(x, y, n, p, key, first);
}

template <typename T>
void dropout_backward(const T* dy, T* dx, int64_t n, double p, uint64_t key, uint64_t first) {
  apply_mask(dy, dx, n, p, key, first);
}

template void dropout_forward<float>(const float*, float*, int64_t, double, uint64_t, uint64_t);
template void dropout_forward<double>(const double*, double*, int64_t, double, uint64_t, uint64_t);
template void dropout_backward<float>(const float*, float*, int64_t, double, uint64_t, uint64_t);
template void dropout_backward<double>(const double*, double*, int64_t, double, uint64_t, uint64_t);

}  // namespace fastbp::kernels
