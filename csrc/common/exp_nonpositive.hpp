#pragma once
// exp(x) for x <= 0 (a softmax's shifted logits, a sigmoid's -|x|), for host code, in +,
// -, * and bit moves alone, so that a loop over it vectorises where std::exp is a call per
// element, and gives the same bits in every clone (kernels/clones.hpp) and in the scalar
// tail.
//
// In double whatever T is: x = k ln2 + r with k an integer and |r| <= ln2 / 2 (ln2 in
// two parts, so k ln2_hi is exact), exp(r) by its Taylor series (to r^9 for float: 7e-12
// relative; to r^13 for double: 5e-18), and 2^k put in the exponent in two halves, each a
// normal double. A float is rounded once at the end: within 0.5 ulp + 1e-4 ulp, so nearly
// always std::exp's bits, subnormals included. A double is within about 1 ulp. Below
// -746 (-104 for float) the result is 0, as exp's is; NaN stays NaN.
#include <cstdint>
#include <cstring>

namespace fastbp::common {
namespace exp_detail {

// 1.5 * 2^52: adding it to a double below 2^51 in size rounds that to an integer, which
// the sum then holds in its low bits.
inline constexpr double kShift = 6755399441055744.0;

// The double whose bits are 2^k for an integer-valued k in [-1022, 1023].
inline double pow2(double k) {
  const double w = (k + 1023.0) + kShift;
  uint64_t bits;
  std::memcpy(&bits, &w, sizeof bits);
  bits <<= 52;  // the shift's own bits below 2^52 are zero, so only k + 1023 remains
  double out;
  std::memcpy(&out, &bits, sizeof out);
  return out;
}

// 1 / i! for i = 0 .. 13, the Taylor coefficients.
struct InvFactorials {
  double c[14];
  constexpr InvFactorials() : c() {
    double f = 1.0;
    for (int i = 0; i < 14; ++i) {
      if (i > 1) f *= i;
      c[i] = 1.0 / f;
    }
  }
};
inline constexpr InvFactorials kInvFactorial{};

// x >= -746 or NaN.
template <int Degree>
inline double exp_clamped(double x) {
  static_assert(Degree >= 1 && Degree <= 13);
  constexpr double kLog2e = 1.4426950408889634;
  constexpr double kLn2Hi = 6.93147180369123816490e-01;  // 21 significant bits
  constexpr double kLn2Lo = 1.90821492927058770002e-10;
  const double k = (x * kLog2e + kShift) - kShift;
  const double r = (x - k * kLn2Hi) - k * kLn2Lo;
  double p = kInvFactorial.c[Degree];
  for (int i = Degree - 1; i >= 0; --i) p = p * r + kInvFactorial.c[i];
  const double k1 = (k * 0.5 + kShift) - kShift;
  return p * pow2(k1) * pow2(k - k1);
}

}  // namespace exp_detail

// The clamps compare in the argument's own type (a NaN compares false and stays): GCC
// vectorises a select on a float, not on a float converted to double.
inline float exp_nonpositive(float x) {
  x = x < -104.0f ? -104.0f : x;
  return float(exp_detail::exp_clamped<9>(double(x)));
}

inline double exp_nonpositive(double x) {
  x = x < -746.0 ? -746.0 : x;
  return exp_detail::exp_clamped<13>(x);
}

}  // namespace fastbp::common
