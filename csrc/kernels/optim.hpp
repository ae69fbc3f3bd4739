#pragma once
#include <cstdint>
#include <string>

namespace fastbp::kernels {

// torch.optim.SGD's hyper-parameters, with its definitions.
struct SgdConfig {
  double lr = 0.01;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
};

// torch.optim.Adam's hyper-parameters; decoupled_weight_decay gives AdamW.
struct AdamConfig {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool decoupled_weight_decay = false;
};

// Throw std::invalid_argument (ValueError in Python) for hyper-parameters the public
// optimizers refuse: lr and eps finite and > 0, the others finite and >= 0, betas in
// [0, 1), nesterov only with momentum > 0 and dampening == 0. Every binding that builds a
// config calls these, so a direct call into fastbp._core is held to the same rules.
void check_config(const SgdConfig& cfg);
void check_config(const AdamConfig& cfg);

// One SGD update of n parameters in place. velocity is read and written only when
// momentum != 0; first_step initialises it to the gradient, as PyTorch does.
template <typename T>
void sgd_step(T* param, const T* grad, T* velocity, int64_t n, const SgdConfig& cfg,
              bool first_step);

// One Adam update of n parameters in place, with the moment estimates exp_avg and
// exp_avg_sq (zero before the first step); step is this update's 1-based number,
// which sets the bias corrections.
template <typename T>
void adam_step(T* param, const T* grad, T* exp_avg, T* exp_avg_sq, int64_t n,
               const AdamConfig& cfg, int64_t step);

enum class Optimizer { Sgd, Adam };

// The update a training call applies after each backward pass: the optimizer, its
// hyper-parameters and its state buffers (n parameters each).
template <typename T>
struct Update {
  Optimizer kind = Optimizer::Sgd;
  SgdConfig sgd;
  AdamConfig adam;
  T* state1 = nullptr;  // SGD's velocity, Adam's exp_avg
  T* state2 = nullptr;  // Adam's exp_avg_sq
  int64_t steps = 0;    // updates taken so far; apply() adds one

  void apply(T* param, const T* grad, int64_t n) {
    if (kind == Optimizer::Adam) {
      adam_step(param, grad, state1, state2, n, adam, ++steps);
    } else {
      sgd_step(param, grad, state1, n, sgd, steps++ == 0);
    }
  }
};

}  // namespace fastbp::kernels
