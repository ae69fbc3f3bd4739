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
    parts_.push_back(make_part());
    for (size_t i = 0; i < plan_.layers.size(); ++i) {
      const LayerSpec& l = plan_.layers[i];
      if (l.kind == LayerKind::Dense) {
        weights_.push_back(plan_.layout[i].params[0]);
        macs_per_row_ += l.in * l.out;
      }
      // Each row of a part must go through the same layers as in the whole batch: a
      // BatchNorm's statistics span the batch (a Dropout's mask is drawn per element).
      if (l.kind == LayerKind::BatchNorm) splittable_ = false;
    }
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
    be_.loss(loss_, y, be_.target(t, m, this->out_features(), 0), m, m, this->out_features(),
             nullptr, be_.loss_slot(0));
    double value = 0.0;
    be_.end_report(1, nullptr, &value);
    return value;
  }

  int training_parts(int64_t rows) const override {
    if constexpr (B::kSplitsRows)
      if (splittable_) return be_.row_parts(rows, macs_per_row_);
    return 1;
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
    const bool grads_finite = backward_batch(x, t, m);
    if (!check_step(be_.loss_slot(0), grads_finite, 0)) apply(update, grads_.device(), 0);
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
      bool grads_finite = run_backward(b.x, b.t, m, be_.loss_slot(enqueued));
      if (weight_penalty > 0.0) {
        for (const Slice& w : weights_)
          be_.add_weight_penalty(params_.device() + w.offset, grads_.device() + w.offset, w.size(),
                                 weight_penalty / double(m), be_.loss_slot(enqueued));
        grads_finite = false;  // the penalty changed them: checked again
      }
      const bool diverged = check_step(be_.loss_slot(enqueued), grads_finite, enqueued) ||
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
    int64_t& reserved = training ? parts_[0]->rows : inference_rows_;
    if (m > reserved) {
      if (m > std::numeric_limits<int64_t>::max() / plan_.max_width)
        throw std::length_error("a batch of " + std::to_string(m) +
                                " rows overflows the workspace size");
      be_.idle();  // old workspaces may still be in use by queued work
      if (training) reserve_part(*parts_[0], m);
      else
        for (Buf& b : inference_) b.reserve(m * plan_.max_width);
      be_.reserve_rows(m, this->in_features(), this->out_features());
      reserved = m;
    }
    params_.device();
    state_.device();
  }

  // The units and buffers of a training pass over some rows. The first part serves
  // every pass; a pass split by rows runs each later part on a thread of its own.
  struct Part {
    std::vector<std::unique_ptr<Layer<B>>> units;
    std::unique_ptr<Buf[]> acts;  // each unit's output
    Buf grad_a, grad_b;           // ping-pong buffers for dL/d(activations)
    Buf grads;                    // a later part's parameter gradients
    int64_t rows = 0;             // training rows its workspaces hold
  };

  std::unique_ptr<Part> make_part() const {
    auto part = std::make_unique<Part>();
    part->units = make_units<B>(plan_);
    part->acts = std::make_unique<Buf[]>(part->units.size());
    return part;
  }

  void reserve_part(Part& p, int64_t m) {
    for (size_t u = 0; u < p.units.size(); ++u) {
      const LayerSpec& last = plan_.layers[plan_.units[u].first + plan_.units[u].count - 1];
      p.acts[u].reserve(m * last.out);
      p.units[u]->reserve(m);
    }
    p.grad_a.reserve(m * plan_.max_width);
    p.grad_b.reserve(m * plan_.max_width);
    p.rows = m;
  }

  // A training pass's context, its parameter gradients written to grads.
  Context<B> context(T* grads) {
    return {be_, params_.device(), grads, state_.device(), true, seed_, passes_};
  }

  const T* run_forward(const T* x, int64_t m, bool training) {
    const Context<B> c =
        training
            ? context(grads_.device_discard())
            : Context<B>{be_, params_.device(), nullptr, state_.device(), false, seed_, passes_};
    const T* y = forward_units(*parts_[0], c, x, m);
    if (training) count_pass();
    return y;
  }

  // The units of part p over m rows: their outputs in p.acts when training, else in the
  // inference buffers.
  const T* forward_units(Part& p, const Context<B>& c, const T* x, int64_t m) {
    const T* in = x;
    for (size_t u = 0; u < p.units.size(); ++u) {
      T* out = c.training ? p.acts[u].data() : inference_[u % 2].data();
      p.units[u]->forward(c, in, out, m);
      in = out;
    }
    return in;
  }

  void count_pass() {
    ++passes_;
    if (plan_.n_state) state_.device_wrote();
  }

  // A one-step call's backward pass on the host batch (x, t): its loss in loss_slot(0).
  // True where the gradients are known finite (see run_backward).
  bool backward_batch(const T* x, Target t, int64_t m) {
    check_training_rows(m);
    prepare(m, true);
    be_.begin_report(1);
    return run_backward(be_.input(x, m * this->in_features(), 0),
                        be_.target(t, m, this->out_features(), 0), m, be_.loss_slot(0));
  }

  // Forward in training mode, the loss into *value, and the gradients: in one part, or
  // split by rows where the backend runs parts at once. True where the gradients are
  // known finite (a split pass checks its sums as it adds them).
  bool run_backward(const T* x, Target t, int64_t m, double* value) {
    T* grads = grads_.device_discard();
    const int parts = training_parts(m);
    bool finite = false;
    if (parts == 1) {
      backward_rows(*parts_[0], context(grads), x, t, m, m, value);
    } else if constexpr (B::kSplitsRows) {
      finite = split_backward(x, t, m, parts, grads, value);
    }
    count_pass();
    grads_.device_wrote();
    return finite;
  }

  // A training step's check before its update: the loss in *loss and, unless known finite,
  // the gradients. True: the step diverged.
  bool check_step(const double* loss, bool grads_finite, int64_t step) {
    if (grads_finite) return be_.check_finite(loss, nullptr, 0, step);
    return be_.check_finite(loss, grads_.device(), this->n_params(), step);
  }

  // Part p's forward and backward pass over m of a batch's batch_rows rows: its loss
  // share into *value, its parameter gradients where c says.
  void backward_rows(Part& p, const Context<B>& c, const T* x, Target t, int64_t m,
                     int64_t batch_rows, double* value) {
    const T* y = forward_units(p, c, x, m);
    T* g = p.grad_a.data();
    T* other = p.grad_b.data();
    be_.loss(loss_, y, t, m, batch_rows, this->out_features(), g, value);
    for (size_t u = p.units.size(); u-- > 0;) {
      const T* in = u == 0 ? x : p.acts[u - 1].data();
      T* dx = p.units[u]->backward(c, in, p.acts[u].data(), g, u == 0 ? nullptr : other, m);
      if (dx == other) std::swap(g, other);
    }
  }

  // The batch in `parts` row ranges, at once: the first part's parameter gradients into
  // grads, each later part's into its own buffer, then added to grads in part order
  // (the same sums, so the same bits, on every run with the same parts). Returns whether
  // the sums are all finite.
  bool split_backward(const T* x, Target t, int64_t m, int parts, T* grads, double* value) {
    const int64_t in = this->in_features(), out = this->out_features();
    while (parts_.size() < static_cast<size_t>(parts)) parts_.push_back(make_part());
    for (int p = 1; p < parts; ++p) {
      Part& part = *parts_[p];
      if (part.rows < m / parts + 1) reserve_part(part, m / parts + 1);
      part.grads.reserve(this->n_params());
    }
    part_losses_.resize(parts);
    const T* params = params_.device();
    T* state = state_.device();
    be_.run_parts(parts, [&](int64_t p) {
      const int64_t begin = m * p / parts, end = m * (p + 1) / parts;
      Part& part = *parts_[p];
      const Context<B> c{be_,     params, p == 0 ? grads : part.grads.data(), state, true, seed_,
                         passes_, begin};
      backward_rows(part, c, x + begin * in, rows_from(t, begin, out), end - begin, m,
                    &part_losses_[p]);
    });
    *value = part_losses_[0];
    part_grads_.clear();
    for (int p = 1; p < parts; ++p) {
      *value += part_losses_[p];
      part_grads_.push_back(parts_[p]->grads.data());
    }
    return be_.add_grads(grads, part_grads_.data(), parts - 1, this->n_params());
  }

  // t from row `begin` on (n outputs a row).
  static Target rows_from(Target t, int64_t begin, int64_t n) {
    if (t.dense) t.dense += begin * n;
    if (t.labels) t.labels += begin;
    if (t.weights) t.weights += begin;
    return t;
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
  std::vector<std::unique_ptr<Part>> parts_;  // the first made at once, later ones when split
  std::vector<double> part_losses_;
  std::vector<const T*> part_grads_;
  int64_t macs_per_row_ = 0;  // of the Dense layers' products
  bool splittable_ = true;    // whether a pass may be split by rows (no BatchNorm)
  Buf inference_[2];          // ping-pong outputs of an inference pass
  int64_t inference_rows_ = 0, updates_ = 0;
  double last_loss_ = 0.0;  // of the pass that filled the gradients
  std::mutex mutex_;
};

}  // namespace fastbp::nn
