// AVX512-BF16 micro-kernels and their packers; this file alone is compiled with
// -mavx512bf16 (and -mavx512bw for the packers' word permutes). The tiles and
// register use of the float32 AVX-512 kernels (ukr_avx512.cpp), but each accumulate step
// is one vdpbf16ps: a broadcast bfloat16 pair of A times a B row of NR pairs, added to
// float32 accumulators, so a step consumes two K values. The instruction treats
// bfloat16 subnormals as zero and flushes subnormal results.
#include <immintrin.h>

#include <cstring>

#include "config.hpp"
#include "pack_bf16_avx512.hpp"
#include "ukr_simd.hpp"

namespace fastbp::kernels::gemm_detail {
namespace {

struct Avx512Bf16 {
  using V = __m512;
  static constexpr int kWidth = 16;  // float32 accumulator lanes (and pairs per B load)
  static constexpr int kDepth = 2;
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V bcast(const float* p) {  // a slot holds a pair: broadcast its 32 bits as they are
    int32_t bits;
    std::memcpy(&bits, p, sizeof bits);
    return _mm512_castsi512_ps(_mm512_set1_epi32(bits));
  }
  static V set1(float x) { return _mm512_set1_ps(x); }
  static V zero() { return _mm512_setzero_ps(); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V dot(V a, V b, V c) { return _mm512_dpbf16_ps(c, (__m512bh)a, (__m512bh)b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static __mmask16 mask(int n) { return static_cast<__mmask16>((1u << n) - 1); }
  static V load_n(const float* p, int n) { return _mm512_maskz_loadu_ps(mask(n), p); }
  static void store_n(float* p, V v, int n) { _mm512_mask_storeu_ps(p, mask(n), v); }
};

}  // namespace

void bf16gemm_avx512bf16_12x32(int64_t kc, float alpha, const float* a, int64_t rs_a, int64_t cs_a,
                               const float* b, int64_t rs_b, float beta, float* c, int64_t ldc) {
  ukr_broadcast<Avx512Bf16, float, 12, 2>(kc, alpha, a, rs_a, cs_a, b, rs_b, beta, c, ldc);
}
void bf16gemm_avx512bf16_12x32_edge(int64_t kc, float alpha, const float* a, int64_t rs_a,
                                    int64_t cs_a, const float* b, int64_t rs_b, float beta,
                                    float* c, int64_t ldc, int rows, int cols) {
  ukr_edge<Avx512Bf16, float, 12, 2>(kc, alpha, a, rs_a, cs_a, b, rs_b, beta, c, ldc, rows, cols);
}
void bf16gemm_avx512bf16_6x64(int64_t kc, float alpha, const float* a, int64_t rs_a, int64_t cs_a,
                              const float* b, int64_t rs_b, float beta, float* c, int64_t ldc) {
  ukr_broadcast<Avx512Bf16, float, 6, 4>(kc, alpha, a, rs_a, cs_a, b, rs_b, beta, c, ldc);
}
void bf16gemm_avx512bf16_6x64_edge(int64_t kc, float alpha, const float* a, int64_t rs_a,
                                   int64_t cs_a, const float* b, int64_t rs_b, float beta, float* c,
                                   int64_t ldc, int rows, int cols) {
  ukr_edge<Avx512Bf16, float, 6, 4>(kc, alpha, a, rs_a, cs_a, b, rs_b, beta, c, ldc, rows, cols);
}

void bf16_pack_a_pairs12(bool trans, const float* a, int64_t lda, int64_t i0, int64_t rows,
                         int64_t p0, int64_t kc, float* dst) {
  pack_a_bf16<12, 2, false, Avx512Bf16Panels>(trans, a, lda, i0, rows, p0, kc, dst);
}
void bf16_pack_a_pairs6(bool trans, const float* a, int64_t lda, int64_t i0, int64_t rows,
                        int64_t p0, int64_t kc, float* dst) {
  pack_a_bf16<6, 2, false, Avx512Bf16Panels>(trans, a, lda, i0, rows, p0, kc, dst);
}
void bf16_pack_b_pairs32(bool trans, const float* b, int64_t ldb, int64_t j0, int64_t cols,
                         int64_t p0, int64_t kc, float* dst) {
  pack_b_bf16<32, 2, Avx512Bf16Panels>(trans, b, ldb, j0, cols, p0, kc, dst);
}
void bf16_pack_b_pairs64(bool trans, const float* b, int64_t ldb, int64_t j0, int64_t cols,
                         int64_t p0, int64_t kc, float* dst) {
  pack_b_bf16<64, 2, Avx512Bf16Panels>(trans, b, ldb, j0, cols, p0, kc, dst);
}

}  // namespace fastbp::kernels::gemm_detail
