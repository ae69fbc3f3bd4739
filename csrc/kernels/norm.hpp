#pragma once
// The row norms (each row by its own statistics, common/norm_math.hpp's NormKind) and
// batch norm (over each column) of an m x n row-major x, torch.nn's definitions: biased
// variance inside the square root, y = (x - mean) * rstd * gamma + beta, rstd =
// 1 / sqrt(var + eps). Statistics are summed in double; the saved mean and rstd are what
// backward reads.
#include <cstdint>

#include "common/norm_math.hpp"

namespace fastbp::kernels {

// Row norm `kind`: mean and rstd are m values, one per row (the mean 0 for a kind not
// centred), or both null (not stored); beta is null for a kind without a shift.
template <typename T>
void row_norm_forward(common::NormKind kind, const T* x, const T* gamma, const T* beta, int64_t m,
                      int64_t n, double eps, T* y, T* mean, T* rstd);

// dx (m x n, not aliasing dy) and dgamma, dbeta (n, overwritten; dbeta null for a kind
// without a shift) from the forward's mean and rstd.
template <typename T>
void row_norm_backward(common::NormKind kind, const T* x, const T* gamma, const T* mean,
                       const T* rstd, const T* dy, int64_t m, int64_t n, T* dx, T* dgamma,
                       T* dbeta);

// Training mode, m >= 2: normalises with the batch's mean and biased variance (mean and
// rstd: n values, one per column) and moves the running statistics towards the batch's
// mean and unbiased variance by `momentum`, as torch.nn.BatchNorm1d.
template <typename T>
void batch_norm_forward_train(const T* x, const T* gamma, const T* beta, int64_t m, int64_t n,
                              double eps, double momentum, T* y, T* mean, T* rstd, T* running_mean,
                              T* running_var);

// Inference mode: normalises with the running statistics.
template <typename T>
void batch_norm_forward_infer(const T* x, const T* gamma, const T* beta, const T* running_mean,
                              const T* running_var, int64_t m, int64_t n, double eps, T* y);

// Backward of training mode (the batch statistics depend on x), from the forward's
// mean and rstd; dx does not alias dy, dgamma and dbeta are overwritten.
template <typename T>
void batch_norm_backward(const T* x, const T* gamma, const T* mean, const T* rstd, const T* dy,
                         int64_t m, int64_t n, T* dx, T* dgamma, T* dbeta);

}  // namespace fastbp::kernels
