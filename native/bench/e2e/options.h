// Command line of nemotron_bench_e2e. Lengths left unset get defaults that
// depend on the device (resolve_defaults): the GPU sizes on CUDA, small
// ones on the CPU so a run there takes seconds, not hours.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace nemotron {
namespace bench {

struct BenchOptions {
  std::string preset;     // "" = nano-9b-v2 on CUDA, bench-mid on the CPU
  std::string model_dir;  // --model: benchmark this checkpoint instead of a random one
  std::string dir;        // --dir: where the random checkpoint lives ("" = /tmp/nemotron-random-<preset>)
  std::string device = "auto";
  std::string kv_cache = "auto";  // the engine's KV cache type (auto: bf16 on CUDA, f32 on the CPU)
  std::vector<int64_t> prefill, decode_context, streams;  // empty = device default
  int decode_steps = 0;                                   // 0 = device default
  int warmup_steps = 2;
  int64_t stream_prompt = 16;  // prompt tokens of each stream in the batched phase
  double temperature = 0;      // decode sampling: 0 = greedy (argmax only); else with top-p 0.95 (candidate search)
  int64_t max_batch_tokens = 512;  // the engine's (and loadModel's) default
  int threads = 0;                 // CPU threads, 0 = all cores
  uint64_t seed = 1234;
  bool quick = false;
  std::string json;
  std::vector<std::string> defaulted;  // which lists were filled in by resolve_defaults
};

// Parses argv. Returns false after printing the problem (or --help) to stderr;
// *exit_code is then what main should return.
bool parse_options(int argc, char** argv, BenchOptions* o, int* exit_code);

// Fills the lists left empty with the defaults for `device` ("cuda" | "cpu").
void resolve_defaults(BenchOptions* o, const std::string& device);

std::string join_lengths(const std::vector<int64_t>& v);  // "1024,8192"

}  // namespace bench
}  // namespace nemotron
