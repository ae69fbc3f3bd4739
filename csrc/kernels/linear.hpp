#pragma once
#include <cstdint>

#include "act.hpp"

namespace fastbp::kernels {

// The forward epilogue of a Dense layer in one pass over the m x n row-major z:
// z[i, :] += b (z becomes the pre-activation) and y[i, :] = f(z[i, :]). y may equal z,
// which then holds f(z): the network passes that when !act_uses_input(act).
template <typename T>
void bias_activation_rows(T* z, const T* b, int64_t m, int64_t n, Act act, ActParams p, T* y);

// The backward prologue of a Dense layer in one pass over the m x n gradient g:
// g = g * f'(x) with x the pre-activation and y = f(x) the output, and the bias
// gradient db = sum over rows of the new g. x may be null when !act_uses_input(act).
template <typename T>
void activation_grad_bias_grad(const T* x, const T* y, T* g, int64_t m, int64_t n, Act act,
                               ActParams p, T* db);

}  // namespace fastbp::kernels
