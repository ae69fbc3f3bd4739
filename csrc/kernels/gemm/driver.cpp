// The five-loop GEMM framework (BLIS / GotoBLAS), the same for every ISA; only the
// micro-kernel and block sizes come from the dispatch table (config.cpp).
//
//   jc over N by NC    B block KC x NC packed once per (jc, pc), shared by all threads
//    pc over K by KC
//     ic over M by MC  A block MC x KC packed by each thread into its own buffer
//      jr over NR      B micro-panel, stays in L1
//       ir over MR     micro-kernel: MR x NR of C in registers
//
// Packing pays for itself only through reuse: an A block is reused by every B
// micro-panel, a B block by every A micro-panel. When that reuse is small (small
// batches, narrow layers) the kernel reads the operand in place through its strides,
// and only a ragged last B panel is packed (zero-padded), so no read runs past the
// array. Edge tiles run a kernel sized to the rows and columns that exist, which reads
// A only for those rows and stores through lane masks.
//
// Each (jc, pc) block runs as two parallel calls of the thread pool (threads.hpp): the
// B block's panels, then the C tiles in units of an M block times a column group; where
// B is read in place, one call runs every K block (each a barrier fewer, which counts
// for small products and when a core is busy elsewhere). The
// tn column groups are chosen per call from the shape: tall problems split only M so A
// is packed once, short-wide ones (small batches) split N so both cores have work. A
// tile is computed the same way whichever thread claims it.
#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

#include "../gemm.hpp"
#include "../threads.hpp"
#include "config.hpp"
#include "scratch.hpp"
#include "simple.hpp"

