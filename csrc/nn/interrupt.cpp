#include "nn/interrupt.hpp"

#include <atomic>

#if defined(__unix__) || defined(__APPLE__)
#include <cerrno>
#include <csignal>
#endif

namespace fastbp::nn {
namespace {

// Global state besides the dispatch table, because a signal handler can reach nothing
// else; lock-free atomics, so the handler may touch them.
std::atomic<int64_t> g_sigints{0};
std::atomic<bool> g_held{false};
static_assert(std::atomic<int64_t>::is_always_lock_free && std::atomic<bool>::is_always_lock_free,
              "the handler's state must be lock-free");

#if defined(__unix__) || defined(__APPLE__)
struct sigaction g_replaced;  // written before our handler is installed, read by it
int g_depth = 0;              // changed only with the GIL held

void count_sigint(int sig, siginfo_t* info, void* context) {
  const int saved_errno = errno;
  g_sigints.fetch_add(1, std::memory_order_relaxed);
  if (!g_held.load(std::memory_order_relaxed)) {
    if (g_replaced.sa_flags & SA_SIGINFO) {
      g_replaced.sa_sigaction(sig, info, context);
    } else if (g_replaced.sa_handler != SIG_DFL && g_replaced.sa_handler != SIG_IGN) {
      g_replaced.sa_handler(sig);
    }
  }
  errno = saved_errno;
}
#endif

}  // namespace

int64_t sigint_count() { return g_sigints.load(std::memory_order_relaxed); }

bool interrupted_since(int64_t mark) {
  return mark >= 0 && g_sigints.load(std::memory_order_relaxed) != mark;
}

void hold_sigint(bool on) { g_held.store(on, std::memory_order_relaxed); }

void watch_sigint(bool on) {
#if defined(__unix__) || defined(__APPLE__)
  if (on && g_depth++ == 0) {
    sigaction(SIGINT, nullptr, &g_replaced);
    struct sigaction counting{};
    counting.sa_sigaction = count_sigint;
    // No SA_RESTART, as Python's own handler: a blocking call must still return EINTR so
    // that Python runs its handler promptly.
    counting.sa_flags = SA_SIGINFO | (g_replaced.sa_flags & SA_ONSTACK);
    sigemptyset(&counting.sa_mask);
    sigaction(SIGINT, &counting, nullptr);
  } else if (!on && g_depth > 0 && --g_depth == 0) {
    // A handler set since ours (a callback's signal.signal) keeps its place.
    struct sigaction current{};
    sigaction(SIGINT, nullptr, &current);
    if ((current.sa_flags & SA_SIGINFO) && current.sa_sigaction == count_sigint) {
      sigaction(SIGINT, &g_replaced, nullptr);
    }
    hold_sigint(false);
  }
#else
  (void)on;  // elsewhere a Ctrl-C waits for the call to end, as Python's handler does
#endif
}

namespace {
int g_deferred = 0;         // nested defer_sigint calls, changed only with the GIL held
int64_t g_deferred_at = 0;  // sigint_count() when the outermost began
}  // namespace

void defer_sigint() {
  watch_sigint(true);
  if (g_deferred++ == 0) {
    g_deferred_at = sigint_count();
    hold_sigint(true);
  }
}

bool resume_sigint() {
  if (g_deferred == 0) {
    return false;
  }
  bool came = false;
  if (--g_deferred == 0) {
    hold_sigint(false);
    came = sigint_count() != g_deferred_at;
  }
  watch_sigint(false);
  return came;
}

}  // namespace fastbp::nn
