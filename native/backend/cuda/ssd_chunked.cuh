// Pieces shared by the two CUDA Mamba2 scans: the recurrent kernel and the
// dispatcher in ssm_scan.cu, the chunked SSD kernels in ssd_chunked.cu.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/cuda_ops.h"

namespace nemotron {
namespace cuda {

// ScanArgs flattened to plain pointers for the kernel parameter block.
struct ScanParams {
  int64_t heads, head_dim, groups, state;
  const float* x;
  int64_t ldx;
  const float* B;
  const float* C;
  int64_t ldbc;
  const float* dt;
  int64_t lddt;
  const float* A;
  const float* dt_bias;
  const float* D;
  float dt_min, dt_max;
  float* y;
};

// The longest chunk the chunked kernels tile (8 row tiles of 16, one per warp).
constexpr int64_t kMaxChunk = 128;

// dt of one (token, head): softplus(dt_raw + dt_bias) with the identity above
// 20 (spec §2.3 step 4), clamped to time_step_limit. Both scans call this, so
// they see bit-identical dt.
__device__ __forceinline__ float scan_dt(float raw, float bias, float lo, float hi) {
  const float v = raw + bias;
  const float sp = v > 20.0f ? v : log1pf(expf(v));
  return fminf(fmaxf(sp, lo), hi);
}

// The chunked SSD scan (ssd_chunked.cu) of the spans with n >= min_n, in chunks
// of `chunk` (1..kMaxChunk) tokens; shorter spans are left untouched. Needs sm_80+.
void ssd_chunked_scan(const ScanParams& p, int64_t chunk, const DevSpan* spans, int nspans, int64_t max_n,
                      int64_t min_n, cudaStream_t stream);
// The most workspace (stream-ordered pool) one such call of up to max_rows
// packed tokens takes, whatever their split into spans.
size_t ssd_chunked_workspace_bound(const ScanParams& p, int64_t chunk, int64_t max_rows, int64_t min_n);

}  // namespace cuda
}  // namespace nemotron
