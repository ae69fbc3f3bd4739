#pragma once
#include <cstdint>

#include "common/loss_math.hpp"

namespace fastbp::kernels {

using common::Loss;
using common::LossParams;
using common::Reduction;

// A loss target: dense rows (m x n, same dtype as the output) or, for softmax
// cross-entropy only, one class label per row. Exactly one of dense and labels is set.
// weights, when set, holds one finite weight >= 0 per row (Keras's sample weights).
template <typename T>
struct Target {
  const T* dense = nullptr;
  const int64_t* labels = nullptr;
  const T* weights = nullptr;
};

// The loss of outputs y (m x n) against target t, as torch.nn defines it: mean
// reduction averages over all elements for the elementwise losses, over rows for softmax
// cross-entropy. When grad is not null it receives dL/dy (m x n). Labels must be in
// range (checked by the caller). With row weights, each row's terms and gradient are
// scaled by its weight and the divisor stays the same (Keras's sum(w * loss) / N); a
// row of weight 0 adds exactly 0 to both, even where its own terms would overflow, and
// weights of 1 give the unweighted results bit for bit. The CPU kernels only: the CUDA
// loss takes no weights. params: the loss's settings, checked by loss_params.
// y and t may be m rows of a batch of batch_rows >= m rows: a mean then divides by the
// whole batch's count, so the values and gradients of its parts are the batch's
// (m == batch_rows for a whole batch).
template <typename T>
double loss_forward(Loss loss, Reduction red, const T* y, Target<T> t, int64_t m,
                    int64_t batch_rows, int64_t n, T* grad, LossParams params);

using common::loss_params;

// Row-wise softmax, max-shifted so no exp overflows.
template <typename T>
void softmax_rows(const T* x, T* y, int64_t m, int64_t n);

}  // namespace fastbp::kernels
