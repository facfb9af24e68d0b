// The CPU implementations of the backend ops, as free functions so the native
// tests can call each one directly against a naive formula. One file per op:
// rms_norm.cpp, gated_rms_norm.cpp, conv1d.cpp, ssd_scan.cpp (chunked prefill),
// ssm_update.cpp (recurrent decode and the token-by-token reference),
// attention.cpp, elementwise.cpp, embedding.cpp, sampling.cpp; linear.h has the matrix products.
// All arithmetic is fp32 (double where cancellation would hurt: cumulative decay sums).
#pragma once
#include <cmath>
#include <vector>

#include "backend/backend.h"
#include "common/thread_pool.h"

namespace nemotron {

void cpu_embed(ThreadPool& pool, const Matrix& table, const int32_t* ids, int64_t n, float* out);
void cpu_rms_norm(ThreadPool& pool, const float* x, int64_t rows, int64_t dim, const float* w, float eps, float* out);
void cpu_gated_rms_norm(ThreadPool& pool, const GatedNormArgs& a, int64_t rows);
void cpu_relu_squared(ThreadPool& pool, float* x, int64_t n);
void cpu_add(ThreadPool& pool, float* h, const float* y, int64_t n);

void cpu_conv1d_silu(ThreadPool& pool, const ConvArgs& a, const std::vector<SeqSpan>& spans);

// Chunked SSD scan (spec §3.3) for spans of any length; spans of one token use
// the recurrent update. Continues from, and updates, each span's SSM state.
void cpu_ssm_scan(ThreadPool& pool, const ScanArgs& a, const std::vector<SeqSpan>& spans);
// The plain recurrence (spec §3.2), one token at a time: the decode path and the
// reference the chunked scan is tested against.
void cpu_ssm_scan_recurrent(ThreadPool& pool, const ScanArgs& a, const std::vector<SeqSpan>& spans);

void cpu_attention(ThreadPool& pool, const AttentionArgs& a, const std::vector<SeqSpan>& spans);

// sampling.cpp: the sampler's adjustments and candidate search on logits rows.
void cpu_edit_logits(float* logits, int64_t vocab, const std::vector<LogitEdit>& edits);
void cpu_candidates(ThreadPool& pool, const float* logits, int64_t vocab, const std::vector<CandidateQuery>& queries,
                    std::vector<RowCandidates>& out);

// Shared scalar helpers.
inline float silu(float x) { return x / (1.0f + std::exp(-x)); }
// softplus as the Mamba kernels compute it: identity above 20 (spec §2.3 step 4).
inline float softplus_mamba(float v) { return v > 20.0f ? v : std::log1p(std::exp(v)); }

}  // namespace nemotron
