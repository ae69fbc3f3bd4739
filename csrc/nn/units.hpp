#pragma once
// The layer units the loop runs, each over any backend B. make_units turns a plan into
// them; Dense + activation is one unit there, decided by the plan.
#include <memory>
#include <stdexcept>
#include <vector>

#include "common/dropout_math.hpp"
#include "nn/layer.hpp"
#include "nn/plan.hpp"

namespace fastbp::nn {

// Z = X @ W + b, then the activation that follows in the plan (Identity when none), in
// one pass over Z; backward takes the activation's and the bias's gradients in one pass.
template <class B>
class DenseUnit final : public Layer<B> {
 public:
  using T = typename B::Scalar;
  DenseUnit(const LayerSpec& dense, const LayerLayout& layout, const LayerSpec* act,
            kernels::Compute compute)
      : in_(dense.in),
        out_(dense.out),
        w_(layout.params[0].offset),
        b_(layout.params[1].offset),
        compute_(compute),
        act_(act ? act->act : kernels::Act::Identity),
        params_(act ? kernels::ActParams{act->act_a, act->act_b} : kernels::ActParams{}) {}

  void reserve(int64_t m) override {
    if (kernels::act_uses_input(act_)) z_.reserve(m * out_);
  }
  void forward(const Context<B>& c, const T* x, T* y, int64_t m) override {
    // An activation whose derivative reads its input keeps the pre-activation Z apart
    // from y for backward; inference, which has no backward, activates Z in place.
    T* z = kernels::act_uses_input(act_) && c.training ? z_.data() : y;
    c.be.gemm(compute_, false, false, m, out_, in_, x, in_, c.params + w_, out_, z, out_);
    c.be.bias_activation(z, c.params + b_, m, out_, act_, params_, y);
  }
  T* backward(const Context<B>& c, const T* x, const T* y, T* g, T* gx, int64_t m) override {
    const T* z = kernels::act_uses_input(act_) ? z_.data() : nullptr;
    c.be.activation_grad_bias_grad(act_, params_, z, y, g, m, out_, c.grads + b_);
    c.be.gemm(compute_, true, false, in_, out_, m, x, in_, g, out_, c.grads + w_, out_);
    if (!gx) return nullptr;
    c.be.gemm(compute_, false, true, m, in_, out_, g, out_, c.params + w_, out_, gx, in_);
    return gx;
  }

 private:
  int64_t in_, out_, w_, b_;
  kernels::Compute compute_;
  kernels::Act act_;
  kernels::ActParams params_;
  typename B::template Buffer<T> z_;
};

// An activation with no Dense before it: elementwise, dL/dx in place.
template <class B>
class ActivationUnit final : public Layer<B> {
 public:
  using T = typename B::Scalar;
  explicit ActivationUnit(const LayerSpec& l) : n_(l.out), act_(l.act), params_{l.act_a, l.act_b} {}

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

// Inverted dropout in training (a counter-based mask from (seed, layer, pass) and each
// element's index in the pass, which backward draws again rather than storing), the
// identity in inference.
template <class B>
class DropoutUnit final : public Layer<B> {
 public:
  using T = typename B::Scalar;
  DropoutUnit(const LayerSpec& l, size_t layer) : n_(l.out), p_(l.p), layer_(layer) {}

  void forward(const Context<B>& c, const T* x, T* y, int64_t m) override {
    if (!c.training || p_ <= 0.0) return c.be.copy(x, y, m * n_);
    c.be.dropout_forward(x, y, m * n_, p_, key(c), first(c));
  }
  // Backward runs in the training pass whose forward drew the mask, with its context.
  T* backward(const Context<B>& c, const T*, const T*, T* g, T*, int64_t m) override {
    if (p_ > 0.0) c.be.dropout_backward(g, g, m * n_, p_, key(c), first(c));
    return g;
  }

