#include "cuda/device.hpp"

#include <cuda_runtime.h>

namespace fastbp::cuda {
namespace {

// Asking for this kernel's attributes fails when no compiled architecture runs on the
// device, which would otherwise surface only at the first launch.
__global__ void probe_kernel() {}

// 12040 -> "12.4", as CUDA encodes versions.
std::string version(int v) {
  return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10);
}

}  // namespace

DeviceStatus device_status() {
  DeviceStatus status;
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err == cudaSuccess && count == 0) {
    status.message = "no CUDA device found";
    return status;
  }
  cudaDeviceProp prop{};
  if (err == cudaSuccess) err = cudaGetDeviceProperties(&prop, 0);
  cudaFuncAttributes attributes{};
  if (err == cudaSuccess) err = cudaFuncGetAttributes(&attributes, probe_kernel);
  if (err != cudaSuccess) {
    cudaGetLastError();  // leave no error behind for later calls to report
    int driver = 0;      // 0 when no NVIDIA driver is installed
    cudaDriverGetVersion(&driver);
    const std::string needs = "this build needs CUDA " + version(CUDART_VERSION);
    // Without a driver the runtime's own words ("driver version is insufficient") would
    // send the reader looking for a driver update.
    status.message = driver == 0
                         ? "no NVIDIA driver found (" + needs + " or newer)"
                         : std::string("no usable CUDA device: ") + cudaGetErrorString(err) +
                               " (NVIDIA driver: CUDA " + version(driver) + "; " + needs + ")";
    return status;
  }
  status.available = true;
  status.name = prop.name;
  status.message = "device 0: " + status.name + " (compute capability " +
                   std::to_string(prop.major) + "." + std::to_string(prop.minor) + ")";
  return status;
}

}  // namespace fastbp::cuda
