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

constexpr int64_t kWorkPerThread = 1 << 16;

}  // namespace

int num_threads() { return g_threads.load(std::memory_order_relaxed); }

void set_num_threads(int n) { g_threads.store(std::max(1, n), std::memory_order_relaxed); }

int pick_threads(int64_t work) {
  const int64_t useful = std::max<int64_t>(1, work / kWorkPerThread);
  return static_cast<int>(std::min<int64_t>(num_threads(), useful));
}

}  // namespace fastbp::kernels
