#include "model/nemotron_h.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"

namespace nemotron {
namespace {

std::vector<float> to_f32(const TensorView& t) {
  std::vector<float> v(static_cast<size_t>(t.numel()));
  convert_to_f32(t.data, t.dtype, v.size(), v.data());
  return v;
}

Vector upload_opt(Backend& be, const TensorView* t) { return t ? be.upload_vector(to_f32(*t)) : Vector{}; }

// Checkpoint conv1d weight [C, 1, K] -> [K, C], so the conv runs over contiguous channels.
Vector upload_conv_weight(Backend& be, const TensorView& t, int64_t channels, int64_t K) {
  std::vector<float> src = to_f32(t), dst(src.size());
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t k = 0; k < K; ++k) dst[k * channels + c] = src[c * K + k];
  return be.upload_vector(dst);
}

}  // namespace

NemotronH::NemotronH(const ModelConfig& config, const ModelWeights& w, Backend& backend) : cfg_(config), be_(backend) {
  embeddings_ = be_.upload_matrix(*w.embeddings);
  lm_head_ = w.lm_head == w.embeddings ? embeddings_ : be_.upload_matrix(*w.lm_head);
  norm_f_ = be_.upload_vector(to_f32(*w.norm_f));
  layers_.resize(static_cast<size_t>(cfg_.num_layers));
  for (int64_t i = 0; i < cfg_.num_layers; ++i) {
    const LayerWeights& lw = w.layers[i];
    Layer& l = layers_[i];
    l.kind = lw.kind;
    l.norm_w = be_.upload_vector(to_f32(*lw.norm_w));
    switch (lw.kind) {
      case LayerKind::Mamba: {
        const MambaWeights& m = lw.mamba;
        l.mamba.in_proj = be_.upload_matrix(*m.in_proj_w);
        l.mamba.out_proj = be_.upload_matrix(*m.out_proj_w);
        l.mamba.in_proj_b = upload_opt(be_, m.in_proj_b);
        l.mamba.out_proj_b = upload_opt(be_, m.out_proj_b);
        l.mamba.conv_w = upload_conv_weight(be_, *m.conv_w, cfg_.conv_dim(), cfg_.conv_kernel);
        l.mamba.conv_b = upload_opt(be_, m.conv_b);
        std::vector<float> A = to_f32(*m.A_log);
        for (float& a : A) a = -std::exp(a);  // A = -exp(A_log), spec §2.3 step 4
        l.mamba.A = be_.upload_vector(A);
        l.mamba.dt_bias = be_.upload_vector(to_f32(*m.dt_bias));
        l.mamba.D = be_.upload_vector(to_f32(*m.D));
        l.mamba.norm_w = be_.upload_vector(to_f32(*m.norm_w));
        break;
      }
      case LayerKind::Attention: {
        const AttentionWeights& a = lw.attn;
        l.attn.q = be_.upload_matrix(*a.q_w);
        l.attn.k = be_.upload_matrix(*a.k_w);
        l.attn.v = be_.upload_matrix(*a.v_w);
        l.attn.o = be_.upload_matrix(*a.o_w);
        l.attn.q_b = upload_opt(be_, a.q_b);
        l.attn.k_b = upload_opt(be_, a.k_b);
        l.attn.v_b = upload_opt(be_, a.v_b);
        l.attn.o_b = upload_opt(be_, a.o_b);
        break;
      }
      case LayerKind::Mlp: {
        l.mlp.up = be_.upload_matrix(*lw.mlp.up_w);
        l.mlp.down = be_.upload_matrix(*lw.mlp.down_w);
        l.mlp.up_b = upload_opt(be_, lw.mlp.up_b);
        l.mlp.down_b = upload_opt(be_, lw.mlp.down_b);
        break;
      }
    }
  }
}

namespace {
// Column counts of the activation scratch buffers, shared by ensure_scratch and
// scratch_bytes so the memory plan cannot drift from what is allocated.
struct ScratchWidths {
  int64_t hidden, wide, aux, vocab;
  explicit ScratchWidths(const ModelConfig& c)
      : hidden(c.hidden_size),
        // the widest intermediate: Mamba in_proj output, MLP up output or q
        wide(std::max({c.in_proj_rows(), c.intermediate_size, c.q_width()})),
        aux(std::max({c.conv_dim(), c.d_inner(), c.q_width(), c.kv_width()})),
        vocab(c.vocab_size) {}
  int64_t per_row() const { return 3 * hidden + wide + 3 * aux + vocab; }
};
}  // namespace

uint64_t NemotronH::scratch_bytes(const ModelConfig& config, int64_t rows) {
  return static_cast<uint64_t>(rows) * static_cast<uint64_t>(ScratchWidths(config).per_row()) * sizeof(float);
}

