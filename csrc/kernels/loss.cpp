#include "loss.hpp"

#include <algorithm>
#include <cmath>

#include "act_math.hpp"
#include "threads.hpp"

namespace fastbp::kernels {
namespace {

template <typename T>
double mse(const T* y, const T* t, int64_t count, T scale, T* grad) {
  return parallel_sum(count, pick_threads(count), [&](int64_t begin, int64_t end) {
    double total = 0.0;
    for (int64_t i = begin; i < end; ++i) {
      const T d = y[i] - t[i];
      total += double(d) * double(d);
      if (grad) grad[i] = T(2) * scale * d;
    }
    return total;
  });
}

// log(1 + exp(x)) - x*t written so no exp argument is positive.
template <typename T>
double bce(const T* x, const T* t, int64_t count, T scale, T* grad) {
  return parallel_sum(count, pick_threads(count * 8), [&](int64_t begin, int64_t end) {
    double total = 0.0;
    for (int64_t i = begin; i < end; ++i) {
      total += double(std::max(x[i], T(0)) - x[i] * t[i] + std::log1p(std::exp(-std::abs(x[i]))));
      if (grad) grad[i] = scale * (stable_sigmoid(x[i]) - t[i]);
    }
    return total;
  });
}

// One row: loss = lse(x) * sum(t) - sum(t * x), grad = softmax(x) * sum(t) - t, with t
// a one-hot row for labels. lse is taken around the row max so it never overflows. exp
// runs in T (its argument is <= 0, so it cannot overflow), once per element: with a
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
  const double lse = double(mx) + std::log(sum_exp);
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
    // exp(x - max) / sum rather than exp(x - lse): lse = max + log(sum) loses log(sum)
    // to rounding when |max| is large (all of it beyond 2^53), so softmax(x) would not
    // sum to 1.
    const double inv_sum = 1.0 / sum_exp;
    for (int64_t j = 0; j < n; ++j) {
      const double tj = t.labels ? (j == t.labels[i] ? 1.0 : 0.0) : double(t.dense[i * n + j]);
      gi[j] = scale * T(double(gi[j]) * inv_sum * t_sum - tj);
    }
  }
  return lse * t_sum - t_dot_x;
}

template <typename T>
double softmax_ce(const T* x, Target<T> t, int64_t m, int64_t n, T scale, T* grad) {
  return parallel_sum(m, pick_threads(m * n * 8), [&](int64_t begin, int64_t end) {
    double total = 0.0;
    for (int64_t i = begin; i < end; ++i) total += softmax_ce_row(x, t, i, n, scale, grad);
    return total;
  });
}

}  // namespace

template <typename T>
double loss_forward(Loss loss, Reduction red, const T* y, Target<T> t, int64_t m, int64_t n,
                    T* grad) {
  const int64_t count = m * n;
  const int64_t divisor = red == Reduction::Sum ? 1 : (loss == Loss::SoftmaxCrossEntropy ? m : count);
  const T scale = T(1) / T(divisor);
  double total = 0.0;
  switch (loss) {
    case Loss::MSE: total = mse(y, t.dense, count, scale, grad); break;
    case Loss::BCEWithLogits: total = bce(y, t.dense, count, scale, grad); break;
    case Loss::SoftmaxCrossEntropy: total = softmax_ce(y, t, m, n, scale, grad); break;
  }
  return total / double(divisor);
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

template double loss_forward<float>(Loss, Reduction, const float*, Target<float>, int64_t,
                                    int64_t, float*);
template double loss_forward<double>(Loss, Reduction, const double*, Target<double>, int64_t,
                                     int64_t, double*);
template void softmax_rows<float>(const float*, float*, int64_t, int64_t);
template void softmax_rows<double>(const double*, double*, int64_t, int64_t);

}  // namespace fastbp::kernels
