#pragma once
// The data caches this CPU reports, and the GEMM cache blocks derived from them with
// BLIS's analytical model (Low, Igual, Smith and Quintana-Orti, "Analytical Modeling Is
// Enough for High-Performance BLIS", ACM TOMS 43(2), 2016).
#include <cstdint>
#include <optional>
#include <string>

namespace fastbp::kernels::gemm_detail {

struct CacheLevel {
  int64_t size = 0;       // bytes
  int64_t ways = 0;       // associativity
  int64_t line = 0;       // bytes
  int64_t shared_by = 1;  // logical CPUs sharing it

  bool known() const { return size > 0 && ways > 0 && line > 0 && size % (ways * line) == 0; }
  int64_t sets() const { return size / (ways * line); }
};

struct CacheInfo {
  CacheLevel l1d, l2, l3;
  std::string source;  // "cpuid", "sysfs" or "none"
};

// Read once per process: CPUID leaf 4 (Intel) or 0x8000001D (AMD, Hygon), else the
// Linux sysfs tree (every other CPU, ARM included), else nothing (source "none").
const CacheInfo& cpu_caches();

// The data and unified caches described under `root` (a copy of
// /sys/devices/system/cpu/cpu0/cache): index*/level, type, size, ways_of_associativity,
// coherency_line_size, shared_cpu_list. Levels it cannot read stay unknown.
CacheInfo caches_from_sysfs(const std::string& root);

struct Blocks {
  int64_t mc, kc, nc;
};

// A micro-kernel's shape as the model sees it: an MR x NR register block whose packed
// panels hold k_bytes bytes per row and K step (sizeof(T), or 2 for bfloat16 pairs),
// K padded to multiples of k_align.
struct KernelShape {
  int mr, nr;
  int64_t k_bytes;
  int k_align;
};

// MC, KC and NC for `shape` on `caches`, or nothing when L1 or L2 is unknown. NC falls
// back to `fallback_nc` when L3 is unknown. See blocking.cpp for the model.
std::optional<Blocks> analytic_blocks(const CacheInfo& caches, const KernelShape& shape,
                                      int64_t fallback_nc);

}  // namespace fastbp::kernels::gemm_detail
