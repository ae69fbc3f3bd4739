#pragma once
// Per-element loss formulas (torch.nn's definitions), the one copy the CPU kernels and
// the CUDA kernels both compile; the backends differ only in how they sum the terms.
#include <cmath>

#include "common/act_math.hpp"
#include "common/hd.hpp"

namespace fastbp::common {

// A loss's settings beyond its kind and reduction: Huber a = delta; PoissonNLL a =
// log_input and b = full (each 0 or 1), c = eps; unused (0) for the others.
struct LossParams {
  double a = 0.0, b = 0.0, c = 0.0;
};

// Squared error of one element, summed in double.
template <typename T>
FASTBP_HD inline double mse_term(T y, T t) {
  const T d = y - t;
  return double(d) * double(d);
}

// dL/dy of one element, with scale = 1 / (the reduction's divisor).
template <typename T>
FASTBP_HD inline T mse_grad(T y, T t, T scale) {
  return T(2) * scale * (y - t);
}

// |y - t| of one element, in double.
template <typename T>
FASTBP_HD inline double l1_term(T y, T t) {
  const T d = y - t;
  return double(d < T(0) ? -d : d);
}

// sign(y - t) * scale, 0 where y == t (torch's sign). A NaN difference gives NaN.
template <typename T>
FASTBP_HD inline T l1_grad(T y, T t, T scale) {
  const T d = y - t;
  return d > T(0) ? scale : d < T(0) ? -scale : d * scale;
}

// torch.nn.HuberLoss of one element: 0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta).
template <typename T>
FASTBP_HD inline double huber_term(T y, T t, double delta) {
  const double d = double(y - t);
  const double a = d < 0.0 ? -d : d;
  return a < delta ? 0.5 * d * d : delta * (a - 0.5 * delta);
}

// Its gradient, as torch's huber_loss_backward: d where |d| <= delta, else delta * sign(d).
template <typename T>
FASTBP_HD inline T huber_grad(T y, T t, T scale, T delta) {
  const T d = y - t;
  return scale * (d < -delta ? -delta : d > delta ? delta : d);
}

// torch.nn.PoissonNLLLoss of one element, in double: exp(y) - t y for a log-rate y
// (log_input), else y - t log(y + eps); full adds Stirling's approximation of log(t!),
// t log t - t + 0.5 log(2 pi t), where t > 1.
template <typename T>
FASTBP_HD inline double poisson_nll_term(T y, T t, bool log_input, bool full, double eps) {
  using std::exp, std::log;
  constexpr double two_pi = 6.283185307179586;
  const double yd = double(y), td = double(t);
  double term = log_input ? exp(yd) - td * yd : yd - td * log(yd + eps);
  if (full && td > 1.0) term += td * log(td) - td + 0.5 * log(two_pi * td);
  return term;
}

// Its gradient (the Stirling term does not depend on y): exp(y) - t, else 1 - t / (y + eps).
template <typename T>
FASTBP_HD inline T poisson_nll_grad(T y, T t, T scale, bool log_input, T eps) {
  using std::exp;
  return scale * (log_input ? exp(y) - t : T(1) - t / (y + eps));
}

// log(1 + exp(x)) - x*t written so no exp argument is positive.
template <typename T>
FASTBP_HD inline double bce_with_logits_term(T x, T t) {
  using std::exp, std::fabs, std::log1p;
  return double((x < T(0) ? T(0) : x) - x * t + log1p(exp(-fabs(x))));
}

template <typename T>
FASTBP_HD inline T bce_with_logits_grad(T x, T t, T scale) {
  return scale * (stable_sigmoid(x) - t);
}

// One softmax cross-entropy row: loss = lse(x) * sum(t) - sum(t * x), with lse taken
// around the row max (lse = max + log(sum_exp), sum_exp = sum of exp(x - max)).
FASTBP_HD inline double softmax_ce_row_loss(double row_max, double sum_exp, double t_sum,
                                            double t_dot_x) {
  using std::log;
  return (row_max + log(sum_exp)) * t_sum - t_dot_x;
}

// dL/dx_j of that row: softmax(x)_j * sum(t) - t_j, from exp_shifted = exp(x_j - max).
// exp(x - max) / sum rather than exp(x - lse): lse = max + log(sum) loses log(sum) to
// rounding when |max| is large (all of it beyond 2^53), so softmax(x) would not sum to 1
// (logits [1e17, 1e17, 0] would give [1, 1, 0] instead of [0.5, 0.5, 0]).
template <typename T>
FASTBP_HD inline T softmax_ce_grad(double exp_shifted, double inv_sum_exp, double t_sum, double t_j,
                                   T scale) {
  return scale * T(exp_shifted * inv_sum_exp * t_sum - t_j);
}

}  // namespace fastbp::common
