#pragma once
#include <cstdint>

#include "act.hpp"

namespace fastbp::kernels {

// The forward epilogue of a Dense layer in one pass over the m x n row-major z:
// z[i, :] = f(z[i, :] + b).
template <typename T>
void bias_activation_rows(T* z, const T* b, int64_t m, int64_t n, Act act);

// The backward prologue of a Dense layer in one pass over the m x n gradient g:
// g = g * f'(z), with f' written through the forward output y = f(z), and the bias
// gradient db = sum over rows of the new g.
template <typename T>
void activation_grad_bias_grad(const T* y, T* g, int64_t m, int64_t n, Act act, T* db);

}  // namespace fastbp::kernels
