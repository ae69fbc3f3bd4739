#include "cuda/network.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "cuda/common.cuh"
#include "cuda/device.hpp"
#include "cuda/kernels.cuh"
#include "nn/interrupt.hpp"

namespace fastbp::cuda {

using kernels::Target;

// Everything on the GPU. Input batches have two slots: while the GPU trains on one,
// the host gathers the next batch into the other slot's pinned buffer.
template <typename T>
struct Network<T>::Device {
  int id = 0;
  cudaStream_t stream = nullptr;
  cudaEvent_t done[2] = {nullptr, nullptr};  // the GPU finished with a slot
  Buffer<T> params, grads, velocity, grad_a, grad_b;
  std::unique_ptr<Buffer<T>[]> acts;  // post-activation output of each step
  Buffer<T> x[2], t[2];
  Buffer<int64_t> labels[2];
  Pinned<T> stage_x[2], stage_t[2];
  Pinned<int64_t> stage_labels[2];
  // A call's report: kStatus words of divergence status (check_step's, as the bits of
  // unsigned long long), then one loss per step, so that one download brings back the
  // losses and the verdict together.
  static constexpr int64_t kStatus = 2;
  static_assert(sizeof(double) == sizeof(unsigned long long), "status words fill doubles");
  Buffer<double> scratch, report;
  int64_t rows = 0;

  ~Device() {
    for (cudaEvent_t e : done) if (e) cudaEventDestroy(e);
    if (stream) cudaStreamDestroy(stream);
  }
  void upload(void* dst, const void* src, int64_t bytes) {
    check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream), "upload");
  }
  void download(void* dst, const void* src, int64_t bytes) {
    check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream), "download");
    check(cudaStreamSynchronize(stream), "download");
  }
  unsigned long long* status() const {
    return reinterpret_cast<unsigned long long*>(report.data());
  }
  double* loss_at(int64_t step) const { return report.data() + kStatus + step; }
  // Every word kNotDiverged (all bits set), before a call's first step.
  void reset_status() {
    check(cudaMemsetAsync(status(), 0xff, kStatus * sizeof(double), stream), "reset_status");
  }
  // The batch's target in slot `s`, uploaded from host target rows.
  Target<T> upload_target(Target<T> t_host, int64_t m, int64_t n, int s) {
    Target<T> on_device;
    if (t_host.labels) {
      upload(labels[s].data(), t_host.labels, m * sizeof(int64_t));
      on_device.labels = labels[s].data();
    } else {
      upload(t[s].data(), t_host.dense, m * n * sizeof(T));
      on_device.dense = t[s].data();
    }
    return on_device;
  }
};

namespace {

// Steps of the forward pass on the device; returns the output (m x out).
template <typename T>
const T* run_forward(const nn::Plan& plan, const T* params, Buffer<T>* acts, const T* x,
                     int64_t m, cudaStream_t stream) {
  const T* in = x;
  for (size_t s = 0; s < plan.steps.size(); ++s) {
    const nn::Step& st = plan.steps[s];
    T* out = acts[s].data();
    if (st.dense) {
      gemm<T>(false, false, m, st.out, st.in, in, st.in, params + st.w_offset, st.out, out,
              st.out, stream);
      bias_activation(out, params + st.b_offset, m, st.out, st.act, stream);
    } else {
      act_forward(st.act, in, out, m * st.out, stream);
    }
    in = out;
  }
  return in;
}

}  // namespace

