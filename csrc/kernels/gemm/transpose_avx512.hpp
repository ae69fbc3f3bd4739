#pragma once
// A 16 x 16 transpose of 32-bit elements in sixteen zmm registers, for the packers that
// turn rows into a panel's columns (pack_bf16_avx512.hpp, and the float32 panels of the
// AVX-512 path). Include only from a translation unit compiled with -mavx512f.
#include <immintrin.h>

namespace fastbp::kernels::gemm_detail {
// Internal linkage: each ISA's file keeps its own copy, compiled with its own flags.
namespace {

// A 16 x 16 transpose of 32-bit elements: pairs within 128-bit lanes, then the lanes.
// (GCC 12's intrinsics for these shuffles start from a self-initialised "undefined"
// vector, which -Wmaybe-uninitialized reports once inlined: a false alarm.)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
inline void transpose16x16(__m512i r[16]) {
  __m512i t[16];
#pragma GCC unroll 8
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
#pragma GCC unroll 4
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  // r[4g + j] now holds, in 128-bit lane L, column 4L + j of rows 4g .. 4g + 3.
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    const __m512i u0 = _mm512_shuffle_i32x4(r[j], r[4 + j], 0x88);
    const __m512i u1 = _mm512_shuffle_i32x4(r[j], r[4 + j], 0xdd);
    const __m512i w0 = _mm512_shuffle_i32x4(r[8 + j], r[12 + j], 0x88);
    const __m512i w1 = _mm512_shuffle_i32x4(r[8 + j], r[12 + j], 0xdd);
    t[j] = _mm512_shuffle_i32x4(u0, w0, 0x88);
    t[4 + j] = _mm512_shuffle_i32x4(u1, w1, 0x88);
    t[8 + j] = _mm512_shuffle_i32x4(u0, w0, 0xdd);
    t[12 + j] = _mm512_shuffle_i32x4(u1, w1, 0xdd);
  }
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) r[i] = t[i];
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

}  // namespace
}  // namespace fastbp::kernels::gemm_detail
