#pragma once
// A network as the user wrote it (one LayerSpec per layer) and as it runs: the units the
// loop calls (a Dense with the activation after it fused in, or one layer alone) and
// where every layer's tensors sit in the flat parameter and state buffers.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/norm_math.hpp"
#include "kernels/act.hpp"
#include "kernels/gemm.hpp"

namespace fastbp::nn {

// Values are part of the Python binding (fastbp._core.LayerKind); keep them stable.
// A row norm (RowNorm) is one kind whatever its NormKind, a setting of the layer.
enum class LayerKind : int { Dense = 0, Activation = 1, Dropout = 2, RowNorm = 3, BatchNorm = 4 };

inline constexpr std::pair<LayerKind, const char*> kLayerKindNames[] = {
    {LayerKind::Dense, "Dense"},
    {LayerKind::Activation, "Activation"},
    {LayerKind::Dropout, "Dropout"},
    {LayerKind::RowNorm, "RowNorm"},
    {LayerKind::BatchNorm, "BatchNorm"}};

// The name of a layer's kind in messages: a row norm by its NormKind ("LayerNorm").
const char* kind_name(LayerKind kind, common::NormKind norm = common::NormKind::LayerNorm);

// One layer: its kind, its input and output widths, and the settings of its kind.
struct LayerSpec {
  LayerKind kind = LayerKind::Dense;
  int64_t in = 0, out = 0;
  kernels::Act act = kernels::Act::Identity;            // Activation
  double act_a = 0.0, act_b = 0.0;                      // the activation's parameters
  double p = 0.0;                                       // Dropout
  double eps = 0.0, momentum = 0.0;                     // RowNorm, BatchNorm
  common::NormKind norm = common::NormKind::LayerNorm;  // RowNorm
};

// A named tensor of a flat buffer: where it starts and its shape (row-major).
struct Slice {
  std::string name;
  int64_t offset = 0;
  std::vector<int64_t> shape;
  int64_t size() const;
};

// The tensors one layer adds to the flat buffers, in their order: the trainable ones (the
// parameter buffer) and its state (running statistics, the state buffer), each a name
// and a shape. Defined once here; Python reads them (fastbp._core.layer_tensors).
struct LayerTensors {
  std::vector<std::pair<std::string, std::vector<int64_t>>> params, state;
};
LayerTensors layer_tensors(const LayerSpec& layer);

// Every layer's trainable tensors (in the parameter buffer) and state (running
// statistics, in the state buffer), as Python binds its views.
struct LayerLayout {
  std::vector<Slice> params, state;
};

// What the loop runs: layers [first, first + count) of the plan as one unit. A Dense
// followed by an activation is one unit (bias and activation in one pass forward,
// activation and bias gradients in one pass backward); every other layer is alone.
struct Unit {
  size_t first = 0, count = 1;
};

struct Plan {
  std::vector<LayerSpec> layers;
  std::vector<LayerLayout> layout;  // one per layer
  std::vector<Unit> units;
  int64_t n_params = 0, n_state = 0, max_width = 0;
  kernels::Compute compute = kernels::Compute::Storage;  // of the Dense products
  int64_t in_features() const { return layers.front().in; }
  int64_t out_features() const { return layers.back().out; }
};

// Checks the widths chain and the settings are in range (std::invalid_argument saying
// which layer and why), lays out the buffers and fuses Dense + activation; the Dense
// layers' products (forward and both backward) compute as `compute` says.
Plan make_plan(const std::vector<LayerSpec>& layers,
               kernels::Compute compute = kernels::Compute::Storage);

// The buffer layout's name of flat parameter index `index`: e.g. "dW of Dense layer 2
// of 3" (layers counted within their kind); "" when no slice holds it.
std::string gradient_name(const Plan& plan, int64_t index);

}  // namespace fastbp::nn
