#pragma once
// The CPU backend of nn::Network (the contract in nn/backend.hpp): fastbp's CPU kernels on
// host memory. Everything is synchronous, so a step's divergence is known when check_finite()
// returns, the report lives in host memory, and Python's views are the buffers themselves.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "kernels/act.hpp"
#include "kernels/check.hpp"
#include "kernels/dropout.hpp"
#include "kernels/gemm.hpp"
#include "kernels/linear.hpp"
#include "kernels/loss.hpp"
#include "kernels/norm.hpp"
#include "kernels/optim.hpp"
#include "kernels/threads.hpp"
#include "nn/trainer.hpp"

namespace fastbp::nn {

template <typename T>
class CpuBackend {
 public:
  using Scalar = T;
  using Target = kernels::Target<T>;
  static constexpr bool kSplitsRows = true;

  template <typename U>
  class Buffer {
   public:
    void reserve(int64_t n) {
      if (n > static_cast<int64_t>(data_.size())) data_.resize(n);
    }
    U* data() { return data_.data(); }

   private:
    std::vector<U> data_;
  };

  // A buffer Python views: on the CPU the host array is the buffer.
  class Mirror {
   public:
    Mirror(CpuBackend&, int64_t n) : data_(n, T(0)) {}
    T* host() { return data_.data(); }
    T* device() { return data_.data(); }
    T* device_discard() { return data_.data(); }
    void device_wrote() {}
    void to_host() {}

   private:
    std::vector<T> data_;
  };

  // ---- memory and batches ------------------------------------------------------
  void activate() {}
  void idle() {}
  void reserve_rows(int64_t, int64_t, int64_t) {}
  void states_to_host() {}
  void states_wrote() {}
  const T* input(const T* x, int64_t, int) { return x; }
  Target target(Target t, int64_t, int64_t, int) { return t; }
  void output(const T* y, int64_t count, T* out) { std::copy(y, y + count, out); }

