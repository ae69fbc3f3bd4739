// Portable micro-kernel, compiled for the baseline CPU. Small fixed-size loops the
// compiler keeps in registers and vectorises with whatever the baseline offers
// (SSE2 on x86-64, NEON on AArch64); the ref path of every machine runs this.
#include "config.hpp"

namespace fastbp::kernels::gemm_detail {

template <typename T, int MR, int NR>
void gemm_ukr_ref(int64_t kc, T alpha, const T* a, int64_t rs_a, int64_t cs_a, const T* b,
                  int64_t rs_b, T beta, T* c, int64_t ldc) {
  T acc[MR][NR] = {};
  for (int64_t p = 0; p < kc; ++p) {
    for (int i = 0; i < MR; ++i) {
      const T ai = a[i * rs_a];
      for (int j = 0; j < NR; ++j) acc[i][j] += ai * b[j];
    }
    a += cs_a;
    b += rs_b;
  }
  for (int i = 0; i < MR; ++i) {
    T* ci = c + i * ldc;
    if (beta == T(0)) {
      for (int j = 0; j < NR; ++j) ci[j] = alpha * acc[i][j];
    } else {
      for (int j = 0; j < NR; ++j) ci[j] = alpha * acc[i][j] + beta * ci[j];
    }
  }
}

template void gemm_ukr_ref<float, 4, 8>(int64_t, float, const float*, int64_t, int64_t,
                                        const float*, int64_t, float, float*, int64_t);
template void gemm_ukr_ref<double, 4, 4>(int64_t, double, const double*, int64_t, int64_t,
                                         const double*, int64_t, double, double*, int64_t);

}  // namespace fastbp::kernels::gemm_detail
