// cuda::attention against its CPU twin cpu_attention (same fp32 math) on host
// copies: output and the KV caches after the call. Skips without a CUDA device.
//
// Tolerance: max |gpu - cpu| / (1 + |cpu|) <= 1e-4. Both sides are fp32 but sum in
// different orders (CPU: AVX2 dot + sequential softmax sums; GPU: 4-wide fma chains,
// online softmax with per-tile rescaling, split partials merged in a tree) and use
// different exp implementations (expf vs exp2f, <= 2 ulp). Every output is a convex
// combination of V rows with |v| <= 1, so these differences stay ~sqrt(keys)*eps
// (~2e-5 at 70k keys) plus ~|score|*eps from the exponent; an indexing error (wrong
// row, head, mask or split boundary) moves outputs by far more with these inputs.
// The caches must match bit for bit (a plain copy), including untouched rows.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

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

// splitmix64: fast enough for the 70k-row caches (mt19937 would take seconds).
void fill(float* v, size_t n, uint64_t seed, float lo, float hi) {
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; ++i) {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    v[i] = lo + (hi - lo) * static_cast<float>((z >> 40) * (1.0 / 16777216.0));
  }
}

struct Shape {
  int64_t qh, kvh, hd;
};
struct SpanSpec {
  int64_t n, past;
};

constexpr float kSentinel = -777.0f;  // cache rows past past+n must stay untouched
constexpr int64_t kSlack = 2;

ThreadPool& pool() {
  static ThreadPool p(ThreadPool::default_threads());
  return p;
}

// One cuda::attention call over `specs` vs cpu_attention on the same inputs.
// q is drawn from [-qamp, qamp]: larger values make the softmax peaked, so a
// missed or extra key shows in the output even over tens of thousands of keys.
void run_case(Shape s, const std::vector<SpanSpec>& specs, uint64_t seed, float qamp = 2.0f) {
  std::ostringstream label;
  label << "q" << s.qh << "/kv" << s.kvh << "/hd" << s.hd << " spans";
  for (auto& sp : specs) label << " (n " << sp.n << ", past " << sp.past << ")";

  const int64_t qw = s.qh * s.hd, kvw = s.kvh * s.hd;
  int64_t rows = 0, max_n = 0, max_keys = 0;
  for (auto& sp : specs) {
    rows += sp.n;
    max_n = std::max(max_n, sp.n);
    max_keys = std::max(max_keys, sp.past + sp.n);
  }
  std::vector<float> q(rows * qw), k(rows * kvw), v(rows * kvw);
  fill(q.data(), q.size(), seed, -qamp, qamp);
  fill(k.data(), k.size(), seed + 1, -1, 1);
  fill(v.data(), v.size(), seed + 2, -1, 1);

  const size_t ns = specs.size();
  std::vector<std::vector<float>> kc(ns), vc(ns);
  std::vector<KvLayerState> kv_cpu(ns);
  std::vector<SeqSpan> spans_cpu(ns);
  int64_t row0 = 0;
  for (size_t i = 0; i < ns; ++i) {
    const int64_t cap = specs[i].past + specs[i].n + kSlack;
    kc[i].assign(cap * kvw, kSentinel);
    vc[i].assign(cap * kvw, kSentinel);
    fill(kc[i].data(), specs[i].past * kvw, seed + 10 + 2 * i, -1, 1);
    fill(vc[i].data(), specs[i].past * kvw, seed + 11 + 2 * i, -1, 1);
    spans_cpu[i].row0 = row0;
    spans_cpu[i].n = specs[i].n;
    spans_cpu[i].past = specs[i].past;
    row0 += specs[i].n;
  }

  // Device copies first (the CPU call updates its caches in place).
  DevBuf<float> dq(q.size()), dk(k.size()), dv(v.size()), dout(rows * qw);
  dq.upload(q);
  dk.upload(k);
  dv.upload(v);
  CU(cudaMemset(dout.p, 0xff, sizeof(float) * dout.n));  // NaN: unwritten outputs fail
  std::vector<std::unique_ptr<DevBuf<float>>> dkc, dvc;
  std::vector<cuda::DevSpan> hspans(ns);
  for (size_t i = 0; i < ns; ++i) {
    dkc.emplace_back(new DevBuf<float>(kc[i].size()));
    dvc.emplace_back(new DevBuf<float>(vc[i].size()));
    dkc[i]->upload(kc[i]);
    dvc[i]->upload(vc[i]);
    hspans[i] = cuda::DevSpan{spans_cpu[i].row0, specs[i].n, specs[i].past, nullptr, nullptr,
                              dkc[i]->p,         dvc[i]->p,  specs[i].past + specs[i].n + kSlack};
  }
  DevBuf<cuda::DevSpan> dspans(ns);
  dspans.upload(hspans);

  AttentionArgs ga;
  ga.q_heads = s.qh;
  ga.kv_heads = s.kvh;
  ga.head_dim = s.hd;
  ga.scale = 1.0f / std::sqrt(static_cast<float>(s.hd));
  ga.q = dq.p;
  ga.k = dk.p;
  ga.v = dv.p;
  ga.out = dout.p;
  cuda::attention(ga, dspans.p, static_cast<int>(ns), max_n, max_keys, nullptr);
  CU(cudaGetLastError());
  CU(cudaDeviceSynchronize());

  std::vector<float> out_ref(rows * qw, 0.f);
  for (size_t i = 0; i < ns; ++i) {
    kv_cpu[i] = KvLayerState{kc[i].data(), vc[i].data(), specs[i].past + specs[i].n + kSlack};
    spans_cpu[i].kv = &kv_cpu[i];
  }
  AttentionArgs ca = ga;
  ca.q = q.data();
  ca.k = k.data();
  ca.v = v.data();
  ca.out = out_ref.data();
  cpu_attention(pool(), ca, spans_cpu);

  const std::vector<float> out = dout.download();
  double worst = 0;
  size_t worst_i = 0, nonfinite = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    if (!std::isfinite(out[i])) {
      ++nonfinite;
      continue;
    }
    const double e = std::fabs(double(out[i]) - out_ref[i]) / (1.0 + std::fabs(double(out_ref[i])));
    if (e > worst) worst = e, worst_i = i;
  }
  if (nonfinite || !(worst <= 1e-4)) {
    std::ostringstream m;
    m << label.str() << ": " << nonfinite << " non-finite outputs, max rel err " << worst << " at row "
      << worst_i / qw << " head " << (worst_i % qw) / s.hd << " dim " << worst_i % s.hd;
    record_failure(__FILE__, __LINE__, m.str());
  }
  for (size_t i = 0; i < ns; ++i) {
    const std::vector<float> gk = dkc[i]->download(), gv = dvc[i]->download();
    if (std::memcmp(gk.data(), kc[i].data(), sizeof(float) * gk.size()) != 0 ||
        std::memcmp(gv.data(), vc[i].data(), sizeof(float) * gv.size()) != 0)
      record_failure(__FILE__, __LINE__, label.str() + ": KV cache of span " + std::to_string(i) + " differs");
  }
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
  }
}

