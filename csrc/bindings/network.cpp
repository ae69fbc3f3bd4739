// fastbp._core.Network32 / Network64: the C++ network, called once per step or epoch.
#include <pybind11/stl.h>

#include <string>
#include <tuple>
#include <vector>

#include "bindings/arrays.hpp"
#include "bindings/batch.hpp"
#include "bindings/optim_args.hpp"
#include "nn/interrupt.hpp"
#include "nn/network.hpp"

namespace fastbp::bindings {
namespace {

using nn::LayerSpec;
using nn::Network;

// (dense, in, out, act) per layer, as python/fastbp/network.py describes them.
using SpecTuple = std::tuple<bool, int64_t, int64_t, kernels::Act>;

template <typename T>
std::unique_ptr<Network<T>> make_network(const std::vector<SpecTuple>& specs,
                                         kernels::Loss loss, kernels::Reduction red,
                                         double loss_param) {
  std::vector<LayerSpec> layers;
  for (const auto& [dense, in, out, act] : specs) layers.push_back({dense, in, out, act});
  try {
    kernels::check_loss_param(loss, loss_param);
    return std::make_unique<Network<T>>(layers, loss, red, loss_param);
  } catch (const std::invalid_argument& e) {
    throw py::value_error(e.what());
  }
}

// The update Python's optimizer.core_args(state) describes; steps: updates before it.
template <typename T>
kernels::Update<T> make_update(Network<T>& net, common::Optimizer kind,
                               const std::vector<double>& hyper, std::vector<py::array>& states,
                               int64_t steps, double max_grad_norm) {
  if (steps < 0) throw py::value_error("steps must be >= 0, got " + std::to_string(steps));
  kernels::Update<T> update;
  update.args = optimizer_args(kind, hyper, steps + 1);
  const std::vector<T*> ptrs = state_ptrs<T>(kind, states, {net.n_params()});
  std::copy(ptrs.begin(), ptrs.end(), update.states);
  update.steps = steps;
  update.max_grad_norm = checked_max_grad_norm(max_grad_norm);
  return update;
}

template <typename T>
double train_step(Network<T>& net, const py::array& x, const py::array& t,
                  kernels::Update<T>& update) {
  const Batch<T> b(net, x, t);
  py::gil_scoped_release nogil;
  return net.train_step(b.x, b.t, b.rows, update);
}

template <typename T>
double train_epoch(Network<T>& net, const py::array& x, const py::array& t,
                   const py::array& order, int64_t batch_size, kernels::Update<T>& update,
                   double loss_sum, const std::optional<py::array>& sample_weight,
                   int64_t interrupt_mark) {
  const Batch<T> b(net, x, t);
  std::vector<int64_t> order_copy;
  const int64_t* po = checked_order(order, b.rows, batch_size, order_copy);
  kernels::Target<T> target = b.t;
  target.weights = row_weights<T>(sample_weight, b.rows);
  py::gil_scoped_release nogil;
  return net.train_epoch(b.x, target, b.rows, po, batch_size, update, loss_sum, interrupt_mark);
}

template <typename T>
void bind_network_class(py::module_& m, const char* name) {
  using Net = Network<T>;
  // Flat view of a buffer the network owns; the view keeps the network alive.
  auto view = [](py::object self, T* data, int64_t n) {
    return py::array_t<T>({n}, {static_cast<py::ssize_t>(sizeof(T))}, data, self);
  };
  py::class_<Net>(m, name)
      .def(py::init(&make_network<T>), py::arg("layers"), py::arg("loss"), py::arg("reduction"),
           py::arg("loss_param") = 0.0)
      .def_property_readonly("n_params", &Net::n_params)
      .def_property_readonly("in_features", &Net::in_features)
      .def_property_readonly("out_features", &Net::out_features)
      .def_property_readonly("updates", &Net::updates,
                             "Optimizer updates applied since construction, by any call.")
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
        (void)Batch<T>(net, x, t);  // only its checks
      }, py::arg("X"), py::arg("T"), "Raise the error loss() would raise for this batch, if any.")
      .def("loss", [](Net& net, const py::array& x, const py::array& t) {
        const Batch<T> b(net, x, t);
        py::gil_scoped_release nogil;
        return net.loss(b.x, b.t, b.rows);
      }, py::arg("X"), py::arg("T"))
      .def("backward", [](Net& net, const py::array& x, const py::array& t) {
        const Batch<T> b(net, x, t);
        py::gil_scoped_release nogil;
        return net.backward(b.x, b.t, b.rows);
      }, py::arg("X"), py::arg("T"))
      .def("step", [](Net& net, common::Optimizer kind, const std::vector<double>& hyper,
                      std::vector<py::array>& states, int64_t steps, double max_grad_norm) {
        kernels::Update<T> update = make_update<T>(net, kind, hyper, states, steps,
                                                   max_grad_norm);
        py::gil_scoped_release nogil;
        net.step(update);
      }, py::arg("kind"), py::arg("hyper"), py::arg("states"), py::arg("steps"),
         py::arg("max_grad_norm"),
         "One optimizer update from the current gradients (optimizer.step after backward); "
         "steps: the updates taken before it; max_grad_norm: 0 for no clipping.")
      .def("train_step", [](Net& net, const py::array& x, const py::array& t,
                            common::Optimizer kind, const std::vector<double>& hyper,
                            std::vector<py::array>& states, int64_t steps,
                            double max_grad_norm) {
        kernels::Update<T> update = make_update<T>(net, kind, hyper, states, steps,
                                                   max_grad_norm);
        return train_step(net, x, t, update);
      }, py::arg("X"), py::arg("T"), py::arg("kind"), py::arg("hyper"), py::arg("states"),
         py::arg("steps"), py::arg("max_grad_norm"),
         "Backward pass then one update, as step; returns the loss.")
      .def("train_epoch", [](Net& net, const py::array& x, const py::array& t,
                             const py::array& order, int64_t batch_size, common::Optimizer kind,
                             const std::vector<double>& hyper, std::vector<py::array>& states,
                             int64_t steps, double max_grad_norm, double loss_sum,
                             const std::optional<py::array>& sample_weight,
                             int64_t interrupt_mark) {
        kernels::Update<T> update = make_update<T>(net, kind, hyper, states, steps,
                                                   max_grad_norm);
        return train_epoch(net, x, t, order, batch_size, update, loss_sum, sample_weight,
                           interrupt_mark);
      }, py::arg("X"), py::arg("T"), py::arg("order"), py::arg("batch_size"), py::arg("kind"),
         py::arg("hyper"), py::arg("states"), py::arg("steps"), py::arg("max_grad_norm"),
         py::arg("loss_sum") = 0.0, py::arg("sample_weight") = py::none(),
         py::arg("interrupt_mark") = -1,
         "One pass over the rows in order; returns loss_sum plus each batch's rows times its "
         "loss (divide by the rows for the mean). steps: the updates taken before this call. "
         "sample_weight: one weight per row of X. "
         "interrupt_mark: sigint_count() before the call, to stop before the next batch "
         "once a SIGINT came (KeyboardInterrupt with `step`, the steps applied); -1: never.");
}

}  // namespace

