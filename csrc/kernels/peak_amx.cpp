// The bfloat16 peak loop of the AMX path (peak.hpp); this file alone is compiled with
// -mamx-tile -mamx-bf16. The micro-kernel's tiles (gemm/ukr_amx.cpp) without its loads:
// four 16 x 16 float32 accumulators (tmm0-3), each updated per iteration by one
// tdpbf16ps of a 16 x 32 bfloat16 A tile (tmm4-5) and a 16-pair x 16 B tile (tmm6-7),
// 16 x 16 x 32 multiply-adds each, in the kernel's own tile configuration
// (bf16_amx_configure_tiles), loaded on every call on the thread that runs it; the tiles
// are released at the end.
#include <immintrin.h>

#include <cstdint>

#include "gemm/config.hpp"
#include "peak.hpp"

namespace fastbp::kernels::peak_detail {
namespace {

constexpr int kRows = 16, kRowBytes = 64;
constexpr uint16_t kBf16 = 0x3c00;  // bfloat16 2^-7: the sums stay normal floats

float run(int64_t iterations) {
  gemm_detail::bf16_amx_configure_tiles();
  alignas(64) uint16_t operand[kRows * kRowBytes / 2];
  for (uint16_t& v : operand) v = kBf16;
  _tile_loadd(4, operand, kRowBytes);
  _tile_loadd(5, operand, kRowBytes);
  _tile_loadd(6, operand, kRowBytes);
  _tile_loadd(7, operand, kRowBytes);
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  for (int64_t i = 0; i < iterations; ++i) {
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  alignas(64) float out[kRows * kRows];
  _tile_stored(0, out, kRowBytes);
  const float first = out[0];
  _tile_stored(3, out, kRowBytes);
  _tile_release();
  return first + out[0];
}

}  // namespace

PeakLoop amx_bf16_loop() { return {"tdpbf16ps", 4 * 16.0 * 16 * 32 * 2, run}; }

}  // namespace fastbp::kernels::peak_detail
