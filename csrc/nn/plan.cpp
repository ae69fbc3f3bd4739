#include "nn/plan.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "common/checks.hpp"

namespace fastbp::nn {
namespace {

std::string describe(const LayerSpec& l, size_t i) {
  return std::string(kind_name(l.kind, l.norm)) + " layer " + std::to_string(i + 1);
}

// Appends a slice of `shape` at *end, checking that the buffer's size stays within
// int64 (a wrapped count would allocate too little).
Slice take(const std::string& name, std::vector<int64_t> shape, int64_t* end,
           const std::string& who) {
  int64_t size = 1;
  for (int64_t d : shape) {
    if (size > (std::numeric_limits<int64_t>::max() - *end) / d)
      throw std::invalid_argument(who + " makes the network's parameter count overflow "
                                        "64-bit integers");
    size *= d;
  }
  Slice s{name, *end, std::move(shape)};
  *end += size;
  return s;
}

void check_settings(const LayerSpec& l) {
  switch (l.kind) {
    case LayerKind::Dense: return;
    case LayerKind::Activation:
      common::with_act(l.act, [](auto) {});  // throws for a kind the core lacks
      return common::check_act_settings(l.act_a, l.act_b);
    case LayerKind::Dropout: return common::check_dropout_p(l.p);
    case LayerKind::BatchNorm: common::check_momentum_fraction(l.momentum); [[fallthrough]];
    case LayerKind::RowNorm: return common::check_norm_eps(l.eps);
  }
}

}  // namespace

LayerTensors layer_tensors(const LayerSpec& l) {
  switch (l.kind) {
    case LayerKind::Dense: return {{{"W", {l.in, l.out}}, {"b", {l.out}}}, {}};
    case LayerKind::RowNorm:
      if (common::norm_has_shift(l.norm)) return {{{"W", {l.out}}, {"b", {l.out}}}, {}};
      return {{{"W", {l.out}}}, {}};
    case LayerKind::BatchNorm:
      return {{{"W", {l.out}}, {"b", {l.out}}},
              {{"running_mean", {l.out}}, {"running_var", {l.out}}}};
    case LayerKind::Activation:
    case LayerKind::Dropout: return {};
  }
  return {};
}

const char* kind_name(LayerKind kind, common::NormKind norm) {
  if (kind == LayerKind::RowNorm)
    for (const auto& [k, name] : common::kNormKindNames)
      if (k == norm) return name;
  for (const auto& [k, name] : kLayerKindNames)
    if (k == kind) return name;
  return "?";
}

int64_t Slice::size() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Plan make_plan(const std::vector<LayerSpec>& layers, kernels::Compute compute) {
  if (layers.empty()) throw std::invalid_argument("a network needs at least one layer");
  Plan plan;
  plan.layers = layers;
  plan.compute = compute;
  plan.layout.resize(layers.size());
  for (size_t i = 0; i < layers.size(); ++i) {
    const LayerSpec& l = layers[i];
    const std::string who = describe(l, i);
    if (l.in <= 0 || l.out <= 0)
      throw std::invalid_argument(who + ": sizes must be positive, got " + std::to_string(l.in) +
                                  " -> " + std::to_string(l.out));
    if (i > 0 && l.in != layers[i - 1].out)
      throw std::invalid_argument(who + " expects " + std::to_string(l.in) +
                                  " inputs but the layer before it gives " +
                                  std::to_string(layers[i - 1].out));
    if (l.kind != LayerKind::Dense && l.in != l.out)
      throw std::invalid_argument(who + " must keep its width, got " + std::to_string(l.in) +
                                  " -> " + std::to_string(l.out));
    try {
      check_settings(l);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(who + ": " + e.what());
    }
    LayerLayout& lay = plan.layout[i];
    const LayerTensors tensors = layer_tensors(l);
    for (const auto& [name, shape] : tensors.params)
      lay.params.push_back(take(name, shape, &plan.n_params, who));
    for (const auto& [name, shape] : tensors.state)
      lay.state.push_back(take(name, shape, &plan.n_state, who));
    const bool fuses = l.kind == LayerKind::Activation && !plan.units.empty() &&
                       layers[plan.units.back().first].kind == LayerKind::Dense &&
                       plan.units.back().count == 1;
    if (fuses) ++plan.units.back().count;
    else plan.units.push_back({i, 1});
    plan.max_width = std::max({plan.max_width, l.in, l.out});
  }
  return plan;
}

std::string gradient_name(const Plan& plan, int64_t index) {
  for (size_t i = 0; i < plan.layers.size(); ++i) {
    for (const Slice& s : plan.layout[i].params) {
      if (index < s.offset || index >= s.offset + s.size()) continue;
      const std::string kind = kind_name(plan.layers[i].kind, plan.layers[i].norm);
      int64_t rank = 0, count = 0;
      for (size_t j = 0; j < plan.layers.size(); ++j) {
        if (kind_name(plan.layers[j].kind, plan.layers[j].norm) != kind) continue;
        ++count;
        if (j <= i) ++rank;
      }
      return "d" + s.name + " of " + kind + " layer " + std::to_string(rank) + " of " +
             std::to_string(count);
    }
  }
  return "";
}

}  // namespace fastbp::nn
