#include "optim.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>

#include "check.hpp"
#include "clones.hpp"
#include "threads.hpp"

namespace fastbp::kernels {
namespace {

// One range of a rule's update. The arrays are restrict parameters rather than lambda
// captures, so that the stores cannot alias them and GCC vectorises the loop.
template <typename Rule, typename C, typename T>
FASTBP_CLONES void update_range(const C c, T* __restrict param, const T* __restrict grad,
                                common::StatePtrs<T> s, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) Rule::apply(c, i, param, grad, s);
}

// add_weight_penalty's sum of squares over [b, e), with d * p added to g there.
template <typename T>
FASTBP_CLONES double penalty_range(const T* __restrict p, T* __restrict g, T d, int64_t b,
                                   int64_t e) {
  // Sixteen running sums in T (in a fixed order, so the result is reproducible), added
  // in double at the end: one chain of dependent additions would cost an addition's
  // latency per element, and converting each float to double half the vector width.
  constexpr int kLanes = 16;
  T lanes[kLanes] = {};
  int64_t i = b;
  for (; i + kLanes <= e; i += kLanes)
    for (int l = 0; l < kLanes; ++l) lanes[l] += p[i + l] * p[i + l];
  double total = 0.0;
  for (; i < e; ++i) total += double(p[i]) * double(p[i]);
  for (int l = 0; l < kLanes; ++l) total += double(lanes[l]);
  for (i = b; i < e; ++i) g[i] += d * p[i];
  return total;
}

template <typename T>
inline void add_chunk(T* __restrict g, const T* __restrict part, int64_t b, int64_t e) {
  for (int64_t i = b; i < e; ++i) g[i] += part[i];
}

// g += each of parts[0..count) over [b, e), in part order; whether the sums are finite.
// In chunks, so that a chunk of g stays in L1 through its additions and its check.
template <typename T>
FASTBP_CLONES bool add_range(T* g, const T* const* parts, int count, int64_t b, int64_t e) {
  constexpr int64_t kChunk = 2048;
  bool finite = true;
  for (int64_t start = b; start < e; start += kChunk) {
    const int64_t stop = std::min(start + kChunk, e);
    for (int p = 0; p < count; ++p) add_chunk(g, parts[p], start, stop);
    finite &= finite_bits(g, start, stop);
  }
  return finite;
}

}  // namespace

template <typename T>
void optimizer_step(const OptimizerArgs& args, T* param, const T* grad, T* const* states,
                    int64_t n) {
  common::with_optimizer(args.kind, [&](auto rule) {
    using Rule = decltype(rule);
    const auto c = Rule::template coefficients<T>(args);
    common::StatePtrs<T> s{};
    for (int k = 0; k < Rule::n_states; ++k) s.s[k] = states[k];
    parallel_for(n, pick_threads(n * kCrossCoreCost), [&](int64_t begin, int64_t end) {
      update_range<Rule>(c, param, grad, s, begin, end);
    });
  });
}

template <typename T>
double grad_norm(const T* g, int64_t n) {
  const double sq = parallel_sum(n, pick_threads(n * kCrossCoreCost), [&](int64_t b, int64_t e) {
    double total = 0.0;
    for (int64_t i = b; i < e; ++i) total += double(g[i]) * double(g[i]);
    return total;
  });
  return std::sqrt(sq);
}

template <typename T>
double clip_grad_norm(T* g, int64_t n, double max_norm) {
  const double total = grad_norm(g, n);
  if (!std::isfinite(total)) return total;
  // torch multiplies by the clamped coefficient even when it is 1, which changes nothing.
  const double coef = max_norm / (total + 1e-6);
  if (coef >= 1.0) return total;
  const T scale = T(coef);
  parallel_for(n, pick_threads(n * kCrossCoreCost), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) g[i] *= scale;
  });
  return total;
}

template <typename T>
double add_weight_penalty(const T* p, T* g, int64_t n, double decay) {
  return parallel_sum(n, pick_threads(n * kCrossCoreCost),
                      [&](int64_t b, int64_t e) { return penalty_range(p, g, T(decay), b, e); });
}

template <typename T>
bool add_grads(T* g, const T* const* parts, int count, int64_t n) {
  std::atomic<bool> finite{true};
  parallel_for(n, pick_threads(n * count * kCrossCoreCost), [&](int64_t begin, int64_t end) {
    if (!add_range(g, parts, count, begin, end)) finite.store(false, std::memory_order_relaxed);
  });
  return finite.load(std::memory_order_relaxed);
}

template void optimizer_step<float>(const OptimizerArgs&, float*, const float*, float* const*,
                                    int64_t);
template void optimizer_step<double>(const OptimizerArgs&, double*, const double*, double* const*,
                                     int64_t);
template double grad_norm<float>(const float*, int64_t);
template double grad_norm<double>(const double*, int64_t);
template double clip_grad_norm<float>(float*, int64_t, double);
template double clip_grad_norm<double>(double*, int64_t, double);
template double add_weight_penalty<float>(const float*, float*, int64_t, double);
template double add_weight_penalty<double>(const double*, double*, int64_t, double);

template bool add_grads<float>(float*, const float* const*, int, int64_t);
template bool add_grads<double>(double*, const double* const*, int, int64_t);

}  // namespace fastbp::kernels
