// config.json -> ModelConfig (spec §1). Every field is read by name (with the
// legacy aliases HF still accepts) and checked, so an unusual or damaged config
// fails here with the field's name instead of producing a wrong forward pass.
#include "model/config.h"

#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <sstream>

#include "common/error.h"

namespace nemotron {

char layer_kind_char(LayerKind k) {
  switch (k) {
    case LayerKind::Mamba: return 'M';
    case LayerKind::Attention: return '*';
    case LayerKind::Mlp: return '-';
  }
  return '?';
}

int64_t ModelConfig::count(LayerKind k) const {
  int64_t n = 0;
  for (LayerKind l : layers) n += (l == k);
  return n;
}

namespace {

// No real dimension comes near this; the cap keeps every derived product
// (d_inner, conv_dim, in_proj_rows, q_width, ...) far from int64 overflow.
constexpr int64_t kMaxDim = int64_t{1} << 30;

// A short description of a JSON value for "found ..." in messages.
std::string describe(const JsonValue& v) {
  std::ostringstream os;
  switch (v.kind) {
    case JsonValue::Kind::Null: return "null";
    case JsonValue::Kind::Bool: return v.boolean ? "true" : "false";
    case JsonValue::Kind::String: return "string \"" + v.string + "\"";
    case JsonValue::Kind::Array: return "an array";
    case JsonValue::Kind::Object: return "an object";
    case JsonValue::Kind::Number:
      if (v.number_is_integer) return std::to_string(v.integer);
      os.precision(17);
      os << v.number;
      return os.str();
  }
  return "?";
}

// Reads fields from the config object, reporting problems as "<path>: <field>: ...".
class FieldReader {
 public:
  FieldReader(const JsonValue& root, const std::string& path) : root_(root), path_(path) {}

  [[noreturn]] void error(const std::string& msg) const { fail(ErrorCode::ModelConfig, path_ + ": " + msg); }

  // The first present, non-null field among `names` (the canonical name first,
  // then its aliases); sets *used to the spelling found in the file.
  const JsonValue* lookup(std::initializer_list<const char*> names, std::string* used) const {
    for (const char* n : names) {
      const JsonValue* v = root_.find(n);
      if (v && !v->is_null()) {
        *used = n;
        return v;
      }
    }
    return nullptr;
  }

  int64_t as_int(const JsonValue& v, const std::string& field) const {
    if (!v.is_number() || !v.number_is_integer)
      error(field + ": expected an integer, found " + describe(v));
    return v.integer;
  }

  int64_t required_int(std::initializer_list<const char*> names) const {
    std::string used;
    const JsonValue* v = lookup(names, &used);
    if (!v) {
      std::string msg = std::string("missing required field \"") + *names.begin() + "\"";
      if (names.size() > 1) {
        msg += " (aliases:";
        for (auto it = names.begin() + 1; it != names.end(); ++it) msg += std::string(" ") + *it;
        msg += ")";
      }
      error(msg);
    }
    return as_int(*v, used);
  }

  // Returns `fallback` when absent or null.
  int64_t optional_int(std::initializer_list<const char*> names, int64_t fallback) const {
    std::string used;
    const JsonValue* v = lookup(names, &used);
    return v ? as_int(*v, used) : fallback;
  }

  bool optional_bool(std::initializer_list<const char*> names, bool fallback) const {
    std::string used;
    const JsonValue* v = lookup(names, &used);
    if (!v) return fallback;
    if (!v->is_bool()) error(used + ": expected true or false, found " + describe(*v));
    return v->boolean;
  }

  double optional_number(std::initializer_list<const char*> names, double fallback) const {
    std::string used;
    const JsonValue* v = lookup(names, &used);
    if (!v) return fallback;
    if (!v->is_number()) error(used + ": expected a number, found " + describe(*v));
    return v->number;
  }

  // Token ids: absent/null -> -1; an array (some configs list several EOS ids) -> its first element.
  int64_t optional_token_id(const char* name) const {
    const JsonValue* v = root_.find(name);
    if (!v || v->is_null()) return -1;
    if (v->is_array()) {
      if (v->array.empty()) return -1;
      return as_int(v->array[0], std::string(name) + "[0]");
    }
    return as_int(*v, name);
  }

  // An optional string field that, when present, must equal `expected`.
  void expect_string_if_present(const char* name, const char* expected, const char* why) const {
    const JsonValue* v = root_.find(name);
    if (!v || v->is_null()) return;
    if (!v->is_string() || v->string != expected)
      error(std::string(name) + ": " + describe(*v) + " is not supported (expected \"" + expected + "\"; " + why + ")");
  }

  void require_positive(const char* name, int64_t value) const {
    if (value <= 0) error(std::string(name) + ": must be positive, found " + std::to_string(value));
    if (value > kMaxDim) error(std::string(name) + ": " + std::to_string(value) + " is implausibly large");
  }

