// AVX-512 micro-kernels; this file alone is compiled with -mavx512f -mavx512dq.
// 12 x 32 floats (12 x 16 doubles): 24 zmm accumulators + 2 for the B row + 1 for the
// broadcast use 27 of the 32 registers; 24 independent FMAs per k step cover two FMA
// ports' latency, at 14 loads per 24 FMAs (0.58). 6 x 64 floats (6 x 32 doubles) keep
// 24 accumulators with 4 B vectors and 6 broadcasts: 10 loads per 24 FMAs (0.42), the
// faster kernel on Sapphire Rapids wherever C is wide enough to fill its 64 columns.
#include <immintrin.h>

#include <type_traits>

#include "config.hpp"
#include "pack.hpp"
#include "transpose_avx512.hpp"
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
  static float sum(V v) { return _mm512_reduce_add_ps(v); }
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
  static double sum(V v) { return _mm512_reduce_add_pd(v); }
  static __mmask8 mask(int n) { return static_cast<__mmask8>((1u << n) - 1); }
  static V load_n(const double* p, int n) { return _mm512_maskz_loadu_pd(mask(n), p); }
  static void store_n(double* p, V v, int n) { _mm512_mask_storeu_pd(p, mask(n), v); }
};

// A conversion of this file's own: the packers instantiated over it are this path's.
// A float32 copy into a panel transposes 16 x 16 blocks in registers: sixteen row loads,
// the transpose, sixteen panel-row stores. A panel of fewer than 16 lanes (the A panels
// of 6 and 12 rows) loads its R rows, transposes them with zero rows below, and stores
// R lanes of each of the 16 steps.
template <class C>
struct Here : C {
  template <typename T, int R>
  static int64_t transpose_steps(const T* src, int64_t ld, int64_t kc, T* dst) {
    if constexpr (!std::is_same_v<T, float> || !C::kIdentity || (R > 16 && R % 16 != 0)) {
      return C::template transpose_steps<T, R>(src, ld, kc, dst);
    } else if constexpr (R < 16) {
      constexpr __mmask16 lanes = static_cast<__mmask16>((1u << R) - 1);
      int64_t p = 0;
      for (; p + 16 <= kc; p += 16) {
        __m512i v[16];
#pragma GCC unroll 16
        for (int i = 0; i < 16; ++i)
          v[i] = i < R ? _mm512_castps_si512(_mm512_loadu_ps(src + i * ld + p))
                       : _mm512_setzero_si512();
        transpose16x16(v);
#pragma GCC unroll 16
        for (int q = 0; q < 16; ++q)
          _mm512_mask_storeu_ps(dst + (p + q) * R, lanes, _mm512_castsi512_ps(v[q]));
      }
      return p;
    } else {
      int64_t p = 0;
      for (; p + 16 <= kc; p += 16) {
        for (int l0 = 0; l0 < R; l0 += 16) {
          __m512i v[16];
#pragma GCC unroll 16
          for (int i = 0; i < 16; ++i)
            v[i] = _mm512_castps_si512(_mm512_loadu_ps(src + (l0 + i) * ld + p));
          transpose16x16(v);
#pragma GCC unroll 16
          for (int q = 0; q < 16; ++q)
            _mm512_storeu_ps(dst + (p + q) * R + l0, _mm512_castsi512_ps(v[q]));
        }
      }
      return p;
    }
  }
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

// 24 accumulators: 6 rows by 4 columns or 3 by 8 (of 32 registers).
template <>
void dot_avx512<float>(int64_t k, float alpha, const float* a, int64_t lda, const float* bt,
                       int64_t ldbt, float beta, float* c, int64_t ldc, int64_t rows, int cols) {
  dot_columns<Avx512F32, float, 24>(k, alpha, a, lda, bt, ldbt, beta, c, ldc, rows, cols);
}
template <>
void dot_avx512<double>(int64_t k, double alpha, const double* a, int64_t lda, const double* bt,
                        int64_t ldbt, double beta, double* c, int64_t ldc, int64_t rows, int cols) {
  dot_columns<Avx512F64, double, 24>(k, alpha, a, lda, bt, ldbt, beta, c, ldc, rows, cols);
}

template <typename T, int MR, int NR, class C>
Packers<T> avx512_packers() {
  return {pack_a<T, MR, Here<C>>, pack_b<T, NR, Here<C>>};
}
template Packers<float> avx512_packers<float, 12, 32, Copy>();
template Packers<float> avx512_packers<float, 6, 64, Copy>();
template Packers<float> avx512_packers<float, 12, 32, RoundBf16>();
template Packers<float> avx512_packers<float, 6, 64, RoundBf16>();
template Packers<double> avx512_packers<double, 12, 16, Copy>();
template Packers<double> avx512_packers<double, 6, 32, Copy>();

}  // namespace fastbp::kernels::gemm_detail
