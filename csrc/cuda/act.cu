// Elementwise activation kernels and the fused Dense epilogue/prologue.
#include "common/act_math.hpp"
#include "cuda/common.cuh"
#include "cuda/kernels.cuh"

namespace fastbp::cuda {
namespace {

using common::act_derivative;
using common::act_one;
using common::with_act;

template <Act A, typename T>
__global__ void bias_activation_kernel(T* z, const T* bias, int64_t m, int64_t n) {
  const int64_t count = m * n, stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride)
    z[i] = act_one<A>(z[i] + bias[i % n]);
}

template <Act A, typename T>
__global__ void act_forward_kernel(const T* x, T* y, int64_t n) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    y[i] = act_one<A>(x[i]);
}

template <Act A, typename T>
__global__ void act_backward_kernel(const T* y, T* g, int64_t n) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    g[i] *= act_derivative<A>(y[i]);
}

// A block owns 32 columns and walks all m rows with 8 rows of threads: each warp
// reads 32 consecutive columns of a row (coalesced), and the column sums are reduced
// in shared memory in a fixed order, so db is deterministic without atomics.
constexpr int kCols = 32, kRows = 8;

template <Act A, typename T>
__global__ void act_backward_bias_grad_kernel(const T* y, T* g, int64_t m, int64_t n, T* db) {
  __shared__ T partial[kRows][kCols];
  const int64_t col = int64_t(blockIdx.x) * kCols + threadIdx.x;
  T sum = T(0);
  if (col < n) {
    for (int64_t i = threadIdx.y; i < m; i += kRows) {
      const int64_t at = i * n + col;
      const T v = g[at] * act_derivative<A>(y[at]);
      g[at] = v;
      sum += v;
    }
  }
  partial[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.y == 0 && col < n) {
    for (int r = 1; r < kRows; ++r) sum += partial[r][threadIdx.x];
    db[col] = sum;
  }
}

}  // namespace

template <typename T>
void bias_activation(T* z, const T* bias, int64_t m, int64_t n, Act act, cudaStream_t stream) {
  with_act(act, [&](auto kind) {
    bias_activation_kernel<decltype(kind)::value, T>
        <<<grid_for(m * n), kBlock, 0, stream>>>(z, bias, m, n);
  });
  check_launch("bias_activation");
}

template <typename T>
void act_forward(Act act, const T* x, T* y, int64_t n, cudaStream_t stream) {
  with_act(act, [&](auto kind) {
    act_forward_kernel<decltype(kind)::value, T><<<grid_for(n), kBlock, 0, stream>>>(x, y, n);
  });
  check_launch("act_forward");
}

template <typename T>
void act_backward(Act act, const T* y, T* g, int64_t n, cudaStream_t stream) {
  if (act == Act::Identity) return;
  with_act(act, [&](auto kind) {
    act_backward_kernel<decltype(kind)::value, T><<<grid_for(n), kBlock, 0, stream>>>(y, g, n);
  });
  check_launch("act_backward");
}

template <typename T>
void act_backward_bias_grad(Act act, const T* y, T* g, int64_t m, int64_t n, T* db,
                            cudaStream_t stream) {
  const unsigned blocks = static_cast<unsigned>((n + kCols - 1) / kCols);
  with_act(act, [&](auto kind) {
    act_backward_bias_grad_kernel<decltype(kind)::value, T>
        <<<blocks, dim3(kCols, kRows), 0, stream>>>(y, g, m, n, db);
  });
  check_launch("act_backward_bias_grad");
}

template void bias_activation<float>(float*, const float*, int64_t, int64_t, Act, cudaStream_t);
template void act_forward<float>(Act, const float*, float*, int64_t, cudaStream_t);
template void act_backward<float>(Act, const float*, float*, int64_t, cudaStream_t);
template void act_backward_bias_grad<float>(Act, const float*, float*, int64_t, int64_t, float*,
                                           cudaStream_t);
template void bias_activation<double>(double*, const double*, int64_t, int64_t, Act, cudaStream_t);
template void act_forward<double>(Act, const double*, double*, int64_t, cudaStream_t);
template void act_backward<double>(Act, const double*, double*, int64_t, cudaStream_t);
template void act_backward_bias_grad<double>(Act, const double*, double*, int64_t, int64_t, double*,
                                           cudaStream_t);

}  // namespace fastbp::cuda