template <typename T>
Network<T>::Network(const std::vector<nn::LayerSpec>& layers, kernels::Loss loss,
                    kernels::Reduction red, double loss_param)
    : plan_(nn::make_plan(layers)), loss_(loss), red_(red), loss_param_(loss_param) {
  const DeviceStatus status = device_status();
  if (!status.available) throw std::runtime_error("backend 'cuda': " + status.message);
  host_params_.assign(plan_.n_params, T(0));
  host_grads_.assign(plan_.n_params, T(0));
  dev_ = std::make_unique<Device>();
  check(cudaGetDevice(&dev_->id), "cudaGetDevice");
  check(cudaStreamCreateWithFlags(&dev_->stream, cudaStreamNonBlocking), "cudaStreamCreate");
  for (cudaEvent_t& e : dev_->done)
    check(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreate");
  dev_->params.reserve(plan_.n_params);
  dev_->grads.reserve(plan_.n_params);
  dev_->acts.reset(new Buffer<T>[plan_.steps.size()]);
}

template <typename T>
Network<T>::~Network() = default;

// Every GPU call starts here: on this network's device, workspaces for `rows` rows,
// and parameters Python may have written uploaded.
template <typename T>
void Network<T>::prepare(int64_t rows) {
  Device& d = *dev_;
  check(cudaSetDevice(d.id), "cudaSetDevice");
  if (rows > d.rows) {
    check(cudaStreamSynchronize(d.stream), "cudaStreamSynchronize");  // old buffers idle
    for (size_t s = 0; s < plan_.steps.size(); ++s) d.acts[s].reserve(rows * plan_.steps[s].out);
    d.grad_a.reserve(rows * plan_.max_width);
    d.grad_b.reserve(rows * plan_.max_width);
    d.scratch.reserve(std::max(loss_scratch_size(rows), clip_scratch_size()));
    for (int s = 0; s < 2; ++s) {
      d.x[s].reserve(rows * in_features());
      d.t[s].reserve(rows * out_features());
      d.labels[s].reserve(rows);
    }
    d.rows = rows;
  }
  d.report.reserve(Device::kStatus + 1);
  // A step before any batch still clips: scratch must exist (nothing can be using it).
  if (!d.scratch.data()) d.scratch.reserve(clip_scratch_size());
  if (params_ == Fresh::Host) d.upload(d.params.data(), host_params_.data(), n_params() * sizeof(T));
}

template <typename T>
void Network<T>::use_grads() {
  if (grads_ == Fresh::Host) dev_->upload(dev_->grads.data(), host_grads_.data(), n_params() * sizeof(T));
}

template <typename T>
void Network<T>::check_velocity(const kernels::OptimizerArgs& args) const {
  if (args.hyper[1] != 0.0 && !velocity_host_)
    throw std::logic_error("momentum needs a velocity buffer: call bind_velocity first");
}

template <typename T>
void Network<T>::enqueue_update(const double* value, int64_t step,
                                const kernels::OptimizerArgs& args, double max_grad_norm) {
  Device& d = *dev_;
  check_step(value, d.grads.data(), n_params(), step, d.status(), d.stream);
  if (max_grad_norm > 0.0)
    clip_grad_norm(d.grads.data(), n_params(), max_grad_norm, d.scratch.data(), step,
                   d.status(), d.stream);
  T* states[] = {d.velocity.data()};
  cuda::optimizer_step(args, d.params.data(), d.grads.data(), states, n_params(), d.status(),
                       d.stream);
}

template <typename T>
void Network<T>::conclude(const double* status, const double* losses,
                          const kernels::OptimizerArgs& args, int64_t steps) {
  unsigned long long words[Device::kStatus];
  std::memcpy(words, status, sizeof words);
  // Steps before the diverged one were applied; with none applied, the device's
  // velocity may be a first step's uninitialised buffer, which must not come down.
  if (words[0] != 0) {
    params_ = Fresh::Device;
    if (args.hyper[1] != 0.0) velocity_on_device_newer_ = true;
  }
  updates_ += words[0] == kNotDiverged ? steps : static_cast<int64_t>(words[0]);
  if (words[0] == kNotDiverged) return;
  const int64_t step = static_cast<int64_t>(words[0]);
  const int64_t bad = words[1] == kNotDiverged ? -1 : static_cast<int64_t>(words[1]);
  // Finite loss and gradients: the clipping found their norm not finite.
  if (bad < 0 && std::isfinite(losses[step]))
    throw nn::Divergence(step, "the gradient norm is inf");
  throw nn::Divergence(step, nn::divergence_reason(losses[step], bad, plan_.slots));
}

template <typename T>
void Network<T>::sync_host() {
  std::lock_guard<std::mutex> lock(mutex_);
  Device& d = *dev_;
  check(cudaSetDevice(d.id), "cudaSetDevice");
  const int64_t bytes = n_params() * sizeof(T);
  if (params_ == Fresh::Device) d.download(host_params_.data(), d.params.data(), bytes);
  if (grads_ == Fresh::Device) d.download(host_grads_.data(), d.grads.data(), bytes);
  if (velocity_on_device_newer_) d.download(velocity_host_, d.velocity.data(), bytes);
  params_ = grads_ = Fresh::Host;
  velocity_on_device_newer_ = false;
}

template <typename T>
void Network<T>::bind_velocity(T* velocity, bool first_step) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (velocity == velocity_host_) return;
  Device& d = *dev_;
  check(cudaSetDevice(d.id), "cudaSetDevice");
  d.velocity.reserve(n_params());
  const int64_t bytes = n_params() * sizeof(T);
  if (velocity_on_device_newer_) d.download(velocity_host_, d.velocity.data(), bytes);
  if (!first_step) d.upload(d.velocity.data(), velocity, bytes);
  velocity_host_ = velocity;
  velocity_on_device_newer_ = false;
}

