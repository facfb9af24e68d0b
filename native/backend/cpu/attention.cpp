#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/vec.h"
#include "common/error.h"

namespace nemotron {
namespace {

// Writes `n` fp32 values into a cache of type t (bf16: rounded to nearest even,
// as the CUDA kernel's __float2bfloat16_rn does).
void store_kv(const float* src, size_t n, DType t, void* dst) {
  if (t == DType::F32) {
    std::memcpy(dst, src, sizeof(float) * n);
    return;
  }
  uint16_t* d = static_cast<uint16_t*>(dst);
  for (size_t i = 0; i < n; ++i) d[i] = f32_to_bf16(src[i]);
}

// `n` cache values from element `index` on, as fp32: in place for an fp32
// cache, else widened into `buf` (exact: a bf16 is the top half of an fp32).
const float* load_kv(const void* cache, DType t, int64_t index, int64_t n, float* buf) {
  if (t == DType::F32) return static_cast<const float*>(cache) + index;
  convert_to_f32(static_cast<const uint16_t*>(cache) + index, t, static_cast<size_t>(n), buf);
  return buf;
}

}  // namespace

// Causal GQA attention with no positional encoding (spec §2.4). The spans' new
// keys/values are appended to their caches first; then query i of a span (at
// absolute position past+i) attends to cache rows 0..past+i. Query head h reads
// kv head h / (q_heads / kv_heads). Softmax subtracts the row max, in fp32.
// A bf16 cache holds the keys and values rounded to bf16; the math is the same.
void cpu_attention(ThreadPool& pool, const AttentionArgs& a, const std::vector<SeqSpan>& spans) {
  const int64_t hd = a.head_dim, kvw = a.kv_heads * hd, qw = a.q_heads * hd;
  const int64_t group = a.q_heads / a.kv_heads;
  const DType kt = a.kv_dtype;

  for (const SeqSpan& sp : spans) {
    if (sp.kv->dtype != kt) fail(ErrorCode::Internal, "attention: a span's KV cache type differs from the call's");
    const size_t at = static_cast<size_t>(sp.past * kvw) * dtype_size(kt), count = static_cast<size_t>(sp.n * kvw);
    store_kv(a.k + sp.row0 * kvw, count, kt, static_cast<char*>(sp.kv->k) + at);
    store_kv(a.v + sp.row0 * kvw, count, kt, static_cast<char*>(sp.kv->v) + at);
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
    std::vector<float> scores, row(static_cast<size_t>(hd));
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
        scores[j] = vo.dot(q, load_kv(sp.kv->k, kt, j * kvw + kvh * hd, hd, row.data()), hd) * a.scale;
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
        vo.axpy(out, scores[j] * inv, load_kv(sp.kv->v, kt, j * kvw + kvh * hd, hd, row.data()), hd);
      }
    }
  });
}

}  // namespace nemotron
