#pragma once
// What the bindings ask about the GPU; plain C++, so host-only code can include it.
#include <string>

namespace fastbp::cuda {

struct DeviceStatus {
  bool available = false;
  std::string name;     // the device's name when available
  std::string message;  // one line: the device, or why none is usable
};

// Device 0, checked with the CUDA runtime: present, driver new enough, and able to run
// this build's kernels (its architecture is among those compiled). Never throws.
DeviceStatus device_status();

}  // namespace fastbp::cuda
