#pragma once
#include <cstdint>

namespace fastbp::kernels {

// Values are part of the Python binding (fastbp._core.Act); keep them stable.
enum class Act : int { Identity = 0, Sigmoid = 1, ReLU = 2, Tanh = 3 };

// y = f(x), elementwise; y may alias x.
template <typename T>
void act_forward(Act act, const T* x, T* y, int64_t n);

// out = grad * f'(x), with f' written through the forward output y = f(x), so the
// network keeps only post-activation buffers. out may alias grad.
template <typename T>
void act_backward(Act act, const T* y, const T* grad, T* out, int64_t n);

}  // namespace fastbp::kernels
