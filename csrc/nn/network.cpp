#include "nn/network.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>
#include <string>

#include "kernels/check.hpp"
#include "kernels/gemm.hpp"
#include "kernels/linear.hpp"
#include "nn/interrupt.hpp"

namespace fastbp::nn {

using kernels::Act;

Plan make_plan(const std::vector<LayerSpec>& layers) {
  Plan plan;
  int64_t width = -1;
  for (const LayerSpec& l : layers) {
    if (l.dense) {
      if (l.in <= 0 || l.out <= 0) throw std::invalid_argument("Dense sizes must be positive");
      // n_params + in * out + out must fit int64: a wrapped count would allocate too little.
      if (l.in >= (std::numeric_limits<int64_t>::max() - plan.n_params) / l.out)
        throw std::invalid_argument("Dense(" + std::to_string(l.in) + ", " +
                                    std::to_string(l.out) + ") makes the network's parameter "
                                    "count overflow 64-bit integers");
      if (width >= 0 && l.in != width)
        throw std::invalid_argument("Dense layer expects " + std::to_string(l.in) +
                                    " inputs but the previous layer gives " + std::to_string(width));
      const int64_t offset = plan.n_params;
      plan.slots.push_back({offset, offset + l.in * l.out, l.in, l.out});
      plan.steps.push_back({true, l.in, l.out, Act::Identity, offset, offset + l.in * l.out});
      plan.n_params += l.in * l.out + l.out;
      width = l.out;
    } else if (!plan.steps.empty() && plan.steps.back().dense &&
               plan.steps.back().act == Act::Identity) {
      plan.steps.back().act = l.act;
    } else {
      if (width < 0) throw std::invalid_argument("the first layer must be Dense");
      plan.steps.push_back({false, width, width, l.act, 0, 0});
    }
  }
  if (plan.steps.empty()) throw std::invalid_argument("a network needs at least one Dense layer");
  for (const Step& s : plan.steps) plan.max_width = std::max({plan.max_width, s.in, s.out});
  return plan;
}

std::string divergence_reason(double loss, int64_t bad, const std::vector<ParamSlot>& slots) {
  // %g, with NaN unsigned, as Python's f"{loss:g}" in the NumPy reference prints it.
  char text[32];
  std::snprintf(text, sizeof text, "%g", std::isnan(loss) ? std::fabs(loss) : loss);
  if (!std::isfinite(loss)) return std::string("the loss is ") + text;
  for (size_t i = 0; i < slots.size(); ++i) {
    const ParamSlot& s = slots[i];
    if (bad >= s.w_offset && bad < s.b_offset + s.out)
      return std::string("a gradient is NaN or inf (") + (bad < s.b_offset ? "dW" : "db") +
             " of Dense layer " + std::to_string(i + 1) + " of " +
             std::to_string(slots.size()) + "; loss " + text + ")";
  }
  throw std::logic_error("divergence_reason: index " + std::to_string(bad) +
                         " is in no parameter slot");
}

template <typename T>
Network<T>::Network(const std::vector<LayerSpec>& layers, kernels::Loss loss,
                    kernels::Reduction red, double loss_param)
    : loss_(loss), red_(red), loss_param_(loss_param) {
  Plan plan = make_plan(layers);
  steps_ = std::move(plan.steps);
  slots_ = std::move(plan.slots);
  max_width_ = plan.max_width;
  params_.assign(plan.n_params, T(0));
  grads_.assign(plan.n_params, T(0));
  acts_.resize(steps_.size());
}

template <typename T>
void Network<T>::reserve(int64_t m) {
  if (m <= reserved_rows_) return;
  if (m > std::numeric_limits<int64_t>::max() / max_width_)
    throw std::length_error("a batch of " + std::to_string(m) + " rows overflows the workspace size");
  for (size_t s = 0; s < steps_.size(); ++s) acts_[s].resize(m * steps_[s].out);
  grad_a_.resize(m * max_width_);
  grad_b_.resize(m * max_width_);
  reserved_rows_ = m;
}

template <typename T>
const T* Network<T>::run_forward(const T* x, int64_t m) {
  reserve(m);
  const T* in = x;
  for (size_t s = 0; s < steps_.size(); ++s) {
    const Step& st = steps_[s];
    T* out = acts_[s].data();
    if (st.dense) {
      const T* w = params_.data() + st.w_offset;
      kernels::gemm<T>(false, false, m, st.out, st.in, T(1), in, st.in, w, st.out, T(0), out,
                       st.out);
      kernels::bias_activation_rows(out, params_.data() + st.b_offset, m, st.out, st.act);
    } else {
      kernels::act_forward(st.act, in, out, m * st.out);
    }
    in = out;
  }
  return in;
}

template <typename T>
double Network<T>::run_backward(const T* x, kernels::Target<T> t, int64_t m) {
  const T* y = run_forward(x, m);
  T* g = grad_a_.data();
  T* g_next = grad_b_.data();
  const double value = kernels::loss_forward(loss_, red_, y, t, m, out_features(), g,
                                            loss_param_);
  for (size_t s = steps_.size(); s-- > 0;) {
    const Step& st = steps_[s];
    // dZ = dA * f'(Z), in place: g becomes the gradient at the step's pre-activation.
    if (!st.dense) {
      kernels::act_backward(st.act, acts_[s].data(), g, g, m * st.out);
      continue;  // an activation's dZ is its input's dA
    }
    kernels::activation_grad_bias_grad(acts_[s].data(), g, m, st.out, st.act,
                                       grads_.data() + st.b_offset);
    const T* in = s == 0 ? x : acts_[s - 1].data();
    kernels::gemm<T>(true, false, st.in, st.out, m, T(1), in, st.in, g, st.out, T(0),
                     grads_.data() + st.w_offset, st.out);
    if (s == 0) break;
    kernels::gemm<T>(false, true, m, st.in, st.out, T(1), g, st.out,
                     params_.data() + st.w_offset, st.out, T(0), g_next, st.in);
    std::swap(g, g_next);
  }
  last_loss_ = value;
  return value;
}

template <typename T>
void Network<T>::forward(const T* x, int64_t m, T* out) {
  std::lock_guard<std::mutex> lock(mutex_);
  const T* y = run_forward(x, m);
  std::copy(y, y + m * out_features(), out);
}

template <typename T>
double Network<T>::loss(const T* x, kernels::Target<T> t, int64_t m) {
  std::lock_guard<std::mutex> lock(mutex_);
  return kernels::loss_forward<T>(loss_, red_, run_forward(x, m), t, m, out_features(), nullptr,
                                   loss_param_);
}

template <typename T>
double Network<T>::backward(const T* x, kernels::Target<T> t, int64_t m) {
  std::lock_guard<std::mutex> lock(mutex_);
  return run_backward(x, t, m);
}

template <typename T>
void Network<T>::check_finite(int64_t step) const {
  if (std::isfinite(last_loss_) && kernels::all_finite(grads_.data(), n_params())) return;
  throw Divergence(step, divergence_reason(last_loss_,
                                           kernels::first_nonfinite(grads_.data(), n_params()),
                                           slots_));
}

template <typename T>
void Network<T>::apply_update(kernels::Update<T>& update, int64_t step) {
  // Checked before the update, so a diverged step changes no parameter and no optimizer
  // state (inputs were checked finite, so this is the network's own overflow).
  check_finite(step);
  const double norm = update.apply(params_.data(), grads_.data(), n_params());
  if (!std::isfinite(norm)) {
    char text[32];
    std::snprintf(text, sizeof text, "%g", norm);
    throw Divergence(step, std::string("the gradient norm is ") + text);
  }
  ++updates_;
}

template <typename T>
void Network<T>::step(kernels::Update<T>& update) {
  std::lock_guard<std::mutex> lock(mutex_);
  apply_update(update, 0);
}

template <typename T>
double Network<T>::run_step(const T* x, kernels::Target<T> t, int64_t m,
                            kernels::Update<T>& update, int64_t step) {
  const double value = run_backward(x, t, m);
  apply_update(update, step);
  return value;
}

template <typename T>
double Network<T>::train_step(const T* x, kernels::Target<T> t, int64_t m,
                              kernels::Update<T>& update) {
  std::lock_guard<std::mutex> lock(mutex_);
  return run_step(x, t, m, update, 0);
}

template <typename T>
double Network<T>::train_epoch(const T* x, kernels::Target<T> t, int64_t rows,
                               const int64_t* order, int64_t batch,
                               kernels::Update<T>& update, double loss_sum,
                               int64_t interrupt_mark) {
  std::lock_guard<std::mutex> lock(mutex_);
  const int64_t in = in_features(), out = out_features();
  const int64_t cap = std::min(batch, rows);
  batch_x_.resize(cap * in);
  if (t.labels) batch_labels_.resize(cap); else batch_t_.resize(cap * out);
  if (t.weights) batch_w_.resize(cap);
  for (int64_t start = 0; start < rows; start += batch) {
    if (interrupted_since(interrupt_mark)) throw Interrupted(start / batch);
    const int64_t m = std::min(batch, rows - start);
    kernels::Target<T> bt;
    for (int64_t i = 0; i < m; ++i) {
      const int64_t r = order[start + i];
      std::copy(x + r * in, x + (r + 1) * in, batch_x_.data() + i * in);
      if (t.labels) batch_labels_[i] = t.labels[r];
      else std::copy(t.dense + r * out, t.dense + (r + 1) * out, batch_t_.data() + i * out);
      if (t.weights) batch_w_[i] = t.weights[r];
    }
    if (t.labels) bt.labels = batch_labels_.data(); else bt.dense = batch_t_.data();
    if (t.weights) bt.weights = batch_w_.data();
    loss_sum += double(m) * run_step(batch_x_.data(), bt, m, update, start / batch);
  }
  return loss_sum;
}

template class Network<float>;
template class Network<double>;

}  // namespace fastbp::nn
