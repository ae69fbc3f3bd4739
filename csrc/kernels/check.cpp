#include "check.hpp"

#include <atomic>
#include <cmath>

#include "clones.hpp"
#include "threads.hpp"

namespace fastbp::kernels {
namespace {

// Whether x[begin, end) is all finite.
template <typename T>
FASTBP_CLONES bool finite_range(const T* x, int64_t begin, int64_t end) {
  constexpr int64_t kChunk = 4096;  // stop early on bad data without a branch per element
  for (int64_t start = begin; start < end; start += kChunk) {
    const int64_t stop = start + kChunk < end ? start + kChunk : end;
    if (!finite_bits(x, start, stop)) return false;
  }
  return true;
}

}  // namespace

template <typename T>
bool all_finite(const T* x, int64_t n) {
  // The check reads every step's gradients, split as the update splits them.
  const int threads = pick_threads(n * kCrossCoreCost);
  if (threads <= 1) return finite_range(x, 0, n);
  std::atomic<bool> finite{true};
  parallel_for(n, threads, [&](int64_t begin, int64_t end) {
    if (!finite_range(x, begin, end)) finite.store(false, std::memory_order_relaxed);
  });
  return finite.load(std::memory_order_relaxed);
}

template <typename T>
int64_t first_nonfinite(const T* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) return i;
  }
  return -1;
}

int64_t first_bad_label(const int64_t* labels, int64_t n, int64_t classes) {
  for (int64_t i = 0; i < n; ++i) {
    if (labels[i] < 0 || labels[i] >= classes) return i;
  }
  return -1;
}

template bool all_finite<float>(const float*, int64_t);
template bool all_finite<double>(const double*, int64_t);
template int64_t first_nonfinite<float>(const float*, int64_t);
template int64_t first_nonfinite<double>(const double*, int64_t);

}  // namespace fastbp::kernels