TEST(cuda_attention_incremental) {
  // Prefill in pieces then token-by-token decode, each call on the cache the
  // previous one left (the GPU cache is never re-uploaded), vs one CPU pass.
  if (!cuda_device_or_skip()) return;
  const Shape s{8, 2, 128};
  const int64_t T = 300, qw = s.qh * s.hd, kvw = s.kvh * s.hd;
  std::vector<float> q(T * qw), k(T * kvw), v(T * kvw);
  fill(q.data(), q.size(), 501, -2, 2);
  fill(k.data(), k.size(), 502, -1, 1);
  fill(v.data(), v.size(), 503, -1, 1);
  std::vector<float> kc(T * kvw), vc(T * kvw), ref(T * qw);
  KvLayerState kv{kc.data(), vc.data(), T};
  AttentionArgs ca;
  ca.q_heads = s.qh;
  ca.kv_heads = s.kvh;
  ca.head_dim = s.hd;
  ca.scale = 1.0f / std::sqrt(float(s.hd));
  ca.q = q.data();
  ca.k = k.data();
  ca.v = v.data();
  ca.out = ref.data();
  cpu_attention(pool(), ca, {SeqSpan{0, T, 0, nullptr, &kv}});

  DevBuf<float> dq(q.size()), dk(k.size()), dv(v.size()), dout(ref.size()), dkc(kc.size()), dvc(vc.size());
  dq.upload(q);
  dk.upload(k);
  dv.upload(v);
  CU(cudaMemset(dout.p, 0xff, sizeof(float) * dout.n));
  DevBuf<cuda::DevSpan> dspan(1);
  int64_t t0 = 0;
  std::vector<int64_t> pieces = {100, 37, 1, 100};
  for (int64_t i = 238; i < T; ++i) pieces.push_back(1);  // the rest as decode steps
  for (int64_t n : pieces) {
    dspan.upload({cuda::DevSpan{0, n, t0, nullptr, nullptr, dkc.p, dvc.p, T}});
    AttentionArgs ga = ca;
    ga.q = dq.p + t0 * qw;
    ga.k = dk.p + t0 * kvw;
    ga.v = dv.p + t0 * kvw;
    ga.out = dout.p + t0 * qw;
    cuda::attention(ga, dspan.p, 1, n, t0 + n, nullptr);
    t0 += n;
  }
  CU(cudaDeviceSynchronize());
  const std::vector<float> out = dout.download();
  double worst = 0;
  for (int64_t i = 0; i < t0 * qw; ++i) {
    const double e = std::fabs(double(out[i]) - ref[i]) / (1.0 + std::fabs(double(ref[i])));
    worst = std::isfinite(out[i]) ? std::max(worst, e) : 1e30;
  }
  CHECK(t0 == T);
  CHECK(worst <= 1e-4);
  const std::vector<float> gk = dkc.download();
  CHECK(std::memcmp(gk.data(), kc.data(), sizeof(float) * t0 * kvw) == 0);
}

TEST(cuda_attention_bench_hook) {
  if (!cuda_device_or_skip()) return;
  const double ms = cuda::cuda_attention_time_ms(1, 4096, 5);
  CHECK(ms > 0 && ms < 1000);
  const double ms2 = cuda::cuda_attention_time_ms(130, 200, 2);
  CHECK(ms2 > 0 && ms2 < 1000);
}
