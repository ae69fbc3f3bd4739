#pragma once
// Checks at the Python/C++ boundary: every array that reaches a kernel has the exact
// dtype, C-contiguous layout and shape the kernel assumes, so a direct call into
// fastbp._core raises a Python exception instead of reading out of bounds.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

namespace fastbp::bindings {

namespace py = pybind11;

std::string shape_str(const py::array& a);

// Whether `a` holds T: its dtype is equivalent to T's, though not necessarily the same
// object (an unpickled or memory-mapped array carries a dtype object of its own).
template <typename T>
bool holds(const py::array& a) {
  return py::array_t<T>::check_(a);
}

// Raises TypeError unless `a` is C-contiguous with dtype T, and ValueError unless its
// shape matches `shape` (an entry of -1 matches any size).
template <typename T>
void check_array(const py::array& a, const char* name, const std::vector<int64_t>& shape) {
  if (!holds<T>(a))
    throw py::type_error(std::string(name) + " must have dtype " +
                         std::string(py::str(py::dtype::of<T>())) + ", got " +
                         std::string(py::str(a.dtype())));
  if (!(a.flags() & py::array::c_style))
    throw py::type_error(std::string(name) + " must be C-contiguous");
  bool ok = a.ndim() == static_cast<py::ssize_t>(shape.size());
  for (size_t i = 0; ok && i < shape.size(); ++i) ok = shape[i] < 0 || a.shape(i) == shape[i];
  if (!ok) {
    std::string want = "(";
    for (size_t i = 0; i < shape.size(); ++i)
      want += (i ? ", " : "") + (shape[i] < 0 ? std::string("*") : std::to_string(shape[i]));
    want += shape.size() == 1 ? ",)" : ")";
    throw py::value_error(std::string(name) + " must have shape " + want + ", got " + shape_str(a));
  }
}

template <typename T>
const T* in_ptr(const py::array& a, const char* name, const std::vector<int64_t>& shape) {
  check_array<T>(a, name, shape);
  return static_cast<const T*>(a.data());
}

template <typename T>
T* out_ptr(py::array& a, const char* name, const std::vector<int64_t>& shape) {
  check_array<T>(a, name, shape);
  if (!a.writeable()) throw py::value_error(std::string(name) + " must be writeable");
  return static_cast<T*>(a.mutable_data());
}

// Size of the dimension or 1 for a missing dimension, as int64.
inline int64_t dim(const py::array& a, int i) { return static_cast<int64_t>(a.shape(i)); }

}  // namespace fastbp::bindings
