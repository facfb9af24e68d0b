// NemotronH config.json, parsed and validated, with the derived dimensions the
// forward pass needs (spec §1). Any valid NemotronH config is accepted: layer
// pattern, group count, state size, head sizes, chunk size are all read, never assumed.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "common/json.h"

namespace nemotron {

enum class LayerKind : uint8_t { Mamba, Attention, Mlp };
char layer_kind_char(LayerKind k);  // 'M', '*', '-'

struct ModelConfig {
  std::string model_type;     // "nemotron_h"
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_layers = 0;
  std::vector<LayerKind> layers;  // from hybrid_override_pattern (or layers_block_type)
  std::string pattern;            // the pattern as M/*/- characters

  // Mamba2
  int64_t mamba_heads = 0;      // mamba_num_heads
  int64_t mamba_head_dim = 0;   // mamba_head_dim
  int64_t n_groups = 0;         // n_groups (aliases: mamba_n_groups, mamba_num_groups)
  int64_t ssm_state_size = 0;   // ssm_state_size
  int64_t conv_kernel = 0;      // conv_kernel (alias mamba_d_conv)
  int64_t chunk_size = 128;     // chunk_size (alias mamba_chunk_size)
  bool use_conv_bias = true;
  bool mamba_proj_bias = false;  // use_bias / mamba_proj_bias: in_proj/out_proj biases
  double dt_min = 0.0;           // time_step_limit[0]
  double dt_max = 1e300;         // time_step_limit[1] (Infinity in real configs)

  // Attention
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;          // head_dim (alias attention_head_dim; default hidden/heads)
  bool attention_bias = false;

  // MLP
  int64_t intermediate_size = 0;
  bool mlp_bias = false;

  double norm_eps = 1e-5;        // layer_norm_epsilon (alias rms_norm_eps)
  bool tie_word_embeddings = false;
  int64_t max_position_embeddings = 0;
  int64_t bos_token_id = -1, eos_token_id = -1, pad_token_id = -1;  // -1 when absent

  // Derived (spec §1.2)
  int64_t d_inner() const { return mamba_heads * mamba_head_dim; }
  int64_t conv_dim() const { return d_inner() + 2 * n_groups * ssm_state_size; }
  int64_t in_proj_rows() const { return 2 * d_inner() + 2 * n_groups * ssm_state_size + mamba_heads; }
  int64_t heads_per_group() const { return mamba_heads / n_groups; }
  int64_t norm_group_size() const { return d_inner() / n_groups; }
  int64_t q_width() const { return num_attention_heads * head_dim; }
  int64_t kv_width() const { return num_key_value_heads * head_dim; }
  int64_t count(LayerKind k) const;

  // The parsed document, kept so the JS side can expose every field.
  JsonValue raw;
};

// Parses and validates config.json text. `path` is used in messages.
// Throws Error(ModelConfig) naming the offending field.
ModelConfig parse_model_config(const std::string& text, const std::string& path);

// Reads `<dir>/config.json` (Error(ModelConfig) if missing/unreadable).
ModelConfig load_model_config(const std::string& dir);

}  // namespace nemotron
