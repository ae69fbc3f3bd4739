// The one table of GEMM block sizes, per ISA and dtype.
//
// MR x NR fill the vector registers (see each ukr_<isa>.cpp). KC sets the depth of a
// micro-panel pair: the NR x KC B micro-panel is reused by every A micro-panel of the
// MC block, so on AVX2 it stays in L1 (16 KB for 16 x 256 floats against 32 KB of L1d).
// MC x KC of A is reused for every B micro-panel, so it lives in L2 (144 x 256 floats =
// 144 KB of a 512 KB L2 on Zen, half of it leaves room for B and C streaming through).
// KC x NC of B is shared by all threads and streams from L3. The AVX-512 narrow sizes
// follow BLIS's Skylake-X choices scaled to 12-row tiles; the wide 6 x 64 kernel's
// (KC 512, whose 128 KiB B micro-panel lives in L2, not L1; MC 240; NC 4096) were the
// fastest of a hand sweep on a Sapphire Rapids VM, float32 only: the float64 ones are
// scaled from them and untuned. The bfloat16 kernels' sizes are scaled from the float32
// ones (a bfloat16 element is half as big, so KC doubles for the same bytes) and untuned.
#include "config.hpp"

#include <cstdlib>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "pack.hpp"

namespace fastbp::kernels::gemm_detail {
namespace {

struct Blocking {
  int mr, nr;
  int64_t mc, kc, nc;
};

// clang-format off: a table, aligned by column
//                                   MR  NR   MC   KC    NC
constexpr Blocking kRefF32{          4,  8,  96, 256, 4096};
constexpr Blocking kRefF64{          4,  4,  96, 256, 4096};
constexpr Blocking kAvx2F32{         6, 16, 144, 256, 4080};
constexpr Blocking kAvx2F64{         6,  8,  72, 256, 4080};
constexpr Blocking kAvx512F32{      12, 32, 240, 192, 4096};
constexpr Blocking kAvx512F64{      12, 16, 120, 192, 4096};
constexpr Blocking kAvx512WideF32{   6, 64, 240, 512, 4096};
constexpr Blocking kAvx512WideF64{   6, 32, 120, 512, 4096};
constexpr Blocking kAvx512Bf16{     12, 32, 240, 384, 4096};
constexpr Blocking kAvx512WideBf16{  6, 64, 240, 1024, 4096};
constexpr Blocking kAmxBf16{        32, 32, 256, 1024, 4096};
// clang-format on

static_assert(kAvx512F32.mr * kAvx512F32.nr <= kMaxTile, "edge scratch too small");
static_assert(kAvx512WideF32.mr * kAvx512WideF32.nr <= kMaxTile, "edge scratch too small");
static_assert(kAmxBf16.mr * kAmxBf16.nr <= kMaxTile, "edge scratch too small");

int64_t round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }

template <typename T>
GemmConfig<T> with_override(GemmConfig<T> cfg) {
  const BlockOverride& o = gemm_block_override();
  if (o.set) {
    cfg.mc = round_up(o.mc, cfg.mr);
    cfg.kc = o.kc;
    cfg.nc = round_up(o.nc, cfg.nr);
  }
  return cfg;
}

// A float kernel with pack.hpp's packers applying C (RoundBf16: the portable bfloat16
// path, float32 arithmetic on rounded operands).
template <typename T, const Blocking& B, class C = Copy>
GemmConfig<T> make(const char* name, MicroKernel<T> ukr, EdgeKernel<T> ukr_edge) {
  static_assert(B.mc % B.mr == 0 && B.nc % B.nr == 0, "cache blocks must hold whole tiles");
  GemmConfig<T> cfg{name, ukr,  ukr_edge, pack_a<T, B.mr, C>, pack_b<T, B.nr, C>, B.mr, B.nr,
                    B.mc, B.kc, B.nc};
  cfg.converts = !std::is_same_v<C, Copy>;
  return with_override(cfg);
}

// A kernel on bfloat16 pairs, with its packers; k_align pads each panel's K.
template <const Blocking& B>
GemmConfig<float> make_bf16(const char* name, MicroKernel<float> ukr, EdgeKernel<float> ukr_edge,
                            PackA<float> pack_a_, PackB<float> pack_b_, int k_align) {
  static_assert(B.mc % B.mr == 0 && B.nc % B.nr == 0, "cache blocks must hold whole tiles");
  return with_override(GemmConfig<float>{name, ukr, ukr_edge, pack_a_, pack_b_, B.mr, B.nr, B.mc,
                                         B.kc, B.nc, k_align, 2, true, true});
}

// A path of one kernel, or of a narrow and a wide one split at `wide_from` columns.
template <typename T>
GemmPath<T> one(const GemmConfig<T>* cfg) {
  return {cfg, cfg, 0};
}

[[noreturn]] void not_compiled(Isa isa) {
  throw std::logic_error(std::string("fastbp: gemm path '") + isa_name(isa) +
                         "' is not compiled into this build");
}

BlockOverride parse_blocks(const char* text) {
  BlockOverride o;
  if (text == nullptr || *text == '\0') return o;
  int64_t v[3];
  const char* p = text;
  for (int i = 0; i < 3; ++i) {
    char* end = nullptr;
    const long long x = std::strtoll(p, &end, 10);
    if (end == p || x < 1 || x > (1 << 20) || *end != (i < 2 ? ',' : '\0'))
      throw std::invalid_argument("FASTBP_GEMM_BLOCKS='" + printable(text) +
                                  "' is not MC,KC,NC: three integers from 1 to 1048576");
    v[i] = x;
    p = end + 1;
  }
  o.set = true;
  o.mc = v[0];
  o.kc = v[1];
  o.nc = v[2];
  return o;
}

}  // namespace

