// Loss value and gradient kernels, torch.nn's definitions (as kernels/loss.cpp).
// Sums run in double and are reduced in a fixed order, so a loss is deterministic.
#include "common/loss_math.hpp"
#include "cuda/common.cuh"
#include "cuda/kernels.cuh"
#include "cuda/reduce.cuh"

namespace fastbp::cuda {
namespace {

using kernels::Loss;
using kernels::Reduction;
using kernels::Target;

// Blocks of the elementwise losses: their partial sums are reduced by one block.
constexpr int kLossBlocks = kBlock;

// An elementwise loss (common/loss_math.hpp) over count elements; each block writes its
// sum.
template <typename L, typename T>
__global__ void elementwise_loss_kernel(L loss, const T* y, const T* t, int64_t count, T scale,
                                        T* grad, double* partial) {
  double total = 0.0;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) {
    total += loss.term(y[i], t[i]);
    if (grad) grad[i] = loss.grad(y[i], t[i], scale);
  }
  total = block_sum(total);
  if (threadIdx.x == 0) partial[blockIdx.x] = total;
}

// Softmax cross-entropy, one warp per row, with t one-hot for labels (formulas in
// common/loss_math.hpp). Writes each row's loss.
template <typename T>
__global__ void softmax_ce_kernel(const T* x, Target<T> t, int64_t m, int64_t n, T scale, T* grad,
                                  double* row_loss) {
  using CE = common::SoftmaxCrossEntropyLoss<T>;
  const int lane = threadIdx.x % kWarp;
  const int64_t row = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
  if (row >= m) return;  // whole warps leave together: m is per warp
  const T* xi = x + row * n;
  T mx = xi[0];
  for (int64_t j = lane; j < n; j += kWarp) mx = max(mx, xi[j]);
  for (int offset = kWarp / 2; offset > 0; offset /= 2)
    mx = max(mx, __shfl_xor_sync(kAllLanes, mx, offset));
  double sum_exp = 0.0, t_sum = 0.0, t_dot_x = 0.0;
  for (int64_t j = lane; j < n; j += kWarp) {
    sum_exp += exp(double(xi[j] - mx));
    if (t.dense) {
      t_sum += double(t.dense[row * n + j]);
      t_dot_x += double(t.dense[row * n + j]) * double(xi[j]);
    }
  }
  sum_exp = warp_sum(sum_exp);
  if (t.dense) {
    t_sum = warp_sum(t_sum);
    t_dot_x = warp_sum(t_dot_x);
  } else {
    t_sum = 1.0;
    t_dot_x = double(xi[t.labels[row]]);
  }
  if (grad) {
    const double inv_sum_exp = 1.0 / sum_exp;
    for (int64_t j = lane; j < n; j += kWarp) {
      const double tj = t.dense ? double(t.dense[row * n + j]) : (j == t.labels[row] ? 1.0 : 0.0);
      grad[row * n + j] = CE::grad(exp(double(xi[j] - mx)), inv_sum_exp, t_sum, tj, scale);
    }
  }
  if (lane == 0) row_loss[row] = CE::row_loss(double(mx), sum_exp, t_sum, t_dot_x);
}

// *value = scale * sum of count doubles, by one block in a fixed order.
__global__ void sum_kernel(const double* x, int64_t count, double scale, double* value) {
  double total = 0.0;
  for (int64_t i = threadIdx.x; i < count; i += kBlock) total += x[i];
  total = block_sum(total);
  if (threadIdx.x == 0) *value = total * scale;
}

}  // namespace

int64_t loss_scratch_size(int64_t m) { return std::max<int64_t>(m, kLossBlocks); }

template <typename T>
void loss(Loss kind, Reduction red, const T* y, Target<T> t, int64_t m, int64_t batch_rows,
          int64_t n, T* grad, double* scratch, double* value, cudaStream_t stream,
          kernels::LossParams params) {
  common::with_loss<T>(kind, params, [&](auto loss_kind) {
    using L = decltype(loss_kind);
    const int64_t divisor = common::loss_divisor<L>(red, batch_rows, n);
    const T scale = T(1) / T(divisor);
    int64_t partials = kLossBlocks;
    if constexpr (L::kPerRow) {
      const int64_t rows_per_block = kBlock / kWarp;
      const unsigned blocks = static_cast<unsigned>((m + rows_per_block - 1) / rows_per_block);
      softmax_ce_kernel<T><<<blocks, kBlock, 0, stream>>>(y, t, m, n, scale, grad, scratch);
      partials = m;
    } else {
      elementwise_loss_kernel<L, T>
          <<<kLossBlocks, kBlock, 0, stream>>>(loss_kind, y, t.dense, m * n, scale, grad, scratch);
    }
    check_launch("loss");
    sum_kernel<<<1, kBlock, 0, stream>>>(scratch, partials, 1.0 / double(divisor), value);
    check_launch("loss sum");
  });
}

template void loss<float>(Loss, Reduction, const float*, Target<float>, int64_t, int64_t, int64_t,
                          float*, double*, double*, cudaStream_t, kernels::LossParams);
template void loss<double>(Loss, Reduction, const double*, Target<double>, int64_t, int64_t,
                           int64_t, double*, double*, double*, cudaStream_t, kernels::LossParams);

}  // namespace fastbp::cuda