  struct Batch {
    const T* x;
    Target t;
  };
  void reserve_batches(int64_t cap, int64_t in, int64_t out, Target t) {
    x_.resize(cap * in);
    if (t.labels) labels_.resize(cap);
    else t_.resize(cap * out);
    if (t.weights) w_.resize(cap);
  }
  // The rows `rows[0..m)` of x and t, gathered into this backend's batch buffers. A
  // large batch is gathered in the row ranges of a pass split by rows, each thread
  // copying the rows its part will read into its own core's cache.
  Batch gather(const T* x, Target t, const int64_t* rows, int64_t m, int64_t in, int64_t out, int) {
    Target bt;
    const int threads = kernels::pick_threads(m * (in + out) * kernels::kCrossCoreCost);
    kernels::parallel_for(m, threads, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const int64_t r = rows[i];
        std::copy(x + r * in, x + (r + 1) * in, x_.data() + i * in);
        if (t.labels) labels_[i] = t.labels[r];
        else std::copy(t.dense + r * out, t.dense + (r + 1) * out, t_.data() + i * out);
        if (t.weights) w_[i] = t.weights[r];
      }
    });
    if (t.labels) bt.labels = labels_.data();
    else bt.dense = t_.data();
    if (t.weights) bt.weights = w_.data();
    return {x_.data(), bt};
  }
  void batch_enqueued(int) {}

  // ---- kernels -------------------------------------------------------------------
  // A float32 plan may compute its products in bfloat16 (make_cpu_network checks).
  void gemm(kernels::Compute compute, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a,
            int64_t lda, const T* b, int64_t ldb, T* c, int64_t ldc) {
    if constexpr (std::is_same_v<T, float>) {
      if (compute == kernels::Compute::Bfloat16)
        return kernels::gemm_bf16(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
    }
    kernels::gemm<T>(ta, tb, m, n, k, T(1), a, lda, b, ldb, T(0), c, ldc);
  }
  void bias_activation(T* z, const T* b, int64_t m, int64_t n, kernels::Act act,
                       kernels::ActParams p, T* y) {
    kernels::bias_activation_rows(z, b, m, n, act, p, y);
  }
  void activation_grad_bias_grad(kernels::Act act, kernels::ActParams p, const T* x, const T* y,
                                 T* g, int64_t m, int64_t n, T* db) {
    kernels::activation_grad_bias_grad(x, y, g, m, n, act, p, db);
  }
  void act_forward(kernels::Act act, kernels::ActParams p, const T* x, T* y, int64_t n) {
    kernels::act_forward(act, p, x, y, n);
  }
  void act_backward(kernels::Act act, kernels::ActParams p, const T* x, const T* y, T* g,
                    int64_t n) {
    kernels::act_backward(act, p, x, y, g, g, n);
  }
  void copy(const T* x, T* y, int64_t n) { std::copy(x, x + n, y); }
  void dropout_forward(const T* x, T* y, int64_t n, double p, uint64_t key, uint64_t first) {
    kernels::dropout_forward(x, y, n, p, key, first);
  }
  void dropout_backward(const T* dy, T* dx, int64_t n, double p, uint64_t key, uint64_t first) {
    kernels::dropout_backward(dy, dx, n, p, key, first);
  }
  void row_norm_forward(common::NormKind kind, const T* x, const T* gamma, const T* beta, int64_t m,
                        int64_t n, double eps, T* y, T* mean, T* rstd) {
    kernels::row_norm_forward(kind, x, gamma, beta, m, n, eps, y, mean, rstd);
  }
  void row_norm_backward(common::NormKind kind, const T* x, const T* gamma, const T* mean,
                         const T* rstd, const T* dy, int64_t m, int64_t n, T* dx, T* dgamma,
                         T* dbeta) {
    kernels::row_norm_backward(kind, x, gamma, mean, rstd, dy, m, n, dx, dgamma, dbeta);
  }
  void batch_norm_forward_train(const T* x, const T* gamma, const T* beta, int64_t m, int64_t n,
                                double eps, double momentum, T* y, T* mean, T* rstd,
                                T* running_mean, T* running_var) {
    kernels::batch_norm_forward_train(x, gamma, beta, m, n, eps, momentum, y, mean, rstd,
                                      running_mean, running_var);
  }
  void batch_norm_forward_infer(const T* x, const T* gamma, const T* beta, const T* running_mean,
                                const T* running_var, int64_t m, int64_t n, double eps, T* y) {
    kernels::batch_norm_forward_infer(x, gamma, beta, running_mean, running_var, m, n, eps, y);
  }
  void batch_norm_backward(const T* x, const T* gamma, const T* mean, const T* rstd, const T* dy,
                           int64_t m, int64_t n, T* dx, T* dgamma, T* dbeta) {
    kernels::batch_norm_backward(x, gamma, mean, rstd, dy, m, n, dx, dgamma, dbeta);
  }
  void loss(const LossSpec& spec, const T* y, Target t, int64_t m, int64_t batch_rows, int64_t n,
            T* grad, double* value) {
    *value =
        kernels::loss_forward(spec.kind, spec.reduction, y, t, m, batch_rows, n, grad, spec.params);
  }

  void add_weight_penalty(const T* params, T* grads, int64_t n, double decay, double* loss) {
    *loss += 0.5 * decay * kernels::add_weight_penalty(params, grads, n, decay);
  }

  // ---- training passes split by rows (their contract in nn/backend.hpp) --------------
  // One part per thread, each running the whole network over its rows on its own core,
  // where every thread gets enough rows: a split pass moves the weights to every core and
  // each part's weight gradients back (traffic that grows with the parameters), and saves
  // the products' own splitting (their operands crossing between the cores at every
  // layer, traffic that grows with the rows). On a 2-core Xeon (KVM) it paid from 128
  // rows a part for networks of up to about 270,000 weights, from 256 rows at 660,000 and
  // broke even at 512 rows at 1.9 million (7-15% faster steps where it paid; a 64-row
  // batch ran 2x slower split): hence at least kMinPartRows a part, and at least one row
  // a part per kWeightsPerPartRow weights.
  static constexpr int64_t kMinPartRows = 128, kWeightsPerPartRow = 4096;
  int row_parts(int64_t m, int64_t macs_per_row) const {
    const int threads = kernels::num_threads();
    const int64_t part_rows = std::max(kMinPartRows, macs_per_row / kWeightsPerPartRow);
    return threads > 1 && m / threads >= part_rows ? threads : 1;
  }
  template <typename F>
  void run_parts(int parts, const F& body) {
    kernels::parallel_units(parts, parts, body);
  }
  bool add_grads(T* grads, const T* const* parts, int count, int64_t n) {
    return kernels::add_grads(grads, parts, count, n);
  }

  // ---- the step report (its contract in nn/backend.hpp) ------------------------------
  void begin_report(int64_t steps) {
    losses_.assign(steps, 0.0);
    status_[0] = status_[1] = -1;
  }
  double* loss_slot(int64_t step) { return &losses_[step]; }
  bool check_finite(const double* loss, const T* grads, int64_t n, int64_t step) {
    const bool loss_ok = !loss || std::isfinite(*loss);
    if (loss_ok && kernels::all_finite(grads, n)) return false;
    status_[0] = step;
    status_[1] = loss_ok ? kernels::first_nonfinite(grads, n) : -1;
    return true;
  }
  bool update(kernels::Update<T>& update, T* params, T* grads, int64_t n, int64_t step) {
    const bool applied = update.run(
        [&](double max_norm) { return std::isfinite(kernels::clip_grad_norm(grads, n, max_norm)); },
        [&](const common::OptimizerArgs& args) {
          kernels::optimizer_step(args, params, grads, update.states, n);
        });
    if (applied) return false;
    status_[0] = step, status_[1] = -1;  // the norm of finite gradients overflowed
    return true;
  }
  void end_report(int64_t steps, int64_t* status, double* losses) {
    if (status) status[0] = status_[0], status[1] = status_[1];
    std::copy(losses_.begin(), losses_.begin() + steps, losses);
  }

 private:
  std::vector<T> x_, t_, w_;
  std::vector<int64_t> labels_;
  std::vector<double> losses_;
  int64_t status_[2] = {-1, -1};
};

}  // namespace fastbp::nn
