#pragma once
// The interface every layer unit implements, over a backend B that supplies kernels and
// memory (nn/cpu_backend.hpp, cuda/backend.cuh). A unit reads its parameters and state
// through the Context, at the offsets its plan slices give.
#include <cstdint>

namespace fastbp::nn {

template <class B>
struct Context {
  using T = typename B::Scalar;
  B& be;
  const T* params;
  T* grads;
  T* state;
  bool training;
  uint64_t seed, pass;    // a training pass's dropout masks come from (seed, layer, pass)
  int64_t first_row = 0;  // of these rows in the pass (a part of a pass split by rows)
};

template <class B>
class Layer {
 public:
  using T = typename B::Scalar;
  virtual ~Layer() = default;
  // Workspaces for training passes of up to m rows (an inference pass, c.training false,
  // uses none: the network reserves for it only the two buffers its units write).
  virtual void reserve(int64_t /*m*/) {}
  // y (m x out) from x (m x in).
  virtual void forward(const Context<B>& c, const T* x, T* y, int64_t m) = 0;
  // From g = dL/dy (m x out), which it may overwrite, the parameter gradients and dL/dx
  // (m x in): returns where dL/dx is, g itself or gx; gx null means no layer below needs
  // dL/dx. x and y are the input and output of the training forward pass just run.
  virtual T* backward(const Context<B>& c, const T* x, const T* y, T* g, T* gx, int64_t m) = 0;
};

}  // namespace fastbp::nn
