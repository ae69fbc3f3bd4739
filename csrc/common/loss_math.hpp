#pragma once
// Everything about a loss kind, the one copy the CPU kernels and the CUDA kernels both
// compile, so the two backends cannot drift apart: the enum, its names, its settings and
// their checks, the per-element maths (torch.nn's definitions), the reduction's divisor,
// and with_loss, which turns the runtime kind into a type so hot loops carry no branch
// on it. The backends differ only in how they sum the terms.
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

#include "common/act_math.hpp"
#include "common/checks.hpp"
#include "common/hd.hpp"

namespace fastbp::common {

// Values are part of the Python binding (fastbp._core.Loss / Reduction); keep them stable.
enum class Loss : int {
  MSE = 0,
  SoftmaxCrossEntropy = 1,
  BCEWithLogits = 2,
  L1 = 3,
  Huber = 4,
  PoissonNLL = 5,
  SmoothL1 = 6
};
enum class Reduction : int { Mean = 0, Sum = 1 };

// The names _core exports their members under, as kActNames; Python derives every other
// spelling of a loss's name from these.
inline constexpr std::pair<Loss, const char*> kLossNames[] = {
    {Loss::MSE, "MSE"},
    {Loss::SoftmaxCrossEntropy, "SoftmaxCrossEntropy"},
    {Loss::BCEWithLogits, "BCEWithLogits"},
    {Loss::L1, "L1"},
    {Loss::Huber, "Huber"},
    {Loss::PoissonNLL, "PoissonNLL"},
    {Loss::SmoothL1, "SmoothL1"}};
inline constexpr std::pair<Reduction, const char*> kReductionNames[] = {{Reduction::Mean, "Mean"},
                                                                        {Reduction::Sum, "Sum"}};

// A loss's settings beyond its kind and reduction, in the order Python passes them:
// Huber a = delta; SmoothL1 a = beta; PoissonNLL a = log_input and b = full
// (each 0 or 1), c = eps; unused (0) for the others.
struct LossParams {
  double a = 0.0, b = 0.0, c = 0.0;
};

// One struct per loss. An elementwise loss (kPerRow false) has term(y, t), the element's
// loss in double, and grad(y, t, scale), dL/dy with scale = 1 / (the reduction's
// divisor); softmax cross-entropy (kPerRow true) is a loss of whole rows, with its row
// formulas. Each is built once from the loss's settings, outside the loops. kCount and
// kWhat say how many numbers its kind takes and what they are, checked() checks them (host
// code); kCost is
// the work of one element relative to MSE's, which sets how many threads a CPU kernel
// starts.
struct NoParams {
  static constexpr int kCount = 0;
  static constexpr const char* kWhat = "no parameters";
  static LossParams checked(const double*) { return {}; }
};

template <typename T>
struct MSELoss : NoParams {
  static constexpr bool kPerRow = false;
  static constexpr int64_t kCost = 1;
  explicit MSELoss(LossParams) {}
  // Squared error, summed in double.
  FASTBP_HD double term(T y, T t) const {
    const T d = y - t;
    return double(d) * double(d);
  }
  FASTBP_HD T grad(T y, T t, T scale) const { return T(2) * scale * (y - t); }
};

template <typename T>
struct L1Loss : NoParams {
  static constexpr bool kPerRow = false;
  static constexpr int64_t kCost = 1;
  explicit L1Loss(LossParams) {}
  FASTBP_HD double term(T y, T t) const {
    const T d = y - t;
    return double(d < T(0) ? -d : d);
  }
  // sign(y - t) * scale, 0 where y == t (torch's sign). A NaN difference gives NaN.
  FASTBP_HD T grad(T y, T t, T scale) const {
    const T d = y - t;
    return d > T(0) ? scale : d < T(0) ? -scale : d * scale;
  }
};

// torch.nn.HuberLoss: 0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta).
template <typename T>
struct HuberLoss {
  static constexpr bool kPerRow = false;
  static constexpr int64_t kCost = 1;
  static constexpr int kCount = 1;
  static constexpr const char* kWhat = "1 parameter (delta)";
  static LossParams checked(const double* v) {
    check_real("delta", v[0], true);
    return {v[0]};
  }
  double delta;
  T delta_t;
  explicit HuberLoss(LossParams p) : delta(p.a), delta_t(T(p.a)) {}
  FASTBP_HD double term(T y, T t) const {
    const double d = double(y - t);
    const double a = d < 0.0 ? -d : d;
    return a < delta ? 0.5 * d * d : delta * (a - 0.5 * delta);
  }
  // As torch's huber_loss_backward: d where |d| <= delta, else delta * sign(d).
  FASTBP_HD T grad(T y, T t, T scale) const {
    const T d = y - t;
    return scale * (d < -delta_t ? -delta_t : d > delta_t ? delta_t : d);
  }
};

// torch.nn.SmoothL1Loss: 0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta; L1 for
// beta = 0, as torch.nn.functional.smooth_l1_loss.
template <typename T>
struct SmoothL1Loss {
  static constexpr bool kPerRow = false;
  static constexpr int64_t kCost = 1;
  static constexpr int kCount = 1;
  static constexpr const char* kWhat = "1 parameter (beta)";
  static LossParams checked(const double* v) {
    check_real("beta", v[0], false);
    return {v[0]};
  }
  double beta;
  T beta_t;
  explicit SmoothL1Loss(LossParams p) : beta(p.a), beta_t(T(p.a)) {}
  FASTBP_HD double term(T y, T t) const {
    const double d = double(y - t);
    const double a = d < 0.0 ? -d : d;
    return a < beta ? 0.5 * d * d / beta : a - 0.5 * beta;
  }
  // As torch's smooth_l1_backward: sign(d) where |d| >= beta, else d / beta; L1's
  // gradient (0 where d == 0) for beta = 0.
  FASTBP_HD T grad(T y, T t, T scale) const {
    const T d = y - t;
    if (d < -beta_t) return -scale;
    if (d > beta_t) return scale;
    return beta_t > T(0) ? scale * d / beta_t : d * scale;
  }
};

// torch.nn.PoissonNLLLoss: exp(y) - t y for a log-rate y (LogInput), else
// y - t log(y + eps); full adds Stirling's approximation of log(t!),
// t log t - t + 0.5 log(2 pi t), where t > 1. LogInput is a template argument, so each
// mode's loop has no branch on it.
template <typename T, bool LogInput>
struct PoissonNLLLoss {
  static constexpr bool kPerRow = false;
  static constexpr int64_t kCost = 8;
  static constexpr int kCount = 3;
  static constexpr const char* kWhat = "3 parameters (log_input, full, eps)";
  static LossParams checked(const double* v) {
    check_flag("log_input", v[0]);
    check_flag("full", v[1]);
    check_real("eps", v[2], false);
    return {v[0], v[1], v[2]};
  }
  bool full;
  double eps;
  T eps_t;
  explicit PoissonNLLLoss(LossParams p) : full(p.b != 0.0), eps(p.c), eps_t(T(p.c)) {}
  FASTBP_HD double term(T y, T t) const {
    using std::exp, std::log;
    constexpr double two_pi = 6.283185307179586;
    const double yd = double(y), td = double(t);
    double term = LogInput ? exp(yd) - td * yd : yd - td * log(yd + eps);
    if (full && td > 1.0) term += td * log(td) - td + 0.5 * log(two_pi * td);
    return term;
  }
  // The Stirling term does not depend on y: exp(y) - t, else 1 - t / (y + eps).
  FASTBP_HD T grad(T y, T t, T scale) const {
    using std::exp;
    return scale * (LogInput ? exp(y) - t : T(1) - t / (y + eps_t));
  }
};

template <typename T>
struct BCEWithLogitsLoss : NoParams {
  static constexpr bool kPerRow = false;
  static constexpr int64_t kCost = 8;
  explicit BCEWithLogitsLoss(LossParams) {}
  // log(1 + exp(x)) - x*t written so no exp argument is positive.
  FASTBP_HD double term(T x, T t) const {
    using std::exp, std::fabs, std::log1p;
    return double((x < T(0) ? T(0) : x) - x * t + log1p(exp(-fabs(x))));
  }
  FASTBP_HD T grad(T x, T t, T scale) const { return scale * (stable_sigmoid(x) - t); }
};

// Softmax cross-entropy, a loss of whole rows (each row's target a one-hot row for a
// label): loss = lse(x) * sum(t) - sum(t * x), with lse taken around the row max
// (lse = max + log(sum_exp), sum_exp = sum of exp(x - max)).
template <typename T>
struct SoftmaxCrossEntropyLoss : NoParams {
  static constexpr bool kPerRow = true;
  static constexpr int64_t kCost = 8;
  explicit SoftmaxCrossEntropyLoss(LossParams) {}
  FASTBP_HD static double row_loss(double row_max, double sum_exp, double t_sum, double t_dot_x) {
    using std::log;
    return (row_max + log(sum_exp)) * t_sum - t_dot_x;
  }
  // dL/dx_j of that row: softmax(x)_j * sum(t) - t_j, from exp_shifted = exp(x_j - max).
  // exp(x - max) / sum rather than exp(x - lse): lse = max + log(sum) loses log(sum) to
  // rounding when |max| is large (all of it beyond 2^53), so softmax(x) would not sum to
  // 1 (logits [1e17, 1e17, 0] would give [1, 1, 0] instead of [0.5, 0.5, 0]).
  FASTBP_HD static T grad(double exp_shifted, double inv_sum_exp, double t_sum, double t_j,
                          T scale) {
    return scale * T(exp_shifted * inv_sum_exp * t_sum - t_j);
  }
};

// Calls f(loss) with the struct above of the runtime kind `loss`, built from its
// settings `p` (host code); returns what f returns. std::invalid_argument for a value
// that names no kind.
template <typename T, typename F>
inline auto with_loss(Loss loss, LossParams p, F&& f) {
  switch (loss) {
    case Loss::MSE: return f(MSELoss<T>(p));
    case Loss::SoftmaxCrossEntropy: return f(SoftmaxCrossEntropyLoss<T>(p));
    case Loss::BCEWithLogits: return f(BCEWithLogitsLoss<T>(p));
    case Loss::L1: return f(L1Loss<T>(p));
    case Loss::Huber: return f(HuberLoss<T>(p));
    case Loss::SmoothL1: return f(SmoothL1Loss<T>(p));
    case Loss::PoissonNLL:
      return p.a != 0.0 ? f(PoissonNLLLoss<T, true>(p)) : f(PoissonNLLLoss<T, false>(p));
  }
  throw std::invalid_argument("unknown loss kind " + std::to_string(int(loss)));
}

// What the reduction divides the summed terms by: 1 for sum; for mean, the rows for a
// loss of rows, else the elements.
template <typename L>
constexpr int64_t loss_divisor(Reduction red, int64_t m, int64_t n) {
  return red == Reduction::Sum ? 1 : L::kPerRow ? m : m * n;
}

// The settings of a loss from the `count` numbers its kind takes, in order;
// std::invalid_argument naming what is wrong otherwise.
inline LossParams loss_params(Loss loss, const double* values, int64_t count) {
  return with_loss<double>(loss, LossParams{}, [&](auto kind) {
    using L = decltype(kind);
    if (count != L::kCount)
      throw std::invalid_argument(std::string("this loss takes ") + L::kWhat + ", got " +
                                  std::to_string(count));
    return L::checked(values);
  });
}

}  // namespace fastbp::common
