#pragma once
// The layer units the loop runs, each over any backend B. make_units turns a plan into
// them; Dense + activation is one unit there, decided by the plan.
#include <memory>
#include <stdexcept>
#include <vector>

#include "nn/layer.hpp"
#include "nn/plan.hpp"

namespace fastbp::nn {

// Z = X @ W + b, then the activation that follows in the plan (Identity when none), in
// one pass over Z; backward takes the activation's and the bias's gradients in one pass.
template <class B>
class DenseUnit final : public Layer<B> {
 public:
  using T = typename B::Scalar;
  DenseUnit(const LayerSpec& dense, const LayerLayout& layout, const LayerSpec* act)
      : in_(dense.in), out_(dense.out), w_(layout.params[0].offset), b_(layout.params[1].offset),
        act_(act ? act->act : kernels::Act::Identity),
        params_(act ? kernels::ActParams{act->act_a, act->act_b} : kernels::ActParams{}) {}

  void reserve(int64_t m) override {
    if (kernels::act_uses_input(act_)) z_.reserve(m * out_);
  }
  void forward(const Context<B>& c, const T* x, T* y, int64_t m) override {
    // An activation written through its input keeps the pre-activation Z apart from y.
    T* z = kernels::act_uses_input(act_) ? z_.data() : y;
    c.be.gemm(false, false, m, out_, in_, x, in_, c.params + w_, out_, z, out_);
    c.be.bias_activation(z, c.params + b_, m, out_, act_, params_, y);
  }
  T* backward(const Context<B>& c, const T* x, const T* y, T* g, T* gx, int64_t m) override {
    const T* z = kernels::act_uses_input(act_) ? z_.data() : nullptr;
    c.be.activation_grad_bias_grad(act_, params_, z, y, g, m, out_, c.grads + b_);
    c.be.gemm(true, false, in_, out_, m, x, in_, g, out_, c.grads + w_, out_);
    if (!gx) return nullptr;
    c.be.gemm(false, true, m, in_, out_, g, out_, c.params + w_, out_, gx, in_);
    return gx;
  }

 private:
  int64_t in_, out_, w_, b_;
  kernels::Act act_;
  kernels::ActParams params_;
  typename B::template Buffer<T> z_;
};

// An activation with no Dense before it: elementwise, dL/dx in place.
template <class B>
class ActivationUnit final : public Layer<B> {
 public:
  using T = typename B::Scalar;
  explicit ActivationUnit(const LayerSpec& l)
      : n_(l.out), act_(l.act), params_{l.act_a, l.act_b} {}

  void forward(const Context<B>& c, const T* x, T* y, int64_t m) override {
    c.be.act_forward(act_, params_, x, y, m * n_);
  }
  T* backward(const Context<B>& c, const T* x, const T* y, T* g, T*, int64_t m) override {
    c.be.act_backward(act_, params_, kernels::act_uses_input(act_) ? x : nullptr, y, g, m * n_);
    return g;
  }

 private:
  int64_t n_;
  kernels::Act act_;
  kernels::ActParams params_;
};

template <class B>
std::vector<std::unique_ptr<Layer<B>>> make_units(const Plan& plan) {
  std::vector<std::unique_ptr<Layer<B>>> units;
  for (const Unit& u : plan.units) {
    const LayerSpec& l = plan.layers[u.first];
    const LayerLayout& layout = plan.layout[u.first];
    switch (l.kind) {
      case LayerKind::Dense:
        units.push_back(std::make_unique<DenseUnit<B>>(
            l, layout, u.count > 1 ? &plan.layers[u.first + 1] : nullptr));
        break;
      case LayerKind::Activation:
        units.push_back(std::make_unique<ActivationUnit<B>>(l));
        break;
      case LayerKind::Dropout:
      case LayerKind::LayerNorm:
      case LayerKind::BatchNorm:
        throw std::invalid_argument(std::string(kind_name(l.kind)) +
                                    " layers are not available in this build");
    }
  }
  return units;
}

}  // namespace fastbp::nn
