#include "peak.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <vector>

#include "dispatch.hpp"
#include "gemm/config.hpp"
#include "threads.hpp"

namespace fastbp::kernels {
namespace {

using peak_detail::PeakLoop;

// A timed run lasts about this long; the best of kTimedRuns counts, since load from
// elsewhere only ever slows a run.
constexpr double kTimedSeconds = 0.1;
constexpr int kTimedRuns = 3;
// The calibration doubles its iterations until a run lasts this long (which also brings
// the core to the frequency it holds under these instructions).
constexpr double kCalibrationSeconds = 0.02;

// The float32 loop of `isa`: the vector width of its float32 GEMM kernels.
std::optional<PeakLoop> fma_loop(Isa isa) {
  switch (isa) {
#ifdef FASTBP_HAVE_AVX2
    case Isa::Avx2: return peak_detail::fma_ymm_loop();
#endif
#ifdef FASTBP_HAVE_AVX512
    case Isa::Avx512:
    case Isa::Avx512Bf16:
    case Isa::Amx: return peak_detail::fma_zmm_loop();
#endif
    default: return std::nullopt;  // ref: portable C++, no one instruction to loop on
  }
}

// The bfloat16 loop of `isa`: the instruction of its bfloat16 GEMM's (wide) kernel.
std::optional<PeakLoop> bf16_loop(Isa isa) {
  switch (isa) {
#ifdef FASTBP_HAVE_AVX512_BF16
    case Isa::Avx512Bf16: return peak_detail::dpbf16_zmm_loop();
#endif
#ifdef FASTBP_HAVE_AMX
    case Isa::Amx: return peak_detail::amx_bf16_loop();
#endif
    default: return std::nullopt;  // the float32 unit on rounded operands
  }
}

// The float32 GEMM's wide micro-kernel on the path in use.
const gemm_detail::GemmConfig<float>& wide_kernel() {
  return *gemm_detail::gemm_path<float>(active_isa()).wide;
}

// Bytes of the kernel loop's A and B panels together: at most half the smallest L1d
// (32 KiB) beside the C tile.
constexpr int64_t kPanelBytes = 24 * 1024;

// The depth of the kernel loop's calls: as deep as kPanelBytes allows, in whole steps of 8.
int64_t kernel_depth(const gemm_detail::GemmConfig<float>& k) {
  return std::max<int64_t>(8, kPanelBytes / int64_t(sizeof(float) * (k.mr + k.nr)) / 8 * 8);
}

// The kernel loop's run: `iterations` calls on the same panels, each adding to C. The
// operands are 2^-10, so C grows by kc * 2^-20 a call: never near overflow.
float kernel_run(int64_t iterations) {
  const gemm_detail::GemmConfig<float>& k = wide_kernel();
  const int64_t kc = kernel_depth(k), a_size = k.mr * kc, b_size = kc * k.nr;
  const size_t count = static_cast<size_t>(a_size + b_size + k.mr * k.nr);
  std::vector<float> storage(count + 16, 1.0f / 1024);
  // panels start on a 64-byte line, as the GEMM's scratch buffers do
  float* const a =
      storage.data() + (16 - reinterpret_cast<uintptr_t>(storage.data()) / 4 % 16) % 16;
  float* const b = a + a_size;
  float* const c = b + b_size;
  std::fill(c, c + k.mr * k.nr, 0.0f);
  for (int64_t i = 0; i < iterations; ++i) k.ukr(kc, 1.0f, a, 1, k.mr, b, k.nr, 1.0f, c, k.nr);
  return c[0];
}

PeakLoop kernel_loop() {
  const gemm_detail::GemmConfig<float>& k = wide_kernel();
  return {k.name, 2.0 * k.mr * k.nr * double(kernel_depth(k)), kernel_run};
}

// Where the loops' results go, so that no run can be left out.
std::atomic<float> g_sink{0.0f};

// Wall seconds of `threads` pool threads each running `iterations` of the loop at once.
double seconds_on(const PeakLoop& loop, int64_t iterations, int threads) {
  std::vector<float> results(static_cast<size_t>(threads));
  const auto start = std::chrono::steady_clock::now();
  parallel_units(threads, threads, [&](int64_t t) { results[t] = loop.run(iterations); });
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  for (float r : results) g_sink.store(g_sink.load(std::memory_order_relaxed) + r);
  return took.count();
}

// Iterations of a run of about kTimedSeconds on one thread.
int64_t calibrated_iterations(const PeakLoop& loop) {
  int64_t iterations = 1024;
  double seconds = seconds_on(loop, iterations, 1);
  while (seconds < kCalibrationSeconds) {
    iterations *= 2;
    seconds = seconds_on(loop, iterations, 1);
  }
  return std::max<int64_t>(1, static_cast<int64_t>(iterations * kTimedSeconds / seconds));
}

}  // namespace

std::string peak_threads_error(const std::string& got) {
  return "threads must be in [1, " + std::to_string(num_threads()) +
         "] (fastbp's thread count: the pool runs one loop per thread), got " + got;
}

std::optional<Peak> measure_peak(PeakUnit unit, int64_t threads) {
  if (threads < 1 || threads > num_threads())
    throw std::invalid_argument(peak_threads_error(std::to_string(threads)));
  const std::optional<PeakLoop> loop = unit == PeakUnit::Float32    ? fma_loop(active_isa())
                                       : unit == PeakUnit::Bfloat16 ? bf16_loop(active_isa())
                                                                    : kernel_loop();
  if (!loop) return std::nullopt;
  const int n = static_cast<int>(threads);
  const int64_t iterations = calibrated_iterations(*loop);
  double best = 0.0;
  for (int run = 0; run < kTimedRuns; ++run) {
    const double seconds = seconds_on(*loop, iterations, n);
    best = std::max(best, loop->flops_per_iteration * double(iterations) * n / seconds / 1e9);
  }
  return Peak{loop->instruction, best, n};
}

}  // namespace fastbp::kernels
