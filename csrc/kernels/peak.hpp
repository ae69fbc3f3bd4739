#pragma once
// The machine's measured peak: a plain loop of the multiply-add instruction the GEMM
// kernels use on the SIMD path in use, with enough independent accumulators to cover its
// latency on every port, and no loads or stores inside. It bounds what a product can
// reach here, and the benchmarks quote their shares of it.
#include <cstdint>
#include <optional>
#include <string>

namespace fastbp::kernels {

// The two units a product can run on: float32 multiply-adds (the float32 GEMM's
// vector width) and the bfloat16 dot-product unit. And Float32Kernel: the float32 GEMM's
// wide micro-kernel itself, called again and again (beta 1, as on a product's later K
// blocks) on packed A and B panels and a C tile that stay in L1, so that it runs its
// loads and broadcasts beside the multiply-adds and nothing waits on memory: the most a
// float32 product with that kernel can reach here.
enum class PeakUnit { Float32, Bfloat16, Float32Kernel };

struct Peak {
  const char* instruction;  // as the disassembly names it: "vfmadd231ps zmm", ...
  double gflops;            // all threads together
  int threads;
};

// The peak of `unit` on the path in use, on `threads` threads of the pool at once (each
// running the loop), or nullopt when the path has no such instruction: the reference path
// (portable C++ kernels), and bfloat16 but on avx512_bf16 and amx; Float32Kernel runs on
// every path. About 0.35 s.
// Throws std::invalid_argument (worded by peak_threads_error) unless
// 1 <= threads <= num_threads().
std::optional<Peak> measure_peak(PeakUnit unit, int64_t threads);

// The one wording of a refused thread count `got` (as text, so the bindings can name a
// Python int beyond int64 in the same words).
std::string peak_threads_error(const std::string& got);

namespace peak_detail {

// One ISA's loop: run(n) issues the instruction n times on every accumulator and returns
// a value made from them (so that the loop cannot be left out).
struct PeakLoop {
  const char* instruction;
  double flops_per_iteration;
  float (*run)(int64_t iterations);
};

// Each in its ISA's file (peak_<isa>.cpp), compiled with that ISA's flags alone.
PeakLoop fma_ymm_loop();     // peak_avx2.cpp
PeakLoop fma_zmm_loop();     // peak_avx512.cpp
PeakLoop dpbf16_zmm_loop();  // peak_avx512_bf16.cpp
PeakLoop amx_bf16_loop();    // peak_amx.cpp

// Steps `Chains` independent accumulators `iterations` times each: acc = step(acc). The
// inner loop is unrolled so that each chain stays in its own register.
template <int Chains, typename V, typename Step>
void step_chains(int64_t iterations, V (&acc)[Chains], Step step) {
  for (int64_t i = 0; i < iterations; ++i) {
#pragma GCC unroll 16
    for (int c = 0; c < Chains; ++c) acc[c] = step(acc[c]);
  }
}

}  // namespace peak_detail
}  // namespace fastbp::kernels
