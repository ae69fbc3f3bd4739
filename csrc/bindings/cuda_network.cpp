// fastbp._core.CudaNetwork32 / CudaNetwork64: the GPU network behind Network32's
// interface (SGD only), plus sync_host() (before Python touches W, b, dW, db). Compiled
// only with the CUDA backend. A diverged step throws nn::Divergence, which the
// translator bind_network registers turns into FloatingPointError with `step` and
// `reason`, as for the CPU networks.
#include <pybind11/stl.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "bindings/arrays.hpp"
#include "bindings/batch.hpp"
#include "bindings/optim_args.hpp"
#include "cuda/network.hpp"

namespace fastbp::bindings {
namespace {

// (dense, in, out, act) per layer, as python/fastbp/network.py describes them.
using SpecTuple = std::tuple<bool, int64_t, int64_t, kernels::Act>;

// The network and the NumPy array bound as its momentum buffer, kept alive here
// because the device copies the buffer back into it.
template <typename T>
struct CudaNet {
  std::unique_ptr<cuda::Network<T>> net;
  py::object velocity;
};

template <typename T>
std::unique_ptr<CudaNet<T>> make_network(const std::vector<SpecTuple>& specs, kernels::Loss loss,
                                         kernels::Reduction red, double loss_param) {
  std::vector<nn::LayerSpec> layers;
  for (const auto& [dense, in, out, act] : specs) layers.push_back({dense, in, out, act});
  auto wrapper = std::make_unique<CudaNet<T>>();
  try {
    kernels::check_loss_param(loss, loss_param);
    wrapper->net = std::make_unique<cuda::Network<T>>(layers, loss, red, loss_param);
  } catch (const std::invalid_argument& e) {
    throw py::value_error(e.what());
  }
  return wrapper;
}

// Checks an update as the CPU network's make_update does and, when momentum uses the
// momentum buffer, binds it (after every other check, so a rejected call changes
// nothing). The GPU network trains with SGD only (fastbp.Network says so first).
template <typename T>
kernels::OptimizerArgs bind_update(CudaNet<T>& w, common::Optimizer kind,
                                   const std::vector<double>& hyper,
                                   std::vector<py::array>& states, int64_t steps,
                                   double max_grad_norm) {
  if (kind != common::Optimizer::SGD)
    throw py::value_error("the CUDA network trains with SGD only");
  if (steps < 0) throw py::value_error("steps must be >= 0, got " + std::to_string(steps));
  const kernels::OptimizerArgs args = optimizer_args(kind, hyper, steps + 1);
  checked_max_grad_norm(max_grad_norm);
  T* pv = state_ptrs<T>(kind, states, {w.net->n_params()})[0];
  if (args.hyper[1] != 0.0) {
    w.net->bind_velocity(pv, steps == 0);
    w.velocity = states[0];
  }
  return args;
}

template <typename T>
void bind_cuda_network_class(py::module_& m, const char* name) {
  using W = CudaNet<T>;
  // Flat view of a host mirror, brought up to date first; the view keeps the network alive.
  auto view = [](py::object self, bool grads) {
    cuda::Network<T>& net = *self.cast<W&>().net;
    net.sync_host();
    T* data = grads ? net.host_grads() : net.host_params();
    return py::array_t<T>({net.n_params()}, {static_cast<py::ssize_t>(sizeof(T))}, data, self);
  };
  py::class_<W>(m, name)
      .def(py::init(&make_network<T>), py::arg("layers"), py::arg("loss"), py::arg("reduction"),
           py::arg("loss_param") = 0.0)
      .def_property_readonly("n_params", [](const W& w) { return w.net->n_params(); })
      .def_property_readonly("in_features", [](const W& w) { return w.net->in_features(); })
      .def_property_readonly("out_features", [](const W& w) { return w.net->out_features(); })
      .def_property_readonly("updates", [](const W& w) { return w.net->updates(); })
      .def_property_readonly("slots", [](const W& w) {
        std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t>> out;
        for (const auto& s : w.net->slots()) out.emplace_back(s.w_offset, s.b_offset, s.in, s.out);
        return out;
      })
      .def_property_readonly("params", [view](py::object self) { return view(self, false); })
      .def_property_readonly("grads", [view](py::object self) { return view(self, true); })
      .def("sync_host", [](W& w) { w.net->sync_host(); },
           "Bring the host copies of params, grads and the momentum buffer up to date; the "
           "next GPU call uploads params and grads, which Python may since have written.")
      .def("forward", [](W& w, const py::array& x) {
        const T* px = batch_ptr<T>(*w.net, x);
        const int64_t rows = dim(x, 0);
        py::array_t<T> out({rows, w.net->out_features()});
        T* po = out.mutable_data();
        py::gil_scoped_release nogil;
        w.net->forward(px, rows, po);
        return out;
      }, py::arg("X"))
      .def("check", [](W& w, const py::array& x, const py::array& t) {
        (void)Batch<T>(*w.net, x, t);  // only its checks
      }, py::arg("X"), py::arg("T"), "Raise the error loss() would raise for this batch, if any.")
      .def("loss", [](W& w, const py::array& x, const py::array& t) {
        const Batch<T> b(*w.net, x, t);
        py::gil_scoped_release nogil;
        return w.net->loss(b.x, b.t, b.rows);
      }, py::arg("X"), py::arg("T"))
      .def("backward", [](W& w, const py::array& x, const py::array& t) {
        const Batch<T> b(*w.net, x, t);
        py::gil_scoped_release nogil;
        return w.net->backward(b.x, b.t, b.rows);
      }, py::arg("X"), py::arg("T"))
      .def("train_step", [](W& w, const py::array& x, const py::array& t, common::Optimizer kind,
                            const std::vector<double>& hyper, std::vector<py::array>& states,
                            int64_t steps, double max_grad_norm) {
        const Batch<T> b(*w.net, x, t);
        const kernels::OptimizerArgs args = bind_update(w, kind, hyper, states, steps,
                                                        max_grad_norm);
        py::gil_scoped_release nogil;
        return w.net->train_step(b.x, b.t, b.rows, args, max_grad_norm);
      }, py::arg("X"), py::arg("T"), py::arg("kind"), py::arg("hyper"), py::arg("states"),
         py::arg("steps"), py::arg("max_grad_norm"))
      .def("train_epoch", [](W& w, const py::array& x, const py::array& t,
                             const py::array& order, int64_t batch_size, common::Optimizer kind,
                             const std::vector<double>& hyper, std::vector<py::array>& states,
                             int64_t steps, double max_grad_norm, double loss_sum,
                             int64_t interrupt_mark) {
        const Batch<T> b(*w.net, x, t);
        std::vector<int64_t> order_copy;
        const int64_t* po = checked_order(order, b.rows, batch_size, order_copy);
        const kernels::OptimizerArgs args = bind_update(w, kind, hyper, states, steps,
                                                        max_grad_norm);
        py::gil_scoped_release nogil;
        return w.net->train_epoch(b.x, b.t, b.rows, po, batch_size, args, max_grad_norm,
                                  loss_sum, interrupt_mark);
      }, py::arg("X"), py::arg("T"), py::arg("order"), py::arg("batch_size"), py::arg("kind"),
         py::arg("hyper"), py::arg("states"), py::arg("steps"), py::arg("max_grad_norm"),
         py::arg("loss_sum") = 0.0, py::arg("interrupt_mark") = -1)
      .def("step", [](W& w, common::Optimizer kind, const std::vector<double>& hyper,
                      std::vector<py::array>& states, int64_t steps, double max_grad_norm) {
        const kernels::OptimizerArgs args = bind_update(w, kind, hyper, states, steps,
                                                        max_grad_norm);
        py::gil_scoped_release nogil;
        w.net->sgd_step(args, max_grad_norm);
      }, py::arg("kind"), py::arg("hyper"), py::arg("states"), py::arg("steps"),
         py::arg("max_grad_norm"),
         "One SGD update from the current gradients (optimizer.step after backward).");
}

}  // namespace

void bind_cuda_network(py::module_& m) {
  bind_cuda_network_class<float>(m, "CudaNetwork32");
  bind_cuda_network_class<double>(m, "CudaNetwork64");
}

}  // namespace fastbp::bindings
