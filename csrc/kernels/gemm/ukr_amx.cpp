// AMX micro-kernel; this file alone is compiled with -mamx-tile -mamx-bf16 (and
// AVX512-BF16 for its packers, pack_bf16_avx512.hpp: AMX CPUs have it, and dispatch.cpp
// picks this path only beside it). A 32 x 32 tile of C is four 16 x 16 float32 accumulator tiles
// (tmm0-3); per 32 K values it loads two A tiles (16 rows x 32 bfloat16, tmm4-5) and two
// B tiles (16 pair rows x 16 columns, tmm6-7) and issues four tdpbf16ps. The A tiles are
// loaded with the streaming hint (tileloaddt1): each A block is read once per call and
// would otherwise push the B micro-panel, which the next calls read again, out of L1.
// With alpha 1 and beta 0 or 1 (every product fastbp runs, and the later K blocks of
// each) the accumulators start at zero or at C and are stored straight to C; other
// alphas and betas and edge tiles go through a scratch tile.
//
// The tile configuration is loaded by bf16_amx_configure_tiles, which the driver runs on
// each thread before the kernel calls of each unit of work (GemmConfig::prepare), not
// once per thread: other code in the process (another library's AMX kernels) may
// configure or release the tiles between fastbp's products, and a tile instruction
// without the configuration faults. The OS must have granted this process the tile state
// (dispatch.cpp asks for it) before this runs.
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

// Every tile 16 rows of 64 bytes.
TileConfig all_16x64() {
  TileConfig cfg;
  for (int t = 0; t < 8; ++t) cfg.colsb[t] = 64, cfg.rows[t] = 16;
  return cfg;
}

// Accumulators (tmm0-3) += A @ B over kc K values.
inline void multiply(int64_t kc, const float* a, const float* b) {
  const char* ap = reinterpret_cast<const char*>(a);
  const char* bp = reinterpret_cast<const char*>(b);
  for (int64_t q = 0; q < (kc + 31) / 32; ++q, ap += kBlockBytes, bp += kBlockBytes) {
    _tile_stream_loadd(4, ap, 64);
    _tile_stream_loadd(5, ap + 16 * 64, 64);
    _tile_loadd(6, bp, 128);
    _tile_loadd(7, bp + 64, 128);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
}

// The four accumulators to or from a 32 x 32 float block `bytes` apart by row.
inline void load_c(const float* c, int64_t bytes) {
  const int64_t half = 16 * (bytes / 4);
  _tile_loadd(0, c, bytes);
  _tile_loadd(1, c + 16, bytes);
  _tile_loadd(2, c + half, bytes);
  _tile_loadd(3, c + half + 16, bytes);
}
inline void store_c(float* c, int64_t bytes) {
  const int64_t half = 16 * (bytes / 4);
  _tile_stored(0, c, bytes);
  _tile_stored(1, c + 16, bytes);
  _tile_stored(2, c + half, bytes);
  _tile_stored(3, c + half + 16, bytes);
}

inline void zero_c() {
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
}

}  // namespace

void bf16_amx_configure_tiles() {
  static const TileConfig cfg = all_16x64();
  _tile_loadconfig(&cfg);
}

void bf16gemm_amx_32x32_edge(int64_t kc, float alpha, const float* a, int64_t, int64_t,
                             const float* b, int64_t, float beta, float* c, int64_t ldc, int rows,
                             int cols) {
  alignas(64) float t[kTile * kTile];
  zero_c();
  multiply(kc, a, b);
  store_c(t, kTile * 4);
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
  if (alpha != 1.0f || (beta != 0.0f && beta != 1.0f))
    return bf16gemm_amx_32x32_edge(kc, alpha, a, rs_a, cs_a, b, rs_b, beta, c, ldc, kTile, kTile);
  const int64_t bytes = ldc * 4;
  if (beta == 0.0f) {
    zero_c();
  } else {
    load_c(c, bytes);
  }
  multiply(kc, a, b);
  store_c(c, bytes);
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
