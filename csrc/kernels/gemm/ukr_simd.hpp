#pragma once
// The register-blocked micro-kernel shared by the SIMD paths, written once over a
// vector-ops struct `O` (load, store, bcast, set1, zero, fma, mul; kWidth lanes; and the
// accumulate step dot(a, b, acc) consuming kDepth K values: an FMA of one for float
// kernels, vdpbf16ps of a bfloat16 pair for the bfloat16 ones).
// The column kernel (dot_columns) needs O::sum too: the sum of a vector's lanes.
// Include only from an ISA's own translation unit, with `O` defined in an anonymous
// namespace there: each instantiation then has internal linkage, so code compiled with
// one ISA's flags can never be merged into another path by the linker.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

namespace fastbp::kernels::gemm_detail {

// acc = A @ B over kc K values: per step, NV vector loads of a B row and MR broadcasts
// from an A column feed MR * NV independent FMAs. A(i, p) is at a[i * rs_a + p * cs_a]
// and B(p, :) at b + p * rs_b, p counting steps of kDepth K values.
template <typename O, typename T, int MR, int NV>
inline __attribute__((always_inline)) void ukr_accumulate(int64_t kc, const T* __restrict a,
                                                          int64_t rs_a, int64_t cs_a,
                                                          const T* __restrict b, int64_t rs_b,
                                                          typename O::V (&acc)[MR][NV]) {
  using V = typename O::V;
  constexpr int W = O::kWidth;
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = O::zero();
  const int64_t steps = (kc + O::kDepth - 1) / O::kDepth;
#pragma GCC unroll 4
  for (int64_t p = 0; p < steps; ++p) {
    V bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = O::load(b + v * W);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const V ai = O::bcast(a + i * rs_a);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = O::dot(ai, bv[v], acc[i][v]);
    }
    a += cs_a;
    b += rs_b;
  }
}

// C[MR x NV*W] = alpha * A @ B + beta * C. Packed panels have compile-time strides
// (PACKED), while small problems pass the operands' own strides and skip packing.
template <typename O, typename T, int MR, int NV, bool PACKED>
inline void ukr_body(int64_t kc, T alpha, const T* __restrict a, int64_t rs_a, int64_t cs_a,
                     const T* __restrict b, int64_t rs_b, T beta, T* __restrict c, int64_t ldc) {
  using V = typename O::V;
  constexpr int W = O::kWidth;
  constexpr int NR = NV * W;
  if constexpr (PACKED) {
    rs_a = 1;
    cs_a = MR;
    rs_b = NR;
  }
  // C is touched only after the k loop; start pulling it in now.
  for (int i = 0; i < MR; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + NR - 1), _MM_HINT_T0);
  }
  V acc[MR][NV];
  ukr_accumulate<O, T, MR, NV>(kc, a, rs_a, cs_a, b, rs_b, acc);
  const V va = O::set1(alpha);
  if (beta == T(0)) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) O::store(c + i * ldc + v * W, O::mul(va, acc[i][v]));
  } else {
    const V vb = O::set1(beta);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        T* cv = c + i * ldc + v * W;
        O::store(cv, O::fma(vb, O::load(cv), O::mul(va, acc[i][v])));
      }
  }
}

template <typename O, typename T, int MR, int NV>
inline void ukr_broadcast(int64_t kc, T alpha, const T* a, int64_t rs_a, int64_t cs_a, const T* b,
                          int64_t rs_b, T beta, T* c, int64_t ldc) {
  if (rs_a == 1 && cs_a == MR && rs_b == NV * O::kWidth)
    ukr_body<O, T, MR, NV, true>(kc, alpha, a, 1, MR, b, NV * O::kWidth, beta, c, ldc);
  else ukr_body<O, T, MR, NV, false>(kc, alpha, a, rs_a, cs_a, b, rs_b, beta, c, ldc);
}

