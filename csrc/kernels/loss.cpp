#include "loss.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "clones.hpp"
#include "common/exp_nonpositive.hpp"
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

// The softmax kernels below take rows this many at a time.
constexpr int64_t kChunkRows = 64;

// For `rows` rows of n (x's rows n apart, rows <= kChunkRows): each row's max into mx,
// and exp(x - its row's max) into e (which may be x). The exps run over the whole block in
// one loop of the vectorised exp_nonpositive, where a row at a time would wait on the
// latency of its one or two vectors.
template <typename T>
FASTBP_CLONES void exp_shifted_rows(const T* x, int64_t rows, int64_t n, T* e, T* mx) {
  for (int64_t i = 0; i < rows; ++i) {
    const T* xi = x + i * n;
    mx[i] = *std::max_element(xi, xi + n);
    for (int64_t j = 0; j < n; ++j) e[i * n + j] = xi[j] - mx[i];
  }
  const int64_t count = rows * n;
  for (int64_t k = 0; k < count; ++k) e[k] = common::exp_nonpositive(e[k]);
}

// Rows [begin, end) of x (n columns), kChunkRows at a time: exp(x - row max) into the
// same rows of e, then row(i, e's row i, row i's max) for each.
template <typename T, typename F>
void for_each_exp_row(const T* x, int64_t begin, int64_t end, int64_t n, T* e, F&& row) {
  for (int64_t c0 = begin; c0 < end; c0 += kChunkRows) {
    const int64_t rows = std::min(kChunkRows, end - c0);
    T mx[kChunkRows];
    exp_shifted_rows(x + c0 * n, rows, n, e + c0 * n, mx);
    for (int64_t i = c0; i < c0 + rows; ++i) row(i, e + i * n, mx[i - c0]);
  }
}

// Row i's loss, with t a one-hot row for labels (formulas in common/loss_math.hpp), from
// ei = exp(x_i - mx) (exp runs in T: its argument is <= 0, so it cannot overflow). With
// a gradient, ei is the gradient's row and is scaled there.
template <typename T>
double softmax_ce_row(const T* x, Target<T> t, int64_t i, int64_t n, T scale, T* ei, T mx,
                      bool with_grad) {
  using CE = common::SoftmaxCrossEntropyLoss<T>;
  const T* xi = x + i * n;
  double sum_exp = 0.0;
  for (int64_t j = 0; j < n; ++j) sum_exp += double(ei[j]);
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
  if (with_grad) {
    const double inv_sum = 1.0 / sum_exp;
    for (int64_t j = 0; j < n; ++j) {
      const double tj = t.labels ? (j == t.labels[i] ? 1.0 : 0.0) : double(t.dense[i * n + j]);
      ei[j] = CE::grad(double(ei[j]), inv_sum, t_sum, tj, scale);
    }
  }
  return CE::row_loss(double(mx), sum_exp, t_sum, t_dot_x);
}

// The exps go into the gradient when there is one, else into a buffer of the same shape.
template <typename T>
double softmax_ce(const T* x, Target<T> t, int64_t m, int64_t n, T scale, T* grad) {
  const T* w = t.weights;
  std::vector<T> buffer(grad ? 0 : m * n);
  T* const exps = grad ? grad : buffer.data();
  const int64_t work = m * n * common::SoftmaxCrossEntropyLoss<T>::kCost;
  return parallel_sum(m, pick_threads(work), [&](int64_t begin, int64_t end) {
    double total = 0.0;
    for_each_exp_row(x, begin, end, n, exps, [&](int64_t i, T* ei, T mx) {
      if (!w) {
        total += softmax_ce_row(x, t, i, n, scale, ei, mx, grad != nullptr);
      } else if (w[i] != T(0)) {
        total += double(w[i]) * softmax_ce_row(x, t, i, n, scale * w[i], ei, mx, grad != nullptr);
      } else if (grad) {
        std::fill(ei, ei + n, T(0));
      }
    });
    return total;
  });
}

}  // namespace

template <typename T>
double loss_forward(Loss loss, Reduction red, const T* y, Target<T> t, int64_t m,
                    int64_t batch_rows, int64_t n, T* grad, LossParams params) {
  return common::with_loss<T>(loss, params, [&](auto kind) {
    using L = decltype(kind);
    const int64_t divisor = common::loss_divisor<L>(red, batch_rows, n);
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
    for_each_exp_row(x, begin, end, n, y, [&](int64_t, T* yi, T) {
      double sum = 0.0;
      for (int64_t j = 0; j < n; ++j) sum += double(yi[j]);
      const double inv = 1.0 / sum;
      for (int64_t j = 0; j < n; ++j) yi[j] = T(double(yi[j]) * inv);
    });
  });
}

template double loss_forward<float>(Loss, Reduction, const float*, Target<float>, int64_t, int64_t,
                                    int64_t, float*, LossParams);
template double loss_forward<double>(Loss, Reduction, const double*, Target<double>, int64_t,
                                     int64_t, int64_t, double*, LossParams);
template void softmax_rows<float>(const float*, float*, int64_t, int64_t);
template void softmax_rows<double>(const double*, double*, int64_t, int64_t);

}  // namespace fastbp::kernels
