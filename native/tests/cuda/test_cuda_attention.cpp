// cuda::attention against its CPU twin cpu_attention (same fp32 math) on host
// copies: output and the KV caches after the call, for fp32 and bf16 caches.
// Skips without a CUDA device. Cases: native/tests/attention_cases.h.
//
// Tolerance: max |gpu - cpu| / (1 + |cpu|) <= 1e-4. Both sides are fp32 but sum in
// different orders (CPU: AVX2 dot + sequential softmax sums; GPU: 4-wide fma chains,
// online softmax with per-tile rescaling, split partials merged in a tree) and use
// different exp implementations (expf vs exp2f, <= 2 ulp). Every output is a convex
// combination of V rows with |v| <= 1, so these differences stay ~sqrt(keys)*eps
// (~2e-5 at 70k keys) plus ~|score|*eps from the exponent; an indexing error (wrong
// row, head, mask or split boundary) moves outputs by far more with these inputs.
// A bf16 cache holds the same rounded values on both sides (both round to nearest
// even on append), so the tolerance is the same, except where a call runs on
// tensor cores (bf16 cache, prefill-sized tiles: cuda::attention_uses_tensor_cores):
// Q and the softmax weights are rounded to bf16 there, and outputs move by ~1e-3
// (kTensorCoreTolerance). The caches must match bit for bit, including untouched rows.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "../attention_cases.h"
#include "../test_framework.h"
#include "cuda_test_util.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/cuda/attention_bench.h"
#include "backend/cuda/cuda_ops.h"

using namespace nemotron;
using namespace nemotron_test;

namespace {

template <typename T>
struct DevBuf {
  T* p = nullptr;
  size_t n = 0;
  explicit DevBuf(size_t count) : n(count) { CU(cudaMalloc(&p, sizeof(T) * (count ? count : 1))); }
  ~DevBuf() { cudaFree(p); }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  void upload(const std::vector<T>& h) { CU(cudaMemcpy(p, h.data(), sizeof(T) * n, cudaMemcpyHostToDevice)); }
  std::vector<T> download() const {
    std::vector<T> h(n);
    CU(cudaMemcpy(h.data(), p, sizeof(T) * n, cudaMemcpyDeviceToHost));
    return h;
  }
};

using Shape = AttnShape;

constexpr double kTensorCoreTolerance = 5e-3;

ThreadPool& pool() {
  static ThreadPool p(ThreadPool::default_threads());
  return p;
}

// One cuda::attention call over `specs` vs cpu_attention on the same inputs.
void run_case(Shape s, const std::vector<AttnSpanSpec>& specs, uint64_t seed, float qamp = 2.0f,
              DType kv = DType::F32) {
  const AttentionCase c = make_attention_case(pool(), s, specs, kv, seed, qamp);
  const std::string label = c.label();
  const size_t ns = specs.size();

  DevBuf<float> dq(c.q.size()), dk(c.k.size()), dv(c.v.size()), dout(c.rows * c.qw);
  dq.upload(c.q);
  dk.upload(c.k);
  dv.upload(c.v);
  CU(cudaMemset(dout.p, 0xff, sizeof(float) * dout.n));  // NaN: unwritten outputs fail
  std::vector<std::unique_ptr<DevBuf<uint8_t>>> dkc, dvc;
  std::vector<cuda::DevSpan> hspans(ns);
  for (size_t i = 0; i < ns; ++i) {
    dkc.emplace_back(new DevBuf<uint8_t>(c.cache_bytes(i)));
    dvc.emplace_back(new DevBuf<uint8_t>(c.cache_bytes(i)));
    dkc[i]->upload(c.kc[i]);
    dvc[i]->upload(c.vc[i]);
    hspans[i] = cuda::DevSpan{c.row0[i], specs[i].n, specs[i].past, nullptr, nullptr,
                              dkc[i]->p, dvc[i]->p,  c.capacity(i)};
  }
  DevBuf<cuda::DevSpan> dspans(ns);
  dspans.upload(hspans);

  const AttentionArgs ga = c.args(dq.p, dk.p, dv.p, dout.p);
  const double tol = cuda::attention_uses_tensor_cores(ga, static_cast<int>(ns), c.max_n, c.max_keys)
                         ? kTensorCoreTolerance
                         : 1e-4;
  cuda::attention(ga, dspans.p, static_cast<int>(ns), c.max_n, c.max_keys, nullptr);
  CU(cudaGetLastError());
  CU(cudaDeviceSynchronize());

  const std::vector<float> out = dout.download();
  double worst = 0;
  size_t worst_i = 0, nonfinite = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    if (!std::isfinite(out[i])) {
      ++nonfinite;
      continue;
    }
    const double e = std::fabs(double(out[i]) - c.want[i]) / (1.0 + std::fabs(double(c.want[i])));
    if (e > worst) worst = e, worst_i = i;
  }
  if (nonfinite || !(worst <= tol)) {
    std::ostringstream m;
    m << label << (tol > 1e-4 ? " (tensor cores)" : "") << ": " << nonfinite << " non-finite outputs, max rel err " << worst << " at row "
      << worst_i / c.qw << " head " << (worst_i % c.qw) / s.hd << " dim " << worst_i % s.hd;
    record_failure(__FILE__, __LINE__, m.str());
  }
  for (size_t i = 0; i < ns; ++i)
    if (dkc[i]->download() != c.want_kc[i] || dvc[i]->download() != c.want_vc[i])
      record_failure(__FILE__, __LINE__, label + ": KV cache of span " + std::to_string(i) + " differs");
}

