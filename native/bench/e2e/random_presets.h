// The shapes the end-to-end benchmark generates random checkpoints of, and the
// exact config.json / tensor list for each. This mirrors scripts/random-model.js
// (presets, HF field names, tensor names and shapes, value ranges) so a directory
// written by either is the same model and either can reuse the other's output.
// test/bench-e2e.test.ts checks the two stay in step.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace nemotron {
namespace bench {

// The dimensions random-model.js's PRESETS hold, in the same order.
struct RandomPreset {
  const char* name;
  int64_t hidden_size;
  const char* hybrid_override_pattern;
  int64_t vocab_size, mamba_num_heads, mamba_head_dim, n_groups, ssm_state_size, conv_kernel, chunk_size;
  int64_t num_attention_heads, num_key_value_heads, head_dim, intermediate_size, max_position_embeddings;
};

const RandomPreset* find_random_preset(const std::string& name);  // null when unknown
std::string random_preset_names();                                 // "tiny|demo|bench-mid|nano-9b-v2"

// How a tensor's values are drawn (random-model.js `sample`).
enum class InitKind { Const, Uniform, ALog, DtBias };
struct TensorInit {
  InitKind kind = InitKind::Const;
  double value = 0;  // Const: the value; Uniform: the half-width a of [-a, a)
};

struct RandomTensor {
  std::string name;
  std::vector<int64_t> shape;
  TensorInit init;
  uint64_t numel() const;
};

// Every tensor of the preset in file order (embeddings, layers, norm_f, lm_head).
std::vector<RandomTensor> random_tensor_list(const RandomPreset& p);

// config.json text, field for field what random-model.js writes (including the
// bare Infinity token real HF configs carry and the nemotron_node_random_weights marker).
std::string random_config_json(const RandomPreset& p);

// The config fields that identify a preset's shape, for the reuse check.
struct PresetField {
  const char* key;
  std::string string_value;  // for hybrid_override_pattern
  int64_t int_value;
  bool is_string;
};
std::vector<PresetField> preset_fields(const RandomPreset& p);

}  // namespace bench
}  // namespace nemotron
