#pragma once
// Packing op(A) and op(B) into the micro-panel layouts the micro-kernels stream
// through: contiguous, in the order they are read, padded with zeros to MR / NR so the
// kernels never see a ragged edge. The transposes of op() happen here, on the way into
// the panels, so no transposed copy of an operand is ever made. A conversion C
// (bf16.hpp: Copy, or RoundBf16 for the bfloat16 GEMM) is applied to each element as it
// is copied, so rounding the operands costs no pass of its own. Each SIMD path compiles
// its own copies of these packers with its ISA's flags (isa_packers, config.hpp).
#include <algorithm>
#include <cstdint>

#include "bf16.hpp"

namespace fastbp::kernels::gemm_detail {

// Element (p, lane) of a micro-panel read straight from the matrix: either the lane
// runs along the stored rows (`lane_contig`: a copy) or across them (a transpose).
// The transpose reads a few lanes' rows in 8-long runs so each run is one cache line.
template <typename T, int R, class C = Copy>
inline void pack_panel(const T* src, int64_t ld, bool lane_contig, int64_t lanes, int64_t kc,
                       T* __restrict dst) {
  if (lane_contig) {
    // Lane l of step p lies at src[p * ld + l]. A copy of MR or NR elements must stay a
    // few vector moves: a memcpy of a size known at compile time is inlined as such. The
    // ragged copy below is a loop of its own; the packers' files are built so that GCC
    // does not turn it into calls to memmove and memset (kernels/CMakeLists.txt).
    if (lanes == R) {
      for (int64_t p = 0; p < kc; ++p) {
        if constexpr (C::kIdentity) {
          __builtin_memcpy(dst + p * R, src + p * ld, sizeof(T) * R);
        } else {
#pragma GCC unroll 16
          for (int l = 0; l < R; ++l) dst[p * R + l] = C::apply(src[p * ld + l]);
        }
      }
    } else {
      for (int64_t p = 0; p < kc; ++p) {
        for (int64_t l = 0; l < lanes; ++l) dst[p * R + l] = C::apply(src[p * ld + l]);
        for (int64_t l = lanes; l < R; ++l) dst[p * R + l] = T(0);
      }
    }
    return;
  }
  // Lane l of step p lies at src[l * ld + p]. C may transpose whole blocks of steps
  // in vector registers (a SIMD path's Here<C>); the rest goes element by element.
  constexpr int64_t kRun = 8;
  int64_t p = 0;
  if (lanes == R) {
    p = C::template transpose_steps<T, R>(src, ld, kc, dst);
    for (; p + kRun <= kc; p += kRun) {
      for (int l = 0; l < R; ++l) {
        const T* s = src + l * ld + p;
#pragma GCC unroll 8
        for (int q = 0; q < kRun; ++q) dst[(p + q) * R + l] = C::apply(s[q]);
      }
    }
  }
  for (; p < kc; ++p) {
    for (int64_t l = 0; l < lanes; ++l) dst[p * R + l] = C::apply(src[l * ld + p]);
    for (int64_t l = lanes; l < R; ++l) dst[p * R + l] = T(0);
  }
}

// Packs `lanes` lanes of op(X), whose lane l of step p lies at src[p * ld + l] when
// `lane_contig` and at src[l * ld + p] otherwise, into consecutive R-lane panels of kc
// steps each. Where the lanes run along memory, it goes kRowRun steps at a time across
// all the panels, so each source row is read front to back: a panel alone would read a
// few lanes of each of kc rows ld apart (a page per row, which the prefetchers do not
// follow), and the next panel would fetch the same lines again. (pack_bf16.hpp's packers
// go the same way.)
template <typename T, int R, class C>
void pack_lanes(const T* src, int64_t ld, bool lane_contig, int64_t lanes, int64_t kc, T* dst) {
  if (!lane_contig) {
    for (int64_t l = 0; l < lanes; l += R)
      pack_panel<T, R, C>(src + l * ld, ld, false, std::min<int64_t>(R, lanes - l), kc,
                          dst + l * kc);
    return;
  }
  constexpr int64_t kRowRun = 16;
  for (int64_t p = 0; p < kc; p += kRowRun) {
    const int64_t steps = std::min(kRowRun, kc - p);
    for (int64_t l = 0; l < lanes; l += R)
      pack_panel<T, R, C>(src + p * ld + l, ld, true, std::min<int64_t>(R, lanes - l), steps,
                          dst + l * kc + p * R);
  }
}

// Rows [i0, i0 + rows) x columns [p0, p0 + kc) of op(A) as MR-row micro-panels, each
// kc x MR (column p of the panel holds its MR rows contiguously).
template <typename T, int MR, class C = Copy>
void pack_a(bool trans, const T* a, int64_t lda, int64_t i0, int64_t rows, int64_t p0, int64_t kc,
            T* dst) {
  const T* src = trans ? a + p0 * lda + i0 : a + i0 * lda + p0;
  pack_lanes<T, MR, C>(src, lda, trans, rows, kc, dst);
}

// Columns [j0, j0 + cols) x rows [p0, p0 + kc) of op(B) as NR-column micro-panels, each
// kc x NR (row p of the panel holds its NR columns contiguously).
template <typename T, int NR, class C = Copy>
void pack_b(bool trans, const T* b, int64_t ldb, int64_t j0, int64_t cols, int64_t p0, int64_t kc,
            T* dst) {
  const T* src = trans ? b + j0 * ldb + p0 : b + p0 * ldb + j0;
  pack_lanes<T, NR, C>(src, ldb, !trans, cols, kc, dst);
}

}  // namespace fastbp::kernels::gemm_detail
