// Token sampling on the native side, for batched decode: after a forward pass
// the worker thread samples every row that asked for it, so JS receives one
// token id per stream instead of a [vocab] row of logits.
//
// The semantics are EXACTLY those of lib/chat/sampling.ts (Sampler.sample):
// penalties -> bias -> mask -> temperature -> candidate floor -> top-k -> top-p
// -> min-p -> one seeded draw (none at temperature 0), with the same float32
// rounding of adjusted logits, the same quickselect (hence the same candidate
// order for the draw) and the RNG of lib/chat/rng.ts ported bit for bit. A
// sequence can therefore switch between the JS and the native path mid-stream
// and draw the same tokens, as long as the RNG state travels with it.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "backend/backend.h"

namespace nemotron {

class ThreadPool;

// xoshiro128** state (lib/chat/rng.ts: s0..s3 as unsigned 32-bit words).
struct RngState {
  uint32_t s[4] = {0, 0, 0, 0};
};

// lib/chat/rng.ts's Rng: same seeding (splitmix32), same draws.
class Rng {
 public:
  explicit Rng(const RngState& state) : st_(state) {}
  static RngState seeded(uint32_t seed);
  // Uniform in [0, 1): a 32-bit output divided by 2^32.
  double next();
  const RngState& state() const { return st_; }

 private:
  RngState st_;
};

// One row's sampling options (lib/chat/sampling.ts SamplingOptions after defaults).
struct SamplingParams {
  double temperature = 1;  // 0 = greedy
  int64_t top_k = 0;       // 0 = off
  double top_p = 1;        // 1 = off
  double min_p = 0;        // 0 = off
  double repetition_penalty = 1;
  double presence_penalty = 0;
  double frequency_penalty = 0;
  int64_t penalty_window = 256;  // the last N of `history` count (0 = all)
  // Tokens generated so far (penalties only).
  std::vector<int32_t> history;
  // Added to the logits, in this order (the JS Sampler's Object.entries order).
  std::vector<std::pair<int32_t, double>> bias;
  // Banned ids. `has_mask` mirrors JS `mask !== undefined`; an empty mask bans nothing.
  std::vector<int32_t> mask;
  bool has_mask = false;
  // The draw's RNG; advanced by one draw per sampled token (none when greedy).
  RngState rng;
};

// Samples one token from `logits` ([vocab]; not modified). Advances p.rng on a
// draw. Throws nemotron::Error (InvalidArgument) when every token is masked,
// leaving p.rng unchanged, as the JS Sampler does.
int32_t sample_token(const float* logits, int64_t vocab, SamplingParams& p);

// One row of a batch to sample: logits row `row` of a [rows, vocab] array.
struct SampleJob {
  int64_t row = 0;
  SamplingParams params;  // params.rng is updated in place
  int32_t id = -1;        // the sampled token, or -1 with `error` set
  std::string error;
};

// Samples every job, in parallel over the pool's threads when one is given.
// A job that cannot be sampled gets its error; the others are unaffected.
void sample_rows(const float* logits, int64_t vocab, std::vector<SampleJob>& jobs, ThreadPool* pool);

// ---- sampling where the logits are (Engine::decode_sampled): the backend
// applies the edits and finds the candidates next to the logits, so only the
// candidates cross to the host; the result is sample_token's, bit for bit.

// Appends the edits that turn row `row` of raw logits into the adjusted logits
// sample_token would use (at most one edit per token). Returns false when the
// adjustments cannot be written as one edit per token (a token twice in the
// bias list): sample that row from its full logits with sample_token instead.
bool logit_edits(const SamplingParams& p, int32_t row, int64_t vocab, std::vector<LogitEdit>& out);
// What to ask the backend for row `row` (after its edits).
CandidateQuery candidate_query(const SamplingParams& p, int64_t row);
// Finishes the row from the backend's answer exactly as sample_token finishes
// it from the full row (same id, same RNG advance, same errors).
int32_t sample_from_candidates(const RowCandidates& c, int64_t vocab, SamplingParams& p);

// Samples every job from row jobs[j].row of `logits` ([rows, vocab], in the
// backend's memory) where the logits are: the same ids, RNG advances and
// errors as sample_rows on a host copy, but only candidates cross to the host.
// The jobs' rows are overwritten. Throws InvalidArgument (before touching
// anything) when a job's row is outside [0, rows) or two jobs share a row.
void sample_rows_in(Backend& backend, float* logits, int64_t rows, int64_t vocab, std::vector<SampleJob>& jobs,
                    ThreadPool* pool);
// False when NEMOTRON_BACKEND_SAMPLING=0: sample_rows_in then copies each row to
// the host and samples it there (a switch to rule the backend's kernels out).
bool backend_sampling_enabled();
// The argument check of sample_rows_in, for callers that must fail before a forward pass.
void check_sample_jobs(const std::vector<SampleJob>& jobs, int64_t rows);

// @internal The candidate set of a non-greedy draw, in draw order, with
// unnormalised weights (lib/chat/sampling.ts Sampler.candidates). For tests.
void sample_candidates(const float* logits, int64_t vocab, const SamplingParams& p, std::vector<int32_t>& ids,
                       std::vector<double>& weights);

// exp(x) computed exactly as V8's Math.exp (fdlibm's algorithm), so candidate
// weights match the JS Sampler's to the last bit (the C library's exp differs in
// the last ulp for ~10% of inputs, which would shift draws at boundaries).
double js_exp(double x);

// x[i] = js_exp(x[i]) for n values; four at a time where the CPU has AVX2, with
// the same bits (the candidate weights of a flat 131k row are 131k exps).
void js_exp_in_place(double* x, int64_t n);

}  // namespace nemotron
