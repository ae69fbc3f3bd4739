#pragma once
// The CUDA kernel families the GPU network calls. Every function enqueues its work
// on `stream` and returns at once; pointers are device pointers.
#include <cuda_runtime.h>

#include <cstdint>

#include "common/norm_math.hpp"
#include "kernels/act.hpp"
#include "kernels/loss.hpp"
#include "kernels/optim.hpp"

namespace fastbp::cuda {

using kernels::Act;
using kernels::ActParams;

// c (m x n) = op(a) @ op(b), row-major, op(x) = x^T when the flag is set.
template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda,
          const T* b, int64_t ldb, T* c, int64_t ldc, cudaStream_t stream);

// z[i, :] += bias (z becomes the pre-activation) and y = f(z) over the m x n row-major
// z; y may equal z, which then holds f(z) (what the network passes when
// !act_uses_input(act)).
template <typename T>
void bias_activation(T* z, const T* bias, int64_t m, int64_t n, Act act, ActParams p, T* y,
                     cudaStream_t stream);

// y = f(x) elementwise; y may alias x.
template <typename T>
void act_forward(Act act, ActParams p, const T* x, T* y, int64_t n, cudaStream_t stream);

// g = g * f'(x) in place, with y = f(x); x may be null when !act_uses_input(act).
template <typename T>
void act_backward(Act act, ActParams p, const T* x, const T* y, T* g, int64_t n,
                  cudaStream_t stream);

// g = g * f'(x) over m x n as act_backward, and db = column sums of the new g.
template <typename T>
void act_backward_bias_grad(Act act, ActParams p, const T* x, const T* y, T* g, int64_t m,
                            int64_t n, T* db, cudaStream_t stream);

// Floats of scratch space loss() needs for m rows.
int64_t loss_scratch_size(int64_t m);

// Writes the loss of y (m x n) against t to *value (torch.nn's reductions, as
// kernels::loss_forward, a mean over a batch of batch_rows >= m rows) and, when grad is
// not null, dL/dy to grad. params: the loss's settings (kernels::loss_params).
template <typename T>
void loss(kernels::Loss kind, kernels::Reduction red, const T* y, kernels::Target<T> t, int64_t m,
          int64_t batch_rows, int64_t n, T* grad, double* scratch, double* value,
          cudaStream_t stream, kernels::LossParams params = {});

// A call's divergence status is two words in device memory, both set to kNotDiverged
// before its first step: status[0], the first step of the call that diverged;
// status[1], the lowest index of a NaN or inf gradient in that step.
constexpr unsigned long long kNotDiverged = ~0ull;

// The check before step `step`'s update: when the loss *value (not checked when value
// is null) or one of the n gradients is NaN or inf, and no earlier step of the call
// diverged, records the step (and the first bad gradient) in status.
template <typename T>
void check_step(const double* value, const T* grad, int64_t n, int64_t step,
                unsigned long long* status, cudaStream_t stream);

// One optimizer update of n parameters, as kernels::optimizer_step (states: a host
// array of n_states device pointers); a no-op once status records a diverged step, so
// neither that step nor a later one of the call updates.
template <typename T>
void optimizer_step(const kernels::OptimizerArgs& args, T* param, const T* grad, T* const* states,
                    int64_t n, const unsigned long long* status, cudaStream_t stream);

// kernels::add_weight_penalty on the device (grads += decay * params over n), with decay / 2
// times the sum of the squares, summed in a fixed order, added to *loss (a device double);
// scratch: clip_scratch_size() doubles. A no-op once status records a diverged step.
template <typename T>
void add_weight_penalty(const T* params, T* grads, int64_t n, double decay, double* loss,
                        double* scratch, const unsigned long long* status, cudaStream_t stream);

// Doubles of scratch space clip_grad_norm needs.
int64_t clip_scratch_size();

// kernels::clip_grad_norm on the device, the norm summed there in a fixed order: a no-op
// once status records a diverged step; a non-finite norm records `step` as diverged
// (status[1] unset) and scales nothing.
template <typename T>
void clip_grad_norm(T* g, int64_t n, double max_norm, double* scratch, int64_t step,
                    unsigned long long* status, cudaStream_t stream);

// The row norms over rows and batch norm over columns of an m x n x, as kernels/norm.hpp
// (same arguments; mean and rstd hold m values for a row norm, whose forward may take
// them null, and n for batch norm). No scratch: every sum is one warp's or one
// thread's, so results are deterministic.
template <typename T>
void row_norm_forward(common::NormKind kind, const T* x, const T* gamma, const T* beta, int64_t m,
                      int64_t n, double eps, T* y, T* mean, T* rstd, cudaStream_t stream);
template <typename T>
void row_norm_backward(common::NormKind kind, const T* x, const T* gamma, const T* mean,
                       const T* rstd, const T* dy, int64_t m, int64_t n, T* dx, T* dgamma, T* dbeta,
                       cudaStream_t stream);
template <typename T>
void batch_norm_forward_train(const T* x, const T* gamma, const T* beta, int64_t m, int64_t n,
                              double eps, double momentum, T* y, T* mean, T* rstd, T* running_mean,
                              T* running_var, cudaStream_t stream);
template <typename T>
void batch_norm_forward_infer(const T* x, const T* gamma, const T* beta, const T* running_mean,
                              const T* running_var, int64_t m, int64_t n, double eps, T* y,
                              cudaStream_t stream);
template <typename T>
void batch_norm_backward(const T* x, const T* gamma, const T* mean, const T* rstd, const T* dy,
                         int64_t m, int64_t n, T* dx, T* dgamma, T* dbeta, cudaStream_t stream);

// Dropout, as kernels/dropout.hpp: the same mask for the same key; y may alias x and
// dx may alias dy.
template <typename T>
void dropout_forward(const T* x, T* y, int64_t n, double p, uint64_t key, uint64_t first,
                     cudaStream_t stream);
template <typename T>
void dropout_backward(const T* dy, T* dx, int64_t n, double p, uint64_t key, uint64_t first,
                      cudaStream_t stream);

}  // namespace fastbp::cuda
