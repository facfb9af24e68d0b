// The benchmark rows: every CUDA kernel at the 9B's shapes, as (name, shape,
// cost, a function that times it). Names are the join key with the PyTorch
// baseline (scripts/torch-baselines.py writes the same names):
//   linear.<matrix>.M<rows>    attn.prefill.T<tokens>    attn.decode.B<seqs>.L<context>
//   ssm.prefill.T<tokens>      ssm.decode.B<seqs>        conv.prefill.T<tokens>  conv.decode.B<seqs>
//   rms_norm.M<rows>           gated_norm.M<rows>        embed.M<tokens>
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cost_model.h"

namespace nemotron {
namespace bench {

// The acceptance targets, checked in the summary.
enum class Target {
  None,
  GemvOfCopy,    // decode GEMV >= 85% of the measured copy bandwidth
  GemmOfCublas,  // prefill GEMM >= 75% of cuBLAS on the same shape
  AttnOfSdpa,    // causal prefill attention >= 80% of torch SDPA at 8K
};

struct Case {
  std::string group;  // section heading
  std::string name;
  std::string shape;  // for people
  Cost cost;
  double extra_bytes = 0;  // device memory the hook needs beyond cost.bytes (e.g. the embed table)
  std::function<double(int iters)> run;  // mean ms per call over `iters` timed calls
  Target target = Target::None;
};

// quick: fewer shapes (the --quick run must stay under a minute on an H100).
std::vector<Case> make_cases(bool quick);

}  // namespace bench
}  // namespace nemotron
