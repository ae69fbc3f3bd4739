// Portable micro-kernel, compiled for the baseline CPU. Small fixed-size loops the
// compiler keeps in registers and vectorises with whatever the baseline offers
// (SSE2 on x86-64, NEON on AArch64); the ref path of every machine runs this.
#include "config.hpp"

namespace fastbp::kernels::gemm_detail {

namespace {

// The rows x cols of an MR x NR tile that exist in C (all of them for a full tile, where
// the bounds are compile-time constants once inlined).
template <typename T, int MR, int NR>
inline void ref_tile(int64_t kc, T alpha, const T* a, int64_t rs_a, int64_t cs_a, const T* b,
                     int64_t rs_b, T beta, T* c, int64_t ldc, int rows, int cols) {
  T acc[MR][NR] = {};
  for (int64_t p = 0; p < kc; ++p) {
    for (int i = 0; i < rows; ++i) {
      const T ai = a[i * rs_a];
      for (int j = 0; j < NR; ++j) acc[i][j] += ai * b[j];
    }
    a += cs_a;
    b += rs_b;
  }
  for (int i = 0; i < rows; ++i) {
    T* ci = c + i * ldc;
    if (beta == T(0)) {
      for (int j = 0; j < cols; ++j) ci[j] = alpha * acc[i][j];
    } else {
      for (int j = 0; j < cols; ++j) ci[j] = alpha * acc[i][j] + beta * ci[j];
    }
  }
}

}  // namespace

template <typename T, int MR, int NR>
void gemm_ukr_ref(int64_t kc, T alpha, const T* a, int64_t rs_a, int64_t cs_a, const T* b,
                  int64_t rs_b, T beta, T* c, int64_t ldc) {
  ref_tile<T, MR, NR>(kc, alpha, a, rs_a, cs_a, b, rs_b, beta, c, ldc, MR, NR);
}

template <typename T, int MR, int NR>
void gemm_ukr_ref_edge(int64_t kc, T alpha, const T* a, int64_t rs_a, int64_t cs_a, const T* b,
                       int64_t rs_b, T beta, T* c, int64_t ldc, int rows, int cols) {
  ref_tile<T, MR, NR>(kc, alpha, a, rs_a, cs_a, b, rs_b, beta, c, ldc, rows, cols);
}

template void gemm_ukr_ref<float, 4, 8>(int64_t, float, const float*, int64_t, int64_t,
                                        const float*, int64_t, float, float*, int64_t);
template void gemm_ukr_ref<double, 4, 4>(int64_t, double, const double*, int64_t, int64_t,
                                         const double*, int64_t, double, double*, int64_t);

template void gemm_ukr_ref_edge<float, 4, 8>(int64_t, float, const float*, int64_t, int64_t,
                                             const float*, int64_t, float, float*, int64_t, int,
                                             int);
template void gemm_ukr_ref_edge<double, 4, 4>(int64_t, double, const double*, int64_t, int64_t,
                                              const double*, int64_t, double, double*, int64_t, int,
                                              int);

}  // namespace fastbp::kernels::gemm_detail
