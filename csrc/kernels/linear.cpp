#include "linear.hpp"

#include <algorithm>

#include "threads.hpp"

namespace fastbp::kernels {

template <typename T>
void bias_activation_rows(T* z, const T* b, int64_t m, int64_t n, Act act, ActParams p, T* y) {
  common::with_act(act, [&](auto kind) {
    constexpr Act A = decltype(kind)::value;
    const int threads = pick_threads(m * n * (A == Act::Identity ? 1 : 8));
    parallel_for(m, threads, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        // Separate loops, so the in-place one keeps a single restrict pointer.
        if (y == z) {
          T* __restrict zi = z + i * n;
          for (int64_t j = 0; j < n; ++j) zi[j] = common::act_one<A>(zi[j] + b[j], p);
        } else {
          T* __restrict zi = z + i * n;
          T* __restrict yi = y + i * n;
          for (int64_t j = 0; j < n; ++j) {
            zi[j] += b[j];
            yi[j] = common::act_one<A>(zi[j], p);
          }
        }
      }
    });
  });
}

template <typename T>
void activation_grad_bias_grad(const T* x, const T* y, T* g, int64_t m, int64_t n, Act act,
                               ActParams p, T* db) {
  // Row-wise accumulation keeps the inner loop unit-stride; threads would need a
  // reduction over n-wide partials, which does not pay at MLP sizes.
  std::fill(db, db + n, T(0));
  common::with_act(act, [&](auto kind) {
    constexpr Act A = decltype(kind)::value;
    for (int64_t i = 0; i < m; ++i) {
      const T* __restrict yi = y + i * n;
      T* __restrict gi = g + i * n;
      if constexpr (act_uses_input(A)) {
        const T* __restrict xi = x + i * n;
        for (int64_t j = 0; j < n; ++j) {
          gi[j] *= common::act_derivative<A>(xi[j], yi[j], p);
          db[j] += gi[j];
        }
      } else {
        for (int64_t j = 0; j < n; ++j) {
          gi[j] *= common::act_derivative<A>(yi[j], yi[j], p);
          db[j] += gi[j];
        }
      }
    }
  });
}

template void bias_activation_rows<float>(float*, const float*, int64_t, int64_t, Act, ActParams,
                                          float*);
template void bias_activation_rows<double>(double*, const double*, int64_t, int64_t, Act, ActParams,
                                           double*);
template void activation_grad_bias_grad<float>(const float*, const float*, float*, int64_t, int64_t,
                                               Act, ActParams, float*);
template void activation_grad_bias_grad<double>(const double*, const double*, double*, int64_t,
                                                int64_t, Act, ActParams, double*);

}  // namespace fastbp::kernels
