// Binding checkpoint tensors to roles: the fixture binds; altered copies of it
// fail with the exact message naming the tensor.
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/error.h"
#include "loader_test_util.h"
#include "model/config.h"
#include "model/safetensors.h"
#include "model/weights.h"
#include "test_framework.h"

using namespace nemotron;
using nemotron_test::StTensor;
using nemotron_test::TempDir;

namespace {

std::string fixture_model() {
  std::string dir = nemotron_test::fixtures_dir();
  return dir.empty() ? "" : dir + "/tiny-nemotron-h";
}

// Writes a model dir holding the fixture's config (optionally edited) and its
// tensors after `edit`, then loads and binds it.
void bind_edited(const TempDir& tmp, const std::function<void(std::vector<StTensor>&)>& edit,
                 const std::string& config_text = "") {
  std::string src = fixture_model();
  auto original = SafetensorsSet::open_dir(src);
  std::vector<StTensor> tensors = nemotron_test::copy_tensors(*original);
  edit(tensors);
  nemotron_test::write_file(tmp.file("model.safetensors"), nemotron_test::build_safetensors(tensors));
  nemotron_test::write_file(tmp.file("config.json"),
                            config_text.empty() ? nemotron_test::read_file(src + "/config.json") : config_text);
  ModelConfig config = load_model_config(tmp.path());
  auto set = SafetensorsSet::open_dir(tmp.path());
  bind_weights(config, *set);
}

// The tensor to edit; a typo in a test fails loudly instead of crashing.
StTensor* named(std::vector<StTensor>& ts, const std::string& name) {
  for (auto& t : ts)
    if (t.name == name) return &t;
  throw std::logic_error("test bug: the fixture has no tensor " + name);
}

void drop(std::vector<StTensor>& ts, const std::string& name) {
  for (size_t i = 0; i < ts.size(); ++i)
    if (ts[i].name == name) ts.erase(ts.begin() + static_cast<long>(i));
}

// The fixture's config text with one top-level "key": value replaced (value is raw JSON).
std::string fixture_config_with(const std::string& key, const std::string& value) {
  std::string text = nemotron_test::read_file(fixture_model() + "/config.json");
  size_t k = text.find("\"" + key + "\"");
  if (k == std::string::npos) return text;
  size_t start = text.find(':', k) + 1;
  size_t end = text.find_first_of(",\n}", start);
  return text.substr(0, start) + " " + value + text.substr(end);
}

}  // namespace

TEST(weights_bind_fixture) {
  if (fixture_model().empty()) return nemotron_test::skip("fixtures not found");
  ModelConfig c = load_model_config(fixture_model());
  auto set = SafetensorsSet::open_dir(fixture_model());
  ModelWeights w = bind_weights(c, *set);
  REQUIRE(w.layers.size() == 8);
  CHECK(w.embeddings && w.embeddings->shape_string() == "[512,64]");
  CHECK(w.lm_head && w.lm_head != w.embeddings && w.lm_head->name == "lm_head.weight");
  CHECK(w.norm_f && w.norm_f->shape_string() == "[64]");
  const LayerWeights& m = w.layers[0];
  CHECK(m.kind == LayerKind::Mamba && m.norm_w);
  CHECK(m.mamba.in_proj_w && m.mamba.in_proj_w->shape_string() == "[328,64]");
  CHECK(m.mamba.conv_w && m.mamba.conv_w->shape_string() == "[192,1,4]");
  CHECK(m.mamba.conv_b && m.mamba.dt_bias && m.mamba.A_log && m.mamba.D && m.mamba.norm_w && m.mamba.out_proj_w);
  CHECK(!m.mamba.in_proj_b && !m.mamba.out_proj_b);
  const LayerWeights& a = w.layers[3];
  CHECK(a.kind == LayerKind::Attention);
  CHECK(a.attn.q_w && a.attn.k_w && a.attn.v_w && a.attn.o_w && !a.attn.q_b);
  CHECK(a.attn.k_w->shape_string() == "[32,64]" && a.attn.o_w->shape_string() == "[64,64]");
  const LayerWeights& p = w.layers[1];
  CHECK(p.kind == LayerKind::Mlp && p.mlp.up_w && p.mlp.down_w && !p.mlp.up_b);
  CHECK(p.mlp.up_w->shape_string() == "[128,64]");
  // A Mamba layer's other roles stay empty.
  CHECK(!m.attn.q_w && !m.mlp.up_w);

  // The sharded copy binds to the same bytes.
  auto sharded = SafetensorsSet::open_dir(nemotron_test::fixtures_dir() + "/tiny-nemotron-h-sharded");
  ModelWeights ws = bind_weights(c, *sharded);
  CHECK(ws.layers[7].mlp.down_w->nbytes == w.layers[7].mlp.down_w->nbytes);
}

