// The CUDA kernels behind CudaBackend, as launch functions with the same names
// as the CPU ops (native/backend/cpu/cpu_ops.h), so each kernel, its CPU twin,
// its test (native/cuda_tests/) and its benchmark are found by name.
// Every pointer is device memory unless named host_*. All launches go on
// `stream`; none synchronises. Activations are fp32; weights bf16/f16/f32 as stored.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "backend/backend.h"

namespace nemotron {
namespace cuda {

// A sequence's slice of a batched op, flattened for the device: row range of
// the packed activations, tokens already absorbed, and that layer's state.
struct DevSpan {
  int64_t row0, n, past;
  float* conv;          // [K-1, conv_dim] (Mamba layers)
  float* ssm;           // [heads, head_dim, state] (Mamba layers)
  void* k;              // [capacity, kv_heads*head_dim] (attention layers), AttentionArgs::kv_dtype
  void* v;
  int64_t kv_capacity;
};

// ---- row-wise ops
void embed(const Matrix& table, const int32_t* ids, int64_t n, float* out, cudaStream_t stream);
void rms_norm(const float* x, int64_t rows, int64_t dim, const float* w, float eps, float* out, cudaStream_t stream);
void gated_rms_norm(const GatedNormArgs& a, int64_t rows, cudaStream_t stream);
void relu_squared(float* x, int64_t n, cudaStream_t stream);
void add(float* h, const float* y, int64_t n, cudaStream_t stream);

// out[r, j] = sum_k x[r, k] * W[j, k] + bias[j]. bf16 W uses tensor cores (x is
// rounded to bf16 on load, fp32 accumulation); few rows use a bandwidth-bound GEMV.
// The mma.sync GEMM's scratch (x rounded to bf16, split-K partials) goes to
// `workspace` when given (at least linear_workspace_bytes; CUDA graphs: no
// allocation inside a capture), else to memory from the stream-ordered pool.
void linear(const float* x, int64_t rows, int64_t ldx, const Matrix& w, const float* bias, float* out, int64_t ldo,
            cudaStream_t stream, void* workspace = nullptr, size_t workspace_bytes = 0);
size_t linear_workspace_bytes(int64_t rows, const Matrix& w);
// The most linear_workspace_bytes can be for any row count up to max_rows.
size_t linear_workspace_bound(int64_t max_rows, const Matrix& w);
// Whether the Hopper GEMM (wgmma) runs on the current device: compute capability
// 9.0 and this binary built with sm_90a code (NEMOTRON_CUDA_ARCHS containing 90a).
bool wgmma_gemm_available();
// The kernel that call would run: "gemv", "mma_gemm_bf16" (+ " split-k"),
// "wmma_gemm_bf16" or "simt_gemm" (tests and benchmarks say which path they measured).
const char* linear_kernel_name(int64_t rows, const Matrix& w, cudaStream_t stream, bool with_workspace = false);

// ---- ops with per-sequence state; `spans` points to `nspans` DevSpans in device memory
void conv1d_silu(const ConvArgs& a, const DevSpan* spans, int nspans, int64_t max_n, cudaStream_t stream);
void ssm_scan(const ScanArgs& a, const DevSpan* spans, int nspans, int64_t max_n, cudaStream_t stream);
// The most pool memory one ssm_scan call of up to max_rows packed tokens takes
// (the chunked form's chunk states; the recurrent form takes none).
size_t ssm_scan_workspace_bound(const ScanArgs& a, int64_t max_rows);
// max_keys (>= every span's past + n; a larger value only changes how the keys
// are split) sets the split-KV plan. The splits' partial results go to
// `workspace` when given (at least attention_workspace_bytes), else to memory
// taken from the stream-ordered pool for the call.
void attention(const AttentionArgs& a, const DevSpan* spans, int nspans, int64_t max_n, int64_t max_keys,
               cudaStream_t stream, float* workspace = nullptr, size_t workspace_bytes = 0);
size_t attention_workspace_bytes(const AttentionArgs& a, int nspans, int64_t max_n, int64_t max_keys);
// The most attention_workspace_bytes can be for these heads on this device, at
// any batch shape and context length (the splits only fill idle SMs).
size_t attention_workspace_bound(const AttentionArgs& a);
// Whether that call runs on bf16 tensor cores (bf16 cache, prefill-sized row
// tiles, head_dim <= 128, sm_80+, NEMOTRON_ATTN_TC not 0): Q and the softmax
// weights are then rounded to bf16, so results match the CPU twin to ~1e-2, not 1e-4.
bool attention_uses_tensor_cores(const AttentionArgs& a, int nspans, int64_t max_n, int64_t max_keys);

// ---- sampling (sampling.cu; CPU twin: native/backend/cpu/sampling.cpp)
// Applies n edits (device memory; at most one per (row, token)).
void edit_logits(float* logits, int64_t vocab, const LogitEdit* edits, int n, cudaStream_t stream);

struct DevCandidateQuery {
  int64_t row;
  double floor_offset;
  int32_t collect;
  int32_t pad;
};
struct CandidateHead {
  float max;
  int32_t argmax;
  int32_t count;  // candidates found (0 unless collected)
  int32_t pad;
};
inline int64_t candidate_mask_words(int64_t vocab) { return (vocab + 31) / 32; }
// Per query q (one block each): heads[q] = max, first argmax, candidate count;
// when collecting, bit i of masks[q * mask_words + i / 32] says whether token i
// is a candidate, and the candidates' logits are moved, in id order, to the
// front of their row (the row is overwritten).
void candidates(float* logits, int64_t vocab, const DevCandidateQuery* queries, int nq, CandidateHead* heads,
                uint32_t* masks, cudaStream_t stream);

// Throws nemotron::Error(Internal) naming `what` when a CUDA call failed.
void check(cudaError_t err, const char* what);

}  // namespace cuda
}  // namespace nemotron
