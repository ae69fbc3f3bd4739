// The divergence check of the GPU network's steps (kernels/check.cpp's all_finite on
// the device): it runs before each update and leaves its verdict in device memory,
// where the update reads it, so the host learns of it with the step's loss.
#include "cuda/common.cuh"
#include "cuda/kernels.cuh"

namespace fastbp::cuda {
namespace {

template <typename T>
__global__ void check_step_kernel(const double* value, const T* grad, int64_t n,
                                  unsigned long long step, unsigned long long* status) {
  // An earlier step of the call diverged: its record stands. (Blocks of this launch may
  // be writing `step` here meanwhile, which reads the same as kNotDiverged.)
  const unsigned long long seen = status[0];
  if (seen != kNotDiverged && seen != step) return;
  unsigned long long bad = kNotDiverged;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    if (!isfinite(grad[i])) {
      bad = static_cast<unsigned long long>(i);  // this thread's lowest; atomicMin finds the
      break;                                     // lowest of all
    }
  }
  const bool loss_bad = value && blockIdx.x == 0 && threadIdx.x == 0 && !isfinite(*value);
  if (bad != kNotDiverged || loss_bad) atomicCAS(status, kNotDiverged, step);
  if (bad != kNotDiverged) atomicMin(status + 1, bad);
}

}  // namespace

template <typename T>
void check_step(const double* value, const T* grad, int64_t n, int64_t step,
                unsigned long long* status, cudaStream_t stream) {
  check_step_kernel<T><<<grid_for(n), kBlock, 0, stream>>>(
      value, grad, n, static_cast<unsigned long long>(step), status);
  check_launch("check_step");
}

template void check_step<float>(const double*, const float*, int64_t, int64_t, unsigned long long*,
                                cudaStream_t);
template void check_step<double>(const double*, const double*, int64_t, int64_t,
                                 unsigned long long*, cudaStream_t);

}  // namespace fastbp::cuda
