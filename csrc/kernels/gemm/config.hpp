#pragma once
// The GEMM dispatch table: for each ISA and dtype, the micro-kernel and the block
// sizes the five-loop framework (driver.cpp) runs it with.
#include <atomic>
#include <cstdint>
#include <optional>

#include "../dispatch.hpp"
#include "blocking.hpp"

namespace fastbp::kernels::gemm_detail {

// C[MR x NR] = alpha * A @ B + beta * C over kc steps, with A(i, p) at
// a[i * rs_a + p * cs_a] and B(p, j) at b[p * rs_b + j]. Packed micro-panels from
// pack.hpp have rs_a = 1, cs_a = MR, rs_b = NR (the kernels' fast path); small problems
// pass the operands' own strides instead. beta == 0 writes C without reading it.
template <typename T>
using MicroKernel = void (*)(int64_t kc, T alpha, const T* a, int64_t rs_a, int64_t cs_a,
                             const T* b, int64_t rs_b, T beta, T* c, int64_t ldc);

// The same for an edge tile of which only rows x cols exist in C (rows <= MR,
// cols <= NR); only those are read from A and written to C.
template <typename T>
using EdgeKernel = void (*)(int64_t kc, T alpha, const T* a, int64_t rs_a, int64_t cs_a, const T* b,
                            int64_t rs_b, T beta, T* c, int64_t ldc, int rows, int cols);

// C[rows x cols] = alpha * A @ B + beta * C over k steps, with A(i, p) at a[i * lda + p]
// and B(p, j) at bt[j * ldbt + p]: both operands along K, bt holding cols rounded up to
// 4 or 8 (zeros past cols) (dot_columns, ukr_simd.hpp).
template <typename T>
using DotKernel = void (*)(int64_t k, T alpha, const T* a, int64_t lda, const T* bt, int64_t ldbt,
                           T beta, T* c, int64_t ldc, int64_t rows, int cols);

// Packs rows [i0, i0+rows) x columns [p0, p0+kc) of op(A) into MR-row micro-panels,
// zero-padding the last one; and columns [j0, j0+cols) x rows [p0, p0+kc) of op(B)
// into NR-column micro-panels.
template <typename T>
using PackA = void (*)(bool trans, const T* a, int64_t lda, int64_t i0, int64_t rows, int64_t p0,
                       int64_t kc, T* dst);
template <typename T>
using PackB = void (*)(bool trans, const T* b, int64_t ldb, int64_t j0, int64_t cols, int64_t p0,
                       int64_t kc, T* dst);

// A setting the tuner may change while other threads run products: relaxed atomic loads
// and stores (plain moves on x86). The driver reads each once per product, and any value
// it reads is valid: products are correct under every block size and kernel split.
template <typename V>
class Tunable {
 public:
  Tunable(V v = V{}) : v_(v) {}
  Tunable(const Tunable& other) : v_(other.get()) {}
  Tunable& operator=(const Tunable& other) { return *this = other.get(); }
  Tunable& operator=(V v) {
    v_.store(v, std::memory_order_relaxed);
    return *this;
  }
  V get() const { return v_.load(std::memory_order_relaxed); }
  operator V() const { return get(); }

 private:
  std::atomic<V> v_;
};

// Where a kernel's cache blocks came from, in the order a later one overrides: the
// table below, the analytic model (blocking.hpp), a tuning file loaded by the Python
// package, FASTBP_GEMM_BLOCKS.
enum class BlockSource { Table, Analytic, Tuned, Environment };
const char* block_source_name(BlockSource source);

template <typename T>
struct GemmConfig {
  const char* name;  // sgemm_<isa>_<MR>x<NR>, as BLIS names them
  MicroKernel<T> ukr;
  EdgeKernel<T> ukr_edge;
  PackA<T> pack_a;
  PackB<T> pack_b;
  int mr, nr;  // register block
  // Cache blocks: MC x KC of A in L2, KC x NC of B in L3.
  Tunable<int64_t> mc = 0, kc = 0, nc = 0;
  // The A block holds MC x KC elements whatever K is: on a K shorter than KC, MC grows
  // to fill the same share of L2 (the AMX kernel, run with a deep KC and a small MC so
  // that its C tiles are stored once per product, not reloaded between K blocks).
  bool mc_fills_kc = false;
  // A packed element ("slot") holds k_per_slot K values (2 for bfloat16 pairs), and a
  // panel's K is padded to a multiple of k_align. `converts`: packing rounds the
  // operands, so they are always packed, never read in place.
  int k_align = 1, k_per_slot = 1;
  bool converts = false;
  // The bfloat16 instructions (vdpbf16ps, tdpbf16ps) read subnormal inputs as zero and
  // flush subnormal results, whatever MXCSR says; the float32 kernels keep both.
  bool flushes_subnormals = false;
  // The column kernel for the last columns of a C when they are at most dot_cols (none
  // on the paths without one): see the driver's run().
  DotKernel<T> dot = nullptr;
  int dot_cols = 0;
  // Run by a thread before its micro-kernel calls of one unit of work (the AMX tile
  // configuration); none where the kernels need nothing set up.
  void (*prepare)() = nullptr;
  // The table's blocks, the model's for this CPU (none when its caches are unknown), and
  // which of them (or which other source) mc, kc and nc hold.
  Blocks table{0, 0, 0};
  std::optional<Blocks> analytic = std::nullopt;
  Tunable<BlockSource> blocks_from = BlockSource::Table;

