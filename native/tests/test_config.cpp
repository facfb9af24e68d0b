// config.json parsing: the fixture, aliases, defaults, and every rejection path.
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "loader_test_util.h"
#include "model/config.h"
#include "test_framework.h"

using namespace nemotron;
using nemotron_test::TempDir;

namespace {

// The tiny fixture's fields as raw JSON values; tests replace, add or drop some.
using Fields = std::vector<std::pair<std::string, std::string>>;

Fields base_fields() {
  return {{"model_type", "\"nemotron_h\""},   {"vocab_size", "512"},
          {"hidden_size", "64"},              {"num_hidden_layers", "8"},
          {"hybrid_override_pattern", "\"M-M*-MM-\""},
          {"num_attention_heads", "4"},       {"num_key_value_heads", "2"},
          {"head_dim", "16"},                 {"intermediate_size", "128"},
          {"mamba_num_heads", "8"},           {"mamba_head_dim", "16"},
          {"n_groups", "2"},                  {"ssm_state_size", "16"},
          {"conv_kernel", "4"},               {"chunk_size", "128"},
          {"time_step_limit", "[0.0, Infinity]"}};
}

std::string render(const Fields& f) {
  std::string s = "{";
  for (size_t i = 0; i < f.size(); ++i) s += (i ? ", \"" : "\"") + f[i].first + "\": " + f[i].second;
  return s + "}";
}

// base_fields() with `changes` applied: a new value replaces or appends; an empty value drops the key.
std::string config_with(const Fields& changes) {
  Fields f = base_fields();
  for (const auto& c : changes) {
    bool found = false;
    for (size_t i = 0; i < f.size(); ++i) {
      if (f[i].first != c.first) continue;
      found = true;
      if (c.second.empty()) f.erase(f.begin() + static_cast<long>(i));
      else f[i].second = c.second;
      break;
    }
    if (!found && !c.second.empty()) f.push_back(c);
  }
  return render(f);
}

ModelConfig parse(const Fields& changes) { return parse_model_config(config_with(changes), "config.json"); }

ErrorCode code_of(const Fields& changes) {
  try {
    parse(changes);
  } catch (const Error& e) {
    return e.code();
  }
  return ErrorCode::Internal;
}

}  // namespace

TEST(config_parses_fixture_with_infinity) {
  std::string dir = nemotron_test::fixtures_dir();
  if (dir.empty()) return nemotron_test::skip("fixtures not found");
  ModelConfig c = load_model_config(dir + "/tiny-nemotron-h");
  CHECK(c.model_type == "nemotron_h");
  CHECK(c.vocab_size == 512);
  CHECK(c.hidden_size == 64);
  CHECK(c.num_layers == 8);
  CHECK(c.pattern == "M-M*-MM-");
  CHECK(c.layers.size() == 8);
  CHECK(c.layers[3] == LayerKind::Attention && c.layers[1] == LayerKind::Mlp && c.layers[0] == LayerKind::Mamba);
  CHECK(c.count(LayerKind::Mamba) == 4 && c.count(LayerKind::Attention) == 1 && c.count(LayerKind::Mlp) == 3);
  CHECK(c.d_inner() == 128);
  CHECK(c.conv_dim() == 192);
  CHECK(c.in_proj_rows() == 328);
  CHECK(c.heads_per_group() == 4);
  CHECK(c.norm_group_size() == 64);
  CHECK(c.q_width() == 64 && c.kv_width() == 32);
  CHECK(c.head_dim == 16 && c.n_groups == 2 && c.ssm_state_size == 16 && c.conv_kernel == 4);
  CHECK(c.chunk_size == 128);
  CHECK(c.use_conv_bias && !c.mamba_proj_bias && !c.attention_bias && !c.mlp_bias && !c.tie_word_embeddings);
  CHECK(c.dt_min == 0.0);
  CHECK(std::isinf(c.dt_max) && c.dt_max > 0);
  CHECK(std::fabs(c.norm_eps - 1e-5) < 1e-12);
  CHECK(c.max_position_embeddings == 4096);
  CHECK(c.bos_token_id == 1 && c.eos_token_id == 2 && c.pad_token_id == 0);
  CHECK(c.raw.is_object() && c.raw.find("transformers_version") != nullptr);
}

TEST(config_layer_kind_chars) {
  CHECK(layer_kind_char(LayerKind::Mamba) == 'M');
  CHECK(layer_kind_char(LayerKind::Attention) == '*');
  CHECK(layer_kind_char(LayerKind::Mlp) == '-');
}

