// Binds checkpoint tensors to their roles (spec §2.6). Shapes are derived from
// the config, so a checkpoint that does not match its config.json fails here,
// by tensor name, instead of reading out of bounds in a kernel later.
#include "model/weights.h"

#include <string>
#include <vector>

#include "common/error.h"

namespace nemotron {
namespace {

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? "," : "") + std::to_string(s[i]);
  return out + "]";
}

class Binder {
 public:
  explicit Binder(const SafetensorsSet& set) : set_(set) {}

  // The tensor `name` with shape `shape` (or, when given, the alternative shape).
  const TensorView* require(const std::string& name, const Shape& shape, const Shape* alt_shape = nullptr) const {
    const TensorView* t = set_.find(name);
    if (!t) fail(ErrorCode::ModelWeights, name + ": missing from the checkpoint");
    check(*t, shape, alt_shape);
    return t;
  }

  // Like require, but only when `wanted` (an optional bias); null otherwise.
  const TensorView* require_if(bool wanted, const std::string& name, const Shape& shape) const {
    return wanted ? require(name, shape) : nullptr;
  }

  void check(const TensorView& t, const Shape& shape, const Shape* alt_shape) const {
    if (!t.dtype_known)
      fail(ErrorCode::ModelWeights,
           t.name + ": dtype " + t.dtype_str + " is not supported (expected BF16, F16 or F32)");
    if (t.shape == shape || (alt_shape && t.shape == *alt_shape)) return;
    fail(ErrorCode::ModelWeights, t.name + ": expected " + shape_str(shape) + ", found " + t.shape_string());
  }

  const SafetensorsSet& set() const { return set_; }

 private:
  const SafetensorsSet& set_;
};

MambaWeights bind_mamba(const ModelConfig& c, const Binder& b, const std::string& p) {
  const int64_t H = c.hidden_size, heads = c.mamba_heads, conv = c.conv_dim(), K = c.conv_kernel;
  const int64_t rows = c.in_proj_rows(), d_inner = c.d_inner();
  // Some exporters squeeze conv1d's singleton middle dim; the bytes are identical.
  const Shape conv_squeezed{conv, K};
  MambaWeights m;
  m.in_proj_w = b.require(p + "in_proj.weight", {rows, H});
  m.in_proj_b = b.require_if(c.mamba_proj_bias, p + "in_proj.bias", {rows});
  m.conv_w = b.require(p + "conv1d.weight", {conv, 1, K}, &conv_squeezed);
  m.conv_b = b.require_if(c.use_conv_bias, p + "conv1d.bias", {conv});
  m.dt_bias = b.require(p + "dt_bias", {heads});
  m.A_log = b.require(p + "A_log", {heads});
  m.D = b.require(p + "D", {heads});
  m.norm_w = b.require(p + "norm.weight", {d_inner});
  m.out_proj_w = b.require(p + "out_proj.weight", {H, d_inner});
  m.out_proj_b = b.require_if(c.mamba_proj_bias, p + "out_proj.bias", {H});
  return m;
}

AttentionWeights bind_attention(const ModelConfig& c, const Binder& b, const std::string& p) {
  const int64_t H = c.hidden_size, q = c.q_width(), kv = c.kv_width();
  const bool bias = c.attention_bias;
  AttentionWeights a;
  a.q_w = b.require(p + "q_proj.weight", {q, H});
  a.k_w = b.require(p + "k_proj.weight", {kv, H});
  a.v_w = b.require(p + "v_proj.weight", {kv, H});
  a.o_w = b.require(p + "o_proj.weight", {H, q});
  a.q_b = b.require_if(bias, p + "q_proj.bias", {q});
  a.k_b = b.require_if(bias, p + "k_proj.bias", {kv});
  a.v_b = b.require_if(bias, p + "v_proj.bias", {kv});
  a.o_b = b.require_if(bias, p + "o_proj.bias", {H});
  return a;
}

MlpWeights bind_mlp(const ModelConfig& c, const Binder& b, const std::string& p) {
  const int64_t H = c.hidden_size, I = c.intermediate_size;
  MlpWeights m;
  m.up_w = b.require(p + "up_proj.weight", {I, H});
  m.down_w = b.require(p + "down_proj.weight", {H, I});
  m.up_b = b.require_if(c.mlp_bias, p + "up_proj.bias", {I});
  m.down_b = b.require_if(c.mlp_bias, p + "down_proj.bias", {H});
  return m;
}

}  // namespace

ModelWeights bind_weights(const ModelConfig& c, const SafetensorsSet& set) {
  Binder b(set);
  const int64_t H = c.hidden_size;
  ModelWeights w;

  // HF's load hook renames the legacy "backbone.embedding." prefix; accept both.
  const char* kEmbeddings = "backbone.embeddings.weight";
  const char* kLegacyEmbeddings = "backbone.embedding.weight";
  w.embeddings = b.require(set.find(kEmbeddings) || !set.find(kLegacyEmbeddings) ? kEmbeddings : kLegacyEmbeddings,
                           {c.vocab_size, H});

  // In index order, so the first problem reported is in the lowest layer.
  w.layers.resize(c.layers.size());
  for (size_t i = 0; i < c.layers.size(); ++i) {
    const std::string prefix = "backbone.layers." + std::to_string(i) + ".";
    LayerWeights& l = w.layers[i];
    l.kind = c.layers[i];
    l.norm_w = b.require(prefix + "norm.weight", {H});
    const std::string mixer = prefix + "mixer.";
    switch (l.kind) {
      case LayerKind::Mamba: l.mamba = bind_mamba(c, b, mixer); break;
      case LayerKind::Attention: l.attn = bind_attention(c, b, mixer); break;
      case LayerKind::Mlp: l.mlp = bind_mlp(c, b, mixer); break;
    }
  }

  w.norm_f = b.require("backbone.norm_f.weight", {H});
  // Tied checkpoints usually omit lm_head.weight; when one is present anyway it wins.
  if (c.tie_word_embeddings && !set.find("lm_head.weight"))
    w.lm_head = w.embeddings;
  else
    w.lm_head = b.require("lm_head.weight", {c.vocab_size, H});
  return w;
}

}  // namespace nemotron
