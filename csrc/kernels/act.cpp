#include "act.hpp"

#include "clones.hpp"
#include "threads.hpp"

namespace fastbp::kernels {
namespace {

template <Act A, typename T>
FASTBP_CLONES void act_forward_range(ActParams p, const T* x, T* y, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) y[i] = common::act_one<A>(x[i], p);
}

template <Act A, typename T>
FASTBP_CLONES void act_backward_range(ActParams p, const T* x, const T* y, const T* grad, T* out,
                                      int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    // Only kinds that use x read it, so x may be null for the others.
    const T xi = act_uses_input(A) ? x[i] : T(0);
    out[i] = grad[i] * common::act_derivative<A>(xi, y[i], p);
  }
}

}  // namespace

template <typename T>
void act_forward(Act act, ActParams p, const T* x, T* y, int64_t n) {
  if (act == Act::Identity && x == y) return;
  common::with_act(act, [&](auto kind) {
    parallel_for(n, pick_threads(n * 8), [&](int64_t begin, int64_t end) {
      act_forward_range<decltype(kind)::value>(p, x, y, begin, end);
    });
  });
}

template <typename T>
void act_backward(Act act, ActParams p, const T* x, const T* y, const T* grad, T* out, int64_t n) {
  if (act == Act::Identity && grad == out) return;
  common::with_act(act, [&](auto kind) {
    constexpr Act A = decltype(kind)::value;
    parallel_for(n, pick_threads(n * (act_uses_input(A) ? 8 : 1)), [&](int64_t begin, int64_t end) {
      act_backward_range<A>(p, x, y, grad, out, begin, end);
    });
  });
}

template void act_forward<float>(Act, ActParams, const float*, float*, int64_t);
template void act_forward<double>(Act, ActParams, const double*, double*, int64_t);
template void act_backward<float>(Act, ActParams, const float*, const float*, const float*, float*,
                                  int64_t);
template void act_backward<double>(Act, ActParams, const double*, const double*, const double*,
                                   double*, int64_t);

}  // namespace fastbp::kernels
