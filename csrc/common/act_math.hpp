#pragma once
// Scalar activation maths, the one copy the CPU kernels and the CUDA kernels both
// compile, so the two backends cannot drift apart. with_act turns the runtime kind into
// a template parameter, so hot loops carry no branch on it.
#include <cmath>
#include <type_traits>

#include "common/hd.hpp"
#include "kernels/act.hpp"

namespace fastbp::common {

using kernels::Act;

// exp(-|x|) never overflows, so both branches stay finite for any x.
template <typename T>
FASTBP_HD inline T stable_sigmoid(T x) {
  using std::exp, std::fabs;  // unqualified calls pick CUDA's device overloads under nvcc
  const T e = exp(-fabs(x));
  return x >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
}

template <Act A, typename T>
FASTBP_HD inline T act_one(T x) {
  using std::tanh;
  if constexpr (A == Act::Sigmoid) return stable_sigmoid(x);
  if constexpr (A == Act::ReLU) return x > T(0) ? x : T(0);
  if constexpr (A == Act::Tanh) return tanh(x);
  return x;
}

// f'(z) written through y = f(z), so a network keeps only post-activation buffers.
template <Act A, typename T>
FASTBP_HD inline T act_derivative(T y) {
  if constexpr (A == Act::Sigmoid) return y * (T(1) - y);
  if constexpr (A == Act::ReLU) return y > T(0) ? T(1) : T(0);
  if constexpr (A == Act::Tanh) return T(1) - y * y;
  return T(1);
}

// Calls f(std::integral_constant<Act, A>{}) for the runtime kind `act` (host code).
template <typename F>
inline void with_act(Act act, F&& f) {
  switch (act) {
    case Act::Identity: return f(std::integral_constant<Act, Act::Identity>{});
    case Act::Sigmoid: return f(std::integral_constant<Act, Act::Sigmoid>{});
    case Act::ReLU: return f(std::integral_constant<Act, Act::ReLU>{});
    case Act::Tanh: return f(std::integral_constant<Act, Act::Tanh>{});
  }
}

}  // namespace fastbp::common
