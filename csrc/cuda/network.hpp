#pragma once
// nn::Network's twin on the GPU. Plain C++ (the CUDA state hides behind a pointer), so
// the bindings include it without the CUDA toolkit's headers.
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "nn/network.hpp"

namespace fastbp::cuda {

// Parameters, gradients, the momentum buffer and every workspace stay in device memory
// across calls: only input batches go up and loss values come down. Host mirrors of the
// parameters and gradients back the Python views of W, b, dW, db: sync_host() brings
// them up to date and marks them as possibly written, so the next GPU call uploads them
// first. Calls on one network are serialised by a mutex.
template <typename T>
class Network {
 public:
  // Throws std::runtime_error when no usable CUDA device is present.
  Network(const std::vector<nn::LayerSpec>& layers, kernels::Loss loss, kernels::Reduction red,
          double loss_param = 0.0);
  ~Network();

  int64_t n_params() const { return plan_.n_params; }
  int64_t in_features() const { return plan_.steps.front().in; }
  int64_t out_features() const { return plan_.steps.back().out; }
  kernels::Loss loss_kind() const { return loss_; }
  const std::vector<nn::ParamSlot>& slots() const { return plan_.slots; }
  // Optimizer updates applied since construction, as nn::Network's.
  int64_t updates() const { return updates_; }
  T* host_params() { return host_params_.data(); }
  T* host_grads() { return host_grads_.data(); }

  // Downloads what the GPU changed since the last call (parameters, gradients and the
  // bound momentum buffer) into their host arrays.
  void sync_host();
  // Makes the host array `velocity` (n_params) the momentum buffer the next updates
  // use. The device keeps the values between steps; on a switch the old array gets
  // them back and the new one is uploaded (unless first_step, which overwrites it). The
  // array must stay alive while bound.
  void bind_velocity(T* velocity, bool first_step);

  // The same calls as nn::Network, on host arrays; the momentum buffer is the bound one.
  // train_step, train_epoch and sgd_step throw nn::Divergence as nn::Network does: the
  // GPU checks the loss and gradients before each update and skips it, and that step's
  // verdict comes down with its loss. A diverged epoch still runs its later batches'
  // forward and backward passes (the host hears of the divergence only when the
  // epoch's losses come down), but none of its updates: the gradients are then the
  // last batch's.
  void forward(const T* x, int64_t m, T* out);
  double loss(const T* x, kernels::Target<T> t, int64_t m);
  double backward(const T* x, kernels::Target<T> t, int64_t m);
  // args: an SGD update (args.step, the call's first update's number); max_grad_norm: 0
  // or the clipping norm.
  double train_step(const T* x, kernels::Target<T> t, int64_t m,
                    const kernels::OptimizerArgs& args, double max_grad_norm);
  // Returns loss_sum plus each batch's rows times its loss, and stops on a SIGINT, as
  // nn::Network's does: before enqueuing each batch it checks interrupt_mark, and on an
  // interrupt waits for the batches enqueued, then throws nn::Interrupted with their count
  // (or nn::Divergence, should one of them have diverged).
  double train_epoch(const T* x, kernels::Target<T> t, int64_t rows, const int64_t* order,
                     int64_t batch, const kernels::OptimizerArgs& args, double max_grad_norm,
                     double loss_sum, int64_t interrupt_mark);
  // One update from the current gradients (fastbp.SGD.step after backward).
  void sgd_step(const kernels::OptimizerArgs& args, double max_grad_norm);

 private:
  struct Device;
  // Which copy of a buffer is current. Host means Python may have written the host
  // mirror through a view, which it may keep doing until the GPU changes the buffer.
  enum class Fresh { Host, Device };

  void prepare(int64_t rows);
  // Enqueues forward, loss (into the device double *value) and backward for a batch
  // already on the device.
  void run_backward(const T* x, kernels::Target<T> t, int64_t m, double* value);
  void use_grads();
  void check_velocity(const kernels::OptimizerArgs& args) const;
  // Enqueues the divergence check of step `step` of a call (loss at the device double
  // *value, or none), the clipping and the SGD update (number args.step) it gates.
  void enqueue_update(const double* value, int64_t step, const kernels::OptimizerArgs& args,
                      double max_grad_norm);
  // With the status words and losses of a call that enqueued `steps` steps on the host:
  // records what the applied updates changed and counts them, then throws
  // nn::Divergence if a step diverged.
  void conclude(const double* status, const double* losses, const kernels::OptimizerArgs& args,
                int64_t steps);

  nn::Plan plan_;
  kernels::Loss loss_;
  kernels::Reduction red_;
  double loss_param_;
  std::vector<T> host_params_, host_grads_;
  Fresh params_ = Fresh::Host, grads_ = Fresh::Host;
  T* velocity_host_ = nullptr;
  bool velocity_on_device_newer_ = false;
  double last_loss_ = 0.0;  // of the pass that left the gradients on the device
  int64_t updates_ = 0;
  std::unique_ptr<Device> dev_;
  std::mutex mutex_;
};

}  // namespace fastbp::cuda
