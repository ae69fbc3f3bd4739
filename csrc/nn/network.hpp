#pragma once
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/act.hpp"
#include "kernels/loss.hpp"
#include "kernels/optim.hpp"

namespace fastbp::nn {

// One layer as the user wrote it: a Dense(in, out) or an activation.
struct LayerSpec {
  bool dense = false;
  int64_t in = 0, out = 0;
  kernels::Act act = kernels::Act::Identity;
};

// Where a Dense layer's W (in x out, row-major) and b (out) sit in the flat buffers.
struct ParamSlot {
  int64_t w_offset, b_offset, in, out;
};

// The unit the network runs: a Dense with the activation that follows it fused in
// (Identity when none follows), or an activation that follows no Dense.
struct Step {
  bool dense;
  int64_t in, out;
  kernels::Act act;
  int64_t w_offset, b_offset;
};

// Thrown by train_step / train_epoch / step (CPU and CUDA networks) when a step's loss
// or gradient is NaN or inf. The check runs before that step's update, which is
// skipped: parameters and optimizer state are those from before the step (earlier
// steps of an epoch stay applied). `step` counts the steps of the call that completed
// before it, so the caller can count them too.
struct Divergence : std::runtime_error {
  Divergence(int64_t step, const std::string& reason)
      : std::runtime_error(reason + " at step " + std::to_string(step + 1) + " of this call"),
        step(step), reason(reason) {}
  int64_t step;
  std::string reason;
};

// The reason a Divergence gives for a step whose loss is `loss` and whose first NaN or
// inf gradient is at flat index `bad` (-1: none) in a buffer laid out as `slots`: the
// loss when it is not finite, else the Dense layer and the dW or db holding `bad`.
// Shared by the CPU and CUDA networks, so both name the same culprit the same way.
std::string divergence_reason(double loss, int64_t bad, const std::vector<ParamSlot>& slots);

// The steps and flat parameter layout of a network, shared by the CPU and CUDA networks.
struct Plan {
  std::vector<Step> steps;
  std::vector<ParamSlot> slots;
  int64_t n_params = 0, max_width = 0;
};

// Fuses each activation into the Dense before it; std::invalid_argument when the
// sizes do not chain or the network has no Dense layer.
Plan make_plan(const std::vector<LayerSpec>& layers);

// An MLP as data: steps, flat parameter and gradient buffers, and workspaces kept
// between calls so a steady-state step allocates nothing. Calls on one network are
// serialised by a mutex; different networks run concurrently.
template <typename T>
class Network {
 public:
  // loss_param: the loss's parameter (kernels::loss_forward's param).
  Network(const std::vector<LayerSpec>& layers, kernels::Loss loss, kernels::Reduction red,
          double loss_param = 0.0);

  int64_t n_params() const { return static_cast<int64_t>(params_.size()); }
  int64_t in_features() const { return steps_.front().in; }
  int64_t out_features() const { return steps_.back().out; }
  kernels::Loss loss_kind() const { return loss_; }
  const std::vector<ParamSlot>& slots() const { return slots_; }
  // Optimizer updates applied since construction, by any call: Python counts an
  // optimizer's steps after each call returns, and recounts from this when a
  // KeyboardInterrupt came between the two.
  int64_t updates() const { return updates_; }
  T* params() { return params_.data(); }
  T* grads() { return grads_.data(); }

  // Each runs the whole batch x (m x in_features) in one call.
  void forward(const T* x, int64_t m, T* out);
  double loss(const T* x, kernels::Target<T> t, int64_t m);
  // Fills the gradients and returns the loss, whether finite or not: only an update
  // refuses non-finite values.
  double backward(const T* x, kernels::Target<T> t, int64_t m);
  // One optimizer update from the current gradients (backward, then step), which
  // advances update.steps; Divergence, changing nothing, when the loss of the last
  // backward pass or a gradient is not finite.
  void step(kernels::Update<T>& update);
  // Backward pass then one optimizer update, which advances update.steps.
  double train_step(const T* x, kernels::Target<T> t, int64_t m, kernels::Update<T>& update);
  // One pass over the rows of x in `order`, batch by batch; returns loss_sum plus each
  // batch's rows times its loss, added in batch order. An epoch run as several calls,
  // each given the previous call's sum, so adds up bitwise as in one call. Before each
  // batch, Interrupted when a SIGINT came since sigint_count() was `interrupt_mark`
  // (-1: never; see nn/interrupt.hpp).
  double train_epoch(const T* x, kernels::Target<T> t, int64_t rows, const int64_t* order,
                     int64_t batch, kernels::Update<T>& update, double loss_sum,
                     int64_t interrupt_mark);

 private:
  const T* run_forward(const T* x, int64_t m);
  double run_backward(const T* x, kernels::Target<T> t, int64_t m);
  // Divergence, naming `step` of this call, when last_loss_ or a gradient is not finite.
  void check_finite(int64_t step) const;
  // The optimizer update (clipping first, when set) unless the loss, a gradient or the
  // gradient norm is not finite: then Divergence naming `step`, changing nothing.
  void apply_update(kernels::Update<T>& update, int64_t step);
  // run_backward, then the optimizer update unless the loss or a gradient is not finite.
  double run_step(const T* x, kernels::Target<T> t, int64_t m, kernels::Update<T>& update,
                  int64_t step);
  void reserve(int64_t m);

  std::vector<Step> steps_;
  std::vector<ParamSlot> slots_;
  kernels::Loss loss_;
  kernels::Reduction red_;
  double loss_param_;
  std::vector<T> params_, grads_;
  int64_t max_width_ = 0, reserved_rows_ = 0;
  double last_loss_ = 0.0;            // of the pass that filled grads_
  int64_t updates_ = 0;
  std::vector<std::vector<T>> acts_;  // post-activation output of each step
  std::vector<T> grad_a_, grad_b_;    // ping-pong buffers for dL/d(activations)
  std::vector<T> batch_x_, batch_t_, batch_w_;  // gathered rows for train_epoch
  std::vector<int64_t> batch_labels_;
  std::mutex mutex_;
};

}  // namespace fastbp::nn
