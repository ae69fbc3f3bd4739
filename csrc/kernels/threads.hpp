#pragma once
// fastbp's own thread pool. A parallel call is a set of work units that the caller and
// the pool's workers claim one at a time from a shared counter, and the call ends when
// every unit is done, not when every thread has arrived: a worker the OS has
// descheduled (another process holds its core) holds up at most the one unit it
// claimed, and one that never woke claims nothing. Which thread runs a unit never
// changes what the unit computes, so results do not depend on who ran what.
#include <algorithm>
#include <array>
#include <cstdint>
#include <string>

namespace fastbp::kernels {

// The thread count of parallel calls, the caller included: FASTBP_NUM_THREADS, else
// OMP_NUM_THREADS, else the CPUs this process may run on, at most max_threads().
int num_threads();

// The most threads set_num_threads accepts: 4 x the CPUs this process may run on.
int max_threads();

// Sets the thread count to n (1 <= n <= max_threads(), else std::invalid_argument
// worded by thread_count_error), starting or stopping workers, and returns the count
// set: fewer than n when the OS would not start that many threads.
int set_num_threads(int64_t n);

// The one wording of a refused thread count `got` (as text, so the bindings can name a
// Python int beyond int64 in the same words).
std::string thread_count_error(const std::string& got);

// Threads worth using for `work` multiply-adds: one per work_per_thread() of them, so
// problems below twice that stay serial, since handing out units costs more than it saves;
// one inside a unit of a parallel call (a part of a pass split by rows), where the pool
// is busy and a call runs on its caller alone.
int pick_threads(int64_t work);

// The multiply-adds a thread must get to be worth starting (kDefaultWorkPerThread, or
// what set_work_per_thread set: the tuner measures it per machine).
constexpr int64_t kDefaultWorkPerThread = int64_t(1) << 19;
constexpr int64_t kMaxWorkPerThread = int64_t(1) << 40;
int64_t work_per_thread();

// The work of one element of a pass over the gradients (the check, the penalty, the
// update). They were just written by the threads of the backward GEMMs, in contiguous row
// ranges, and a pass with the same static split keeps each range on the core whose cache
// holds it: a serial pass would pull half of them across cores, which costs far more
// than the arithmetic, so threads pay off from small sizes.
constexpr int64_t kCrossCoreCost = 16;

// Sets work_per_thread (1 <= work <= kMaxWorkPerThread, else std::invalid_argument).
// It changes only which calls run on one thread, never a result for a given thread count.
void set_work_per_thread(int64_t work);

namespace threads_detail {
using UnitFn = void (*)(const void* body, int64_t unit);
void run_units(int64_t units, UnitFn fn, const void* body);
}  // namespace threads_detail

// Runs body(unit) once for every unit in [0, units), on up to `threads` threads (the
// caller among them; straight on the caller when threads <= 1 or units <= 1, or when
// the pool is busy with another caller's call). Units may run in any order and at once.
template <typename F>
void parallel_units(int64_t units, int threads, const F& body) {
  if (threads <= 1 || units <= 1) {
    for (int64_t u = 0; u < units; ++u) body(u);
    return;
  }
  // Every awake worker may claim units: `units` bounds how many threads find work.
  threads_detail::run_units(
      units, [](const void* b, int64_t u) { (*static_cast<const F*>(b))(u); }, &body);
}

// body(begin, end) on `threads` contiguous near-equal ranges of [0, n).
template <typename F>
void parallel_for(int64_t n, int threads, const F& body) {
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(threads, n));
  parallel_units(parts, threads, [&](int64_t i) { body(n * i / parts, n * (i + 1) / parts); });
}

// The sum of body(begin, end) over the ranges of parallel_for, added in range order so
// the result is the same on every run with the same thread count.
template <typename F>
double parallel_sum(int64_t n, int threads, const F& body) {
  constexpr int kMaxParts = 64;
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>({threads, n, kMaxParts}));
  std::array<double, kMaxParts> sums{};
  parallel_units(parts, threads,
                 [&](int64_t i) { sums[i] = body(n * i / parts, n * (i + 1) / parts); });
  double total = 0.0;
  for (int64_t i = 0; i < parts; ++i) total += sums[i];
  return total;
}

}  // namespace fastbp::kernels