TEST(config_defaults_when_optional_fields_absent) {
  ModelConfig c = parse({{"head_dim", ""}, {"chunk_size", ""}, {"time_step_limit", ""}});
  CHECK(c.head_dim == 16);  // hidden 64 / 4 heads
  CHECK(c.chunk_size == 128);
  CHECK(c.norm_eps == 1e-5);
  CHECK(c.use_conv_bias && !c.mamba_proj_bias && !c.mlp_bias && !c.attention_bias);
  CHECK(c.dt_min == 0.0 && std::isinf(c.dt_max));
  CHECK(c.max_position_embeddings == 0);
  CHECK(c.bos_token_id == -1 && c.eos_token_id == -1 && c.pad_token_id == -1);
  CHECK(!c.tie_word_embeddings);

  ModelConfig n = parse({{"time_step_limit", "null"}, {"bos_token_id", "null"}, {"eos_token_id", "[2, 11]"}});
  CHECK(std::isinf(n.dt_max) && n.bos_token_id == -1 && n.eos_token_id == 2);

  ModelConfig t = parse({{"time_step_limit", "[0.001, 0.1]"}});
  CHECK(t.dt_min == 0.001 && t.dt_max == 0.1);
}

TEST(config_accepts_aliases) {
  ModelConfig c = parse({{"n_groups", ""},
                         {"mamba_n_groups", "4"},
                         {"conv_kernel", ""},
                         {"mamba_d_conv", "3"},
                         {"head_dim", ""},
                         {"attention_head_dim", "8"},
                         {"chunk_size", ""},
                         {"mamba_chunk_size", "64"},
                         {"rms_norm_eps", "1e-6"},
                         {"mamba_conv_bias", "false"},
                         {"use_bias", "true"}});
  CHECK(c.n_groups == 4 && c.conv_kernel == 3 && c.head_dim == 8 && c.chunk_size == 64);
  CHECK(c.norm_eps == 1e-6);
  CHECK(!c.use_conv_bias && c.mamba_proj_bias);
  CHECK(parse({{"n_groups", ""}, {"mamba_num_groups", "8"}}).n_groups == 8);
  // The canonical spelling wins over an alias.
  CHECK(parse({{"mamba_n_groups", "4"}}).n_groups == 2);
  CHECK(parse({{"mamba_proj_bias", "false"}, {"use_bias", "true"}}).mamba_proj_bias == false);
  CHECK(parse({{"tie_word_embeddings", "true"}, {"mlp_bias", "true"}, {"attention_bias", "true"}}).tie_word_embeddings);
  CHECK(parse({{"mlp_hidden_act", "\"relu2\""}, {"mamba_hidden_act", "\"silu\""}}).num_layers == 8);
}

TEST(config_layers_block_type_instead_of_pattern) {
  ModelConfig c = parse({{"hybrid_override_pattern", ""},
                         {"layers_block_type",
                          R"(["mamba","mlp","mamba","attention","mlp","mamba","mamba","mlp"])"}});
  CHECK(c.pattern == "M-M*-MM-");
  CHECK_THROWS_WITH(parse({{"hybrid_override_pattern", ""}, {"layers_block_type", R"(["mamba","moe","mamba","attention","mlp","mamba","mamba","mlp"])"}}),
                    "layers_block_type[1]: MoE");
  CHECK_THROWS_WITH(parse({{"hybrid_override_pattern", ""}, {"layers_block_type", R"(["mamba","linear_attention","mamba","attention","mlp","mamba","mamba","mlp"])"}}),
                    "unknown layer type \"linear_attention\"");
  CHECK_THROWS_WITH(parse({{"hybrid_override_pattern", ""}, {"layers_block_type", R"(["mamba"])"}}),
                    "layers_block_type has 1 entries but num_hidden_layers is 8");
  CHECK_THROWS_WITH(parse({{"hybrid_override_pattern", ""}}), "hybrid_override_pattern");
}

TEST(config_rejects_wrong_model_type) {
  CHECK_THROWS_WITH(parse({{"model_type", "\"llama\""}}),
                    "config.json: unsupported model_type \"llama\" (expected \"nemotron_h\")");
  CHECK_THROWS_WITH(parse({{"model_type", ""}}), "model_type");
  CHECK(code_of({{"model_type", "\"llama\""}}) == ErrorCode::ModelConfig);
}

TEST(config_rejects_bad_patterns) {
  CHECK_THROWS_WITH(parse({{"num_hidden_layers", "9"}}),
                    "config.json: hybrid_override_pattern has 8 characters but num_hidden_layers is 9");
  CHECK_THROWS_WITH(parse({{"hybrid_override_pattern", "\"M-ME-MM-\""}}), "'E' at index 3) are not supported");
  CHECK_THROWS_WITH(parse({{"hybrid_override_pattern", "\"M-M*-MX-\""}}),
                    "unknown layer character 'X' at index 6");
  CHECK_THROWS_WITH(parse({{"hybrid_override_pattern", "8"}}), "hybrid_override_pattern: expected a string");
}

