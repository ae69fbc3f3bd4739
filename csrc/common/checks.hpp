#pragma once
// The checks of a kernel's settings (a loss's, an optimizer's), in the wording of
// python/fastbp/_validate, so both layers report a bad value alike:
// std::invalid_argument "name must be <what>, got value".
#include <cmath>
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

}  // namespace fastbp::common
