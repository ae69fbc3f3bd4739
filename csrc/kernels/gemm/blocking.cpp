// Cache blocks from the caches the CPU reports, after BLIS's analytical model (Low,
// Igual, Smith and Quintana-Orti, ACM TOMS 2016). S is the bytes a packed panel holds
// per row and K step; a cache has W ways of N sets of C-byte lines.
//
// KC, from L1. The B micro-panel (KC x NR) is reused by every A micro-panel of the MC
// block while those (MR x KC) stream through. One way is left for the C tile and the
// other streams; the rest is split between the two micro-panels in proportion MR : NR,
// so that a streaming A line never evicts B:
//   C_A  = floor((W1 - 1) / (1 + NR / MR))     ways for the A micro-panel
//   KC   = C_A * N1 * C1 / (MR * S)
// A kernel so wide that C_A is 0 (6 x 64 floats in a 12-way L1) cannot keep B in L1
// beside A; its B micro-panel is then given one way of L2 instead (the C_B2 below):
//   KC   = N2 * C2 / (NR * S)
// MC, from L2. The A block (MC x KC) stays in L2 while B micro-panels pass through:
//   C_B2 = ceil(KC * NR * S / (N2 * C2))       ways one B micro-panel takes
//   MC   = (W2 - 1 - C_B2) * N2 * C2 / (KC * S)
// NC, from L3. The B panel (KC x NC) in this CPU's share of L3 (its size divided by the
// CPUs sharing it), beside this CPU's A block:
//   way3 = L3 / (W3 * sharing),  C_A3 = ceil(MC * KC * S / way3)
//   NC   = (W3 - 1 - C_A3) * way3 / (KC * S)
// Each is rounded down to whole tiles (KC to a multiple of 16 and of the kernel's K
// alignment) and clamped to the ranges below: a small L3 share leaves no room for B, and
// KC is at least 256. Shallower blocks measured slower on every kernel tried, though
// they keep B in L1: each K block adds a load and store of every C tile and two
// synchronisations of the threads, which the model does not count. BLIS's x86
// configurations stay at 256 and above too.
#include "blocking.hpp"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "../dispatch.hpp"