// An edge tile: only rows x cols of C exist (0 < rows <= MR, 0 < cols <= NV * W). The
// kernel with just enough rows and vectors runs (so A is read only for those rows, and
// no FMA lane of a missing row is spent), and the last vector of each row is stored
// through a lane mask, straight into C: no scratch tile, no merge pass.
template <typename O, typename T, int MR, int NV>
void ukr_edge(int64_t kc, T alpha, const T* a, int64_t rs_a, int64_t cs_a, const T* b, int64_t rs_b,
              T beta, T* c, int64_t ldc, int rows, int cols) {
  constexpr int W = O::kWidth;
  if constexpr (NV > 1) {
    if (cols <= (NV - 1) * W)
      return ukr_edge<O, T, MR, NV - 1>(kc, alpha, a, rs_a, cs_a, b, rs_b, beta, c, ldc, rows,
                                        cols);
  }
  if constexpr (MR > 1) {
    if (rows < MR)
      return ukr_edge<O, T, MR - 1, NV>(kc, alpha, a, rs_a, cs_a, b, rs_b, beta, c, ldc, rows,
                                        cols);
  }
  using V = typename O::V;
  V acc[MR][NV];
  ukr_accumulate<O, T, MR, NV>(kc, a, rs_a, cs_a, b, rs_b, acc);
  const V va = O::set1(alpha), vb = O::set1(beta);
  const int last = cols - (NV - 1) * W;  // lanes of the last vector, 1..W
  for (int i = 0; i < MR; ++i) {
    T* ci = c + i * ldc;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const int lanes = v == NV - 1 ? last : W;
      V out = O::mul(va, acc[i][v]);
      if (beta != T(0)) out = O::fma(vb, O::load_n(ci + v * W, lanes), out);
      O::store_n(ci + v * W, out, lanes);
    }
  }
}

// C[R x cols] = alpha * A @ B + beta * C (cols <= CB) with op(A)'s rows and op(B)'s
// columns both laid along K: A(i, p) at a[i * lda + p], B(p, j) at bt[j * ldbt + p],
// bt holding CB columns (zeros past cols). Each output keeps a vector of partial sums
// over K (no broadcasts), added across its lanes at the end.
template <typename O, typename T, int R, int CB>
inline void dot_block(int64_t k, T alpha, const T* __restrict a, int64_t lda,
                      const T* __restrict bt, int64_t ldbt, T beta, T* __restrict c, int64_t ldc,
                      int cols) {
  using V = typename O::V;
  constexpr int W = O::kWidth;
  V acc[R][CB];
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < CB; ++j) acc[i][j] = O::zero();
  auto step = [&](int64_t p, auto load) {
    V av[R];
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) av[i] = load(a + i * lda + p);
#pragma GCC unroll 8
    for (int j = 0; j < CB; ++j) {
      const V bv = load(bt + j * ldbt + p);
#pragma GCC unroll 8
      for (int i = 0; i < R; ++i) acc[i][j] = O::fma(av[i], bv, acc[i][j]);
    }
  };
  int64_t p = 0;
  for (; p + W <= k; p += W) step(p, [](const T* x) { return O::load(x); });
  if (p < k) {
    const int rest = static_cast<int>(k - p);
    step(p, [rest](const T* x) { return O::load_n(x, rest); });
  }
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < cols; ++j) {
      T* cij = c + i * ldc + j;
      const T s = alpha * O::sum(acc[i][j]);
      *cij = beta == T(0) ? s : s + beta * *cij;
    }
}

// Rows [0, rows) in blocks of R (the last with the rows that are left).
template <typename O, typename T, int R, int CB>
void dot_rows(int64_t k, T alpha, const T* a, int64_t lda, const T* bt, int64_t ldbt, T beta, T* c,
              int64_t ldc, int64_t rows, int cols) {
  int64_t i = 0;
  for (; i + R <= rows; i += R)
    dot_block<O, T, R, CB>(k, alpha, a + i * lda, lda, bt, ldbt, beta, c + i * ldc, ldc, cols);
  if constexpr (R > 1) {
    if (i < rows)
      dot_rows<O, T, R - 1, CB>(k, alpha, a + i * lda, lda, bt, ldbt, beta, c + i * ldc, ldc,
                                rows - i, cols);
  }
}

// C[rows x cols] = alpha * A @ B + beta * C (cols <= 8), laid out as for dot_block, for
// the few last columns of a C on a long K, where a micro-kernel tile would spend a
// broadcast of A on every multiply-add of a mostly empty vector. bt holds cols rounded
// up to 4 or 8 (zeros past cols); the columns run together, in blocks of ACC / 4 or
// ACC / 8 rows, so each row of A is read once.
template <typename O, typename T, int ACC>
void dot_columns(int64_t k, T alpha, const T* a, int64_t lda, const T* bt, int64_t ldbt, T beta,
                 T* c, int64_t ldc, int64_t rows, int cols) {
  if (cols <= 4)
    return dot_rows<O, T, ACC / 4, 4>(k, alpha, a, lda, bt, ldbt, beta, c, ldc, rows, cols);
  dot_rows<O, T, ACC / 8, 8>(k, alpha, a, lda, bt, ldbt, beta, c, ldc, rows, cols);
}

}  // namespace fastbp::kernels::gemm_detail