TEST(weights_report_missing_tensor) {
  if (fixture_model().empty()) return nemotron_test::skip("fixtures not found");
  TempDir tmp;
  REQUIRE(tmp.ok());
  CHECK_THROWS_WITH(bind_edited(tmp, [](auto& ts) { drop(ts, "backbone.layers.5.mixer.D"); }),
                    "backbone.layers.5.mixer.D: missing from the checkpoint");
  CHECK_THROWS_WITH(bind_edited(tmp, [](auto& ts) { drop(ts, "lm_head.weight"); }),
                    "lm_head.weight: missing from the checkpoint");
  CHECK_THROWS_WITH(bind_edited(tmp, [](auto& ts) { drop(ts, "backbone.embeddings.weight"); }),
                    "backbone.embeddings.weight: missing from the checkpoint");
  try {
    bind_edited(tmp, [](auto& ts) { drop(ts, "backbone.norm_f.weight"); });
    CHECK(false);
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::ModelWeights);
    CHECK(std::string(e.what()) == "backbone.norm_f.weight: missing from the checkpoint");
  }
  // Lowest layer first: layers 2 and 6 both lack in_proj.
  CHECK_THROWS_WITH(bind_edited(tmp,
                                [](auto& ts) {
                                  drop(ts, "backbone.layers.6.mixer.in_proj.weight");
                                  drop(ts, "backbone.layers.2.mixer.in_proj.weight");
                                }),
                    "backbone.layers.2.mixer.in_proj.weight: missing");
}

TEST(weights_report_wrong_shape_exactly) {
  if (fixture_model().empty()) return nemotron_test::skip("fixtures not found");
  TempDir tmp;
  REQUIRE(tmp.ok());
  // Same bytes, reinterpreted: [328,64] -> [656,32] keeps the byte size valid.
  try {
    bind_edited(tmp, [](auto& ts) { named(ts, "backbone.layers.2.mixer.in_proj.weight")->shape = {656, 32}; });
    CHECK(false);
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::ModelWeights);
    CHECK(std::string(e.what()) == "backbone.layers.2.mixer.in_proj.weight: expected [328,64], found [656,32]");
  }
  CHECK_THROWS_WITH(bind_edited(tmp,
                                [](auto& ts) {
                                  StTensor* t = named(ts, "backbone.layers.3.mixer.k_proj.weight");
                                  t->shape = {31, 64};
                                  t->bytes.resize(31 * 64 * 2);
                                }),
                    "backbone.layers.3.mixer.k_proj.weight: expected [32,64], found [31,64]");
  CHECK_THROWS_WITH(bind_edited(tmp, [](auto& ts) { named(ts, "backbone.layers.0.mixer.A_log")->shape = {2, 4}; }),
                    "backbone.layers.0.mixer.A_log: expected [8], found [2,4]");
}

