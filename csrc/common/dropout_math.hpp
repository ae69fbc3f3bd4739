#pragma once
// Dropout's mask as a pure function of (key, element index): CPU threads, CUDA threads
// and the NumPy reference (fastbp.reference.dropout_key / dropout_mask) draw the same
// mask, and backward recomputes it instead of storing it.
#include <cstdint>

#include "common/hd.hpp"

namespace fastbp::common {

// splitmix64's finaliser: a bijection of 64-bit words whose every output bit depends on
// every input bit (Steele, Lea and Flood, 2014).
FASTBP_HD inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// The key of one dropout layer in one forward pass. Mixing between the words keeps
// (seed, layer, pass) triples that differ in one word from giving related keys.
FASTBP_HD inline uint64_t dropout_key(uint64_t seed, uint64_t layer, uint64_t pass) {
  return splitmix64(splitmix64(splitmix64(seed) ^ layer) ^ pass);
}

// A uniform double in [0, 1) from the top 53 bits of the hash of (key, i). The index is
// hashed before the key is mixed in, so keys differing in a few bits do not give masks
// that are permutations of each other.
FASTBP_HD inline double dropout_uniform(uint64_t key, uint64_t i) {
  return static_cast<double>(splitmix64(key ^ splitmix64(i)) >> 11) * 0x1p-53;
}

FASTBP_HD inline bool dropout_keeps(uint64_t key, uint64_t i, double p) {
  return dropout_uniform(key, i) >= p;
}

// The factor kept values are scaled by: torch divides by (1 - p) cast to the tensor's
// type, which its kernels do as a multiply by the reciprocal taken in that type.
template <typename T>
FASTBP_HD inline T dropout_scale(double p) {
  return T(1) / static_cast<T>(1.0 - p);
}

}  // namespace fastbp::common
