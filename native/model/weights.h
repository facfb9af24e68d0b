// The model's tensors by role, checked against the config: every expected tensor
// exists with the shape the config implies and a dtype we compute with (BF16,
// F16, F32). The first problem is reported by tensor name, e.g.
// "backbone.layers.3.mixer.in_proj.weight: expected [22656,4480], found [22656,4479]".
#pragma once
#include <memory>
#include <vector>

#include "model/config.h"
#include "model/safetensors.h"

namespace nemotron {

struct MambaWeights {
  const TensorView* in_proj_w = nullptr;   // [in_proj_rows, H]
  const TensorView* in_proj_b = nullptr;   // [in_proj_rows] or null
  const TensorView* conv_w = nullptr;      // [conv_dim, 1, K]
  const TensorView* conv_b = nullptr;      // [conv_dim] or null
  const TensorView* dt_bias = nullptr;     // [heads]
  const TensorView* A_log = nullptr;       // [heads]
  const TensorView* D = nullptr;           // [heads]
  const TensorView* norm_w = nullptr;      // [d_inner]
  const TensorView* out_proj_w = nullptr;  // [H, d_inner]
  const TensorView* out_proj_b = nullptr;  // [H] or null
};

struct AttentionWeights {
  const TensorView *q_w = nullptr, *k_w = nullptr, *v_w = nullptr, *o_w = nullptr;
  const TensorView *q_b = nullptr, *k_b = nullptr, *v_b = nullptr, *o_b = nullptr;  // null without attention_bias
};

struct MlpWeights {
  const TensorView *up_w = nullptr, *down_w = nullptr;
  const TensorView *up_b = nullptr, *down_b = nullptr;  // null without mlp_bias
};

struct LayerWeights {
  LayerKind kind = LayerKind::Mlp;
  const TensorView* norm_w = nullptr;  // [H] block pre-norm
  MambaWeights mamba;
  AttentionWeights attn;
  MlpWeights mlp;
};

struct ModelWeights {
  const TensorView* embeddings = nullptr;  // [vocab, H]
  std::vector<LayerWeights> layers;
  const TensorView* norm_f = nullptr;      // [H]
  const TensorView* lm_head = nullptr;     // [vocab, H] (== embeddings when tied)
};

// Resolves and checks every tensor. Throws Error(ModelWeights) on the first problem.
ModelWeights bind_weights(const ModelConfig& config, const SafetensorsSet& set);

}  // namespace nemotron
