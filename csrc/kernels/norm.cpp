// Every sum runs in double in a fixed order: rows are split among threads for the row
// norms' per-row sums, columns for the per-column sums (batch norm, and the row norms'
// dgamma/dbeta), so no sum is ever shared between threads and results do not depend on
// the thread count. Column passes walk whole rows of their column range, which keeps
// the reads contiguous.
#include "norm.hpp"

#include <cmath>
#include <utility>
#include <vector>

#include "common/norm_math.hpp"
#include "threads.hpp"

namespace fastbp::kernels {
namespace {

using namespace common;  // the norm maths

// Multiply-adds per element of a pass, for pick_threads.
constexpr int64_t kNormCost = 4;

// dgamma[j] = sum_i dy[i, j] * xhat[i, j], dbeta[j] = sum_i dy[i, j] for columns
// [begin, end), with xhat[i, j] = (x[i, j] - mean) * rstd and (mean, rstd) from
// stat(i, j). Writes the sums in double to g_sum and gx_sum (end - begin values).
template <typename T, typename Stat>
void column_grad_sums(const T* x, const T* dy, int64_t m, int64_t n, int64_t begin, int64_t end,
                      Stat stat, double* g_sum, double* gx_sum) {
  for (int64_t j = begin; j < end; ++j) g_sum[j - begin] = gx_sum[j - begin] = 0.0;
  for (int64_t i = 0; i < m; ++i) {
    const T* xi = x + i * n;
    const T* gi = dy + i * n;
    for (int64_t j = begin; j < end; ++j) {
      const auto [mu, rs] = stat(i, j);
      g_sum[j - begin] += double(gi[j]);
      gx_sum[j - begin] += double(gi[j]) * norm_xhat(double(xi[j]), mu, rs);
    }
  }
}

template <class N, typename T>
void rows_forward(const T* x, const T* gamma, const T* beta, int64_t m, int64_t n, double eps, T* y,
                  T* mean, T* rstd) {
  parallel_for(m, pick_threads(m * n * kNormCost), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const T* xi = x + i * n;
      double mu = 0.0;
      if constexpr (N::kCentred) {
        double sum = 0.0;
        for (int64_t j = 0; j < n; ++j) sum += double(xi[j]);
        mu = sum / double(n);
      }
      double sq = 0.0;
      for (int64_t j = 0; j < n; ++j) sq += squared_deviation(double(xi[j]), mu);
      const double rs = norm_rstd(sq / double(n), eps);
      for (int64_t j = 0; j < n; ++j)
        y[i * n + j] = row_norm_y<N>(xi[j], mu, rs, gamma[j], beta, j);
      if (mean) {
        mean[i] = T(mu);
        rstd[i] = T(rs);
      }
    }
  });
}

template <class N, typename T>
void rows_backward(const T* x, const T* gamma, const T* mean, const T* rstd, const T* dy, int64_t m,
                   int64_t n, T* dx, T* dgamma, T* dbeta) {
  parallel_for(m, pick_threads(m * n * kNormCost), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const T* xi = x + i * n;
      const T* gi = dy + i * n;
      const double mu = double(mean[i]), rs = double(rstd[i]);
      double g_sum = 0.0, gx_sum = 0.0;
      for (int64_t j = 0; j < n; ++j) {
        const double g = double(gi[j]) * double(gamma[j]);
        g_sum += g;
        gx_sum += g * norm_xhat(double(xi[j]), mu, rs);
      }
      const double g_mean = g_sum / double(n), gx_mean = gx_sum / double(n);
      for (int64_t j = 0; j < n; ++j) {
        const double g = double(gi[j]) * double(gamma[j]);
        dx[i * n + j] = T(N::dx(g, norm_xhat(double(xi[j]), mu, rs), rs, g_mean, gx_mean));
      }
    }
  });
  parallel_for(n, pick_threads(m * n * kNormCost), [&](int64_t begin, int64_t end) {
    std::vector<double> sums(2 * (end - begin));
    const auto row_stat = [&](int64_t i, int64_t) {
      return std::pair<double, double>(double(mean[i]), double(rstd[i]));
    };
    column_grad_sums(x, dy, m, n, begin, end, row_stat, sums.data(), sums.data() + (end - begin));
    for (int64_t j = begin; j < end; ++j) {
      if constexpr (N::kShift) dbeta[j] = T(sums[j - begin]);
      dgamma[j] = T(sums[end - begin + j - begin]);
    }
  });
}

}  // namespace

template <typename T>
void row_norm_forward(NormKind kind, const T* x, const T* gamma, const T* beta, int64_t m,
                      int64_t n, double eps, T* y, T* mean, T* rstd) {
  with_norm(kind, [&](auto norm) {
    rows_forward<decltype(norm)>(x, gamma, beta, m, n, eps, y, mean, rstd);
  });
}

template <typename T>
void row_norm_backward(NormKind kind, const T* x, const T* gamma, const T* mean, const T* rstd,
                       const T* dy, int64_t m, int64_t n, T* dx, T* dgamma, T* dbeta) {
  with_norm(kind, [&](auto norm) {
    rows_backward<decltype(norm)>(x, gamma, mean, rstd, dy, m, n, dx, dgamma, dbeta);
  });
}

