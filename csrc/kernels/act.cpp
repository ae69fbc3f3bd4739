#include "act.hpp"

#include <cmath>

#include "threads.hpp"

namespace fastbp::kernels {
namespace {

// exp(-|x|) never overflows, so both branches stay finite for any x.
template <typename T>
inline T stable_sigmoid(T x) {
  const T e = std::exp(-std::abs(x));
  return x >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
}

// One switch turns the runtime activation into a template parameter, so the loops
// below carry no branch on the kind.
template <Act A, typename T>
inline T forward_one(T x) {
  if constexpr (A == Act::Sigmoid) return stable_sigmoid(x);
  if constexpr (A == Act::ReLU) return x > T(0) ? x : T(0);
  if constexpr (A == Act::Tanh) return std::tanh(x);
  return x;
}

template <Act A, typename T>
inline T derivative_from_output(T y) {
  if constexpr (A == Act::Sigmoid) return y * (T(1) - y);
  if constexpr (A == Act::ReLU) return y > T(0) ? T(1) : T(0);
  if constexpr (A == Act::Tanh) return T(1) - y * y;
  return T(1);
}

template <Act A, typename T>
void forward_loop(const T* x, T* y, int64_t n) {
  const int threads = pick_threads(n * 8);
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
  for (int64_t i = 0; i < n; ++i) y[i] = forward_one<A>(x[i]);
}

template <Act A, typename T>
void backward_loop(const T* y, const T* grad, T* out, int64_t n) {
  const int threads = pick_threads(n);
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
  for (int64_t i = 0; i < n; ++i) out[i] = grad[i] * derivative_from_output<A>(y[i]);
}

}  // namespace

template <typename T>
void act_forward(Act act, const T* x, T* y, int64_t n) {
  switch (act) {
    case Act::Identity:
      if (x != y) forward_loop<Act::Identity>(x, y, n);
      return;
    case Act::Sigmoid: return forward_loop<Act::Sigmoid>(x, y, n);
    case Act::ReLU: return forward_loop<Act::ReLU>(x, y, n);
    case Act::Tanh: return forward_loop<Act::Tanh>(x, y, n);
  }
}

template <typename T>
void act_backward(Act act, const T* y, const T* grad, T* out, int64_t n) {
  switch (act) {
    case Act::Identity:
      if (grad != out) backward_loop<Act::Identity>(y, grad, out, n);
      return;
    case Act::Sigmoid: return backward_loop<Act::Sigmoid>(y, grad, out, n);
    case Act::ReLU: return backward_loop<Act::ReLU>(y, grad, out, n);
    case Act::Tanh: return backward_loop<Act::Tanh>(y, grad, out, n);
  }
}

template void act_forward<float>(Act, const float*, float*, int64_t);
template void act_forward<double>(Act, const double*, double*, int64_t);
template void act_backward<float>(Act, const float*, const float*, float*, int64_t);
template void act_backward<double>(Act, const double*, const double*, double*, int64_t);

}  // namespace fastbp::kernels
