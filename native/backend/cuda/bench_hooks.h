// Timing hooks for the CUDA kernels that have no hook of their own (linear,
// attention prefill and the prefill scan have theirs: linear_bench.h,
// attention_bench.h, mamba_bench.h), plus the device-to-device copy that every
// bandwidth figure is quoted against. Defined in bench_hooks.cu; callable from
// a .cpp benchmark without CUDA headers.
//
// Every hook: random data (never zeros: zeros can time faster), warm-up launches,
// then `iters` back-to-back launches between two cudaEvents on a private stream;
// returns the mean milliseconds per launch. When one call's working set would fit
// in L2, `slots` copies of all its buffers (covering ~3x L2) are cycled so that
// bandwidth figures are from device memory, not the cache. Shapes are the 9B's
// (kShape9B below). Throws nemotron::Error on any CUDA failure (OutOfMemory when
// an allocation fails, Internal otherwise).
#pragma once
#include <cstdint>

#include "common/dtype.h"

namespace nemotron {
namespace cuda {

// Nemotron-Nano-9B-v2 dimensions, shared by the hooks and the benchmark's cost model.
struct Shape9B {
  int64_t hidden = 4480;
  int64_t vocab = 131072;
  int64_t mlp_inner = 15680;
  // Mamba2
  int64_t mamba_heads = 128, mamba_head_dim = 80, n_groups = 8, ssm_state = 128, chunk = 128, conv_kernel = 4;
  constexpr int64_t d_inner() const { return mamba_heads * mamba_head_dim; }          // 10240
  constexpr int64_t conv_dim() const { return d_inner() + 2 * n_groups * ssm_state; }  // 12288
  constexpr int64_t in_proj_rows() const { return 2 * d_inner() + 2 * n_groups * ssm_state + mamba_heads; }  // 22656
  constexpr int64_t norm_group() const { return d_inner() / n_groups; }                // 1280
  // attention
  int64_t q_heads = 40, kv_heads = 8, head_dim = 128;
  constexpr int64_t q_width() const { return q_heads * head_dim; }    // 5120
  constexpr int64_t kv_width() const { return kv_heads * head_dim; }  // 1024
};
inline constexpr Shape9B kShape9B{};

// cudaMemcpyAsync device-to-device of `bytes` bytes (src and dst distinct).
double cuda_copy_time_ms(int64_t bytes, int iters);

// conv1d_silu over `seqs` sequences of `tokens` new tokens each, each with its
// own conv state: prefill is (1, T), decode is (B, 1). Channels conv_dim, kernel 4,
// with bias; inputs contiguous [rows, conv_dim] (the model reads them at row
// stride in_proj_rows; each row's 48 KB is contiguous either way).
double cuda_conv1d_time_ms(int64_t seqs, int64_t tokens, int iters);

// The decode SSM state update: ssm_scan with `seqs` spans of one token each, each
// with its own [heads, head_dim, state] fp32 state (read and written every call).
double cuda_ssm_decode_time_ms(int64_t seqs, int iters);

// Attention decode: `seqs` sequences of one new token each after `context` cached
// tokens (KV caches of their own, of kv_dtype: F32 or BF16), cache append included.
double cuda_attention_decode_time_ms(int64_t seqs, int64_t context, DType kv_dtype, int iters);

// gated_rms_norm over `rows` rows of d_inner (group norm_group), z contiguous.
double cuda_gated_rms_norm_time_ms(int64_t rows, int iters);

// rms_norm over `rows` rows of hidden.
double cuda_rms_norm_time_ms(int64_t rows, int iters);

// embed of `tokens` random ids from a [vocab, hidden] bf16 table.
double cuda_embed_time_ms(int64_t tokens, int iters);

// The sampling candidate search over `rows` rows of vocab logits: `collect`
// false is a greedy step (max + argmax: one read of each row); true keeps every
// token (logits within 20.7 of the max, i.e. temperature 1 on a flat row: the
// worst case: a second read, the in-place compaction and the id bitmask).
double cuda_candidates_time_ms(int64_t rows, bool collect, int iters);

}  // namespace cuda
}  // namespace nemotron
