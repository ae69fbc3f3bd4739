#include "loss.hpp"

#include <algorithm>
#include <cmath>

#include "common/loss_math.hpp"
#include "threads.hpp"

namespace fastbp::kernels {
namespace {

// An elementwise loss (common/loss_math.hpp) over m rows of n. With row weights the sum
// runs in the same order as without, so weights of 1 add up bitwise the same; a zero
// weight writes a zero gradient rather than 0 * grad, which would be NaN where the row's
// own terms overflow.
template <typename T, typename L>
double elementwise(L loss, const T* y, const T* t, const T* w, int64_t m, int64_t n, T scale,
                   T* grad) {
  const int64_t count = m * n;
  return parallel_sum(count, pick_threads(count * L::kCost), [&](int64_t begin, int64_t end) {
    double total = 0.0;
    if (!w) {
      for (int64_t i = begin; i < end; ++i) {
        total += loss.term(y[i], t[i]);
        if (grad) grad[i] = loss.grad(y[i], t[i], scale);
      }
      return total;
    }
    for (int64_t i = begin, row = begin / n, col = begin % n; i < end; ++i) {
      const T wr = w[row];
      if (wr != T(0)) {
        total += double(wr) * loss.term(y[i], t[i]);
        if (grad) grad[i] = loss.grad(y[i], t[i], scale * wr);
      } else if (grad) {
        grad[i] = T(0);
      }
      if (++col == n) col = 0, ++row;
    }
    return total;
  });
}

// One row, with t a one-hot row for labels (formulas in common/loss_math.hpp). exp runs
// in T (its argument is <= 0, so it cannot overflow), once per element: with a
// gradient, exp(x - max) is parked in it and scaled there.
template <typename T>
double softmax_ce_row(const T* x, Target<T> t, int64_t i, int64_t n, T scale, T* grad) {
  using CE = common::SoftmaxCrossEntropyLoss<T>;
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
      gi[j] = CE::grad(double(gi[j]), inv_sum, t_sum, tj, scale);
    }
  }
  return CE::row_loss(double(mx), sum_exp, t_sum, t_dot_x);
}

template <typename T>
double softmax_ce(const T* x, Target<T> t, int64_t m, int64_t n, T scale, T* grad) {
  const T* w = t.weights;
  const int64_t work = m * n * common::SoftmaxCrossEntropyLoss<T>::kCost;
  return parallel_sum(m, pick_threads(work), [&](int64_t begin, int64_t end) {
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
  return common::with_loss<T>(loss, params, [&](auto kind) {
    using L = decltype(kind);
    const int64_t divisor = common::loss_divisor<L>(red, m, n);
    const T scale = T(1) / T(divisor);
    double total;
    if constexpr (L::kPerRow) total = softmax_ce(y, t, m, n, scale, grad);
    else total = elementwise(kind, y, t.dense, t.weights, m, n, scale, grad);
    return total / double(divisor);
  });
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