  // Slots per lane of a panel kc deep.
  int64_t slots(int64_t kc_) const { return (kc_ + k_align - 1) / k_align * k_align / k_per_slot; }
};

// How the driver splits a product's threads between M and N: one A element packed
// costs about as much as this many FMA lanes of compute, which weighs the redundant A
// packing of an N split against the load balance of an M split. 0 splits for balance
// alone; kMaxSplitPackCost always splits M. The tuner measures it per machine.
inline constexpr int64_t kDefaultSplitPackCost = 16;
inline constexpr int64_t kMaxSplitPackCost = int64_t(1) << 20;
int64_t split_pack_cost();
// Throws std::invalid_argument outside [0, kMaxSplitPackCost].
void set_split_pack_cost(int64_t cost);

// Largest MR * NR in the table, for the edge-tile scratch in the driver.
inline constexpr int kMaxTile = 32 * 32;

// An ISA's kernels: `wide` for products of at least `wide_from` columns, `narrow` for
// the rest (the same entry where the ISA has one kernel). A wide tile needs fewer loads
// per FMA, but leaves most of its lanes idle on a narrow C.
template <typename T>
struct GemmPath {
  GemmConfig<T>* narrow;
  GemmConfig<T>* wide;
  Tunable<int64_t> wide_from;

