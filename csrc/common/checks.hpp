#pragma once
// Every check of a setting the kernels take (a loss's, an optimizer's, a layer's) and of
// BatchNorm's batch size, the one copy the network's plan, its loop and the ops all call:
// std::invalid_argument "name must be <what>, got value", in the wording of
// python/fastbp/_validate, so both layers report a bad value alike.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>

namespace fastbp::common {

[[noreturn]] inline void bad_setting(const char* name, const std::string& what, double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", value);
  throw std::invalid_argument(std::string(name) + " must be " + what + ", got " + text);
}

// A finite number >= 0 (> 0 when strict).
inline void check_real(const char* name, double value, bool strict) {
  if (std::isfinite(value) && value >= 0.0 && !(strict && value == 0.0)) return;
  bad_setting(name, strict ? "a finite number > 0.0" : "a finite number >= 0.0", value);
}

inline void check_below_one(const char* name, double value) {
  check_real(name, value, false);
  if (value >= 1.0) bad_setting(name, "in [0, 1)", value);
}

// A bool passed as a number.
inline void check_flag(const char* name, double value) {
  if (value != 0.0 && value != 1.0) bad_setting(name, "0 or 1 (a bool)", value);
}

// An activation's settings (LeakyReLU's slope, ...): finite; each Python class checks
// its own ranges.
inline void check_act_settings(double a, double b) {
  if (std::isfinite(a) && std::isfinite(b)) return;
  char text[64];
  std::snprintf(text, sizeof text, "a=%g, b=%g", a, b);
  throw std::invalid_argument(std::string("the activation's settings must be finite, got ") + text);
}

// Dropout's probability of zeroing an element.
inline void check_dropout_p(double p) {
  if (!(p >= 0.0 && p < 1.0)) bad_setting("p", "in [0, 1)", p);
}

// BatchNorm's momentum, the weight of the batch in the running statistics.
inline void check_momentum_fraction(double momentum) {
  if (!(momentum > 0.0 && momentum <= 1.0)) bad_setting("momentum", "in (0, 1]", momentum);
}

// The eps of the norms, added to the variance.
inline void check_norm_eps(double eps) { check_real("eps", eps, true); }

// Batch statistics need two rows in training (one row per column gives no variance):
// refused before anything changes, as torch refuses.
inline void check_batch_norm_rows(int64_t m) {
  if (m < 2)
    throw std::invalid_argument(
        "BatchNorm needs batches of at least 2 rows in training (one row gives no variance), "
        "got " +
        std::to_string(m));
}

}  // namespace fastbp::common
