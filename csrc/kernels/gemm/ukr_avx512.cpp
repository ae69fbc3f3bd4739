// AVX-512 micro-kernels; this file alone is compiled with -mavx512f -mavx512dq.
// 12 x 32 floats (12 x 16 doubles): 24 zmm accumulators + 2 for the B row + 1 for the
// broadcast use 27 of the 32 registers; 24 independent FMAs per k step cover two FMA
// ports' latency, at 14 loads per 24 FMAs (0.58). 6 x 64 floats (6 x 32 doubles) keep
// 24 accumulators with 4 B vectors and 6 broadcasts: 10 loads per 24 FMAs (0.42), the
// faster kernel on Sapphire Rapids wherever C is wide enough to fill its 64 columns.
#include <immintrin.h>

#include "config.hpp"
#include "ukr_simd.hpp"

namespace fastbp::kernels::gemm_detail {
namespace {

struct Avx512F32 {
  using V = __m512;
  static constexpr int kWidth = 16;
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V bcast(const float* p) { return _mm512_set1_ps(*p); }
  static V set1(float x) { return _mm512_set1_ps(x); }
  static V zero() { return _mm512_setzero_ps(); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static constexpr int kDepth = 1;
  static V dot(V a, V b, V c) { return fma(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static __mmask16 mask(int n) { return static_cast<__mmask16>((1u << n) - 1); }
  static V load_n(const float* p, int n) { return _mm512_maskz_loadu_ps(mask(n), p); }
  static void store_n(float* p, V v, int n) { _mm512_mask_storeu_ps(p, mask(n), v); }
};

struct Avx512F64 {
  using V = __m512d;
  static constexpr int kWidth = 8;
  static V load(const double* p) { return _mm512_loadu_pd(p); }
  static void store(double* p, V v) { _mm512_storeu_pd(p, v); }
  static V bcast(const double* p) { return _mm512_set1_pd(*p); }
  static V set1(double x) { return _mm512_set1_pd(x); }
  static V zero() { return _mm512_setzero_pd(); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static constexpr int kDepth = 1;
  static V dot(V a, V b, V c) { return fma(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
  static __mmask8 mask(int n) { return static_cast<__mmask8>((1u << n) - 1); }
  static V load_n(const double* p, int n) { return _mm512_maskz_loadu_pd(mask(n), p); }
  static void store_n(double* p, V v, int n) { _mm512_mask_storeu_pd(p, mask(n), v); }
};

}  // namespace

void sgemm_avx512_12x32(int64_t kc, float alpha, const float* a, int64_t rs_a, int64_t cs_a,
                        const float* b, int64_t rs_b, float beta, float* c, int64_t ldc) {
  ukr_broadcast<Avx512F32, float, 12, 2>(kc, alpha, a, rs_a, cs_a, b, rs_b, beta, c, ldc);
}

void sgemm_avx512_12x32_edge(int64_t kc, float alpha, const float* a, int64_t rs_a, int64_t cs_a,
                             const float* b, int64_t rs_b, float beta, float* c, int64_t ldc,
                             int rows, int cols) {
  ukr_edge<Avx512F32, float, 12, 2>(kc, alpha, a, rs_a, cs_a, b, rs_b, beta, c, ldc, rows, cols);
}
void sgemm_avx512_6x64(int64_t kc, float alpha, const float* a, int64_t rs_a, int64_t cs_a,
                       const float* b, int64_t rs_b, float beta, float* c, int64_t ldc) {
  ukr_broadcast<Avx512F32, float, 6, 4>(kc, alpha, a, rs_a, cs_a, b, rs_b, beta, c, ldc);
}

void sgemm_avx512_6x64_edge(int64_t kc, float alpha, const float* a, int64_t rs_a, int64_t cs_a,
                            const float* b, int64_t rs_b, float beta, float* c, int64_t ldc,
                            int rows, int cols) {
  ukr_edge<Avx512F32, float, 6, 4>(kc, alpha, a, rs_a, cs_a, b, rs_b, beta, c, ldc, rows, cols);
}

void dgemm_avx512_6x32(int64_t kc, double alpha, const double* a, int64_t rs_a, int64_t cs_a,
                       const double* b, int64_t rs_b, double beta, double* c, int64_t ldc) {
  ukr_broadcast<Avx512F64, double, 6, 4>(kc, alpha, a, rs_a, cs_a, b, rs_b, beta, c, ldc);
}

void dgemm_avx512_6x32_edge(int64_t kc, double alpha, const double* a, int64_t rs_a, int64_t cs_a,
                            const double* b, int64_t rs_b, double beta, double* c, int64_t ldc,
                            int rows, int cols) {
  ukr_edge<Avx512F64, double, 6, 4>(kc, alpha, a, rs_a, cs_a, b, rs_b, beta, c, ldc, rows, cols);
}

void dgemm_avx512_12x16(int64_t kc, double alpha, const double* a, int64_t rs_a, int64_t cs_a,
                        const double* b, int64_t rs_b, double beta, double* c, int64_t ldc) {
  ukr_broadcast<Avx512F64, double, 12, 2>(kc, alpha, a, rs_a, cs_a, b, rs_b, beta, c, ldc);
}
void dgemm_avx512_12x16_edge(int64_t kc, double alpha, const double* a, int64_t rs_a, int64_t cs_a,
                             const double* b, int64_t rs_b, double beta, double* c, int64_t ldc,
                             int rows, int cols) {
  ukr_edge<Avx512F64, double, 12, 2>(kc, alpha, a, rs_a, cs_a, b, rs_b, beta, c, ldc, rows, cols);
}

}  // namespace fastbp::kernels::gemm_detail
