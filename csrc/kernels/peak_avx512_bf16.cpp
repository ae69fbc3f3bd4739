// The bfloat16 peak loop of the AVX512-BF16 path (peak.hpp); this file alone is compiled
// with -mavx512bf16. 16 zmm accumulators; each vdpbf16ps adds, per float32 lane, the
// products of two bfloat16 pairs: 4 flops.
#include <immintrin.h>

#include "peak.hpp"

namespace fastbp::kernels::peak_detail {
namespace {

constexpr int kChains = 16;
constexpr int kBf16Pair = 0x3c003c00;  // two bfloat16 2^-7: the sums stay normal floats

float run(int64_t iterations) {
  const __m512bh x = (__m512bh)_mm512_set1_epi32(kBf16Pair);
  const __m512bh y = (__m512bh)_mm512_set1_epi32(kBf16Pair);
  __m512 acc[kChains];
  for (__m512& a : acc) a = _mm512_setzero_ps();
  step_chains(iterations, acc, [&](__m512 a) { return _mm512_dpbf16_ps(a, x, y); });
  __m512 sum = _mm512_setzero_ps();
  for (const __m512& a : acc) sum = _mm512_add_ps(sum, a);
  return _mm512_reduce_add_ps(sum);
}

}  // namespace

PeakLoop dpbf16_zmm_loop() { return {"vdpbf16ps zmm", 4.0 * 16 * kChains, run}; }

}  // namespace fastbp::kernels::peak_detail
