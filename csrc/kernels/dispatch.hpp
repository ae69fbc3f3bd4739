#pragma once
// Which instruction-set path the kernels run on. Chosen once per process from the
// CPU (CPUID) and the OS (XGETBV: the vector state must be saved on context switch),
// and lowered, never raised, by FASTBP_SIMD=ref|avx2|avx512|avx512_bf16|amx. The last two
// differ from avx512 only in the bfloat16 GEMM (float32 and float64 run the AVX-512
// kernels on them); amx also needs the OS to grant the process the tile state.
#include <string>
#include <vector>

namespace fastbp::kernels {

enum class Isa { Ref, Avx2, Avx512, Avx512Bf16, Amx };

// Every path, lowest first.
inline constexpr Isa kIsas[] = {Isa::Ref, Isa::Avx2, Isa::Avx512, Isa::Avx512Bf16, Isa::Amx};

// The path in use. Throws std::invalid_argument when FASTBP_SIMD holds an unknown name.
Isa active_isa();

// The best path this build can run on this machine, ignoring FASTBP_SIMD.
Isa best_isa();

// Whether `isa` is compiled in and runnable here (tests use this to run every path).
bool isa_supported(Isa isa);

const char* isa_name(Isa isa);

// `s` with every byte outside printable ASCII as \xNN: an environment variable can hold
// any bytes, and an error message must decode as UTF-8 to become a Python exception.
std::string printable(const std::string& s);

// The paths compiled into this build, lowest first (always starts with "ref").
std::vector<std::string> compiled_isas();

// One CPUID query. False (and r untouched) off x86, or when the CPU has no such leaf.
struct CpuidRegs {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
};
bool cpuid_query(unsigned leaf, unsigned subleaf, CpuidRegs& r);

// Who made the CPU and which one it is, from CPUID (vendor empty off x86).
struct CpuIdentity {
  std::string vendor;  // "GenuineIntel", "AuthenticAMD", ...
  int family = 0, model = 0, stepping = 0;
};
CpuIdentity cpu_identity();

}  // namespace fastbp::kernels
