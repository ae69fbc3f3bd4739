#pragma once
#include <cstdint>
#include <utility>

namespace fastbp::kernels {

// Values are part of the Python binding (fastbp._core.Act); keep them stable.
enum class Act : int { Identity = 0, Sigmoid = 1, ReLU = 2, Tanh = 3 };

// The names _core exports its members under (fastbp._core.Act.ReLU); Python derives
// every other spelling of an activation's name from these.
inline constexpr std::pair<Act, const char*> kActNames[] = {
    {Act::Identity, "Identity"}, {Act::Sigmoid, "Sigmoid"}, {Act::ReLU, "ReLU"},
    {Act::Tanh, "Tanh"}};

// An activation's settings: LeakyReLU a = negative_slope; ELU a = alpha; Softplus a =
// beta, b = threshold; unused by the others.
struct ActParams {
  double a = 0.0, b = 0.0;
};

// Whether f'(x) needs the pre-activation x, or is written through y = f(x).
constexpr bool act_uses_input(Act) { return false; }

// y = f(x), elementwise; y may alias x.
template <typename T>
void act_forward(Act act, const T* x, T* y, int64_t n);

// out = grad * f'(x), with f' written through the forward output y = f(x), so the
// network keeps only post-activation buffers. out may alias grad.
template <typename T>
void act_backward(Act act, const T* y, const T* grad, T* out, int64_t n);

}  // namespace fastbp::kernels
