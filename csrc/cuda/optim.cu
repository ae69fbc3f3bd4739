// torch.optim.SGD on the GPU, with the definitions of kernels/optim.cpp.
#include "cuda/common.cuh"
#include "cuda/kernels.cuh"

namespace fastbp::cuda {
namespace {

template <bool Momentum, typename T>
__global__ void sgd_kernel(T* param, const T* grad, T* velocity, int64_t n, T lr, T wd, T mu,
                           T keep, bool nesterov, bool first_step,
                           const unsigned long long* status) {
  // Decided on the device, so the host need not wait for the check before enqueueing.
  if (status[0] != kNotDiverged) return;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const T d = grad[i] + wd * param[i];
    if constexpr (!Momentum) {
      param[i] -= lr * d;
    } else {
      const T v = first_step ? d : mu * velocity[i] + keep * d;
      velocity[i] = v;
      param[i] -= lr * (nesterov ? d + mu * v : v);
    }
  }
}

}  // namespace

template <typename T>
void sgd_step(T* param, const T* grad, T* velocity, int64_t n, const kernels::SgdConfig& cfg,
              bool first_step, const unsigned long long* status, cudaStream_t stream) {
  const T lr = T(cfg.lr), wd = T(cfg.weight_decay), mu = T(cfg.momentum);
  const T keep = T(1) - T(cfg.dampening);
  if (cfg.momentum != 0.0)
    sgd_kernel<true, T><<<grid_for(n), kBlock, 0, stream>>>(param, grad, velocity, n, lr, wd, mu,
                                                            keep, cfg.nesterov, first_step,
                                                            status);
  else
    sgd_kernel<false, T><<<grid_for(n), kBlock, 0, stream>>>(param, grad, velocity, n, lr, wd, mu,
                                                             keep, cfg.nesterov, first_step,
                                                             status);
  check_launch("sgd_step");
}

template void sgd_step<float>(float*, const float*, float*, int64_t, const kernels::SgdConfig&,
                              bool, const unsigned long long*, cudaStream_t);
template void sgd_step<double>(double*, const double*, double*, int64_t,
                               const kernels::SgdConfig&, bool, const unsigned long long*,
                               cudaStream_t);

}  // namespace fastbp::cuda