 private:
  uint64_t key(const Context<B>& c) const { return common::dropout_key(c.seed, layer_, c.pass); }
  uint64_t first(const Context<B>& c) const { return static_cast<uint64_t>(c.first_row * n_); }

  int64_t n_;
  double p_;
  uint64_t layer_;
};

// A row norm of any NormKind (each row by its own statistics; the kind a setting the
// kernels switch on once per call) or BatchNorm (Batch = true: each column by the
// batch's statistics in training, by the running statistics in inference).
template <class B, bool Batch>
class NormUnit final : public Layer<B> {
 public:
  using T = typename B::Scalar;
  NormUnit(const LayerSpec& l, const LayerLayout& layout, bool first)
      : n_(l.out),
        norm_(l.norm),
        eps_(l.eps),
        momentum_(l.momentum),
        w_(layout.params[0].offset),
        b_(layout.params.size() > 1 ? layout.params[1].offset : -1),
        first_(first) {
    if constexpr (Batch) mean_at_ = layout.state[0].offset, var_at_ = layout.state[1].offset;
  }

  void reserve(int64_t m) override {
    mean_.reserve(Batch ? n_ : m);
    rstd_.reserve(Batch ? n_ : m);
    if (first_) dx_.reserve(m * n_);  // dL/dx is needed by no layer, but computed
  }
  void forward(const Context<B>& c, const T* x, T* y, int64_t m) override {
    const T* gamma = c.params + w_;
    const T* beta = shift(c.params);
    if constexpr (!Batch) {
      // Only backward reads the row statistics: inference keeps none.
      T* mean = c.training ? mean_.data() : nullptr;
      T* rstd = c.training ? rstd_.data() : nullptr;
      c.be.row_norm_forward(norm_, x, gamma, beta, m, n_, eps_, y, mean, rstd);
    } else if (c.training) {
      c.be.batch_norm_forward_train(x, gamma, beta, m, n_, eps_, momentum_, y, mean_.data(),
                                    rstd_.data(), c.state + mean_at_, c.state + var_at_);
    } else {
      c.be.batch_norm_forward_infer(x, gamma, beta, c.state + mean_at_, c.state + var_at_, m, n_,
                                    eps_, y);
    }
  }
  T* backward(const Context<B>& c, const T* x, const T*, T* g, T* gx, int64_t m) override {
    T* dx = gx ? gx : dx_.data();
    if constexpr (Batch)
      c.be.batch_norm_backward(x, c.params + w_, mean_.data(), rstd_.data(), g, m, n_, dx,
                               c.grads + w_, c.grads + b_);
    else
      c.be.row_norm_backward(norm_, x, c.params + w_, mean_.data(), rstd_.data(), g, m, n_, dx,
                             c.grads + w_, shift(c.grads));
    return gx;
  }

 private:
  // The shift (or its gradient) in `buffer`; null for a row norm without one.
  template <typename U>
  U* shift(U* buffer) const {
    return b_ < 0 ? nullptr : buffer + b_;
  }

  int64_t n_;
  common::NormKind norm_;
  double eps_, momentum_;
  int64_t w_, b_, mean_at_ = 0, var_at_ = 0;
  bool first_;
  typename B::template Buffer<T> mean_, rstd_, dx_;
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
            l, layout, u.count > 1 ? &plan.layers[u.first + 1] : nullptr, plan.compute));
        break;
      case LayerKind::Activation: units.push_back(std::make_unique<ActivationUnit<B>>(l)); break;
      case LayerKind::Dropout: units.push_back(std::make_unique<DropoutUnit<B>>(l, u.first)); break;
      case LayerKind::RowNorm:
        units.push_back(std::make_unique<NormUnit<B, false>>(l, layout, units.empty()));
        break;
      case LayerKind::BatchNorm:
        units.push_back(std::make_unique<NormUnit<B, true>>(l, layout, units.empty()));
        break;
    }
  }
  return units;
}

}  // namespace fastbp::nn