  const GemmConfig<T>& for_columns(int64_t n) const { return n >= wide_from ? *wide : *narrow; }
};

// The kernels of `isa` (which must be compiled in; see dispatch.hpp), with the block
// sizes of FASTBP_GEMM_BLOCKS where it is set, else the analytic ones where this CPU's
// caches are known, else the table's.
template <typename T>
GemmPath<T>& gemm_path(Isa isa);

// The bfloat16 GEMM's kernels on `isa`: the float32 kernels of Ref, Avx2 and Avx512 on
// operands rounded while packed (the portable path), vdpbf16ps on Avx512Bf16, AMX tiles
// on Amx (with vdpbf16ps for narrow products).
GemmPath<float>& bf16_gemm_path(Isa isa);

// FASTBP_GEMM_BLOCKS="MC,KC,NC" overrides every kernel's cache blocks (MC and NC rounded
// up to whole tiles), and FASTBP_GEMM_BLOCKS=table keeps the table's. Throws
// std::invalid_argument for any other value; unset or empty means the analytic blocks.
struct BlockOverride {
  bool set = false, table = false;
  int64_t mc = 0, kc = 0, nc = 0;
};
const BlockOverride& gemm_block_override();

// Sets cfg's cache blocks (MC and NC rounded up to whole tiles) and their source.
template <typename T>
void set_blocks(GemmConfig<T>& cfg, const Blocks& b, BlockSource source);

// pack.hpp's packers for a float kernel's MR-row A and NR-column B panels with
// conversion C (Copy, or RoundBf16 for the portable bfloat16 path), compiled with a SIMD
// path's flags in its ukr_<isa>.cpp, where they are instantiated over a class of that
// file's own so that the linker can never merge them with another path's copies.
template <typename T>
struct Packers {
  PackA<T> a;
  PackB<T> b;
};
template <typename T, int MR, int NR, class C>
Packers<T> avx2_packers();
template <typename T, int MR, int NR, class C>
Packers<T> avx512_packers();

// Micro-kernels, one translation unit per ISA.
template <typename T, int MR, int NR>
void gemm_ukr_ref(int64_t kc, T alpha, const T* a, int64_t rs_a, int64_t cs_a, const T* b,
                  int64_t rs_b, T beta, T* c, int64_t ldc);
template <typename T, int MR, int NR>
void gemm_ukr_ref_edge(int64_t kc, T alpha, const T* a, int64_t rs_a, int64_t cs_a, const T* b,
                       int64_t rs_b, T beta, T* c, int64_t ldc, int rows, int cols);

void sgemm_avx2_6x16(int64_t kc, float alpha, const float* a, int64_t rs_a, int64_t cs_a,
                     const float* b, int64_t rs_b, float beta, float* c, int64_t ldc);
void sgemm_avx2_6x16_edge(int64_t kc, float alpha, const float* a, int64_t rs_a, int64_t cs_a,
                          const float* b, int64_t rs_b, float beta, float* c, int64_t ldc, int rows,
                          int cols);
void dgemm_avx2_6x8(int64_t kc, double alpha, const double* a, int64_t rs_a, int64_t cs_a,
                    const double* b, int64_t rs_b, double beta, double* c, int64_t ldc);
void dgemm_avx2_6x8_edge(int64_t kc, double alpha, const double* a, int64_t rs_a, int64_t cs_a,
                         const double* b, int64_t rs_b, double beta, double* c, int64_t ldc,
                         int rows, int cols);
void sgemm_avx512_12x32(int64_t kc, float alpha, const float* a, int64_t rs_a, int64_t cs_a,
                        const float* b, int64_t rs_b, float beta, float* c, int64_t ldc);
void sgemm_avx512_12x32_edge(int64_t kc, float alpha, const float* a, int64_t rs_a, int64_t cs_a,
                             const float* b, int64_t rs_b, float beta, float* c, int64_t ldc,
                             int rows, int cols);
void sgemm_avx512_6x64(int64_t kc, float alpha, const float* a, int64_t rs_a, int64_t cs_a,
                       const float* b, int64_t rs_b, float beta, float* c, int64_t ldc);
void sgemm_avx512_6x64_edge(int64_t kc, float alpha, const float* a, int64_t rs_a, int64_t cs_a,
                            const float* b, int64_t rs_b, float beta, float* c, int64_t ldc,
                            int rows, int cols);
void dgemm_avx512_6x32(int64_t kc, double alpha, const double* a, int64_t rs_a, int64_t cs_a,
                       const double* b, int64_t rs_b, double beta, double* c, int64_t ldc);
void dgemm_avx512_6x32_edge(int64_t kc, double alpha, const double* a, int64_t rs_a, int64_t cs_a,
                            const double* b, int64_t rs_b, double beta, double* c, int64_t ldc,
                            int rows, int cols);
void dgemm_avx512_12x16(int64_t kc, double alpha, const double* a, int64_t rs_a, int64_t cs_a,
                        const double* b, int64_t rs_b, double beta, double* c, int64_t ldc);
void dgemm_avx512_12x16_edge(int64_t kc, double alpha, const double* a, int64_t rs_a, int64_t cs_a,
                             const double* b, int64_t rs_b, double beta, double* c, int64_t ldc,
                             int rows, int cols);

// Column kernels (dot_columns), one per float ISA file.
template <typename T>
void dot_avx2(int64_t k, T alpha, const T* a, int64_t lda, const T* bt, int64_t ldbt, T beta, T* c,
              int64_t ldc, int64_t rows, int cols);
template <typename T>
void dot_avx512(int64_t k, T alpha, const T* a, int64_t lda, const T* bt, int64_t ldbt, T beta,
                T* c, int64_t ldc, int64_t rows, int cols);

// bfloat16 kernels and their packers (pack_bf16.hpp), compiled with their ISA's flags.
// The packed operands are bfloat16 pairs in float-sized slots; see GemmConfig.
void bf16gemm_avx512bf16_12x32(int64_t kc, float alpha, const float* a, int64_t rs_a, int64_t cs_a,
                               const float* b, int64_t rs_b, float beta, float* c, int64_t ldc);
void bf16gemm_avx512bf16_12x32_edge(int64_t kc, float alpha, const float* a, int64_t rs_a,
                                    int64_t cs_a, const float* b, int64_t rs_b, float beta,
                                    float* c, int64_t ldc, int rows, int cols);
void bf16gemm_avx512bf16_6x64(int64_t kc, float alpha, const float* a, int64_t rs_a, int64_t cs_a,
                              const float* b, int64_t rs_b, float beta, float* c, int64_t ldc);
void bf16gemm_avx512bf16_6x64_edge(int64_t kc, float alpha, const float* a, int64_t rs_a,
                                   int64_t cs_a, const float* b, int64_t rs_b, float beta, float* c,
                                   int64_t ldc, int rows, int cols);
void bf16_pack_a_pairs12(bool trans, const float* a, int64_t lda, int64_t i0, int64_t rows,
                         int64_t p0, int64_t kc, float* dst);
void bf16_pack_a_pairs6(bool trans, const float* a, int64_t lda, int64_t i0, int64_t rows,
                        int64_t p0, int64_t kc, float* dst);
void bf16_pack_b_pairs32(bool trans, const float* b, int64_t ldb, int64_t j0, int64_t cols,
                         int64_t p0, int64_t kc, float* dst);
void bf16_pack_b_pairs64(bool trans, const float* b, int64_t ldb, int64_t j0, int64_t cols,
                         int64_t p0, int64_t kc, float* dst);

void bf16_amx_configure_tiles();
void bf16gemm_amx_32x32(int64_t kc, float alpha, const float* a, int64_t rs_a, int64_t cs_a,
                        const float* b, int64_t rs_b, float beta, float* c, int64_t ldc);
void bf16gemm_amx_32x32_edge(int64_t kc, float alpha, const float* a, int64_t rs_a, int64_t cs_a,
                             const float* b, int64_t rs_b, float beta, float* c, int64_t ldc,
                             int rows, int cols);
void bf16_pack_a_amx32(bool trans, const float* a, int64_t lda, int64_t i0, int64_t rows,
                       int64_t p0, int64_t kc, float* dst);
void bf16_pack_b_amx32(bool trans, const float* b, int64_t ldb, int64_t j0, int64_t cols,
                       int64_t p0, int64_t kc, float* dst);

}  // namespace fastbp::kernels::gemm_detail
