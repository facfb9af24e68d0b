// The prefill GEMM of nemotron::cuda::linear for bf16 weights on sm_80+:
//   out[m, n] = sum_k a[m, k] * W[n, k] + bias[n]
// with a = x already rounded to bf16 (round_rows_to_bf16, one pass over x),
// W [N, K] bf16 row-major, fp32 accumulation and output.
//
// Why a second tensor-core GEMM beside wmma_gemm_bf16: that one stages both
// tiles through registers (x converted fp32 -> bf16 on every tile load, for
// every one of the N/128 column blocks) with two shared-memory stages, and
// sends each accumulator through shared memory to store it. This one reads
// bf16 operands with cp.async into a 4-stage pipeline (three k-tiles in flight
// while one is multiplied), loads the operands with ldmatrix, multiplies with
// mma.sync m16n8k16 and stores the accumulators straight from registers (their
// layout is known: ptx_sm80.cuh).
//
// Tiling: block 128 x 128 (rows x features), k-tile 32; 4 warps as 2 x 2, each
// 64 x 64 = 4 x 8 mma tiles (128 fp32 accumulators per thread). Per 16-wide k
// step a warp issues 8 ldmatrix.x4 for 32 mma: 128 bytes of shared memory per
// mma, what one SM's shared memory delivers per clock.
// Shared rows are padded from 32 to 40 bf16 (80 bytes): the 8 row addresses of
// one ldmatrix matrix then fall in 8 different 16-byte bank groups (5r mod 8
// is a permutation), so neither ldmatrix nor the cp.async stores conflict.
//
// Requirements (linear.cu checks them, else it takes wmma_gemm_bf16): K and
// lda multiples of 8 and both operands 16-byte aligned, so every 16-byte chunk
// of a row is either wholly inside K or wholly past it (zero-filled).
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/ptx_sm80.cuh"

