#pragma once
// Packing float32 operands straight into the bfloat16 layouts the dot-product and tile
// instructions read, rounding each element on the way as vcvtne2ps2bf16 does
// (bf16_bits_flushed: those instructions read subnormals as zero anyway). A panel's K is
// padded with zeros to a multiple of KALIGN and its lanes to R, so the kernels never see
// a ragged edge. A panel takes round_up(kc, KALIGN) / 2 "slots" of 4 bytes (two bfloat16)
// per lane, and the driver lays panels out by that count.
//
// Pairs (the VNNI layout of vdpbf16ps, and AMX's B tiles): slot row s holds, for each of
// the R lanes, op(X)(2s, lane) in its low half and op(X)(2s + 1, lane) in its high half.
// Rows (AMX's A tiles): each lane's K runs contiguously in blocks of 32 bfloat16 (one
// 64-byte tile row), the R lanes of a block one after the other.
//
// Two builders of the same panels, passed to pack_a_bf16 / pack_b_bf16 as `Panels`:
// ScalarPanels here, one element at a time (any CPU: tests/cpp/bf16_layouts.cpp checks
// the layouts with it), and Avx512Bf16Panels (pack_bf16_avx512.hpp), which the kernels'
// translation units use.
#include <algorithm>
#include <cstdint>

#include "bf16.hpp"

namespace fastbp::kernels::gemm_detail {

inline int64_t padded_k(int64_t kc, int64_t align) { return (kc + align - 1) / align * align; }

// Element (p, lane) is src[p * ld + lane] when lane_contig, else src[lane * ld + p].
struct ScalarPanels {
  template <int R, int KALIGN>
  static void pairs(const float* src, int64_t ld, bool lane_contig, int64_t lanes, int64_t kc,
                    uint16_t* __restrict dst) {
    const int64_t kp = padded_k(kc, KALIGN);
    for (int64_t p = 0; p < kp; ++p) {
      uint16_t* row = dst + (p >> 1) * 2 * R + (p & 1);
      int64_t l = 0;
      if (p < kc && lane_contig) {
        const float* s = src + p * ld;
        for (; l < lanes; ++l) row[2 * l] = bf16_bits_flushed(s[l]);
      } else if (p < kc) {
        for (; l < lanes; ++l) row[2 * l] = bf16_bits_flushed(src[l * ld + p]);
      }
      for (; l < R; ++l) row[2 * l] = 0;
    }
  }

  template <int R>
  static void rows32(const float* src, int64_t ld, bool lane_contig, int64_t lanes, int64_t kc,
                     uint16_t* __restrict dst) {
    constexpr int64_t kBlock = 32;
    const int64_t blocks = padded_k(kc, kBlock) / kBlock;
    for (int64_t l = 0; l < R; ++l) {
      for (int64_t q = 0; q < blocks; ++q) {
        uint16_t* d = dst + (q * R + l) * kBlock;
        const int64_t p0 = q * kBlock;
        const int64_t n = l < lanes ? std::min(kBlock, kc - p0) : 0;
        int64_t t = 0;
        if (lane_contig) {
          for (; t < n; ++t) d[t] = bf16_bits_flushed(src[(p0 + t) * ld + l]);
        } else {
          const float* s = src + l * ld + p0;  // a row of op(X): one contiguous run
          for (; t < n; ++t) d[t] = bf16_bits_flushed(s[t]);
        }
        for (; t < kBlock; ++t) d[t] = 0;
      }
    }
  }
};

// Packs `lanes` lanes of op(X) into consecutive R-lane panels with `build(src, lanes,
// kc, dst)`, a panel builder above. Where the lanes run along memory, it goes 32 K values
// at a time across all the panels: a panel alone would read 128 bytes of each of kc rows
// ld apart, which share a few cache sets, and the next panel would fetch them again.
template <int R, int KALIGN, class Build>
void pack_panels(const float* src, int64_t ld, bool lane_contig, int64_t lanes, int64_t kc,
                 float* dst, Build build) {
  const int64_t slots = padded_k(kc, KALIGN) / 2;
  const int64_t k_step = lane_contig ? 32 : kc;  // 32: whole slot rows and AMX blocks
  for (int64_t p = 0; p < kc; p += k_step) {
    for (int64_t l = 0; l < lanes; l += R) {
      const float* s = lane_contig ? src + p * ld + l : src + l * ld + p;
      build(s, std::min<int64_t>(R, lanes - l), std::min(k_step, kc - p),
            reinterpret_cast<uint16_t*>(dst + l * slots + p / 2 * R));
    }
  }
}

// pack_a / pack_b of pack.hpp for the bfloat16 layouts (ROWS: AMX's A layout).
template <int MR, int KALIGN, bool ROWS, class Panels>
void pack_a_bf16(bool trans, const float* a, int64_t lda, int64_t i0, int64_t rows, int64_t p0,
                 int64_t kc, float* dst) {
  const float* src = trans ? a + p0 * lda + i0 : a + i0 * lda + p0;
  pack_panels<MR, KALIGN>(src, lda, trans, rows, kc, dst,
                          [&](const float* s, int64_t lanes, int64_t k, uint16_t* d) {
                            if constexpr (ROWS)
                              Panels::template rows32<MR>(s, lda, trans, lanes, k, d);
                            else Panels::template pairs<MR, KALIGN>(s, lda, trans, lanes, k, d);
                          });
}

template <int NR, int KALIGN, class Panels>
void pack_b_bf16(bool trans, const float* b, int64_t ldb, int64_t j0, int64_t cols, int64_t p0,
                 int64_t kc, float* dst) {
  const float* src = trans ? b + j0 * ldb + p0 : b + p0 * ldb + j0;
  pack_panels<NR, KALIGN>(src, ldb, !trans, cols, kc, dst,
                          [&](const float* s, int64_t lanes, int64_t k, uint16_t* d) {
                            Panels::template pairs<NR, KALIGN>(s, ldb, !trans, lanes, k, d);
                          });
}

}  // namespace fastbp::kernels::gemm_detail
