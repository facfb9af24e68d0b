// The end of a run: the summary against the targets (printed with the
// achieved percentages) and the --json document holding every number.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "bench/e2e/json_out.h"
#include "bench/e2e/memory_tracker.h"
#include "bench/e2e/options.h"
#include "bench/e2e/phases.h"
#include "bench/e2e/yardsticks.h"
#include "engine/engine.h"

namespace nemotron {
namespace bench {

struct RunInfo {
  std::string device, device_name;
  std::string model_dir, preset;  // preset "" for --model
  bool checkpoint_written = false;
  double checkpoint_write_s = 0;
  double load_s = 0;
  uint64_t decode_weight_bytes = 0;
  CopyBandwidth copy;
};

struct RunResults {
  std::vector<PrefillResult> prefill;
  std::vector<DecodeResult> decode;
  std::vector<StreamsResult> streams;
};

// Prints the memory lines and the summary; returns the targets as JSON.
JsonOut print_summary(const RunInfo& info, const Engine& engine, const MemoryTracker& memory, const RunResults& r);

JsonOut build_report(const RunInfo& info, const BenchOptions& opts, const Engine& engine, const MemoryTracker& memory,
                     const RunResults& r, JsonOut targets);

}  // namespace bench
}  // namespace nemotron
