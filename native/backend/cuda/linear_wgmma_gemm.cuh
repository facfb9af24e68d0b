// The Hopper (sm_90a) prefill GEMM of nemotron::cuda::linear for bf16 weights:
//   out[m, n] = sum_k a[m, k] * W[n, k] + bias[n]
// with a = x already rounded to bf16 (round_rows_to_bf16, linear_mma_gemm.cuh),
// W [N, K] bf16 row-major, fp32 accumulation and output. Same contract, same
// split-K partials and the same requirements as mma_gemm_bf16 (K and lda
// multiples of 8, operands 16-byte aligned), so linear.cu plans both alike.
//
// Why a third tensor-core GEMM: on an H100, mma.sync reaches well under half of
// the tensor cores' rate; only wgmma (a warpgroup's 64 x 256 x 16 product, its
// operands read from shared memory by the tensor cores themselves, running
// asynchronously while the warps issue the next loads) gets near it, and it
// exists only in sm_90a code (ptx_sm90.cuh).
//
// Tiling: block 128 x 256 (rows x features), k-tile 64 (one 128-byte row of
// bf16 per tile row: the 128B-swizzle layout wgmma reads without bank
// conflicts). Two warpgroups, each the block's 64-row half times all 256
// features: one m64n256k16 per 16 of K, 128 fp32 accumulators per thread.
// 4 shared stages of 48 KB (A 16 KB + W 32 KB), filled by cp.async with the
// swizzle applied by hand (chunk c of row r at c ^ (r % 8)): tiles t+1 and t+2
// load while tile t multiplies and tile t-1's wgmma may still run (each
// warpgroup keeps one group in flight: wgmma_wait<1>), so the stage a prefetch
// overwrites is the one tile t-2 used, finished by then. TMA would take the
// copies off the warps; cp.async keeps the kernel runnable on the emulator
// (the speed is a GPU measurement: bench rows linear.*, NEMOTRON_GEMM=mma for the A/B).
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/linear_mma_gemm.cuh"  // copy_tile_chunk, tc_output / tc_store_pair
#include "backend/cuda/ptx_sm80.cuh"
#include "backend/cuda/ptx_sm90.cuh"

