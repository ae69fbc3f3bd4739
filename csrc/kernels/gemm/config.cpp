// The one table of GEMM block sizes, per ISA and dtype.
//
// MR x NR fill the vector registers (see each ukr_<isa>.cpp). KC sets the depth of a
// micro-panel pair: the NR x KC B micro-panel is reused by every A micro-panel of the
// MC block, so it must stay in L1 (16 KB for 16 x 256 floats against 32 KB of L1d).
// MC x KC of A is reused for every B micro-panel, so it lives in L2 (144 x 256 floats =
// 144 KB of a 512 KB L2 on Zen, half of it leaves room for B and C streaming through).
// KC x NC of B is shared by all threads and streams from L3. The AVX-512 sizes follow
// BLIS's Skylake-X choices scaled to 12-row tiles and are not tuned on hardware here.
#include "config.hpp"

#include <stdexcept>

#include "pack.hpp"

namespace fastbp::kernels::gemm_detail {
namespace {

struct Blocking {
  int mr, nr;
  int64_t mc, kc, nc;
};

//                                   MR  NR   MC   KC    NC
constexpr Blocking kRefF32{          4,  8,  96, 256, 4096};
constexpr Blocking kRefF64{          4,  4,  96, 256, 4096};
constexpr Blocking kAvx2F32{         6, 16, 144, 256, 4080};
constexpr Blocking kAvx2F64{         6,  8,  72, 256, 4080};
constexpr Blocking kAvx512F32{      12, 32, 240, 192, 4096};
constexpr Blocking kAvx512F64{      12, 16, 120, 192, 4096};

static_assert(kAvx512F32.mr * kAvx512F32.nr <= kMaxTile, "edge scratch too small");

template <typename T, const Blocking& B>
constexpr GemmConfig<T> make(const char* name, MicroKernel<T> ukr, EdgeKernel<T> ukr_edge) {
  static_assert(B.mc % B.mr == 0 && B.nc % B.nr == 0, "cache blocks must hold whole tiles");
  return {name, ukr, ukr_edge, pack_a<T, B.mr>, pack_b<T, B.nr>, B.mr, B.nr, B.mc, B.kc, B.nc};
}

[[noreturn]] void not_compiled(Isa isa) {
  throw std::logic_error(std::string("fastbp: gemm path '") + isa_name(isa) +
                         "' is not compiled into this build");
}

}  // namespace

template <>
const GemmConfig<float>& gemm_config<float>(Isa isa) {
  static const GemmConfig<float> ref =
      make<float, kRefF32>("sgemm_ref_4x8", gemm_ukr_ref<float, 4, 8>,
                           gemm_ukr_ref_edge<float, 4, 8>);
  switch (isa) {
    case Isa::Ref: return ref;
#ifdef FASTBP_HAVE_AVX2
    case Isa::Avx2: {
      static const GemmConfig<float> c = make<float, kAvx2F32>("sgemm_avx2_6x16", sgemm_avx2_6x16, sgemm_avx2_6x16_edge);
      return c;
    }
#endif
#ifdef FASTBP_HAVE_AVX512
    case Isa::Avx512: {
      static const GemmConfig<float> c =
          make<float, kAvx512F32>("sgemm_avx512_12x32", sgemm_avx512_12x32,
                                 sgemm_avx512_12x32_edge);
      return c;
    }
#endif
    default: not_compiled(isa);
  }
}

template <>
const GemmConfig<double>& gemm_config<double>(Isa isa) {
  static const GemmConfig<double> ref =
      make<double, kRefF64>("dgemm_ref_4x4", gemm_ukr_ref<double, 4, 4>,
                            gemm_ukr_ref_edge<double, 4, 4>);
  switch (isa) {
    case Isa::Ref: return ref;
#ifdef FASTBP_HAVE_AVX2
    case Isa::Avx2: {
      static const GemmConfig<double> c = make<double, kAvx2F64>("dgemm_avx2_6x8", dgemm_avx2_6x8, dgemm_avx2_6x8_edge);
      return c;
    }
#endif
#ifdef FASTBP_HAVE_AVX512
    case Isa::Avx512: {
      static const GemmConfig<double> c =
          make<double, kAvx512F64>("dgemm_avx512_12x16", dgemm_avx512_12x16,
                                  dgemm_avx512_12x16_edge);
      return c;
    }
#endif
    default: not_compiled(isa);
  }
}

}  // namespace fastbp::kernels::gemm_detail