template <typename T>
void Network<T>::forward(const T* x, int64_t m, T* out) {
  std::lock_guard<std::mutex> lock(mutex_);
  prepare(m);
  Device& d = *dev_;
  d.upload(d.x[0].data(), x, m * in_features() * sizeof(T));
  const T* y = run_forward(plan_, d.params.data(), d.acts.get(), d.x[0].data(), m, d.stream);
  d.download(out, y, m * out_features() * sizeof(T));
}

template <typename T>
double Network<T>::loss(const T* x, Target<T> t, int64_t m) {
  std::lock_guard<std::mutex> lock(mutex_);
  prepare(m);
  Device& d = *dev_;
  d.upload(d.x[0].data(), x, m * in_features() * sizeof(T));
  const Target<T> dt = d.upload_target(t, m, out_features(), 0);
  const T* y = run_forward(plan_, d.params.data(), d.acts.get(), d.x[0].data(), m, d.stream);
  cuda::loss(loss_, red_, y, dt, m, out_features(), static_cast<T*>(nullptr), d.scratch.data(),
             d.loss_at(0), d.stream, loss_param_);
  double value = 0.0;
  d.download(&value, d.loss_at(0), sizeof value);
  return value;
}

template <typename T>
void Network<T>::run_backward(const T* x, Target<T> t, int64_t m, double* value) {
  Device& d = *dev_;
  T* params = d.params.data();
  T* grads = d.grads.data();
  const T* y = run_forward(plan_, params, d.acts.get(), x, m, d.stream);
  T* g = d.grad_a.data();
  T* g_next = d.grad_b.data();
  cuda::loss(loss_, red_, y, t, m, out_features(), g, d.scratch.data(), value, d.stream,
             loss_param_);
  for (size_t s = plan_.steps.size(); s-- > 0;) {
    const nn::Step& st = plan_.steps[s];
    const T* out = d.acts[s].data();
    if (!st.dense) {  // an activation's dZ is its input's dA
      act_backward(st.act, out, g, m * st.out, d.stream);
      continue;
    }
    act_backward_bias_grad(st.act, out, g, m, st.out, grads + st.b_offset, d.stream);
    const T* in = s == 0 ? x : d.acts[s - 1].data();
    gemm<T>(true, false, st.in, st.out, m, in, st.in, g, st.out, grads + st.w_offset, st.out,
            d.stream);
    if (s == 0) break;
    gemm<T>(false, true, m, st.in, st.out, g, st.out, params + st.w_offset, st.out, g_next,
            st.in, d.stream);
    std::swap(g, g_next);
  }
  grads_ = Fresh::Device;
}

template <typename T>
double Network<T>::backward(const T* x, Target<T> t, int64_t m) {
  std::lock_guard<std::mutex> lock(mutex_);
  prepare(m);
  Device& d = *dev_;
  d.upload(d.x[0].data(), x, m * in_features() * sizeof(T));
  run_backward(d.x[0].data(), d.upload_target(t, m, out_features(), 0), m, d.loss_at(0));
  d.download(&last_loss_, d.loss_at(0), sizeof last_loss_);
  return last_loss_;
}

template <typename T>
double Network<T>::train_step(const T* x, Target<T> t, int64_t m,
                              const kernels::OptimizerArgs& args, double max_grad_norm) {
  std::lock_guard<std::mutex> lock(mutex_);
  check_velocity(args);
  prepare(m);
  Device& d = *dev_;
  d.upload(d.x[0].data(), x, m * in_features() * sizeof(T));
  d.reset_status();
  run_backward(d.x[0].data(), d.upload_target(t, m, out_features(), 0), m, d.loss_at(0));
  enqueue_update(d.loss_at(0), 0, args, max_grad_norm);
  double report[Device::kStatus + 1];
  d.download(report, d.report.data(), sizeof report);
  last_loss_ = report[Device::kStatus];
  conclude(report, report + Device::kStatus, args, 1);
  return last_loss_;
}

