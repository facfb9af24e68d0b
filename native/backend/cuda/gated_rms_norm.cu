// The Mamba2 output norm: the CUDA twin of native/backend/cpu/gated_rms_norm.cpp.
// v = y * silu(z); each group of group_size channels is RMS-normalised on its
// own, then multiplied by weight. One block per (row, group): the group's sum of
// squares is a block reduction, and every element is gated, stored and scaled
// by the same thread, so out may alias y (y[i] is read only before out[i] is written).
#include <string>

#include "backend/cuda/cuda_ops.h"
#include "common/error.h"

namespace nemotron {
namespace cuda {
namespace {

constexpr int kNormThreads = 256;

__global__ void gated_rms_norm_kernel(const float* y, const float* __restrict__ z, int64_t ldz, int64_t dim,
                                      int64_t group_size, const float* __restrict__ w, float eps, float* out) {
  const int64_t groups = dim / group_size;
  const int64_t r = blockIdx.x / groups, g = blockIdx.x % groups;
  const int64_t c0 = g * group_size;
  const float* yr = y + r * dim + c0;
  const float* zr = z + r * ldz + c0;
  float* o = out + r * dim + c0;

  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < group_size; i += blockDim.x) {
    const float zv = zr[i];
    const float v = yr[i] * (zv / (1.0f + expf(-zv)));
    o[i] = v;
    ss = fmaf(v, v, ss);
  }
  // Block sum: warp shuffles, then the warps' partial sums through shared memory.
  __shared__ float warp_sums[kNormThreads / 32];
  for (int off = 16; off > 0; off >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, off);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) warp_sums[warp] = ss;
  __syncthreads();
  if (warp == 0) {
    float v = lane < static_cast<int>(blockDim.x / 32) ? warp_sums[lane] : 0.0f;
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    if (lane == 0) warp_sums[0] = v;
  }
  __syncthreads();
  const float scale = rsqrtf(warp_sums[0] / static_cast<float>(group_size) + eps);
  const float* wg = w + c0;
  for (int64_t i = threadIdx.x; i < group_size; i += blockDim.x) o[i] = o[i] * scale * wg[i];
}

}  // namespace

void gated_rms_norm(const GatedNormArgs& a, int64_t rows, cudaStream_t stream) {
  if (rows <= 0 || a.dim <= 0) return;
  if (a.group_size <= 0 || a.dim % a.group_size != 0)
    fail(ErrorCode::Internal, "gated_rms_norm: dim is not a multiple of group_size");
  const int64_t blocks = rows * (a.dim / a.group_size);
  if (blocks > 0x7fffffff) fail(ErrorCode::Internal, "gated_rms_norm: too many rows");
  gated_rms_norm_kernel<<<static_cast<unsigned>(blocks), kNormThreads, 0, stream>>>(
      a.y, a.z, a.ldz, a.dim, a.group_size, a.weight.data, a.eps, a.out);
  cuda::check(cudaGetLastError(), "gated_rms_norm: kernel launch");
}

}  // namespace cuda
}  // namespace nemotron
