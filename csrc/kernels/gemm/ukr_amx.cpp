// AMX micro-kernel; this file alone is compiled with -mamx-tile -mamx-bf16 (and
// AVX512-BF16 for its packers, pack_bf16_avx512.hpp: AMX CPUs have it, and dispatch.cpp
// picks this path only beside it). A 32 x 32 tile of C is four 16 x 16 float32 accumulator tiles
// (tmm0-3); per 32 K values it loads two A tiles (16 rows x 32 bfloat16, tmm4-5) and two
// B tiles (16 pair rows x 16 columns, tmm6-7) and issues four tdpbf16ps. The
// accumulators go through a scratch tile to apply alpha, beta and the edge. The tile
// configuration is loaded on every call rather than once per thread: other code in the
// process (another library's AMX kernels) may configure or release the tiles between
// calls, and a tile instruction without the configuration faults. The OS must have
// granted this process the tile state (dispatch.cpp asks for it) before this runs.
#include <immintrin.h>

#include <cstdint>

#include "config.hpp"
#include "pack_bf16_avx512.hpp"

namespace fastbp::kernels::gemm_detail {
namespace {

constexpr int kTile = 32;              // rows and columns of C per call
constexpr int64_t kBlockBytes = 2048;  // one 32-deep K block of a panel: 32 x 32 bfloat16

struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// C tile (32 x 32 floats, row stride 32) = A @ B over kc K values.
void amx_tile(int64_t kc, const float* a, const float* b, float* out) {
  TileConfig cfg;
  for (int t = 0; t < 8; ++t) cfg.colsb[t] = 64, cfg.rows[t] = 16;
  _tile_loadconfig(&cfg);
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  const char* ap = reinterpret_cast<const char*>(a);
  const char* bp = reinterpret_cast<const char*>(b);
  for (int64_t q = 0; q < (kc + 31) / 32; ++q, ap += kBlockBytes, bp += kBlockBytes) {
    _tile_loadd(4, ap, 64);
    _tile_loadd(5, ap + 16 * 64, 64);
    _tile_loadd(6, bp, 128);
    _tile_loadd(7, bp + 64, 128);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  _tile_stored(0, out, kTile * 4);
  _tile_stored(1, out + 16, kTile * 4);
  _tile_stored(2, out + 16 * kTile, kTile * 4);
  _tile_stored(3, out + 16 * kTile + 16, kTile * 4);
}

}  // namespace

void bf16gemm_amx_32x32_edge(int64_t kc, float alpha, const float* a, int64_t, int64_t,
                             const float* b, int64_t, float beta, float* c, int64_t ldc, int rows,
                             int cols) {
  alignas(64) float t[kTile * kTile];
  amx_tile(kc, a, b, t);
  for (int i = 0; i < rows; ++i) {
    float* ci = c + i * ldc;
    const float* ti = t + i * kTile;
    if (beta == 0.0f) {
      for (int j = 0; j < cols; ++j) ci[j] = alpha * ti[j];
    } else {
      for (int j = 0; j < cols; ++j) ci[j] = alpha * ti[j] + beta * ci[j];
    }
  }
}

void bf16gemm_amx_32x32(int64_t kc, float alpha, const float* a, int64_t rs_a, int64_t cs_a,
                        const float* b, int64_t rs_b, float beta, float* c, int64_t ldc) {
  bf16gemm_amx_32x32_edge(kc, alpha, a, rs_a, cs_a, b, rs_b, beta, c, ldc, kTile, kTile);
}

void bf16_pack_a_amx32(bool trans, const float* a, int64_t lda, int64_t i0, int64_t rows,
                       int64_t p0, int64_t kc, float* dst) {
  pack_a_bf16<kTile, 32, true, Avx512Bf16Panels>(trans, a, lda, i0, rows, p0, kc, dst);
}
void bf16_pack_b_amx32(bool trans, const float* b, int64_t ldb, int64_t j0, int64_t cols,
                       int64_t p0, int64_t kc, float* dst) {
  pack_b_bf16<kTile, 32, Avx512Bf16Panels>(trans, b, ldb, j0, cols, p0, kc, dst);
}

}  // namespace fastbp::kernels::gemm_detail
