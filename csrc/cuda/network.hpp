#pragma once
// The GPU network: nn::Network over the CUDA backend (cuda/backend.cuh). Plain C++, so
// the bindings include it without the CUDA toolkit's headers.
#include <memory>
#include <vector>

#include "nn/trainer.hpp"

namespace fastbp::cuda {

// Throws std::runtime_error when no usable CUDA device is present, std::invalid_argument
// when the layers do not make a network.
template <typename T>
std::unique_ptr<nn::Trainer<T>> make_network(const std::vector<nn::LayerSpec>& layers,
                                             const nn::LossSpec& loss, uint64_t seed);

}  // namespace fastbp::cuda
