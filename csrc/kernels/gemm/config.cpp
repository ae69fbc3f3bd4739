// The GEMM's kernels per ISA and dtype, and the one table of their block sizes: the
// fallback where the CPU's caches cannot be read (else blocking.cpp derives the blocks
// from them), or FASTBP_GEMM_BLOCKS=table.
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
// ones (a bfloat16 element is half as big, so KC doubles for the same bytes) and untuned,
// but for the AMX kernel's: its KC of 2048 stores each C tile once on products up to
// 2048 deep (C tiles coming back from memory between K blocks cost it more than B panels
// read from L2), and its MC of 128 keeps that A block at 512 KiB, growing as K shortens
// (GemmConfig::mc_fills_kc); against MC 256 and KC 1024 on a Xeon VM with AMX, products
// 2048-4096 wide and deep took 0.86-0.95x the time, those of 1024 the same.
#include "config.hpp"

#include <cstdlib>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "../gemm.hpp"
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
constexpr Blocking kAmxBf16{        32, 32, 128, 2048, 4096};
// clang-format on

static_assert(kAvx512F32.mr * kAvx512F32.nr <= kMaxTile, "edge scratch too small");
static_assert(kAvx512WideF32.mr * kAvx512WideF32.nr <= kMaxTile, "edge scratch too small");
static_assert(kAmxBf16.mr * kAmxBf16.nr <= kMaxTile, "edge scratch too small");

int64_t round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }

// How a kernel's blocks are derived: by the analytic model, which describes a kernel
// that keeps its C tile in vector registers and reads A and B through L1, or only from
// the table (the AMX kernel, whose tile loads read 1 KiB blocks of A and B from L1 or
// L2 alike: the model's KC of 320 ran at 0.76-0.87x a KC of 1024 on squares of
// 512-2048).
enum class Model { Analytic, TableOnly };

// The cache blocks a kernel starts with: FASTBP_GEMM_BLOCKS's, else the model's for
// this CPU, else the table's. `k_bytes`: bytes per row and K step of a packed panel.
template <typename T>
GemmConfig<T> with_blocks(GemmConfig<T> cfg, const Blocking& b, int64_t k_bytes,
                          Model model = Model::Analytic) {
  cfg.table = {b.mc, b.kc, b.nc};
  if (model == Model::Analytic)
    cfg.analytic = analytic_blocks(cpu_caches(), {cfg.mr, cfg.nr, k_bytes, cfg.k_align}, b.nc);
  const BlockOverride& o = gemm_block_override();
  if (o.set) {
    set_blocks(cfg, {o.mc, o.kc, o.nc}, BlockSource::Environment);
  } else if (cfg.analytic && !o.table) {
    set_blocks(cfg, *cfg.analytic, BlockSource::Analytic);
  } else {
    set_blocks(cfg, cfg.table, BlockSource::Table);
  }
  return cfg;
}

// A float kernel with pack.hpp's packers applying C (RoundBf16: the portable bfloat16
// path, float32 arithmetic on rounded operands): the baseline's copies on the Ref path,
// else those its ISA's file compiled (`packers`).
// `dot`: its ISA's column kernel, for last columns up to half a vector of `lanes` (a
// tile's vector fuller than that measured as fast).
template <typename T, const Blocking& B, class C = Copy>
GemmConfig<T> make(const char* name, MicroKernel<T> ukr, EdgeKernel<T> ukr_edge,
                   Packers<T> packers = {pack_a<T, B.mr, C>, pack_b<T, B.nr, C>},
                   DotKernel<T> dot = nullptr, int lanes = 0) {
  static_assert(B.mc % B.mr == 0 && B.nc % B.nr == 0, "cache blocks must hold whole tiles");
  GemmConfig<T> cfg{name, ukr, ukr_edge, packers.a, packers.b, B.mr, B.nr};
  cfg.converts = !std::is_same_v<C, Copy>;
  cfg.dot = dot;
  cfg.dot_cols = lanes / 2;
  return with_blocks(cfg, B, sizeof(T));
}

// A kernel on bfloat16 pairs, with its packers; k_align pads each panel's K.
template <const Blocking& B>
GemmConfig<float> make_bf16(const char* name, MicroKernel<float> ukr, EdgeKernel<float> ukr_edge,
                            PackA<float> pack_a_, PackB<float> pack_b_, int k_align,
                            Model model = Model::Analytic) {
  static_assert(B.mc % B.mr == 0 && B.nc % B.nr == 0, "cache blocks must hold whole tiles");
  GemmConfig<float> cfg{name, ukr, ukr_edge, pack_a_, pack_b_, B.mr, B.nr};
  cfg.k_align = k_align;
  cfg.k_per_slot = 2;
  cfg.converts = true;
  cfg.flushes_subnormals = true;
  return with_blocks(cfg, B, sizeof(float) / 2, model);
}

