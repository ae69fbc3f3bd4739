#include "threads.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#endif
#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace fastbp::kernels {
namespace {

int cpus() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
#endif
  return std::max(1u, std::thread::hardware_concurrency());
}

// A positive count from the environment variable `name`, or 0. OMP_NUM_THREADS may be a
// list (one count per nesting level): its first entry is the one that applies.
int64_t env_count(const char* name) {
  const char* text = std::getenv(name);
  if (text == nullptr) return 0;
  char* end = nullptr;
  const long long n = std::strtoll(text, &end, 10);
  return end != text && n > 0 ? n : 0;
}

int default_threads() {
  int64_t n = env_count("FASTBP_NUM_THREADS");
  if (n == 0) n = env_count("OMP_NUM_THREADS");
  if (n == 0) n = cpus();
  return static_cast<int>(std::min<int64_t>(n, max_threads()));
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

// How long a worker polls for the next call before it sleeps. Calls within a training
// step follow each other within microseconds, so the workers stay awake across a step;
// an idle pool sleeps and costs nothing.
constexpr auto kSpinTime = std::chrono::microseconds(100);

std::atomic<bool> g_restart_after_fork{false};

// Units of a parallel call this thread is running: a call made from inside one finds the
// pool busy and runs on this thread alone, so pick_threads plans it for one.
thread_local int t_units_running = 0;

// One parallel call at a time. The call word packs a generation (high bits) with the
// next unclaimed unit (low kUnitBits bits): a unit is claimed by a compare-and-swap of
// the whole word, so a worker that read an earlier call's word can never claim a unit
// of a later one. Every access is sequentially consistent: a worker that sees a later
// call's fields (units_, fn_, body_) also sees that call's generation in the word.
class Pool {
 public:
  static constexpr int kUnitBits = 24;
  static constexpr int64_t kClosed = (int64_t(1) << kUnitBits) - 1;  // no unit has this number
  static constexpr int64_t kMaxUnits = kClosed - 1;
  static constexpr uint64_t kGenMask = (uint64_t(1) << (64 - kUnitBits)) - 1;

  // The thread count, the caller included.
  int threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Starts or stops workers so that n threads run calls; returns the count reached.
  int resize(int n) {
    while (busy_.exchange(true)) std::this_thread::yield();  // wait out a running call
    if (threads() != n) {
      stop_workers();
      try {
        while (threads() < n) workers_.emplace_back([this] { work(); });
      } catch (const std::system_error&) {
        // the OS would not start another thread: keep those it did
      }
    }
    busy_.store(false);
    return threads();
  }

  // A forked child has only the thread that forked: forget the others (their memory is
  // the parent's) and clear the state they may have held at the fork.
  void forget_workers_after_fork() {
    new (&workers_) std::vector<std::thread>();  // the old vector's std::threads leak
    new (&sleep_mutex_) std::mutex();
    new (&wake_) std::condition_variable();
    sleepers_.store(0);
    stopping_.store(false);
    busy_.store(false);
  }

  // Runs the call on the caller and the workers; false (nothing run) when the pool has
  // no workers or holds another call (from another thread, or the one this is nested in).
  bool try_run(int64_t units, threads_detail::UnitFn fn, const void* body) {
    const int64_t start = now_ns();
    if (start < serial_until_.load() || units > kMaxUnits || busy_.exchange(true)) return false;
    if (workers_.empty()) {
      busy_.store(false);
      return false;
    }
    const uint64_t gen = (generation() + 1) & kGenMask;
    word_.store(gen << kUnitBits | kClosed);  // no unit can be claimed yet
    units_.store(units);
    fn_.store(fn);
    body_.store(body);
    done_.store(0);
    word_.store(gen << kUnitBits);  // open
    if (sleepers_.load() > 0) {
      std::lock_guard<std::mutex> lock(sleep_mutex_);
      wake_.notify_all();
    }
    claim_and_run(gen);
    const int64_t own_done = now_ns();
    for (int spins = 0; done_.load() < units; ++spins) {
      if (spins < 4096) cpu_relax();
      else std::this_thread::yield();
    }
    note_wait(own_done - start, now_ns() - own_done);
    busy_.store(false);
    return true;
  }

 private:
  static int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  // After the caller ran out of units it waited `waited` ns for units other threads had
  // claimed. Far longer than its own share took means a worker lost its core mid-unit
  // (another process runs there): the next calls then run on the caller alone, for
  // 2 ms doubling to 128 ms while it keeps happening. Who runs a unit does not change
  // its result, so this changes no number, only where the time goes.
  void note_wait(int64_t own, int64_t waited) {
    if (waited <= kStallFloorNs + 4 * own) {
      backoff_.store(0);
      return;
    }
    const int shift = std::min(backoff_.load() + 1, 7);
    backoff_.store(shift);
    serial_until_.store(now_ns() + (kSerialNs << (shift - 1)));
  }

  uint64_t generation() const { return word_.load() >> kUnitBits; }

  // Runs units of call `gen` until none is left to claim.
  void claim_and_run(uint64_t gen) {
    uint64_t word = word_.load();
    while ((word >> kUnitBits) == gen) {
      const int64_t unit = static_cast<int64_t>(word & kClosed);
      if (unit == kClosed) {  // the caller is still filling in the call: it opens next
        cpu_relax();
        word = word_.load();
        continue;
      }
      if (unit >= units_.load()) return;
      if (!word_.compare_exchange_weak(word, word + 1)) continue;  // word reloaded
      ++t_units_running;
      fn_.load()(body_.load(), unit);  // still valid: the call cannot end before this unit
      --t_units_running;
      done_.fetch_add(1);
      word = word_.load();
    }
  }

  void work() {
    uint64_t seen = generation();
    while (wait_for_call(seen)) {
      seen = generation();
      claim_and_run(seen);
    }
  }

  // Waits until a call after generation `seen` opens (true) or the pool stops (false).
  bool wait_for_call(uint64_t seen) {
    const auto give_up = std::chrono::steady_clock::now() + kSpinTime;
    for (int spins = 0;; ++spins) {
      if (stopping_.load()) return false;
      if (generation() != seen) return true;
      if ((spins & 255) == 255 && std::chrono::steady_clock::now() > give_up) break;
      // Past the first few microseconds, poll by yielding: on an idle core that returns at
      // once, and where another process waits for this core it runs instead of the poll.
      if (spins < 1024) cpu_relax();
      else std::this_thread::yield();
    }
    std::unique_lock<std::mutex> lock(sleep_mutex_);
    sleepers_.fetch_add(1);  // before the last look: a call opened after it wakes us
    wake_.wait(lock, [&] { return stopping_.load() || generation() != seen; });
    sleepers_.fetch_sub(1);
    return !stopping_.load();
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lock(sleep_mutex_);
      stopping_.store(true);
      wake_.notify_all();
    }
    for (std::thread& t : workers_) t.join();
    workers_.clear();
    stopping_.store(false);
  }

  static constexpr int64_t kStallFloorNs = 200'000;
  static constexpr int64_t kSerialNs = 2'000'000;

  std::atomic<bool> busy_{false};         // held by the running call, or by resize
  std::atomic<int64_t> serial_until_{0};  // steady-clock ns before which calls run alone
  std::atomic<int> backoff_{0};
  std::vector<std::thread> workers_;
  std::atomic<uint64_t> word_{0};
  std::atomic<int64_t> units_{0};
  std::atomic<threads_detail::UnitFn> fn_{nullptr};
  std::atomic<const void*> body_{nullptr};
  std::atomic<int64_t> done_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<int> sleepers_{0};
  std::mutex sleep_mutex_;
  std::condition_variable wake_;
};

