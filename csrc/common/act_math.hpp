#pragma once
// Everything about an activation kind, the one copy the CPU kernels and the CUDA kernels
// both compile, so the two backends cannot drift apart: the enum, its names, the scalar
// forward and derivative (PyTorch's formulas), and with_act, which turns the runtime
// kind into a template parameter so hot loops carry no branch on it.
#include <cmath>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "common/hd.hpp"
#ifndef __CUDA_ARCH__
#include "common/exp_nonpositive.hpp"
#endif

namespace fastbp::common {

// Values are part of the Python binding (fastbp._core.Act); keep them stable.
enum class Act : int {
  Identity = 0,
  Sigmoid = 1,
  ReLU = 2,
  Tanh = 3,
  LeakyReLU = 4,
  ELU = 5,
  GELU = 6,
  GELUTanh = 7,
  SiLU = 8,
  Softplus = 9
};

// The names _core exports its members under (fastbp._core.Act.ReLU); Python derives
// every other spelling of an activation's name from these.
inline constexpr std::pair<Act, const char*> kActNames[] = {
    {Act::Identity, "Identity"}, {Act::Sigmoid, "Sigmoid"},     {Act::ReLU, "ReLU"},
    {Act::Tanh, "Tanh"},         {Act::LeakyReLU, "LeakyReLU"}, {Act::ELU, "ELU"},
    {Act::GELU, "GELU"},         {Act::GELUTanh, "GELUTanh"},   {Act::SiLU, "SiLU"},
    {Act::Softplus, "Softplus"}};

// An activation's settings: LeakyReLU a = negative_slope; ELU a = alpha; Softplus
// a = beta, b = threshold; unused by the others.
struct ActParams {
  double a = 0.0, b = 0.0;
};

// Whether f' needs the pre-activation x. The first four write it through y = f(x), so a
// network keeps only post-activation buffers for them; any newer kind reads x.
FASTBP_HD constexpr bool act_uses_input(Act act) {
  return !(act == Act::Identity || act == Act::Sigmoid || act == Act::ReLU || act == Act::Tanh);
}

// exp(x) for x <= 0: on the CPU fastbp's own, which vectorises (exp_nonpositive.hpp);
// on the GPU CUDA's.
template <typename T>
FASTBP_HD inline T exp_of_nonpositive(T x) {
#ifdef __CUDA_ARCH__
  using std::exp;  // unqualified, so nvcc picks its device overload
  return exp(x);
#else
  return exp_nonpositive(x);
#endif
}

// exp(-|x|) never overflows, so both branches stay finite for any x. A float on the CPU
// goes through double and is rounded once.
template <typename T>
FASTBP_HD inline T stable_sigmoid(T x) {
#ifndef __CUDA_ARCH__
  if constexpr (std::is_same_v<T, float>) return float(stable_sigmoid(double(x)));
#endif
  using std::fabs;  // unqualified calls pick CUDA's device overloads under nvcc
  const T e = exp_of_nonpositive(-fabs(x));
  return x >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
}

// tanh. A float on the CPU goes through double: (1 - e) / (1 + e) with e = exp(-2|x|)
// loses nothing a float keeps there (the difference's error is some 1e-16), and it is
// rounded once; below 2^-12, tanh(x) rounds to x itself. Vectorises, where std::tanh is
// a call per element. A double, and the GPU, take the library's tanh.
template <typename T>
FASTBP_HD inline T tanh_of(T x) {
#ifndef __CUDA_ARCH__
  if constexpr (std::is_same_v<T, float>) {
    const float ax = x < 0.0f ? -x : x;  // a NaN stays one, -0 stays -0
    const double e = exp_nonpositive(-2.0 * double(ax));
    const float t = ax < 0x1p-12f ? ax : float((1.0 - e) / (1.0 + e));
    return x < 0.0f ? -t : t;
  }
#endif
  using std::tanh;
  return tanh(x);
}

// sqrt(2 / pi) and 1 / sqrt(2 pi), spelled as PyTorch builds them from M_ constants.
template <typename T>
FASTBP_HD constexpr T kGeluTanhBeta() {
  return T(1.4142135623730951 * 1.1283791670955126 * 0.5);
}
template <typename T>
FASTBP_HD constexpr T kGeluErfBeta() {
  return T(1.1283791670955126 * 0.7071067811865476 * 0.5);
}

template <Act A, typename T>
FASTBP_HD inline T act_one(T x, ActParams p) {
  using std::erfc, std::exp, std::expm1, std::log1p;
  if constexpr (A == Act::Sigmoid) return stable_sigmoid(x);
  // 0 only where x < 0, so NaN (and -0) pass through as in torch: one max instruction
  // with 0 first, since x86's max returns its second operand when either is NaN.
  if constexpr (A == Act::ReLU) return x < T(0) ? T(0) : x;
  if constexpr (A == Act::Tanh) return tanh_of(x);
  if constexpr (A == Act::LeakyReLU) return x > T(0) ? x : x * T(p.a);
  if constexpr (A == Act::ELU) return x <= T(0) ? expm1(x) * T(p.a) : x;
  // torch's 1 + erf(x / sqrt 2) and 1 + tanh(u) cancel for negative x, losing float32's
  // digits where y is small: the same values as erfc(-x / sqrt 2) and 2 sigmoid(2u),
  // which keep them.
  if constexpr (A == Act::GELU) return x * T(0.5) * erfc(-x * T(0.7071067811865476));
  if constexpr (A == Act::GELUTanh) {
    const T inner = kGeluTanhBeta<T>() * (x + T(0.044715) * (x * x * x));
    return x * stable_sigmoid(T(2) * inner);
  }
  if constexpr (A == Act::SiLU) {
#ifndef __CUDA_ARCH__
    // On the CPU x sigmoid(x), which vectorises; a float in double, rounded once.
    if constexpr (std::is_same_v<T, float>) return float(double(x) * stable_sigmoid(double(x)));
    return x * stable_sigmoid(x);
#else
    return x / (T(1) + exp(-x));
#endif
  }
  if constexpr (A == Act::Softplus) {  // linear where beta * x > threshold, as torch
    const T bx = x * T(p.a);
    return bx > T(p.b) ? x : log1p(exp(bx)) / T(p.a);
  }
  return x;
}

// f'(x) given y = f(x); the first four read only y (x may be anything there).
template <Act A, typename T>
FASTBP_HD inline T act_derivative(T x, T y, ActParams p) {
  using std::erfc, std::exp;
  if constexpr (A == Act::Sigmoid) return y * (T(1) - y);
  // As torch's threshold_backward: the gradient passes where y is NaN.
  if constexpr (A == Act::ReLU) return y <= T(0) ? T(0) : T(1);
  if constexpr (A == Act::Tanh) return T(1) - y * y;
  if constexpr (A == Act::LeakyReLU) return x > T(0) ? T(1) : T(p.a);
  if constexpr (A == Act::ELU) return x <= T(0) ? T(p.a) * exp(x) : T(1);
  if constexpr (A == Act::GELU) {
    const T cdf = T(0.5) * erfc(-x * T(0.7071067811865476));
    const T pdf = exp(T(-0.5) * x * x) * kGeluErfBeta<T>();
    return cdf + x * pdf;
  }
  if constexpr (A == Act::GELUTanh) {
    const T x_sq = x * x;
    const T inner = kGeluTanhBeta<T>() * (x + T(0.044715) * x_sq * x);
    // With t = tanh(u): (1 + t) / 2 = sigmoid(2u), (1 - t * t) / 2 = 2 sigmoid(2u) sigmoid(-2u).
    const T up = stable_sigmoid(T(2) * inner), down = stable_sigmoid(T(-2) * inner);
    const T inner_derivative = kGeluTanhBeta<T>() * (T(1) + T(3) * T(0.044715) * x_sq);
    return up + T(2) * x * up * down * inner_derivative;
  }
  if constexpr (A == Act::SiLU) {
#ifndef __CUDA_ARCH__
    if constexpr (std::is_same_v<T, float>) {
      const double s = stable_sigmoid(double(x));
      return float(s * (1.0 + double(x) * (1.0 - s)));
    }
    const T s = stable_sigmoid(x);
#else
    const T s = T(1) / (T(1) + exp(-x));
#endif
    return s * (T(1) + x * (T(1) - s));
  }
  if constexpr (A == Act::Softplus) {
    const T z = exp(x * T(p.a));
    return x * T(p.a) > T(p.b) ? T(1) : z / (z + T(1));
  }
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
    case Act::LeakyReLU: return f(std::integral_constant<Act, Act::LeakyReLU>{});
    case Act::ELU: return f(std::integral_constant<Act, Act::ELU>{});
    case Act::GELU: return f(std::integral_constant<Act, Act::GELU>{});
    case Act::GELUTanh: return f(std::integral_constant<Act, Act::GELUTanh>{});
    case Act::SiLU: return f(std::integral_constant<Act, Act::SiLU>{});
    case Act::Softplus: return f(std::integral_constant<Act, Act::Softplus>{});
  }
  // An enum converted from any integer (Python's _core.Act(99)) must not run as nothing.
  throw std::invalid_argument("unknown activation kind " + std::to_string(int(act)));
}

}  // namespace fastbp::common