void bind_network(py::module_& m) {
  // A diverged step is a FloatingPointError, as NumPy's np.seterr(all="raise") gives;
  // `step` (completed steps of the call) and `reason` let fastbp.Network say which epoch
  // and step it was and count the steps that were applied. The translator is global to
  // the module, so it serves the CUDA networks (bind_cuda_network) as well.
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const nn::Divergence& e) {
      py::object err = py::reinterpret_borrow<py::object>(PyExc_FloatingPointError)(e.what());
      err.attr("step") = e.step;
      err.attr("reason") = e.reason;
      PyErr_SetObject(PyExc_FloatingPointError, err.ptr());
    } catch (const nn::Interrupted& e) {
      py::object err = py::reinterpret_borrow<py::object>(PyExc_KeyboardInterrupt)(e.what());
      err.attr("step") = e.step;
      PyErr_SetObject(PyExc_KeyboardInterrupt, err.ptr());
    }
  });
  // Ctrl-C between batches (nn/interrupt.hpp): an interrupted train_epoch raises a
  // KeyboardInterrupt whose `step` counts the steps it applied, as the translator says.
  m.def("sigint_count", &nn::sigint_count, "SIGINTs received while watch_sigint was on.");
  m.def("watch_sigint", &nn::watch_sigint, py::arg("on"),
        "Count SIGINTs (passing each on to the handler they replace) for train_epoch's "
        "interrupt_mark, or (False) put the replaced handler back; nests; main thread only.");
  m.def("hold_sigint", &nn::hold_sigint, py::arg("on"),
        "While held, a watched SIGINT is counted but not passed on to Python's handler.");
  bind_network_class<float>(m, "Network32");
  bind_network_class<double>(m, "Network64");
}

}  // namespace fastbp::bindings
