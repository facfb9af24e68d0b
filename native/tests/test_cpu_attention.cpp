// Causal GQA attention with a KV cache vs the textbook softmax(QK^T/sqrt(d))V in
// double, including prefill in pieces and token-by-token decode, over fp32 and
// bf16 caches (for bf16 the reference reads k and v rounded to bf16, as stored).
#include <cstring>

#include "backend/cpu/cpu_ops.h"
#include "common/cpu_features.h"
#include "common/dtype.h"
#include "test_framework.h"
#include "test_util.h"

using namespace nemotron;
using namespace nemotron_test;

namespace {

std::vector<double> attention_reference(const std::vector<float>& q, const std::vector<float>& k,
                                        const std::vector<float>& v, int64_t T, int64_t qh, int64_t kvh, int64_t hd) {
  std::vector<double> out(T * qh * hd, 0);
  const double scale = 1.0 / std::sqrt(double(hd));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < qh; ++h) {
      const int64_t g = h / (qh / kvh);
      std::vector<double> s(t + 1);
      double mx = -1e300, sum = 0;
      for (int64_t j = 0; j <= t; ++j) {
        double dot = 0;
        for (int64_t d = 0; d < hd; ++d) dot += double(q[(t * qh + h) * hd + d]) * k[(j * kvh + g) * hd + d];
        s[j] = dot * scale;
        mx = std::max(mx, s[j]);
      }
      for (auto& e : s) sum += (e = std::exp(e - mx));
      for (int64_t j = 0; j <= t; ++j)
        for (int64_t d = 0; d < hd; ++d) out[(t * qh + h) * hd + d] += s[j] / sum * v[(j * kvh + g) * hd + d];
    }
  return out;
}

// x rounded to bf16 and back (what a bf16 cache holds).
std::vector<float> bf16_rounded(std::vector<float> x) {
  for (float& f : x) f = bf16_to_f32(f32_to_bf16(f));
  return x;
}

}  // namespace

TEST(cpu_attention_matches_reference_with_cache) {
  // both the AVX2 and the portable vector primitives (restored afterwards)
  for (bool portable : {false, true}) {
    cpu_features_force_portable(portable);
    ThreadPool pool(2);
    struct Shape {
      int64_t qh, kvh, hd;
    };
    for (Shape s : {Shape{4, 2, 16}, Shape{5, 1, 8}, Shape{3, 3, 7}, Shape{8, 2, 128}}) {
      const int64_t T = 23;
      auto q = random_vec(T * s.qh * s.hd, 20, -2, 2), k = random_vec(T * s.kvh * s.hd, 21, -2, 2),
           v = random_vec(T * s.kvh * s.hd, 22);
      for (DType kt : {DType::F32, DType::BF16})
      for (std::vector<int64_t> pieces : {std::vector<int64_t>{T}, {10, 1, 1, 11}, std::vector<int64_t>(T, 1)}) {
        const bool bf16 = kt == DType::BF16;
        const auto ref = bf16 ? attention_reference(q, bf16_rounded(k), bf16_rounded(v), T, s.qh, s.kvh, s.hd)
                              : attention_reference(q, k, v, T, s.qh, s.kvh, s.hd);
        std::vector<uint8_t> kc(T * s.kvh * s.hd * dtype_size(kt)), vc(kc.size());
        std::vector<float> out(T * s.qh * s.hd);
        KvLayerState kv{kc.data(), vc.data(), kt, T};
        int64_t t0 = 0;
        for (int64_t n : pieces) {
          AttentionArgs a;
          a.q_heads = s.qh;
          a.kv_heads = s.kvh;
          a.head_dim = s.hd;
          a.scale = 1.0f / std::sqrt(float(s.hd));
          a.q = q.data() + t0 * s.qh * s.hd;
          a.k = k.data() + t0 * s.kvh * s.hd;
          a.v = v.data() + t0 * s.kvh * s.hd;
          a.out = out.data() + t0 * s.qh * s.hd;
          a.kv_dtype = kt;
          cpu_attention(pool, a, {SeqSpan{0, n, t0, nullptr, &kv}});
          t0 += n;
        }
        CHECK(max_rel_err(out.data(), ref.data(), ref.size()) < 1e-5);
        if (bf16) {  // the cache holds exactly the rounded keys
          const std::vector<float> kr = bf16_rounded(k);
          bool same = true;
          for (size_t i = 0; i < kr.size(); ++i) {
            uint16_t h;
            std::memcpy(&h, kc.data() + 2 * i, 2);
            same = same && bf16_to_f32(h) == kr[i];
          }
          CHECK(same);
        }
      }
    }
  }
  cpu_features_force_portable(false);
}
