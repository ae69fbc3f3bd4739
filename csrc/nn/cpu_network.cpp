#include <type_traits>

#include "nn/cpu_backend.hpp"
#include "nn/network.hpp"

namespace fastbp::nn {

template <typename T>
std::unique_ptr<Trainer<T>> make_cpu_network(const std::vector<LayerSpec>& layers,
                                             const LossSpec& loss, uint64_t seed,
                                             kernels::Compute compute) {
  if (compute == kernels::Compute::Bfloat16 && !std::is_same_v<T, float>)
    throw std::invalid_argument("bfloat16 compute needs float32 parameters, got float64");
  return std::make_unique<Network<CpuBackend<T>>>(make_plan(layers, compute), loss, seed);
}

template std::unique_ptr<Trainer<float>> make_cpu_network<float>(const std::vector<LayerSpec>&,
                                                                 const LossSpec&, uint64_t,
                                                                 kernels::Compute);
template std::unique_ptr<Trainer<double>> make_cpu_network<double>(const std::vector<LayerSpec>&,
                                                                   const LossSpec&, uint64_t,
                                                                   kernels::Compute);

}  // namespace fastbp::nn