uint64_t NemotronH::plan_workspaces(int64_t rows) {
  WorkspaceQuery q;
  q.max_rows = rows;
  q.weights.push_back(&lm_head_);  // rows wanting logits: at most every row (evaluate)
  bool has_attention = false, has_mamba = false;
  for (const Layer& l : layers_) {
    switch (l.kind) {
      case LayerKind::Mamba:
        q.weights.insert(q.weights.end(), {&l.mamba.in_proj, &l.mamba.out_proj});
        has_mamba = true;
        break;
      case LayerKind::Attention:
        q.weights.insert(q.weights.end(), {&l.attn.q, &l.attn.k, &l.attn.v, &l.attn.o});
        has_attention = true;
        break;
      case LayerKind::Mlp: q.weights.insert(q.weights.end(), {&l.mlp.up, &l.mlp.down}); break;
    }
  }
  if (has_attention) {  // the shapes attention_mixer passes
    q.attention.q_heads = cfg_.num_attention_heads;
    q.attention.kv_heads = cfg_.num_key_value_heads;
    q.attention.head_dim = cfg_.head_dim;
  }
  if (has_mamba) {  // the shapes mamba_mixer passes
    q.scan.heads = cfg_.mamba_heads;
    q.scan.head_dim = cfg_.mamba_head_dim;
    q.scan.groups = cfg_.n_groups;
    q.scan.state = cfg_.ssm_state_size;
    q.scan.chunk = cfg_.chunk_size;
  }
  return be_.plan_workspaces(q);
}

void NemotronH::ensure_scratch(int64_t rows) {
  if (rows <= scratch_rows_) return;
  const ScratchWidths w(cfg_);
  auto mk = [&](int64_t cols) { return be_.alloc(static_cast<size_t>(rows * cols)); };
  h_ = mk(w.hidden);
  x_ = mk(w.hidden);
  mix_out_ = mk(w.hidden);
  big_ = mk(w.wide);
  aux1_ = mk(w.aux);
  aux2_ = mk(w.aux);
  aux3_ = mk(w.aux);
  logits_ = mk(w.vocab);
  scratch_rows_ = rows;
}

void NemotronH::mamba_mixer(const Layer& l, int64_t layer, const float* x, int64_t rows, std::vector<SeqSpan>& spans,
                            float* out) {
  const Mamba& m = l.mamba;
  const int64_t di = cfg_.d_inner(), gn = cfg_.n_groups * cfg_.ssm_state_size, proj = cfg_.in_proj_rows();
  // zxbcdt = x in_proj^T, split [z | xBC | dt] (spec §2.3 step 1)
  float* zxbcdt = big_->data();
  be_.linear(x, rows, cfg_.hidden_size, m.in_proj, m.in_proj_b, zxbcdt, proj);

  ConvArgs conv;
  conv.channels = cfg_.conv_dim();
  conv.kernel = cfg_.conv_kernel;
  conv.x = zxbcdt + di;
  conv.ldx = proj;
  conv.weight = m.conv_w;
  conv.bias = m.conv_b;
  conv.out = aux1_->data();  // u = silu(conv(xBC)): [x | B | C]
  be_.conv1d_silu(conv, spans);

  ScanArgs scan;
  scan.heads = cfg_.mamba_heads;
  scan.head_dim = cfg_.mamba_head_dim;
  scan.groups = cfg_.n_groups;
  scan.state = cfg_.ssm_state_size;
  scan.chunk = cfg_.chunk_size;
  scan.x = conv.out;
  scan.ldx = conv.channels;
  scan.B = conv.out + di;
  scan.C = conv.out + di + gn;
  scan.ldbc = conv.channels;
  scan.dt = zxbcdt + di + conv.channels;
  scan.lddt = proj;
  scan.A = m.A;
  scan.dt_bias = m.dt_bias;
  scan.D = m.D;
  scan.dt_min = static_cast<float>(cfg_.dt_min);
  scan.dt_max = std::isfinite(cfg_.dt_max) ? static_cast<float>(cfg_.dt_max) : INFINITY;
  scan.y = aux2_->data();
  be_.ssm_scan(scan, spans);

  GatedNormArgs norm;
  norm.y = scan.y;
  norm.z = zxbcdt;  // z is the first d_inner columns
  norm.ldz = proj;
  norm.dim = di;
  norm.group_size = cfg_.norm_group_size();
  norm.weight = m.norm_w;
  norm.eps = static_cast<float>(cfg_.norm_eps);
  norm.out = aux2_->data();
  be_.gated_rms_norm(norm, rows);

  be_.linear(norm.out, rows, di, m.out_proj, m.out_proj_b, out, cfg_.hidden_size);
}

