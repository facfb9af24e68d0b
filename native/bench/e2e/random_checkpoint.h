// Writes a NemotronH checkpoint with RANDOM weights (config.json +
// model.safetensors, bf16, the real HF tensor names and shapes) natively, so the
// GPU machine (no Node there) can benchmark the 9B shape. Values are drawn by a
// counter-based hash, so every chunk is generated in parallel and the result does
// not depend on the thread count; generation overlaps the writes, so the 17.8 GB
// 9B preset goes out at disk speed with two 32 MiB buffers of memory.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "bench/e2e/random_presets.h"

namespace nemotron {
namespace bench {

struct RandomCheckpoint {
  std::string dir;
  bool written = false;     // false: an existing matching checkpoint was reused
  uint64_t file_bytes = 0;  // size of model.safetensors
  double seconds = 0;       // time spent writing (0 when reused)
};

using WriteProgressFn = std::function<void(uint64_t done, uint64_t total)>;

// Size model.safetensors of the preset has (header included).
uint64_t random_checkpoint_file_bytes(const RandomPreset& preset);

// Reuses `dir` when its config.json is a random checkpoint of this preset (the
// nemotron_node_random_weights marker and every dimension match) and
// model.safetensors has the expected size; otherwise writes the checkpoint.
// Refuses (throws) to overwrite a directory holding some other model, and
// checks free disk space first. Throws std::runtime_error with the reason.
RandomCheckpoint ensure_random_checkpoint(const std::string& dir, const RandomPreset& preset, uint64_t seed,
                                          const WriteProgressFn& progress);

}  // namespace bench
}  // namespace nemotron
