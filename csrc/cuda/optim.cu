// The optimizers and gradient clipping on the GPU: the per-element rules of
// common/optim_math.hpp, as kernels/optim.cpp runs them on the CPU.
#include "cuda/common.cuh"
#include "cuda/kernels.cuh"
#include "cuda/reduce.cuh"

namespace fastbp::cuda {
namespace {

// Blocks of the norm's partial sums, reduced by one block.
constexpr int kNormBlocks = kBlock;

template <typename Rule, typename C, typename T>
__global__ void optimizer_kernel(const C c, T* param, const T* grad, common::StatePtrs<T> s,
                                 int64_t n, const unsigned long long* status) {
  // Decided on the device, so the host need not wait for the check before enqueueing.
  if (status[0] != kNotDiverged) return;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    Rule::apply(c, i, param, grad, s);
}

template <typename T>
__global__ void square_sum_kernel(const T* g, int64_t n, double* partial,
                                  const unsigned long long* status) {
  if (status[0] != kNotDiverged) return;
  double total = 0.0;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    total += double(g[i]) * double(g[i]);
  total = block_sum(total);
  if (threadIdx.x == 0) partial[blockIdx.x] = total;
}

// scratch[kNormBlocks] = the norm, from the partial sums; a non-finite norm marks `step`
// as diverged (status[1], the bad gradient, stays unset: no gradient is NaN or inf).
__global__ void norm_kernel(double* scratch, unsigned long long step, unsigned long long* status) {
  if (status[0] != kNotDiverged) return;
  double total = 0.0;
  for (int64_t i = threadIdx.x; i < kNormBlocks; i += kBlock) total += scratch[i];
  total = block_sum(total);
  if (threadIdx.x != 0) return;
  scratch[kNormBlocks] = sqrt(total);
  if (!isfinite(scratch[kNormBlocks])) atomicCAS(status, kNotDiverged, step);
}

template <typename T>
__global__ void clip_kernel(T* g, int64_t n, double max_norm, const double* norm,
                            const unsigned long long* status) {
  if (status[0] != kNotDiverged) return;
  const double coef = max_norm / (*norm + 1e-6);
  if (coef >= 1.0) return;
  const T scale = T(coef);
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    g[i] *= scale;
}

// *loss += decay / 2 * the sum of the partial sums in scratch.
__global__ void penalty_loss_kernel(const double* scratch, double decay, double* loss,
                                    const unsigned long long* status) {
  if (status[0] != kNotDiverged) return;
  double total = 0.0;
  for (int64_t i = threadIdx.x; i < kNormBlocks; i += kBlock) total += scratch[i];
  total = block_sum(total);
  if (threadIdx.x == 0) *loss += 0.5 * decay * total;
}

template <typename T>
__global__ void penalty_grad_kernel(const T* p, T* g, int64_t n, T decay,
                                    const unsigned long long* status) {
  if (status[0] != kNotDiverged) return;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    g[i] += decay * p[i];
}

}  // namespace

int64_t clip_scratch_size() { return kNormBlocks + 1; }

template <typename T>
void optimizer_step(const kernels::OptimizerArgs& args, T* param, const T* grad, T* const* states,
                    int64_t n, const unsigned long long* status, cudaStream_t stream) {
  common::with_optimizer(args.kind, [&](auto rule) {
    using Rule = decltype(rule);
    const auto c = Rule::template coefficients<T>(args);
    common::StatePtrs<T> s{};
    for (int k = 0; k < Rule::n_states; ++k) s.s[k] = states[k];
    optimizer_kernel<Rule><<<grid_for(n), kBlock, 0, stream>>>(c, param, grad, s, n, status);
  });
  check_launch("optimizer_step");
}

template <typename T>
void clip_grad_norm(T* g, int64_t n, double max_norm, double* scratch, int64_t step,
                    unsigned long long* status, cudaStream_t stream) {
  square_sum_kernel<T><<<kNormBlocks, kBlock, 0, stream>>>(g, n, scratch, status);
  norm_kernel<<<1, kBlock, 0, stream>>>(scratch, static_cast<unsigned long long>(step), status);
  clip_kernel<T><<<grid_for(n), kBlock, 0, stream>>>(g, n, max_norm, scratch + kNormBlocks, status);
  check_launch("clip_grad_norm");
}

template <typename T>
void add_weight_penalty(const T* params, T* grads, int64_t n, double decay, double* loss,
                        double* scratch, const unsigned long long* status, cudaStream_t stream) {
  square_sum_kernel<T><<<kNormBlocks, kBlock, 0, stream>>>(params, n, scratch, status);
  penalty_loss_kernel<<<1, kBlock, 0, stream>>>(scratch, decay, loss, status);
  penalty_grad_kernel<T><<<grid_for(n), kBlock, 0, stream>>>(params, grads, n, T(decay), status);
  check_launch("add_weight_penalty");
}

template void optimizer_step<float>(const kernels::OptimizerArgs&, float*, const float*,
                                    float* const*, int64_t, const unsigned long long*,
                                    cudaStream_t);
template void optimizer_step<double>(const kernels::OptimizerArgs&, double*, const double*,
                                     double* const*, int64_t, const unsigned long long*,
                                     cudaStream_t);
template void clip_grad_norm<float>(float*, int64_t, double, double*, int64_t, unsigned long long*,
                                    cudaStream_t);
template void clip_grad_norm<double>(double*, int64_t, double, double*, int64_t,
                                     unsigned long long*, cudaStream_t);

template void add_weight_penalty<float>(const float*, float*, int64_t, double, double*, double*,
                                        const unsigned long long*, cudaStream_t);
template void add_weight_penalty<double>(const double*, double*, int64_t, double, double*, double*,
                                         const unsigned long long*, cudaStream_t);

}  // namespace fastbp::cuda
