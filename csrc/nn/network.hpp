#pragma once
// The one network loop: forward, loss, backward, check, update, over a backend B that
// supplies kernels and memory (nn/cpu_backend.hpp on the CPU, cuda/backend.cuh on the
// GPU), as nn/backend.hpp spells out and checks. Each backend's network is this
// template; nothing here knows which it runs on.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "common/checks.hpp"
#include "nn/backend.hpp"
#include "nn/interrupt.hpp"
#include "nn/trainer.hpp"
#include "nn/units.hpp"

namespace fastbp::nn {

template <class B>
class Network final : public Trainer<typename B::Scalar> {
  static_assert(is_backend<B>());

 public:
  using T = typename B::Scalar;
  using Target = kernels::Target<T>;
  using Update = kernels::Update<T>;

  // The backend is made first (a GPU backend picks its device there), then the buffers.
  Network(Plan plan, const LossSpec& loss, uint64_t seed)
      : plan_(std::move(plan)),
        loss_(loss),
        seed_(seed),
        params_(be_, plan_.n_params),
        grads_(be_, plan_.n_params),
        state_(be_, plan_.n_state) {
    units_ = make_units<B>(plan_);
    acts_ = std::make_unique<Buf[]>(units_.size());
    for (size_t i = 0; i < plan_.layers.size(); ++i)
      if (plan_.layers[i].kind == LayerKind::Dense) weights_.push_back(plan_.layout[i].params[0]);
  }

  const Plan& plan() const override { return plan_; }
  const LossSpec& loss_spec() const override { return loss_; }
  int64_t updates() const override { return updates_; }
  uint64_t passes() const override { return passes_; }
  void set_passes(uint64_t passes) override {
    std::lock_guard<std::mutex> lock(mutex_);
    passes_ = passes;
  }
  T* params() override { return params_.host(); }
  T* grads() override { return grads_.host(); }
  T* state() override { return state_.host(); }
  void sync_host() override {
    std::lock_guard<std::mutex> lock(mutex_);
    params_.to_host();
    grads_.to_host();
    state_.to_host();
    be_.states_to_host();
  }
  void snapshot(T* out) override {
    std::lock_guard<std::mutex> lock(mutex_);
    params_.to_host();
    state_.to_host();
    std::copy_n(params_.host(), this->n_params(), out);
    std::copy_n(state_.host(), this->n_state(), out + this->n_params());
  }
  void after_fork_in_child() override { new (&mutex_) std::mutex(); }

  void forward(const T* x, int64_t m, T* out) override {
    std::lock_guard<std::mutex> lock(mutex_);
    prepare(m, false);
    const T* y = run_forward(be_.input(x, m * this->in_features(), 0), m, false);
    be_.output(y, m * this->out_features(), out);
  }

  double loss(const T* x, Target t, int64_t m, bool training) override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (training) check_training_rows(m);
    prepare(m, training);
    be_.begin_report(1);
    const T* y = run_forward(be_.input(x, m * this->in_features(), 0), m, training);
    be_.loss(loss_, y, be_.target(t, m, this->out_features(), 0), m, this->out_features(), nullptr,
             be_.loss_slot(0));
    double value = 0.0;
    be_.end_report(1, nullptr, &value);
    return value;
  }

  double backward(const T* x, Target t, int64_t m) override {
    std::lock_guard<std::mutex> lock(mutex_);
    backward_batch(x, t, m);
    be_.end_report(1, nullptr, &last_loss_);
    return last_loss_;
  }

  void step(Update& update) override {
    std::lock_guard<std::mutex> lock(mutex_);
    // The loss came with the backward pass and is checked here; the gradients, which
    // Python may since have written, where they are.
    if (!std::isfinite(last_loss_)) throw Divergence(0, divergence_reason(last_loss_, -1, plan_));
    prepare(0, true);
    be_.begin_report(1);
    T* grads = grads_.device();
    if (!be_.check_finite(nullptr, grads, this->n_params(), 0)) apply(update, grads, 0);
    double loss = last_loss_;
    conclude(1, &loss, &last_loss_);
  }

