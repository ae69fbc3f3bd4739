// The bfloat16 panels the AVX512-BF16 and AMX kernels read (csrc/kernels/gemm/
// pack_bf16.hpp), multiplied by scalar emulations of the two instructions, must give the
// product of the rounded operands: a check of the layouts that runs on any CPU.
// Compiled with -mavx512bf16 -mavx512bw it also checks that the kernels' vector packers
// (pack_bf16_avx512.hpp) write the scalar ones' panels bit for bit, on operands with
// NaNs, infinities and subnormals (only run on a CPU with AVX512-BF16).
// tests/test_bfloat16.py compiles and runs it; exit status 0 when every check passes.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/gemm/pack_bf16.hpp"
#if defined(__AVX512BF16__) && defined(__AVX512BW__)
#include "kernels/gemm/pack_bf16_avx512.hpp"
#define FASTBP_TEST_VECTOR_PACKERS 1
#endif

using namespace fastbp::kernels::gemm_detail;

namespace {

float widen(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

// vdpbf16ps on pair panels: slot row s holds K values 2s and 2s+1 of each lane.
double dot_pairs(const uint16_t* a, int mr, const uint16_t* b, int nr, int64_t slots, int i,
                 int j) {
  double acc = 0;
  for (int64_t s = 0; s < slots; ++s)
    for (int h = 0; h < 2; ++h)
      acc += double(widen(a[(s * mr + i) * 2 + h])) * widen(b[(s * nr + j) * 2 + h]);
  return acc;
}

// tdpbf16ps on AMX panels: A rows of 32 K values per block, B pair rows of 32 lanes.
double dot_tiles(const uint16_t* a, const uint16_t* b, int64_t blocks, int i, int j) {
  double acc = 0;
  for (int64_t q = 0; q < blocks; ++q)
    for (int r = 0; r < 16; ++r)
      for (int h = 0; h < 2; ++h)
        acc += double(widen(a[q * 1024 + i * 32 + 2 * r + h])) *
               widen(b[((q * 16 + r) * 32 + j) * 2 + h]);
  return acc;
}

// Products of the scalar panels against the rounded operands' product, every transpose.
int layout_mismatches(std::mt19937& gen) {
  std::normal_distribution<float> normal;
  int failures = 0;
  for (int kc : {1, 2, 3, 31, 32, 33, 64, 65, 100}) {
    for (int ta = 0; ta < 2; ++ta) {
      for (int tb = 0; tb < 2; ++tb) {
        const int m = 29, n = 27;  // fewer lanes than the panels hold: padding is read too
        std::vector<float> a(static_cast<size_t>(m) * kc), b(static_cast<size_t>(n) * kc);
        for (float& x : a) x = normal(gen);
        for (float& x : b) x = normal(gen);
        const int64_t lda = ta ? m : kc, ldb = tb ? kc : n;
        auto a_at = [&](int i, int p) { return ta ? a[p * lda + i] : a[i * lda + p]; };
        auto b_at = [&](int p, int j) { return tb ? b[j * ldb + p] : b[p * ldb + j]; };
        for (bool amx : {false, true}) {
          const int mr = amx ? 32 : 12, nr = 32, align = amx ? 32 : 2;
          const int64_t slots = padded_k(kc, align) / 2;
          const int rows = std::min(m, mr);
          std::vector<float> pa(mr * slots), pb(nr * slots);
          if (amx) {
            pack_a_bf16<32, 32, true, ScalarPanels>(ta, a.data(), lda, 0, rows, 0, kc, pa.data());
            pack_b_bf16<32, 32, ScalarPanels>(tb, b.data(), ldb, 0, n, 0, kc, pb.data());
          } else {
            pack_a_bf16<12, 2, false, ScalarPanels>(ta, a.data(), lda, 0, rows, 0, kc, pa.data());
            pack_b_bf16<32, 2, ScalarPanels>(tb, b.data(), ldb, 0, n, 0, kc, pb.data());
          }
          const auto* a16 = reinterpret_cast<const uint16_t*>(pa.data());
          const auto* b16 = reinterpret_cast<const uint16_t*>(pb.data());
          for (int i = 0; i < mr; ++i) {
            for (int j = 0; j < nr; ++j) {
              double want = 0;
              if (i < rows && j < n)
                for (int p = 0; p < kc; ++p)
                  want += double(bf16_round(a_at(i, p))) * bf16_round(b_at(p, j));
              const double got = amx ? dot_tiles(a16, b16, slots / 16, i, j)
                                     : dot_pairs(a16, mr, b16, nr, slots, i, j);
              if (got != want) ++failures;  // products of bfloat16 are exact in double
            }
          }
        }
      }
    }
  }
  return failures;
}

#ifdef FASTBP_TEST_VECTOR_PACKERS
// Operands drawn from normal values and from every kind of float32 the rounding treats
// apart: NaNs, infinities, values that round past bfloat16's largest, subnormals, and
// one just below 2^-126 (which only the flushing rounding sends to zero).
float draw(std::mt19937& gen) {
  static const uint32_t kSpecial[] = {0x7fc00000u, 0xffc00001u, 0x7f800001u, 0x7f800000u,
                                      0xff800000u, 0x7f7fffffu, 0x00000001u, 0x807fffffu,
                                      0x007fffffu, 0x007f8000u, 0x80000000u, 0x3f808000u};
  std::uniform_int_distribution<int> pick(0, 3 * int(std::size(kSpecial)));
  std::normal_distribution<float> normal;
  const int k = pick(gen);
  if (k >= int(std::size(kSpecial))) return normal(gen);
  float x;
  std::memcpy(&x, &kSpecial[k], sizeof x);
  return x;
}

// Pack op(X) (`lanes` R-lane panels of kc values, both transposes) with both builders
// into buffers primed with the same junk, one panel longer than needed: the bytes must
// agree, junk included.
template <int R, int KALIGN, class PackBoth>
int packer_mismatches(std::mt19937& gen, int lanes, PackBoth pack) {
  int failures = 0;
  for (int kc : {1, 2, 3, 17, 31, 32, 33, 64, 65, 100}) {
    for (int trans = 0; trans < 2; ++trans) {
      std::vector<float> x(static_cast<size_t>(lanes) * kc);
      for (float& v : x) v = draw(gen);
      const int64_t panels = (lanes + R - 1) / R + 1;
      const size_t floats = static_cast<size_t>(panels * R * padded_k(kc, KALIGN) / 2);
      std::vector<float> want(floats, -7.0f), got(floats, -7.0f);
      pack(trans, x.data(), trans ? lanes : kc, lanes, kc, want.data(), got.data());
      if (std::memcmp(want.data(), got.data(), floats * sizeof(float)) != 0) {
        std::printf("vector packer differs: R %d lanes %d kc %d trans %d\n", R, lanes, kc, trans);
        ++failures;
      }
    }
  }
  return failures;
}

// x holds op(A) as rows x kc (trans: kc x rows); pack_b's op(B) is kc x cols, so the
// same x is B^T (trans: B) and pack_b gets the opposite flag.
template <int MR, int KALIGN, bool ROWS>
int pack_a_mismatches(std::mt19937& gen, int rows) {
  return packer_mismatches<MR, KALIGN>(
      gen, rows, [](bool t, const float* x, int64_t ld, int r, int kc, float* want, float* got) {
        pack_a_bf16<MR, KALIGN, ROWS, ScalarPanels>(t, x, ld, 0, r, 0, kc, want);
        pack_a_bf16<MR, KALIGN, ROWS, Avx512Bf16Panels>(t, x, ld, 0, r, 0, kc, got);
      });
}

template <int NR, int KALIGN>
int pack_b_mismatches(std::mt19937& gen, int cols) {
  return packer_mismatches<NR, KALIGN>(
      gen, cols, [](bool t, const float* x, int64_t ld, int c, int kc, float* want, float* got) {
        pack_b_bf16<NR, KALIGN, ScalarPanels>(!t, x, ld, 0, c, 0, kc, want);
        pack_b_bf16<NR, KALIGN, Avx512Bf16Panels>(!t, x, ld, 0, c, 0, kc, got);
      });
}

// Every panel shape the kernels use (config.cpp), with full and partial last panels.
int vector_packer_mismatches(std::mt19937& gen) {
  int failures = 0;
  for (int lanes : {1, 5, 6, 12, 16, 29, 32, 47, 64, 70}) {
    failures += pack_a_mismatches<6, 2, false>(gen, lanes);
    failures += pack_a_mismatches<12, 2, false>(gen, lanes);
    failures += pack_a_mismatches<32, 32, true>(gen, lanes);
    failures += pack_b_mismatches<32, 2>(gen, lanes);
    failures += pack_b_mismatches<64, 2>(gen, lanes);
    failures += pack_b_mismatches<32, 32>(gen, lanes);
  }
  return failures;
}
#endif

}  // namespace

int main() {
  std::mt19937 gen(1);
  int failures = layout_mismatches(gen);
  std::printf("layouts: %d mismatches\n", failures);
#ifdef FASTBP_TEST_VECTOR_PACKERS
  const int vector = vector_packer_mismatches(gen);
  std::printf("vector packers: %d mismatches\n", vector);
  failures += vector;
#endif
  return failures == 0 ? 0 : 1;
}
