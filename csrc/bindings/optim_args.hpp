#pragma once
// An optimizer update as Python hands it to fastbp._core: (kind, hyper, states, step,
// max_grad_norm), checked here so every binding refuses the same things alike.
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "bindings/arrays.hpp"
#include "common/optim_math.hpp"

namespace fastbp::bindings {

// kind and hyper (at most kMaxHyper numbers) for update number `step` (1-based), checked
// by common::check (ValueError naming the bad hyper-parameter).
inline common::OptimizerArgs optimizer_args(common::Optimizer kind,
                                            const std::vector<double>& hyper, int64_t step) {
  common::OptimizerArgs args{kind, {}, step};
  if (hyper.size() > size_t(common::kMaxHyper))
    throw py::value_error("hyper holds at most " + std::to_string(common::kMaxHyper) +
                          " numbers, got " + std::to_string(hyper.size()));
  for (size_t i = 0; i < hyper.size(); ++i) args.hyper[i] = hyper[i];
  try {
    common::check(args);
  } catch (const std::invalid_argument& e) {
    throw py::value_error(e.what());
  }
  return args;
}

// The kind's state buffers, each a writeable C-contiguous array of T and `shape`.
template <typename T>
std::vector<T*> state_ptrs(common::Optimizer kind, std::vector<py::array>& states,
                           const std::vector<int64_t>& shape) {
  const int want = common::n_states(kind);
  if (states.size() != size_t(want))
    throw py::value_error("this optimizer takes " + std::to_string(want) +
                          " state arrays, got " + std::to_string(states.size()));
  std::vector<T*> ptrs;
  for (size_t k = 0; k < states.size(); ++k) {
    const std::string name = "states[" + std::to_string(k) + "]";
    ptrs.push_back(out_ptr<T>(states[k], name.c_str(), shape));
  }
  return ptrs;
}

// max_grad_norm: 0 for no clipping, else finite > 0.
inline double checked_max_grad_norm(double value) {
  if (value == 0.0) return value;
  try {
    common::check_real("max_grad_norm", value, true);
  } catch (const std::invalid_argument& e) {
    throw py::value_error(e.what());
  }
  return value;
}

}  // namespace fastbp::bindings