  double train_step(const T* x, Target t, int64_t m, Update& update) override {
    std::lock_guard<std::mutex> lock(mutex_);
    backward_batch(x, t, m);
    if (!be_.check_finite(be_.loss_slot(0), grads_.device(), this->n_params(), 0))
      apply(update, grads_.device(), 0);
    double value = 0.0;
    conclude(1, &value);
    last_loss_ = value;
    return value;
  }

  double train_epoch(const T* x, Target t, int64_t rows, const int64_t* order, int64_t batch,
                     Update& update, double loss_sum, int64_t interrupt_mark,
                     double weight_penalty) override {
    std::lock_guard<std::mutex> lock(mutex_);
    const int64_t cap = std::min(batch, rows), batches = (rows - 1) / batch + 1;
    check_training_rows(cap);
    check_training_rows(rows - (batches - 1) * batch);  // the last batch
    prepare(cap, true);
    be_.begin_report(batches);
    be_.reserve_batches(cap, this->in_features(), this->out_features(), t);
    int64_t enqueued = 0;
    for (; enqueued < batches && !interrupted_since(interrupt_mark); ++enqueued) {
      const int64_t start = enqueued * batch, m = std::min(batch, rows - start);
      const int slot = static_cast<int>(enqueued % 2);
      const auto b =
          be_.gather(x, t, order + start, m, this->in_features(), this->out_features(), slot);
      run_backward(b.x, b.t, m, be_.loss_slot(enqueued));
      if (weight_penalty > 0.0)
        for (const Slice& w : weights_)
          be_.add_weight_penalty(params_.device() + w.offset, grads_.device() + w.offset, w.size(),
                                 weight_penalty / double(m), be_.loss_slot(enqueued));
      const bool diverged =
          be_.check_finite(be_.loss_slot(enqueued), grads_.device(), this->n_params(), enqueued) ||
          apply(update, grads_.device(), enqueued);
      be_.batch_enqueued(slot);
      if (diverged) {  // known at once on this backend: no later batch runs
        ++enqueued;
        break;
      }
    }
    // Interrupted before its first batch, the call changed nothing.
    if (enqueued == 0) throw Interrupted(0);
    std::vector<double> losses(enqueued);
    conclude(enqueued, losses.data());
    last_loss_ = losses[enqueued - 1];
    if (enqueued < batches) throw Interrupted(enqueued);
    for (int64_t k = 0; k < batches; ++k)
      loss_sum += double(std::min(batch, rows - k * batch)) * losses[k];
    return loss_sum;
  }

 private:
  using Buf = typename B::template Buffer<T>;

  // A training pass over m rows, refused before anything changes where the plan has a
  // BatchNorm and m is too few for its statistics.
  void check_training_rows(int64_t m) const {
    for (const LayerSpec& l : plan_.layers)
      if (l.kind == LayerKind::BatchNorm) return common::check_batch_norm_rows(m);
  }

  // Every call starts here: workspaces for a pass over m rows, and what Python may have
  // written (parameters, state) made current where the kernels run. A training pass keeps
  // every unit's output and workspaces for backward; an inference pass needs only two
  // buffers, however deep the network.
  void prepare(int64_t m, bool training) {
    be_.activate();
    int64_t& reserved = training ? training_rows_ : inference_rows_;
    if (m > reserved) {
      if (m > std::numeric_limits<int64_t>::max() / plan_.max_width)
        throw std::length_error("a batch of " + std::to_string(m) +
                                " rows overflows the workspace size");
      be_.idle();  // old workspaces may still be in use by queued work
      if (training) reserve_training(m);
      else
        for (Buf& b : inference_) b.reserve(m * plan_.max_width);
      be_.reserve_rows(m, this->in_features(), this->out_features());
      reserved = m;
    }
    params_.device();
    state_.device();
  }

