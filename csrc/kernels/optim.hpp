#pragma once
#include <cstdint>

namespace fastbp::kernels {

// torch.optim.SGD's hyper-parameters, with its definitions.
struct SgdConfig {
  double lr = 0.01;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
};

// One SGD update of n parameters in place. velocity is read and written only when
// momentum != 0; first_step initialises it to the gradient, as PyTorch does.
template <typename T>
void sgd_step(T* param, const T* grad, T* velocity, int64_t n, const SgdConfig& cfg,
              bool first_step);

}  // namespace fastbp::kernels
