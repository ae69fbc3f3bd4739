#pragma once
#include <cmath>
#include <string>
#include <vector>

#include "bindings/arrays.hpp"
#include "common/checks.hpp"
#include "kernels/act.hpp"
#include "kernels/check.hpp"
#include "kernels/loss.hpp"

namespace fastbp::bindings {

// Calls f(float{}) or f(double{}) by the dtype of `a`; any other dtype is a TypeError.
template <typename F>
py::object by_dtype(const py::array& a, const char* name, F&& f) {
  if (holds<float>(a)) return f(float{});
  if (holds<double>(a)) return f(double{});
  throw py::type_error(std::string(name) + " must have dtype float32 or float64, got " +
                       std::string(py::str(a.dtype())));
}

// An activation's settings from Python (common::check_act_settings); ValueError otherwise.
inline kernels::ActParams act_params(double a, double b) {
  common::check_act_settings(a, b);
  return {a, b};
}

// A loss's settings from Python: the sequence of numbers its kind takes (see
// kernels::loss_params); ValueError naming what is wrong otherwise.
inline kernels::LossParams loss_params(kernels::Loss kind, const py::sequence& values) {
  constexpr size_t kMost = 3;  // PoissonNLL's
  const size_t count = values.size();
  double numbers[kMost] = {};
  for (size_t i = 0; i < count && i < kMost; ++i) {
    try {
      numbers[i] = py::cast<double>(values[i]);
    } catch (const py::cast_error&) {
      throw py::type_error("loss parameters must be real numbers, got " +
                           std::string(py::str(py::repr(values[i]))));
    }
  }
  try {
    return kernels::loss_params(kind, numbers, int64_t(count));
  } catch (const std::invalid_argument& e) {
    throw py::value_error(e.what());
  }
}

// `a` (int64, shape (n,)) copied into `copy`, which the caller owns. Index arrays are
// copied, and the copy is checked and used, because the caller then releases the GIL:
// another Python thread could rewrite the original after a check made on it, and C++
// would then index out of bounds.
inline const int64_t* owned_indices(const py::array& a, const char* name, int64_t n,
                                    std::vector<int64_t>& copy) {
  const int64_t* p = in_ptr<int64_t>(a, name, {n});
  copy.assign(p, p + n);
  return copy.data();
}

// A loss target for outputs of shape (m, n): int64 labels of shape (m,) for softmax
// cross-entropy, copied into `labels` and range-checked there, else a finite array of
// the outputs' dtype and shape ((m,) also reads as (m, 1) when n == 1).
template <typename T>
kernels::Target<T> parse_target(const py::array& t, kernels::Loss loss, int64_t m, int64_t n,
                                std::vector<int64_t>& labels) {
  kernels::Target<T> target;
  if (loss == kernels::Loss::SoftmaxCrossEntropy && t.ndim() == 1) {
    target.labels = owned_indices(t, "class labels", m, labels);
    const int64_t bad = kernels::first_bad_label(target.labels, m, n);
    if (bad >= 0)
      throw py::value_error("class labels must be in [0, " + std::to_string(n) + "), got " +
                            std::to_string(target.labels[bad]) + " at index " +
                            std::to_string(bad));
  } else {
    const bool column = n == 1 && t.ndim() == 1;
    target.dense =
        in_ptr<T>(t, "target", column ? std::vector<int64_t>{m} : std::vector<int64_t>{m, n});
    if (!kernels::all_finite(target.dense, m * n))
      throw py::value_error("target contains NaN or inf");
  }
  return target;
}

}  // namespace fastbp::bindings
