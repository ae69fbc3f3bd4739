#pragma once
#include <algorithm>
#include <array>
#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace fastbp::kernels {

// The thread count fastbp's parallel regions use. A process-wide setting rather than
// omp_set_num_threads, whose value is per calling thread and so lost across Python threads.
int num_threads();

// The most threads set_num_threads accepts: 4 x the CPUs this process may run on, within
// OpenMP's thread limit (1 without OpenMP).
int max_threads();

// Sets the thread count to n (1 <= n <= max_threads(), else std::invalid_argument) or to
// fewer when the OS cannot start n threads now, and returns the count set. OpenMP ends
// the process when it cannot start a team's thread, so the threads are tried first and
// the calling thread's team is started before the count is used.
int set_num_threads(int64_t n);

// Threads worth using for `work` multiply-adds: small problems stay serial, since
// waking a team costs more than it saves.
int pick_threads(int64_t work);

inline int thread_index() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

inline int team_threads() {
#ifdef _OPENMP
  return omp_get_num_threads();
#else
  return 1;
#endif
}

// Runs body() on a team of `threads`, or straight on the caller when threads <= 1:
// entering even an if(false) parallel region allocates a team, which costs more than
// a small kernel. Inside, thread_index() / team_threads() tell each thread its part.
template <typename F>
void parallel_region(int threads, F&& body) {
  if (threads <= 1) {
    body();
    return;
  }
#pragma omp parallel num_threads(threads)
  body();
}

// Thread i of t runs body(begin, end) on the contiguous range [n*i/t, n*(i+1)/t): the
// same static split for every kernel, so data written by one stays in that core's cache.
template <typename F>
void parallel_for(int64_t n, int threads, F&& body) {
  parallel_region(threads, [&] {
    const int64_t i = thread_index(), t = team_threads();
    body(n * i / t, n * (i + 1) / t);
  });
}

// The sum of body(begin, end) over the ranges of parallel_for, added in thread order so
// the result is the same on every run with the same thread count.
template <typename F>
double parallel_sum(int64_t n, int threads, F&& body) {
  constexpr int kMaxParts = 64;
  std::array<double, kMaxParts> parts{};
  const int used = std::min(threads, kMaxParts);
  int team = 1;
  parallel_region(used, [&] {
    const int64_t i = thread_index(), t = team_threads();
    parts[i] = body(n * i / t, n * (i + 1) / t);
    if (i == 0) team = static_cast<int>(t);
  });
  double total = 0.0;
  for (int i = 0; i < team; ++i) total += parts[i];
  return total;
}

}  // namespace fastbp::kernels
