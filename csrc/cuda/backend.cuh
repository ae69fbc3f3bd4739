#pragma once
// The CUDA backend of nn::Network (the contract in nn/backend.hpp): fastbp's CUDA kernels
// on device memory, all enqueued on one stream. Parameters, gradients, state, optimizer state and
// workspaces stay on the device across calls: only batches go up and a call's report comes down. A
// step's divergence check runs on the device and gates its update there, so the host need not wait;
// the verdict comes down with the losses in end_report.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda/common.cuh"
#include "cuda/device.hpp"
#include "cuda/kernels.cuh"
#include "nn/trainer.hpp"

namespace fastbp::cuda {

template <typename T>
class Backend {
 public:
  using Scalar = T;
  using Target = kernels::Target<T>;
  template <typename U>
  using Buffer = cuda::Buffer<U>;
  static constexpr bool kSplitsRows = false;  // one stream of work (nn/backend.hpp)

  Backend() {
    const DeviceStatus status = device_status();
    if (!status.available) throw std::runtime_error("backend 'cuda': " + status.message);
    check(cudaGetDevice(&id_), "cudaGetDevice");
    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    for (cudaEvent_t& e : done_)
      check(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreate");
    scratch_.reserve(clip_scratch_size());  // a step before any batch may clip
  }
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;
  ~Backend() {
    for (cudaEvent_t e : done_)
      if (e) cudaEventDestroy(e);
    if (stream_) cudaStreamDestroy(stream_);
  }

  // A device buffer with a host mirror that Python views. Which copy is current: Host
  // means Python may have written the mirror, which it may keep doing until the device
  // changes the buffer; device() then uploads it first.
  class Mirror {
   public:
    Mirror(Backend& be, int64_t n) : be_(be), n_(n), host_(n, T(0)) { dev_.reserve(n); }
    T* host() { return host_.data(); }
    T* device() {
      if (fresh_ == Fresh::Host) {
        be_.upload(dev_.data(), host_.data(), n_ * sizeof(T));
        fresh_ = Fresh::Both;
      }
      return dev_.data();
    }
    T* device_discard() { return dev_.data(); }  // about to be overwritten on the device
    void device_wrote() { fresh_ = Fresh::Device; }
    void to_host() {
      if (fresh_ == Fresh::Device) be_.download(host_.data(), dev_.data(), n_ * sizeof(T));
      fresh_ = Fresh::Host;
    }

   private:
    enum class Fresh { Host, Device, Both };
    Backend& be_;
    int64_t n_;
    std::vector<T> host_;
    Buffer<T> dev_;
    Fresh fresh_ = Fresh::Host;
  };

  // ---- memory and batches ------------------------------------------------------
  void activate() { check(cudaSetDevice(id_), "cudaSetDevice"); }
  void idle() { check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize"); }
  void reserve_rows(int64_t m, int64_t in, int64_t out) {
    scratch_.reserve(std::max(loss_scratch_size(m), clip_scratch_size()));
    for (int s = 0; s < 2; ++s) {
      x_[s].reserve(m * in);
      t_[s].reserve(m * out);
      labels_[s].reserve(m);
    }
  }
  void upload(void* dst, const void* src, int64_t bytes) {
    if (bytes) check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_), "upload");
  }
  void download(void* dst, const void* src, int64_t bytes) {
    if (bytes) check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_), "download");
    check(cudaStreamSynchronize(stream_), "download");
  }
  const T* input(const T* x, int64_t count, int slot) {
    upload(x_[slot].data(), x, count * sizeof(T));
    return x_[slot].data();
  }
  Target target(Target t, int64_t m, int64_t n, int slot) {
    if (t.weights)
      throw std::invalid_argument("backend 'cuda' takes no sample weights; train with "
                                  "backend 'cpu' or 'numpy' for them");
    Target on_device;
    if (t.labels) {
      upload(labels_[slot].data(), t.labels, m * sizeof(int64_t));
      on_device.labels = labels_[slot].data();
    } else {
      upload(t_[slot].data(), t.dense, m * n * sizeof(T));
      on_device.dense = t_[slot].data();
    }
    return on_device;
  }
  void output(const T* y, int64_t count, T* out) { download(out, y, count * sizeof(T)); }

  struct Batch {
    const T* x;
    Target t;
  };
  void reserve_batches(int64_t cap, int64_t in, int64_t out, Target t) {
    for (int s = 0; s < 2; ++s) {
      stage_x_[s].reserve(cap * in);
      if (t.labels) stage_labels_[s].reserve(cap);
      else stage_t_[s].reserve(cap * out);
      slot_busy_[s] = false;
    }
  }
  // The rows of a batch gathered into slot s's pinned buffers, once the device is done
  // with that slot's last batch, and uploaded: the host gathers batch k + 1 while the
  // device trains on batch k.
  Batch gather(const T* x, Target t, const int64_t* rows, int64_t m, int64_t in, int64_t out,
               int s) {
    if (slot_busy_[s]) check(cudaEventSynchronize(done_[s]), "cudaEventSynchronize");
    T* sx = stage_x_[s].data();
    Target staged;
    for (int64_t i = 0; i < m; ++i) {
      const int64_t r = rows[i];
      std::memcpy(sx + i * in, x + r * in, in * sizeof(T));
      if (t.labels) stage_labels_[s].data()[i] = t.labels[r];
      else std::memcpy(stage_t_[s].data() + i * out, t.dense + r * out, out * sizeof(T));
    }
    if (t.labels) staged.labels = stage_labels_[s].data();
    else staged.dense = stage_t_[s].data();
    staged.weights = t.weights;
    return {input(sx, m * in, s), target(staged, m, out, s)};
  }
  void batch_enqueued(int s) {
    check(cudaEventRecord(done_[s], stream_), "cudaEventRecord");
    slot_busy_[s] = true;
  }

  // ---- kernels -------------------------------------------------------------------
  // Storage compute only: cuda::make_network makes no other plan.
  void gemm(kernels::Compute, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a,
            int64_t lda, const T* b, int64_t ldb, T* c, int64_t ldc) {
    cuda::gemm<T>(ta, tb, m, n, k, a, lda, b, ldb, c, ldc, stream_);
  }
  void bias_activation(T* z, const T* b, int64_t m, int64_t n, kernels::Act act,
                       kernels::ActParams p, T* y) {
    cuda::bias_activation(z, b, m, n, act, p, y, stream_);
  }
  void activation_grad_bias_grad(kernels::Act act, kernels::ActParams p, const T* x, const T* y,
                                 T* g, int64_t m, int64_t n, T* db) {
    cuda::act_backward_bias_grad(act, p, x, y, g, m, n, db, stream_);
  }
  void act_forward(kernels::Act act, kernels::ActParams p, const T* x, T* y, int64_t n) {
    cuda::act_forward(act, p, x, y, n, stream_);
  }
  void act_backward(kernels::Act act, kernels::ActParams p, const T* x, const T* y, T* g,
                    int64_t n) {
    cuda::act_backward(act, p, x, y, g, n, stream_);
  }
  void copy(const T* x, T* y, int64_t n) {
    check(cudaMemcpyAsync(y, x, n * sizeof(T), cudaMemcpyDeviceToDevice, stream_), "copy");
  }
  void dropout_forward(const T* x, T* y, int64_t n, double p, uint64_t key, uint64_t first) {
    cuda::dropout_forward(x, y, n, p, key, first, stream_);
  }
  void dropout_backward(const T* dy, T* dx, int64_t n, double p, uint64_t key, uint64_t first) {
    cuda::dropout_backward(dy, dx, n, p, key, first, stream_);
  }
  void row_norm_forward(common::NormKind kind, const T* x, const T* gamma, const T* beta, int64_t m,
                        int64_t n, double eps, T* y, T* mean, T* rstd) {
    cuda::row_norm_forward(kind, x, gamma, beta, m, n, eps, y, mean, rstd, stream_);
  }
  void row_norm_backward(common::NormKind kind, const T* x, const T* gamma, const T* mean,
                         const T* rstd, const T* dy, int64_t m, int64_t n, T* dx, T* dgamma,
                         T* dbeta) {
    cuda::row_norm_backward(kind, x, gamma, mean, rstd, dy, m, n, dx, dgamma, dbeta, stream_);
  }
  void batch_norm_forward_train(const T* x, const T* gamma, const T* beta, int64_t m, int64_t n,
                                double eps, double momentum, T* y, T* mean, T* rstd,
                                T* running_mean, T* running_var) {
    cuda::batch_norm_forward_train(x, gamma, beta, m, n, eps, momentum, y, mean, rstd, running_mean,
                                   running_var, stream_);
  }
  void batch_norm_forward_infer(const T* x, const T* gamma, const T* beta, const T* running_mean,
                                const T* running_var, int64_t m, int64_t n, double eps, T* y) {
    cuda::batch_norm_forward_infer(x, gamma, beta, running_mean, running_var, m, n, eps, y,
                                   stream_);
  }
  void batch_norm_backward(const T* x, const T* gamma, const T* mean, const T* rstd, const T* dy,
                           int64_t m, int64_t n, T* dx, T* dgamma, T* dbeta) {
    cuda::batch_norm_backward(x, gamma, mean, rstd, dy, m, n, dx, dgamma, dbeta, stream_);
  }
  void loss(const nn::LossSpec& spec, const T* y, Target t, int64_t m, int64_t batch_rows,
            int64_t n, T* grad, double* value) {
    cuda::loss(spec.kind, spec.reduction, y, t, m, batch_rows, n, grad, scratch_.data(), value,
               stream_, spec.params);
  }

  void add_weight_penalty(const T* params, T* grads, int64_t n, double decay, double* loss) {
    cuda::add_weight_penalty(params, grads, n, decay, loss, scratch_.data(), status(), stream_);
  }

  // ---- the step report (its contract in nn/backend.hpp) ------------------------------
  void begin_report(int64_t steps) {
    report_.reserve(kStatus + steps);
    check(cudaMemsetAsync(status(), 0xff, kStatus * sizeof(double), stream_), "begin_report");
  }
  double* loss_slot(int64_t step) { return report_.data() + kStatus + step; }
  bool check_finite(const double* loss, const T* grads, int64_t n, int64_t step) {
    check_step(loss, grads, n, step, status(), stream_);
    return false;  // known only when the report comes down
  }
  // Clipping and the update run on the device, each a no-op once the status records a
  // diverged step; a non-finite norm records its step there, so this returns false.
  bool update(kernels::Update<T>& update, T* params, T* grads, int64_t n, int64_t step) {
    T* states[common::kMaxStates] = {};
    const int count = common::n_states(update.args.kind);
    for (int k = 0; k < count; ++k) states[k] = bind_state(k, update.states[k], n);
    update.run(
        [&](double max_norm) {
          clip_grad_norm(grads, n, max_norm, scratch_.data(), step, status(), stream_);
          return true;  // the device gates the update on the norm
        },
        [&](const common::OptimizerArgs& args) {
          optimizer_step(args, params, grads, states, n, status(), stream_);
        });
    states_used_ = true;
    return false;
  }
  void end_report(int64_t steps, int64_t* status_out, double* losses) {
    std::vector<double> report(kStatus + steps);
    download(report.data(), report_.data(), report.size() * sizeof(double));
    unsigned long long words[kStatus];
    std::memcpy(words, report.data(), sizeof words);
    if (status_out)
      for (int i = 0; i < kStatus; ++i)
        status_out[i] = words[i] == kNotDiverged ? -1 : static_cast<int64_t>(words[i]);
    std::copy(report.begin() + kStatus, report.end(), losses);
  }
  void states_wrote() {
    if (states_used_)
      for (State& st : states_) st.newer = st.host != nullptr;
    states_used_ = false;
  }
  void states_to_host() {
    for (State& st : states_) {
      if (st.newer) download(st.host, st.dev.data(), st.n * sizeof(T));
      st.newer = false;
    }
  }

 private:
  // kStatus words of divergence status (check_step's, as the bits of unsigned long
  // long), then one loss per step: one download brings back the verdict and the losses.
  static constexpr int kStatus = 2;
  static_assert(sizeof(double) == sizeof(unsigned long long), "status words fill doubles");
  unsigned long long* status() const {
    return reinterpret_cast<unsigned long long*>(report_.data());
  }

  // The device copy of optimizer state buffer k, whose host array is `host`: on a
  // switch of arrays the old one gets the device's values back and the new one is
  // uploaded.
  T* bind_state(int k, T* host, int64_t n) {
    State& st = states_[k];
    if (host != st.host) {
      if (st.newer) download(st.host, st.dev.data(), st.n * sizeof(T));
      st.dev.reserve(n);
      upload(st.dev.data(), host, n * sizeof(T));
      st.host = host;
      st.n = n;
      st.newer = false;
    }
    return st.dev.data();
  }

  int id_ = 0;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t done_[2] = {nullptr, nullptr};  // the device finished with a batch slot
  bool slot_busy_[2] = {false, false};
  Buffer<T> x_[2], t_[2];
  Buffer<int64_t> labels_[2];
  Pinned<T> stage_x_[2], stage_t_[2];
  Pinned<int64_t> stage_labels_[2];
  Buffer<double> scratch_, report_;
  // The optimizer's state buffers on the device and the host arrays they mirror.
  struct State {
    T* host = nullptr;
    int64_t n = 0;
    bool newer = false;  // the device changed it since it came down
    Buffer<T> dev;
  };
  State states_[common::kMaxStates];
  bool states_used_ = false;
};

}  // namespace fastbp::cuda
