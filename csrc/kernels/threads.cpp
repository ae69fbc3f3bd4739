#include "threads.hpp"

#include <atomic>

namespace fastbp::kernels {
namespace {

int default_threads() {
#ifdef _OPENMP
  return std::max(1, omp_get_max_threads());
#else
  return 1;
#endif
}

std::atomic<int> g_threads{default_threads()};

// A thread earns its place at about half a million multiply-adds (some 30 us on one
// core). Waking a team costs ~1 us on an idle machine, but on a busy one each parallel
// region can wait a scheduler slice (milliseconds) for a descheduled worker; keeping
// the small kernels of small networks serial bounds that exposure.
constexpr int64_t kWorkPerThread = 1 << 19;

}  // namespace

int num_threads() { return g_threads.load(std::memory_order_relaxed); }

void set_num_threads(int n) { g_threads.store(std::max(1, n), std::memory_order_relaxed); }

int pick_threads(int64_t work) {
  const int64_t useful = std::max<int64_t>(1, work / kWorkPerThread);
  return static_cast<int>(std::min<int64_t>(num_threads(), useful));
}

}  // namespace fastbp::kernels
