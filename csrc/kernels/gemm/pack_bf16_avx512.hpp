#pragma once
// The panels of pack_bf16.hpp built 16 lanes at a time: vcvtne2ps2bf16 rounds 32 float32
// to bfloat16 in one instruction (as bf16_bits_flushed does, bit for bit), and a word
// permute or a 16 x 16 transpose of 32-bit pairs puts them in the panel's order. Edges
// are masked loads and stores, never scalar tails, so that every element goes through
// the same instruction, and padding comes from the zeros of masked-off loads.
//
// Include only from a translation unit compiled with -mavx512bf16 -mavx512bw.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "pack_bf16.hpp"
#include "transpose_avx512.hpp"

namespace fastbp::kernels::gemm_detail {

// The 16-element loops are unrolled so that v[] lives in registers (a loop bound known
// only at run time would index it, and put it on the stack).
struct Avx512Bf16Panels {
  // Element (p, lane) is src[p * ld + lane] when lane_contig, else src[lane * ld + p].
  template <int R, int KALIGN>
  static void pairs(const float* src, int64_t ld, bool lane_contig, int64_t lanes, int64_t kc,
                    uint16_t* dst) {
    const int64_t slots = padded_k(kc, KALIGN) / 2;
    for (int64_t s0 = 0; s0 < slots; s0 += 16) {
      for (int l0 = 0; l0 < R; l0 += 16) {
        __m512i v[16];  // v[s]: slot row s0 + s, lanes l0 .. l0 + 15
        if (lane_contig) {
#pragma GCC unroll 16
          for (int s = 0; s < 16; ++s) v[s] = pair_rows(src + l0, ld, 2 * (s0 + s), kc, lanes - l0);
        } else {
#pragma GCC unroll 16
          for (int i = 0; i < 16; ++i)
            v[i] = lane_run(src + (l0 + i) * ld, 2 * s0, kc, lanes - l0 > i);
          transpose16x16(v);
        }
#pragma GCC unroll 16
        for (int s = 0; s < 16; ++s) {
          if (s0 + s < slots)
            _mm512_mask_storeu_epi32(dst + ((s0 + s) * R + l0) * 2, first(R - l0), v[s]);
        }
      }
    }
  }

  template <int R>
  static void rows32(const float* src, int64_t ld, bool lane_contig, int64_t lanes, int64_t kc,
                     uint16_t* dst) {
    static_assert(R % 16 == 0, "rows32 builds 16 lanes at a time");
    for (int64_t p = 0; p < kc; p += 32, dst += 32 * R) {
      if (!lane_contig) {
        for (int l = 0; l < R; ++l)
          _mm512_storeu_si512(dst + l * 32, lane_run(src + l * ld, p, kc, l < lanes));
        continue;
      }
      for (int l0 = 0; l0 < R; l0 += 16) {
        __m512i v[16];  // slot rows, then (transposed) lane l0 + i's 32 values in v[i]
#pragma GCC unroll 16
        for (int s = 0; s < 16; ++s) v[s] = pair_rows(src + l0, ld, p + 2 * s, kc, lanes - l0);
        transpose16x16(v);
#pragma GCC unroll 16
        for (int i = 0; i < 16; ++i) _mm512_storeu_si512(dst + (l0 + i) * 32, v[i]);
      }
    }
  }

 private:
  static __mmask16 first(int64_t n) {
    return n <= 0 ? 0 : n >= 16 ? 0xffff : static_cast<__mmask16>((1u << n) - 1);
  }
  static __m512 load(const float* p, int64_t n) { return _mm512_maskz_loadu_ps(first(n), p); }

  // 32 bfloat16: lo's 16 values, then hi's.
  static __m512i round2(__m512 lo, __m512 hi) {
    return reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo));
  }

  // Slot row p / 2 of 16 lanes whose K rows run along memory (row q at src + q * ld;
  // rows from kc on are padding): rows p and p + 1 rounded together, then interleaved.
  static __m512i pair_rows(const float* src, int64_t ld, int64_t p, int64_t kc, int64_t lanes) {
    alignas(64) static constexpr uint16_t kInterleave[32] = {
        0, 16, 1, 17, 2,  18, 3,  19, 4,  20, 5,  21, 6,  22, 7,  23,
        8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    const __m512 lo = p < kc ? load(src + p * ld, lanes) : _mm512_setzero_ps();
    const __m512 hi = p + 1 < kc ? load(src + (p + 1) * ld, lanes) : _mm512_setzero_ps();
    return _mm512_permutexvar_epi16(_mm512_load_si512(kInterleave), round2(lo, hi));
  }

  // K values p .. p + 31 of a lane whose K runs along memory (from `run`), as 16 pairs;
  // zeros for a padding lane or past kc.
  static __m512i lane_run(const float* run, int64_t p, int64_t kc, bool real) {
    if (!real) return _mm512_setzero_si512();
    return round2(load(run + p, kc - p), load(run + p + 16, kc - p - 16));
  }
};

}  // namespace fastbp::kernels::gemm_detail