const BlockOverride& gemm_block_override() {
  // If parsing throws, the static stays uninitialised and the next call throws again.
  static const BlockOverride o = parse_blocks(std::getenv("FASTBP_GEMM_BLOCKS"));
  return o;
}

template <>
const GemmPath<float>& gemm_path<float>(Isa isa) {
  switch (isa) {
    case Isa::Ref: {
      static const GemmConfig<float> c = make<float, kRefF32>(
          "sgemm_ref_4x8", gemm_ukr_ref<float, 4, 8>, gemm_ukr_ref_edge<float, 4, 8>);
      static const GemmPath<float> path = one(&c);
      return path;
    }
#ifdef FASTBP_HAVE_AVX2
    case Isa::Avx2: {
      static const GemmConfig<float> c =
          make<float, kAvx2F32>("sgemm_avx2_6x16", sgemm_avx2_6x16, sgemm_avx2_6x16_edge);
      static const GemmPath<float> path = one(&c);
      return path;
    }
#endif
#ifdef FASTBP_HAVE_AVX512
    case Isa::Amx:
    case Isa::Avx512Bf16:
    case Isa::Avx512: {
      static const GemmConfig<float> narrow = make<float, kAvx512F32>(
          "sgemm_avx512_12x32", sgemm_avx512_12x32, sgemm_avx512_12x32_edge);
      static const GemmConfig<float> wide = make<float, kAvx512WideF32>(
          "sgemm_avx512_6x64", sgemm_avx512_6x64, sgemm_avx512_6x64_edge);
      static const GemmPath<float> path{&narrow, &wide, 4 * kAvx512WideF32.nr};
      return path;
    }
#endif
    default: not_compiled(isa);
  }
}

template <>
const GemmPath<double>& gemm_path<double>(Isa isa) {
  switch (isa) {
    case Isa::Ref: {
      static const GemmConfig<double> c = make<double, kRefF64>(
          "dgemm_ref_4x4", gemm_ukr_ref<double, 4, 4>, gemm_ukr_ref_edge<double, 4, 4>);
      static const GemmPath<double> path = one(&c);
      return path;
    }
#ifdef FASTBP_HAVE_AVX2
    case Isa::Avx2: {
      static const GemmConfig<double> c =
          make<double, kAvx2F64>("dgemm_avx2_6x8", dgemm_avx2_6x8, dgemm_avx2_6x8_edge);
      static const GemmPath<double> path = one(&c);
      return path;
    }
#endif
#ifdef FASTBP_HAVE_AVX512
    case Isa::Amx:
    case Isa::Avx512Bf16:
    case Isa::Avx512: {
      static const GemmConfig<double> narrow = make<double, kAvx512F64>(
          "dgemm_avx512_12x16", dgemm_avx512_12x16, dgemm_avx512_12x16_edge);
      static const GemmConfig<double> wide = make<double, kAvx512WideF64>(
          "dgemm_avx512_6x32", dgemm_avx512_6x32, dgemm_avx512_6x32_edge);
      static const GemmPath<double> path{&narrow, &wide, 4 * kAvx512WideF64.nr};
      return path;
    }
#endif
    default: not_compiled(isa);
  }
}

