#pragma once
// The CUDA kernel families the GPU network calls. Every function enqueues its work
// on `stream` and returns at once; pointers are device pointers.
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/act.hpp"
#include "kernels/loss.hpp"
#include "kernels/optim.hpp"

namespace fastbp::cuda {

using kernels::Act;

// c (m x n) = op(a) @ op(b), row-major, op(x) = x^T when the flag is set.
template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const T* a,
          int64_t lda, const T* b, int64_t ldb, T* c, int64_t ldc, cudaStream_t stream);

// z[i, :] = f(z[i, :] + bias) over the m x n row-major z.
template <typename T>
void bias_activation(T* z, const T* bias, int64_t m, int64_t n, Act act, cudaStream_t stream);

// y = f(x) elementwise; y may alias x.
template <typename T>
void act_forward(Act act, const T* x, T* y, int64_t n, cudaStream_t stream);

// g = g * f'(z) in place, through y = f(z).
template <typename T>
void act_backward(Act act, const T* y, T* g, int64_t n, cudaStream_t stream);

// g = g * f'(z) through y = f(z) over m x n, and db = column sums of the new g.
template <typename T>
void act_backward_bias_grad(Act act, const T* y, T* g, int64_t m, int64_t n, T* db,
                            cudaStream_t stream);

// Floats of scratch space loss() needs for m rows.
int64_t loss_scratch_size(int64_t m);

// Writes the loss of y (m x n) against t to *value (torch.nn's reductions, as
// kernels::loss_forward) and, when grad is not null, dL/dy to grad. param: Huber's delta.
template <typename T>
void loss(kernels::Loss kind, kernels::Reduction red, const T* y, kernels::Target<T> t,
          int64_t m, int64_t n, T* grad, double* scratch, double* value, cudaStream_t stream,
          double param = 0.0);

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
void optimizer_step(const kernels::OptimizerArgs& args, T* param, const T* grad,
                    T* const* states, int64_t n, const unsigned long long* status,
                    cudaStream_t stream);

// Doubles of scratch space clip_grad_norm needs.
int64_t clip_scratch_size();

// kernels::clip_grad_norm on the device, the norm summed there in a fixed order: a no-op
// once status records a diverged step; a non-finite norm records `step` as diverged
// (status[1] unset) and scales nothing.
template <typename T>
void clip_grad_norm(T* g, int64_t n, double max_norm, double* scratch, int64_t step,
                    unsigned long long* status, cudaStream_t stream);

}  // namespace fastbp::cuda
