// Emulated cuda::attention (attention.cu: cache append, the flash-attention
// kernel at every tile shape, the split-key partials and their combine kernel)
// against its CPU twin cpu_attention: outputs to 1e-4 relative (fp32 on both
// sides, different summation orders and exp; see native/tests/cuda/
// test_cuda_attention.cpp), KV caches bit for bit including the rows past
// past+n, which must stay untouched. fp32 and bf16 caches (both sides round
// to nearest even on append). Cases: native/tests/attention_cases.h.
//
// The emulated devices decide the key splits: 132 SMs (decode splits), 1 SM
// (never splits: long unsplit tiles) and 1000 SMs (splits up to kMaxSplits).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "../attention_cases.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/cuda/cuda_ops.h"
#include "emu_test_util.h"

using namespace nemotron;
using namespace emu_test;
using nemotron_test::AttentionCase;
using nemotron_test::AttnSpanSpec;
using nemotron_test::make_attention_case;

namespace {

using Shape = nemotron_test::AttnShape;

// The tensor-core path rounds Q and the softmax weights to bf16 (2^-9 relative
// each): outputs (convex combinations of |v| <= 1) move by ~1e-3 (1.4e-3 at most here).
constexpr double kTensorCoreTolerance = 5e-3;

// Element offsets that break the vector alignment of q (16 bytes) or of the
// caches (16 bytes fp32, 8 bytes bf16), so the kernels take their scalar paths.
struct Misalign {
  int q = 0, cache = 0;
};

// Returns whether the call ran on tensor cores.
bool run_case(Shape s, const std::vector<AttnSpanSpec>& specs, uint32_t seed, Misalign mis = {},
              DType kv = DType::F32) {
  const AttentionCase c = make_attention_case(pool(), s, specs, kv, seed);
  std::string label = "attention " + c.label();
  if (mis.q) label += " q+" + std::to_string(mis.q);
  if (mis.cache) label += " caches+" + std::to_string(mis.cache);
  int dev = 0;
  cudaGetDevice(&dev);
  label += " device " + std::to_string(dev);

  const size_t ns = specs.size(), shift = mis.cache * dtype_size(kv);
  DevBuf<float> dq(c.q.size() + mis.q), dk(c.k), dv(c.v), dout(c.want.size());
  REQUIRE(cudaMemcpy(dq.p + mis.q, c.q.data(), sizeof(float) * c.q.size(), cudaMemcpyHostToDevice) == cudaSuccess);
  std::vector<std::unique_ptr<DevBuf<uint8_t>>> dkc, dvc;
  std::vector<cuda::DevSpan> hspans(ns);
  for (size_t i = 0; i < ns; ++i) {
    dkc.emplace_back(new DevBuf<uint8_t>(c.cache_bytes(i) + shift));
    dvc.emplace_back(new DevBuf<uint8_t>(c.cache_bytes(i) + shift));
    uint8_t* kp = dkc[i]->p + shift;
    uint8_t* vp = dvc[i]->p + shift;
    REQUIRE(cudaMemcpy(kp, c.kc[i].data(), c.kc[i].size(), cudaMemcpyHostToDevice) == cudaSuccess);
    REQUIRE(cudaMemcpy(vp, c.vc[i].data(), c.vc[i].size(), cudaMemcpyHostToDevice) == cudaSuccess);
    hspans[i] = cuda::DevSpan{c.row0[i], specs[i].n, specs[i].past, nullptr, nullptr, kp, vp, c.capacity(i)};
  }
  DevBuf<cuda::DevSpan> dspans(hspans);
  const AttentionArgs ga = c.args(dq.p + mis.q, dk.p, dv.p, dout.p);
  const bool tc = cuda::attention_uses_tensor_cores(ga, static_cast<int>(ns), c.max_n, c.max_keys);
  if (tc) label += " (tensor cores)";
  cuda::attention(ga, dspans.p, static_cast<int>(ns), c.max_n, c.max_keys, nullptr);
  require_no_launch_error();

  const double err = rel_err(dout.host(), c.want);
  if (tc) std::printf("  %s: max rel err %.3g\n", label.c_str(), err);
  EXPECT_LE(err, tc ? kTensorCoreTolerance : 1e-4, label + " output");
  for (size_t i = 0; i < ns; ++i) {
    std::vector<uint8_t> gk(c.cache_bytes(i)), gv(c.cache_bytes(i));
    REQUIRE(cudaMemcpy(gk.data(), dkc[i]->p + shift, gk.size(), cudaMemcpyDeviceToHost) == cudaSuccess);
    REQUIRE(cudaMemcpy(gv.data(), dvc[i]->p + shift, gv.size(), cudaMemcpyDeviceToHost) == cudaSuccess);
    if (gk != c.want_kc[i] || gv != c.want_vc[i])
      record_failure(__FILE__, __LINE__, label + ": KV cache of span " + std::to_string(i) + " differs");
  }
  return tc;
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

TEST(emu_attention_bf16_cache) {
  // The engine's cache type on CUDA: prefill, split decode over ragged spans,
  // unsplit tiles, and the scalar paths (odd head_dim, a cache off its 8-byte alignment).
  run_case(kSmall128, {{20, 35}}, 70, {}, DType::BF16);
  run_case(kSmall128, {{1, 300}, {1, 5}, {1, 70}}, 71, {}, DType::BF16);
  run_case(kSmall128, {{3, 260}, {1, 0}, {2, 64}}, 72, {}, DType::BF16);
  run_case({6, 3, 80}, {{5, 200}, {1, 3}}, 73, {}, DType::BF16);
  run_case({3, 1, 30}, {{4, 190}, {2, 1}}, 74, {}, DType::BF16);
  run_case({3, 1, 7}, {{4, 19}, {2, 1}}, 75, {}, DType::BF16);
  run_case(kSmall128, {{2, 150}, {1, 9}}, 76, Misalign{0, 1}, DType::BF16);
  run_case(kSmall128, {{2, 150}, {1, 9}}, 77, Misalign{0, 2}, DType::BF16);  // 4-byte aligned: still scalar
  UseDevice one(kOneSm);
  run_case(kSmall128, {{30, 100}}, 78, {}, DType::BF16);
}

TEST(emu_attention_bf16_prefill_tensor_cores) {
  // Prefill tiles over a bf16 cache run on tensor cores (WMMA): unsplit and split
  // (132 SMs: few blocks, so the keys are split and combined), ragged spans with
  // decode rows beside prefill rows, head dims padded to the 32/64/128 tiles, odd
  // head_dim (scalar staging), a GQA group that straddles row tiles.
  const std::vector<std::pair<Shape, std::vector<AttnSpanSpec>>> cases = {
      {kSmall128, {{20, 35}}},
      {kSmall128, {{20, 300}}},
      {kSmall128, {{13, 190}, {1, 400}, {4, 0}}},
      {{6, 3, 80}, {{30, 200}, {1, 3}}},
      {{4, 2, 36}, {{9, 130}}},
      {{3, 1, 30}, {{40, 19}}},
      {{8, 8, 64}, {{40, 0}}},
      {{12, 2, 16}, {{11, 70}}},
  };
  uint32_t seed = 80;
  for (const auto& c : cases) CHECK(run_case(c.first, c.second, seed++, {}, DType::BF16));
  {
    UseDevice one(kOneSm);  // never splits: several 64-row tiles each over all their keys
    CHECK(run_case(kSmall128, {{30, 100}}, seed++, {}, DType::BF16));
  }
  // NEMOTRON_ATTN_TC=0: the same calls on the fp32 kernel, to the fp32 tolerance.
  setenv("NEMOTRON_ATTN_TC", "0", 1);
  for (const auto& c : cases) CHECK(!run_case(c.first, c.second, seed++, {}, DType::BF16));
  unsetenv("NEMOTRON_ATTN_TC");
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
  // the engine's CUDA cache type: decode on the fp32 kernel, prefill on tensor cores
  CHECK(!run_case(k9b, {{1, 5000}, {1, 17}, {1, 900}, {1, 0}}, 63, {}, DType::BF16));
  CHECK(run_case(k9b, {{20, 3000}}, 64, {}, DType::BF16));
  CHECK(run_case(k9b, {{13, 190}, {2, 400}}, 65, {}, DType::BF16));
}

TEST(emu_attention_workspace_bound_covers_every_batch_shape) {
  // The memory plan counts attention_workspace_bound(heads) for the split-KV partials of any call: no batch shape
  // (spans, longest span, keys up to 128K) may need more, on devices with 1 to 1000 SMs; and the bound is within
  // a small factor of what some shape really needs (not a number so large that it would waste the budget).
  struct Heads {
    int64_t q, kv, dim;
  };
  for (const int device : {kH100, kA100, kOneSm, kManySm}) {
    UseDevice use(device);
    for (const Heads h : {Heads{40, 8, 128}, Heads{4, 2, 16}, Heads{8, 8, 64}, Heads{2, 1, 256}}) {
      AttentionArgs a;
      a.q_heads = h.q;
      a.kv_heads = h.kv;
      a.head_dim = h.dim;
      a.kv_dtype = DType::BF16;
      const size_t bound = cuda::attention_workspace_bound(a);
      size_t most = 0;
      for (int nspans : {1, 2, 3, 7, 16, 64, 255, 1024})
        for (int64_t max_n = 1; max_n <= 2048; max_n = max_n < 16 ? max_n + 1 : max_n * 5 / 4)
          for (int64_t keys : {int64_t(64), int64_t(1000), int64_t(8192), int64_t(32768), int64_t(131072)}) {
            const size_t need = cuda::attention_workspace_bytes(a, nspans, max_n, std::max(keys, max_n));
            most = std::max(most, need);
            if (need > bound) {
              record_failure(__FILE__, __LINE__, "device " + std::to_string(device) + ", head_dim " +
                                                     std::to_string(h.dim) + ": " + std::to_string(nspans) +
                                                     " spans of up to " + std::to_string(max_n) + " over " +
                                                     std::to_string(keys) + " keys need " + std::to_string(need) +
                                                     " > bound " + std::to_string(bound));
              return;
            }
          }
      if (device == kH100 || device == kA100) CHECK(most * 4 >= bound);
    }
  }
}
