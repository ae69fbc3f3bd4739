#include "cuda/device.hpp"

#include <cuda_runtime.h>

namespace fastbp::cuda {
namespace {

// Asking for this kernel's attributes fails when no compiled architecture runs on the
// device, which would otherwise surface only at the first launch.
__global__ void probe_kernel() {}

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
    status.message = std::string("no usable CUDA device: ") + cudaGetErrorString(err);
    return status;
  }
  status.available = true;
  status.name = prop.name;
  status.message = "device 0: " + status.name + " (compute capability " +
                   std::to_string(prop.major) + "." + std::to_string(prop.minor) + ")";
  return status;
}

}  // namespace fastbp::cuda
