#include "cuda/network.hpp"

#include "cuda/backend.cuh"
#include "nn/network.hpp"

namespace fastbp::cuda {

template <typename T>
std::unique_ptr<nn::Trainer<T>> make_network(const std::vector<nn::LayerSpec>& layers,
                                             const nn::LossSpec& loss, uint64_t seed) {
  return std::make_unique<nn::Network<Backend<T>>>(nn::make_plan(layers), loss, seed);
}

template std::unique_ptr<nn::Trainer<float>> make_network<float>(const std::vector<nn::LayerSpec>&,
                                                                 const nn::LossSpec&, uint64_t);
template std::unique_ptr<nn::Trainer<double>> make_network<double>(
    const std::vector<nn::LayerSpec>&, const nn::LossSpec&, uint64_t);

}  // namespace fastbp::cuda
