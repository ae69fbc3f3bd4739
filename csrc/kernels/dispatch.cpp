#include "dispatch.hpp"

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__) || defined(_M_IX86)
#define FASTBP_X86 1
#if defined(_MSC_VER)
#include <immintrin.h>
#include <intrin.h>
#else
#include <cpuid.h>
#endif
#endif
#if defined(__linux__) && defined(FASTBP_X86)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace fastbp::kernels {

std::string printable(const std::string& s) {
  std::string out;
  for (const unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  return out;
}

bool cpuid_query(unsigned leaf, unsigned subleaf, CpuidRegs& r) {
#ifdef FASTBP_X86
#if defined(_MSC_VER)
  int v[4];
  __cpuid(v, static_cast<int>(leaf & 0x80000000u));
  if (leaf > static_cast<unsigned>(v[0])) return false;
  __cpuidex(v, static_cast<int>(leaf), static_cast<int>(subleaf));
  r = {unsigned(v[0]), unsigned(v[1]), unsigned(v[2]), unsigned(v[3])};
#else
  if (leaf > __get_cpuid_max(leaf & 0x80000000u, nullptr)) return false;
  __cpuid_count(leaf, subleaf, r.eax, r.ebx, r.ecx, r.edx);
#endif
  return true;
#else
  (void)leaf;
  (void)subleaf;
  (void)r;
  return false;
#endif
}

CpuIdentity cpu_identity() {
  CpuIdentity id;
  CpuidRegs r;
  if (!cpuid_query(0, 0, r)) return id;
  const unsigned words[3] = {r.ebx, r.edx, r.ecx};  // the vendor string's order
  for (unsigned w : words)
    for (int i = 0; i < 4; ++i) id.vendor += static_cast<char>((w >> (8 * i)) & 0xff);
  if (!cpuid_query(1, 0, r)) return id;
  // The displayed family and model (Intel SDM / AMD APM): the extended fields count only
  // for family 15 (and, for the model, 6 on Intel).
  const int base_family = (r.eax >> 8) & 0xf, base_model = (r.eax >> 4) & 0xf;
  id.family =
      base_family == 15 ? base_family + static_cast<int>((r.eax >> 20) & 0xff) : base_family;
  id.model = base_family == 15 || base_family == 6
                 ? base_model + static_cast<int>(((r.eax >> 16) & 0xf) << 4)
                 : base_model;
  id.stepping = static_cast<int>(r.eax & 0xf);
  return id;
}

namespace {

#ifdef FASTBP_X86
CpuidRegs cpuid(unsigned leaf, unsigned subleaf) {
  CpuidRegs r;
  cpuid_query(leaf, subleaf, r);
  return r;
}

// XGETBV through inline asm rather than _xgetbv, which GCC only allows in files
// compiled with -mxsave; this file must stay baseline.
unsigned long long xcr0() {
#if defined(_MSC_VER)
  return _xgetbv(0);
#else
  unsigned lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<unsigned long long>(hi) << 32) | lo;
#endif
}

// Linux hands out AMX's 8 KiB of tile state only to a process that asks for it
// (arch_prctl ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA, kernel 5.16 and later); a tile
// instruction without it kills the process. Refused or unknown: no AMX.
bool os_grants_tiles() {
#if defined(__linux__) && defined(SYS_arch_prctl)
  constexpr int kReqXcompPerm = 0x1023, kXtiledata = 18;
  return syscall(SYS_arch_prctl, kReqXcompPerm, kXtiledata) == 0;
#else
  return false;
#endif
}

Isa detect_hardware() {
  const CpuidRegs l1 = cpuid(1, 0);
  const bool osxsave = (l1.ecx >> 27) & 1;
  const bool fma = (l1.ecx >> 12) & 1;
  const bool avx = (l1.ecx >> 28) & 1;
  if (!osxsave || !avx) return Isa::Ref;
  const unsigned long long xcr = xcr0();
  const bool ymm_state = (xcr & 0x6) == 0x6;    // SSE + AVX state
  const bool zmm_state = (xcr & 0xe6) == 0xe6;  // plus opmask, ZMM_Hi256, Hi16_ZMM
  const CpuidRegs l7 = cpuid(7, 0);
  const bool avx2 = (l7.ebx >> 5) & 1;
  const bool avx512f = (l7.ebx >> 16) & 1;
  const bool avx512dq = (l7.ebx >> 17) & 1;
  if (ymm_state && zmm_state && avx512f && avx512dq && avx2 && fma) {
    // The bfloat16 paths' packers also permute 16-bit words (AVX512BW), which every
    // AVX512-BF16 CPU so far has.
    const bool avx512_bf16 = ((cpuid(7, 1).eax >> 5) & 1) && ((l7.ebx >> 30) & 1);
    const bool amx_bf16 = (l7.edx >> 22) & 1, amx_tile = (l7.edx >> 24) & 1;
    const bool tile_state = (xcr & 0x60000) == 0x60000;  // XTILECFG + XTILEDATA
    if (!avx512_bf16) return Isa::Avx512;
    if (amx_bf16 && amx_tile && tile_state && os_grants_tiles()) return Isa::Amx;
    return Isa::Avx512Bf16;
  }
  if (ymm_state && avx2 && fma) return Isa::Avx2;
  return Isa::Ref;
}
#else
Isa detect_hardware() { return Isa::Ref; }
#endif

bool compiled(Isa isa) {
  switch (isa) {
    case Isa::Ref: return true;
#ifdef FASTBP_HAVE_AVX2
    case Isa::Avx2: return true;
#endif
#ifdef FASTBP_HAVE_AVX512
    case Isa::Avx512: return true;
#endif
#ifdef FASTBP_HAVE_AVX512_BF16
    case Isa::Avx512Bf16: return true;
#endif
#ifdef FASTBP_HAVE_AMX
    case Isa::Amx: return true;
#endif
    default: return false;
  }
}

Isa lower(Isa a, Isa b) { return static_cast<int>(a) < static_cast<int>(b) ? a : b; }

Isa parse_env(const char* s) {
  const std::string v(s);
  for (Isa isa : kIsas)
    if (v == isa_name(isa)) return isa;
  throw std::invalid_argument("FASTBP_SIMD='" + printable(v) +
                              "' is not a known SIMD path; use one of ref, avx2, avx512, "
                              "avx512_bf16, amx");
}

}  // namespace

Isa best_isa() {
  static const Isa best = [] {
    Isa isa = detect_hardware();
    while (!compiled(isa)) isa = static_cast<Isa>(static_cast<int>(isa) - 1);
    return isa;
  }();
  return best;
}

bool isa_supported(Isa isa) {
  return compiled(isa) && static_cast<int>(isa) <= static_cast<int>(best_isa());
}

Isa active_isa() {
  // If parse_env throws, the static stays uninitialised and the next call throws again.
  static const Isa active = [] {
    const char* env = std::getenv("FASTBP_SIMD");
    if (env == nullptr || *env == '\0') return best_isa();
    return lower(parse_env(env), best_isa());
  }();
  return active;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Ref: return "ref";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
    case Isa::Avx512Bf16: return "avx512_bf16";
    case Isa::Amx: return "amx";
  }
  return "unknown";
}

std::vector<std::string> compiled_isas() {
  std::vector<std::string> out;
  for (Isa isa : kIsas)
    if (compiled(isa)) out.emplace_back(isa_name(isa));
  return out;
}

}  // namespace fastbp::kernels
