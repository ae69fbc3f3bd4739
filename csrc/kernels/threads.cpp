#include "threads.hpp"

#include <atomic>
#include <future>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace fastbp::kernels {
namespace {

int cpus() {
#ifdef _OPENMP
  return std::max(1, omp_get_num_procs());  // the CPUs of this process's affinity mask
#else
  return 1;
#endif
}

int default_threads() {
#ifdef _OPENMP
  return std::clamp(omp_get_max_threads(), 1, max_threads());
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

// How many threads, the caller included, the OS starts now out of n: n - 1 threads with
// default attributes (the stacks OpenMP's would get), all alive at once as a team is.
int startable_threads(int n) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::vector<std::thread> started;
  try {
    for (int i = 1; i < n; ++i) started.emplace_back([released] { released.wait(); });
  } catch (const std::system_error&) {
    // the OS refused one: settle for the threads it did start
  }
  release.set_value();
  for (std::thread& t : started) t.join();
  return static_cast<int>(started.size()) + 1;
}

}  // namespace

int num_threads() { return g_threads.load(std::memory_order_relaxed); }

int max_threads() {
#ifdef _OPENMP
  return std::max(1, std::min(4 * cpus(), omp_get_thread_limit()));
#else
  return 1;
#endif
}

int set_num_threads(int64_t n) {
  const int most = max_threads();
  if (n < 1 || n > most)
    throw std::invalid_argument("number of threads must be in [1, " + std::to_string(most) +
                                "] (4 x the " + std::to_string(cpus()) +
                                " CPUs this process may use), got " + std::to_string(n));
  const int got = startable_threads(static_cast<int>(n));
  parallel_region(got, [] {});  // OpenMP starts the calling thread's team now
  g_threads.store(got, std::memory_order_relaxed);
  return got;
}

int pick_threads(int64_t work) {
  const int64_t useful = std::max<int64_t>(1, work / kWorkPerThread);
  return static_cast<int>(std::min<int64_t>(num_threads(), useful));
}

}  // namespace fastbp::kernels