// A path of one kernel, or of a narrow and a wide one split at `wide_from` columns.
template <typename T>
GemmPath<T> one(GemmConfig<T>* cfg) {
  return {cfg, cfg, 0};
}

[[noreturn]] void not_compiled(Isa isa) {
  throw std::logic_error(std::string("fastbp: gemm path '") + isa_name(isa) +
                         "' is not compiled into this build");
}

BlockOverride parse_blocks(const char* text) {
  BlockOverride o;
  if (text == nullptr || *text == '\0') return o;
  if (std::string(text) == "table") {
    o.table = true;
    return o;
  }
  int64_t v[3];
  const char* p = text;
  for (int i = 0; i < 3; ++i) {
    char* end = nullptr;
    const long long x = std::strtoll(p, &end, 10);
    if (end == p || x < 1 || x > (1 << 20) || *end != (i < 2 ? ',' : '\0'))
      throw std::invalid_argument(
          "FASTBP_GEMM_BLOCKS='" + printable(text) +
          "' is not MC,KC,NC (three integers from 1 to 1048576) or 'table'");
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

const char* block_source_name(BlockSource source) {
  switch (source) {
    case BlockSource::Table: return "table";
    case BlockSource::Analytic: return "analytic";
    case BlockSource::Tuned: return "tuned";
    case BlockSource::Environment: return "environment";
  }
  return "unknown";
}

template <typename T>
void set_blocks(GemmConfig<T>& cfg, const Blocks& b, BlockSource source) {
  cfg.mc = round_up(b.mc, cfg.mr);
  cfg.kc = b.kc;
  cfg.nc = round_up(b.nc, cfg.nr);
  cfg.blocks_from = source;
}
template void set_blocks(GemmConfig<float>&, const Blocks&, BlockSource);
template void set_blocks(GemmConfig<double>&, const Blocks&, BlockSource);

const BlockOverride& gemm_block_override() {
  // If parsing throws, the static stays uninitialised and the next call throws again.
  static const BlockOverride o = parse_blocks(std::getenv("FASTBP_GEMM_BLOCKS"));
  return o;
}

template <>
GemmPath<float>& gemm_path<float>(Isa isa) {
  switch (isa) {
    case Isa::Ref: {
      static GemmConfig<float> c = make<float, kRefF32>("sgemm_ref_4x8", gemm_ukr_ref<float, 4, 8>,
                                                        gemm_ukr_ref_edge<float, 4, 8>);
      static GemmPath<float> path = one(&c);
      return path;
    }
#ifdef FASTBP_HAVE_AVX2
    case Isa::Avx2: {
      static GemmConfig<float> c =
          make<float, kAvx2F32>("sgemm_avx2_6x16", sgemm_avx2_6x16, sgemm_avx2_6x16_edge,
                                avx2_packers<float, 6, 16, Copy>(), dot_avx2<float>, 8);
      static GemmPath<float> path = one(&c);
      return path;
    }
#endif
#ifdef FASTBP_HAVE_AVX512
    case Isa::Amx:
    case Isa::Avx512Bf16:
    case Isa::Avx512: {
      static GemmConfig<float> narrow =
          make<float, kAvx512F32>("sgemm_avx512_12x32", sgemm_avx512_12x32, sgemm_avx512_12x32_edge,
                                  avx512_packers<float, 12, 32, Copy>(), dot_avx512<float>, 16);
      static GemmConfig<float> wide = make<float, kAvx512WideF32>(
          "sgemm_avx512_6x64", sgemm_avx512_6x64, sgemm_avx512_6x64_edge,
          avx512_packers<float, 6, 64, Copy>(), dot_avx512<float>, 16);
      static GemmPath<float> path{&narrow, &wide, 4 * kAvx512WideF32.nr};
      return path;
    }
#endif
    default: not_compiled(isa);
  }
}

template <>
GemmPath<double>& gemm_path<double>(Isa isa) {
  switch (isa) {
    case Isa::Ref: {
      static GemmConfig<double> c = make<double, kRefF64>(
          "dgemm_ref_4x4", gemm_ukr_ref<double, 4, 4>, gemm_ukr_ref_edge<double, 4, 4>);
      static GemmPath<double> path = one(&c);
      return path;
    }
#ifdef FASTBP_HAVE_AVX2
    case Isa::Avx2: {
      static GemmConfig<double> c =
          make<double, kAvx2F64>("dgemm_avx2_6x8", dgemm_avx2_6x8, dgemm_avx2_6x8_edge,
                                 avx2_packers<double, 6, 8, Copy>(), dot_avx2<double>, 4);
      static GemmPath<double> path = one(&c);
      return path;
    }
#endif
#ifdef FASTBP_HAVE_AVX512
    case Isa::Amx:
    case Isa::Avx512Bf16:
    case Isa::Avx512: {
      static GemmConfig<double> narrow = make<double, kAvx512F64>(
          "dgemm_avx512_12x16", dgemm_avx512_12x16, dgemm_avx512_12x16_edge,
          avx512_packers<double, 12, 16, Copy>(), dot_avx512<double>, 8);
      static GemmConfig<double> wide = make<double, kAvx512WideF64>(
          "dgemm_avx512_6x32", dgemm_avx512_6x32, dgemm_avx512_6x32_edge,
          avx512_packers<double, 6, 32, Copy>(), dot_avx512<double>, 8);
      static GemmPath<double> path{&narrow, &wide, 4 * kAvx512WideF64.nr};
      return path;
    }
#endif
    default: not_compiled(isa);
  }
}

GemmPath<float>& bf16_gemm_path(Isa isa) {
  switch (isa) {
    case Isa::Ref: {
      static GemmConfig<float> c = make<float, kRefF32, RoundBf16>(
          "bf16gemm_ref_4x8 (float32 kernel, operands rounded)", gemm_ukr_ref<float, 4, 8>,
          gemm_ukr_ref_edge<float, 4, 8>);
      static GemmPath<float> path = one(&c);
      return path;
    }
#ifdef FASTBP_HAVE_AVX2
    case Isa::Avx2: {
      static GemmConfig<float> c = make<float, kAvx2F32, RoundBf16>(
          "bf16gemm_avx2_6x16 (float32 kernel, operands rounded)", sgemm_avx2_6x16,
          sgemm_avx2_6x16_edge, avx2_packers<float, 6, 16, RoundBf16>());
      static GemmPath<float> path = one(&c);
      return path;
    }
#endif
#ifdef FASTBP_HAVE_AVX512
    case Isa::Avx512: {
      static GemmConfig<float> narrow = make<float, kAvx512F32, RoundBf16>(
          "bf16gemm_avx512_12x32 (float32 kernel, operands rounded)", sgemm_avx512_12x32,
          sgemm_avx512_12x32_edge, avx512_packers<float, 12, 32, RoundBf16>());
      static GemmConfig<float> wide = make<float, kAvx512WideF32, RoundBf16>(
          "bf16gemm_avx512_6x64 (float32 kernel, operands rounded)", sgemm_avx512_6x64,
          sgemm_avx512_6x64_edge, avx512_packers<float, 6, 64, RoundBf16>());
      static GemmPath<float> path{&narrow, &wide, 4 * kAvx512WideF32.nr};
      return path;
    }
#endif
#ifdef FASTBP_HAVE_AVX512_BF16
    case Isa::Avx512Bf16: {
      static GemmConfig<float> narrow = make_bf16<kAvx512Bf16>(
          "bf16gemm_avx512bf16_12x32", bf16gemm_avx512bf16_12x32, bf16gemm_avx512bf16_12x32_edge,
          bf16_pack_a_pairs12, bf16_pack_b_pairs32, 2);
      static GemmConfig<float> wide = make_bf16<kAvx512WideBf16>(
          "bf16gemm_avx512bf16_6x64", bf16gemm_avx512bf16_6x64, bf16gemm_avx512bf16_6x64_edge,
          bf16_pack_a_pairs6, bf16_pack_b_pairs64, 2);
      static GemmPath<float> path{&narrow, &wide, 4 * kAvx512WideBf16.nr};
      return path;
    }
#endif
#ifdef FASTBP_HAVE_AMX
    case Isa::Amx: {
      // A C narrower than a tile runs on vdpbf16ps, whose 12 x 32 tile wastes fewer lanes
      // (AMX builds always have that path: CMake adds AMX only beside it).
      static GemmConfig<float> wide = [] {
        auto cfg =
            make_bf16<kAmxBf16>("bf16gemm_amx_32x32", bf16gemm_amx_32x32, bf16gemm_amx_32x32_edge,
                                bf16_pack_a_amx32, bf16_pack_b_amx32, 32, Model::TableOnly);
        cfg.prepare = bf16_amx_configure_tiles;
        cfg.mc_fills_kc = true;
        return cfg;
      }();
      static GemmPath<float> path{bf16_gemm_path(Isa::Avx512Bf16).narrow, &wide, kAmxBf16.nr};
      return path;
    }
#endif
    default: not_compiled(isa);
  }
}

}  // namespace fastbp::kernels::gemm_detail

namespace fastbp::kernels {
namespace {

using gemm_detail::BlockSource;
using gemm_detail::GemmConfig;
using gemm_detail::GemmPath;

constexpr int64_t kMaxBlock = int64_t{1} << 20;

// Calls f with the active path of `dtype`.
template <class F>
decltype(auto) with_path(const std::string& dtype, F&& f) {
  if (dtype == "float32") return f(gemm_detail::gemm_path<float>(active_isa()));
  if (dtype == "float64") return f(gemm_detail::gemm_path<double>(active_isa()));
  if (dtype == "bfloat16") return f(gemm_detail::bf16_gemm_path(active_isa()));
  throw std::invalid_argument("unknown GEMM dtype '" + printable(dtype) +
                              "'; expected float32, float64 or bfloat16");
}

template <typename T>
GemmKernelInfo kernel_info(const GemmConfig<T>& cfg) {
  GemmKernelInfo info{cfg.name,
                      cfg.mr,
                      cfg.nr,
                      {cfg.mc, cfg.kc, cfg.nc},
                      {cfg.table.mc, cfg.table.kc, cfg.table.nc}};
  info.has_analytic = cfg.analytic.has_value();
  if (cfg.analytic) info.analytic = {cfg.analytic->mc, cfg.analytic->kc, cfg.analytic->nc};
  info.blocks_from = block_source_name(cfg.blocks_from);
  return info;
}

BlockSource parse_source(const std::string& source) {
  for (BlockSource s : {BlockSource::Table, BlockSource::Analytic, BlockSource::Tuned})
    if (source == block_source_name(s)) return s;
  throw std::invalid_argument("unknown block source '" + printable(source) +
                              "'; expected table, analytic or tuned");
}

}  // namespace

void read_gemm_environment() {
  gemm_detail::gemm_block_override();
  for (const char* dtype : kGemmDtypes) gemm_path_info(dtype);
}

GemmPathInfo gemm_path_info(const std::string& dtype) {
  return with_path(dtype, [](const auto& path) {
    GemmPathInfo info{{kernel_info(*path.narrow)}, path.wide_from};
    if (path.wide != path.narrow) info.kernels.push_back(kernel_info(*path.wide));
    return info;
  });
}

void set_gemm_blocks(const std::string& dtype, const std::string& kernel, const GemmBlocks& blocks,
                     const std::string& source) {
  const BlockSource from = parse_source(source);
  for (int64_t v : {blocks.mc, blocks.kc, blocks.nc})
    if (v < 1 || v > kMaxBlock)
      throw std::invalid_argument("GEMM block size " + std::to_string(v) +
                                  " is out of range; expected 1 to 1048576");
  with_path(dtype, [&](auto& path) {
    for (auto* cfg : {path.narrow, path.wide}) {
      if (kernel == cfg->name) {
        gemm_detail::set_blocks(*cfg, {blocks.mc, blocks.kc, blocks.nc}, from);
        return;
      }
    }
    throw std::invalid_argument(
        "no GEMM kernel '" + printable(kernel) + "' for " + dtype + " on this path; it has " +
        path.narrow->name +
        (path.wide != path.narrow ? std::string(" and ") + path.wide->name : std::string()));
  });
}

void set_gemm_wide_from(const std::string& dtype, int64_t n) {
  if (n < 0 || n > kMaxBlock)
    throw std::invalid_argument("the wide kernel's width " + std::to_string(n) +
                                " is out of range; expected 0 to 1048576");
  with_path(dtype, [&](auto& path) {
    if (path.wide == path.narrow)
      throw std::invalid_argument(std::string("the ") + dtype + " path has one kernel (" +
                                  path.narrow->name + "), no wide one to choose from");
    path.wide_from = n;
  });
}

}  // namespace fastbp::kernels
