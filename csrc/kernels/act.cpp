#include "act.hpp"

#include "common/act_math.hpp"
#include "threads.hpp"

namespace fastbp::kernels {

template <typename T>
void act_forward(Act act, const T* x, T* y, int64_t n) {
  if (act == Act::Identity && x == y) return;
  common::with_act(act, [&](auto kind) {
    parallel_for(n, pick_threads(n * 8), [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) y[i] = common::act_one<decltype(kind)::value>(x[i]);
    });
  });
}

template <typename T>
void act_backward(Act act, const T* y, const T* grad, T* out, int64_t n) {
  if (act == Act::Identity && grad == out) return;
  common::with_act(act, [&](auto kind) {
    parallel_for(n, pick_threads(n), [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i)
        out[i] = grad[i] * common::act_derivative<decltype(kind)::value>(y[i]);
    });
  });
}

template void act_forward<float>(Act, const float*, float*, int64_t);
template void act_forward<double>(Act, const double*, double*, int64_t);
template void act_backward<float>(Act, const float*, const float*, float*, int64_t);
template void act_backward<double>(Act, const double*, const double*, double*, int64_t);

}  // namespace fastbp::kernels
