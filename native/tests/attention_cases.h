// The attention case shared by the GPU test (cuda/test_cuda_attention.cpp) and the
// emulator test (cuda_emu/emu_test_attention.cpp): seeded q/k/v for spans that
// already hold `past` cached tokens, the caches (of either KV type) with sentinel
// rows past past+n that must stay untouched, and the CPU twin's answer: its
// outputs and its caches after the append.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/cpu_ops.h"
#include "common/dtype.h"
#include "common/thread_pool.h"

namespace nemotron_test {

struct AttnShape {
  int64_t qh, kvh, hd;
};
struct AttnSpanSpec {
  int64_t n, past;
};

// splitmix64 uniforms in [lo, hi): fast enough for 70k-row caches (mt19937 takes seconds).
inline void fill_uniform(float* v, size_t n, uint64_t seed, float lo, float hi) {
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; ++i) {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    v[i] = lo + (hi - lo) * static_cast<float>((z >> 40) * (1.0 / 16777216.0));
  }
}

struct AttentionCase {
  static constexpr float kSentinel = -777.0f;  // cache rows past past+n
  static constexpr int64_t kSlack = 2;

  AttnShape s;
  std::vector<AttnSpanSpec> specs;
  nemotron::DType kv = nemotron::DType::F32;
  int64_t rows = 0, max_n = 0, max_keys = 0, qw = 0, kvw = 0;
  std::vector<int64_t> row0;
  std::vector<float> q, k, v;
  std::vector<std::vector<uint8_t>> kc, vc;  // each span's caches before the call, raw `kv` elements
  std::vector<float> want;                   // cpu_attention's output
  std::vector<std::vector<uint8_t>> want_kc, want_vc;  // and its caches after the call

  int64_t capacity(size_t i) const { return specs[i].past + specs[i].n + kSlack; }
  size_t cache_bytes(size_t i) const {
    return static_cast<size_t>(capacity(i) * kvw) * nemotron::dtype_size(kv);
  }
  std::string label() const {
    std::string l = "q" + std::to_string(s.qh) + "/kv" + std::to_string(s.kvh) + "/hd" + std::to_string(s.hd) +
                    (kv == nemotron::DType::BF16 ? " bf16 KV" : " f32 KV") + " spans";
    for (const auto& sp : specs) l += " (n " + std::to_string(sp.n) + ", past " + std::to_string(sp.past) + ")";
    return l;
  }
  // The call's arguments over q, k, v, out (host buffers or their device copies).
  nemotron::AttentionArgs args(const float* q_, const float* k_, const float* v_, float* out) const {
    nemotron::AttentionArgs a;
    a.q_heads = s.qh;
    a.kv_heads = s.kvh;
    a.head_dim = s.hd;
    a.scale = 1.0f / std::sqrt(static_cast<float>(s.hd));
    a.q = q_;
    a.k = k_;
    a.v = v_;
    a.out = out;
    a.kv_dtype = kv;
    return a;
  }
};

namespace attention_detail {
// `n` values of type t from fp32 (bf16 rounded to nearest even, as both backends store them).
inline std::vector<uint8_t> encode(const std::vector<float>& f, nemotron::DType t) {
  std::vector<uint8_t> out(f.size() * nemotron::dtype_size(t));
  if (t == nemotron::DType::F32) {
    std::memcpy(out.data(), f.data(), out.size());
  } else {
    for (size_t i = 0; i < f.size(); ++i) {
      const uint16_t h = nemotron::f32_to_bf16(f[i]);
      std::memcpy(out.data() + 2 * i, &h, 2);
    }
  }
  return out;
}
}  // namespace attention_detail

// q is drawn from [-qamp, qamp]: larger values make the softmax peaked, so a
// missed or extra key shows in the output even over tens of thousands of keys.
inline AttentionCase make_attention_case(nemotron::ThreadPool& pool, AttnShape s, std::vector<AttnSpanSpec> specs,
                                         nemotron::DType kv, uint64_t seed, float qamp = 2.0f) {
  AttentionCase c;
  c.s = s;
  c.specs = std::move(specs);
  c.kv = kv;
  c.qw = s.qh * s.hd;
  c.kvw = s.kvh * s.hd;
  for (const auto& sp : c.specs) {
    c.row0.push_back(c.rows);
    c.rows += sp.n;
    c.max_n = std::max(c.max_n, sp.n);
    c.max_keys = std::max(c.max_keys, sp.past + sp.n);
  }
  c.q.resize(c.rows * c.qw);
  c.k.resize(c.rows * c.kvw);
  c.v.resize(c.rows * c.kvw);
  fill_uniform(c.q.data(), c.q.size(), seed, -qamp, qamp);
  fill_uniform(c.k.data(), c.k.size(), seed + 1, -1, 1);
  fill_uniform(c.v.data(), c.v.size(), seed + 2, -1, 1);

  const size_t ns = c.specs.size();
  for (size_t i = 0; i < ns; ++i) {
    std::vector<float> kf(c.capacity(i) * c.kvw, AttentionCase::kSentinel), vf = kf;
    fill_uniform(kf.data(), c.specs[i].past * c.kvw, seed + 10 + 2 * i, -1, 1);
    fill_uniform(vf.data(), c.specs[i].past * c.kvw, seed + 11 + 2 * i, -1, 1);
    c.kc.push_back(attention_detail::encode(kf, kv));
    c.vc.push_back(attention_detail::encode(vf, kv));
  }

  c.want_kc = c.kc;
  c.want_vc = c.vc;
  std::vector<nemotron::KvLayerState> states(ns);
  std::vector<nemotron::SeqSpan> spans(ns);
  for (size_t i = 0; i < ns; ++i) {
    states[i] = nemotron::KvLayerState{c.want_kc[i].data(), c.want_vc[i].data(), kv, c.capacity(i)};
    spans[i] = nemotron::SeqSpan{c.row0[i], c.specs[i].n, c.specs[i].past, nullptr, &states[i]};
  }
  c.want.assign(c.rows * c.qw, 0.f);
  nemotron::cpu_attention(pool, c.args(c.q.data(), c.k.data(), c.v.data(), c.want.data()), spans);
  return c;
}

}  // namespace nemotron_test
