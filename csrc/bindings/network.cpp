// fastbp._core.Network32 / Network64: the network on any backend ("cpu", or "cuda" when
// built with it), called once per step or epoch. One binding path for every backend: it
// sees only nn::Trainer.
#include <pybind11/stl.h>

#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "bindings/arrays.hpp"
#include "bindings/batch.hpp"
#include "bindings/optim_args.hpp"
#include "common/checks.hpp"
#include "nn/interrupt.hpp"
#include "nn/trainer.hpp"

#ifdef FASTBP_HAVE_CUDA
#include "cuda/network.hpp"
#endif

namespace fastbp::bindings {
namespace {

using nn::Trainer;

// A network and the NumPy arrays bound as its optimizer state, kept alive here because
// a GPU network copies its device state back into them.
template <typename T>
struct Handle {
  std::unique_ptr<Trainer<T>> net;
  py::object states;
};

template <typename T>
std::unique_ptr<Handle<T>> make_handle(const std::vector<nn::LayerSpec>& layers, kernels::Loss loss,
                                       kernels::Reduction red, const py::sequence& params,
                                       uint64_t seed, const std::string& backend,
                                       kernels::Compute compute) {
  const nn::LossSpec spec{loss, red, loss_params(loss, params)};
  auto handle = std::make_unique<Handle<T>>();
  try {
    if (backend == "cpu") {
      handle->net = nn::make_cpu_network<T>(layers, spec, seed, compute);
    } else if (backend == "cuda") {
      if (compute != kernels::Compute::Storage)
        throw py::value_error("the CUDA backend computes in the parameters' dtype only: "
                              "bfloat16 compute runs on backend 'cpu'");
#ifdef FASTBP_HAVE_CUDA
      handle->net = cuda::make_network<T>(layers, spec, seed);
#else
      throw std::runtime_error("backend 'cuda': this fastbp was built without the CUDA backend");
#endif
    } else {
      throw py::value_error("backend must be 'cpu' or 'cuda', got '" + backend + "'");
    }
  } catch (const std::invalid_argument& e) {
    throw py::value_error(e.what());
  }
  return handle;
}

// The update an UpdateSpec and its state arrays describe (steps: updates before it), the
// arrays kept alive by the handle while a GPU network mirrors them.
template <typename T>
kernels::Update<T> make_update(Handle<T>& h, const UpdateSpec& spec, const py::sequence& states,
                               int64_t steps) {
  if (steps < 0) throw py::value_error("steps must be >= 0, got " + std::to_string(steps));
  kernels::Update<T> update;
  update.args = spec.args;
  update.args.step = steps + 1;
  state_ptrs<T>(spec.args.kind, states, {h.net->n_params()}, update.states);
  update.steps = steps;
  update.max_grad_norm = spec.max_grad_norm;
  h.states = states;
  return update;
}

template <typename T>
double train_step(Handle<T>& h, const py::array& x, const py::array& t,
                  kernels::Update<T>& update) {
  const Batch<T> b(*h.net, x, t);
  py::gil_scoped_release nogil;
  return h.net->train_step(b.x, b.t, b.rows, update);
}

template <typename T>
double train_epoch(Handle<T>& h, const py::array& x, const py::array& t, const py::array& order,
                   int64_t batch_size, kernels::Update<T>& update, double loss_sum,
                   const std::optional<py::array>& sample_weight, int64_t interrupt_mark,
                   double weight_penalty) {
  common::check_real("weight_penalty", weight_penalty, false);
  const Batch<T> b(*h.net, x, t);
  std::vector<int64_t> order_copy;
  const int64_t* po = checked_order(order, b.rows, batch_size, order_copy);
  kernels::Target<T> target = b.t;
  target.weights = row_weights<T>(sample_weight, b.rows);
  py::gil_scoped_release nogil;
  return h.net->train_epoch(b.x, target, b.rows, po, batch_size, update, loss_sum, interrupt_mark,
                            weight_penalty);
}

// Waits for the network's lock, which another thread's call may hold for a whole epoch,
// with the GIL released so that other Python threads run meanwhile.
template <typename T>
void sync_host_without_gil(Trainer<T>& net) {
  py::gil_scoped_release nogil;
  net.sync_host();
}

// [(name, offset, shape)] of a layer's slices.
py::list slices(const std::vector<nn::Slice>& s) {
  py::list out;
  for (const nn::Slice& x : s)
    out.append(py::make_tuple(x.name, x.offset, py::tuple(py::cast(x.shape))));
  return out;
}

template <typename T>
void bind_network_class(py::module_& m, const char* name) {
  using H = Handle<T>;
  // Flat view of a host buffer, brought up to date first; the view keeps the network alive.
  auto view = [](py::object self, T* (Trainer<T>::*buffer)(), int64_t n) {
    Trainer<T>& net = *self.cast<H&>().net;
    sync_host_without_gil(net);
    return py::array_t<T>({n}, {static_cast<py::ssize_t>(sizeof(T))}, (net.*buffer)(), self);
  };
  py::class_<H>(m, name)
      .def(py::init(&make_handle<T>), py::arg("layers"), py::arg("loss"), py::arg("reduction"),
           py::arg("loss_params") = py::tuple(), py::arg("seed") = 0, py::arg("backend") = "cpu",
           py::arg("compute") = kernels::Compute::Storage)
      .def_property_readonly("compute", [](const H& h) { return h.net->plan().compute; })
      .def_property_readonly("n_params", [](const H& h) { return h.net->n_params(); })
      .def_property_readonly("n_state", [](const H& h) { return h.net->n_state(); })
      .def_property_readonly("in_features", [](const H& h) { return h.net->in_features(); })
      .def_property_readonly("out_features", [](const H& h) { return h.net->out_features(); })
      .def_property_readonly(
          "updates", [](const H& h) { return h.net->updates(); },
          "Optimizer updates applied since construction, by any call.")
      .def_property(
          "passes", [](const H& h) { return h.net->passes(); },
          [](H& h, uint64_t p) {
            py::gil_scoped_release nogil;  // as sync_host: the lock may be busy
            h.net->set_passes(p);
          },
          "Training forward passes so far; the next draws its dropout masks from "
          "(seed, layer, passes).")
      .def(
          "training_parts",
          [](const H& h, int64_t rows) {
            if (rows < 1)
              throw py::value_error("rows must be at least 1, got " + std::to_string(rows));
            return h.net->training_parts(rows);
          },
          py::arg("rows"),
          "The parts a training pass over `rows` rows is split into at the current thread "
          "count, each run on a thread of its own (1: the pass runs whole).")
      .def_property_readonly(
          "layout",
          [](const H& h) {
            py::list out;
            for (const nn::LayerLayout& l : h.net->plan().layout)
              out.append(py::make_tuple(slices(l.params), slices(l.state)));
            return out;
          },
          "Per layer, ([(name, offset, shape)] of its parameters, the same of its state).")
      .def_property_readonly("params",
                             [view](py::object self) {
                               return view(self, &Trainer<T>::params,
                                           self.cast<H&>().net->n_params());
                             })
      .def_property_readonly("grads",
                             [view](py::object self) {
                               return view(self, &Trainer<T>::grads,
                                           self.cast<H&>().net->n_params());
                             })
      .def_property_readonly("state",
                             [view](py::object self) {
                               return view(self, &Trainer<T>::state,
                                           self.cast<H&>().net->n_state());
                             })
      .def(
          "sync_host", [](H& h) { sync_host_without_gil(*h.net); },
          "Bring the host copies of params, grads, state and the optimizer state up to "
          "date (a GPU network); the next call uploads what Python may since have written.")
      .def(
          "snapshot",
          [](H& h) {
            py::array_t<T> out(h.net->n_params() + h.net->n_state());
            T* po = out.mutable_data();
            py::gil_scoped_release nogil;  // the lock may be held by another thread's epoch
            h.net->snapshot(po);
            return out;
          },
          "A copy of the flat parameters then the flat state, taken under the lock every "
          "call holds (waited for with the GIL released): the values between two calls.")
      .def(
          "after_fork_in_child", [](H& h) { h.net->after_fork_in_child(); },
          "Free the lock a thread of the parent held at the fork; in a forked child only.")
      .def(
          "divergence_reason",
          [](const H& h, double loss, int64_t bad) {
            return nn::divergence_reason(loss, bad, h.net->plan());
          },
          py::arg("loss"), py::arg("bad"),
          "The reason a divergence gives for this loss and first bad gradient index (-1: none).")
      .def(
          "forward",
          [](H& h, const py::array& x) {
            const T* px = batch_ptr<T>(*h.net, x);
            const int64_t rows = dim(x, 0);
            py::array_t<T> out({rows, h.net->out_features()});
            T* po = out.mutable_data();
            py::gil_scoped_release nogil;
            h.net->forward(px, rows, po);
            return out;
          },
          py::arg("X"))
      .def(
          "check",
          [](H& h, const py::array& x, const py::array& t) {
            (void)Batch<T>(*h.net, x, t);  // only its checks
          },
          py::arg("X"), py::arg("T"), "Raise the error loss() would raise for this batch, if any.")
      .def(
          "loss",
          [](H& h, const py::array& x, const py::array& t, bool training) {
            const Batch<T> b(*h.net, x, t);
            py::gil_scoped_release nogil;
            return h.net->loss(b.x, b.t, b.rows, training);
          },
          py::arg("X"), py::arg("T"), py::arg("training") = false)
      .def(
          "backward",
          [](H& h, const py::array& x, const py::array& t,
             const std::optional<py::array>& sample_weight) {
            const Batch<T> b(*h.net, x, t);
            kernels::Target<T> target = b.t;
            target.weights = row_weights<T>(sample_weight, b.rows);
            py::gil_scoped_release nogil;
            return h.net->backward(b.x, target, b.rows);
          },
          py::arg("X"), py::arg("T"), py::arg("sample_weight") = py::none(),
          "sample_weight: one weight per row of X, as train_epoch takes it.")
      .def(
          "step",
          [](H& h, const UpdateSpec& spec, const py::sequence& states, int64_t steps) {
            kernels::Update<T> update = make_update<T>(h, spec, states, steps);
            py::gil_scoped_release nogil;
            h.net->step(update);
          },
          py::arg("spec"), py::arg("states"), py::arg("steps"),
          "One optimizer update from the current gradients (optimizer.step after backward); "
          "steps: the updates taken before it.")
      .def(
          "train_step",
          [](H& h, const py::array& x, const py::array& t, const UpdateSpec& spec,
             const py::sequence& states, int64_t steps) {
            kernels::Update<T> update = make_update<T>(h, spec, states, steps);
            return train_step(h, x, t, update);
          },
          py::arg("X"), py::arg("T"), py::arg("spec"), py::arg("states"), py::arg("steps"),
          "Backward pass then one update, as step; returns the loss.")
      .def(
          "train_epoch",
          [](H& h, const py::array& x, const py::array& t, const py::array& order,
             int64_t batch_size, const UpdateSpec& spec, const py::sequence& states, int64_t steps,
             double loss_sum, const std::optional<py::array>& sample_weight, int64_t interrupt_mark,
             double weight_penalty) {
            kernels::Update<T> update = make_update<T>(h, spec, states, steps);
            return train_epoch(h, x, t, order, batch_size, update, loss_sum, sample_weight,
                               interrupt_mark, weight_penalty);
          },
          py::arg("X"), py::arg("T"), py::arg("order"), py::arg("batch_size"), py::arg("spec"),
          py::arg("states"), py::arg("steps"), py::arg("loss_sum") = 0.0,
          py::arg("sample_weight") = py::none(), py::arg("interrupt_mark") = -1,
          py::arg("weight_penalty") = 0.0,
          "One pass over the rows in order; returns loss_sum plus each batch's rows times its "
          "loss (divide by the rows for the mean). steps: the updates taken before this call. "
          "sample_weight: one weight per row of X. "
          "interrupt_mark: sigint_count() before the call, to stop before the next batch "
          "once a SIGINT came (KeyboardInterrupt with `step`, the steps applied); -1: never. "
          "weight_penalty: scikit-learn's alpha, an L2 penalty on the Dense weight matrices: a "
          "batch of m rows adds weight_penalty / (2 m) times their sum of squares to its loss "
          "and weight_penalty / m times each weight to its gradient.");
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
  m.def(
      "defer_sigint",
      [] {
        nn::defer_sigint();
        // A SIGINT from before the hold may wait in Python: its handler runs now, so that
        // none raises once the caller's block has begun.
        if (PyErr_CheckSignals() != 0) {
          nn::resume_sigint();
          throw py::error_already_set();
        }
      },
      "Hold SIGINTs until resume_sigint (nests; main thread only); raises, deferring "
      "nothing, for one that came before.");
  m.def("resume_sigint", &nn::resume_sigint,
        "End defer_sigint; at the outermost, whether a SIGINT came while deferred.");

  py::class_<UpdateSpec>(m, "UpdateSpec",
                         "An optimizer's kind, hyper-parameters (checked here) and clipping "
                         "norm (0: none), as the network's training calls take them.")
      .def(py::init([](common::Optimizer kind, const py::sequence& hyper, double max_grad_norm) {
             return UpdateSpec{optimizer_args(kind, hyper, 1), static_cast<int>(hyper.size()),
                               checked_max_grad_norm(max_grad_norm)};
           }),
           py::arg("kind"), py::arg("hyper"), py::arg("max_grad_norm") = 0.0)
      .def_property_readonly("kind", [](const UpdateSpec& u) { return u.args.kind; })
      .def_property_readonly(
          "hyper",
          [](const UpdateSpec& u) {
            return py::tuple(py::cast(std::vector<double>(u.args.hyper, u.args.hyper + u.n_hyper)));
          })
      .def_readonly("max_grad_norm", &UpdateSpec::max_grad_norm);
  py::class_<nn::LayerSpec>(m, "LayerSpec", "One layer as the network's plan takes it.")
      .def(py::init([](nn::LayerKind kind, int64_t in, int64_t out, kernels::Act act, double act_a,
                       double act_b, double p, double eps, double momentum, common::NormKind norm) {
             return nn::LayerSpec{kind, in, out, act, act_a, act_b, p, eps, momentum, norm};
           }),
           py::arg("kind"), py::arg("inputs"), py::arg("outputs"),
           py::arg("act") = kernels::Act::Identity, py::arg("act_a") = 0.0, py::arg("act_b") = 0.0,
           py::arg("p") = 0.0, py::arg("eps") = 0.0, py::arg("momentum") = 0.0,
           py::arg("norm") = common::NormKind::LayerNorm)
      .def_readonly("kind", &nn::LayerSpec::kind)
      .def_readonly("inputs", &nn::LayerSpec::in)
      .def_readonly("outputs", &nn::LayerSpec::out)
      .def_readonly("act", &nn::LayerSpec::act)
      .def_readonly("norm", &nn::LayerSpec::norm);
  m.def(
      "layer_tensors",
      [](const nn::LayerSpec& layer) {
        const nn::LayerTensors t = nn::layer_tensors(layer);
        const auto shapes = [](const auto& named) {
          py::dict out;
          for (const auto& [name, shape] : named) out[py::str(name)] = py::tuple(py::cast(shape));
          return out;
        };
        return py::make_tuple(shapes(t.params), shapes(t.state));
      },
      py::arg("layer"),
      "({name: shape} of the layer's parameters, the same of its state), in the order the "
      "network's plan lays them out in its flat buffers.");
  bind_network_class<float>(m, "Network32");
  bind_network_class<double>(m, "Network64");
}

}  // namespace fastbp::bindings