  void reserve_training(int64_t m) {
    for (size_t u = 0; u < units_.size(); ++u) {
      const LayerSpec& last = plan_.layers[plan_.units[u].first + plan_.units[u].count - 1];
      acts_[u].reserve(m * last.out);
      units_[u]->reserve(m);
    }
    grad_a_.reserve(m * plan_.max_width);
    grad_b_.reserve(m * plan_.max_width);
  }

  Context<B> context(bool training) {
    return {be_,   params_.device(), grads_.device_discard(), state_.device(), training,
            seed_, passes_};
  }

  const T* run_forward(const T* x, int64_t m, bool training) {
    const Context<B> c =
        training
            ? context(true)
            : Context<B>{be_, params_.device(), nullptr, state_.device(), false, seed_, passes_};
    const T* in = x;
    for (size_t u = 0; u < units_.size(); ++u) {
      T* out = training ? acts_[u].data() : inference_[u % 2].data();
      units_[u]->forward(c, in, out, m);
      in = out;
    }
    if (training) {
      ++passes_;
      if (plan_.n_state) state_.device_wrote();
    }
    return in;
  }

  // A one-step call's backward pass on the host batch (x, t): its loss in loss_slot(0).
  void backward_batch(const T* x, Target t, int64_t m) {
    check_training_rows(m);
    prepare(m, true);
    be_.begin_report(1);
    run_backward(be_.input(x, m * this->in_features(), 0),
                 be_.target(t, m, this->out_features(), 0), m, be_.loss_slot(0));
  }

  // Forward in training mode, the loss into *value, and the gradients.
  void run_backward(const T* x, Target t, int64_t m, double* value) {
    const T* y = run_forward(x, m, true);
    const Context<B> c = context(true);
    T* g = grad_a_.data();
    T* other = grad_b_.data();
    be_.loss(loss_, y, t, m, this->out_features(), g, value);
    for (size_t u = units_.size(); u-- > 0;) {
      const T* in = u == 0 ? x : acts_[u - 1].data();
      T* dx = units_[u]->backward(c, in, acts_[u].data(), g, u == 0 ? nullptr : other, m);
      if (dx == other) std::swap(g, other);
    }
    grads_.device_wrote();
  }

  // The update of step `step`, clipping first when set; true when the backend found the
  // step diverged there (a non-finite gradient norm) and changed nothing.
  bool apply(Update& update, T* grads, int64_t step) {
    return be_.update(update, params_.device(), grads, this->n_params(), step);
  }

  // With the report of a call that ran `steps` steps: counts the updates applied and
  // records that the device changed the parameters, then throws Divergence if a step
  // diverged. losses receives the steps' losses, or for an update without a backward
  // pass (step), the `known` loss.
  void conclude(int64_t steps, double* losses, const double* known = nullptr) {
    int64_t status[2];
    be_.end_report(steps, status, losses);
    if (known) losses[0] = *known;
    const int64_t applied = status[0] < 0 ? steps : status[0];
    if (applied > 0) {
      params_.device_wrote();
      be_.states_wrote();
    }
    updates_ += applied;
    if (status[0] < 0) return;
    throw Divergence(status[0], divergence_reason(losses[status[0]], status[1], plan_));
  }

  B be_;
  Plan plan_;
  std::vector<Slice> weights_;  // the Dense layers' weight matrices, which weight_penalty takes
  LossSpec loss_;
  uint64_t seed_, passes_ = 0;
  typename B::Mirror params_, grads_, state_;
  std::vector<std::unique_ptr<Layer<B>>> units_;
  std::unique_ptr<Buf[]> acts_;  // each unit's output in a training pass
  Buf inference_[2];             // ping-pong outputs of an inference pass
  Buf grad_a_, grad_b_;          // ping-pong buffers for dL/d(activations)
  int64_t training_rows_ = 0, inference_rows_ = 0, updates_ = 0;
  double last_loss_ = 0.0;  // of the pass that filled the gradients
  std::mutex mutex_;
};

}  // namespace fastbp::nn
