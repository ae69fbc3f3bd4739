// The row norms and batch norm, kernels/norm.hpp's definitions. Each sum runs in double in
// a fixed order, with no atomics: a warp per row for the per-row sums (reduced by
// shuffles in a fixed pattern), a thread per column for the per-column sums (rows in
// order; neighbouring threads read neighbouring columns, so the reads coalesce).
#include "common/norm_math.hpp"
#include "cuda/common.cuh"
#include "cuda/kernels.cuh"

namespace fastbp::cuda {
namespace {

using namespace common;  // the norm maths

constexpr int kWarp = 32;
constexpr unsigned kAllLanes = 0xffffffffu;
constexpr int kRowsPerBlock = kBlock / kWarp;

__device__ __forceinline__ double warp_sum(double v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(kAllLanes, v, offset);
  return v;
}

unsigned row_blocks(int64_t m) {
  return static_cast<unsigned>((m + kRowsPerBlock - 1) / kRowsPerBlock);
}

template <class N, typename T>
__global__ void row_norm_forward_kernel(const T* x, const T* gamma, const T* beta, int64_t m,
                                        int64_t n, double eps, T* y, T* mean, T* rstd) {
  const int lane = threadIdx.x % kWarp;
  const int64_t row = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
  if (row >= m) return;  // whole warps leave together
  const T* xi = x + row * n;
  double mu = 0.0;
  if constexpr (N::kCentred) {
    double sum = 0.0;
    for (int64_t j = lane; j < n; j += kWarp) sum += double(xi[j]);
    mu = warp_sum(sum) / double(n);
  }
  double sq = 0.0;
  for (int64_t j = lane; j < n; j += kWarp) sq += squared_deviation(double(xi[j]), mu);
  const double rs = norm_rstd(warp_sum(sq) / double(n), eps);
  for (int64_t j = lane; j < n; j += kWarp)
    y[row * n + j] = row_norm_y<N>(xi[j], mu, rs, gamma[j], beta, j);
  if (lane == 0 && mean) {
    mean[row] = T(mu);
    rstd[row] = T(rs);
  }
}

template <class N, typename T>
__global__ void row_norm_dx_kernel(const T* x, const T* gamma, const T* mean, const T* rstd,
                                   const T* dy, int64_t m, int64_t n, T* dx) {
  const int lane = threadIdx.x % kWarp;
  const int64_t row = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
  if (row >= m) return;
  const T* xi = x + row * n;
  const T* gi = dy + row * n;
  const double mu = double(mean[row]), rs = double(rstd[row]);
  double g_sum = 0.0, gx_sum = 0.0;
  for (int64_t j = lane; j < n; j += kWarp) {
    const double g = double(gi[j]) * double(gamma[j]);
    g_sum += g;
    gx_sum += g * norm_xhat(double(xi[j]), mu, rs);
  }
  const double g_mean = warp_sum(g_sum) / double(n), gx_mean = warp_sum(gx_sum) / double(n);
  for (int64_t j = lane; j < n; j += kWarp) {
    const double g = double(gi[j]) * double(gamma[j]);
    dx[row * n + j] = T(N::dx(g, norm_xhat(double(xi[j]), mu, rs), rs, g_mean, gx_mean));
  }
}

// dgamma, dbeta of a row norm (dbeta only for a kind with a shift): the statistics are
// per row.
template <class N, typename T>
__global__ void row_norm_param_grad_kernel(const T* x, const T* mean, const T* rstd, const T* dy,
                                           int64_t m, int64_t n, T* dgamma, T* dbeta) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= n) return;
  double g_sum = 0.0, gx_sum = 0.0;
  for (int64_t i = 0; i < m; ++i) {
    const double g = double(dy[i * n + j]);
    g_sum += g;
    gx_sum += g * norm_xhat(double(x[i * n + j]), double(mean[i]), double(rstd[i]));
  }
  dgamma[j] = T(gx_sum);
  if constexpr (N::kShift) dbeta[j] = T(g_sum);
}

template <typename T>
__global__ void batch_norm_train_kernel(const T* x, const T* gamma, const T* beta, int64_t m,
                                        int64_t n, double eps, double momentum, T* y, T* mean,
                                        T* rstd, T* running_mean, T* running_var) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= n) return;
  double sum = 0.0;
  for (int64_t i = 0; i < m; ++i) sum += double(x[i * n + j]);
  const double mu = sum / double(m);
  double sq = 0.0;
  for (int64_t i = 0; i < m; ++i) sq += squared_deviation(double(x[i * n + j]), mu);
  const double rs = norm_rstd(sq / double(m), eps);
  mean[j] = T(mu);
  rstd[j] = T(rs);
  running_mean[j] = T(running_update(double(running_mean[j]), mu, momentum));
  running_var[j] = T(running_update(double(running_var[j]), sq / double(m - 1), momentum));
  for (int64_t i = 0; i < m; ++i)
    y[i * n + j] = norm_affine(x[i * n + j], mu, rs, gamma[j], beta[j]);
}

template <typename T>
__global__ void batch_norm_infer_kernel(const T* x, const T* gamma, const T* beta,
                                        const T* running_mean, const T* running_var, int64_t m,
                                        int64_t n, double eps, T* y) {
  const int64_t count = m * n, stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < count; k += stride) {
    const int64_t j = k % n;
    const double rs = norm_rstd(double(running_var[j]), eps);
    y[k] = norm_affine(x[k], double(running_mean[j]), rs, gamma[j], beta[j]);
  }
}