const Shape k9B{40, 8, 128};

}  // namespace

TEST(cuda_attention_9b_prefill) {
  if (!cuda_device_or_skip()) return;
  uint64_t seed = 100;
  for (int64_t T : {1, 7, 130, 1000})
    for (int64_t past : {int64_t(0), int64_t(1), T == 1000 ? int64_t(1500) : int64_t(300)})
      run_case(k9B, {{T, past}}, seed += 7);
}

TEST(cuda_attention_9b_decode) {
  if (!cuda_device_or_skip()) return;
  run_case(k9B, {{1, 4096}}, 201);
  run_case(k9B, {{1, 4096}}, 202, 8.0f);  // peaked softmax
  // Decode for several sequences of different lengths in one call (split-KV
  // chunks beyond a short sequence's keys must contribute nothing).
  run_case(k9B, {{1, 4096}, {1, 17}, {1, 0}, {1, 1000}, {1, 64}, {1, 63}}, 203);
  // Long context: 70k cached keys, 287 MB per cache tensor.
  run_case(k9B, {{1, 70000}}, 204, 8.0f);
}

TEST(cuda_attention_9b_bf16_cache) {
  // The engine's cache type on CUDA: the same cases over bf16 caches.
  if (!cuda_device_or_skip()) return;
  run_case(k9B, {{130, 300}}, 251, 2.0f, DType::BF16);
  run_case(k9B, {{1000, 1500}}, 252, 2.0f, DType::BF16);
  run_case(k9B, {{1, 4096}, {1, 17}, {1, 0}, {1, 1000}, {1, 64}, {1, 63}}, 253, 2.0f, DType::BF16);
  run_case(k9B, {{1, 70000}}, 254, 8.0f, DType::BF16);
  run_case(k9B, {{1, 4096}, {7, 100}, {130, 0}, {1, 0}, {64, 64}, {3, 2000}}, 255, 2.0f, DType::BF16);
}

TEST(cuda_attention_9b_prefill_fp32_kernel_on_bf16_cache) {
  // NEMOTRON_ATTN_TC=0: bf16-cache prefill on the fp32 kernel (the A/B the benchmark uses), to 1e-4.
  if (!cuda_device_or_skip()) return;
  setenv("NEMOTRON_ATTN_TC", "0", 1);
  run_case(k9B, {{130, 300}}, 261, 2.0f, DType::BF16);
  run_case(k9B, {{1000, 1500}}, 262, 2.0f, DType::BF16);
  unsetenv("NEMOTRON_ATTN_TC");
}

TEST(cuda_attention_9b_mixed_spans) {
  if (!cuda_device_or_skip()) return;
  run_case(k9B, {{1, 4096}, {7, 100}, {130, 0}, {1, 0}, {64, 64}, {3, 2000}}, 301);
  run_case(k9B, {{200, 0}, {1, 300}}, 302);
}

