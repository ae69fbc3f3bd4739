// Dropout with the counter-based mask of common/dropout_math.hpp: the same mask as the
// CPU kernel and the NumPy reference, recomputed in backward.
#include "common/dropout_math.hpp"
#include "cuda/common.cuh"
#include "cuda/kernels.cuh"

namespace fastbp::cuda {
namespace {

template <typename T>
__global__ void dropout_kernel(const T* in, T* out, int64_t n, double p, uint64_t key,
                               uint64_t first, T scale) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    out[i] = common::dropout_keeps(key, first + static_cast<uint64_t>(i), p) ? in[i] * scale : T(0);
}

template <typename T>
void apply_mask(const T* in, T* out, int64_t n, double p, uint64_t key, uint64_t first,
                cudaStream_t stream) {
  if (n == 0) return;
  if (p == 0.0) {
    if (in != out)
      check(cudaMemcpyAsync(out, in, static_cast<size_t>(n) * sizeof(T), cudaMemcpyDeviceToDevice,
                            stream),
            "cudaMemcpyAsync");
    return;
  }
  dropout_kernel<T>
      <<<grid_for(n), kBlock, 0, stream>>>(in, out, n, p, key, first, common::dropout_scale<T>(p));
  check_launch("dropout_kernel");
}

}  // namespace

template <typename T>
void dropout_forward(const T* x, T* y, int64_t n, double p, uint64_t key, uint64_t first,
                     cudaStream_t stream) {
  apply_mask(x, y, n, p, key, first, stream);
}

template <typename T>
void dropout_backward(const T* dy, T* dx, int64_t n, double p, uint64_t key, uint64_t first,
                      cudaStream_t stream) {
  apply_mask(dy, dx, n, p, key, first, stream);
}

template void dropout_forward<float>(const float*, float*, int64_t, double, uint64_t, uint64_t,
                                     cudaStream_t);
template void dropout_forward<double>(const double*, double*, int64_t, double, uint64_t, uint64_t,
                                      cudaStream_t);
template void dropout_backward<float>(const float*, float*, int64_t, double, uint64_t, uint64_t,
                                      cudaStream_t);
template void dropout_backward<double>(const double*, double*, int64_t, double, uint64_t, uint64_t,
                                       cudaStream_t);

}  // namespace fastbp::cuda
