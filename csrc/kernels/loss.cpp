#include "loss.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "common/loss_math.hpp"
#include "threads.hpp"

namespace fastbp::kernels {
namespace {

// An elementwise loss (term and grad per element, as MSE and BCE) over m rows of n.
// With row weights the sum runs in the same order as without, so weights of 1 add up
// bitwise the same; a zero weight writes a zero gradient rather than 0 * grad, which
// would be NaN where the row's own terms overflow.
template <typename T, typename Term, typename Grad>
double elementwise(const T* y, const T* t, const T* w, int64_t m, int64_t n, T scale, T* grad,
                   int64_t work, Term term, Grad grad_of) {
  const int64_t count = m * n;
  return parallel_sum(count, pick_threads(work), [&](int64_t begin, int64_t end) {
    double total = 0.0;
    if (!w) {
      for (int64_t i = begin; i < end; ++i) {
        total += term(y[i], t[i]);
        if (grad) grad[i] = grad_of(y[i], t[i], scale);
      }
      return total;
    }
    for (int64_t i = begin, row = begin / n, col = begin % n; i < end; ++i) {
      const T wr = w[row];
      if (wr != T(0)) {
        total += double(wr) * term(y[i], t[i]);
        if (grad) grad[i] = grad_of(y[i], t[i], scale * wr);
      } else if (grad) {
        grad[i] = T(0);
      }
      if (++col == n) col = 0, ++row;
    }
    return total;
  });
}

template <typename T>
double mse(const T* y, const T* t, const T* w, int64_t m, int64_t n, T scale, T* grad) {
  return elementwise(
      y, t, w, m, n, scale, grad, m * n, [](T a, T b) { return common::mse_term(a, b); },
      [](T a, T b, T s) { return common::mse_grad(a, b, s); });
}

template <typename T>
double bce(const T* x, const T* t, const T* w, int64_t m, int64_t n, T scale, T* grad) {
  return elementwise(
      x, t, w, m, n, scale, grad, m * n * 8,
      [](T a, T b) { return common::bce_with_logits_term(a, b); },
      [](T a, T b, T s) { return common::bce_with_logits_grad(a, b, s); });
}

template <typename T>
double l1(const T* y, const T* t, const T* w, int64_t m, int64_t n, T scale, T* grad) {
  return elementwise(
      y, t, w, m, n, scale, grad, m * n, [](T a, T b) { return common::l1_term(a, b); },
      [](T a, T b, T s) { return common::l1_grad(a, b, s); });
}

template <typename T>
double huber(const T* y, const T* t, const T* w, int64_t m, int64_t n, T scale, T* grad,
             double delta) {
  const T d = T(delta);
  return elementwise(
      y, t, w, m, n, scale, grad, m * n,
      [delta](T a, T b) { return common::huber_term(a, b, delta); },
      [d](T a, T b, T s) { return common::huber_grad(a, b, s, d); });
}

// log_input is a template argument, so each mode's loop has no branch on it.
template <bool LogInput, typename T>
double poisson_nll(const T* y, const T* t, const T* w, int64_t m, int64_t n, T scale, T* grad,
                   bool full, double eps) {
  const T eps_t = T(eps);
  return elementwise(
      y, t, w, m, n, scale, grad, m * n * 8,
      [=](T a, T b) { return common::poisson_nll_term(a, b, LogInput, full, eps); },
      [=](T a, T b, T s) { return common::poisson_nll_grad(a, b, s, LogInput, eps_t); });
}

// "name must be <what>, got value", the value as python/fastbp/_validate.real words it.
[[noreturn]] void bad_param(const char* name, const char* what, double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", value);
  throw std::invalid_argument(std::string(name) + " must be " + what + ", got " + text);
}

void check_flag(const char* name, double value) {
  if (value != 0.0 && value != 1.0) bad_param(name, "0 or 1 (a bool)", value);
}

// How many numbers a loss takes, and what they are.
std::pair<int64_t, const char*> expected_params(Loss loss) {
  if (loss == Loss::Huber) return {1, "1 parameter (delta)"};
  if (loss == Loss::PoissonNLL) return {3, "3 parameters (log_input, full, eps)"};
  return {0, "no parameters"};
}

// One row, with t a one-hot row for labels (formulas in common/loss_math.hpp). exp runs
// in T (its argument is <= 0, so it cannot overflow), once per element: with a
// gradient, exp(x - max) is parked in it and scaled there.
template <typename T>
double softmax_ce_row(const T* x, Target<T> t, int64_t i, int64_t n, T scale, T* grad) {
  const T* xi = x + i * n;
  T* gi = grad ? grad + i * n : nullptr;
  const T mx = *std::max_element(xi, xi + n);
  double sum_exp = 0.0;
  for (int64_t j = 0; j < n; ++j) {
    const T e = std::exp(xi[j] - mx);
    if (gi) gi[j] = e;
    sum_exp += double(e);
  }
  double t_sum = 1.0, t_dot_x = 0.0;
  if (t.labels) {
    t_dot_x = double(xi[t.labels[i]]);
  } else {
    const T* ti = t.dense + i * n;
    t_sum = 0.0;
    for (int64_t j = 0; j < n; ++j) {
      t_sum += double(ti[j]);
      t_dot_x += double(ti[j]) * double(xi[j]);
    }
  }
  if (gi) {
    const double inv_sum = 1.0 / sum_exp;
    for (int64_t j = 0; j < n; ++j) {
      const double tj = t.labels ? (j == t.labels[i] ? 1.0 : 0.0) : double(t.dense[i * n + j]);
      gi[j] = common::softmax_ce_grad(double(gi[j]), inv_sum, t_sum, tj, scale);
    }
  }
  return common::softmax_ce_row_loss(double(mx), sum_exp, t_sum, t_dot_x);
}

template <typename T>
double softmax_ce(const T* x, Target<T> t, int64_t m, int64_t n, T scale, T* grad) {
  const T* w = t.weights;
  return parallel_sum(m, pick_threads(m * n * 8), [&](int64_t begin, int64_t end) {
    double total = 0.0;
    if (!w) {
      for (int64_t i = begin; i < end; ++i) total += softmax_ce_row(x, t, i, n, scale, grad);
      return total;
    }
    for (int64_t i = begin; i < end; ++i) {
      if (w[i] != T(0)) {
        total += double(w[i]) * softmax_ce_row(x, t, i, n, scale * w[i], grad);
      } else if (grad) {
        std::fill(grad + i * n, grad + (i + 1) * n, T(0));
      }
    }
    return total;
  });
}

}  // namespace

template <typename T>
double loss_forward(Loss loss, Reduction red, const T* y, Target<T> t, int64_t m, int64_t n,
                    T* grad, LossParams params) {
  const int64_t count = m * n;
  const int64_t divisor =
      red == Reduction::Sum ? 1 : (loss == Loss::SoftmaxCrossEntropy ? m : count);
  const T scale = T(1) / T(divisor);
  double total = 0.0;
  switch (loss) {
    case Loss::MSE: total = mse(y, t.dense, t.weights, m, n, scale, grad); break;
    case Loss::BCEWithLogits: total = bce(y, t.dense, t.weights, m, n, scale, grad); break;
    case Loss::SoftmaxCrossEntropy: total = softmax_ce(y, t, m, n, scale, grad); break;
    case Loss::L1: total = l1(y, t.dense, t.weights, m, n, scale, grad); break;
    case Loss::Huber: total = huber(y, t.dense, t.weights, m, n, scale, grad, params.a); break;
    case Loss::PoissonNLL: {
      const bool full = params.b != 0.0;
      total = params.a != 0.0
                  ? poisson_nll<true>(y, t.dense, t.weights, m, n, scale, grad, full, params.c)
                  : poisson_nll<false>(y, t.dense, t.weights, m, n, scale, grad, full, params.c);
      break;
    }
  }
  return total / double(divisor);
}

LossParams loss_params(Loss loss, const double* values, int64_t count) {
  const auto [want, what] = expected_params(loss);
  if (count != want)
    throw std::invalid_argument(std::string("this loss takes ") + what + ", got " +
                                std::to_string(count));
  LossParams p;
  if (loss == Loss::Huber) {
    p.a = values[0];
    if (!(std::isfinite(p.a) && p.a > 0.0)) bad_param("delta", "a finite number > 0.0", p.a);
  } else if (loss == Loss::PoissonNLL) {
    p = {values[0], values[1], values[2]};
    check_flag("log_input", p.a);
    check_flag("full", p.b);
    if (!(std::isfinite(p.c) && p.c >= 0.0)) bad_param("eps", "a finite number >= 0.0", p.c);
  }
  return p;
}

template <typename T>
void softmax_rows(const T* x, T* y, int64_t m, int64_t n) {
  parallel_for(m, pick_threads(m * n * 8), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const T* xi = x + i * n;
      T* yi = y + i * n;
      const T mx = *std::max_element(xi, xi + n);
      double sum = 0.0;
      for (int64_t j = 0; j < n; ++j) {
        yi[j] = std::exp(xi[j] - mx);
        sum += double(yi[j]);
      }
      const double inv = 1.0 / sum;
      for (int64_t j = 0; j < n; ++j) yi[j] = T(double(yi[j]) * inv);
    }
  });
}

template double loss_forward<float>(Loss, Reduction, const float*, Target<float>, int64_t, int64_t,
                                    float*, LossParams);
template double loss_forward<double>(Loss, Reduction, const double*, Target<double>, int64_t,
                                     int64_t, double*, LossParams);
template void softmax_rows<float>(const float*, float*, int64_t, int64_t);
template void softmax_rows<double>(const double*, double*, int64_t, int64_t);

}  // namespace fastbp::kernels
