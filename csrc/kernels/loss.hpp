#pragma once
#include <cstdint>
#include <utility>

#include "common/loss_math.hpp"

namespace fastbp::kernels {

// Values are part of the Python binding (fastbp._core.Loss / Reduction); keep them stable.
enum class Loss : int {
  MSE = 0,
  SoftmaxCrossEntropy = 1,
  BCEWithLogits = 2,
  L1 = 3,
  Huber = 4,
  PoissonNLL = 5
};
enum class Reduction : int { Mean = 0, Sum = 1 };
using common::LossParams;

// The names _core exports their members under, as kActNames.
inline constexpr std::pair<Loss, const char*> kLossNames[] = {
    {Loss::MSE, "MSE"},
    {Loss::SoftmaxCrossEntropy, "SoftmaxCrossEntropy"},
    {Loss::BCEWithLogits, "BCEWithLogits"},
    {Loss::L1, "L1"},
    {Loss::Huber, "Huber"},
    {Loss::PoissonNLL, "PoissonNLL"}};
inline constexpr std::pair<Reduction, const char*> kReductionNames[] = {{Reduction::Mean, "Mean"},
                                                                        {Reduction::Sum, "Sum"}};

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
template <typename T>
double loss_forward(Loss loss, Reduction red, const T* y, Target<T> t, int64_t m, int64_t n,
                    T* grad, LossParams params = {});

// The settings of a loss from the `count` numbers its kind takes, in order: Huber's delta
// (finite, > 0); PoissonNLL's log_input and full (0 or 1) and eps (finite, >= 0); none
// for the others. std::invalid_argument naming what is wrong otherwise.
LossParams loss_params(Loss loss, const double* values, int64_t count);

// Row-wise softmax, max-shifted so no exp overflows.
template <typename T>
void softmax_rows(const T* x, T* y, int64_t m, int64_t n);

}  // namespace fastbp::kernels
