#include "linear.hpp"

#include <algorithm>

#include "clones.hpp"
#include "threads.hpp"

namespace fastbp::kernels {
namespace {

// Rows [begin, end) of bias_activation_rows. Separate loops, so the in-place one keeps a
// single restrict pointer.
template <Act A, typename T>
FASTBP_CLONES void bias_activation_range(T* z, const T* __restrict b, int64_t n, ActParams p, T* y,
                                         int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
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
}

// Columns [j0, j1) of activation_grad_bias_grad, every row.
template <Act A, typename T>
FASTBP_CLONES void activation_grad_columns(const T* x, const T* y, T* g, int64_t m, int64_t n,
                                           ActParams p, T* __restrict db, int64_t j0, int64_t j1) {
  std::fill(db + j0, db + j1, T(0));
  for (int64_t i = 0; i < m; ++i) {
    const T* __restrict yi = y + i * n;
    T* __restrict gi = g + i * n;
    if constexpr (act_uses_input(A)) {
      const T* __restrict xi = x + i * n;
      for (int64_t j = j0; j < j1; ++j) {
        gi[j] *= common::act_derivative<A>(xi[j], yi[j], p);
        db[j] += gi[j];
      }
    } else {
      for (int64_t j = j0; j < j1; ++j) {
        gi[j] *= common::act_derivative<A>(yi[j], yi[j], p);
        db[j] += gi[j];
      }
    }
  }
}

}  // namespace

template <typename T>
void bias_activation_rows(T* z, const T* b, int64_t m, int64_t n, Act act, ActParams p, T* y) {
  common::with_act(act, [&](auto kind) {
    constexpr Act A = decltype(kind)::value;
    const int threads = pick_threads(m * n * (A == Act::Identity ? 1 : 8));
    parallel_for(m, threads, [&](int64_t begin, int64_t end) {
      bias_activation_range<A>(z, b, n, p, y, begin, end);
    });
  });
}

template <typename T>
void activation_grad_bias_grad(const T* x, const T* y, T* g, int64_t m, int64_t n, Act act,
                               ActParams p, T* db) {
  // The threads split the columns, in groups of kGroup: each owns its columns' bias
  // gradients, summed over the rows in order (the same sums whatever the split, and no
  // reduction between threads), and walks its part of every row at unit stride.
  constexpr int64_t kGroup = 16;
  common::with_act(act, [&](auto kind) {
    constexpr Act A = decltype(kind)::value;
    const int threads = pick_threads(m * n * (A == Act::Identity ? 1 : 8));
    parallel_for((n + kGroup - 1) / kGroup, threads, [&](int64_t first, int64_t last) {
      activation_grad_columns<A>(x, y, g, m, n, p, db, first * kGroup, std::min(n, last * kGroup));
    });
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
