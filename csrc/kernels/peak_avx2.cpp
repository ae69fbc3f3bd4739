// The float32 peak loop of the AVX2 path (peak.hpp); this file alone is compiled with
// -mavx2 -mfma. 12 ymm accumulators (of 16 registers, two hold the operands) cover an
// FMA latency of 4-5 cycles on two FMA ports.
#include <immintrin.h>

#include "peak.hpp"

namespace fastbp::kernels::peak_detail {
namespace {

constexpr int kChains = 12;

float run(int64_t iterations) {
  const __m256 x = _mm256_set1_ps(1e-3f), y = _mm256_set1_ps(1e-3f);
  __m256 acc[kChains];
  for (__m256& a : acc) a = _mm256_setzero_ps();
  step_chains(iterations, acc, [&](__m256 a) { return _mm256_fmadd_ps(x, y, a); });
  __m256 sum = _mm256_setzero_ps();
  for (const __m256& a : acc) sum = _mm256_add_ps(sum, a);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, sum);
  return lanes[0];
}

}  // namespace

PeakLoop fma_ymm_loop() { return {"vfmadd231ps ymm", 2.0 * 8 * kChains, run}; }

}  // namespace fastbp::kernels::peak_detail
