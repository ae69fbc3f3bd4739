#pragma once
// Deterministic sums within a warp and a block (fixed shuffle order), for the losses
// and the gradient norm.
#include "cuda/common.cuh"

namespace fastbp::cuda {

constexpr int kWarp = 32;
constexpr unsigned kAllLanes = 0xffffffffu;

template <typename V>
__device__ __forceinline__ V warp_sum(V v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(kAllLanes, v, offset);
  return v;
}

// Sum over a block of kBlock threads; the result is valid in thread 0.
__device__ __forceinline__ double block_sum(double v) {
  __shared__ double warps[kBlock / kWarp];
  v = warp_sum(v);
  if (threadIdx.x % kWarp == 0) warps[threadIdx.x / kWarp] = v;
  __syncthreads();
  v = threadIdx.x < kBlock / kWarp ? warps[threadIdx.x] : 0.0;
  return threadIdx.x < kWarp ? warp_sum(v) : v;
}

}  // namespace fastbp::cuda
