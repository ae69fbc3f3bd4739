#pragma once
// The per-element maths of layer norm and batch norm (torch.nn.LayerNorm's and
// torch.nn.BatchNorm1d's definitions), the one copy the CPU kernels and the CUDA kernels
// both compile; the backends differ only in how they walk the rows and columns and sum.
// Everything runs in double: xhat = (x - mean) * rstd, rstd = 1 / sqrt(var + eps), with
// the biased variance inside the square root.
#include <cmath>

#include "common/hd.hpp"

namespace fastbp::common {

// (x - mean)^2, a term of the variance; taken around the mean (two passes), not as
// E[x^2] - E[x]^2, which cancels when |mean| >> std.
FASTBP_HD inline double squared_deviation(double x, double mean) {
  const double d = x - mean;
  return d * d;
}

// 1 / sqrt(var + eps).
FASTBP_HD inline double norm_rstd(double var, double eps) {
  using std::sqrt;
  return 1.0 / sqrt(var + eps);
}

FASTBP_HD inline double norm_xhat(double x, double mean, double rstd) { return (x - mean) * rstd; }

// y = xhat * gamma + beta.
template <typename T>
FASTBP_HD inline T norm_affine(T x, double mean, double rstd, T gamma, T beta) {
  return T(norm_xhat(double(x), mean, rstd) * double(gamma) + double(beta));
}

// A running statistic moved towards the batch's by `momentum`, as torch.nn.BatchNorm1d.
FASTBP_HD inline double running_update(double running, double batch, double momentum) {
  return momentum * batch + (1.0 - momentum) * running;
}

// Layer norm's dx of one element: rstd * (g - mean(g) - xhat * mean(g * xhat)), with
// g = dy * gamma and the means over the row.
FASTBP_HD inline double layer_norm_dx(double g, double xhat, double rstd, double g_mean,
                                      double gx_mean) {
  return rstd * (g - g_mean - xhat * gx_mean);
}

// Batch norm's dx of one element (training: the batch statistics depend on x):
// (dy - mean(dy) - xhat * mean(dy * xhat)) * rstd * gamma, the means over the column.
FASTBP_HD inline double batch_norm_dx(double dy, double xhat, double rstd, double gamma,
                                      double g_mean, double gx_mean) {
  return (dy - g_mean - xhat * gx_mean) * rstd * gamma;
}

}  // namespace fastbp::common
