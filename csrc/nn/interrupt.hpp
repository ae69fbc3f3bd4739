#pragma once
// SIGINT as the training loops see it between batches. Python runs its signal handlers
// only between bytecodes, so during a long call into C++ a Ctrl-C would wait for the
// call to end. While watched, a handler of ours counts each SIGINT and passes it on to
// the handler it replaced (Python's), unless held; a loop given the count from before
// it started stops before its next batch once the count has moved.
#include <cstdint>
#include <stdexcept>
#include <string>

namespace fastbp::nn {

// SIGINTs received while watched, since the process started.
int64_t sigint_count();

// true: put the counting handler in front of the current one; false: put that one back
// (calls nest: the outermost false restores it, unless another handler has replaced ours
// since, and releases a hold). Called with the GIL held, from Python's main thread.
void watch_sigint(bool on);

// While held, a SIGINT is counted but not passed on, so Python raises no
// KeyboardInterrupt between a training call and its bookkeeping; the caller compares
// the count after releasing the hold.
void hold_sigint(bool on);

// Watch and hold from the outermost defer_sigint to its resume_sigint (calls nest), for
// a block that must not be cut short; resume_sigint returns, at the outermost, whether a
// SIGINT came meanwhile, for the caller to deliver again. Same thread rules as above.
void defer_sigint();
bool resume_sigint();

// The loops' test, one relaxed atomic load: `mark` is sigint_count() from before the
// call, or -1 for a call that never stops.
bool interrupted_since(int64_t mark);

// Thrown by train_epoch (CPU and CUDA networks) when a SIGINT arrived during the call:
// `step` steps of the call were applied, each whole, and none after them.
struct Interrupted : std::runtime_error {
  explicit Interrupted(int64_t step)
      : std::runtime_error("interrupted after step " + std::to_string(step) + " of this call"),
        step(step) {}
  int64_t step;
};

}  // namespace fastbp::nn
