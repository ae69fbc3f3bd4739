// Tiled GEMM for the three products of a Dense layer: X @ W (forward), A^T @ dZ (dW)
// and dZ @ W^T (dX). One kernel, templated on the two transposes.
//
// A block computes a BM x BN tile of C from BK-deep slices of op(A) and op(B) staged
// in shared memory; each thread keeps a TM x TN block of C in registers, so every
// value read from shared memory feeds TM or TN multiply-adds. The next slice is
// loaded from global memory into registers while the current one is multiplied, and
// stored into the other half of a double buffer, so one barrier per slice suffices.
#include "cuda/common.cuh"
#include "cuda/kernels.cuh"

namespace fastbp::cuda {
namespace {

constexpr int BM = 128, BN = 128, BK = 8, TM = 8, TN = 8;
constexpr int kThreads = (BM / TM) * (BN / TN);  // 256
constexpr int kLoadA = BM * BK / kThreads, kLoadB = BK * BN / kThreads;
// Padding the k-major A tile puts the 8 k-rows a warp stores at different banks.
constexpr int kPadA = 4;

// Thread l's element (r, c) of an R x C tile of op(X). Consecutive threads walk the
// direction that is contiguous in memory, so every global load is coalesced: along r
// when op transposes (X is stored C x R), along c otherwise.
template <int R, int C, bool Trans>
__device__ __forceinline__ void tile_coord(int l, int& r, int& c) {
  r = Trans ? l % R : l / C;
  c = Trans ? l / R : l % C;
}

// The thread's share of the R x C tile of op(X) at (r0, c0); zeros outside rows x cols.
template <int R, int C, bool Trans, typename T, int N>
__device__ __forceinline__ void load_tile(const T* __restrict__ x, int64_t ld, int64_t r0,
                                          int64_t c0, int64_t rows, int64_t cols, T (&reg)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) {
    int r, c;
    tile_coord<R, C, Trans>(threadIdx.x + i * kThreads, r, c);
    const int64_t gr = r0 + r, gc = c0 + c;
    reg[i] = gr < rows && gc < cols ? x[Trans ? gc * ld + gr : gr * ld + gc] : T(0);
  }
}

template <typename T>
struct Tiles {
  T a[2][BK][BM + kPadA];  // k-major: a thread reads its TM rows at one k together
  T b[2][BK][BN];
};

template <bool TA, bool TB, typename T>
__device__ __forceinline__ void store_tiles(Tiles<T>& s, int buf, const T (&ra)[kLoadA],
                                            const T (&rb)[kLoadB]) {
#pragma unroll
  for (int i = 0; i < kLoadA; ++i) {
    int r, c;
    tile_coord<BM, BK, TA>(threadIdx.x + i * kThreads, r, c);
    s.a[buf][c][r] = ra[i];
  }
#pragma unroll
  for (int i = 0; i < kLoadB; ++i) {
    int r, c;
    tile_coord<BK, BN, TB>(threadIdx.x + i * kThreads, r, c);
    s.b[buf][r][c] = rb[i];
  }
}

// Two float blocks fit an SM's registers (<= 128 per thread); a double block's
// accumulators alone take 128, so it runs one block per SM.
template <bool TA, bool TB, typename T>
__global__ void __launch_bounds__(kThreads, sizeof(T) == 4 ? 2 : 1)
    gemm_kernel(int64_t m, int64_t n, int64_t k, const T* __restrict__ a, int64_t lda,
                const T* __restrict__ b, int64_t ldb, T* __restrict__ c, int64_t ldc) {
  __shared__ Tiles<T> s;
  // A thread owns rows ty + i * (BM / TM) and columns tx + j * (BN / TN) of the tile:
  // strided rather than contiguous, so the 16 threads of a half-warp read 16
  // consecutive words of the B tile (no bank conflicts) and write C coalesced.
  const int tx = threadIdx.x % (BN / TN), ty = threadIdx.x / (BN / TN);
  const int64_t m0 = int64_t(blockIdx.y) * BM, n0 = int64_t(blockIdx.x) * BN;

  T ra[kLoadA], rb[kLoadB];
  T acc[TM][TN] = {};
  load_tile<BM, BK, TA>(a, lda, m0, 0, m, k, ra);
  load_tile<BK, BN, TB>(b, ldb, 0, n0, k, n, rb);
  store_tiles<TA, TB>(s, 0, ra, rb);
  __syncthreads();

  for (int64_t k0 = 0, step = 0; k0 < k; k0 += BK, ++step) {
    const int cur = step & 1;
    const bool more = k0 + BK < k;
    if (more) {
      load_tile<BM, BK, TA>(a, lda, m0, k0 + BK, m, k, ra);
      load_tile<BK, BN, TB>(b, ldb, k0 + BK, n0, k, n, rb);
    }
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      T av[TM], bv[TN];
#pragma unroll
      for (int i = 0; i < TM; ++i) av[i] = s.a[cur][kk][ty + i * (BM / TM)];
#pragma unroll
      for (int j = 0; j < TN; ++j) bv[j] = s.b[cur][kk][tx + j * (BN / TN)];
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = fma(av[i], bv[j], acc[i][j]);
    }
    // The other buffer was last read before the previous barrier, so it is free.
    if (more) store_tiles<TA, TB>(s, cur ^ 1, ra, rb);
    __syncthreads();
  }

#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int64_t row = m0 + ty + i * (BM / TM);
    if (row >= m) break;
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      const int64_t col = n0 + tx + j * (BN / TN);
      if (col < n) c[row * ldc + col] = acc[i][j];
    }
  }
}

template <bool TA, bool TB, typename T>
void launch(int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b, int64_t ldb, T* c,
            int64_t ldc, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>((n + BN - 1) / BN),
                  static_cast<unsigned>((m + BM - 1) / BM));
  gemm_kernel<TA, TB, T><<<grid, kThreads, 0, stream>>>(m, n, k, a, lda, b, ldb, c, ldc);
}

}  // namespace

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda,
          const T* b, int64_t ldb, T* c, int64_t ldc, cudaStream_t stream) {
  // gridDim.y is limited to 65535 blocks of BM rows.
  if ((m + BM - 1) / BM > 65535)
    throw std::invalid_argument("CUDA GEMM supports at most " + std::to_string(65535 * BM) +
                                " rows, got " + std::to_string(m));
  // The three layer products; the fourth combination is never needed.
  if (!trans_a && !trans_b) launch<false, false>(m, n, k, a, lda, b, ldb, c, ldc, stream);
  else if (trans_a && !trans_b) launch<true, false>(m, n, k, a, lda, b, ldb, c, ldc, stream);
  else if (!trans_a && trans_b) launch<false, true>(m, n, k, a, lda, b, ldb, c, ldc, stream);
  else throw std::invalid_argument("CUDA GEMM: op(a) and op(b) cannot both be transposed");
  check_launch("gemm");
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, const float*, int64_t,
                          const float*, int64_t, float*, int64_t, cudaStream_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, const double*, int64_t,
                           const double*, int64_t, double*, int64_t, cudaStream_t);

}  // namespace fastbp::cuda
