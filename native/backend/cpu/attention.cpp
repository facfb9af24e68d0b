#include <algorithm>
#include <cstring>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/vec.h"

namespace nemotron {

// Causal GQA attention with no positional encoding (spec §2.4). The spans' new
// keys/values are appended to their caches first; then query i of a span (at
// absolute position past+i) attends to cache rows 0..past+i. Query head h reads
// kv head h / (q_heads / kv_heads). Softmax subtracts the row max, in fp32.
void cpu_attention(ThreadPool& pool, const AttentionArgs& a, const std::vector<SeqSpan>& spans) {
  const int64_t hd = a.head_dim, kvw = a.kv_heads * hd, qw = a.q_heads * hd;
  const int64_t group = a.q_heads / a.kv_heads;

  for (const SeqSpan& sp : spans) {
    std::memcpy(sp.kv->k + sp.past * kvw, a.k + sp.row0 * kvw, sizeof(float) * sp.n * kvw);
    std::memcpy(sp.kv->v + sp.past * kvw, a.v + sp.row0 * kvw, sizeof(float) * sp.n * kvw);
  }

  struct Item {
    const SeqSpan* span;
    int64_t token;
  };
  std::vector<Item> items;
  for (const SeqSpan& sp : spans)
    for (int64_t i = 0; i < sp.n; ++i) items.push_back({&sp, i});
  const int64_t work = static_cast<int64_t>(items.size()) * a.q_heads;

  const VecOps& vo = vec_ops();
  pool.parallel_for(work, 1, [&](int64_t b, int64_t e) {
    std::vector<float> scores;
    for (int64_t wi = b; wi < e; ++wi) {
      const Item& it = items[wi / a.q_heads];
      const int64_t h = wi % a.q_heads, kvh = h / group;
      const SeqSpan& sp = *it.span;
      const int64_t keys = sp.past + it.token + 1;
      const float* q = a.q + (sp.row0 + it.token) * qw + h * hd;
      float* out = a.out + (sp.row0 + it.token) * qw + h * hd;
      scores.resize(keys);
      float mx = -INFINITY;
      for (int64_t j = 0; j < keys; ++j) {
        scores[j] = vo.dot(q, sp.kv->k + j * kvw + kvh * hd, hd) * a.scale;
        mx = std::max(mx, scores[j]);
      }
      float sum = 0;
      for (int64_t j = 0; j < keys; ++j) {
        scores[j] = std::exp(scores[j] - mx);
        sum += scores[j];
      }
      const float inv = 1.0f / sum;
      for (int64_t d = 0; d < hd; ++d) out[d] = 0;
      for (int64_t j = 0; j < keys; ++j) {
        vo.axpy(out, scores[j] * inv, sp.kv->v + j * kvw + kvh * hd, hd);
      }
    }
  });
}

}  // namespace nemotron
