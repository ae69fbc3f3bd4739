#pragma once
// Everything about an optimizer kind (torch.optim's definitions), in one header the CPU
// loop and the CUDA kernel both compile: its name, its state buffers, the checks of its
// hyper-parameters, the coefficients the host derives once per step and the update of
// one element. Adding an optimizer adds a Rule here and a case to with_optimizer.
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

#include "common/checks.hpp"
#include "common/hd.hpp"

namespace fastbp::common {

// Values are part of the Python binding (fastbp._core.Optimizer); keep them stable.
enum class Optimizer : int { SGD = 0, Adam = 1, RMSprop = 2, Adagrad = 3, Adadelta = 4 };

inline constexpr std::pair<Optimizer, const char*> kOptimizerNames[] = {
    {Optimizer::SGD, "SGD"},
    {Optimizer::Adam, "Adam"},
    {Optimizer::RMSprop, "RMSprop"},
    {Optimizer::Adagrad, "Adagrad"},
    {Optimizer::Adadelta, "Adadelta"}};

constexpr int kMaxHyper = 8, kMaxStates = 3;

// One update: the kind, its hyper-parameters in the Rule's order (flags as 0/1), and
// step, the 1-based number of this update.
struct OptimizerArgs {
  Optimizer kind;
  double hyper[kMaxHyper];
  int64_t step;
};

// The state buffers of one update, in the Rule's order (unused ones null).
template <typename T>
struct StatePtrs {
  T* s[kMaxStates];
};

template <Optimizer K>
struct Rule;

// torch.optim.SGD. hyper: lr, momentum, dampening, weight_decay, nesterov. State:
// momentum_buffer, read and written only with momentum != 0 (v = d on the first step).
template <>
struct Rule<Optimizer::SGD> {
  static constexpr int n_states = 1;
  static void check(const double* h) {
    check_real("lr", h[0], true);
    check_real("momentum", h[1], false);
    check_real("dampening", h[2], false);
    check_real("weight_decay", h[3], false);
    check_flag("nesterov", h[4]);
    if (h[4] != 0.0 && (h[1] <= 0.0 || h[2] != 0.0))
      throw std::invalid_argument("nesterov momentum requires momentum > 0 and dampening == 0");
  }
  template <typename T>
  struct Coef {
    T lr, wd, mu, keep;
    bool momentum, nesterov, first;
  };
  template <typename T>
  static Coef<T> coefficients(const OptimizerArgs& a) {
    const double* h = a.hyper;
    return {T(h[0]), T(h[3]), T(h[1]), T(1) - T(h[2]), h[1] != 0.0, h[4] != 0.0, a.step == 1};
  }
  template <typename T>
  FASTBP_HD static void apply(const Coef<T>& c, int64_t i, T* __restrict p, const T* __restrict g,
                              StatePtrs<T> s) {
    const T d = g[i] + c.wd * p[i];
    if (!c.momentum) {
      p[i] -= c.lr * d;
      return;
    }
    T* __restrict buf = s.s[0];
    const T v = c.first ? d : c.mu * buf[i] + c.keep * d;
    buf[i] = v;
    p[i] -= c.lr * (c.nesterov ? d + c.mu * v : v);
  }
};

// torch.optim.Adam (AdamW with decoupled). hyper: lr, beta1, beta2, eps, weight_decay,
// decoupled. State: exp_avg, exp_avg_sq. The bias corrections are computed in double,
// as torch does: p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps).
template <>
struct Rule<Optimizer::Adam> {
  static constexpr int n_states = 2;
  static void check(const double* h) {
    check_real("lr", h[0], true);
    check_below_one("beta1", h[1]);
    check_below_one("beta2", h[2]);
    check_real("eps", h[3], true);
    check_real("weight_decay", h[4], false);
    check_flag("decoupled_weight_decay", h[5]);
  }
  template <typename T>
  struct Coef {
    T b1, b2, eps, wd, shrink, step_size, inv_bc2_sqrt;
  };
  template <typename T>
  static Coef<T> coefficients(const OptimizerArgs& a) {
    const double* h = a.hyper;
    const double bc1 = 1.0 - std::pow(h[1], double(a.step));
    const double bc2 = 1.0 - std::pow(h[2], double(a.step));
    const bool decoupled = h[5] != 0.0;
    return {T(h[1]),
            T(h[2]),
            T(h[3]),
            decoupled ? T(0) : T(h[4]),
            decoupled ? T(1.0 - h[0] * h[4]) : T(1),
            T(h[0] / bc1),
            T(1.0 / std::sqrt(bc2))};
  }
  template <typename T>
  FASTBP_HD static void apply(const Coef<T>& c, int64_t i, T* __restrict p, const T* __restrict g,
                              StatePtrs<T> s) {
    using std::sqrt;
    T* __restrict exp_avg = s.s[0];
    T* __restrict exp_avg_sq = s.s[1];
    const T pi = p[i] * c.shrink;
    const T gi = g[i] + c.wd * pi;
    const T m = c.b1 * exp_avg[i] + (T(1) - c.b1) * gi;
    const T v = c.b2 * exp_avg_sq[i] + (T(1) - c.b2) * gi * gi;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    p[i] = pi - c.step_size * m / (sqrt(v) * c.inv_bc2_sqrt + c.eps);
  }
};

// torch.Tensor.lerp's formula, which switches ends at weight 0.5 for accuracy.
template <typename T>
FASTBP_HD inline T lerp(T start, T end, T weight) {
  return weight < T(0.5) ? start + weight * (end - start) : end - (end - start) * (T(1) - weight);
}

// torch.optim.RMSprop. hyper: lr, alpha, eps, weight_decay, momentum, centered. State:
// square_avg, momentum_buffer (used with momentum > 0), grad_avg (used when centered).
template <>
struct Rule<Optimizer::RMSprop> {
  static constexpr int n_states = 3;
  static void check(const double* h) {
    check_real("lr", h[0], true);
    check_real("alpha", h[1], false);
    check_real("eps", h[2], true);
    check_real("weight_decay", h[3], false);
    check_real("momentum", h[4], false);
    check_flag("centered", h[5]);
  }
  template <typename T>
  struct Coef {
    T lr, alpha, one_minus_alpha, eps, wd, mu;
    bool momentum, centered;
  };
  template <typename T>
  static Coef<T> coefficients(const OptimizerArgs& a) {
    const double* h = a.hyper;
    // 1 - alpha in double, as torch passes it to addcmul_ and lerp_
    return {T(h[0]), T(h[1]), T(1.0 - h[1]), T(h[2]), T(h[3]), T(h[4]), h[4] > 0.0, h[5] != 0.0};
  }
  template <typename T>
  FASTBP_HD static void apply(const Coef<T>& c, int64_t i, T* __restrict p, const T* __restrict g,
                              StatePtrs<T> s) {
    using std::sqrt;
    const T gi = g[i] + c.wd * p[i];
    const T sq = c.alpha * s.s[0][i] + c.one_minus_alpha * gi * gi;
    s.s[0][i] = sq;
    T avg;
    if (c.centered) {
      const T ga = lerp(s.s[2][i], gi, c.one_minus_alpha);
      s.s[2][i] = ga;
      avg = sqrt(sq - ga * ga) + c.eps;
    } else {
      avg = sqrt(sq) + c.eps;
    }
    if (c.momentum) {
      const T b = c.mu * s.s[1][i] + gi / avg;
      s.s[1][i] = b;
      p[i] -= c.lr * b;
    } else {
      p[i] -= c.lr * (gi / avg);
    }
  }
};

// torch.optim.Adagrad. hyper: lr, lr_decay, weight_decay, eps. State: sum (filled with
// initial_accumulator_value before the first step). clr = lr / (1 + (step - 1) lr_decay).
template <>
struct Rule<Optimizer::Adagrad> {
  static constexpr int n_states = 1;
  static void check(const double* h) {
    check_real("lr", h[0], true);
    check_real("lr_decay", h[1], false);
    check_real("weight_decay", h[2], false);
    check_real("eps", h[3], true);
  }
  template <typename T>
  struct Coef {
    T clr, wd, eps;
  };
  template <typename T>
  static Coef<T> coefficients(const OptimizerArgs& a) {
    const double* h = a.hyper;
    return {T(h[0] / (1.0 + double(a.step - 1) * h[1])), T(h[2]), T(h[3])};
  }
  template <typename T>
  FASTBP_HD static void apply(const Coef<T>& c, int64_t i, T* __restrict p, const T* __restrict g,
                              StatePtrs<T> s) {
    using std::sqrt;
    const T gi = g[i] + c.wd * p[i];
    const T sum = s.s[0][i] + gi * gi;
    s.s[0][i] = sum;
    p[i] -= c.clr * (gi / (sqrt(sum) + c.eps));
  }
};

// torch.optim.Adadelta. hyper: lr, rho, eps, weight_decay. State: square_avg, acc_delta.
// delta = sqrt(acc_delta + eps) / sqrt(square_avg + eps) * g, then p -= lr * delta.
template <>
struct Rule<Optimizer::Adadelta> {
  static constexpr int n_states = 2;
  static void check(const double* h) {
    check_real("lr", h[0], true);
    check_real("rho", h[1], false);
    if (h[1] > 1.0) bad_setting("rho", "in [0, 1]", h[1]);
    check_real("eps", h[2], true);
    check_real("weight_decay", h[3], false);
  }
  template <typename T>
  struct Coef {
    T lr, rho, one_minus_rho, eps, wd;
  };
  template <typename T>
  static Coef<T> coefficients(const OptimizerArgs& a) {
    const double* h = a.hyper;
    return {T(h[0]), T(h[1]), T(1.0 - h[1]), T(h[2]), T(h[3])};
  }
  template <typename T>
  FASTBP_HD static void apply(const Coef<T>& c, int64_t i, T* __restrict p, const T* __restrict g,
                              StatePtrs<T> s) {
    using std::sqrt;
    const T gi = g[i] + c.wd * p[i];
    const T sq = c.rho * s.s[0][i] + c.one_minus_rho * gi * gi;
    s.s[0][i] = sq;
    const T delta = sqrt(s.s[1][i] + c.eps) / sqrt(sq + c.eps) * gi;
    s.s[1][i] = c.rho * s.s[1][i] + c.one_minus_rho * delta * delta;
    p[i] -= c.lr * delta;
  }
};

// The one switch from an Optimizer to its Rule: f(Rule<K>{}).
template <typename F>
decltype(auto) with_optimizer(Optimizer kind, F&& f) {
  switch (kind) {
    case Optimizer::SGD: return f(Rule<Optimizer::SGD>{});
    case Optimizer::Adam: return f(Rule<Optimizer::Adam>{});
    case Optimizer::RMSprop: return f(Rule<Optimizer::RMSprop>{});
    case Optimizer::Adagrad: return f(Rule<Optimizer::Adagrad>{});
    case Optimizer::Adadelta: return f(Rule<Optimizer::Adadelta>{});
  }
  throw std::invalid_argument("unknown optimizer kind " + std::to_string(int(kind)));
}

inline int n_states(Optimizer kind) {
  return with_optimizer(kind, [](auto rule) { return decltype(rule)::n_states; });
}

// std::invalid_argument (ValueError in Python) for hyper-parameters the public
// optimizers refuse, or a step < 1; every binding calls it before any update, so a
// direct call into fastbp._core is held to the same rules.
inline void check(const OptimizerArgs& a) {
  if (a.step < 1) throw std::invalid_argument("step must be >= 1, got " + std::to_string(a.step));
  with_optimizer(a.kind, [&](auto rule) { decltype(rule)::check(a.hyper); });
}

}  // namespace fastbp::common