TEST(cuda_attention_odd_shapes) {
  if (!cuda_device_or_skip()) return;
  // 16/8: small padded tiles; 7: scalar loads (head_dim % 4 != 0); 64 and 256:
  // their own tile shapes; 96: padded 128 tiles; 40/1: a GQA group of 40.
  const Shape shapes[] = {{4, 2, 16}, {5, 1, 8}, {8, 2, 64}, {4, 2, 256}, {3, 3, 7}, {6, 2, 96}, {40, 1, 32}};
  uint64_t seed = 400;
  for (Shape s : shapes) {
    for (int64_t T : {1, 7, 130})
      for (int64_t past : {0, 50}) run_case(s, {{T, past}}, seed += 7);
    run_case(s, {{1, 4096}}, seed += 7);
    run_case(s, {{1, 4096}, {7, 3}, {1, 0}, {130, 900}}, seed += 7);
    // bf16 caches: 8-byte vector loads (head_dim % 4 == 0) or scalar ones (7)
    run_case(s, {{1, 4096}, {7, 3}, {1, 0}, {130, 900}}, seed += 7, 2.0f, DType::BF16);
  }
}

TEST(cuda_attention_incremental) {
  // Prefill in pieces then token-by-token decode, each call on the cache the
  // previous one left (the GPU cache is never re-uploaded), vs one CPU pass.
  if (!cuda_device_or_skip()) return;
  for (DType kv : {DType::F32, DType::BF16}) {
    const int64_t T = 300;
    const AttentionCase c = make_attention_case(pool(), Shape{8, 2, 128}, {{T, 0}}, kv, 501);
    DevBuf<float> dq(c.q.size()), dk(c.k.size()), dv(c.v.size()), dout(c.want.size());
    DevBuf<uint8_t> dkc(c.cache_bytes(0)), dvc(c.cache_bytes(0));
    dq.upload(c.q);
    dk.upload(c.k);
    dv.upload(c.v);
    dkc.upload(c.kc[0]);
    dvc.upload(c.vc[0]);
    CU(cudaMemset(dout.p, 0xff, sizeof(float) * dout.n));
    DevBuf<cuda::DevSpan> dspan(1);
    int64_t t0 = 0;
    std::vector<int64_t> pieces = {100, 37, 1, 100};
    for (int64_t i = 238; i < T; ++i) pieces.push_back(1);  // the rest as decode steps
    bool tc = false;
    for (int64_t n : pieces) {
      dspan.upload({cuda::DevSpan{0, n, t0, nullptr, nullptr, dkc.p, dvc.p, c.capacity(0)}});
      const AttentionArgs ga = c.args(dq.p + t0 * c.qw, dk.p + t0 * c.kvw, dv.p + t0 * c.kvw, dout.p + t0 * c.qw);
      tc = tc || cuda::attention_uses_tensor_cores(ga, 1, n, t0 + n);
      cuda::attention(ga, dspan.p, 1, n, t0 + n, nullptr);
      t0 += n;
    }
    CU(cudaDeviceSynchronize());
    const std::vector<float> out = dout.download();
    double worst = 0;
    for (size_t i = 0; i < out.size(); ++i) {
      const double e = std::fabs(double(out[i]) - c.want[i]) / (1.0 + std::fabs(double(c.want[i])));
      worst = std::isfinite(out[i]) ? std::max(worst, e) : 1e30;
    }
    CHECK(t0 == T);
    CHECK(worst <= (tc ? kTensorCoreTolerance : 1e-4));
    CHECK(dkc.download() == c.want_kc[0]);
    CHECK(dvc.download() == c.want_vc[0]);
  }
}

TEST(cuda_attention_bench_hook) {
  if (!cuda_device_or_skip()) return;
  for (DType kv : {DType::F32, DType::BF16}) {
    const double ms = cuda::cuda_attention_time_ms(1, 4096, kv, 5);
    CHECK(ms > 0 && ms < 1000);
    const double ms2 = cuda::cuda_attention_time_ms(130, 200, kv, 2);
    CHECK(ms2 > 0 && ms2 < 1000);
  }
}
