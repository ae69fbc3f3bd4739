#pragma once
// Batch checks shared by the CPU and CUDA network bindings (any Net with in_features,
// out_features and loss_kind).
#include <optional>
#include <string>
#include <vector>

#include "bindings/arrays.hpp"
#include "bindings/dispatch.hpp"
#include "kernels/check.hpp"

namespace fastbp::bindings {

// Inputs X (rows x in_features), non-empty and finite.
template <typename T, typename Net>
const T* batch_ptr(const Net& net, const py::array& x) {
  const T* px = in_ptr<T>(x, "X", {-1, net.in_features()});
  if (dim(x, 0) == 0) throw py::value_error("X is an empty batch, shape " + shape_str(x));
  if (!kernels::all_finite(px, x.size())) throw py::value_error("X contains NaN or inf");
  return px;
}

// Raises ValueError unless every one of the n targets lies in [0, 1].
template <typename T>
void check_probabilities(const T* t, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (!(t[i] >= T(0) && t[i] <= T(1)))
      throw py::value_error("BCEWithLogitsLoss targets must lie in [0, 1], got " +
                            std::to_string(double(t[i])) + " at flat index " + std::to_string(i));
}

// A checked batch: inputs X (rows x in_features) and their targets. Class labels are
// the batch's own copy (see owned_indices), so it can be neither copied nor moved.
template <typename T>
struct Batch {
  template <typename Net>
  Batch(const Net& net, const py::array& x_, const py::array& t_)
      : x(batch_ptr<T>(net, x_)),
        rows(dim(x_, 0)),
        t(parse_target<T>(t_, net.loss_kind(), rows, net.out_features(), labels_)) {
    // A network's binary cross-entropy trains towards probabilities: its targets must be
    // ones (fb.ops' kernel computes the formula for any target, as PyTorch's does).
    if (net.loss_kind() == kernels::Loss::BCEWithLogits)
      check_probabilities(t.dense, rows * net.out_features());
  }
  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;

 private:
  std::vector<int64_t> labels_;  // declared first: t points into it

 public:
  const T* x;
  int64_t rows;
  kernels::Target<T> t;
};

// Row weights (rows,) of dtype T, finite and >= 0, or none. Not copied, as other float
// inputs are not: a value rewritten during the call gives a wrong result, never a bad read.
template <typename T>
const T* row_weights(const std::optional<py::array>& w, int64_t rows) {
  if (!w) return nullptr;
  const T* pw = in_ptr<T>(*w, "sample_weight", {rows});
  if (!kernels::all_finite(pw, rows)) throw py::value_error("sample_weight contains NaN or inf");
  for (int64_t i = 0; i < rows; ++i)
    if (pw[i] < T(0))
      throw py::value_error("sample_weight must be >= 0, got " + std::to_string(pw[i]) +
                            " at index " + std::to_string(i));
  return pw;
}

// The row order of an epoch (indices in [0, rows)), copied into `copy` and checked
// there, and its batch size (>= 1).
inline const int64_t* checked_order(const py::array& order, int64_t rows, int64_t batch_size,
                                    std::vector<int64_t>& copy) {
  const int64_t* po = owned_indices(order, "order", rows, copy);
  if (kernels::first_bad_label(po, rows, rows) >= 0)
    throw py::value_error("order must hold row indices in [0, " + std::to_string(rows) + ")");
  if (batch_size < 1)
    throw py::value_error("batch_size must be >= 1, got " + std::to_string(batch_size));
  return po;
}

}  // namespace fastbp::bindings
