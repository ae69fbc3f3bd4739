#include "linear.hpp"

#include <algorithm>

#include "common/act_math.hpp"
#include "threads.hpp"

namespace fastbp::kernels {

template <typename T>
void bias_activation_rows(T* z, const T* b, int64_t m, int64_t n, Act act) {
  common::with_act(act, [&](auto kind) {
    const int threads = pick_threads(m * n * (act == Act::Identity ? 1 : 8));
    parallel_for(m, threads, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        T* __restrict zi = z + i * n;
        for (int64_t j = 0; j < n; ++j)
          zi[j] = common::act_one<decltype(kind)::value>(zi[j] + b[j]);
      }
    });
  });
}

template <typename T>
void activation_grad_bias_grad(const T* y, T* g, int64_t m, int64_t n, Act act, T* db) {
  // Row-wise accumulation keeps the inner loop unit-stride; threads would need a
  // reduction over n-wide partials, which does not pay at MLP sizes.
  std::fill(db, db + n, T(0));
  common::with_act(act, [&](auto kind) {
    for (int64_t i = 0; i < m; ++i) {
      const T* __restrict yi = y + i * n;
      T* __restrict gi = g + i * n;
      for (int64_t j = 0; j < n; ++j) {
        gi[j] *= common::act_derivative<decltype(kind)::value>(yi[j]);
        db[j] += gi[j];
      }
    }
  });
}

template void bias_activation_rows<float>(float*, const float*, int64_t, int64_t, Act);
template void bias_activation_rows<double>(double*, const double*, int64_t, int64_t, Act);
template void activation_grad_bias_grad<float>(const float*, float*, int64_t, int64_t, Act,
                                               float*);
template void activation_grad_bias_grad<double>(const double*, double*, int64_t, int64_t, Act,
                                                double*);

}  // namespace fastbp::kernels
