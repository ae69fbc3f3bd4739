// The bfloat16 panels the AVX512-BF16 and AMX kernels read (csrc/kernels/gemm/
// pack_bf16.hpp), multiplied by scalar emulations of the two instructions, must give the
// product of the rounded operands: a check of the layouts that runs on any CPU.
// tests/test_bfloat16.py compiles and runs it; exit status 0 when every product matches.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/gemm/pack_bf16.hpp"

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

}  // namespace

int main() {
  std::mt19937 gen(1);
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
            pack_a_bf16<32, 32, true>(ta, a.data(), lda, 0, rows, 0, kc, pa.data());
            pack_b_bf16<32, 32>(tb, b.data(), ldb, 0, n, 0, kc, pb.data());
          } else {
            pack_a_bf16<12, 2, false>(ta, a.data(), lda, 0, rows, 0, kc, pa.data());
            pack_b_bf16<32, 2>(tb, b.data(), ldb, 0, n, 0, kc, pb.data());
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
  std::printf("%d mismatches\n", failures);
  return failures == 0 ? 0 : 1;
}
