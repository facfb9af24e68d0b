// The work each benchmarked kernel call must do at least, from its shape alone:
// useful FLOPs and compulsory device-memory bytes. Achieved TFLOP/s and GB/s,
// and the % of peak, are these divided by the measured time; they never count
// traffic a kernel adds on its own (re-reads, split-K workspaces), so a kernel
// that wastes bandwidth shows a lower figure, not a higher one.
//
// Conventions:
//   FLOPs: 2 per multiply-add.
//   bytes: bytes read + bytes written, each tensor once (the same convention as
//          the copy yardstick: a copy of N bytes counts 2N). Activations and
//          states are fp32 (4 bytes) in this engine; weights bf16 (2 bytes);
//          KV caches bf16 on CUDA by default (f32 when asked: `kv` below); ids int32. Small per-layer vectors (norm weights, conv
//          weights and bias, A/D/dt_bias) are counted once per call.
#pragma once
#include <cstdint>

#include "backend/cuda/bench_hooks.h"

namespace nemotron {
namespace bench {

// Which peak a kernel's FLOPs are measured against.
enum class FlopKind {
  None,        // memory-bound by construction: only bytes count
  TensorBf16,  // work that runs on bf16 tensor cores at its best (GEMM, attention)
  Fp32,        // fp32 CUDA-core arithmetic (the SSM recurrence)
};

struct Cost {
  double flops = 0;
  FlopKind kind = FlopKind::None;
  double bytes = 0;
};

namespace cost {

inline constexpr cuda::Shape9B S = cuda::kShape9B;
constexpr double F32 = 4, BF16 = 2, I32 = 4;

// out[M, N] = x[M, K] W[N, K]^T: W bf16, x and out fp32.
inline Cost linear(int64_t M, int64_t N, int64_t K) {
  const double m = double(M), n = double(N), k = double(K);
  return {2 * m * n * k, FlopKind::TensorBf16, BF16 * n * k + F32 * m * k + F32 * m * n};
}

// Causal self-attention over T new tokens, no past: QK^T and PV are each
// 2*T*T*d FLOPs per head for the full square, half of it under the causal mask
// (the diagonal counted as half too: the convention FlashAttention and torch
// benchmarks use), so FLOPs = 4*T*T*heads*head_dim / 2.
// Bytes: read q, k, v; write out and the k/v cache rows.
// kv: bytes per cached value (BF16 or F32).
inline Cost attention_prefill(int64_t T, double kv) {
  const double t = double(T), hd = double(S.head_dim), qw = double(S.q_width()), kvw = double(S.kv_width());
  return {4.0 * t * t * double(S.q_heads) * hd / 2.0, FlopKind::TensorBf16,
          F32 * t * (qw + 2 * kvw /*q, new k, v*/ + qw /*out*/) + kv * t * 2 * kvw /*cache append*/};
}

// B sequences decode one token each after L cached: every query head reads
// L+1 keys and values. FLOPs: 4*(L+1)*head_dim per q head (QK^T + PV); memory-
// bound (~1 FLOP per byte), so only the bytes set the bound.
// Bytes per sequence: the L cached K and V rows, q, the new k and v (read, and
// written to the cache), out.
inline Cost attention_decode(int64_t B, int64_t L, double kv) {
  const double b = double(B), l = double(L), qw = double(S.q_width()), kvw = double(S.kv_width());
  return {b * 4.0 * (l + 1) * double(S.q_heads) * double(S.head_dim), FlopKind::TensorBf16,
          b * (kv * (2 * l * kvw + 2 * kvw) + F32 * (qw + 2 * kvw + qw))};
}

// Elements of one sequence's SSM state [heads, head_dim, state].
constexpr double ssm_state_elems() { return double(S.mamba_heads) * double(S.mamba_head_dim) * double(S.ssm_state); }

// Per-token SSM inputs read (x, B, C, raw dt) and outputs written (y), in floats.
constexpr double ssm_token_io() {
  return double(S.d_inner()) + 2.0 * double(S.n_groups) * double(S.ssm_state) + double(S.mamba_heads) +
         double(S.d_inner());
}

// The selective scan over T tokens of one sequence, counted as the recurrence
// S <- exp(dt*A) S + (dt x) B^T ; y = S C + D x: per token and state element one
// multiply (decay), one multiply-add (input) and one multiply-add (output) =
// 5 FLOPs. A chunked (SSD) kernel does more arithmetic for the same result;
// it is still credited with these 5, so the figure is comparable across kernels.
// Bytes: per-token I/O + the state read and written once + A, dt_bias, D.
inline Cost ssm_prefill(int64_t T) {
  const double t = double(T);
  return {5.0 * t * ssm_state_elems(), FlopKind::Fp32,
          F32 * (t * ssm_token_io() + 2 * ssm_state_elems() + 3.0 * double(S.mamba_heads))};
}

// B sequences, one token each: every state is read and written (10.5 MB per
// sequence for the 9B), which is what bounds decode.
inline Cost ssm_decode(int64_t B) {
  const double b = double(B);
  return {5.0 * b * ssm_state_elems(), FlopKind::Fp32,
          F32 * (b * (ssm_token_io() + 2 * ssm_state_elems()) + 3.0 * double(S.mamba_heads))};
}

// Depthwise causal conv (kernel K) + SiLU over conv_dim channels, `seqs`
// sequences of `tokens` tokens: read x, write out; each sequence's [K-1, C]
// state read and written; weight [K, C] and bias [C] once. FLOPs 2*K per output
// (negligible: memory-bound).
inline Cost conv1d(int64_t seqs, int64_t tokens) {
  const double c = double(S.conv_dim()), k = double(S.conv_kernel), rows = double(seqs) * double(tokens);
  return {2 * k * c * rows, FlopKind::None,
          F32 * (2 * rows * c + double(seqs) * 2 * (k - 1) * c + k * c + c)};
}

// Gated RMS norm over M rows of d_inner: read y and z, write out; weight once.
inline Cost gated_rms_norm(int64_t M) {
  const double d = double(S.d_inner());
  return {0, FlopKind::None, F32 * (3 * double(M) * d + d)};
}

// RMS norm over M rows of hidden: read x, write out; weight once.
inline Cost rms_norm(int64_t M) {
  const double d = double(S.hidden);
  return {0, FlopKind::None, F32 * (2 * double(M) * d + d)};
}

// Embedding gather of M ids: read the ids and M bf16 table rows, write M fp32 rows.
inline Cost embed(int64_t M) {
  const double m = double(M), d = double(S.hidden);
  return {0, FlopKind::None, I32 * m + BF16 * m * d + F32 * m * d};
}

// Sampling candidate search over M rows of vocab logits. Greedy: one read of each
// row. Collecting every token: two reads, the compacted write and the bitmask.
inline Cost candidates(int64_t M, bool collect) {
  const double row = double(S.vocab);
  return {0, FlopKind::None, F32 * double(M) * row * (collect ? 3.0 : 1.0) + (collect ? double(M) * row / 8 : 0)};
}

}  // namespace cost
}  // namespace bench
}  // namespace nemotron