TEST(weights_report_unsupported_dtype) {
  if (fixture_model().empty()) return nemotron_test::skip("fixtures not found");
  TempDir tmp;
  REQUIRE(tmp.ok());
  // 8 BF16 values (16 bytes) reread as 2 I64 would change the shape; keep [8] by widening the bytes.
  CHECK_THROWS_WITH(bind_edited(tmp,
                                [](auto& ts) {
                                  StTensor* t = named(ts, "backbone.layers.5.mixer.dt_bias");
                                  t->dtype = "I64";
                                  t->bytes.resize(8 * 8);
                                }),
                    "backbone.layers.5.mixer.dt_bias: dtype I64 is not supported (expected BF16, F16 or F32)");
}

TEST(weights_accept_variants) {
  if (fixture_model().empty()) return nemotron_test::skip("fixtures not found");
  TempDir tmp;
  REQUIRE(tmp.ok());
  // Squeezed conv1d weight, legacy embedding name, F32 and F16 tensors.
  bind_edited(tmp, [](auto& ts) {
    named(ts, "backbone.layers.0.mixer.conv1d.weight")->shape = {192, 4};
    named(ts, "backbone.embeddings.weight")->name = "backbone.embedding.weight";
    StTensor* d = named(ts, "backbone.layers.0.mixer.D");
    d->dtype = "F32";
    d->bytes.resize(8 * 4);
    named(ts, "backbone.layers.0.mixer.A_log")->dtype = "F16";
  });

  // Tied embeddings: lm_head may be absent (then it is the embedding), or present and used.
  std::string tied = fixture_config_with("tie_word_embeddings", "true");
  bind_edited(tmp, [](auto& ts) { drop(ts, "lm_head.weight"); }, tied);
  ModelConfig c = load_model_config(tmp.path());
  CHECK(c.tie_word_embeddings);
  auto set = SafetensorsSet::open_dir(tmp.path());
  ModelWeights w = bind_weights(c, *set);
  CHECK(w.lm_head == w.embeddings);

  bind_edited(tmp, [](auto&) {}, tied);
  auto set2 = SafetensorsSet::open_dir(tmp.path());
  ModelWeights w2 = bind_weights(load_model_config(tmp.path()), *set2);
  CHECK(w2.lm_head != w2.embeddings && w2.lm_head->name == "lm_head.weight");
}

TEST(weights_require_biases_the_config_asks_for) {
  if (fixture_model().empty()) return nemotron_test::skip("fixtures not found");
  TempDir tmp;
  REQUIRE(tmp.ok());
  CHECK_THROWS_WITH(bind_edited(tmp, [](auto&) {}, fixture_config_with("mlp_bias", "true")),
                    "backbone.layers.1.mixer.up_proj.bias: missing from the checkpoint");
  CHECK_THROWS_WITH(bind_edited(tmp, [](auto&) {}, fixture_config_with("mamba_proj_bias", "true")),
                    "backbone.layers.0.mixer.in_proj.bias: missing from the checkpoint");
  CHECK_THROWS_WITH(bind_edited(tmp, [](auto&) {}, fixture_config_with("attention_bias", "true")),
                    "backbone.layers.3.mixer.q_proj.bias: missing from the checkpoint");
  // With the biases present (zeros), the attention layer gets them.
  bind_edited(
      tmp,
      [](auto& ts) {
        ts.push_back({"backbone.layers.3.mixer.q_proj.bias", "F32", {64}, std::string(64 * 4, '\0')});
        ts.push_back({"backbone.layers.3.mixer.k_proj.bias", "F32", {32}, std::string(32 * 4, '\0')});
        ts.push_back({"backbone.layers.3.mixer.v_proj.bias", "F32", {32}, std::string(32 * 4, '\0')});
        ts.push_back({"backbone.layers.3.mixer.o_proj.bias", "F32", {64}, std::string(64 * 4, '\0')});
      },
      fixture_config_with("attention_bias", "true"));
  auto set = SafetensorsSet::open_dir(tmp.path());
  ModelWeights w = bind_weights(load_model_config(tmp.path()), *set);
  CHECK(w.layers[3].attn.q_b && w.layers[3].attn.o_b->shape_string() == "[64]");
}