namespace nemotron {
namespace cuda {
namespace linear_detail {

namespace mg {
constexpr int BM = 128, BN = 128, BK = 32, STAGES = 4, THREADS = 128;
constexpr int LDS = BK + 8;                                  // padded row, in bf16
constexpr int WARPS_N = 2, WM = 64, WN = 64;                 // 2 x 2 warps
constexpr int MT = WM / 16, NT = WN / 8;                     // 4 x 8 mma tiles per warp
constexpr int STAGE_ELEMS = (BM + BN) * LDS;                 // A rows then W rows
constexpr int SMEM_BYTES = STAGES * STAGE_ELEMS * 2;         // 80 KB
constexpr int CHUNKS = (BM + BN) * (BK / 8) / THREADS;       // 16-byte copies per thread per stage: 8
static_assert((BM + BN) * (BK / 8) % THREADS == 0, "whole copies per thread");
static_assert(LDS * 2 % 16 == 0, "ldmatrix and cp.async need 16-byte aligned rows");
}  // namespace mg

// x fp32 [rows, ldx] -> a bf16 [rows, lda], columns k..lda-1 zero. Eight
// columns per thread (one 16-byte store); round to nearest even as WMMA's path does.
__global__ void round_rows_to_bf16(const float* __restrict__ x, int64_t rows, int64_t ldx, int64_t k,
                                   __nv_bfloat16* __restrict__ a, int64_t lda, bool vec_x) {
  const int64_t per_row = lda / 8, total = rows * per_row;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / per_row, c = (i % per_row) * 8;
    const float* p = x + r * ldx + c;
    float f[8];
    if (vec_x && c + 8 <= k) {
      const float4 lo = __ldg(reinterpret_cast<const float4*>(p));
      const float4 hi = __ldg(reinterpret_cast<const float4*>(p) + 1);
      f[0] = lo.x, f[1] = lo.y, f[2] = lo.z, f[3] = lo.w, f[4] = hi.x, f[5] = hi.y, f[6] = hi.z, f[7] = hi.w;
    } else {
#pragma unroll
      for (int e = 0; e < 8; ++e) f[e] = c + e < k ? __ldg(p + e) : 0.f;
    }
    *reinterpret_cast<uint4*>(a + r * lda + c) = make_uint4(ptx::pack_bf16x2(f[0], f[1]), ptx::pack_bf16x2(f[2], f[3]),
                                                            ptx::pack_bf16x2(f[4], f[5]), ptx::pack_bf16x2(f[6], f[7]));
  }
}

// Where a tensor-core GEMM block (mma_gemm_bf16, wgmma_gemm_bf16) stores its
// accumulators: out with the bias added or, under split-K (partial given), its
// split's slice partial[z][M][N] without bias (sum_splits adds it once).
struct TcOutput {
  float* out;
  int64_t ldo;
  const float* bias;
  bool pairs;  // float2 stores: even ldo, 8-byte aligned out
};

__device__ __forceinline__ TcOutput tc_output(float* out, int64_t ldo, const float* bias, float* partial, int64_t M,
                                              int64_t N) {
  if (partial != nullptr) {
    bias = nullptr;
    out = partial + static_cast<int64_t>(blockIdx.z) * M * N;
    ldo = N;
  }
  return TcOutput{out, ldo, bias, (ldo % 2 == 0) && (reinterpret_cast<uintptr_t>(out) & 7) == 0};
}

// Row m, columns n and (when `both`) n + 1: accumulators v0, v1 plus bias.
__device__ __forceinline__ void tc_store_pair(const TcOutput& o, int64_t m, int64_t n, float v0, float v1, bool both) {
  float* p = o.out + m * o.ldo + n;
  v0 += o.bias ? o.bias[n] : 0.f;
  v1 += (o.bias && both) ? o.bias[n + 1] : 0.f;
  if (both && o.pairs) {
    *reinterpret_cast<float2*>(p) = make_float2(v0, v1);
  } else {
    p[0] = v0;
    if (both) p[1] = v1;
  }
}

// Copies 16-byte chunk `kk` (a K offset, a multiple of 8) of stage row `row`
// to `dst`: rows 0..bm-1 of a stage are a's rows m0.., rows bm.. W's rows n0..
// (the layout of both mma_gemm_bf16's and wgmma_gemm_bf16's stages). A chunk
// past M, N or K reads nothing and is zero-filled; its (valid) source address is
// the matrix start.
__device__ __forceinline__ void copy_tile_chunk(void* dst, int row, int bm, int64_t kk,
                                                const __nv_bfloat16* __restrict__ a, int64_t M, int64_t lda,
                                                const __nv_bfloat16* __restrict__ w, int64_t N, int64_t K, int64_t m0,
                                                int64_t n0) {
  const bool is_a = row < bm;
  const int64_t r = is_a ? row : row - bm;
  const bool inside = (is_a ? m0 + r < M : n0 + r < N) && kk < K;
  const __nv_bfloat16* src = is_a ? a + (m0 + r) * lda + kk : w + (n0 + r) * K + kk;
  ptx::cp_async_16(dst, inside ? src : (is_a ? a : w), inside ? 16 : 0);
}

// Issues the copies of k-tile `t` into `stage`: row r < BM of the tile is a's
// row m0 + r, row BM + j is W's row n0 + j; 4 chunks of 8 bf16 per row.
__device__ __forceinline__ void mg_load_stage(__nv_bfloat16* stage, const __nv_bfloat16* __restrict__ a, int64_t M,
                                              int64_t lda, const __nv_bfloat16* __restrict__ w, int64_t N, int64_t K,
                                              int64_t m0, int64_t n0, int64_t t) {
#pragma unroll
  for (int i = 0; i < mg::CHUNKS; ++i) {
    const int idx = threadIdx.x + i * mg::THREADS;
    const int row = idx / (mg::BK / 8), c = (idx % (mg::BK / 8)) * 8;
    copy_tile_chunk(stage + row * mg::LDS + c, row, mg::BM, t * mg::BK + c, a, M, lda, w, N, K, m0, n0);
  }
}

// Grid: x over N in BN tiles, y over M in BM tiles, z over K in splits of
// kt_per_split k-tiles. Unsplit (partial null): out = product + bias. Split
// (split-K, when the x-y grid alone would leave SMs idle: a few rows times a
// narrow W, e.g. out_proj and mlp_down at batched-decode sizes): split z writes
// its partial product, without bias, to partial[z][M][N]; sum_splits adds them
// in split order (deterministic, unlike atomics).
__global__ void __launch_bounds__(mg::THREADS) mma_gemm_bf16(const __nv_bfloat16* __restrict__ a, int64_t M,
                                                              int64_t lda, const __nv_bfloat16* __restrict__ w,
                                                              int64_t N, int64_t K, const float* __restrict__ bias,
                                                              float* __restrict__ out, int64_t ldo,
                                                              int64_t kt_per_split, float* __restrict__ partial) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  __trap();  // cp.async / ldmatrix / bf16 mma need sm_80; linear.cu never launches this on older devices
#else
  extern __shared__ __align__(16) __nv_bfloat16 mg_smem[];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int wm = warp / mg::WARPS_N, wn = warp % mg::WARPS_N;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * mg::BM, n0 = static_cast<int64_t>(blockIdx.x) * mg::BN;
  const int64_t kt0 = static_cast<int64_t>(blockIdx.z) * kt_per_split;
  const int64_t ktiles = min((K + mg::BK - 1) / mg::BK - kt0, kt_per_split);  // this split's k-tiles kt0 + t

