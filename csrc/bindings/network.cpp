// fastbp._core.Network32 / Network64: the C++ network, called once per step or epoch.
#include <pybind11/stl.h>

#include <string>
#include <tuple>
#include <vector>

#include "bindings/arrays.hpp"
#include "bindings/batch.hpp"
#include "nn/network.hpp"

namespace fastbp::bindings {
namespace {

using nn::LayerSpec;
using nn::Network;

// (dense, in, out, act) per layer, as python/fastbp/network.py describes them.
using SpecTuple = std::tuple<bool, int64_t, int64_t, kernels::Act>;

template <typename T>
std::unique_ptr<Network<T>> make_network(const std::vector<SpecTuple>& specs,
                                         kernels::Loss loss, kernels::Reduction red) {
  std::vector<LayerSpec> layers;
  for (const auto& [dense, in, out, act] : specs) layers.push_back({dense, in, out, act});
  try {
    return std::make_unique<Network<T>>(layers, loss, red);
  } catch (const std::invalid_argument& e) {
    throw py::value_error(e.what());
  }
}

template <typename T>
void bind_network_class(py::module_& m, const char* name) {
  using Net = Network<T>;
  // Flat view of a buffer the network owns; the view keeps the network alive.
  auto view = [](py::object self, T* data, int64_t n) {
    return py::array_t<T>({n}, {static_cast<py::ssize_t>(sizeof(T))}, data, self);
  };
  py::class_<Net>(m, name)
      .def(py::init(&make_network<T>), py::arg("layers"), py::arg("loss"), py::arg("reduction"))
      .def_property_readonly("n_params", &Net::n_params)
      .def_property_readonly("in_features", &Net::in_features)
      .def_property_readonly("out_features", &Net::out_features)
      .def_property_readonly("slots", [](const Net& net) {
        std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t>> out;
        for (const auto& s : net.slots()) out.emplace_back(s.w_offset, s.b_offset, s.in, s.out);
        return out;
      })
      .def_property_readonly("params", [view](py::object self) {
        Net& net = self.cast<Net&>();
        return view(self, net.params(), net.n_params());
      })
      .def_property_readonly("grads", [view](py::object self) {
        Net& net = self.cast<Net&>();
        return view(self, net.grads(), net.n_params());
      })
      .def("forward", [](Net& net, const py::array& x) {
        const T* px = batch_ptr<T>(net, x);
        const int64_t rows = dim(x, 0);
        py::array_t<T> out({rows, net.out_features()});
        T* po = out.mutable_data();
        py::gil_scoped_release nogil;
        net.forward(px, rows, po);
        return out;
      }, py::arg("X"))
      .def("check", [](Net& net, const py::array& x, const py::array& t) {
        checked_batch<T>(net, x, t);
      }, py::arg("X"), py::arg("T"), "Raise the error loss() would raise for this batch, if any.")
      .def("loss", [](Net& net, const py::array& x, const py::array& t) {
        const Batch<T> b = checked_batch<T>(net, x, t);
        py::gil_scoped_release nogil;
        return net.loss(b.x, b.t, b.rows);
      }, py::arg("X"), py::arg("T"))
      .def("backward", [](Net& net, const py::array& x, const py::array& t) {
        const Batch<T> b = checked_batch<T>(net, x, t);
        py::gil_scoped_release nogil;
        return net.backward(b.x, b.t, b.rows);
      }, py::arg("X"), py::arg("T"))
      .def("train_step", [](Net& net, const py::array& x, const py::array& t, py::array& velocity,
                            double lr, double momentum, double dampening, bool nesterov,
                            double weight_decay, bool first_step) {
        const Batch<T> b = checked_batch<T>(net, x, t);
        T* pv = out_ptr<T>(velocity, "velocity", {net.n_params()});
        const kernels::SgdConfig cfg{lr, momentum, dampening, weight_decay, nesterov};
        py::gil_scoped_release nogil;
        return net.train_step(b.x, b.t, b.rows, pv, cfg, first_step);
      }, py::arg("X"), py::arg("T"), py::arg("velocity"), py::arg("lr"), py::arg("momentum"),
         py::arg("dampening"), py::arg("nesterov"), py::arg("weight_decay"),
         py::arg("first_step"))
      .def("train_epoch", [](Net& net, const py::array& x, const py::array& t,
                             const py::array& order, int64_t batch_size, py::array& velocity,
                             double lr, double momentum, double dampening, bool nesterov,
                             double weight_decay, bool first_step) {
        const Batch<T> b = checked_batch<T>(net, x, t);
        const int64_t* po = in_ptr<int64_t>(order, "order", {b.rows});
        if (kernels::first_bad_label(po, b.rows, b.rows) >= 0)
          throw py::value_error("order must hold row indices in [0, " + std::to_string(b.rows) +
                                ")");
        if (batch_size < 1)
          throw py::value_error("batch_size must be >= 1, got " + std::to_string(batch_size));
        T* pv = out_ptr<T>(velocity, "velocity", {net.n_params()});
        const kernels::SgdConfig cfg{lr, momentum, dampening, weight_decay, nesterov};
        py::gil_scoped_release nogil;
        return net.train_epoch(b.x, b.t, b.rows, po, batch_size, pv, cfg, first_step);
      }, py::arg("X"), py::arg("T"), py::arg("order"), py::arg("batch_size"),
         py::arg("velocity"), py::arg("lr"), py::arg("momentum"), py::arg("dampening"),
         py::arg("nesterov"), py::arg("weight_decay"), py::arg("first_step"));
}

}  // namespace

void bind_network(py::module_& m) {
  // A diverged step is a FloatingPointError, as NumPy's np.seterr(all="raise") gives;
  // `step` (completed steps of the call) and `reason` let fastbp.Network say which epoch
  // and step it was and count the steps that were applied.
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const nn::Divergence& e) {
      py::object err = py::reinterpret_borrow<py::object>(PyExc_FloatingPointError)(e.what());
      err.attr("step") = e.step;
      err.attr("reason") = e.reason;
      PyErr_SetObject(PyExc_FloatingPointError, err.ptr());
    }
  });
  bind_network_class<float>(m, "Network32");
  bind_network_class<double>(m, "Network64");
}

}  // namespace fastbp::bindings
