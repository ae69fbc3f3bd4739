#include "nn/cpu_backend.hpp"
#include "nn/network.hpp"

namespace fastbp::nn {

template <typename T>
std::unique_ptr<Trainer<T>> make_cpu_network(const std::vector<LayerSpec>& layers,
                                             const LossSpec& loss, uint64_t seed) {
  return std::make_unique<Network<CpuBackend<T>>>(make_plan(layers), loss, seed);
}

template std::unique_ptr<Trainer<float>> make_cpu_network<float>(const std::vector<LayerSpec>&,
                                                                 const LossSpec&, uint64_t);
template std::unique_ptr<Trainer<double>> make_cpu_network<double>(
    const std::vector<LayerSpec>&, const LossSpec&, uint64_t);

}  // namespace fastbp::nn
