#pragma once
#include <cstdint>

#include "common/optim_math.hpp"

namespace fastbp::kernels {

using common::Optimizer;
using common::OptimizerArgs;

// One update of n parameters in place from grad, by args.kind's rule in
// common/optim_math.hpp; states holds that kind's n_states buffers of n (a buffer the
// hyper-parameters leave unused may be null). args must have passed common::check.
template <typename T>
void optimizer_step(const OptimizerArgs& args, T* param, const T* grad, T* const* states,
                    int64_t n);

// The L2 norm of the n gradients, summed in double.
template <typename T>
double grad_norm(const T* g, int64_t n);

// torch.nn.utils.clip_grad_norm_ over one flat buffer: total = grad_norm(g, n), then
// g *= min(1, max_norm / (total + 1e-6)); returns total. max_norm > 0. When total is not
// finite, g is left as it is (the network refuses such a step as diverged).
template <typename T>
double clip_grad_norm(T* g, int64_t n, double max_norm);

// scikit-learn's L2 penalty on n weights, its gradient part: g += decay * p. Returns the
// sum of the squares of p (partial sums in T, as scikit-learn's, added in double), from
// which the caller adds its loss part.
template <typename T>
double add_weight_penalty(const T* p, T* g, int64_t n, double decay);

// g += parts[0] + ... + parts[count - 1] over n gradients, added to g in that order: the
// parameter gradients of a batch's later parts, computed apart (a training pass split by
// rows), added to the first part's. Returns whether the sums are all finite (the check a
// training step makes before its update, done while they are written).
template <typename T>
bool add_grads(T* g, const T* const* parts, int count, int64_t n);

// The update a training call applies after each backward pass: the optimizer kind and
// hyper-parameters (args.step is set per update), its state buffers (n parameters
// each) and the clipping norm (0: none).
template <typename T>
struct Update {
  OptimizerArgs args{};
  T* states[common::kMaxStates] = {};
  int64_t steps = 0;  // updates taken so far; apply() adds one
  double max_grad_norm = 0.0;

  // The one sequence of an update, whichever backend runs it: clip (when max_grad_norm
  // is set), count the step, update. clip(max_norm) clips the gradients and returns
  // false when the step must stop there (a non-finite norm found on the host);
  // step(args) runs the optimizer, args.step set. False when clip stopped the step.
  template <typename Clip, typename Step>
  bool run(Clip&& clip, Step&& step) {
    if (max_grad_norm > 0.0 && !clip(max_grad_norm)) return false;
    args.step = ++steps;
    step(args);
    return true;
  }
};

}  // namespace fastbp::kernels