void NemotronH::attention_mixer(const Layer& l, int64_t layer, const float* x, int64_t rows,
                                std::vector<SeqSpan>& spans, float* out) {
  const Attn& a = l.attn;
  const int64_t H = cfg_.hidden_size;
  AttentionArgs args;
  args.q_heads = cfg_.num_attention_heads;
  args.kv_heads = cfg_.num_key_value_heads;
  args.head_dim = cfg_.head_dim;
  args.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(cfg_.head_dim)));
  float* q = big_->data();
  float* k = aux1_->data();
  float* v = aux2_->data();
  be_.linear(x, rows, H, a.q, a.q_b, q, cfg_.q_width());
  be_.linear(x, rows, H, a.k, a.k_b, k, cfg_.kv_width());
  be_.linear(x, rows, H, a.v, a.v_b, v, cfg_.kv_width());
  args.q = q;
  args.k = k;
  args.v = v;
  args.out = aux3_->data();
  args.kv_dtype = spans.front().kv->dtype;  // one engine, one cache type (backends check every span)
  be_.attention(args, spans);
  be_.linear(args.out, rows, cfg_.q_width(), a.o, a.o_b, out, H);
}

void NemotronH::mlp_mixer(const Layer& l, const float* x, int64_t rows, float* out) {
  float* up = big_->data();
  be_.linear(x, rows, cfg_.hidden_size, l.mlp.up, l.mlp.up_b, up, cfg_.intermediate_size);
  be_.relu_squared(up, rows * cfg_.intermediate_size);
  be_.linear(up, rows, cfg_.intermediate_size, l.mlp.down, l.mlp.down_b, out, cfg_.hidden_size);
}

float* NemotronH::forward(const std::vector<ForwardItem>& items, float* logits) {
  const int64_t H = cfg_.hidden_size, V = cfg_.vocab_size;
  int64_t rows = 0;
  bool decode_step = true;  // one token per sequence: the shape that recurs step after step
  for (const ForwardItem& it : items) {
    rows += it.n;
    decode_step = decode_step && it.n == 1;
  }
  if (rows == 0) return nullptr;
  ensure_scratch(rows);
  PassScope pass(be_, decode_step);

  std::vector<int32_t> ids;
  ids.reserve(static_cast<size_t>(rows));
  std::vector<SeqSpan> spans;
  for (const ForwardItem& it : items) {
    SeqSpan sp;
    sp.row0 = static_cast<int64_t>(ids.size());
    sp.n = it.n;
    sp.past = it.seq->length();
    spans.push_back(sp);
    ids.insert(ids.end(), it.tokens, it.tokens + it.n);
  }

  float* h = h_->data();
  float* x = x_->data();
  float* y = mix_out_->data();
  be_.embed(embeddings_, ids.data(), rows, h);
  for (int64_t i = 0; i < cfg_.num_layers; ++i) {
    const Layer& l = layers_[i];
    be_.rms_norm(h, rows, H, l.norm_w, static_cast<float>(cfg_.norm_eps), x);
    for (size_t s = 0; s < items.size(); ++s) {
      spans[s].mamba = l.kind == LayerKind::Mamba ? items[s].seq->mamba(i) : nullptr;
      spans[s].kv = l.kind == LayerKind::Attention ? items[s].seq->kv(i) : nullptr;
    }
    switch (l.kind) {
      case LayerKind::Mamba: mamba_mixer(l, i, x, rows, spans, y); break;
      case LayerKind::Attention: attention_mixer(l, i, x, rows, spans, y); break;
      case LayerKind::Mlp: mlp_mixer(l, x, rows, y); break;
    }
    be_.add(h, y, rows * H);
  }

  // Gather the rows whose logits were asked for, then norm_f + lm_head on just those.
  int64_t out_rows = 0;
  for (size_t s = 0; s < items.size(); ++s) {
    if (items[s].logits == LogitsWanted::None) continue;
    const int64_t first = items[s].logits == LogitsWanted::All ? 0 : items[s].n - 1;
    for (int64_t t = first; t < items[s].n; ++t, ++out_rows)
      if (out_rows != spans[s].row0 + t) be_.copy(h + out_rows * H, h + (spans[s].row0 + t) * H, H);
  }
  if (out_rows > 0) {
    be_.rms_norm(h, out_rows, H, norm_f_, static_cast<float>(cfg_.norm_eps), x);
    be_.linear(x, out_rows, H, lm_head_, Vector{}, logits_->data(), V);
  }
  pass.end();
  if (out_rows > 0 && logits) be_.to_host(logits_->data(), static_cast<size_t>(out_rows * V), logits);

  for (const ForwardItem& it : items) it.seq->advance(it.n);
  return out_rows > 0 ? logits_->data() : nullptr;
}

}  // namespace nemotron
