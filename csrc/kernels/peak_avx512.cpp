// The float32 peak loop of the AVX-512 paths (peak.hpp); this file alone is compiled with
// the AVX-512 flags. 16 zmm accumulators, twice the latency (4 cycles) times the two
// FMA ports of the cores that run it, so that no chain waits on its own result.
#include <immintrin.h>

#include "peak.hpp"

namespace fastbp::kernels::peak_detail {
namespace {

constexpr int kChains = 16;

float run(int64_t iterations) {
  const __m512 x = _mm512_set1_ps(1e-3f), y = _mm512_set1_ps(1e-3f);
  __m512 acc[kChains];
  for (__m512& a : acc) a = _mm512_setzero_ps();
  step_chains(iterations, acc, [&](__m512 a) { return _mm512_fmadd_ps(x, y, a); });
  __m512 sum = _mm512_setzero_ps();
  for (const __m512& a : acc) sum = _mm512_add_ps(sum, a);
  return _mm512_reduce_add_ps(sum);
}

}  // namespace

PeakLoop fma_zmm_loop() { return {"vfmadd231ps zmm", 2.0 * 16 * kChains, run}; }

}  // namespace fastbp::kernels::peak_detail
