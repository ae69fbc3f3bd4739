#pragma once
// Entry points below the public gemm() (../gemm.hpp), for tests and benchmarks that
// run one path explicitly instead of the one dispatch chose.
#include <cstdint>

#include "../dispatch.hpp"

namespace fastbp::kernels::gemm_detail {

// gemm() on the path `isa`, which must be isa_supported(isa).
template <typename T>
void gemm_on(Isa isa, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha,
             const T* a, int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc);

// The name of the micro-kernel gemm<T>() runs, e.g. "sgemm_avx2_6x16".
template <typename T>
const char* gemm_kernel_name();

}  // namespace fastbp::kernels::gemm_detail
