// The NemotronH forward pass (spec §2), written once against the Backend op
// interface: ids -> embedding -> blocks (norm -> mixer -> residual) -> norm_f ->
// lm_head. One call runs a batch of independent sequences packed row-wise.
#pragma once
#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "engine/sequence_state.h"
#include "model/config.h"
#include "model/weights.h"

namespace nemotron {

// Which logits rows a sequence wants from a forward pass.
enum class LogitsWanted : uint8_t { None, Last, All };

struct ForwardItem {
  SequenceState* seq = nullptr;
  const int32_t* tokens = nullptr;  // host ids, already range-checked
  int64_t n = 0;
  LogitsWanted logits = LogitsWanted::Last;
};

class NemotronH {
 public:
  // Uploads the weights through the backend (zero-copy on the CPU).
  NemotronH(const ModelConfig& config, const ModelWeights& weights, Backend& backend);

  // Runs the batch; every sequence's state advances by its n tokens. Logits rows
  // are written to `logits` (host, [rows_requested, vocab]) in item order, unless
  // it is null. Returns the same rows in backend memory (valid until the next
  // forward pass), or null when no row was requested.
  // Each item's sequence must already have KV room for length + n tokens.
  float* forward(const std::vector<ForwardItem>& items, float* logits);

  // Bytes of activation scratch a forward pass of `rows` packed tokens allocates
  // (what ensure_scratch holds), for the memory plan.
  static uint64_t scratch_bytes(const ModelConfig& config, int64_t rows);
  // Bytes the backend's kernels may take beside that scratch during passes of
  // up to `rows` tokens (Backend::plan_workspaces for this model's weights and
  // layer shapes; the backend sizes its workspaces to it). Called once, at load.
  uint64_t plan_workspaces(int64_t rows);

 private:
  struct Mamba {
    Matrix in_proj, out_proj;
    Vector in_proj_b, out_proj_b, conv_w, conv_b, A, dt_bias, D, norm_w;
  };
  struct Attn {
    Matrix q, k, v, o;
    Vector q_b, k_b, v_b, o_b;
  };
  struct Mlp {
    Matrix up, down;
    Vector up_b, down_b;
  };
  struct Layer {
    LayerKind kind;
    Vector norm_w;
    Mamba mamba;
    Attn attn;
    Mlp mlp;
  };

  void ensure_scratch(int64_t rows);
  void mamba_mixer(const Layer& l, int64_t layer, const float* x, int64_t rows, std::vector<SeqSpan>& spans,
                   float* out);
  void attention_mixer(const Layer& l, int64_t layer, const float* x, int64_t rows, std::vector<SeqSpan>& spans,
                       float* out);
  void mlp_mixer(const Layer& l, const float* x, int64_t rows, float* out);

  const ModelConfig& cfg_;
  Backend& be_;
  Matrix embeddings_, lm_head_;
  Vector norm_f_;
  std::vector<Layer> layers_;

  // Activation scratch, sized for the largest batch seen so far.
  int64_t scratch_rows_ = 0;
  FloatBufferPtr h_, x_, mix_out_, big_, aux1_, aux2_, aux3_, logits_;
};

}  // namespace nemotron
