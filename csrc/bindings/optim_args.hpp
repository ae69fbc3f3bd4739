#pragma once
// An optimizer update as Python hands it to fastbp._core: (kind, hyper, states, step,
// max_grad_norm), checked here so every binding refuses the same things alike.

#include <string>
#include <vector>

#include "bindings/arrays.hpp"
#include "common/optim_math.hpp"

namespace fastbp::bindings {

// kind and hyper (a sequence of at most kMaxHyper numbers) for update number `step`
// (1-based), checked by common::check (ValueError naming the bad hyper-parameter). Read
// straight from the Python sequence: this runs on every training call.
inline common::OptimizerArgs optimizer_args(common::Optimizer kind, const py::sequence& hyper,
                                            int64_t step) {
  common::OptimizerArgs args{kind, {}, step};
  const size_t count = hyper.size();
  if (count > size_t(common::kMaxHyper))
    throw py::value_error("hyper holds at most " + std::to_string(common::kMaxHyper) +
                          " numbers, got " + std::to_string(count));
  for (size_t i = 0; i < count; ++i) args.hyper[i] = py::cast<double>(hyper[i]);
  try {
    common::check(args);
  } catch (const std::invalid_argument& e) {
    throw py::value_error(e.what());
  }
  return args;
}

// The kind's state buffers (a sequence of arrays), each a writeable C-contiguous array
// of T and `shape`, into ptrs[0 .. n_states(kind)).
template <typename T>
void state_ptrs(common::Optimizer kind, const py::sequence& states,
                const std::vector<int64_t>& shape, T** ptrs) {
  const size_t want = size_t(common::n_states(kind));
  if (states.size() != want)
    throw py::value_error("this optimizer takes " + std::to_string(want) + " state arrays, got " +
                          std::to_string(states.size()));
  static const char* const names[] = {"states[0]", "states[1]", "states[2]"};
  static_assert(sizeof names / sizeof names[0] == common::kMaxStates, "a name per state");
  for (size_t k = 0; k < want; ++k) {
    py::object item = states[k];
    if (!py::isinstance<py::array>(item))
      throw py::type_error(std::string(names[k]) + " must be a NumPy array, got " +
                           std::string(py::str(py::type::of(item).attr("__name__"))));
    py::array a = py::reinterpret_borrow<py::array>(item);
    ptrs[k] = out_ptr<T>(a, names[k], shape);
  }
}

// An optimizer's update as Python builds it once per change of its hyper-parameters
// (fastbp._core.UpdateSpec): the kind, the checked hyper-parameters and the clipping norm,
// so a training call takes one object instead of converting and checking them again.
struct UpdateSpec {
  common::OptimizerArgs args;
  int n_hyper;  // of args.hyper, as given
  double max_grad_norm;
};

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
