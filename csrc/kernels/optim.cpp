#include "optim.hpp"

#include <cmath>

#include "threads.hpp"

namespace fastbp::kernels {
namespace {

// The gradients were just written by the threads of the backward GEMMs, in contiguous
// row ranges; updating with the same static split keeps each range on the core whose
// cache holds it. A serial update would pull half the gradient across cores, which
// costs far more than the arithmetic, so threads pay off from small sizes.
constexpr int64_t kCrossCoreCost = 16;

}  // namespace

template <typename T>
void sgd_step(T* param, const T* grad, T* velocity, int64_t n, const SgdConfig& cfg,
              bool first_step) {
  const T lr = T(cfg.lr), wd = T(cfg.weight_decay), mu = T(cfg.momentum);
  const T keep = T(1) - T(cfg.dampening);
  const bool momentum = cfg.momentum != 0.0, nesterov = cfg.nesterov;
  parallel_for(n, pick_threads(n * kCrossCoreCost), [&](int64_t begin, int64_t end) {
    if (!momentum) {
      for (int64_t i = begin; i < end; ++i) param[i] -= lr * (grad[i] + wd * param[i]);
      return;
    }
    for (int64_t i = begin; i < end; ++i) {
      const T d = grad[i] + wd * param[i];
      const T v = first_step ? d : mu * velocity[i] + keep * d;
      velocity[i] = v;
      param[i] -= lr * (nesterov ? d + mu * v : v);
    }
  });
}

template <typename T>
void adam_step(T* param, const T* grad, T* exp_avg, T* exp_avg_sq, int64_t n,
               const AdamConfig& cfg, int64_t step) {
  // The bias corrections are folded into two scalars, in double, as torch.optim.Adam
  // does: p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps).
  const double bc1 = 1.0 - std::pow(cfg.beta1, double(step));
  const double bc2 = 1.0 - std::pow(cfg.beta2, double(step));
  const T step_size = T(cfg.lr / bc1), inv_bc2_sqrt = T(1.0 / std::sqrt(bc2));
  const T b1 = T(cfg.beta1), b2 = T(cfg.beta2), eps = T(cfg.eps);
  const T wd = cfg.decoupled_weight_decay ? T(0) : T(cfg.weight_decay);
  const T shrink = cfg.decoupled_weight_decay ? T(1.0 - cfg.lr * cfg.weight_decay) : T(1);
  parallel_for(n, pick_threads(n * kCrossCoreCost), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const T p = param[i] * shrink;
      const T g = grad[i] + wd * p;
      const T m = b1 * exp_avg[i] + (T(1) - b1) * g;
      const T v = b2 * exp_avg_sq[i] + (T(1) - b2) * g * g;
      exp_avg[i] = m;
      exp_avg_sq[i] = v;
      param[i] = p - step_size * m / (std::sqrt(v) * inv_bc2_sqrt + eps);
    }
  });
}

template void sgd_step<float>(float*, const float*, float*, int64_t, const SgdConfig&, bool);
template void sgd_step<double>(double*, const double*, double*, int64_t, const SgdConfig&,
                               bool);
template void adam_step<float>(float*, const float*, float*, float*, int64_t, const AdamConfig&,
                               int64_t);
template void adam_step<double>(double*, const double*, double*, double*, int64_t,
                                const AdamConfig&, int64_t);

}  // namespace fastbp::kernels
