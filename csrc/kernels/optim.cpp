#include "optim.hpp"

#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "threads.hpp"

namespace fastbp::kernels {
namespace {

// The gradients were just written by the threads of the backward GEMMs, in contiguous
// row ranges; updating with the same static split keeps each range on the core whose
// cache holds it. A serial update would pull half the gradient across cores, which
// costs far more than the arithmetic, so threads pay off from small sizes.
constexpr int64_t kCrossCoreCost = 16;

std::string text(double value) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", value);
  return buf;
}

// The wording of python/fastbp/_validate.real, so both layers report a value alike.
void check_real(const char* name, double value, bool strict) {
  if (std::isfinite(value) && value >= 0.0 && !(strict && value == 0.0)) return;
  throw std::invalid_argument(std::string(name) + " must be a finite number " +
                              (strict ? ">" : ">=") + " 0.0, got " + text(value));
}

void check_beta(const char* name, double value) {
  check_real(name, value, false);
  if (value >= 1.0)
    throw std::invalid_argument(std::string(name) + " must be in [0, 1), got " + text(value));
}

}  // namespace

void check_config(const SgdConfig& cfg) {
  check_real("lr", cfg.lr, true);
  check_real("momentum", cfg.momentum, false);
  check_real("dampening", cfg.dampening, false);
  check_real("weight_decay", cfg.weight_decay, false);
  if (cfg.nesterov && (cfg.momentum <= 0.0 || cfg.dampening != 0.0))
    throw std::invalid_argument("nesterov momentum requires momentum > 0 and dampening == 0");
}

void check_config(const AdamConfig& cfg) {
  check_real("lr", cfg.lr, true);
  check_beta("beta1", cfg.beta1);
  check_beta("beta2", cfg.beta2);
  check_real("eps", cfg.eps, true);
  check_real("weight_decay", cfg.weight_decay, false);
}

// One range of SGD's momentum update. The arrays are restrict locals rather than lambda
// captures, so that the stores cannot alias them and GCC vectorises the loop.
template <typename T>
void sgd_momentum_range(T* __restrict param, const T* __restrict grad, T* __restrict velocity,
                        int64_t begin, int64_t end, T lr, T wd, T mu, T keep, bool first_step,
                        bool nesterov) {
  for (int64_t i = begin; i < end; ++i) {
    const T d = grad[i] + wd * param[i];
    const T v = first_step ? d : mu * velocity[i] + keep * d;
    velocity[i] = v;
    param[i] -= lr * (nesterov ? d + mu * v : v);
  }
}

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
    sgd_momentum_range(param, grad, velocity, begin, end, lr, wd, mu, keep, first_step,
                       nesterov);
  });
}

// Adam's coefficients for one step, in T, with the bias corrections folded in.
template <typename T>
struct AdamCoefficients {
  T b1, b2, eps, wd, shrink, step_size, inv_bc2_sqrt;
};

// One range of Adam's update. The arrays are restrict locals rather than lambda
// captures, so that the stores cannot alias them and GCC vectorises the loop.
template <typename T>
void adam_range(T* __restrict param, const T* __restrict grad, T* __restrict exp_avg,
                T* __restrict exp_avg_sq, int64_t begin, int64_t end,
                const AdamCoefficients<T> c) {
  for (int64_t i = begin; i < end; ++i) {
    const T p = param[i] * c.shrink;
    const T g = grad[i] + c.wd * p;
    const T m = c.b1 * exp_avg[i] + (T(1) - c.b1) * g;
    const T v = c.b2 * exp_avg_sq[i] + (T(1) - c.b2) * g * g;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    param[i] = p - c.step_size * m / (std::sqrt(v) * c.inv_bc2_sqrt + c.eps);
  }
}

template <typename T>
void adam_step(T* param, const T* grad, T* exp_avg, T* exp_avg_sq, int64_t n,
               const AdamConfig& cfg, int64_t step) {
  // The bias corrections are computed in double, as torch.optim.Adam does:
  // p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps).
  const double bc1 = 1.0 - std::pow(cfg.beta1, double(step));
  const double bc2 = 1.0 - std::pow(cfg.beta2, double(step));
  const bool decoupled = cfg.decoupled_weight_decay;
  const AdamCoefficients<T> c{T(cfg.beta1), T(cfg.beta2), T(cfg.eps),
                              decoupled ? T(0) : T(cfg.weight_decay),
                              decoupled ? T(1.0 - cfg.lr * cfg.weight_decay) : T(1),
                              T(cfg.lr / bc1), T(1.0 / std::sqrt(bc2))};
  parallel_for(n, pick_threads(n * kCrossCoreCost), [&](int64_t begin, int64_t end) {
    adam_range(param, grad, exp_avg, exp_avg_sq, begin, end, c);
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
