// AVX2 + FMA micro-kernels; this file alone is compiled with -mavx2 -mfma.
// 6 x 16 floats (6 x 8 doubles): 12 ymm accumulators + 2 for the B row + 1 for the
// broadcast of A use 15 of the 16 registers, and 12 independent FMAs per k step hide
// the FMA latency (4-5 cycles on two ports, Haswell and Zen alike).
#include <immintrin.h>

#include <type_traits>

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
  static float sum(V v) {
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    return _mm_cvtss_f32(_mm_add_ss(x, _mm_movehdup_ps(x)));
  }
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
  static double sum(V v) {
    const __m128d x = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(x, _mm_unpackhi_pd(x, x)));
  }
  static __m256i mask(int n) {
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
  }
  static V load_n(const double* p, int n) { return _mm256_maskload_pd(p, mask(n)); }
  static void store_n(double* p, V v, int n) { _mm256_maskstore_pd(p, mask(n), v); }
};

// An 8 x 8 transpose of floats in eight ymm registers: pairs, quads, then 128-bit lanes.
inline void transpose8x8(__m256 r[8]) {
  __m256 t[8];
#pragma GCC unroll 4
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
#pragma GCC unroll 2
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
  }
  // r[4g + j] now holds, in 128-bit lane L, column 4L + j of rows 4g .. 4g + 3.
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    t[j] = _mm256_permute2f128_ps(r[j], r[4 + j], 0x20);
    t[4 + j] = _mm256_permute2f128_ps(r[j], r[4 + j], 0x31);
  }
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) r[i] = t[i];
}

// A conversion of this file's own: the packers instantiated over it are this path's.
// A float32 copy into the 6-lane A panels transposes 8 steps at a time in registers:
// six row loads and two zero rows, the transpose, then each step's six lanes stored as
// eight (each store overwriting the next step's first two; the last step's six alone).
// (The 16-lane B panels' transposed copies measured no faster this way: they wait on
// the memory they read.)
template <class C>
struct Here : C {
  template <typename T, int R>
  static int64_t transpose_steps(const T* src, int64_t ld, int64_t kc, T* dst) {
    if constexpr (!std::is_same_v<T, float> || !C::kIdentity || R != 6) {
      return C::template transpose_steps<T, R>(src, ld, kc, dst);
    } else {
      int64_t p = 0;
      for (; p + 8 <= kc; p += 8) {
        __m256 v[8];
#pragma GCC unroll 8
        for (int i = 0; i < 8; ++i)
          v[i] = i < R ? _mm256_loadu_ps(src + i * ld + p) : _mm256_setzero_ps();
        transpose8x8(v);
        float* d = dst + p * R;
#pragma GCC unroll 7
        for (int q = 0; q < 7; ++q) _mm256_storeu_ps(d + q * R, v[q]);
        _mm_storeu_ps(d + 7 * R, _mm256_castps256_ps128(v[7]));
        _mm_storel_pi(reinterpret_cast<__m64*>(d + 7 * R + 4), _mm256_extractf128_ps(v[7], 1));
      }
      return p;
    }
  }
};

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

// 8 accumulators: 2 rows by 4 columns or 1 by 8 (of 16 registers).
template <>
void dot_avx2<float>(int64_t k, float alpha, const float* a, int64_t lda, const float* bt,
                     int64_t ldbt, float beta, float* c, int64_t ldc, int64_t rows, int cols) {
  dot_columns<Avx2F32, float, 8>(k, alpha, a, lda, bt, ldbt, beta, c, ldc, rows, cols);
}
template <>
void dot_avx2<double>(int64_t k, double alpha, const double* a, int64_t lda, const double* bt,
                      int64_t ldbt, double beta, double* c, int64_t ldc, int64_t rows, int cols) {
  dot_columns<Avx2F64, double, 8>(k, alpha, a, lda, bt, ldbt, beta, c, ldc, rows, cols);
}

template <typename T, int MR, int NR, class C>
Packers<T> avx2_packers() {
  return {pack_a<T, MR, Here<C>>, pack_b<T, NR, Here<C>>};
}
template Packers<float> avx2_packers<float, 6, 16, Copy>();
template Packers<float> avx2_packers<float, 6, 16, RoundBf16>();
template Packers<double> avx2_packers<double, 6, 8, Copy>();

}  // namespace fastbp::kernels::gemm_detail
