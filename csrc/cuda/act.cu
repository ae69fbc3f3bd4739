// Elementwise activation kernels and the fused Dense epilogue/prologue.
#include "common/act_math.hpp"
#include "cuda/common.cuh"
#include "cuda/kernels.cuh"

namespace fastbp::cuda {
namespace {

using common::act_derivative;
using common::act_one;
using common::act_uses_input;
using common::with_act;

// f'(x) at element i; only kinds that use x read it, so x may be null for the others.
template <Act A, typename T>
__device__ inline T derivative_at(const T* x, const T* y, int64_t i, ActParams p) {
  if constexpr (act_uses_input(A)) return act_derivative<A>(x[i], y[i], p);
  else return act_derivative<A>(y[i], y[i], p);
}

template <Act A, typename T>
__global__ void bias_activation_kernel(T* z, const T* bias, int64_t m, int64_t n, ActParams p,
                                       T* y) {
  const int64_t count = m * n, stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) {
    const T v = z[i] + bias[i % n];
    if (y != z) z[i] = v;
    y[i] = act_one<A>(v, p);
  }
}

template <Act A, typename T>
__global__ void act_forward_kernel(const T* x, T* y, int64_t n, ActParams p) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    y[i] = act_one<A>(x[i], p);
}

template <Act A, typename T>
__global__ void act_backward_kernel(const T* x, const T* y, T* g, int64_t n, ActParams p) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    g[i] *= derivative_at<A>(x, y, i, p);
}

// A block owns 32 columns and walks all m rows with 8 rows of threads: each warp
// reads 32 consecutive columns of a row (coalesced), and the column sums are reduced
// in shared memory in a fixed order, so db is deterministic without atomics.
constexpr int kCols = 32, kRows = 8;

template <Act A, typename T>
__global__ void act_backward_bias_grad_kernel(const T* x, const T* y, T* g, int64_t m, int64_t n,
                                              ActParams p, T* db) {
  __shared__ T partial[kRows][kCols];
  const int64_t col = int64_t(blockIdx.x) * kCols + threadIdx.x;
  T sum = T(0);
  if (col < n) {
    for (int64_t i = threadIdx.y; i < m; i += kRows) {
      const int64_t at = i * n + col;
      const T v = g[at] * derivative_at<A>(x, y, at, p);
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
void bias_activation(T* z, const T* bias, int64_t m, int64_t n, Act act, ActParams p, T* y,
                     cudaStream_t stream) {
  with_act(act, [&](auto kind) {
    bias_activation_kernel<decltype(kind)::value, T>
        <<<grid_for(m * n), kBlock, 0, stream>>>(z, bias, m, n, p, y);
  });
  check_launch("bias_activation");
}

template <typename T>
void act_forward(Act act, ActParams p, const T* x, T* y, int64_t n, cudaStream_t stream) {
  with_act(act, [&](auto kind) {
    act_forward_kernel<decltype(kind)::value, T><<<grid_for(n), kBlock, 0, stream>>>(x, y, n, p);
  });
  check_launch("act_forward");
}

template <typename T>
void act_backward(Act act, ActParams p, const T* x, const T* y, T* g, int64_t n,
                  cudaStream_t stream) {
  if (act == Act::Identity) return;
  with_act(act, [&](auto kind) {
    act_backward_kernel<decltype(kind)::value, T>
        <<<grid_for(n), kBlock, 0, stream>>>(x, y, g, n, p);
  });
  check_launch("act_backward");
}

template <typename T>
void act_backward_bias_grad(Act act, ActParams p, const T* x, const T* y, T* g, int64_t m,
                            int64_t n, T* db, cudaStream_t stream) {
  const unsigned blocks = static_cast<unsigned>((n + kCols - 1) / kCols);
  with_act(act, [&](auto kind) {
    act_backward_bias_grad_kernel<decltype(kind)::value, T>
        <<<blocks, dim3(kCols, kRows), 0, stream>>>(x, y, g, m, n, p, db);
  });
  check_launch("act_backward_bias_grad");
}

template void bias_activation<float>(float*, const float*, int64_t, int64_t, Act, ActParams, float*,
                                     cudaStream_t);
template void act_forward<float>(Act, ActParams, const float*, float*, int64_t, cudaStream_t);
template void act_backward<float>(Act, ActParams, const float*, const float*, float*, int64_t,
                                  cudaStream_t);
template void act_backward_bias_grad<float>(Act, ActParams, const float*, const float*, float*,
                                            int64_t, int64_t, float*, cudaStream_t);
template void bias_activation<double>(double*, const double*, int64_t, int64_t, Act, ActParams,
                                      double*, cudaStream_t);
template void act_forward<double>(Act, ActParams, const double*, double*, int64_t, cudaStream_t);
template void act_backward<double>(Act, ActParams, const double*, const double*, double*, int64_t,
                                   cudaStream_t);
template void act_backward_bias_grad<double>(Act, ActParams, const double*, const double*, double*,
                                             int64_t, int64_t, double*, cudaStream_t);

}  // namespace fastbp::cuda
