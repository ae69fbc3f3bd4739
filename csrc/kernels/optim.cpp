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

template void sgd_step<float>(float*, const float*, float*, int64_t, const SgdConfig&, bool);
template void sgd_step<double>(double*, const double*, double*, int64_t, const SgdConfig&,
                               bool);

}  // namespace fastbp::kernels
