#pragma once
// The network as the bindings see it: plain C++, one interface for every backend, so one
// binding path serves the CPU and the CUDA networks (nn::Network<Backend> implements it;
// the CUDA one is made in csrc/cuda without its headers reaching the bindings).
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/loss.hpp"
#include "kernels/optim.hpp"
#include "nn/plan.hpp"

namespace fastbp::nn {

// Thrown by train_step / train_epoch / step when a step's loss or gradient is NaN or
// inf. The check runs before that step's update, which is skipped: parameters and
// optimizer state are those from before the step (earlier steps of an epoch stay
// applied). `step` counts the steps of the call that completed before it.
struct Divergence : std::runtime_error {
  Divergence(int64_t step, const std::string& reason)
      : std::runtime_error(reason + " at step " + std::to_string(step + 1) + " of this call"),
        step(step),
        reason(reason) {}
  int64_t step;
  std::string reason;
};

// The reason a Divergence gives for a loss `loss` and first non-finite gradient at flat
// index `bad`: the loss when it is not finite, else the tensor holding `bad`, else (bad
// -1 with a finite loss) the gradient norm, which clipping found not finite.
std::string divergence_reason(double loss, int64_t bad, const Plan& plan);

// The loss of a network: its kind, reduction and settings (kernels::loss_params).
struct LossSpec {
  kernels::Loss kind = kernels::Loss::MSE;
  kernels::Reduction reduction = kernels::Reduction::Mean;
  kernels::LossParams params;
};

template <typename T>
class Trainer {
 public:
  virtual ~Trainer() = default;

  virtual const Plan& plan() const = 0;
  virtual const LossSpec& loss_spec() const = 0;
  int64_t n_params() const { return plan().n_params; }
  int64_t n_state() const { return plan().n_state; }
  int64_t in_features() const { return plan().in_features(); }
  int64_t out_features() const { return plan().out_features(); }
  kernels::Loss loss_kind() const { return loss_spec().kind; }
  // Optimizer updates applied since construction, by any call: Python counts an
  // optimizer's steps after each call returns, and recounts from this when a
  // KeyboardInterrupt came between the two.
  virtual int64_t updates() const = 0;
  // Training forward passes so far; each draws its own dropout masks from (seed, pass).
  // Settable, so a caller can replay a pass's masks (fastbp.gradcheck does).
  virtual uint64_t passes() const = 0;
  virtual void set_passes(uint64_t passes) = 0;
  // The parts a training pass over `rows` rows is split into, each on a thread of its own
  // (1: the pass runs whole, its products on every thread).
  virtual int training_parts(int64_t rows) const = 0;

  // Host arrays of the flat parameter, gradient and state buffers, which Python views.
  // A GPU network mirrors its device buffers there: sync_host brings the mirrors up to
  // date and marks them as possibly written, so the next GPU call uploads them first.
  virtual T* params() = 0;
  virtual T* grads() = 0;
  virtual T* state() = 0;
  virtual void sync_host() = 0;
  // The flat parameters then the flat state (n_params() + n_state() values) copied into
  // `out` under the lock every call holds: the values between two calls, never mid-step.
  virtual void snapshot(T* out) = 0;
  // In a forked child only: a thread of the parent that was inside a call at the fork
  // left the lock held, and it does not exist in the child to release it.
  virtual void after_fork_in_child() = 0;

  // Each runs the whole batch x (m x in_features) in one call. forward and loss run in
  // inference mode (unless `training`); backward, train_step and train_epoch in training
  // mode (dropout masks drawn, batch statistics used and running statistics updated).
  virtual void forward(const T* x, int64_t m, T* out) = 0;
  virtual double loss(const T* x, kernels::Target<T> t, int64_t m, bool training) = 0;
  // Fills the gradients and returns the loss, finite or not: only an update refuses
  // non-finite values.
  virtual double backward(const T* x, kernels::Target<T> t, int64_t m) = 0;
  // One optimizer update from the current gradients; Divergence, changing nothing, when
  // the last backward pass's loss or a gradient is not finite.
  virtual void step(kernels::Update<T>& update) = 0;
  virtual double train_step(const T* x, kernels::Target<T> t, int64_t m,
                            kernels::Update<T>& update) = 0;
  // One pass over the rows of x in `order`, batch by batch; returns loss_sum plus each
  // batch's rows times its loss, added in batch order (an epoch run as several calls,
  // each given the previous call's sum, adds up bitwise as one call). Before each batch,
  // Interrupted when a SIGINT came since sigint_count() was `interrupt_mark` (-1: never;
  // see nn/interrupt.hpp), after the batches already run are concluded. A weight_penalty
  // above 0 is scikit-learn's L2 penalty (its alpha) on the Dense layers' weight matrices:
  // a batch of m rows adds weight_penalty / (2 m) times their sum of squares to its loss
  // and weight_penalty / m times each weight to its gradient, before the check and the
  // update.
  virtual double train_epoch(const T* x, kernels::Target<T> t, int64_t rows, const int64_t* order,
                             int64_t batch, kernels::Update<T>& update, double loss_sum,
                             int64_t interrupt_mark, double weight_penalty) = 0;
};

// The CPU network; std::invalid_argument when the layers do not make a network, or for
// bfloat16 compute on float64 parameters.
template <typename T>
std::unique_ptr<Trainer<T>> make_cpu_network(const std::vector<LayerSpec>& layers,
                                             const LossSpec& loss, uint64_t seed,
                                             kernels::Compute compute);

}  // namespace fastbp::nn