  float acc[mg::MT][mg::NT][4];
#pragma unroll
  for (int i = 0; i < mg::MT; ++i)
#pragma unroll
    for (int j = 0; j < mg::NT; ++j)
#pragma unroll
      for (int q = 0; q < 4; ++q) acc[i][j][q] = 0.f;

  // Prologue: k-tiles 0..STAGES-2 in flight, one commit group each (empty
  // groups past the last tile keep the group count, and so the wait below, uniform).
#pragma unroll
  for (int s = 0; s < mg::STAGES - 1; ++s) {
    if (s < ktiles) mg_load_stage(mg_smem + s * mg::STAGE_ELEMS, a, M, lda, w, N, K, m0, n0, kt0 + s);
    ptx::cp_async_commit();
  }

  // This lane's ldmatrix row within a 16-row operand block: lanes 0-15 give
  // rows 0-15 at k 0-7 (A) ... see the per-operand comments below.
  const int a_row = wm * mg::WM + (lane & 15), a_col = (lane >> 4) * 8;
  const int b_row = mg::BM + wn * mg::WN + ((lane >> 4) << 3) + (lane & 7), b_col = ((lane >> 3) & 1) * 8;

  for (int64_t t = 0; t < ktiles; ++t) {
    // Groups committed so far: STAGES-1 + t; tile t is group t, so at most
    // STAGES-2 younger groups may still be in flight. The barrier then makes
    // every thread's copies of tile t visible, and tells that every warp has
    // finished tile t-1, whose stage the prefetch below overwrites.
    ptx::cp_async_wait<mg::STAGES - 2>();
    __syncthreads();
    const int64_t next = t + mg::STAGES - 1;
    if (next < ktiles)
      mg_load_stage(mg_smem + (next % mg::STAGES) * mg::STAGE_ELEMS, a, M, lda, w, N, K, m0, n0, kt0 + next);
    ptx::cp_async_commit();

    const __nv_bfloat16* stage = mg_smem + (t % mg::STAGES) * mg::STAGE_ELEMS;
#pragma unroll
    for (int kk = 0; kk < mg::BK; kk += 16) {
      // A: matrices (rows 0-7, k 0-7), (rows 8-15, k 0-7), (rows 0-7, k 8-15),
      // (rows 8-15, k 8-15) of each 16-row block = a[0..3].
      uint32_t af[mg::MT][4];
#pragma unroll
      for (int i = 0; i < mg::MT; ++i) ptx::ldmatrix_x4(af[i], stage + (a_row + i * 16) * mg::LDS + kk + a_col);
      // W rows are B's columns (k contiguous), so no transpose: matrices
      // (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7), (n 8-15, k 8-15) of
      // each 16-feature block = b[0], b[1] of two n8 tiles.
      uint32_t bfr[mg::NT][2];
#pragma unroll
      for (int j = 0; j < mg::NT; j += 2) {
        uint32_t r[4];
        ptx::ldmatrix_x4(r, stage + (b_row + j * 8) * mg::LDS + kk + b_col);
        bfr[j][0] = r[0], bfr[j][1] = r[1], bfr[j + 1][0] = r[2], bfr[j + 1][1] = r[3];
      }
#pragma unroll
      for (int i = 0; i < mg::MT; ++i)
#pragma unroll
        for (int j = 0; j < mg::NT; ++j) ptx::mma_bf16_16816(acc[i][j], af[i], bfr[j]);
    }
  }

  // Epilogue from registers: d[0], d[1] are (row g, cols 2t, 2t+1), d[2], d[3] row g+8.
  const int g = lane >> 2, tq = lane & 3;
  const TcOutput o = tc_output(out, ldo, bias, partial, M, N);
#pragma unroll
  for (int j = 0; j < mg::NT; ++j) {
    const int64_t n = n0 + wn * mg::WN + j * 8 + 2 * tq;
    if (n >= N) continue;
#pragma unroll
    for (int i = 0; i < mg::MT; ++i)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int64_t m = m0 + wm * mg::WM + i * 16 + g + 8 * h;
        if (m < M) tc_store_pair(o, m, n, acc[i][j][2 * h], acc[i][j][2 * h + 1], n + 1 < N);
      }
  }
#endif
}

// out[m, n] = bias[n] + sum over z of partial[z][m][n], z in order.
__global__ void sum_splits(const float* __restrict__ partial, int splits, int64_t M, int64_t N,
                           const float* __restrict__ bias, float* __restrict__ out, int64_t ldo) {
  const int64_t total = M * N;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t m = i / N, n = i % N;
    float v = 0.f;
    for (int z = 0; z < splits; ++z) v += partial[z * total + i];
    out[m * ldo + n] = v + (bias ? bias[n] : 0.f);
  }
}

}  // namespace linear_detail
}  // namespace cuda
}  // namespace nemotron