 private:
  const JsonValue& root_;
  const std::string& path_;
};

LayerKind kind_from_pattern_char(char c, size_t index, const FieldReader& r) {
  switch (c) {
    case 'M': return LayerKind::Mamba;
    case '*': return LayerKind::Attention;
    case '-': return LayerKind::Mlp;
    case 'E':
      r.error("hybrid_override_pattern: MoE layers ('E' at index " + std::to_string(index) +
              ") are not supported; only M (Mamba2), * (attention) and - (MLP) are");
    default: {
      char shown[8];
      if (c >= 0x20 && c < 0x7f) std::snprintf(shown, sizeof shown, "%c", c);
      else std::snprintf(shown, sizeof shown, "\\x%02x", static_cast<unsigned char>(c));
      r.error(std::string("hybrid_override_pattern: unknown layer character '") + shown + "' at index " + std::to_string(index) +
              " (expected M, * or -)");
    }
  }
}

LayerKind kind_from_block_type(const JsonValue& v, size_t index, const FieldReader& r) {
  std::string field = "layers_block_type[" + std::to_string(index) + "]";
  if (!v.is_string()) r.error(field + ": expected a string, found " + describe(v));
  if (v.string == "mamba") return LayerKind::Mamba;
  if (v.string == "attention") return LayerKind::Attention;
  if (v.string == "mlp") return LayerKind::Mlp;
  if (v.string == "moe") r.error(field + ": MoE layers (\"moe\") are not supported");
  r.error(field + ": unknown layer type \"" + v.string + "\" (expected \"mamba\", \"attention\" or \"mlp\")");
}

void read_layers(ModelConfig& c, const JsonValue& root, const FieldReader& r) {
  const JsonValue* pattern = root.find("hybrid_override_pattern");
  if (pattern && !pattern->is_null()) {
    if (!pattern->is_string()) r.error("hybrid_override_pattern: expected a string, found " + describe(*pattern));
    const std::string& p = pattern->string;
    if (static_cast<int64_t>(p.size()) != c.num_layers)
      r.error("hybrid_override_pattern has " + std::to_string(p.size()) + " characters but num_hidden_layers is " +
              std::to_string(c.num_layers));
    for (size_t i = 0; i < p.size(); ++i) c.layers.push_back(kind_from_pattern_char(p[i], i, r));
  } else {
    const JsonValue* types = root.find("layers_block_type");
    if (!types || types->is_null())
      r.error("missing required field \"hybrid_override_pattern\" (or \"layers_block_type\"): the layer layout");
    if (!types->is_array()) r.error("layers_block_type: expected an array of strings, found " + describe(*types));
    if (static_cast<int64_t>(types->array.size()) != c.num_layers)
      r.error("layers_block_type has " + std::to_string(types->array.size()) + " entries but num_hidden_layers is " +
              std::to_string(c.num_layers));
    for (size_t i = 0; i < types->array.size(); ++i) c.layers.push_back(kind_from_block_type(types->array[i], i, r));
  }
  for (LayerKind k : c.layers) c.pattern.push_back(layer_kind_char(k));
}

// time_step_limit [min, max] clamps dt; HF's default (0, inf) means "no clamp".
void read_time_step_limit(ModelConfig& c, const JsonValue& root, const FieldReader& r) {
  c.dt_min = 0.0;
  c.dt_max = std::numeric_limits<double>::infinity();
  const JsonValue* v = root.find("time_step_limit");
  if (!v || v->is_null()) return;
  if (!v->is_array() || v->array.size() != 2 || !v->array[0].is_number() || !v->array[1].is_number())
    r.error("time_step_limit: expected [min, max] (two numbers), found " + describe(*v));
  double lo = v->array[0].number, hi = v->array[1].number;
  if (std::isnan(lo) || std::isnan(hi) || lo < 0 || lo > hi)
    r.error("time_step_limit: expected 0 <= min <= max, found [" + describe(v->array[0]) + ", " +
            describe(v->array[1]) + "]");
  c.dt_min = lo;
  c.dt_max = hi;
}

void validate(const ModelConfig& c, const FieldReader& r) {
  r.require_positive("vocab_size", c.vocab_size);
  r.require_positive("hidden_size", c.hidden_size);
  r.require_positive("num_hidden_layers", c.num_layers);
  r.require_positive("num_attention_heads", c.num_attention_heads);
  r.require_positive("num_key_value_heads", c.num_key_value_heads);
  r.require_positive("head_dim", c.head_dim);
  r.require_positive("intermediate_size", c.intermediate_size);
  r.require_positive("mamba_num_heads", c.mamba_heads);
  r.require_positive("mamba_head_dim", c.mamba_head_dim);
  r.require_positive("ssm_state_size", c.ssm_state_size);
  r.require_positive("n_groups", c.n_groups);
  r.require_positive("conv_kernel", c.conv_kernel);
  r.require_positive("chunk_size", c.chunk_size);
  if (c.mamba_heads % c.n_groups != 0)
    r.error("n_groups: " + std::to_string(c.n_groups) + " does not divide mamba_num_heads " +
            std::to_string(c.mamba_heads) + " (each group must own a whole block of heads)");
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    r.error("num_key_value_heads: " + std::to_string(c.num_key_value_heads) + " does not divide num_attention_heads " +
            std::to_string(c.num_attention_heads));
  if (c.max_position_embeddings < 0)
    r.error("max_position_embeddings: must not be negative, found " + std::to_string(c.max_position_embeddings));
  if (!(c.norm_eps > 0) || !std::isfinite(c.norm_eps))
    r.error("layer_norm_epsilon: must be a positive finite number");
}

}  // namespace

ModelConfig parse_model_config(const std::string& text, const std::string& path) {
  ModelConfig c;
  try {
    c.raw = parse_json(text, path);
  } catch (const Error& e) {
    // The JSON reader reports ModelFile; a broken config.json is a config problem.
    throw Error(ErrorCode::ModelConfig, e.what());
  }
  const JsonValue& root = c.raw;
  FieldReader r(root, path);
  if (!root.is_object()) r.error("expected a JSON object at the top level, found " + describe(root));

  const JsonValue* mt = root.find("model_type");
  if (!mt || mt->is_null()) r.error("missing required field \"model_type\" (expected \"nemotron_h\")");
  if (!mt->is_string()) r.error("model_type: expected a string, found " + describe(*mt));
  if (mt->string != "nemotron_h")
    r.error("unsupported model_type \"" + mt->string + "\" (expected \"nemotron_h\")");
  c.model_type = mt->string;

  c.vocab_size = r.required_int({"vocab_size"});
  c.hidden_size = r.required_int({"hidden_size"});
  c.num_layers = r.required_int({"num_hidden_layers"});
  c.num_attention_heads = r.required_int({"num_attention_heads"});
  c.num_key_value_heads = r.required_int({"num_key_value_heads"});
  c.intermediate_size = r.required_int({"intermediate_size"});
  c.mamba_heads = r.required_int({"mamba_num_heads"});
  c.mamba_head_dim = r.required_int({"mamba_head_dim"});
  c.ssm_state_size = r.required_int({"ssm_state_size"});
  c.n_groups = r.required_int({"n_groups", "mamba_n_groups", "mamba_num_groups"});
  c.conv_kernel = r.required_int({"conv_kernel", "mamba_d_conv"});

  // Checked positive before it is used as a divisor for the head_dim default.
  r.require_positive("hidden_size", c.hidden_size);
  r.require_positive("num_attention_heads", c.num_attention_heads);
  c.head_dim = r.optional_int({"head_dim", "attention_head_dim"}, c.hidden_size / c.num_attention_heads);
  c.chunk_size = r.optional_int({"chunk_size", "mamba_chunk_size"}, 128);
  c.norm_eps = r.optional_number({"layer_norm_epsilon", "rms_norm_eps"}, 1e-5);
  c.use_conv_bias = r.optional_bool({"use_conv_bias", "mamba_conv_bias"}, true);
  c.mamba_proj_bias = r.optional_bool({"mamba_proj_bias", "use_bias"}, false);
  c.attention_bias = r.optional_bool({"attention_bias"}, false);
  c.mlp_bias = r.optional_bool({"mlp_bias"}, false);
  c.tie_word_embeddings = r.optional_bool({"tie_word_embeddings"}, false);
  c.max_position_embeddings = r.optional_int({"max_position_embeddings"}, 0);
  c.bos_token_id = r.optional_token_id("bos_token_id");
  c.eos_token_id = r.optional_token_id("eos_token_id");
  c.pad_token_id = r.optional_token_id("pad_token_id");
  read_time_step_limit(c, root, r);

  r.expect_string_if_present("mlp_hidden_act", "relu2", "the NemotronH MLP is relu(x)^2");
  r.expect_string_if_present("mamba_hidden_act", "silu", "the Mamba2 conv output goes through SiLU");

  validate(c, r);
  read_layers(c, root, r);
  return c;
}

ModelConfig load_model_config(const std::string& dir) {
  struct stat st;
  if (stat(dir.c_str(), &st) != 0)
    fail(ErrorCode::ModelConfig, "model directory " + dir + " does not exist (" + std::strerror(errno) + ")");
  if (!S_ISDIR(st.st_mode)) fail(ErrorCode::ModelConfig, dir + " is not a directory: pass the model directory");

  const std::string path = dir + "/config.json";
  if (stat(path.c_str(), &st) != 0)
    fail(ErrorCode::ModelConfig, path + " not found: a model directory needs the Hugging Face config.json");
  if (!S_ISREG(st.st_mode)) fail(ErrorCode::ModelConfig, path + " is not a regular file");
  // Real configs are a few KB; refuse to slurp something absurd into memory.
  if (st.st_size > (16 << 20))
    fail(ErrorCode::ModelConfig, path + ": " + std::to_string(st.st_size) + " bytes is too large for a config.json");

  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorCode::ModelConfig, path + ": cannot open (" + std::strerror(errno) + ")");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) fail(ErrorCode::ModelConfig, path + ": read failed");
  return parse_model_config(text.str(), path);
}

}  // namespace nemotron
