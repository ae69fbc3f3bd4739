#pragma once
// The maths of the norms, the one copy the CPU kernels and the CUDA kernels both
// compile; the backends differ only in how they walk the rows and columns and sum.
// Everything runs in double: xhat = (x - centre) * rstd, rstd = 1 / sqrt(var + eps), with
// the biased variance (about the centre) inside the square root.
//
// The row norms (each row normalised by its own statistics) are one family: the NormKind
// enum and its names, one struct per kind (its statistics, whether it has a shift, its
// dx) and with_norm, which turns the runtime kind into a type so the kernels' loops carry
// no branch on it. Batch norm (each column by the batch's statistics) stands apart.
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

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

// Values are part of the Python binding (fastbp._core.NormKind, whose members Python
// reads by name); keep them stable.
enum class NormKind : int { LayerNorm = 0, RMSNorm = 1 };

// The names _core exports the members under, as kActNames.
inline constexpr std::pair<NormKind, const char*> kNormKindNames[] = {
    {NormKind::LayerNorm, "LayerNorm"}, {NormKind::RMSNorm, "RMSNorm"}};

// One struct per row norm. kCentred: the statistics are about the row's mean (the
// kernels take it; otherwise the centre is 0). kShift: y = xhat * gamma + beta, with a
// learnable beta (otherwise y = xhat * gamma, and the kernels take beta and dbeta null).
// dx(g, xhat, rstd, g_mean, gx_mean) is dL/dx of one element, with g = dy * gamma and
// g_mean, gx_mean the means of g and g * xhat over the row.

// torch.nn.LayerNorm over the last dimension.
struct LayerNormRow {
  static constexpr bool kCentred = true, kShift = true;
  FASTBP_HD static double dx(double g, double xhat, double rstd, double g_mean, double gx_mean) {
    return rstd * (g - g_mean - xhat * gx_mean);
  }
};

// torch.nn.RMSNorm over the last dimension: the mean square (about 0), no shift.
struct RMSNormRow {
  static constexpr bool kCentred = false, kShift = false;
  FASTBP_HD static double dx(double g, double xhat, double rstd, double, double gx_mean) {
    return rstd * (g - xhat * gx_mean);
  }
};

// Calls f(norm) with the struct above of the runtime kind `kind` (host code); returns
// what f returns. std::invalid_argument for a value that names no kind.
template <typename F>
inline auto with_norm(NormKind kind, F&& f) {
  switch (kind) {
    case NormKind::LayerNorm: return f(LayerNormRow{});
    case NormKind::RMSNorm: return f(RMSNormRow{});
  }
  throw std::invalid_argument("unknown norm kind " + std::to_string(int(kind)));
}

// Whether row norm `kind` has a learnable shift (the layer's "b").
inline bool norm_has_shift(NormKind kind) {
  return with_norm(kind, [](auto norm) { return decltype(norm)::kShift; });
}

// A row norm's y of one element: the shift beta[j] only when the kind has one.
template <class N, typename T>
FASTBP_HD inline T row_norm_y(T x, double centre, double rstd, T gamma, const T* beta, int64_t j) {
  if constexpr (N::kShift) return norm_affine(x, centre, rstd, gamma, beta[j]);
  else return T(norm_xhat(double(x), centre, rstd) * double(gamma));
}

// Batch norm's dx of one element (training: the batch statistics depend on x):
// (dy - mean(dy) - xhat * mean(dy * xhat)) * rstd * gamma, the means over the column.
FASTBP_HD inline double batch_norm_dx(double dy, double xhat, double rstd, double gamma,
                                      double g_mean, double gx_mean) {
  return (dy - g_mean - xhat * gx_mean) * rstd * gamma;
}

}  // namespace fastbp::common
