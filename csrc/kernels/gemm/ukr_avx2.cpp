// AVX2 + FMA micro-kernels; this file alone is compiled with -mavx2 -mfma.
// 6 x 16 floats (6 x 8 doubles): 12 ymm accumulators + 2 for the B row + 1 for the
// broadcast of A use 15 of the 16 registers, and 12 independent FMAs per k step hide
// the FMA latency (4-5 cycles on two ports, Haswell and Zen alike).
#include <immintrin.h>

#include "config.hpp"
#include "pack.hpp"
#include "ukr_simd.hpp"

namespace fastbp::kernels::gemm_detail {
namespace {

struct Avx2F32 {
  using V = __m256;
  static constexpr int kWidth = 8;
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V bcast(const float* p) { return _mm256_broadcast_ss(p); }
  static V set1(float x) { return _mm256_set1_ps(x); }
  static V zero() { return _mm256_setzero_ps(); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static constexpr int kDepth = 1;
  static V dot(V a, V b, V c) { return fma(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static __m256i mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static V load_n(const float* p, int n) { return _mm256_maskload_ps(p, mask(n)); }
  static void store_n(float* p, V v, int n) { _mm256_maskstore_ps(p, mask(n), v); }
};

struct Avx2F64 {
  using V = __m256d;
  static constexpr int kWidth = 4;
  static V load(const double* p) { return _mm256_loadu_pd(p); }
  static void store(double* p, V v) { _mm256_storeu_pd(p, v); }
  static V bcast(const double* p) { return _mm256_broadcast_sd(p); }
  static V set1(double x) { return _mm256_set1_pd(x); }
  static V zero() { return _mm256_setzero_pd(); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static constexpr int kDepth = 1;
  static V dot(V a, V b, V c) { return fma(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
  static __m256i mask(int n) {
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
  }
  static V load_n(const double* p, int n) { return _mm256_maskload_pd(p, mask(n)); }
  static void store_n(double* p, V v, int n) { _mm256_maskstore_pd(p, mask(n), v); }
};

// A conversion of this file's own: the packers instantiated over it are this path's.
template <class C>
struct Here : C {};

}  // namespace

void sgemm_avx2_6x16(int64_t kc, float alpha, const float* a, int64_t rs_a, int64_t cs_a,
                     const float* b, int64_t rs_b, float beta, float* c, int64_t ldc) {
  ukr_broadcast<Avx2F32, float, 6, 2>(kc, alpha, a, rs_a, cs_a, b, rs_b, beta, c, ldc);
}

void sgemm_avx2_6x16_edge(int64_t kc, float alpha, const float* a, int64_t rs_a, int64_t cs_a,
                          const float* b, int64_t rs_b, float beta, float* c, int64_t ldc, int rows,
                          int cols) {
  ukr_edge<Avx2F32, float, 6, 2>(kc, alpha, a, rs_a, cs_a, b, rs_b, beta, c, ldc, rows, cols);
}
void dgemm_avx2_6x8(int64_t kc, double alpha, const double* a, int64_t rs_a, int64_t cs_a,
                    const double* b, int64_t rs_b, double beta, double* c, int64_t ldc) {
  ukr_broadcast<Avx2F64, double, 6, 2>(kc, alpha, a, rs_a, cs_a, b, rs_b, beta, c, ldc);
}
void dgemm_avx2_6x8_edge(int64_t kc, double alpha, const double* a, int64_t rs_a, int64_t cs_a,
                         const double* b, int64_t rs_b, double beta, double* c, int64_t ldc,
                         int rows, int cols) {
  ukr_edge<Avx2F64, double, 6, 2>(kc, alpha, a, rs_a, cs_a, b, rs_b, beta, c, ldc, rows, cols);
}

template <typename T, int MR, int NR, class C>
Packers<T> avx2_packers() {
  return {pack_a<T, MR, Here<C>>, pack_b<T, NR, Here<C>>};
}
template Packers<float> avx2_packers<float, 6, 16, Copy>();
template Packers<float> avx2_packers<float, 6, 16, RoundBf16>();
template Packers<double> avx2_packers<double, 6, 8, Copy>();

}  // namespace fastbp::kernels::gemm_detail
