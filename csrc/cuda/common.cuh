#pragma once
// What every CUDA source shares: turning CUDA errors into C++ exceptions (which
// pybind11 raises as RuntimeError), owning device and pinned buffers, launch sizes.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace fastbp::cuda {

inline void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess)
    throw std::runtime_error(std::string("CUDA error in ") + what + ": " +
                             cudaGetErrorString(status));
}

// Kernel launches report bad configurations only through cudaGetLastError.
inline void check_launch(const char* kernel) { check(cudaGetLastError(), kernel); }

// Owns n elements of T in device memory (Pinned = false) or page-locked host memory,
// which cudaMemcpyAsync can copy without blocking the host.
template <typename T, bool Pinned = false>
class Buffer {
 public:
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { release(); }

  // Grows to at least n elements; the contents are not kept.
  void reserve(int64_t n) {
    if (n <= size_) return;
    release();
    void* p = nullptr;
    const size_t bytes = static_cast<size_t>(n) * sizeof(T);
    if constexpr (Pinned) check(cudaMallocHost(&p, bytes), "cudaMallocHost");
    else check(cudaMalloc(&p, bytes), "cudaMalloc");
    data_ = static_cast<T*>(p);
    size_ = n;
  }
  T* data() const { return data_; }

 private:
  void release() noexcept {
    // Errors on free come from an earlier failure that was already reported.
    if constexpr (Pinned) cudaFreeHost(data_);
    else cudaFree(data_);
    data_ = nullptr;
    size_ = 0;
  }
  T* data_ = nullptr;
  int64_t size_ = 0;
};

template <typename T>
using Pinned = Buffer<T, true>;

constexpr int kBlock = 256;

// Blocks for a grid-stride loop over n elements: enough to fill any current GPU,
// few enough that each thread does several elements.
inline unsigned grid_for(int64_t n) {
  return static_cast<unsigned>(std::clamp<int64_t>((n + kBlock - 1) / kBlock, 1, 4096));
}

}  // namespace fastbp::cuda
