// fastbp._core's free functions: each kernel on NumPy arrays, one call each.
#include <pybind11/stl.h>

#include <cmath>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "bindings/arrays.hpp"
#include "bindings/dispatch.hpp"
#include "bindings/optim_args.hpp"
#include "common/checks.hpp"
#include "kernels/act.hpp"
#include "kernels/check.hpp"
#include "kernels/dropout.hpp"
#include "kernels/gemm.hpp"
#include "kernels/linear.hpp"
#include "kernels/loss.hpp"
#include "kernels/norm.hpp"
#include "kernels/optim.hpp"

namespace fastbp::bindings {
namespace {

using kernels::Act;

const char* act_name(Act act) {
  for (const auto& [kind, name] : kernels::kActNames)
    if (kind == act) return name;
  return "?";
}
using kernels::Loss;
using kernels::Reduction;

py::object matmul(const py::array& a, const py::array& b, bool trans_a, bool trans_b,
                  kernels::Compute compute) {
  return by_dtype(a, "a", [&](auto tag) -> py::object {
    using T = decltype(tag);
    const bool bf16 = compute == kernels::Compute::Bfloat16;
    if (bf16 && !std::is_same_v<T, float>)
      throw py::type_error("matmul: bfloat16 compute takes float32 arrays, got float64");
    check_array<T>(a, "a", {-1, -1});
    check_array<T>(b, "b", {-1, -1});
    const int64_t m = dim(a, trans_a ? 1 : 0), k = dim(a, trans_a ? 0 : 1);
    const int64_t kb = dim(b, trans_b ? 1 : 0), n = dim(b, trans_b ? 0 : 1);
    if (k != kb)
      throw py::value_error("matmul: op(a) is " + std::to_string(m) + " x " + std::to_string(k) +
                            " but op(b) is " + std::to_string(kb) + " x " + std::to_string(n));
    py::array_t<T> c({m, n});
    const T *pa = static_cast<const T*>(a.data()), *pb = static_cast<const T*>(b.data());
    T* pc = c.mutable_data();
    py::gil_scoped_release nogil;
    if constexpr (std::is_same_v<T, float>) {
      if (bf16) {
        kernels::gemm_bf16(trans_a, trans_b, m, n, k, 1.0f, pa, dim(a, 1), pb, dim(b, 1), 0.0f, pc,
                           n);
        return std::move(c);
      }
    }
    kernels::gemm<T>(trans_a, trans_b, m, n, k, T(1), pa, dim(a, 1), pb, dim(b, 1), T(0), pc, n);
    return std::move(c);
  });
}

py::object linear(const py::array& x, const py::array& w, const py::array& b) {
  return by_dtype(x, "x", [&](auto tag) -> py::object {
    using T = decltype(tag);
    check_array<T>(x, "x", {-1, -1});
    const int64_t m = dim(x, 0), k = dim(x, 1);
    const T* pw = in_ptr<T>(w, "w", {k, -1});
    const int64_t n = dim(w, 1);
    const T* pb = in_ptr<T>(b, "b", {n});
    py::array_t<T> z({m, n});
    const T* px = static_cast<const T*>(x.data());
    T* pz = z.mutable_data();
    py::gil_scoped_release nogil;
    kernels::gemm<T>(false, false, m, n, k, T(1), px, k, pw, n, T(0), pz, n);
    kernels::bias_activation_rows(pz, pb, m, n, Act::Identity, {}, pz);
    return std::move(z);
  });
}

py::object activation(Act act, const py::array& x, double a, double b) {
  const kernels::ActParams p = act_params(a, b);
  return by_dtype(x, "x", [&](auto tag) -> py::object {
    using T = decltype(tag);
    check_array<T>(x, "x", std::vector<int64_t>(x.ndim(), -1));
    py::array_t<T> y(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
    const T* px = static_cast<const T*>(x.data());
    T* py_ = y.mutable_data();
    const int64_t n = x.size();
    py::gil_scoped_release nogil;
    kernels::act_forward(act, p, px, py_, n);
    return std::move(y);
  });
}

// grad * f'(x) with y = f(x); x (the input) is needed, and read, only when
// act_uses_input(act).
py::object activation_backward(Act act, const py::array& y, const py::array& grad,
                               const std::optional<py::array>& x, double a, double b) {
  const kernels::ActParams p = act_params(a, b);
  if (kernels::act_uses_input(act) && !x)
    throw py::value_error(std::string("activation_backward of ") + act_name(act) +
                          " needs its input x, got None");
  return by_dtype(y, "y", [&](auto tag) -> py::object {
    using T = decltype(tag);
    std::vector<int64_t> shape(y.shape(), y.shape() + y.ndim());
    const T* py_ = in_ptr<T>(y, "y", shape);
    const T* pg = in_ptr<T>(grad, "grad", shape);
    const T* px = kernels::act_uses_input(act) ? in_ptr<T>(*x, "x", shape) : nullptr;
    py::array_t<T> out(std::vector<py::ssize_t>(y.shape(), y.shape() + y.ndim()));
    T* po = out.mutable_data();
    const int64_t n = y.size();
    py::gil_scoped_release nogil;
    kernels::act_backward(act, p, px, py_, pg, po, n);
    return std::move(out);
  });
}

py::object softmax(const py::array& x) {
  return by_dtype(x, "x", [&](auto tag) -> py::object {
    using T = decltype(tag);
    const T* px = in_ptr<T>(x, "x", {-1, -1});
    const int64_t m = dim(x, 0), n = dim(x, 1);
    py::array_t<T> y({m, n});
    T* py_ = y.mutable_data();
    py::gil_scoped_release nogil;
    kernels::softmax_rows(px, py_, m, n);
    return std::move(y);
  });
}

// (loss, dL/dy) or (loss, None) when with_grad is false.
py::object loss(Loss kind, Reduction red, const py::array& y, const py::array& t, bool with_grad,
                const py::sequence& params) {
  const kernels::LossParams p = loss_params(kind, params);
  return by_dtype(y, "y", [&](auto tag) -> py::object {
    using T = decltype(tag);
    const T* py_ = in_ptr<T>(y, "y", {-1, -1});
    const int64_t m = dim(y, 0), n = dim(y, 1);
    if (m == 0 || n == 0) throw py::value_error("loss of an empty array, shape " + shape_str(y));
    std::vector<int64_t> labels;
    const kernels::Target<T> target = parse_target<T>(t, kind, m, n, labels);
    py::object grad = py::none();
    T* pg = nullptr;
    if (with_grad) {
      py::array_t<T> g({m, n});
      pg = g.mutable_data();
      grad = std::move(g);
    }
    double value;
    {
      py::gil_scoped_release nogil;
      value = kernels::loss_forward(kind, red, py_, target, m, m, n, pg, p);
    }
    return py::make_tuple(value, grad);
  });
}

void optimizer_step(common::Optimizer kind, const py::sequence& hyper, py::array& param,
                    const py::array& grad, const py::sequence& states, int64_t step) {
  const common::OptimizerArgs args = optimizer_args(kind, hyper, step);
  by_dtype(param, "param", [&](auto tag) -> py::object {
    using T = decltype(tag);
    std::vector<int64_t> shape(param.shape(), param.shape() + param.ndim());
    T* pp = out_ptr<T>(param, "param", shape);
    const T* pg = in_ptr<T>(grad, "grad", shape);
    T* ps[common::kMaxStates] = {};
    state_ptrs<T>(kind, states, shape, ps);
    const int64_t n = param.size();
    py::gil_scoped_release nogil;
    kernels::optimizer_step(args, pp, pg, ps, n);
    return py::none();
  });
}

double clip_grad_norm(py::array& grad, double max_norm) {
  try {
    common::check_real("max_norm", max_norm, true);
  } catch (const std::invalid_argument& e) {
    throw py::value_error(e.what());
  }
  return by_dtype(grad, "grad",
                  [&](auto tag) -> py::object {
                    using T = decltype(tag);
                    T* pg = out_ptr<T>(grad, "grad", std::vector<int64_t>(grad.ndim(), -1));
                    const int64_t n = grad.size();
                    double total;
                    {
                      py::gil_scoped_release nogil;
                      total = kernels::clip_grad_norm(pg, n, max_norm);
                    }
                    return py::float_(total);
                  })
      .cast<double>();
}

bool all_finite(const py::array& x) {
  return by_dtype(x, "x",
                  [&](auto tag) -> py::object {
                    using T = decltype(tag);
                    check_array<T>(x, "x", std::vector<int64_t>(x.ndim(), -1));
                    const T* px = static_cast<const T*>(x.data());
                    const int64_t n = x.size();
                    bool ok;
                    {
                      py::gil_scoped_release nogil;
                      ok = kernels::all_finite(px, n);
                    }
                    return py::bool_(ok);
                  })
      .cast<bool>();
}

// x (m, n) and the per-column weight (n,) of a norm; eps > 0 (fastbp.ops checks the
// same with its own wording; this guards direct calls into _core).
template <typename T>
void check_norm_args(const py::array& x, const py::array& weight, double eps) {
  check_array<T>(x, "x", {-1, -1});
  if (dim(x, 1) == 0)
    throw py::value_error("x must have at least one column, got shape " + shape_str(x));
  check_array<T>(weight, "weight", {dim(x, 1)});
  common::check_norm_eps(eps);
}

const char* norm_name(common::NormKind kind) {
  for (const auto& [k, name] : common::kNormKindNames)
    if (k == kind) return name;
  return "?";
}

// Row norm `kind` of x; bias is an array for a kind with a shift, None for one without.
py::object row_norm(common::NormKind kind, const py::array& x, const py::array& weight,
                    const py::object& bias, double eps) {
  const bool shift = common::norm_has_shift(kind);
  if (shift == bias.is_none())
    throw py::value_error(std::string(norm_name(kind)) +
                          (shift ? " takes a bias array, got None" : " has no bias: pass None"));
  return by_dtype(x, "x", [&](auto tag) -> py::object {
    using T = decltype(tag);
    check_norm_args<T>(x, weight, eps);
    const int64_t m = dim(x, 0), n = dim(x, 1);
    const T* pb = shift ? in_ptr<T>(bias.cast<py::array>(), "bias", {n}) : nullptr;
    py::array_t<T> y({m, n});
    std::vector<T> mean(m), rstd(m);
    const T *px = static_cast<const T*>(x.data()), *pw = static_cast<const T*>(weight.data());
    T* py_ = y.mutable_data();
    py::gil_scoped_release nogil;
    kernels::row_norm_forward(kind, px, pw, pb, m, n, eps, py_, mean.data(), rstd.data());
    return std::move(y);
  });
}

// (dx, dweight, dbias), or (dx, dweight) for a kind without a shift; the forward's
// statistics are recomputed from x.
py::object row_norm_backward(common::NormKind kind, const py::array& x, const py::array& weight,
                             const py::array& grad, double eps) {
  const bool shift = common::norm_has_shift(kind);
  return by_dtype(x, "x", [&](auto tag) -> py::object {
    using T = decltype(tag);
    check_norm_args<T>(x, weight, eps);
    const int64_t m = dim(x, 0), n = dim(x, 1);
    const T* pg = in_ptr<T>(grad, "grad", {m, n});
    py::array_t<T> dx({m, n}), dw({n}), db({shift ? n : 0});
    std::vector<T> y(m * n), mean(m), rstd(m);
    const T *px = static_cast<const T*>(x.data()), *pw = static_cast<const T*>(weight.data());
    T *pdx = dx.mutable_data(), *pdw = dw.mutable_data();
    T* pdb = shift ? db.mutable_data() : nullptr;
    {
      py::gil_scoped_release nogil;
      kernels::row_norm_forward(kind, px, pw, shift ? pw : nullptr, m, n, eps, y.data(),
                                mean.data(), rstd.data());
      kernels::row_norm_backward(kind, px, pw, mean.data(), rstd.data(), pg, m, n, pdx, pdw, pdb);
    }
    if (!shift) return py::make_tuple(std::move(dx), std::move(dw));
    return py::make_tuple(std::move(dx), std::move(dw), std::move(db));
  });
}

py::object batch_norm(const py::array& x, const py::array& weight, const py::array& bias,
                      py::array& running_mean, py::array& running_var, bool training,
                      double momentum, double eps) {
  return by_dtype(x, "x", [&](auto tag) -> py::object {
    using T = decltype(tag);
    check_norm_args<T>(x, weight, eps);
    const int64_t m = dim(x, 0), n = dim(x, 1);
    const T* pb = in_ptr<T>(bias, "bias", {n});
    if (training) common::check_batch_norm_rows(m);
    common::check_momentum_fraction(momentum);
    py::array_t<T> y({m, n});
    const T *px = static_cast<const T*>(x.data()), *pw = static_cast<const T*>(weight.data());
    T* py_ = y.mutable_data();
    if (!training) {
      const T* prm = in_ptr<T>(running_mean, "running_mean", {n});
      const T* prv = in_ptr<T>(running_var, "running_var", {n});
      py::gil_scoped_release nogil;
      kernels::batch_norm_forward_infer(px, pw, pb, prm, prv, m, n, eps, py_);
      return std::move(y);
    }
    T* prm = out_ptr<T>(running_mean, "running_mean", {n});
    T* prv = out_ptr<T>(running_var, "running_var", {n});
    std::vector<T> mean(n), rstd(n);
    py::gil_scoped_release nogil;
    kernels::batch_norm_forward_train(px, pw, pb, m, n, eps, momentum, py_, mean.data(),
                                      rstd.data(), prm, prv);
    return std::move(y);
  });
}

// (dx, dweight, dbias) of training mode; the batch statistics are recomputed from x.
py::object batch_norm_backward(const py::array& x, const py::array& weight, const py::array& grad,
                               double eps) {
  return by_dtype(x, "x", [&](auto tag) -> py::object {
    using T = decltype(tag);
    check_norm_args<T>(x, weight, eps);
    const int64_t m = dim(x, 0), n = dim(x, 1);
    common::check_batch_norm_rows(m);
    const T* pg = in_ptr<T>(grad, "grad", {m, n});
    py::array_t<T> dx({m, n}), dw({n}), db({n});
    std::vector<T> y(m * n), mean(n), rstd(n), running(2 * n);
    const T *px = static_cast<const T*>(x.data()), *pw = static_cast<const T*>(weight.data());
    T *pdx = dx.mutable_data(), *pdw = dw.mutable_data(), *pdb = db.mutable_data();
    {
      py::gil_scoped_release nogil;
      kernels::batch_norm_forward_train(px, pw, pw, m, n, eps, 1.0, y.data(), mean.data(),
                                        rstd.data(), running.data(), running.data() + n);
      kernels::batch_norm_backward(px, pw, mean.data(), rstd.data(), pg, m, n, pdx, pdw, pdb);
    }
    return py::make_tuple(std::move(dx), std::move(dw), std::move(db));
  });
}

py::object dropout(const py::array& x, double p, uint64_t key, bool backward) {
  const char* name = backward ? "grad" : "x";
  return by_dtype(x, name, [&](auto tag) -> py::object {
    using T = decltype(tag);
    check_array<T>(x, name, std::vector<int64_t>(x.ndim(), -1));
    common::check_dropout_p(p);
    py::array_t<T> y(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
    const T* px = static_cast<const T*>(x.data());
    T* py_ = y.mutable_data();
    const int64_t n = x.size();
    py::gil_scoped_release nogil;
    if (backward) kernels::dropout_backward(px, py_, n, p, key, 0);
    else kernels::dropout_forward(px, py_, n, p, key, 0);
    return std::move(y);
  });
}

}  // namespace

void bind_ops(py::module_& m) {
  m.def("matmul", &matmul, py::arg("a"), py::arg("b"), py::arg("trans_a") = false,
        py::arg("trans_b") = false, py::arg("compute") = kernels::Compute::Storage);
  m.def("linear", &linear, py::arg("x"), py::arg("w"), py::arg("b"));
  m.def("activation", &activation, py::arg("act"), py::arg("x"), py::arg("a") = 0.0,
        py::arg("b") = 0.0);
  m.def("activation_backward", &activation_backward, py::arg("act"), py::arg("y"), py::arg("grad"),
        py::arg("x") = py::none(), py::arg("a") = 0.0, py::arg("b") = 0.0);
  m.def("act_uses_input", &kernels::act_uses_input, py::arg("act"),
        "Whether the activation's derivative reads its input x (else its output y).");
  m.def("softmax", &softmax, py::arg("x"));
  m.def("loss", &loss, py::arg("kind"), py::arg("reduction"), py::arg("y"), py::arg("target"),
        py::arg("with_grad"), py::arg("params") = py::tuple());
  m.def("optimizer_step", &optimizer_step, py::arg("kind"), py::arg("hyper"), py::arg("param"),
        py::arg("grad"), py::arg("states"), py::arg("step"),
        "One update of param in place (and of its state arrays) by the optimizer kind; "
        "step: this update's 1-based number.");
  m.def("clip_grad_norm", &clip_grad_norm, py::arg("grad"), py::arg("max_norm"),
        "torch.nn.utils.clip_grad_norm_ of one array in place; returns the norm before.");
  m.def("all_finite", &all_finite, py::arg("x"));
  m.def("row_norm", &row_norm, py::arg("kind"), py::arg("x"), py::arg("weight"), py::arg("bias"),
        py::arg("eps"),
        "Row norm `kind` of x (m, n): bias (n,) for a kind with a shift, None without one.");
  m.def("row_norm_backward", &row_norm_backward, py::arg("kind"), py::arg("x"), py::arg("weight"),
        py::arg("grad"), py::arg("eps"),
        "(dx, dweight, dbias) of row_norm, or (dx, dweight) for a kind without a shift.");
  m.def("batch_norm", &batch_norm, py::arg("x"), py::arg("weight"), py::arg("bias"),
        py::arg("running_mean"), py::arg("running_var"), py::arg("training"), py::arg("momentum"),
        py::arg("eps"));
  m.def("batch_norm_backward", &batch_norm_backward, py::arg("x"), py::arg("weight"),
        py::arg("grad"), py::arg("eps"));
  m.def(
      "dropout",
      [](const py::array& x, double p, uint64_t key) { return dropout(x, p, key, false); },
      py::arg("x"), py::arg("p"), py::arg("key"));
  m.def(
      "dropout_backward",
      [](const py::array& grad, double p, uint64_t key) { return dropout(grad, p, key, true); },
      py::arg("grad"), py::arg("p"), py::arg("key"));
  m.def("dropout_key", &common::dropout_key, py::arg("seed"), py::arg("layer"),
        py::arg("pass_index"));
}

}  // namespace fastbp::bindings