TEST(config_rejects_non_integer_fields) {
  CHECK_THROWS_WITH(parse({{"hidden_size", "\"64\""}}), "hidden_size: expected an integer, found string \"64\"");
  CHECK_THROWS_WITH(parse({{"ssm_state_size", "3.5"}}), "ssm_state_size: expected an integer, found 3.5");
  CHECK_THROWS_WITH(parse({{"mamba_d_conv", "4.0"}, {"conv_kernel", ""}}), "mamba_d_conv: expected an integer");
  CHECK_THROWS_WITH(parse({{"chunk_size", "true"}}), "chunk_size: expected an integer, found true");
  CHECK_THROWS_WITH(parse({{"use_conv_bias", "1"}}), "use_conv_bias: expected true or false, found 1");
  CHECK_THROWS_WITH(parse({{"eos_token_id", "[\"x\"]"}}), "eos_token_id[0]: expected an integer");
  CHECK_THROWS_WITH(parse({{"time_step_limit", "[1]"}}), "time_step_limit: expected [min, max]");
  CHECK_THROWS_WITH(parse({{"time_step_limit", "[0.5, 0.1]"}}), "time_step_limit: expected 0 <= min <= max");
  CHECK_THROWS_WITH(parse({{"layer_norm_epsilon", "\"tiny\""}}), "layer_norm_epsilon: expected a number");
}

TEST(config_rejects_inconsistent_dimensions) {
  CHECK_THROWS_WITH(parse({{"n_groups", "3"}}), "n_groups: 3 does not divide mamba_num_heads 8");
  CHECK_THROWS_WITH(parse({{"num_key_value_heads", "3"}}), "num_key_value_heads: 3 does not divide num_attention_heads 4");
  CHECK_THROWS_WITH(parse({{"chunk_size", "0"}}), "chunk_size: must be positive, found 0");
  CHECK_THROWS_WITH(parse({{"conv_kernel", "0"}}), "conv_kernel: must be positive, found 0");
  CHECK_THROWS_WITH(parse({{"hidden_size", "-64"}}), "hidden_size: must be positive");
  CHECK_THROWS_WITH(parse({{"mamba_head_dim", "0"}}), "mamba_head_dim: must be positive");
  CHECK_THROWS_WITH(parse({{"vocab_size", "9000000000000"}}), "vocab_size: 9000000000000 is implausibly large");
  CHECK_THROWS_WITH(parse({{"mlp_hidden_act", "\"gelu\""}}), "mlp_hidden_act: string \"gelu\" is not supported");
  CHECK_THROWS_WITH(parse({{"mamba_hidden_act", "\"relu\""}}), "mamba_hidden_act");
}

TEST(config_rejects_missing_fields) {
  const char* required[] = {"vocab_size",      "hidden_size",     "num_hidden_layers", "num_attention_heads",
                            "num_key_value_heads", "intermediate_size", "mamba_num_heads", "mamba_head_dim",
                            "ssm_state_size", "n_groups",        "conv_kernel"};
  for (const char* f : required)
    CHECK_THROWS_WITH(parse({{f, ""}}), std::string("missing required field \"") + f + "\"");
  CHECK_THROWS_WITH(parse({{"n_groups", ""}}), "mamba_n_groups");  // the message lists the aliases
  CHECK(code_of({{"vocab_size", ""}}) == ErrorCode::ModelConfig);
}

TEST(config_rejects_malformed_json_as_config_error) {
  CHECK_THROWS_WITH(parse_model_config("{\"model_type\": ", "x/config.json"), "x/config.json: invalid JSON");
  try {
    parse_model_config("{nope}", "config.json");
    CHECK(false);
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::ModelConfig);
  }
  CHECK_THROWS_WITH(parse_model_config("[1,2]", "config.json"), "expected a JSON object");
}

TEST(config_load_reports_missing_file_and_dir) {
  TempDir tmp;
  REQUIRE(tmp.ok());
  CHECK_THROWS_WITH(load_model_config(tmp.path()),
                    tmp.path() + "/config.json not found: a model directory needs the Hugging Face config.json");
  CHECK_THROWS_WITH(load_model_config(tmp.path() + "/nope"), "does not exist");
  nemotron_test::write_file(tmp.file("f"), "x");
  CHECK_THROWS_WITH(load_model_config(tmp.file("f")), "is not a directory");

  nemotron_test::write_file(tmp.file("config.json"), "{\"model_type\": \"nemotron_h\",");
  try {
    load_model_config(tmp.path());
    CHECK(false);
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::ModelConfig);
    CHECK(std::string(e.what()).find(tmp.path() + "/config.json") != std::string::npos);
  }

  nemotron_test::write_file(tmp.file("config.json"), config_with({}));
  CHECK(load_model_config(tmp.path()).pattern == "M-M*-MM-");
}