template <typename T>
double Network<T>::train_epoch(const T* x, Target<T> t, int64_t rows, const int64_t* order,
                               int64_t batch, const kernels::OptimizerArgs& args,
                               double max_grad_norm, double loss_sum, int64_t interrupt_mark) {
  std::lock_guard<std::mutex> lock(mutex_);
  check_velocity(args);
  const int64_t in = in_features(), out = out_features();
  const int64_t cap = std::min(batch, rows), batches = (rows + batch - 1) / batch;
  prepare(cap);
  Device& d = *dev_;
  d.report.reserve(Device::kStatus + batches);
  d.reset_status();
  for (int s = 0; s < 2; ++s) {
    d.stage_x[s].reserve(cap * in);
    if (t.labels) d.stage_labels[s].reserve(cap); else d.stage_t[s].reserve(cap * out);
  }
  int64_t enqueued = 0;
  for (; enqueued < batches && !nn::interrupted_since(interrupt_mark); ++enqueued) {
    const int64_t b = enqueued;
    const int s = static_cast<int>(b % 2);
    const int64_t start = b * batch, m = std::min(batch, rows - start);
    // Slot s was last used by batch b - 2; wait until the GPU is done with it.
    if (b >= 2) check(cudaEventSynchronize(d.done[s]), "cudaEventSynchronize");
    T* sx = d.stage_x[s].data();
    Target<T> staged;
    for (int64_t i = 0; i < m; ++i) {
      const int64_t r = order[start + i];
      std::memcpy(sx + i * in, x + r * in, in * sizeof(T));
      if (t.labels) d.stage_labels[s].data()[i] = t.labels[r];
      else std::memcpy(d.stage_t[s].data() + i * out, t.dense + r * out, out * sizeof(T));
    }
    if (t.labels) staged.labels = d.stage_labels[s].data(); else staged.dense = d.stage_t[s].data();
    d.upload(d.x[s].data(), sx, m * in * sizeof(T));
    run_backward(d.x[s].data(), d.upload_target(staged, m, out, s), m, d.loss_at(b));
    kernels::OptimizerArgs batch_args = args;
    batch_args.step = args.step + b;
    enqueue_update(d.loss_at(b), b, batch_args, max_grad_norm);
    check(cudaEventRecord(d.done[s], d.stream), "cudaEventRecord");
  }
  // Interrupted before its first batch, the call changed nothing (the device's velocity
  // may be a first step's uninitialised buffer, which conclude would mark as newer).
  if (enqueued == 0) throw nn::Interrupted(0);
  std::vector<double> report(Device::kStatus + enqueued);
  d.download(report.data(), d.report.data(), report.size() * sizeof(double));
  const double* losses = report.data() + Device::kStatus;
  last_loss_ = losses[enqueued - 1];
  conclude(report.data(), losses, args, enqueued);
  if (enqueued < batches) throw nn::Interrupted(enqueued);
  for (int64_t b = 0; b < batches; ++b)
    loss_sum += double(std::min(batch, rows - b * batch)) * losses[b];
  return loss_sum;
}

template <typename T>
void Network<T>::sgd_step(const kernels::OptimizerArgs& args, double max_grad_norm) {
  std::lock_guard<std::mutex> lock(mutex_);
  check_velocity(args);
  // The loss came down with the backward pass: it is checked here, the gradients
  // (which Python may since have written) on the device.
  if (!std::isfinite(last_loss_))
    throw nn::Divergence(0, nn::divergence_reason(last_loss_, -1, plan_.slots));
  prepare(0);
  use_grads();
  Device& d = *dev_;
  d.reset_status();
  enqueue_update(nullptr, 0, args, max_grad_norm);
  double status[Device::kStatus];
  d.download(status, d.report.data(), sizeof status);
  conclude(status, &last_loss_, args, 1);
}

template class Network<float>;
template class Network<double>;

}  // namespace fastbp::cuda
