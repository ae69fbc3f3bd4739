#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

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

// Reads FASTBP_GEMM_BLOCKS ("MC,KC,NC" for every kernel's cache blocks, or "table") and
// sets up the active path's kernels; throws std::invalid_argument for any other value.
void read_gemm_environment();

// The GEMM configuration in use, per product dtype: "float32", "float64" or "bfloat16"
// (float32 operands rounded to bfloat16, gemm_bf16). A path has one kernel, or a narrow
// and a wide one (the wide one runs products of at least wide_from columns).
struct GemmBlocks {
  int64_t mc, kc, nc;
};
struct GemmKernelInfo {
  std::string name;
  int mr, nr;
  GemmBlocks blocks, table;
  bool has_analytic;
  GemmBlocks analytic;      // valid when has_analytic
  std::string blocks_from;  // "table", "analytic", "tuned" or "environment"
};
struct GemmPathInfo {
  std::vector<GemmKernelInfo> kernels;  // narrow first; one entry when they are the same
  int64_t wide_from;
};
inline constexpr const char* kGemmDtypes[] = {"float32", "float64", "bfloat16"};
GemmPathInfo gemm_path_info(const std::string& dtype);

// Sets one kernel's cache blocks on the active path (MC and NC rounded up to whole tiles),
// recording `source` ("table", "analytic" or "tuned"); and the width from which a path
// with two kernels runs the wide one. Both throw std::invalid_argument for an unknown
// dtype, kernel or source, a size outside [1, 2^20], or a path with a single kernel.
void set_gemm_blocks(const std::string& dtype, const std::string& kernel, const GemmBlocks& blocks,
                     const std::string& source);
void set_gemm_wide_from(const std::string& dtype, int64_t n);

}  // namespace fastbp::kernels