namespace fastbp::kernels::gemm_detail {
namespace {

constexpr int64_t kMinKc = 256, kMaxKc = 2048;
constexpr int64_t kMaxMc = 1536;
constexpr int64_t kMinNc = 1024, kMaxNc = 8192;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_down(int64_t a, int64_t b) { return a / b * b; }
int64_t clamp_to(int64_t v, int64_t lo, int64_t hi, int64_t step) {
  return round_down(std::clamp(v, ceil_div(lo, step) * step, hi), step);
}

// CPUID's deterministic cache parameters: leaf 4 on Intel, 0x8000001D on AMD (same
// layout). EAX: type (bits 0-4: 1 data, 3 unified), level (5-7), CPUs sharing - 1
// (14-25); EBX: line - 1 (0-11), partitions - 1 (12-21), ways - 1 (22-31); ECX: sets - 1.
CacheInfo caches_from_cpuid() {
  CacheInfo info;
  CpuidRegs r;
  const CpuIdentity id = cpu_identity();
  unsigned leaf = 0;
  if (id.vendor == "GenuineIntel") {
    leaf = 4;
  } else if (id.vendor == "AuthenticAMD" || id.vendor == "HygonGenuine") {
    // Only with the topology extensions (CPUID 0x80000001 ECX bit 22).
    if (cpuid_query(0x80000001u, 0, r) && ((r.ecx >> 22) & 1)) leaf = 0x8000001Du;
  }
  if (leaf == 0) return info;
  const int64_t cpus = std::max(1u, std::thread::hardware_concurrency());
  for (unsigned sub = 0; sub < 16 && cpuid_query(leaf, sub, r); ++sub) {
    const unsigned type = r.eax & 0x1f, level = (r.eax >> 5) & 0x7;
    if (type == 0) break;
    if (type != 1 && type != 3) continue;  // instruction caches
    CacheLevel c;
    c.line = (r.ebx & 0xfff) + 1;
    c.ways = ((r.ebx >> 22) & 0x3ff) + 1;
    c.size = c.ways * (((r.ebx >> 12) & 0x3ff) + 1) * c.line * (int64_t{r.ecx} + 1);
    // An upper bound (IDs reserved, not CPUs present), hence the clamp.
    c.shared_by = std::min<int64_t>(((r.eax >> 14) & 0xfff) + 1, cpus);
    if (level == 1) info.l1d = c;
    if (level == 2) info.l2 = c;
    if (level == 3) info.l3 = c;
  }
  if (info.l1d.known() && info.l2.known()) info.source = "cpuid";
  return info;
}

std::string read_word(const std::string& path) {
  std::ifstream f(path);
  std::string word;
  f >> word;
  return word;
}

int64_t parse_int(const std::string& s) {
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  return end == s.c_str() || v < 0 ? 0 : v;
}

// "48K", "2048K", "32M" or plain bytes.
int64_t parse_size(const std::string& s) {
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (end == s.c_str() || v <= 0) return 0;
  switch (*end) {
    case '\0': return v;
    case 'K': return v << 10;
    case 'M': return v << 20;
    case 'G': return int64_t{v} << 30;
    default: return 0;
  }
}

// "0-1", "0,2,4-7": how many CPUs.
int64_t count_cpu_list(const std::string& s) {
  int64_t n = 0;
  std::stringstream in(s);
  std::string part;
  while (std::getline(in, part, ',')) {
    const size_t dash = part.find('-');
    if (dash == std::string::npos) {
      n += part.empty() ? 0 : 1;
    } else {
      n += std::max<int64_t>(
          0, parse_int(part.substr(dash + 1)) - parse_int(part.substr(0, dash)) + 1);
    }
  }
  return std::max<int64_t>(n, 1);
}

}  // namespace

CacheInfo caches_from_sysfs(const std::string& root) {
  CacheInfo info;
  for (int i = 0; i < 16; ++i) {
    const std::string dir = root + "/index" + std::to_string(i) + "/";
    const std::string type = read_word(dir + "type");
    if (type.empty()) break;
    if (type != "Data" && type != "Unified") continue;
    CacheLevel c;
    c.size = parse_size(read_word(dir + "size"));
    c.ways = parse_int(read_word(dir + "ways_of_associativity"));
    c.line = parse_int(read_word(dir + "coherency_line_size"));
    c.shared_by = count_cpu_list(read_word(dir + "shared_cpu_list"));
    const int64_t level = parse_int(read_word(dir + "level"));
    if (level == 1) info.l1d = c;
    if (level == 2) info.l2 = c;
    if (level == 3) info.l3 = c;
  }
  info.source = info.l1d.known() && info.l2.known() ? "sysfs" : "none";
  return info;
}

const CacheInfo& cpu_caches() {
  static const CacheInfo info = [] {
    CacheInfo from_cpuid = caches_from_cpuid();
    if (!from_cpuid.source.empty()) return from_cpuid;
    return caches_from_sysfs("/sys/devices/system/cpu/cpu0/cache");
  }();
  return info;
}

std::optional<Blocks> analytic_blocks(const CacheInfo& caches, const KernelShape& shape,
                                      int64_t fallback_nc) {
  const CacheLevel &l1 = caches.l1d, &l2 = caches.l2, &l3 = caches.l3;
  if (!l1.known() || !l2.known()) return std::nullopt;
  const int64_t mr = shape.mr, nr = shape.nr, s = shape.k_bytes;
  const int64_t k_step = std::max<int64_t>(16, shape.k_align);

  const int64_t way2 = l2.sets() * l2.line;
  const int64_t ways_a = (l1.ways - 1) * mr / (mr + nr);
  const int64_t kc_fit = ways_a > 0 ? ways_a * l1.sets() * l1.line / (mr * s) : way2 / (nr * s);
  const int64_t kc = clamp_to(kc_fit, kMinKc, kMaxKc, k_step);

  const int64_t ways_b2 = ceil_div(kc * nr * s, way2);
  const int64_t mc = clamp_to((l2.ways - 1 - ways_b2) * way2 / (kc * s), mr, kMaxMc, mr);

  int64_t nc = fallback_nc;
  if (l3.known()) {
    const int64_t way3 = l3.size / (l3.ways * std::max<int64_t>(1, l3.shared_by));
    const int64_t ways_a3 = ceil_div(mc * kc * s, std::max<int64_t>(1, way3));
    nc = (l3.ways - 1 - ways_a3) * way3 / (kc * s);
  }
  nc = clamp_to(nc, kMinNc, kMaxNc, nr);
  return Blocks{mc, kc, nc};
}

}  // namespace fastbp::kernels::gemm_detail
