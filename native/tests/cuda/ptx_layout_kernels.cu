// The PTX layout probes (ptx_layout_kernels.h). Built by nvcc into the GPU
// tests, and rewritten by cu_to_cpp.py for the CPU emulator's tests.
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>

#include "backend/cuda/ptx_sm80.cuh"
#include "backend/cuda/ptx_sm90.cuh"
#include "ptx_layout_kernels.h"

namespace ptx_layout {
namespace {

// mma.sync m16n8k16 with operands gathered and results scattered by hand, by
// the PTX ISA's fragment table (lane = 4g + t), not through ldmatrix:
// a [16][16] and bt [8][16] (B transposed: row n holds B(., n)) bf16, d [16][8] fp32.
__global__ void mma_kernel(const __nv_bfloat16* a, const __nv_bfloat16* bt, float* d) {
  const int lane = threadIdx.x, g = lane / 4, t = lane % 4;
  auto pair = [](const __nv_bfloat16* p) {
    unsigned short lo, hi;
    memcpy(&lo, p, 2);
    memcpy(&hi, p + 1, 2);
    return static_cast<uint32_t>(lo) | static_cast<uint32_t>(hi) << 16;
  };
  const uint32_t ar[4] = {pair(a + g * 16 + 2 * t), pair(a + (g + 8) * 16 + 2 * t), pair(a + g * 16 + 2 * t + 8),
                          pair(a + (g + 8) * 16 + 2 * t + 8)};
  const uint32_t br[2] = {pair(bt + g * 16 + 2 * t), pair(bt + g * 16 + 2 * t + 8)};
  float acc[4] = {0.5f, 0.5f, 0.5f, 0.5f};
  nemotron::cuda::ptx::mma_bf16_16816(acc, ar, br);
  d[g * 8 + 2 * t] = acc[0];
  d[g * 8 + 2 * t + 1] = acc[1];
  d[(g + 8) * 8 + 2 * t] = acc[2];
  d[(g + 8) * 8 + 2 * t + 1] = acc[3];
}

// Four 8x8 bf16 matrices m [4][8][8] staged in shared memory, loaded by
// ldmatrix.x4 (or .trans); out [32 lanes][4 registers].
__global__ void ldmatrix_kernel(const __nv_bfloat16* m, uint32_t* out, bool trans) {
  __shared__ __align__(16) __nv_bfloat16 tile[4 * 8 * 8];
  for (int i = threadIdx.x; i < 4 * 64; i += 32) tile[i] = m[i];
  __syncwarp();
  const int lane = threadIdx.x;
  const __nv_bfloat16* row = tile + (lane / 8) * 64 + (lane % 8) * 8;  // lanes 8i..8i+7: rows of matrix i
  uint32_t r[4];
  if (trans)
    nemotron::cuda::ptx::ldmatrix_x4_trans(r, row);
  else
    nemotron::cuda::ptx::ldmatrix_x4(r, row);
  for (int i = 0; i < 4; ++i) out[lane * 4 + i] = r[i];
}

// One warpgroup: A [64][64] and B [256][64] bf16 (row-major, K contiguous)
// stored by hand into the 128-byte swizzle (element k of row r at byte
// r*128 + 16*((k/8) xor (r%8)) + 2*(k%8): rows of 8 form 1024-byte atoms),
// multiplied by four m64n256k16 wgmma (K slices 0..3: descriptors advanced by
// 32 bytes), then D [64][256] scattered from the accumulators by the PTX ISA's
// layout (warp w, lane 4g + t: register i is row 16w + g + 8((i/2)%2), column
// 8(i/4) + 2t + i%2), not through the GEMM's own helpers.
__global__ void wgmma_kernel(const __nv_bfloat16* a, const __nv_bfloat16* b, float* d) {
  __shared__ __align__(1024) __nv_bfloat16 sa[64 * 64];
  __shared__ __align__(1024) __nv_bfloat16 sb[256 * 64];
  for (int i = threadIdx.x; i < 64 * 64; i += 128) {
    const int r = i / 64, k = i % 64;
    sa[(r * 128 + 16 * ((k / 8) ^ (r % 8)) + 2 * (k % 8)) / 2] = a[i];
  }
  for (int i = threadIdx.x; i < 256 * 64; i += 128) {
    const int r = i / 64, k = i % 64;
    sb[(r * 128 + 16 * ((k / 8) ^ (r % 8)) + 2 * (k % 8)) / 2] = b[i];
  }
  nemotron::cuda::ptx::fence_proxy_async_shared();
  __syncthreads();
  // Every loop over acc unrolled: the accumulators must stay in registers (an
  // in-flight wgmma writes them; a local-memory copy would be stale).
  float acc[128];
#pragma unroll
  for (int i = 0; i < 128; ++i) acc[i] = 0.25f;
  nemotron::cuda::ptx::wgmma_fence_operands(acc);  // (else the compiler sinks these moves past the fence)
  nemotron::cuda::ptx::wgmma_fence();
#pragma unroll
  for (int ks = 0; ks < 4; ++ks)
    nemotron::cuda::ptx::wgmma_m64n256k16_bf16(acc, nemotron::cuda::ptx::sw128_desc(sa + 16 * ks),
                                               nemotron::cuda::ptx::sw128_desc(sb + 16 * ks));
  nemotron::cuda::ptx::wgmma_commit();
  nemotron::cuda::ptx::wgmma_wait<0>();
  nemotron::cuda::ptx::wgmma_fence_operands(acc);
  const int w = threadIdx.x / 32, g = (threadIdx.x % 32) / 4, t = threadIdx.x % 4;
#pragma unroll
  for (int i = 0; i < 128; ++i) d[(16 * w + g + 8 * ((i / 2) % 2)) * 256 + 8 * (i / 4) + 2 * t + i % 2] = acc[i];
}

}  // namespace

void mma_16x8x16(const __nv_bfloat16* a, const __nv_bfloat16* bt, float* d) { mma_kernel<<<1, 32>>>(a, bt, d); }
void ldmatrix_x4(const __nv_bfloat16* m, uint32_t* out, bool trans) { ldmatrix_kernel<<<1, 32>>>(m, out, trans); }
void wgmma_64x256x64(const __nv_bfloat16* a, const __nv_bfloat16* b, float* d) { wgmma_kernel<<<1, 128>>>(a, b, d); }

}  // namespace ptx_layout
