#pragma once
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace fastbp::kernels {

// True when no element is NaN or +-inf.
template <typename T>
bool all_finite(const T* x, int64_t n);

// Whether x[begin, end) is all finite, one branch at the end: inline, so that a loop that
// checks what it has just written vectorises it with the rest of its clone.
template <typename T>
inline bool finite_bits(const T* x, int64_t begin, int64_t end) {
  // A float is NaN or inf exactly when its exponent bits are all ones. Testing the bits
  // with integer ops gives a reduction the compiler may vectorise (a floating-point sum
  // would be a serial dependency chain without -ffast-math).
  using Bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  constexpr Bits kExponent = sizeof(T) == 4 ? Bits(0x7f800000u) : Bits(0x7ff0000000000000ull);
  Bits bad = 0;
  for (int64_t i = begin; i < end; ++i) {
    Bits b;
    std::memcpy(&b, x + i, sizeof b);
    bad |= Bits((b & kExponent) == kExponent);
  }
  return bad == 0;
}

// Index of the first NaN or +-inf, or -1 when there is none. A plain loop: it serves
// error messages, after all_finite has said no.
template <typename T>
int64_t first_nonfinite(const T* x, int64_t n);

// Index of the first label outside [0, classes), or -1 when all are in range.
int64_t first_bad_label(const int64_t* labels, int64_t n, int64_t classes);

}  // namespace fastbp::kernels
