#pragma once
#include <cstdint>

namespace fastbp::kernels {

// C = alpha * op(A) @ op(B) + beta * C, all row-major; op(X) = X^T when trans_x.
// op(A) is m x k, op(B) is k x n, C is m x n. lda/ldb/ldc are the row strides of
// the arrays as stored (so a transposed A of op-shape m x k is stored k x m).
// beta == 0 overwrites C without reading it (NaN in C does not propagate).
template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha,
          const T* a, int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc);

// Reads FASTBP_GEMM_BLOCKS="MC,KC,NC" (every kernel's cache blocks, for tuning);
// throws std::invalid_argument when it is set to anything but three positive integers.
void read_gemm_environment();

}  // namespace fastbp::kernels
