#include "bench/e2e/random_presets.h"

#include <cmath>
#include <stdexcept>

namespace nemotron {
namespace bench {
namespace {

// random-model.js PRESETS. bench-mid is the demo shape under the name the
// benchmarks use; nano-9b-v2 is NVIDIA-Nemotron-Nano-9B-v2's shape (spec §1.1);
// tiny is the reference fixtures' shape (with 32-token scan chunks), for smoke
// runs such as the benchmark's CUDA path on the emulator.
const RandomPreset kPresets[] = {
    {"tiny", 64, "M-M*-MM-", 512, 8, 16, 2, 16, 4, 32, 4, 2, 16, 128, 4096},
    {"demo", 1024, "M-M*-MM-", 32768, 32, 64, 8, 128, 4, 128, 16, 4, 64, 4096, 8192},
    {"bench-mid", 1024, "M-M*-MM-", 32768, 32, 64, 8, 128, 4, 128, 16, 4, 64, 4096, 8192},
    {"nano-9b-v2", 4480, "M-M-M-MM-M-M-M*-M-M-M*-M-M-M-M*-M-M-M-M*-M-MM-M-M-M-M-M-", 131072, 128, 80, 8, 128, 4,
     128, 40, 8, 128, 15680, 131072},
};

// Uniform in [-a, a) with a = sqrt(3 / fan_in): unit-variance outputs from
// unit-variance inputs, so activations stay O(1) through every layer.
TensorInit lin(int64_t fan_in) { return {InitKind::Uniform, std::sqrt(3.0 / static_cast<double>(fan_in))}; }
TensorInit constant(double v) { return {InitKind::Const, v}; }

std::string quote(const std::string& s) { return "\"" + s + "\""; }

}  // namespace

uint64_t RandomTensor::numel() const {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

const RandomPreset* find_random_preset(const std::string& name) {
  for (const RandomPreset& p : kPresets)
    if (name == p.name) return &p;
  return nullptr;
}

std::string random_preset_names() {
  std::string s;
  for (const RandomPreset& p : kPresets) s += (s.empty() ? "" : "|") + std::string(p.name);
  return s;
}

std::vector<RandomTensor> random_tensor_list(const RandomPreset& c) {
  const int64_t H = c.hidden_size;
  const int64_t d_in = c.mamba_num_heads * c.mamba_head_dim;
  const int64_t gn = c.n_groups * c.ssm_state_size;
  const int64_t conv = d_in + 2 * gn;
  const int64_t proj = 2 * d_in + 2 * gn + c.mamba_num_heads;
  const int64_t q = c.num_attention_heads * c.head_dim;
  const int64_t kv = c.num_key_value_heads * c.head_dim;
  std::vector<RandomTensor> t;
  t.push_back({"backbone.embeddings.weight", {c.vocab_size, H}, {InitKind::Uniform, 1.0}});
  const std::string pattern = c.hybrid_override_pattern;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const std::string p = "backbone.layers." + std::to_string(i) + ".";
    t.push_back({p + "norm.weight", {H}, constant(1)});
    switch (pattern[i]) {
      case 'M':
        t.push_back({p + "mixer.in_proj.weight", {proj, H}, lin(H)});
        t.push_back({p + "mixer.conv1d.weight", {conv, 1, c.conv_kernel}, lin(c.conv_kernel)});
        t.push_back({p + "mixer.conv1d.bias", {conv}, {InitKind::Uniform, 0.1}});
        t.push_back({p + "mixer.dt_bias", {c.mamba_num_heads}, {InitKind::DtBias, 0}});
        t.push_back({p + "mixer.A_log", {c.mamba_num_heads}, {InitKind::ALog, 0}});
        t.push_back({p + "mixer.D", {c.mamba_num_heads}, constant(1)});
        t.push_back({p + "mixer.norm.weight", {d_in}, constant(1)});
        t.push_back({p + "mixer.out_proj.weight", {H, d_in}, lin(d_in)});
        break;
      case '*':
        t.push_back({p + "mixer.q_proj.weight", {q, H}, lin(H)});
        t.push_back({p + "mixer.k_proj.weight", {kv, H}, lin(H)});
        t.push_back({p + "mixer.v_proj.weight", {kv, H}, lin(H)});
        t.push_back({p + "mixer.o_proj.weight", {H, q}, lin(q)});
        break;
      case '-':
        t.push_back({p + "mixer.up_proj.weight", {c.intermediate_size, H}, lin(H)});
        t.push_back({p + "mixer.down_proj.weight", {H, c.intermediate_size}, lin(c.intermediate_size)});
        break;
      default:
        throw std::logic_error(std::string("preset ") + c.name + ": unsupported layer character");
    }
  }
  t.push_back({"backbone.norm_f.weight", {H}, constant(1)});
  t.push_back({"lm_head.weight", {c.vocab_size, H}, lin(H)});
  return t;
}

std::vector<PresetField> preset_fields(const RandomPreset& p) {
  return {
      {"hidden_size", "", p.hidden_size, false},
      {"hybrid_override_pattern", p.hybrid_override_pattern, 0, true},
      {"vocab_size", "", p.vocab_size, false},
      {"mamba_num_heads", "", p.mamba_num_heads, false},
      {"mamba_head_dim", "", p.mamba_head_dim, false},
      {"n_groups", "", p.n_groups, false},
      {"ssm_state_size", "", p.ssm_state_size, false},
      {"conv_kernel", "", p.conv_kernel, false},
      {"chunk_size", "", p.chunk_size, false},
      {"num_attention_heads", "", p.num_attention_heads, false},
      {"num_key_value_heads", "", p.num_key_value_heads, false},
      {"head_dim", "", p.head_dim, false},
      {"intermediate_size", "", p.intermediate_size, false},
      {"max_position_embeddings", "", p.max_position_embeddings, false},
  };
}

std::string random_config_json(const RandomPreset& p) {
  // The layout JSON.stringify(config, null, 2) gives in random-model.js, with its
  // time_step_limit rewritten to Python's "[0.0, Infinity]".
  std::string s =
      "{\n"
      "  \"architectures\": [\n"
      "    \"NemotronHForCausalLM\"\n"
      "  ],\n"
      "  \"model_type\": \"nemotron_h\",\n"
      "  \"attention_bias\": false,\n"
      "  \"bos_token_id\": 1,\n"
      "  \"eos_token_id\": 2,\n"
      "  \"pad_token_id\": 0,\n"
      "  \"expand\": 2,\n"
      "  \"layer_norm_epsilon\": 0.00001,\n"
      "  \"mamba_hidden_act\": \"silu\",\n"
      "  \"mamba_proj_bias\": false,\n"
      "  \"mlp_bias\": false,\n"
      "  \"mlp_hidden_act\": \"relu2\",\n"
      "  \"num_hidden_layers\": " +
      std::to_string(std::string(p.hybrid_override_pattern).size()) +
      ",\n"
      "  \"residual_in_fp32\": false,\n"
      "  \"tie_word_embeddings\": false,\n"
      "  \"time_step_limit\": [0.0, Infinity],\n"
      "  \"time_step_max\": 0.1,\n"
      "  \"time_step_min\": 0.001,\n"
      "  \"torch_dtype\": \"bfloat16\",\n"
      "  \"use_bias\": false,\n"
      "  \"use_conv_bias\": true,\n";
  for (const PresetField& f : preset_fields(p))
    s += "  " + quote(f.key) + ": " + (f.is_string ? quote(f.string_value) : std::to_string(f.int_value)) + ",\n";
  s += "  \"nemotron_node_random_weights\": true\n}";
  return s;
}

}  // namespace bench
}  // namespace nemotron
