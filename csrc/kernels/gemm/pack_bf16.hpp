#pragma once
// Packing float32 operands straight into the bfloat16 layouts the dot-product and tile
// instructions read, rounding each element on the way (bf16.hpp). A panel's K is padded
// with zeros to a multiple of KALIGN and its lanes to R, so the kernels never see a
// ragged edge. A panel takes round_up(kc, KALIGN) / 2 "slots" of 4 bytes (two bfloat16)
// per lane, and the driver lays panels out by that count.
//
// Pairs (the VNNI layout of vdpbf16ps, and AMX's B tiles): slot row s holds, for each of
// the R lanes, op(X)(2s, lane) in its low half and op(X)(2s + 1, lane) in its high half.
// Rows (AMX's A tiles): each lane's K runs contiguously in blocks of 32 bfloat16 (one
// 64-byte tile row), the R lanes of a block one after the other.
//
// Include only from an ISA's own translation unit, so the loops vectorise for its ISA.
#include <algorithm>
#include <cstdint>

#include "bf16.hpp"

namespace fastbp::kernels::gemm_detail {

inline int64_t padded_k(int64_t kc, int64_t align) { return (kc + align - 1) / align * align; }

// Element (p, lane) is src[p * ld + lane] when lane_contig, else src[lane * ld + p].
template <int R, int KALIGN>
inline void pack_panel_pairs(const float* src, int64_t ld, bool lane_contig, int64_t lanes,
                             int64_t kc, uint16_t* __restrict dst) {
  const int64_t kp = padded_k(kc, KALIGN);
  for (int64_t p = 0; p < kp; ++p) {
    uint16_t* row = dst + (p >> 1) * 2 * R + (p & 1);
    int64_t l = 0;
    if (p < kc && lane_contig) {
      const float* s = src + p * ld;
      for (; l < lanes; ++l) row[2 * l] = bf16_bits(s[l]);
    } else if (p < kc) {
      for (; l < lanes; ++l) row[2 * l] = bf16_bits(src[l * ld + p]);
    }
    for (; l < R; ++l) row[2 * l] = 0;
  }
}

template <int R>
inline void pack_panel_rows32(const float* src, int64_t ld, bool lane_contig, int64_t lanes,
                              int64_t kc, uint16_t* __restrict dst) {
  constexpr int64_t kBlock = 32;
  const int64_t blocks = padded_k(kc, kBlock) / kBlock;
  for (int64_t l = 0; l < R; ++l) {
    for (int64_t q = 0; q < blocks; ++q) {
      uint16_t* d = dst + (q * R + l) * kBlock;
      const int64_t p0 = q * kBlock;
      const int64_t n = l < lanes ? std::min(kBlock, kc - p0) : 0;
      int64_t t = 0;
      if (lane_contig) {
        for (; t < n; ++t) d[t] = bf16_bits(src[(p0 + t) * ld + l]);
      } else {
        const float* s = src + l * ld + p0;  // a row of op(X): one contiguous run
        for (; t < n; ++t) d[t] = bf16_bits(s[t]);
      }
      for (; t < kBlock; ++t) d[t] = 0;
    }
  }
}

// pack_a / pack_b of pack.hpp for the bfloat16 layouts (ROWS: AMX's A layout).
template <int MR, int KALIGN, bool ROWS>
void pack_a_bf16(bool trans, const float* a, int64_t lda, int64_t i0, int64_t rows, int64_t p0,
                 int64_t kc, float* dst) {
  const int64_t slots = padded_k(kc, KALIGN) / 2;
  for (int64_t ip = 0; ip < rows; ip += MR) {
    const int64_t lanes = std::min<int64_t>(MR, rows - ip);
    const int64_t i = i0 + ip;
    const float* src = trans ? a + p0 * lda + i : a + i * lda + p0;
    uint16_t* d = reinterpret_cast<uint16_t*>(dst + ip * slots);
    if constexpr (ROWS) pack_panel_rows32<MR>(src, lda, trans, lanes, kc, d);
    else pack_panel_pairs<MR, KALIGN>(src, lda, trans, lanes, kc, d);
  }
}

template <int NR, int KALIGN>
void pack_b_bf16(bool trans, const float* b, int64_t ldb, int64_t j0, int64_t cols, int64_t p0,
                 int64_t kc, float* dst) {
  const int64_t slots = padded_k(kc, KALIGN) / 2;
  for (int64_t jp = 0; jp < cols; jp += NR) {
    const int64_t lanes = std::min<int64_t>(NR, cols - jp);
    const int64_t j = j0 + jp;
    const float* src = trans ? b + j * ldb + p0 : b + p0 * ldb + j;
    pack_panel_pairs<NR, KALIGN>(src, ldb, !trans, lanes, kc,
                                 reinterpret_cast<uint16_t*>(dst + jp * slots));
  }
}

}  // namespace fastbp::kernels::gemm_detail
