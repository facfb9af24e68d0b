// Emulated cuda::attention (attention.cu: cache append, the flash-attention
// kernel at every tile shape, the split-key partials and their combine kernel)
// against its CPU twin cpu_attention: outputs to 1e-4 relative (fp32 on both
// sides, different summation orders and exp; see native/tests/cuda/
// test_cuda_attention.cpp), KV caches bit for bit including the rows past
// past+n, which must stay untouched.
//
// The emulated devices decide the key splits: 132 SMs (decode splits), 1 SM
// (never splits: long unsplit tiles) and 1000 SMs (splits up to kMaxSplits).
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "backend/cuda/cuda_ops.h"
#include "emu_test_util.h"

using namespace nemotron;
using namespace emu_test;

namespace {

struct Shape {
  int64_t qh, kvh, hd;
};
struct SpanSpec {
  int64_t n, past;
};

constexpr float kSentinel = -777.0f;  // cache rows past past+n
constexpr int64_t kSlack = 2;

// Pointer offsets (in floats) that break 16-byte alignment of q or of the
// caches, so the kernels take their scalar paths.
struct Misalign {
  int q = 0, cache = 0;
};

void run_case(Shape s, const std::vector<SpanSpec>& specs, uint32_t seed, Misalign mis = {}) {
  std::ostringstream label;
  label << "attention q" << s.qh << "/kv" << s.kvh << "/hd" << s.hd << " spans";
  for (auto& sp : specs) label << " (n " << sp.n << ", past " << sp.past << ")";
  if (mis.q) label << " q+" << mis.q;
  if (mis.cache) label << " caches+" << mis.cache;
  int dev = 0;
  cudaGetDevice(&dev);
  label << " device " << dev;

  const int64_t qw = s.qh * s.hd, kvw = s.kvh * s.hd;
  int64_t rows = 0, max_n = 0, max_keys = 0;
  for (auto& sp : specs) {
    rows += sp.n;
    max_n = std::max(max_n, sp.n);
    max_keys = std::max(max_keys, sp.past + sp.n);
  }
  const std::vector<float> q = random_vec(rows * qw, seed, -2, 2);
  const std::vector<float> k = random_vec(rows * kvw, seed + 1);
  const std::vector<float> v = random_vec(rows * kvw, seed + 2);

  const size_t ns = specs.size();
  std::vector<std::vector<float>> kc(ns), vc(ns);
  std::vector<SeqSpan> spans(ns);
  int64_t row0 = 0;
  for (size_t i = 0; i < ns; ++i) {
    const int64_t cap = specs[i].past + specs[i].n + kSlack;
    kc[i].assign(cap * kvw, kSentinel);
    vc[i].assign(cap * kvw, kSentinel);
    const std::vector<float> pk = random_vec(specs[i].past * kvw, seed + 10 + 2 * uint32_t(i));
    const std::vector<float> pv = random_vec(specs[i].past * kvw, seed + 11 + 2 * uint32_t(i));
    std::copy(pk.begin(), pk.end(), kc[i].begin());
    std::copy(pv.begin(), pv.end(), vc[i].begin());
    spans[i].row0 = row0;
    spans[i].n = specs[i].n;
    spans[i].past = specs[i].past;
    row0 += specs[i].n;
  }

  // Device side first (the CPU call appends to its caches in place).
  DevBuf<float> dq(rows * qw + mis.q), dk(k), dv(v), dout(rows * qw);
  REQUIRE(cudaMemcpy(dq.p + mis.q, q.data(), sizeof(float) * q.size(), cudaMemcpyHostToDevice) == cudaSuccess);
  std::vector<std::unique_ptr<DevBuf<float>>> dkc, dvc;
  std::vector<cuda::DevSpan> hspans(ns);
  for (size_t i = 0; i < ns; ++i) {
    dkc.emplace_back(new DevBuf<float>(kc[i].size() + mis.cache));
    dvc.emplace_back(new DevBuf<float>(vc[i].size() + mis.cache));
    float* kp = dkc[i]->p + mis.cache;
    float* vp = dvc[i]->p + mis.cache;
    REQUIRE(cudaMemcpy(kp, kc[i].data(), sizeof(float) * kc[i].size(), cudaMemcpyHostToDevice) == cudaSuccess);
    REQUIRE(cudaMemcpy(vp, vc[i].data(), sizeof(float) * vc[i].size(), cudaMemcpyHostToDevice) == cudaSuccess);
    hspans[i] = cuda::DevSpan{spans[i].row0, specs[i].n, specs[i].past, nullptr, nullptr, kp, vp,
                              specs[i].past + specs[i].n + kSlack};
  }
  DevBuf<cuda::DevSpan> dspans(hspans);
  AttentionArgs ga;
  ga.q_heads = s.qh;
  ga.kv_heads = s.kvh;
  ga.head_dim = s.hd;
  ga.scale = 1.0f / std::sqrt(static_cast<float>(s.hd));
  ga.q = dq.p + mis.q;
  ga.k = dk.p;
  ga.v = dv.p;
  ga.out = dout.p;
  cuda::attention(ga, dspans.p, static_cast<int>(ns), max_n, max_keys, nullptr);
  require_no_launch_error();

  std::vector<KvLayerState> kv(ns);
  for (size_t i = 0; i < ns; ++i) {
    kv[i] = KvLayerState{kc[i].data(), vc[i].data(), specs[i].past + specs[i].n + kSlack};
    spans[i].kv = &kv[i];
  }
  std::vector<float> want(rows * qw);
  AttentionArgs ca = ga;
  ca.q = q.data();
  ca.k = k.data();
  ca.v = v.data();
  ca.out = want.data();
  cpu_attention(pool(), ca, spans);

  EXPECT_LE(rel_err(dout.host(), want), 1e-4, label.str() + " output");
  for (size_t i = 0; i < ns; ++i) {
    std::vector<float> gk(kc[i].size()), gv(vc[i].size());
    REQUIRE(cudaMemcpy(gk.data(), dkc[i]->p + mis.cache, sizeof(float) * gk.size(), cudaMemcpyDeviceToHost) == cudaSuccess);
    REQUIRE(cudaMemcpy(gv.data(), dvc[i]->p + mis.cache, sizeof(float) * gv.size(), cudaMemcpyDeviceToHost) == cudaSuccess);
    if (std::memcmp(gk.data(), kc[i].data(), sizeof(float) * gk.size()) != 0 ||
        std::memcmp(gv.data(), vc[i].data(), sizeof(float) * gv.size()) != 0)
      record_failure(__FILE__, __LINE__, label.str() + ": KV cache of span " + std::to_string(i) + " differs");
  }
}

const Shape kSmall128{10, 2, 128};  // the 9B's head_dim and GQA group (5), fewer heads

}  // namespace