namespace nemotron {
namespace cuda {
namespace linear_detail {

namespace hg {
constexpr int BM = 128, BN = 256, BK = 64, STAGES = 4, THREADS = 256;
constexpr int PREFETCH = STAGES - 2;                        // k-tiles loading ahead of the one multiplied
constexpr int A_BYTES = BM * BK * 2, B_BYTES = BN * BK * 2;  // 16 KB + 32 KB per stage
constexpr int STAGE_BYTES = A_BYTES + B_BYTES;
// The swizzle atoms need 1024-byte aligned shared addresses; dynamic shared
// memory starts 16-byte aligned, so up to 1008 bytes go to aligning it.
constexpr int SMEM_BYTES = STAGES * STAGE_BYTES + 1008;     // 193 KB: fits sm_90's 227 KB opt-in
constexpr int CHUNKS = (BM + BN) * (BK / 8) / THREADS;      // 16-byte copies per thread per stage: 12
static_assert((BM + BN) * (BK / 8) % THREADS == 0, "whole copies per thread");
static_assert(BK * 2 == 128, "one 128-byte swizzle row per tile row");
static_assert(A_BYTES % 1024 == 0 && STAGE_BYTES % 1024 == 0, "every tile starts a swizzle atom");
}  // namespace hg

// Issues the copies of k-tile `t` into `stage` (1024-byte aligned): tile row
// r < BM is a's row m0 + r (A part), row BM + j is W's row n0 + j (B part,
// after A_BYTES); each row's 8 chunks at their swizzled positions.
__device__ __forceinline__ void hg_load_stage(uint8_t* stage, const __nv_bfloat16* __restrict__ a, int64_t M,
                                              int64_t lda, const __nv_bfloat16* __restrict__ w, int64_t N, int64_t K,
                                              int64_t m0, int64_t n0, int64_t t) {
#pragma unroll
  for (int i = 0; i < hg::CHUNKS; ++i) {
    const int idx = threadIdx.x + i * hg::THREADS;
    const int row = idx / (hg::BK / 8), c = idx % (hg::BK / 8);
    const bool is_a = row < hg::BM;
    uint8_t* dst = stage + (is_a ? 0 : hg::A_BYTES) + ptx::sw128_offset(is_a ? row : row - hg::BM, c);
    copy_tile_chunk(dst, row, hg::BM, t * hg::BK + c * 8, a, M, lda, w, N, K, m0, n0);
  }
}

// Grid and split-K exactly as mma_gemm_bf16: x over N in BN tiles, y over M in
// BM tiles, z over K in splits of kt_per_split k-tiles; a split writes its
// partial product (no bias) to partial[z][M][N] for sum_splits.
__global__ void __launch_bounds__(hg::THREADS) wgmma_gemm_bf16(const __nv_bfloat16* __restrict__ a, int64_t M,
                                                                int64_t lda, const __nv_bfloat16* __restrict__ w,
                                                                int64_t N, int64_t K, const float* __restrict__ bias,
                                                                float* __restrict__ out, int64_t ldo,
                                                                int64_t kt_per_split, float* __restrict__ partial) {
#if defined(__CUDA_ARCH__) && !NEMOTRON_PTX_WGMMA
  __trap();  // built without sm_90a code for this device: linear.cu never launches it there
#else
  extern __shared__ __align__(16) uint8_t hg_smem_raw[];
  uint8_t* smem = hg_smem_raw + ((1024u - (ptx::shared_address_of(hg_smem_raw) & 1023u)) & 1023u);
  const int wg = threadIdx.x / 128;  // this warpgroup's 64-row half of the block tile
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * hg::BM, n0 = static_cast<int64_t>(blockIdx.x) * hg::BN;
  const int64_t kt0 = static_cast<int64_t>(blockIdx.z) * kt_per_split;
  const int64_t ktiles = min((K + hg::BK - 1) / hg::BK - kt0, kt_per_split);

  float acc[128];
#pragma unroll
  for (int i = 0; i < 128; ++i) acc[i] = 0.f;

  // Prologue: k-tiles 0..PREFETCH-1 in flight, one commit group each (empty
  // groups past the last tile keep the group count, and the wait below, uniform).
#pragma unroll
  for (int s = 0; s < hg::PREFETCH; ++s) {
    if (s < ktiles) hg_load_stage(smem + s * hg::STAGE_BYTES, a, M, lda, w, N, K, m0, n0, kt0 + s);
    ptx::cp_async_commit();
  }

  for (int64_t t = 0; t < ktiles; ++t) {
    // Groups committed: PREFETCH + t; tile t is group t, so PREFETCH-1 younger
    // ones may stay in flight. The proxy fence hands this thread's landed
    // copies to the async proxy wgmma reads through; the barrier then makes
    // every thread's copies of tile t visible, and tells that both warpgroups
    // passed their wait for tile t-2's wgmma (the end of iteration t-1), whose
    // stage the prefetch below overwrites.
    ptx::cp_async_wait<hg::PREFETCH - 1>();
    ptx::fence_proxy_async_shared();
    __syncthreads();
    const int64_t next = t + hg::PREFETCH;
    if (next < ktiles)
      hg_load_stage(smem + (next % hg::STAGES) * hg::STAGE_BYTES, a, M, lda, w, N, K, m0, n0, kt0 + next);
    ptx::cp_async_commit();

    const uint8_t* stage = smem + (t % hg::STAGES) * hg::STAGE_BYTES;
    const uint8_t* a_tile = stage + wg * 64 * 128;  // this warpgroup's 64 rows: 8 atoms
    const uint8_t* b_tile = stage + hg::A_BYTES;
    ptx::wgmma_fence_operands(acc);
    ptx::wgmma_fence();
#pragma unroll
    for (int ks = 0; ks < hg::BK / 16; ++ks)
      ptx::wgmma_m64n256k16_bf16(acc, ptx::sw128_desc(a_tile + 32 * ks), ptx::sw128_desc(b_tile + 32 * ks));
    ptx::wgmma_commit();
    ptx::wgmma_wait<1>();  // tile t-1's products done; tile t's may still run
    ptx::wgmma_fence_operands(acc);
  }
  ptx::wgmma_wait<0>();
  ptx::wgmma_fence_operands(acc);  // the epilogue's reads stay after the last wait

  // Epilogue from registers (ptx_sm90.cuh's accumulator layout): warp w of the
  // warpgroup holds rows 16w + g and 16w + g + 8; d[4j..4j+3] are columns 8j + 2t, +1.
  const int warp = (threadIdx.x / 32) % 4, lane = threadIdx.x % 32, g = lane / 4, tq = lane % 4;
  const TcOutput o = tc_output(out, ldo, bias, partial, M, N);
#pragma unroll
  for (int j = 0; j < hg::BN / 8; ++j) {
    const int64_t n = n0 + 8 * j + 2 * tq;
    if (n >= N) continue;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int64_t m = m0 + 64 * wg + 16 * warp + g + 8 * h;
      if (m < M) tc_store_pair(o, m, n, acc[4 * j + 2 * h], acc[4 * j + 2 * h + 1], n + 1 < N);
    }
  }
#endif
}

}  // namespace linear_detail
}  // namespace cuda
}  // namespace nemotron
