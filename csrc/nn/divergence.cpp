#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "nn/trainer.hpp"

namespace fastbp::nn {

std::string divergence_reason(double loss, int64_t bad, const Plan& plan) {
  // %g, with NaN unsigned, as Python's f"{loss:g}" in the NumPy reference prints it.
  char text[32];
  std::snprintf(text, sizeof text, "%g", std::isnan(loss) ? std::fabs(loss) : loss);
  if (!std::isfinite(loss)) return std::string("the loss is ") + text;
  // Finite loss and gradients: clipping found the gradients' norm beyond double.
  if (bad < 0) return "the gradient norm is inf";
  const std::string where = gradient_name(plan, bad);
  if (where.empty())
    throw std::logic_error("divergence_reason: index " + std::to_string(bad) +
                           " is in no parameter slice");
  return "a gradient is NaN or inf (" + where + "; loss " + text + ")";
}

}  // namespace fastbp::nn
