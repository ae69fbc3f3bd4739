#pragma once
// The parts of a GEMM that need no packing: scaling C when there is no product, tiny
// problems, and merging transposed edge tiles. Templates, instantiated in driver.cpp only.
#include <algorithm>
#include <cstdint>

namespace fastbp::kernels::gemm_detail {

template <typename T>
void scale_c(int64_t m, int64_t n, T beta, T* c, int64_t ldc) {
  if (beta == T(1)) return;
  for (int64_t i = 0; i < m; ++i) {
    T* ci = c + i * ldc;
    if (beta == T(0)) {
      std::fill(ci, ci + n, T(0));
    } else {
      for (int64_t j = 0; j < n; ++j) ci[j] *= beta;
    }
  }
}

// Dot products straight from the operands: for a handful of multiply-adds, any setup
// (packing, tile scratch, a thread team) costs more than the arithmetic.
template <typename T>
void gemm_direct(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
                 int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  const int64_t sa_i = ta ? 1 : lda, sa_p = ta ? lda : 1;
  const int64_t sb_p = tb ? 1 : ldb, sb_j = tb ? ldb : 1;
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      T acc = T(0);
      for (int64_t p = 0; p < k; ++p) acc += a[i * sa_i + p * sa_p] * b[p * sb_p + j * sb_j];
      T& cij = c[i * ldc + j];
      cij = beta == T(0) ? alpha * acc : alpha * acc + beta * cij;
    }
  }
}

// Edge tiles of C^T: the micro-kernel writes the tile to `tile` (row stride nr), and
// its rows x cols are merged transposed, tile(i, j) to C(j, i).
template <typename T>
void merge_edge_t(const T* tile, int nr, int64_t rows, int64_t cols, T beta, T* c, int64_t ldc) {
  for (int64_t j = 0; j < cols; ++j) {
    T* cj = c + j * ldc;
    if (beta == T(0)) {
      for (int64_t i = 0; i < rows; ++i) cj[i] = tile[i * nr + j];
    } else {
      for (int64_t i = 0; i < rows; ++i) cj[i] = tile[i * nr + j] + beta * cj[i];
    }
  }
}

}  // namespace fastbp::kernels::gemm_detail