const GemmPath<float>& bf16_gemm_path(Isa isa) {
  switch (isa) {
    case Isa::Ref: {
      static const GemmConfig<float> c = make<float, kRefF32, RoundBf16>(
          "bf16gemm_ref_4x8 (float32 kernel, operands rounded)", gemm_ukr_ref<float, 4, 8>,
          gemm_ukr_ref_edge<float, 4, 8>);
      static const GemmPath<float> path = one(&c);
      return path;
    }
#ifdef FASTBP_HAVE_AVX2
    case Isa::Avx2: {
      static const GemmConfig<float> c =
          make<float, kAvx2F32, RoundBf16>("bf16gemm_avx2_6x16 (float32 kernel, operands rounded)",
                                           sgemm_avx2_6x16, sgemm_avx2_6x16_edge);
      static const GemmPath<float> path = one(&c);
      return path;
    }
#endif
#ifdef FASTBP_HAVE_AVX512
    case Isa::Avx512: {
      static const GemmConfig<float> narrow = make<float, kAvx512F32, RoundBf16>(
          "bf16gemm_avx512_12x32 (float32 kernel, operands rounded)", sgemm_avx512_12x32,
          sgemm_avx512_12x32_edge);
      static const GemmConfig<float> wide = make<float, kAvx512WideF32, RoundBf16>(
          "bf16gemm_avx512_6x64 (float32 kernel, operands rounded)", sgemm_avx512_6x64,
          sgemm_avx512_6x64_edge);
      static const GemmPath<float> path{&narrow, &wide, 4 * kAvx512WideF32.nr};
      return path;
    }
#endif
#ifdef FASTBP_HAVE_AVX512_BF16
    case Isa::Avx512Bf16: {
      static const GemmConfig<float> narrow = make_bf16<kAvx512Bf16>(
          "bf16gemm_avx512bf16_12x32", bf16gemm_avx512bf16_12x32, bf16gemm_avx512bf16_12x32_edge,
          bf16_pack_a_pairs12, bf16_pack_b_pairs32, 2);
      static const GemmConfig<float> wide = make_bf16<kAvx512WideBf16>(
          "bf16gemm_avx512bf16_6x64", bf16gemm_avx512bf16_6x64, bf16gemm_avx512bf16_6x64_edge,
          bf16_pack_a_pairs6, bf16_pack_b_pairs64, 2);
      static const GemmPath<float> path{&narrow, &wide, 4 * kAvx512WideBf16.nr};
      return path;
    }
#endif
#ifdef FASTBP_HAVE_AMX
    case Isa::Amx: {
      // A C narrower than a tile runs on vdpbf16ps, whose 12 x 32 tile wastes fewer lanes
      // (AMX builds always have that path: CMake adds AMX only beside it).
      static const GemmConfig<float> wide =
          make_bf16<kAmxBf16>("bf16gemm_amx_32x32", bf16gemm_amx_32x32, bf16gemm_amx_32x32_edge,
                              bf16_pack_a_amx32, bf16_pack_b_amx32, 32);
      static const GemmPath<float> path{bf16_gemm_path(Isa::Avx512Bf16).narrow, &wide, kAmxBf16.nr};
      return path;
    }
#endif
    default: not_compiled(isa);
  }
}

}  // namespace fastbp::kernels::gemm_detail

namespace fastbp::kernels {

void read_gemm_environment() { gemm_detail::gemm_block_override(); }

}  // namespace fastbp::kernels