template <typename T>
__global__ void batch_norm_backward_kernel(const T* x, const T* gamma, const T* mean, const T* rstd,
                                           const T* dy, int64_t m, int64_t n, T* dx, T* dgamma,
                                           T* dbeta) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= n) return;
  const double mu = double(mean[j]), rs = double(rstd[j]), w = double(gamma[j]);
  double g_sum = 0.0, gx_sum = 0.0;
  for (int64_t i = 0; i < m; ++i) {
    const double g = double(dy[i * n + j]);
    g_sum += g;
    gx_sum += g * norm_xhat(double(x[i * n + j]), mu, rs);
  }
  dbeta[j] = T(g_sum);
  dgamma[j] = T(gx_sum);
  const double g_mean = g_sum / double(m), gx_mean = gx_sum / double(m);
  for (int64_t i = 0; i < m; ++i) {
    const double xhat = norm_xhat(double(x[i * n + j]), mu, rs);
    dx[i * n + j] = T(batch_norm_dx(double(dy[i * n + j]), xhat, rs, w, g_mean, gx_mean));
  }
}

unsigned column_blocks(int64_t n) { return static_cast<unsigned>((n + kBlock - 1) / kBlock); }

}  // namespace

template <typename T>
void row_norm_forward(NormKind kind, const T* x, const T* gamma, const T* beta, int64_t m,
                      int64_t n, double eps, T* y, T* mean, T* rstd, cudaStream_t stream) {
  if (m == 0) return;
  with_norm(kind, [&](auto norm) {
    row_norm_forward_kernel<decltype(norm), T>
        <<<row_blocks(m), kBlock, 0, stream>>>(x, gamma, beta, m, n, eps, y, mean, rstd);
  });
  check_launch("row_norm_forward_kernel");
}

template <typename T>
void row_norm_backward(NormKind kind, const T* x, const T* gamma, const T* mean, const T* rstd,
                       const T* dy, int64_t m, int64_t n, T* dx, T* dgamma, T* dbeta,
                       cudaStream_t stream) {
  with_norm(kind, [&](auto norm) {
    using N = decltype(norm);
    if (m > 0) {
      row_norm_dx_kernel<N, T>
          <<<row_blocks(m), kBlock, 0, stream>>>(x, gamma, mean, rstd, dy, m, n, dx);
      check_launch("row_norm_dx_kernel");
    }
    row_norm_param_grad_kernel<N, T>
        <<<column_blocks(n), kBlock, 0, stream>>>(x, mean, rstd, dy, m, n, dgamma, dbeta);
    check_launch("row_norm_param_grad_kernel");
  });
}

template <typename T>
void batch_norm_forward_train(const T* x, const T* gamma, const T* beta, int64_t m, int64_t n,
                              double eps, double momentum, T* y, T* mean, T* rstd, T* running_mean,
                              T* running_var, cudaStream_t stream) {
  batch_norm_train_kernel<T><<<column_blocks(n), kBlock, 0, stream>>>(
      x, gamma, beta, m, n, eps, momentum, y, mean, rstd, running_mean, running_var);
  check_launch("batch_norm_train_kernel");
}

template <typename T>
void batch_norm_forward_infer(const T* x, const T* gamma, const T* beta, const T* running_mean,
                              const T* running_var, int64_t m, int64_t n, double eps, T* y,
                              cudaStream_t stream) {
  if (m == 0) return;
  batch_norm_infer_kernel<T><<<grid_for(m * n), kBlock, 0, stream>>>(x, gamma, beta, running_mean,
                                                                     running_var, m, n, eps, y);
  check_launch("batch_norm_infer_kernel");
}

template <typename T>
void batch_norm_backward(const T* x, const T* gamma, const T* mean, const T* rstd, const T* dy,
                         int64_t m, int64_t n, T* dx, T* dgamma, T* dbeta, cudaStream_t stream) {
  batch_norm_backward_kernel<T>
      <<<column_blocks(n), kBlock, 0, stream>>>(x, gamma, mean, rstd, dy, m, n, dx, dgamma, dbeta);
  check_launch("batch_norm_backward_kernel");
}

template void row_norm_forward<float>(NormKind, const float*, const float*, const float*, int64_t,
                                      int64_t, double, float*, float*, float*, cudaStream_t);
template void row_norm_forward<double>(NormKind, const double*, const double*, const double*,
                                       int64_t, int64_t, double, double*, double*, double*,
                                       cudaStream_t);
template void row_norm_backward<float>(NormKind, const float*, const float*, const float*,
                                       const float*, const float*, int64_t, int64_t, float*, float*,
                                       float*, cudaStream_t);
template void row_norm_backward<double>(NormKind, const double*, const double*, const double*,
                                        const double*, const double*, int64_t, int64_t, double*,
                                        double*, double*, cudaStream_t);
template void batch_norm_forward_train<float>(const float*, const float*, const float*, int64_t,
                                              int64_t, double, double, float*, float*, float*,
                                              float*, float*, cudaStream_t);
template void batch_norm_forward_train<double>(const double*, const double*, const double*, int64_t,
                                               int64_t, double, double, double*, double*, double*,
                                               double*, double*, cudaStream_t);
template void batch_norm_forward_infer<float>(const float*, const float*, const float*,
                                              const float*, const float*, int64_t, int64_t, double,
                                              float*, cudaStream_t);
template void batch_norm_forward_infer<double>(const double*, const double*, const double*,
                                               const double*, const double*, int64_t, int64_t,
                                               double, double*, cudaStream_t);
template void batch_norm_backward<float>(const float*, const float*, const float*, const float*,
                                         const float*, int64_t, int64_t, float*, float*, float*,
                                         cudaStream_t);
template void batch_norm_backward<double>(const double*, const double*, const double*,
                                          const double*, const double*, int64_t, int64_t, double*,
                                          double*, double*, cudaStream_t);

}  // namespace fastbp::cuda
