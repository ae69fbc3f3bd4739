#pragma once
// Dropout in training: element i is kept iff common::dropout_uniform(key, first + i) >= p
// and kept values are scaled by 1 / (1 - p), as torch.nn.Dropout; p in [0, 1), p == 0
// copies. first: the index of x[0] in the whole pass (a part of a pass split by rows
// draws the mask the whole pass would there; 0 for a whole pass).
#include <cstdint>

#include "common/dropout_math.hpp"

namespace fastbp::kernels {

// y may alias x.
template <typename T>
void dropout_forward(const T* x, T* y, int64_t n, double p, uint64_t key, uint64_t first);

// dx = dy * mask * scale with the forward's mask; dx may alias dy.
template <typename T>
void dropout_backward(const T* dy, T* dx, int64_t n, double p, uint64_t key, uint64_t first);

}  // namespace fastbp::kernels
