#pragma once
// bfloat16: the upper 16 bits of a float32 (8 exponent bits, 7 mantissa bits). The
// compute type of the bfloat16 GEMM, whose operands are rounded from float32 while they
// are packed (pack_bf16.hpp, pack.hpp).
#include <cstdint>
#include <cstring>

namespace fastbp::kernels::gemm_detail {

// These are compiled into every SIMD path's file: always inlined, so that no out-of-line
// copy built with one ISA's flags can be what the linker keeps for the others.
#define FASTBP_INLINE inline __attribute__((always_inline))

// float32 -> bfloat16 by round to nearest, ties to even, as PyTorch and the hardware
// conversions round; a NaN stays a (quiet) NaN instead of rounding into infinity.
FASTBP_INLINE uint16_t bf16_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// The rounding of vcvtne2ps2bf16, which the bfloat16 instructions' panels go through: a
// subnormal float32 reads as a zero of its sign first, so a value just below 2^-126
// gives zero where bf16_bits rounds it up to 2^-126; otherwise bf16_bits.
FASTBP_INLINE uint16_t bf16_bits_flushed(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  if ((u & 0x7f800000u) == 0) return static_cast<uint16_t>((u >> 16) & 0x8000u);
  return bf16_bits(x);
}

// x rounded to the nearest bfloat16, as a float32 (its low 16 bits zero).
FASTBP_INLINE float bf16_round(float x) {
  const uint32_t u = static_cast<uint32_t>(bf16_bits(x)) << 16;
  float y;
  std::memcpy(&y, &u, sizeof y);
  return y;
}

// The element conversions the packers apply on the way into a panel. transpose_steps
// builds the first steps of a transposed panel of R lanes in vector registers and says
// how many it built: none here; a SIMD path's file overrides it (ukr_avx512.cpp).
struct Transposer {
  template <typename T, int R>
  static int64_t transpose_steps(const T*, int64_t, int64_t, T*) {
    return 0;
  }
};
struct Copy : Transposer {
  static constexpr bool kIdentity = true;
  template <typename T>
  FASTBP_INLINE static T apply(T x) {
    return x;
  }
};
struct RoundBf16 : Transposer {
  static constexpr bool kIdentity = false;
  FASTBP_INLINE static float apply(float x) { return bf16_round(x); }
};

}  // namespace fastbp::kernels::gemm_detail
