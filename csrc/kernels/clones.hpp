#pragma once
// FASTBP_CLONES compiles a loop function once per x86-64 level (AVX-512, AVX2 with FMA,
// baseline) and lets the loader pick, once, the clone the CPU runs (GCC's target_clones
// through an ifunc). The elementwise kernels are bound by vector width and cache
// bandwidth, which the baseline's 128-bit registers leave unused. Their sources build
// with -ffp-contract=off (kernels/CMakeLists.txt), so no clone fuses a multiply and an
// add, and with vectorisation adding no reassociation, every clone computes bitwise what
// the baseline computes, on every CPU.
// Elsewhere (another compiler, architecture or C library) the functions build once, for
// the baseline.
#include <cstdint>  // through the C library's headers, defines __GLIBC__ under glibc

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__GLIBC__) && \
    __GNUC__ >= 12
#define FASTBP_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define FASTBP_CLONES_BUILT 1
#else
#define FASTBP_CLONES
#endif

namespace fastbp::kernels {

// The level whose clones run here: "x86-64-v4", "x86-64-v3" or "baseline" (also where no
// clones are built), as the loader chooses it.
const char* elementwise_level();

}  // namespace fastbp::kernels