namespace fastbp::kernels {
namespace gemm_detail {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

struct Range {
  int64_t begin, end;
};

// Part `i` of `parts` near-equal parts of [0, units).
Range split(int64_t units, int64_t parts, int64_t i) {
  return {units * i / parts, units * (i + 1) / parts};
}

// Below this many multiply-adds, gemm_direct beats any tiled path.
constexpr int64_t kDirectWork = 2048;

// An operand is packed only when each packed micro-panel is reused at least this often.
constexpr int64_t kMinPackReuse = 12;

Tunable<int64_t> g_split_pack_cost = kDefaultSplitPackCost;

int pick_m_threads(int nth, int64_t m_panels, int64_t n_panels, int mr, int nr) {
  const int64_t pack_cost = g_split_pack_cost;
  int best = 1;
  int64_t best_cost = std::numeric_limits<int64_t>::max();
  for (int tm = 1; tm <= nth; ++tm) {
    if (nth % tm != 0) continue;
    const int tn = nth / tm;
    const int64_t cost = ceil_div(m_panels, tm) * mr * (ceil_div(n_panels, tn) * nr + pack_cost);
    if (cost <= best_cost) {  // ties go to the larger M split: no redundant packing
      best_cost = cost;
      best = tm;
    }
  }
  return best;
}

// Below this depth, the column kernel's sums across its vectors' lanes cost more than
// the broadcasts it saves.
constexpr int64_t kDotMinDepth = 256;
// Columns of a B that is not transposed are gathered element by element, by the calling
// thread before the parallel call; for more than this many the gather cost a 64-row
// product on two threads what the column kernel saved.
constexpr int64_t kDotMaxGathered = 4;

// op(B)'s columns [j0, j0 + cols) laid along K for the column kernel, in the calling
// thread's scratch: cols rounded up to a multiple of 4 (dot_columns takes 4 or 8), the
// extra ones zero.
template <typename T>
const T* columns_along_k(bool tb, const T* b, int64_t ldb, int64_t j0, int64_t cols, int64_t k) {
  const int64_t padded = round_up(cols, 4);
  T* g = static_cast<T*>(
      thread_scratch(Scratch::Columns, sizeof(T) * static_cast<size_t>(padded * k)));
  if (tb) {
    for (int64_t j = 0; j < cols; ++j) std::copy_n(b + (j0 + j) * ldb, k, g + j * k);
  } else {
    for (int64_t p = 0; p < k; ++p)
      for (int64_t j = 0; j < cols; ++j) g[j * k + p] = b[p * ldb + j0 + j];
  }
  std::fill(g + cols * k, g + padded * k, T(0));
  return g;
}

// c_trans: the problem is C^T = op(B)^T op(A)^T, so tile (i, j) lands at C(j, i).
// dot_n: C has dot_n more columns after its n, which the column kernel computes (op(A)
// not transposed, no c_trans): each unit of the last column group runs them for its
// rows over the whole of K, in the same parallel call as its tiles (the columns are
// disjoint, so the order does not matter). With n 0 they are shared out by rows alone.
template <typename T>
void gemm_tiled(const GemmConfig<T>& cfg, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                T alpha, const T* a, int64_t lda, const T* b, int64_t ldb, T beta, T* c,
                int64_t ldc, bool c_trans, int64_t dot_n = 0) {
  const T* const bt = dot_n > 0 ? columns_along_k(tb, b, ldb, n, dot_n, k) : nullptr;
  auto run_dot = [&](int64_t i0, int64_t rows) {
    cfg.dot(k, alpha, a + i0 * lda, lda, bt, k, beta, c + i0 * ldc + n, ldc, rows,
            static_cast<int>(dot_n));
  };
  if (n == 0) {
    parallel_for(m, pick_threads(m * dot_n * k),
                 [&](int64_t begin, int64_t end) { run_dot(begin, end - begin); });
    return;
  }
  const int mr = cfg.mr, nr = cfg.nr;
  const int64_t nc_step = round_up(ceil_div(n, ceil_div(n, cfg.nc)), nr);
  const int64_t m_panels = ceil_div(m, mr);
  const int64_t n_panels_max = ceil_div(std::min(n, nc_step), nr);
  const bool direct_b = !cfg.converts && !tb && m_panels < kMinPackReuse;
  // Even block sizes: k = 257 runs as 129 + 128, not 256 + 1.
  const int64_t kc = cfg.kc;
  const int64_t kc_step = ceil_div(k, ceil_div(k, kc));
  // A^T in place would read a few elements from each of kc rows lda apart (4K aliasing,
  // a TLB entry per row); packing it is a contiguous copy, so it is always packed.
  const bool direct_a = !cfg.converts && !ta && n_panels_max < kMinPackReuse;
  const int64_t rs_a = ta ? 1 : lda, cs_a = ta ? lda : 1;
  const int threads = pick_threads(m * n * k);
  const int tm = pick_m_threads(threads, m_panels, n_panels_max, mr, nr);
  const int tn = threads / tm;
  // M in blocks of at most MC rows, as many as a multiple of tm so that the threads end
  // together (3 blocks on 2 threads leave one idle a third of the time: a large MC, as a
  // big L2 gives, makes few blocks); a unit of work is one M block times one of tn
  // column groups. An M block is MC rows, or more on a K shorter than KC where the
  // kernel asks for it (GemmConfig::mc_fills_kc).
  const int64_t mc_set = cfg.mc;
  const int64_t mc = cfg.mc_fills_kc ? std::max(mc_set, mc_set * kc / kc_step) : mc_set;
  const int64_t m_blocks = round_up(std::max<int64_t>(tm, ceil_div(m, mc)), tm);
  const int64_t mc_step = round_up(ceil_div(m, m_blocks), mr);
  const int64_t units = ceil_div(m, mc_step) * tn;
  // A unit's share of the column kernel's columns: its M block's rows, run by the unit
  // of the last column group.
  auto dot_unit = [&](int64_t unit) {
    if (dot_n == 0 || unit % tn != tn - 1) return;
    const int64_t ic = unit / tn * mc_step;
    run_dot(ic, std::min(mc_step, m - ic));
  };
  const int64_t slots_max = cfg.slots(kc_step);  // a packed panel's depth, see GemmConfig
  T* const bbuf = direct_b
                      ? nullptr
                      : static_cast<T*>(thread_scratch(
                            Scratch::PackB, sizeof(T) * static_cast<size_t>(slots_max * nc_step)));

  // The C tiles of one unit (an M block by a column group) over one K block, B's panels
  // in `bpack` (in direct mode, only the ragged last one).
  auto run_unit = [&](int64_t unit, int64_t jc, int64_t ncur, int64_t pc, int64_t kcur,
                      const T* bpack) {
    const int64_t n_panels = ceil_div(ncur, nr);
    const int64_t b_tail = ncur % nr == 0 ? n_panels : n_panels - 1;
    const T beta_k = pc == 0 ? beta : T(1);
    const int64_t kslots = cfg.slots(kcur);
    const int64_t ic = unit / tn * mc_step;
    const int64_t mcur = std::min(mc_step, m - ic);
    const Range my_cols = split(n_panels, tn, unit % tn);
    if (my_cols.end <= my_cols.begin) return;
    T* const abuf =
        direct_a ? nullptr
                 : static_cast<T*>(thread_scratch(
                       Scratch::PackA, sizeof(T) * static_cast<size_t>(mc_step * slots_max)));
    if (!direct_a) cfg.pack_a(ta, a, lda, ic, mcur, pc, kcur, abuf);
    if (cfg.prepare) cfg.prepare();
    alignas(64) T edge[kMaxTile];
    for (int64_t jp = my_cols.begin; jp < my_cols.end; ++jp) {
      const int64_t j = jc + jp * nr;
      const int64_t cols = std::min<int64_t>(nr, jc + ncur - j);
      const bool b_in_place = direct_b && jp < b_tail;
      const T* bp = b_in_place ? b + pc * ldb + j : bpack + (direct_b ? 0 : jp * nr * kslots);
      const int64_t rs_b = b_in_place ? ldb : nr;
      for (int64_t ip = 0; ip < mcur; ip += mr) {
        const int rows = static_cast<int>(std::min<int64_t>(mr, mcur - ip));
        const T* ap = direct_a ? a + (ic + ip) * rs_a + pc * cs_a : abuf + ip * kslots;
        const int64_t ars = direct_a ? rs_a : 1, acs = direct_a ? cs_a : mr;
        const bool full = rows == mr && cols == nr;
        if (c_trans) {  // the tile goes through `edge`, transposed on the way to C
          if (full) {
            cfg.ukr(kcur, alpha, ap, ars, acs, bp, rs_b, T(0), edge, nr);
          } else {
            cfg.ukr_edge(kcur, alpha, ap, ars, acs, bp, rs_b, T(0), edge, nr, rows,
                         static_cast<int>(cols));
          }
          merge_edge_t(edge, nr, rows, cols, beta_k, c + j * ldc + ic + ip, ldc);
          continue;
        }
        T* cij = c + (ic + ip) * ldc + j;
        if (full) {
          cfg.ukr(kcur, alpha, ap, ars, acs, bp, rs_b, beta_k, cij, ldc);
        } else {
          cfg.ukr_edge(kcur, alpha, ap, ars, acs, bp, rs_b, beta_k, cij, ldc, rows,
                       static_cast<int>(cols));
        }
      }
    }
  };

  for (int64_t jc = 0; jc < n; jc += nc_step) {
    const int64_t ncur = std::min(nc_step, n - jc);
    const int64_t n_panels = ceil_div(ncur, nr);
    if (direct_b) {
      // B is read in place, so the K blocks share nothing a barrier must wait for: one
      // parallel call runs them all, each unit packing the ragged last B panel (if any)
      // for itself. A tile still sums its K blocks in order, as below.
      const int64_t b_tail = ncur % nr == 0 ? n_panels : n_panels - 1;
      parallel_units(units, threads, [&](int64_t unit) {
        const bool packs_tail = b_tail < n_panels && split(n_panels, tn, unit % tn).end == n_panels;
        T* const tail = packs_tail
                            ? static_cast<T*>(thread_scratch(
                                  Scratch::PackB, sizeof(T) * static_cast<size_t>(slots_max * nr)))
                            : nullptr;
        if (jc == 0) dot_unit(unit);
        for (int64_t pc = 0; pc < k; pc += kc_step) {
          const int64_t kcur = std::min(kc_step, k - pc);
          if (packs_tail)
            cfg.pack_b(tb, b, ldb, jc + b_tail * nr, ncur - b_tail * nr, pc, kcur, tail);
          run_unit(unit, jc, ncur, pc, kcur, tail);
        }
      });
      continue;
    }
    for (int64_t pc = 0; pc < k; pc += kc_step) {
      const int64_t kcur = std::min(kc_step, k - pc);
      const int64_t kslots = cfg.slots(kcur);
      // Phase 1: the B block, shared by every unit of phase 2.
      const int64_t pack_parts = std::min<int64_t>(threads, n_panels);
      parallel_units(pack_parts, threads, [&](int64_t part) {
        const Range panels = split(n_panels, pack_parts, part);
        if (panels.end <= panels.begin) return;
        const int64_t j0 = panels.begin * nr;
        const int64_t cols = std::min(ncur, panels.end * nr) - j0;
        cfg.pack_b(tb, b, ldb, jc + j0, cols, pc, kcur, bbuf + j0 * kslots);
      });
      // Phase 2: the C tiles, an M block by a column group per unit.
      parallel_units(units, threads, [&](int64_t unit) {
        if (jc == 0 && pc == 0) dot_unit(unit);
        run_unit(unit, jc, ncur, pc, kcur, bbuf);
      });
    }
  }
}

template <typename T>
const GemmPath<T>& active_path() {
  static const GemmPath<T>& path = gemm_path<T>(active_isa());
  return path;
}

const GemmPath<float>& active_bf16_path() {
  static const GemmPath<float>& path = bf16_gemm_path(active_isa());
  return path;
}

template <typename T>
void run(const GemmPath<T>& path, bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha,
         const T* a, int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == T(0)) return scale_c(m, n, beta, c, ldc);
  if (m * n * k <= kDirectWork && !path.narrow->converts)
    return gemm_direct(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  // C's columns [j, j + cols) as C^T: op(B)^T op(A)^T, its tiles transposed on store.
  auto as_c_trans = [&](int64_t j, int64_t cols) {
    gemm_tiled(path.for_columns(m), !tb, !ta, cols, m, k, alpha, tb ? b + j * ldb : b + j, ldb, a,
               lda, beta, c + j, ldc, true);
  };
  // A narrow C (the output layer's few columns) would leave most of each NR-wide tile
  // empty; as C^T those columns fill the MR side, and the tiles are transposed on store.
  // Only when op(A) = A^T: then op(A)^T, the new B, is read row by row in place rather
  // than transposed element by element into a packed panel.
  if (ta && n < path.narrow->nr && m > n) return as_c_trans(0, n);
  // Likewise, on one thread, a ragged last column panel of at most half a panel (one
  // vector of the 12 x 32 kernel: a broadcast per multiply-add) runs as the C^T of its few
  // columns, on tiles as wide as the kernel's; the columns before it run as they would.
  // (On several threads the tail is better shared out with its rows in one call.)
  const GemmConfig<T>& cfg = path.for_columns(n);
  const int64_t tail = n % cfg.nr;
  if (ta && !cfg.converts && n > cfg.nr && tail > 0 && 2 * tail <= cfg.nr && m >= cfg.nr &&
      pick_threads(m * n * k) == 1) {
    gemm_tiled(cfg, ta, tb, m, n - tail, k, alpha, a, lda, b, ldb, beta, c, ldc, false);
    return as_c_trans(n - tail, tail);
  }
  // A ragged last column panel (or a whole C) of at most half a vector, on a long K,
  // with op(A)'s rows along memory: its columns run on the column kernel, whose
  // multiply-adds fill every lane with no broadcast, where a tile's would be one vector
  // of mostly idle lanes, each fed by a broadcast of A.
  if (cfg.dot && !ta && tail > 0 && tail <= cfg.dot_cols && (tb || tail <= kDotMaxGathered) &&
      k >= kDotMinDepth)
    return gemm_tiled(cfg, ta, tb, m, n - tail, k, alpha, a, lda, b, ldb, beta, c, ldc, false,
                      tail);
  gemm_tiled(cfg, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, false);
}

}  // namespace

int64_t split_pack_cost() { return g_split_pack_cost; }

void set_split_pack_cost(int64_t cost) {
  if (cost < 0 || cost > kMaxSplitPackCost)
    throw std::invalid_argument("the split's pack cost " + std::to_string(cost) +
                                " is out of range; expected 0 to " +
                                std::to_string(kMaxSplitPackCost));
  g_split_pack_cost = cost;
}

}  // namespace gemm_detail

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
          int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  gemm_detail::run(gemm_detail::active_path<T>(), trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb,
                   beta, c, ldc);
}

void gemm_bf16(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
               const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
               int64_t ldc) {
  gemm_detail::run(gemm_detail::active_bf16_path(), trans_a, trans_b, m, n, k, alpha, a, lda, b,
                   ldb, beta, c, ldc);
}

const char* bf16_gemm_name() { return gemm_detail::active_bf16_path().wide->name; }

// A path's narrow and wide kernels are both bfloat16 instructions or both float32 kernels.
bool bf16_flushes_subnormals() { return gemm_detail::active_bf16_path().wide->flushes_subnormals; }

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t,
                          const float*, int64_t, float, float*, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t,
                           const double*, int64_t, double, double*, int64_t);

}  // namespace fastbp::kernels
