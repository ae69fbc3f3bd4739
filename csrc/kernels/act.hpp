#pragma once
#include <cstdint>

#include "common/act_math.hpp"

namespace fastbp::kernels {

using common::Act;
using common::act_uses_input;
using common::ActParams;
using common::kActNames;

// y = f(x), elementwise; y may alias x.
template <typename T>
void act_forward(Act act, ActParams p, const T* x, T* y, int64_t n);

// out = grad * f'(x), with y = f(x); x may be null when !act_uses_input(act), whose f'
// reads only y. out may alias grad.
template <typename T>
void act_backward(Act act, ActParams p, const T* x, const T* y, const T* grad, T* out, int64_t n);

}  // namespace fastbp::kernels
