#pragma once
// The contract between the one network loop (nn/network.hpp) and a backend B, as code:
// every member B provides, with its exact signature, checked at compile time by
// static_assert(is_backend<B>()). A missing member, or one of another signature (an
// overload set or a template does not match either), fails the build with a message
// naming it. Both backends spell out each signature: nn::CpuBackend
// (nn/cpu_backend.hpp) and cuda::Backend (cuda/backend.cuh).
//
// T is B::Scalar (float or double), Target kernels::Target<T>. Pointers the kernels take
// point into B's memory (host memory on the CPU, device memory on the GPU).
#include <cstdint>
#include <type_traits>
#include <utility>

#include "common/norm_math.hpp"
#include "kernels/act.hpp"
#include "kernels/gemm.hpp"
#include "kernels/loss.hpp"
#include "kernels/optim.hpp"
#include "nn/trainer.hpp"

namespace fastbp::nn {
namespace contract {

template <class B>
using S = typename B::Scalar;
template <class B>
using Tgt = kernels::Target<S<B>>;
using Act = kernels::Act;
using ActParams = kernels::ActParams;

// A pointer to a member function of C of type Sig (as void(int64_t)).
template <class C, class Sig>
using MemberFunction = Sig C::*;

// has_<name><B>: B has exactly one member function `name`, of the type that follows.
#define FASTBP_BACKEND_MEMBER(name, ...)                \
  template <class B, class = void>                      \
  struct has_##name : std::false_type {};               \
  template <class B>                                    \
  struct has_##name<B, std::void_t<decltype(&B::name)>> \
      : std::is_same<decltype(&B::name), MemberFunction<B, __VA_ARGS__>> {};

// ---- memory and batches
// Make this backend's device current (every call starts with it).
FASTBP_BACKEND_MEMBER(activate, void())
// Wait until queued work is done (before workspaces are replaced).
FASTBP_BACKEND_MEMBER(idle, void())
// Room for batches of m rows of `in` inputs and `out` outputs.
FASTBP_BACKEND_MEMBER(reserve_rows, void(int64_t m, int64_t in, int64_t out))
// Optimizer state: bring the device's copies down; mark them changed by the last call.
FASTBP_BACKEND_MEMBER(states_to_host, void())
FASTBP_BACKEND_MEMBER(states_wrote, void())
// A host batch where the kernels read it: count inputs; slot 0 or 1 (double buffering).
FASTBP_BACKEND_MEMBER(input, const S<B>*(const S<B>* x, int64_t count, int slot))
FASTBP_BACKEND_MEMBER(target, Tgt<B>(Tgt<B> t, int64_t m, int64_t n, int slot))
// count outputs copied to host memory `out`.
FASTBP_BACKEND_MEMBER(output, void(const S<B>* y, int64_t count, S<B>* out))
// Room for an epoch's batches of up to cap rows, then rows[0..m) of (x, t) gathered
// into slot s, and the slot's batch queued.
FASTBP_BACKEND_MEMBER(reserve_batches, void(int64_t cap, int64_t in, int64_t out, Tgt<B> t))
FASTBP_BACKEND_MEMBER(gather, typename B::Batch(const S<B>* x, Tgt<B> t, const int64_t* rows,
                                                int64_t m, int64_t in, int64_t out, int slot))
FASTBP_BACKEND_MEMBER(batch_enqueued, void(int slot))

// ---- kernels (kernels/*.hpp and cuda/kernels.cuh document each)
FASTBP_BACKEND_MEMBER(gemm, void(kernels::Compute compute, bool ta, bool tb, int64_t m, int64_t n,
                                 int64_t k, const S<B>* a, int64_t lda, const S<B>* b, int64_t ldb,
                                 S<B>* c, int64_t ldc))
FASTBP_BACKEND_MEMBER(bias_activation, void(S<B>* z, const S<B>* b, int64_t m, int64_t n, Act act,
                                            ActParams p, S<B>* y))
FASTBP_BACKEND_MEMBER(activation_grad_bias_grad,
                      void(Act act, ActParams p, const S<B>* x, const S<B>* y, S<B>* g, int64_t m,
                           int64_t n, S<B>* db))
FASTBP_BACKEND_MEMBER(act_forward, void(Act act, ActParams p, const S<B>* x, S<B>* y, int64_t n))
FASTBP_BACKEND_MEMBER(act_backward,
                      void(Act act, ActParams p, const S<B>* x, const S<B>* y, S<B>* g, int64_t n))
FASTBP_BACKEND_MEMBER(copy, void(const S<B>* x, S<B>* y, int64_t n))
// Dropout's mask for elements first..first+n of a pass (first > 0 in a part of a split one).
FASTBP_BACKEND_MEMBER(dropout_forward, void(const S<B>* x, S<B>* y, int64_t n, double p,
                                            uint64_t key, uint64_t first))
FASTBP_BACKEND_MEMBER(dropout_backward, void(const S<B>* dy, S<B>* dx, int64_t n, double p,
                                             uint64_t key, uint64_t first))
// Any row norm, its kind a setting (beta and dbeta null for a kind without a shift).
FASTBP_BACKEND_MEMBER(row_norm_forward,
                      void(common::NormKind kind, const S<B>* x, const S<B>* gamma,
                           const S<B>* beta, int64_t m, int64_t n, double eps, S<B>* y, S<B>* mean,
                           S<B>* rstd))
FASTBP_BACKEND_MEMBER(row_norm_backward,
                      void(common::NormKind kind, const S<B>* x, const S<B>* gamma,
                           const S<B>* mean, const S<B>* rstd, const S<B>* dy, int64_t m, int64_t n,
                           S<B>* dx, S<B>* dgamma, S<B>* dbeta))
FASTBP_BACKEND_MEMBER(batch_norm_forward_train,
                      void(const S<B>* x, const S<B>* gamma, const S<B>* beta, int64_t m, int64_t n,
                           double eps, double momentum, S<B>* y, S<B>* mean, S<B>* rstd,
                           S<B>* running_mean, S<B>* running_var))
FASTBP_BACKEND_MEMBER(batch_norm_forward_infer,
                      void(const S<B>* x, const S<B>* gamma, const S<B>* beta,
                           const S<B>* running_mean, const S<B>* running_var, int64_t m, int64_t n,
                           double eps, S<B>* y))
FASTBP_BACKEND_MEMBER(batch_norm_backward, void(const S<B>* x, const S<B>* gamma, const S<B>* mean,
                                                const S<B>* rstd, const S<B>* dy, int64_t m,
                                                int64_t n, S<B>* dx, S<B>* dgamma, S<B>* dbeta))
// The loss of y (m x n) against t into *value (a report slot), and dL/dy into grad
// unless it is null; y and t may be m rows of a batch of batch_rows, whose mean it takes.
FASTBP_BACKEND_MEMBER(loss, void(const LossSpec& spec, const S<B>* y, Tgt<B> t, int64_t m,
                                 int64_t batch_rows, int64_t n, S<B>* grad, double* value))
// scikit-learn's L2 penalty on n weights: grads += decay * params, and decay / 2 times the
// sum of their squares added to *loss (a report slot).
FASTBP_BACKEND_MEMBER(add_weight_penalty,
                      void(const S<B>* params, S<B>* grads, int64_t n, double decay, double* loss))

// ---- the step report
// A call of `steps` steps: begin_report, then per step its loss in loss_slot(step),
// check_finite and update (each true: that step diverged, and the caller runs no more
// steps; a backend that learns it later returns false and says so in the report;
// check_finite's grads is null, n 0, where they are known finite: it checks the loss);
// end_report hands back the first diverged step and the first non-finite gradient's
// index (-1: none) in status (may be null) and the steps' losses.
FASTBP_BACKEND_MEMBER(begin_report, void(int64_t steps))
FASTBP_BACKEND_MEMBER(loss_slot, double*(int64_t step))
FASTBP_BACKEND_MEMBER(check_finite,
                      bool(const double* loss, const S<B>* grads, int64_t n, int64_t step))
FASTBP_BACKEND_MEMBER(update, bool(kernels::Update<S<B>>& update, S<B>* params, S<B>* grads,
                                   int64_t n, int64_t step))
FASTBP_BACKEND_MEMBER(end_report, void(int64_t steps, int64_t* status, double* losses))

#undef FASTBP_BACKEND_MEMBER

// B::kSplitsRows (a static constexpr bool): whether a training pass may be split by rows
// into parts that run on several threads at once. The GPU's kernels are one stream of
// work and it does not. A backend that does also has, checked by use:
//   int row_parts(int64_t m, int64_t macs_per_row): the parts for a pass over m rows of
//     macs_per_row multiply-adds each (1: not split);
//   run_parts(int parts, body): body(p) for every part p, at once;
//   bool add_grads(T* grads, const T* const* parts, int count, int64_t n): grads += each
//     of parts[0..count) in order (the later parts' parameter gradients, computed apart);
//     whether the sums are all finite.
template <class B, class = void>
struct has_splits_rows : std::false_type {};
template <class B>
struct has_splits_rows<B, std::void_t<decltype(B::kSplitsRows)>>
    : std::is_same<decltype(B::kSplitsRows), const bool> {};

// Its nested types, checked by use: Buffer<U> (workspaces: reserve(n), data()), Mirror
// (a buffer Python views: made from (B&, n); host(), device(), device_discard() before an
// overwrite, device_wrote(), to_host()) and Batch (x, t).
template <class B, class = void>
struct has_buffer : std::false_type {};
template <class B>
struct has_buffer<
    B, std::void_t<decltype(std::declval<typename B::template Buffer<S<B>>&>().reserve(int64_t{}))>>
    : std::is_same<decltype(std::declval<typename B::template Buffer<S<B>>&>().data()), S<B>*> {};

template <class B, class = void>
struct has_mirror : std::false_type {};
template <class B>
struct has_mirror<B, std::void_t<decltype(std::declval<typename B::Mirror&>().device_wrote()),
                                 decltype(std::declval<typename B::Mirror&>().to_host())>> {
  using M = typename B::Mirror;
  static constexpr bool value =
      std::is_constructible_v<M, B&, int64_t> &&
      std::is_same_v<decltype(std::declval<M&>().host()), S<B>*> &&
      std::is_same_v<decltype(std::declval<M&>().device()), S<B>*> &&
      std::is_same_v<decltype(std::declval<M&>().device_discard()), S<B>*>;
};

template <class B, class = void>
struct has_batch : std::false_type {};
template <class B>
struct has_batch<B, std::void_t<decltype(std::declval<typename B::Batch&>().x),
                                decltype(std::declval<typename B::Batch&>().t)>>
    : std::bool_constant<std::is_same_v<decltype(B::Batch::x), const S<B>*> &&
                         std::is_same_v<decltype(B::Batch::t), Tgt<B>>> {};

}  // namespace contract

// Whether B is a backend; each static_assert names what is missing or mistyped.
template <class B>
constexpr bool is_backend() {
  using namespace contract;
  static_assert(std::is_same_v<S<B>, float> || std::is_same_v<S<B>, double>,
                "a backend's Scalar is float or double");
  static_assert(has_buffer<B>::value, "a backend needs Buffer<U>: reserve(int64_t), U* data()");
  static_assert(has_mirror<B>::value,
                "a backend needs Mirror(B&, int64_t): T* host(), T* device(), "
                "T* device_discard(), device_wrote(), to_host()");
  static_assert(has_batch<B>::value, "a backend needs Batch { const T* x; Target t; }");
  static_assert(has_activate<B>::value, "backend member: void activate()");
  static_assert(has_idle<B>::value, "backend member: void idle()");
  static_assert(has_reserve_rows<B>::value,
                "backend member: void reserve_rows(int64_t, int64_t, int64_t)");
  static_assert(has_states_to_host<B>::value, "backend member: void states_to_host()");
  static_assert(has_states_wrote<B>::value, "backend member: void states_wrote()");
  static_assert(has_input<B>::value, "backend member: const T* input(const T*, int64_t, int)");
  static_assert(has_target<B>::value,
                "backend member: Target target(Target, int64_t, int64_t, int)");
  static_assert(has_output<B>::value, "backend member: void output(const T*, int64_t, T*)");
  static_assert(has_reserve_batches<B>::value,
                "backend member: void reserve_batches(int64_t, int64_t, int64_t, Target)");
  static_assert(has_gather<B>::value,
                "backend member: Batch gather(const T*, Target, const int64_t*, int64_t, "
                "int64_t, int64_t, int)");
  static_assert(has_batch_enqueued<B>::value, "backend member: void batch_enqueued(int)");
  static_assert(has_gemm<B>::value,
                "backend member: void gemm(kernels::Compute, bool, bool, int64_t, int64_t, "
                "int64_t, const T*, int64_t, const T*, int64_t, T*, int64_t)");
  static_assert(has_bias_activation<B>::value,
                "backend member: void bias_activation(T*, const T*, int64_t, int64_t, Act, "
                "ActParams, T*)");
  static_assert(has_activation_grad_bias_grad<B>::value,
                "backend member: void activation_grad_bias_grad(Act, ActParams, const T*, "
                "const T*, T*, int64_t, int64_t, T*)");
  static_assert(has_act_forward<B>::value,
                "backend member: void act_forward(Act, ActParams, const T*, T*, int64_t)");
  static_assert(has_act_backward<B>::value,
                "backend member: void act_backward(Act, ActParams, const T*, const T*, T*, "
                "int64_t)");
  static_assert(has_copy<B>::value, "backend member: void copy(const T*, T*, int64_t)");
  static_assert(has_dropout_forward<B>::value,
                "backend member: void dropout_forward(const T*, T*, int64_t, double, uint64_t, "
                "uint64_t)");
  static_assert(has_dropout_backward<B>::value,
                "backend member: void dropout_backward(const T*, T*, int64_t, double, uint64_t, "
                "uint64_t)");
  static_assert(has_row_norm_forward<B>::value,
                "backend member: void row_norm_forward(common::NormKind kind, const T* x, const "
                "T* gamma, const T* beta, int64_t m, int64_t n, double eps, T* y, T* mean, T* "
                "rstd)");
  static_assert(has_row_norm_backward<B>::value,
                "backend member: void row_norm_backward(common::NormKind kind, const T* x, const "
                "T* gamma, const T* mean, const T* rstd, const T* dy, int64_t m, int64_t n, T* "
                "dx, T* dgamma, T* dbeta)");
  static_assert(has_batch_norm_forward_train<B>::value,
                "backend member: void batch_norm_forward_train(const T* x, const T* gamma, const "
                "T* beta, int64_t m, int64_t n, double eps, double momentum, T* y, T* mean, T* "
                "rstd, T* running_mean, T* running_var)");
  static_assert(has_batch_norm_forward_infer<B>::value,
                "backend member: void batch_norm_forward_infer(const T* x, const T* gamma, const "
                "T* beta, const T* running_mean, const T* running_var, int64_t m, int64_t n, "
                "double eps, T* y)");
  static_assert(has_batch_norm_backward<B>::value,
                "backend member: void batch_norm_backward(const T* x, const T* gamma, const T* "
                "mean, const T* rstd, const T* dy, int64_t m, int64_t n, T* dx, T* dgamma, T* "
                "dbeta)");
  static_assert(has_loss<B>::value,
                "backend member: void loss(const LossSpec&, const T*, Target, int64_t, int64_t, "
                "int64_t, T*, double*)");
  static_assert(has_add_weight_penalty<B>::value,
                "backend member: void add_weight_penalty(const T*, T*, int64_t, double, double*)");
  static_assert(has_begin_report<B>::value, "backend member: void begin_report(int64_t)");
  static_assert(has_loss_slot<B>::value, "backend member: double* loss_slot(int64_t)");
  static_assert(has_check_finite<B>::value,
                "backend member: bool check_finite(const double*, const T*, int64_t, int64_t)");
  static_assert(has_update<B>::value,
                "backend member: bool update(kernels::Update<T>&, T*, T*, int64_t, int64_t)");
  static_assert(has_end_report<B>::value,
                "backend member: void end_report(int64_t, int64_t*, double*)");
  static_assert(has_splits_rows<B>::value, "a backend needs static constexpr bool kSplitsRows");
  return true;
}

}  // namespace fastbp::nn
