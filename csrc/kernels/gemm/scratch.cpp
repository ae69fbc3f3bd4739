#include "scratch.hpp"

#include <new>

namespace fastbp::kernels::gemm_detail {
namespace {

constexpr std::size_t kAlign = 64;  // a cache line, and a full zmm register

class Buffer {
 public:
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { release(); }

  void* get(std::size_t bytes) {
    if (bytes > size_) {
      release();
      // Round up so a run of slowly growing shapes does not reallocate every call.
      const std::size_t want = (bytes + bytes / 4 + kAlign - 1) / kAlign * kAlign;
      ptr_ = ::operator new(want, std::align_val_t(kAlign));
      size_ = want;
    }
    return ptr_;
  }

 private:
  void release() {
    if (ptr_ != nullptr) ::operator delete(ptr_, std::align_val_t(kAlign));
    ptr_ = nullptr;
    size_ = 0;
  }
  void* ptr_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace

void* thread_scratch(Scratch role, std::size_t bytes) {
  thread_local Buffer buffers[3];
  return buffers[static_cast<int>(role)].get(bytes);
}

}  // namespace fastbp::kernels::gemm_detail
