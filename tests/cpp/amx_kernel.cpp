// The AMX micro-kernel (csrc/kernels/gemm/ukr_amx.cpp) called directly, as the driver
// calls it, on every path of its epilogue: full tiles with alpha 1 and beta 0 or 1 (the
// accumulators start at zero or at C and are stored straight to C), other alphas and
// betas (through the scratch tile), and edge tiles; C with a row stride wider than the
// tile, whose elements outside the tile must stay as they were. Each result is checked
// against alpha * (the product of the rounded operands) + beta * C within the float32
// sums' rounding bound. tests/kernels/test_bfloat16.py compiles it with ukr_amx.cpp and
// the AMX flags and runs it on a CPU with AMX; exit status 0 when every check passes.
#include <sys/syscall.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "kernels/gemm/config.hpp"
#include "kernels/gemm/pack_bf16.hpp"

using namespace fastbp::kernels::gemm_detail;

namespace {

constexpr int kTile = 32;

struct Case {
  int kc;
  float alpha, beta;
  int rows, cols;  // kTile, kTile: the full-tile kernel; fewer: the edge kernel
};

// alpha * A @ B + beta * C0 on rows x cols of a C with row stride ldc, from float32
// operands that the kernel's packers round; returns the number of wrong elements.
int mismatches(const Case& t, std::mt19937& gen) {
  std::normal_distribution<float> normal;
  const int64_t ldc = kTile + 7;
  std::vector<float> a(kTile * static_cast<size_t>(t.kc)), b(a.size());
  for (float& x : a) x = normal(gen);
  for (float& x : b) x = normal(gen);
  const int64_t slots = padded_k(t.kc, 32) / 2;
  std::vector<float> pa(kTile * slots), pb(kTile * slots);
  bf16_pack_a_amx32(false, a.data(), t.kc, 0, t.rows, 0, t.kc, pa.data());
  bf16_pack_b_amx32(false, b.data(), kTile, 0, t.cols, 0, t.kc, pb.data());
  std::vector<float> c0((kTile + 1) * ldc), c;
  for (float& x : c0) x = normal(gen);
  c = c0;
  bf16_amx_configure_tiles();
  if (t.rows == kTile && t.cols == kTile) {
    bf16gemm_amx_32x32(t.kc, t.alpha, pa.data(), 1, kTile, pb.data(), kTile, t.beta, c.data(), ldc);
  } else {
    bf16gemm_amx_32x32_edge(t.kc, t.alpha, pa.data(), 1, kTile, pb.data(), kTile, t.beta, c.data(),
                            ldc, t.rows, t.cols);
  }
  int failures = 0;
  for (int i = 0; i <= kTile; ++i) {
    for (int64_t j = 0; j < ldc; ++j) {
      const size_t at = i * ldc + j;
      if (i >= t.rows || j >= t.cols) {
        failures += c[at] != c0[at];  // outside the tile: untouched, bit for bit
        continue;
      }
      double sum = 0, magnitude = 0;
      for (int p = 0; p < t.kc; ++p) {
        const double term = double(bf16_round(a[i * t.kc + p])) * bf16_round(b[p * kTile + j]);
        sum += term;
        magnitude += std::fabs(term);
      }
      const double want = t.alpha * sum + t.beta * double(c0[at]);
      // float32 sums of exact products, then alpha's product and beta's sum
      const double bound = (2.0 * t.kc + 4) * std::ldexp(1.0, -23) *
                               (std::fabs(t.alpha) * magnitude + std::fabs(t.beta * c0[at])) +
                           1e-30;
      failures += !(std::fabs(c[at] - want) <= bound);
    }
  }
  if (failures != 0)
    std::printf("kc %d alpha %g beta %g rows %d cols %d: %d wrong\n", t.kc, t.alpha, t.beta, t.rows,
                t.cols, failures);
  return failures;
}

}  // namespace

int main() {
  // The OS grants the tile state on request (dispatch.cpp asks the same way).
  constexpr int kReqXcompPerm = 0x1023, kXtiledata = 18;
  if (syscall(SYS_arch_prctl, kReqXcompPerm, kXtiledata) != 0) {
    std::printf("the OS refused the AMX tile state\n");
    return 2;
  }
  std::mt19937 gen(3);
  int failures = 0, cases = 0;
  for (int kc : {1, 32, 33, 100, 1024}) {
    for (float alpha : {1.0f, 0.5f, -2.0f}) {
      for (float beta : {0.0f, 1.0f, 0.25f, -1.0f}) {
        for (auto [rows, cols] : {std::pair{32, 32}, {1, 32}, {32, 17}, {31, 1}, {5, 9}}) {
          failures += mismatches({kc, alpha, beta, rows, cols}, gen);
          ++cases;
        }
      }
    }
  }
  std::printf("amx kernel: %d cases, %d wrong elements\n", cases, failures);
  return failures == 0 ? 0 : 1;
}