template <typename T>
void batch_norm_forward_train(const T* x, const T* gamma, const T* beta, int64_t m, int64_t n,
                              double eps, double momentum, T* y, T* mean, T* rstd, T* running_mean,
                              T* running_var) {
  parallel_for(n, pick_threads(m * n * kNormCost), [&](int64_t begin, int64_t end) {
    const int64_t w = end - begin;
    std::vector<double> mu(w, 0.0), sq(w, 0.0), rs(w);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = begin; j < end; ++j) mu[j - begin] += double(x[i * n + j]);
    for (int64_t k = 0; k < w; ++k) mu[k] /= double(m);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = begin; j < end; ++j)
        sq[j - begin] += squared_deviation(double(x[i * n + j]), mu[j - begin]);
    for (int64_t j = begin; j < end; ++j) {
      const double unbiased = sq[j - begin] / double(m - 1);
      rs[j - begin] = norm_rstd(sq[j - begin] / double(m), eps);
      mean[j] = T(mu[j - begin]);
      rstd[j] = T(rs[j - begin]);
      running_mean[j] = T(running_update(double(running_mean[j]), mu[j - begin], momentum));
      running_var[j] = T(running_update(double(running_var[j]), unbiased, momentum));
    }
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = begin; j < end; ++j)
        y[i * n + j] = norm_affine(x[i * n + j], mu[j - begin], rs[j - begin], gamma[j], beta[j]);
  });
}

template <typename T>
void batch_norm_forward_infer(const T* x, const T* gamma, const T* beta, const T* running_mean,
                              const T* running_var, int64_t m, int64_t n, double eps, T* y) {
  std::vector<double> rs(n);
  for (int64_t j = 0; j < n; ++j) rs[j] = norm_rstd(double(running_var[j]), eps);
  parallel_for(m, pick_threads(m * n * kNormCost), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      for (int64_t j = 0; j < n; ++j)
        y[i * n + j] = norm_affine(x[i * n + j], double(running_mean[j]), rs[j], gamma[j], beta[j]);
  });
}

template <typename T>
void batch_norm_backward(const T* x, const T* gamma, const T* mean, const T* rstd, const T* dy,
                         int64_t m, int64_t n, T* dx, T* dgamma, T* dbeta) {
  parallel_for(n, pick_threads(m * n * kNormCost), [&](int64_t begin, int64_t end) {
    const int64_t w = end - begin;
    std::vector<double> sums(2 * w);
    double* g_sum = sums.data();
    double* gx_sum = sums.data() + w;
    const auto column_stat = [&](int64_t, int64_t j) {
      return std::pair<double, double>(double(mean[j]), double(rstd[j]));
    };
    column_grad_sums(x, dy, m, n, begin, end, column_stat, g_sum, gx_sum);
    for (int64_t j = begin; j < end; ++j) {
      dbeta[j] = T(g_sum[j - begin]);
      dgamma[j] = T(gx_sum[j - begin]);
    }
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = begin; j < end; ++j) {
        const double rs = double(rstd[j]);
        const double xhat = norm_xhat(double(x[i * n + j]), double(mean[j]), rs);
        dx[i * n + j] =
            T(batch_norm_dx(double(dy[i * n + j]), xhat, rs, double(gamma[j]),
                            g_sum[j - begin] / double(m), gx_sum[j - begin] / double(m)));
      }
  });
}

template void row_norm_forward<float>(NormKind, const float*, const float*, const float*, int64_t,
                                      int64_t, double, float*, float*, float*);
template void row_norm_backward<float>(NormKind, const float*, const float*, const float*,
                                       const float*, const float*, int64_t, int64_t, float*, float*,
                                       float*);
template void batch_norm_forward_train<float>(const float*, const float*, const float*, int64_t,
                                              int64_t, double, double, float*, float*, float*,
                                              float*, float*);
template void batch_norm_forward_infer<float>(const float*, const float*, const float*,
                                              const float*, const float*, int64_t, int64_t, double,
                                              float*);
template void batch_norm_backward<float>(const float*, const float*, const float*, const float*,
                                         const float*, int64_t, int64_t, float*, float*, float*);
template void row_norm_forward<double>(NormKind, const double*, const double*, const double*,
                                       int64_t, int64_t, double, double*, double*, double*);
template void row_norm_backward<double>(NormKind, const double*, const double*, const double*,
                                        const double*, const double*, int64_t, int64_t, double*,
                                        double*, double*);
template void batch_norm_forward_train<double>(const double*, const double*, const double*, int64_t,
                                               int64_t, double, double, double*, double*, double*,
                                               double*, double*);
template void batch_norm_forward_infer<double>(const double*, const double*, const double*,
                                               const double*, const double*, int64_t, int64_t,
                                               double, double*);
template void batch_norm_backward<double>(const double*, const double*, const double*,
                                          const double*, const double*, int64_t, int64_t, double*,
                                          double*, double*);

}  // namespace fastbp::kernels
