// The measured phases: prefill at each prompt length, decode at batch 1 after a
// prompt of each context length, and batched decode at each stream count (one
// Engine::decode_sampled call with N items is one step of N streams). Each phase prints
// its rows as it goes; a size that cannot run (past the model's context or the
// free memory) is skipped with the reason, an error is recorded and the run
// goes on.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "bench/e2e/memory_tracker.h"
#include "bench/e2e/options.h"
#include "engine/engine.h"

namespace nemotron {
namespace bench {

struct Outcome {
  std::string status = "ok";  // "ok" | "skipped" | "error"
  std::string reason;
  bool ok() const { return status == "ok"; }
};

struct PrefillResult : Outcome {
  int64_t tokens = 0;
  int reps = 0;
  double ms = 0, tokens_per_s = 0;  // median of the reps
  bool logits_finite = true;
};

struct DecodeResult : Outcome {
  int64_t context = 0;  // prompt tokens before the timed steps
  int steps = 0;
  double prefill_ms = 0;
  double tokens_per_s = 0, ms_per_step = 0, p50_ms = 0, p90_ms = 0;
  bool logits_finite = true;
};

struct StreamsResult : Outcome {
  int64_t streams = 0;
  int steps = 0;
  double aggregate_tokens_per_s = 0, per_stream_tokens_per_s = 0;
  double mean_ms = 0, p50_ms = 0, p90_ms = 0;  // step time = every stream's inter-token latency
  double scaling = 0;                          // aggregate / the 1-stream aggregate (0 without one)
  bool logits_finite = true;
};

struct PhaseContext {
  Engine& engine;
  const BenchOptions& opts;
  MemoryTracker& memory;
  uint64_t decode_weight_bytes = 0;  // for the implied bandwidth of batch-1 decode
  double copy_gbps = 0;
};

std::vector<PrefillResult> run_prefill(PhaseContext& ctx);
std::vector<DecodeResult> run_decode(PhaseContext& ctx);
std::vector<StreamsResult> run_streams(PhaseContext& ctx);

}  // namespace bench
}  // namespace nemotron
