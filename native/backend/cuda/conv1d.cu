// Causal depthwise conv1d + SiLU over the Mamba xBC channels: the CUDA twin of
// native/backend/cpu/conv1d.cpp (same math, same state layout [K-1, C] oldest
// first, weight pre-transposed to [K, C] so consecutive threads read consecutive
// channels).
//
// Two launches on one stream:
//   1. conv_out_kernel: one thread per (channel, row) of each span; rows before
//      the span's first row are read from the span's conv state.
//   2. conv_state_kernel: one thread per (span, channel) shifts the state to the
//      last K-1 inputs.
// The split is what keeps (1) free of races: its threads for later rows would
// otherwise read state rows that another thread already overwrote. Stream order
// guarantees every read of the old state has finished before (2) writes.
#include <string>

#include "backend/cuda/cuda_ops.h"
#include "common/error.h"

namespace nemotron {
namespace cuda {
namespace {

constexpr int kConvThreads = 256;
// grid.y is capped (65535); rows beyond it are covered by a grid-stride loop.
constexpr int64_t kMaxGridY = 65535;

__device__ __forceinline__ float silu_f(float v) { return v / (1.0f + expf(-v)); }

__global__ void conv_out_kernel(const float* __restrict__ x, int64_t ldx, const float* __restrict__ w,
                                const float* __restrict__ bias, float* __restrict__ out, int64_t C, int64_t K,
                                const DevSpan* __restrict__ spans) {
  const DevSpan sp = spans[blockIdx.z];
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  const int64_t S = K - 1;
  const float b = bias ? bias[c] : 0.0f;
  const float* xs = x + sp.row0 * ldx;
  for (int64_t t = blockIdx.y; t < sp.n; t += gridDim.y) {
    float acc = b;
    for (int64_t k = 0; k < K; ++k) {
      const int64_t i = t - S + k;  // input row; < 0 reaches into the state
      const float v = i >= 0 ? xs[i * ldx + c] : sp.conv[(S + i) * C + c];
      acc = fmaf(w[k * C + c], v, acc);
    }
    out[(sp.row0 + t) * C + c] = silu_f(acc);
  }
}

// New state = the last S rows of [old state ; x]. One thread owns one channel of
// one span and walks the rows oldest first: row j's source (state row n + j or an
// x row) is never a row this thread already overwrote, as in the CPU twin.
__global__ void conv_state_kernel(const float* __restrict__ x, int64_t ldx, int64_t C, int64_t K,
                                  const DevSpan* __restrict__ spans) {
  const DevSpan sp = spans[blockIdx.y];
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C || sp.n <= 0) return;
  const int64_t S = K - 1;
  const float* xs = x + sp.row0 * ldx;
  for (int64_t j = 0; j < S; ++j) {
    const int64_t i = sp.n - S + j;
    const float v = i >= 0 ? xs[i * ldx + c] : sp.conv[(S + i) * C + c];
    sp.conv[j * C + c] = v;
  }
}

}  // namespace

void conv1d_silu(const ConvArgs& a, const DevSpan* spans, int nspans, int64_t max_n, cudaStream_t stream) {
  if (nspans <= 0 || max_n <= 0 || a.channels <= 0) return;
  if (a.kernel < 1) fail(ErrorCode::Internal, "conv1d_silu: kernel size < 1");
  if (nspans > 65535) fail(ErrorCode::Internal, "conv1d_silu: too many spans in one call");
  const unsigned cblocks = static_cast<unsigned>((a.channels + kConvThreads - 1) / kConvThreads);
  const unsigned rows = static_cast<unsigned>(max_n < kMaxGridY ? max_n : kMaxGridY);
  conv_out_kernel<<<dim3(cblocks, rows, static_cast<unsigned>(nspans)), kConvThreads, 0, stream>>>(
      a.x, a.ldx, a.weight.data, a.bias.data, a.out, a.channels, a.kernel, spans);
  cuda::check(cudaGetLastError(), "conv1d_silu: output kernel launch");
  if (a.kernel > 1) {
    conv_state_kernel<<<dim3(cblocks, static_cast<unsigned>(nspans)), kConvThreads, 0, stream>>>(
        a.x, a.ldx, a.channels, a.kernel, spans);
    cuda::check(cudaGetLastError(), "conv1d_silu: state kernel launch");
  }
}

}  // namespace cuda
}  // namespace nemotron
