#pragma once
// Device twins of kernels/act_math.hpp: the same formulas, so both backends agree.
#include "kernels/act.hpp"

namespace fastbp::cuda {

using kernels::Act;

// exp(-|x|) never overflows, so both branches stay finite for any x.
template <typename T>
__device__ __forceinline__ T stable_sigmoid(T x) {
  const T e = exp(-fabs(x));
  return x >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
}

template <Act A, typename T>
__device__ __forceinline__ T act_one(T x) {
  if constexpr (A == Act::Sigmoid) return stable_sigmoid(x);
  if constexpr (A == Act::ReLU) return x > T(0) ? x : T(0);
  if constexpr (A == Act::Tanh) return tanh(x);
  return x;
}

// f'(z) written through y = f(z).
template <Act A, typename T>
__device__ __forceinline__ T act_derivative(T y) {
  if constexpr (A == Act::Sigmoid) return y * (T(1) - y);
  if constexpr (A == Act::ReLU) return y > T(0) ? T(1) : T(0);
  if constexpr (A == Act::Tanh) return T(1) - y * y;
  return T(1);
}

}  // namespace fastbp::cuda
