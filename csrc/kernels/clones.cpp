#include "clones.hpp"

namespace fastbp::kernels {

const char* elementwise_level() {
#ifdef FASTBP_CLONES_BUILT
  // The test the clones' resolvers make, on the same CPU model data.
  __builtin_cpu_init();
  if (__builtin_cpu_supports("x86-64-v4")) return "x86-64-v4";
  if (__builtin_cpu_supports("x86-64-v3")) return "x86-64-v3";
#endif
  return "baseline";
}

}  // namespace fastbp::kernels