TEST(emu_attention_prefill) {
  run_case(kSmall128, {{1, 0}}, 1);
  run_case(kSmall128, {{7, 0}}, 2);
  run_case(kSmall128, {{20, 35}}, 3);
  run_case({6, 3, 80}, {{5, 200}, {1, 3}}, 4);  // head_dim 80 on the 128 tile (zero padding)
  run_case({4, 2, 36}, {{9, 130}}, 5);          // head_dim 36 on the 64 tile
  run_case({8, 8, 64}, {{40, 0}}, 6);           // no GQA, 64-row tiles
}

TEST(emu_attention_decode_splits) {
  // 132 SMs: few (span, kv head, tile) blocks, so the keys are split and combined
  run_case(kSmall128, {{1, 300}, {1, 5}, {1, 70}}, 10);  // ragged decode batch
  run_case(kSmall128, {{3, 260}, {1, 0}, {2, 64}}, 11);  // mixed prefill and decode
  run_case({2, 1, 32}, {{1, 700}, {2, 129}}, 12);        // head_dim 32 tile
}

TEST(emu_attention_unsplit_long_tiles) {
  UseDevice one(kOneSm);
  run_case(kSmall128, {{30, 100}}, 20);  // several 64-row tiles, no split
  run_case({8, 8, 64}, {{40, 0}, {3, 77}}, 21);
  run_case(kSmall128, {{1, 300}, {2, 40}}, 22);  // decode without splits
}

TEST(emu_attention_split_cap) {
  // 1000 SMs ask for ~4000 blocks: 33001 keys (516 key tiles) would give 258 splits, over
  // combine_kernel's kMaxSplits (256); capped, then rounded to whole tiles: 172 splits of 3 tiles.
  UseDevice many(kManySm);
  run_case({2, 1, 32}, {{1, 33000}}, 30);
}

TEST(emu_attention_scalar_paths) {
  run_case({3, 1, 30}, {{4, 190}, {2, 1}}, 40);  // head_dim % 4 != 0: no float4 anywhere
  run_case(kSmall128, {{2, 150}}, 41, Misalign{1, 0});  // q not 16-byte aligned
  run_case(kSmall128, {{2, 150}, {1, 9}}, 42, Misalign{0, 1});  // caches not 16-byte aligned
}

TEST(emu_attention_head_dim_256) {
  // 97 KB of dynamic shared memory: needs the opt-in, per device
  run_case({4, 1, 200}, {{3, 100}}, 50);
  UseDevice one(kOneSm);
  run_case({4, 1, 200}, {{3, 100}, {1, 7}}, 51);
}

TEST(emu_attention_9b_shapes) {
  if (!full()) {
    nemotron_test::skip("9B-shaped attention needs NEMOTRON_EMU_FULL=1");
    return;
  }
  const Shape k9b{40, 8, 128};
  run_case(k9b, {{1, 5000}, {1, 17}, {1, 900}, {1, 0}}, 60);
  run_case(k9b, {{20, 3000}}, 61);
  run_case(k9b, {{13, 190}, {2, 400}}, 62);
}