void after_fork_in_child();

Pool& pool() {
  static Pool* const p = [] {
    auto* made = new Pool();  // never destroyed: its workers may still run at exit
    made->resize(default_threads());
#if defined(__unix__) || defined(__APPLE__)
    pthread_atfork(nullptr, nullptr, after_fork_in_child);
#endif
    return made;
  }();
  return *p;
}

// The child keeps the thread count and starts its own workers at its first call.
void after_fork_in_child() {
  pool().forget_workers_after_fork();
  g_restart_after_fork.store(true);
}

std::atomic<int> g_threads{0};  // 0 until the pool first starts

// By default a thread earns its place at about half a million multiply-adds (some 30 us
// on one core), so the small kernels of small networks stay serial.
std::atomic<int64_t> g_work_per_thread{kDefaultWorkPerThread};

}  // namespace

int max_threads() { return 4 * cpus(); }

int num_threads() {
  const int n = g_threads.load(std::memory_order_relaxed);
  if (n > 0) return n;
  const int started = pool().threads();
  g_threads.store(started, std::memory_order_relaxed);
  return started;
}

std::string thread_count_error(const std::string& got) {
  return "number of threads must be in [1, " + std::to_string(max_threads()) + "] (4 x the " +
         std::to_string(cpus()) + " CPUs this process may use), got " + got;
}

int set_num_threads(int64_t n) {
  if (n < 1 || n > max_threads())
    throw std::invalid_argument(thread_count_error(std::to_string(n)));
  const int got = pool().resize(static_cast<int>(n));
  g_threads.store(got, std::memory_order_relaxed);
  return got;
}

int64_t work_per_thread() { return g_work_per_thread.load(std::memory_order_relaxed); }

void set_work_per_thread(int64_t work) {
  if (work < 1 || work > kMaxWorkPerThread)
    throw std::invalid_argument("work per thread must be in [1, " +
                                std::to_string(kMaxWorkPerThread) + "], got " +
                                std::to_string(work));
  g_work_per_thread.store(work, std::memory_order_relaxed);
}

int pick_threads(int64_t work) {
  if (t_units_running > 0) return 1;
  const int64_t useful = std::max<int64_t>(1, work / work_per_thread());
  return static_cast<int>(std::min<int64_t>(num_threads(), useful));
}

namespace threads_detail {

void run_units(int64_t units, UnitFn fn, const void* body) {
  if (g_restart_after_fork.exchange(false)) pool().resize(num_threads());
  if (!pool().try_run(units, fn, body))
    for (int64_t u = 0; u < units; ++u) fn(body, u);
}

}  // namespace threads_detail
}  // namespace fastbp::kernels
