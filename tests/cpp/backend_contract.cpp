// nn/backend.hpp's contract, checked at compile time: both CPU backends meet it, and a
// backend that declares every member meets it too, unless MISTYPED_COPY gives one member
// another signature or MISSING_IDLE leaves one out, which must fail to compile with a
// message naming that member. Declarations are enough: the contract reads types only.
#include <cstdint>

#include "nn/backend.hpp"
#include "nn/cpu_backend.hpp"

namespace {

using fastbp::nn::LossSpec;
using Act = fastbp::kernels::Act;
using ActParams = fastbp::kernels::ActParams;

template <typename T>
struct Declared {
  using Scalar = T;
  using Target = fastbp::kernels::Target<T>;
  static constexpr bool kSplitsRows = false;
  template <typename U>
  struct Buffer {
    void reserve(int64_t n);
    U* data();
  };
  struct Mirror {
    Mirror(Declared&, int64_t n);
    T* host();
    T* device();
    T* device_discard();
    void device_wrote();
    void to_host();
  };
  struct Batch {
    const T* x;
    Target t;
  };
  void activate();
#ifndef MISSING_IDLE
  void idle();
#endif
  void reserve_rows(int64_t m, int64_t in, int64_t out);
  void states_to_host();
  void states_wrote();
  const T* input(const T* x, int64_t count, int slot);
  Target target(Target t, int64_t m, int64_t n, int slot);
  void output(const T* y, int64_t count, T* out);
  void reserve_batches(int64_t cap, int64_t in, int64_t out, Target t);
  Batch gather(const T* x, Target t, const int64_t* rows, int64_t m, int64_t in, int64_t out,
               int slot);
  void batch_enqueued(int slot);
  void gemm(fastbp::kernels::Compute compute, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
            const T* a, int64_t lda, const T* b, int64_t ldb, T* c, int64_t ldc);
  void bias_activation(T* z, const T* b, int64_t m, int64_t n, Act act, ActParams p, T* y);
  void activation_grad_bias_grad(Act act, ActParams p, const T* x, const T* y, T* g, int64_t m,
                                 int64_t n, T* db);
  void act_forward(Act act, ActParams p, const T* x, T* y, int64_t n);
  void act_backward(Act act, ActParams p, const T* x, const T* y, T* g, int64_t n);
#ifdef MISTYPED_COPY
  void copy(const T* x, T* y, int n);
#else
  void copy(const T* x, T* y, int64_t n);
#endif
  void dropout_forward(const T* x, T* y, int64_t n, double p, uint64_t key, uint64_t first);
  void dropout_backward(const T* dy, T* dx, int64_t n, double p, uint64_t key, uint64_t first);
  void row_norm_forward(fastbp::common::NormKind kind, const T* x, const T* gamma, const T* beta,
                        int64_t m, int64_t n, double eps, T* y, T* mean, T* rstd);
  void row_norm_backward(fastbp::common::NormKind kind, const T* x, const T* gamma, const T* mean,
                         const T* rstd, const T* dy, int64_t m, int64_t n, T* dx, T* dgamma,
                         T* dbeta);
  void batch_norm_forward_train(const T* x, const T* gamma, const T* beta, int64_t m, int64_t n,
                                double eps, double momentum, T* y, T* mean, T* rstd,
                                T* running_mean, T* running_var);
  void batch_norm_forward_infer(const T* x, const T* gamma, const T* beta, const T* running_mean,
                                const T* running_var, int64_t m, int64_t n, double eps, T* y);
  void batch_norm_backward(const T* x, const T* gamma, const T* mean, const T* rstd, const T* dy,
                           int64_t m, int64_t n, T* dx, T* dgamma, T* dbeta);
  void loss(const LossSpec& spec, const T* y, Target t, int64_t m, int64_t batch_rows, int64_t n,
            T* grad, double* value);
  void add_weight_penalty(const T* params, T* grads, int64_t n, double decay, double* loss);
  void begin_report(int64_t steps);
  double* loss_slot(int64_t step);
  bool check_finite(const double* loss, const T* grads, int64_t n, int64_t step);
  bool update(fastbp::kernels::Update<T>& update, T* params, T* grads, int64_t n, int64_t step);
  void end_report(int64_t steps, int64_t* status, double* losses);
};

static_assert(fastbp::nn::is_backend<fastbp::nn::CpuBackend<float>>());
static_assert(fastbp::nn::is_backend<fastbp::nn::CpuBackend<double>>());
static_assert(fastbp::nn::is_backend<Declared<float>>());

}  // namespace

int main() { return 0; }
