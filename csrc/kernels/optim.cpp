#include "optim.hpp"

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
  if (cfg.momentum == 0.0) {
    const int threads = pick_threads(n * kCrossCoreCost);
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
    for (int64_t i = 0; i < n; ++i) param[i] -= lr * (grad[i] + wd * param[i]);
    return;
  }
  const bool nesterov = cfg.nesterov;
  const int threads = pick_threads(n * kCrossCoreCost);
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const T d = grad[i] + wd * param[i];
    const T v = first_step ? d : mu * velocity[i] + keep * d;
    velocity[i] = v;
    param[i] -= lr * (nesterov ? d + mu * v : v);
  }
}

template void sgd_step<float>(float*, const float*, float*, int64_t, const SgdConfig&, bool);
template void sgd_step<double>(double*, const double*, double*, int64_t, const SgdConfig&,
                               bool);

}  // namespace fastbp::kernels
