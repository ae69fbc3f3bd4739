#pragma once
#include <cstdint>
#include <utility>

namespace fastbp::kernels {

// The arithmetic of a product: in the storage dtype, or float32 operands rounded to
// bfloat16 with float32 accumulation (gemm_bf16). Values are part of the Python binding
// (fastbp._core.Compute); keep them stable.
enum class Compute : int { Storage = 0, Bfloat16 = 1 };

inline constexpr std::pair<Compute, const char*> kComputeNames[] = {
    {Compute::Storage, "Storage"}, {Compute::Bfloat16, "Bfloat16"}};

// C = alpha * op(A) @ op(B) + beta * C, all row-major; op(X) = X^T when trans_x.
// op(A) is m x k, op(B) is k x n, C is m x n. lda/ldb/ldc are the row strides of
// the arrays as stored (so a transposed A of op-shape m x k is stored k x m).
// beta == 0 overwrites C without reading it (NaN in C does not propagate).
template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
          int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc);

// The same product with op(A) and op(B) rounded to bfloat16 (round to nearest even) as
// they are packed, and the products accumulated in float32: on AMX tiles, AVX512-BF16
// dot products, or the float32 kernels on the rounded operands (every other machine).
// They agree up to the order of the float32 sums, except below float32's smallest normal
// (2^-126): the bfloat16 instructions read subnormal operands as zero and flush every
// subnormal partial sum (bf16_flushes_subnormals), the float32 kernels keep both.
void gemm_bf16(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
               const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
               int64_t ldc);

// The kernel gemm_bf16 runs on wide products, e.g. "bf16gemm_amx_32x32".
const char* bf16_gemm_name();

// Whether gemm_bf16 flushes subnormal operands and partial sums to zero on this machine's
// path (the AMX and AVX512-BF16 kernels) rather than keeping them (the float32 kernels).
bool bf16_flushes_subnormals();

// Reads FASTBP_GEMM_BLOCKS="MC,KC,NC" (every kernel's cache blocks, for tuning);
// throws std::invalid_argument when it is set to anything but three positive integers.
void read_gemm_environment();

}  // namespace fastbp::kernels
