// The CUDA Mamba kernels (conv1d_silu, ssm_scan, gated_rms_norm) against their
// CPU twins, on host copies of the same random inputs, with non-zero starting
// states, several sequences per call (different past / n), strided inputs laid
// out as the model lays them (x, B, C inside one xBC buffer; dt and z inside
// zxbcdt), at the 9B shapes and at odd small ones. Output buffers are poisoned
// with NaN first, so an element the kernel never wrote fails the comparison.
// The scan runs through each of its algorithms (cuda::ScanPath: the recurrent
// kernel, the chunked SSD kernels, and the per-span choice ssm_scan makes),
// and the two CUDA algorithms are also compared with each other.
// Without a CUDA device every test prints why and skips.
//
// Tolerances: the conv, the norm and the recurrent scan are fp32 on both
// sides, so differences are rounding only: fused multiply-adds, summation
// order of the dot products (a warp butterfly vs a sequential/AVX loop),
// expf/log1pf vs the host libm. That is a few ulp per operation, ~1e-6
// relative after a 128-term dot product. The recurrent scan additionally
// compares two different algorithms (the GPU runs the token-by-token
// recurrence, the CPU cpu_ssm_scan the chunked SSD form with double cumulative
// decays), whose states carry rounding across many steps; the CPU's own test
// holds chunked vs a double reference to 2e-5, so 1e-4 relative
// (|a-b| / (1+|b|)) leaves room without hiding an indexing error (those are
// O(1)). The chunked CUDA scan rounds its matmul inputs to tf32: see kTf32Tol.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "../test_framework.h"
#include "cuda_test_util.h"
#include "../norm_cases.h"
#include "../scan_cases.h"
#include "../test_util.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/mamba_bench.h"
#include "common/thread_pool.h"

using namespace nemotron;
using namespace nemotron_test;

namespace {



// A device copy of a host vector, freed on scope exit.
struct DevBuf {
  float* p = nullptr;
  size_t n = 0;
  explicit DevBuf(const std::vector<float>& h) : n(h.size()) {
    CUDA_REQUIRE(cudaMalloc(&p, std::max<size_t>(n, 1) * sizeof(float)));
    if (n) CUDA_REQUIRE(cudaMemcpy(p, h.data(), n * sizeof(float), cudaMemcpyHostToDevice));
  }
  // n floats of NaN (all bits set), so unwritten outputs show.
  explicit DevBuf(size_t count) : n(count) {
    CUDA_REQUIRE(cudaMalloc(&p, std::max<size_t>(n, 1) * sizeof(float)));
    CUDA_REQUIRE(cudaMemset(p, 0xff, std::max<size_t>(n, 1) * sizeof(float)));
  }
  ~DevBuf() { cudaFree(p); }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  std::vector<float> host() const {
    std::vector<float> h(n);
    if (n) CUDA_REQUIRE(cudaMemcpy(h.data(), p, n * sizeof(float), cudaMemcpyDeviceToHost));
    return h;
  }
};

struct DevSpans {
  cuda::DevSpan* p = nullptr;
  explicit DevSpans(const std::vector<cuda::DevSpan>& h) {
    CUDA_REQUIRE(cudaMalloc(&p, h.size() * sizeof(cuda::DevSpan)));
    CUDA_REQUIRE(cudaMemcpy(p, h.data(), h.size() * sizeof(cuda::DevSpan), cudaMemcpyHostToDevice));
  }
  ~DevSpans() { cudaFree(p); }
};

void sync_or_fail() {
  CUDA_REQUIRE(cudaGetLastError());
  CUDA_REQUIRE(cudaDeviceSynchronize());
}

// max |a-b| / (1+|b|) over the first n elements; infinity if any value is not
// finite (NaN poison left in place, or a blow-up), which max() would skip.
double rel_err(const std::vector<float>& a, const std::vector<float>& b, size_t n, size_t off = 0) {
  double m = 0;
  for (size_t i = off; i < off + n; ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i])) return INFINITY;
    m = std::max(m, std::fabs(double(a[i]) - b[i]) / (1.0 + std::fabs(double(b[i]))));
  }
  return m;
}

// ---------------------------------------------------------------- conv1d_silu

void check_conv(ThreadPool& pool, int64_t C, int64_t K, bool with_bias, int64_t ldx_pad,
                const std::vector<int64_t>& ns, uint32_t seed) {
  const int64_t rows = total(ns), ldx = C + ldx_pad, S = K - 1;
  const std::vector<int64_t> r0 = prefix_rows(ns);
  std::vector<float> x = random_vec(rows * ldx, seed);
  std::vector<float> w = random_vec(K * C, seed + 1, -0.7f, 0.7f);
  std::vector<float> bias = random_vec(C, seed + 2);
  std::vector<std::vector<float>> states;
  for (size_t i = 0; i < ns.size(); ++i) states.push_back(random_vec(S * C, seed + 10 + uint32_t(i)));

  // CPU
  std::vector<float> out_cpu(rows * C, 0.f);
  std::vector<std::vector<float>> st_cpu = states;
  std::vector<MambaLayerState> ms(ns.size());
  std::vector<SeqSpan> spans;
  for (size_t i = 0; i < ns.size(); ++i) {
    ms[i].conv = st_cpu[i].data();
    spans.push_back(SeqSpan{r0[i], ns[i], int64_t(5 * i), &ms[i], nullptr});
  }
  ConvArgs a;
  a.channels = C;
  a.kernel = K;
  a.x = x.data();
  a.ldx = ldx;
  a.weight = Vector{w.data(), K * C};
  if (with_bias) a.bias = Vector{bias.data(), C};
  a.out = out_cpu.data();
  cpu_conv1d_silu(pool, a, spans);

  // GPU
  DevBuf dx(x), dw(w), db(bias), dout(size_t(rows * C));
  std::vector<std::unique_ptr<DevBuf>> dst;
  std::vector<cuda::DevSpan> dsp;
  for (size_t i = 0; i < ns.size(); ++i) {
    dst.emplace_back(new DevBuf(states[i]));
    dsp.push_back(cuda::DevSpan{r0[i], ns[i], int64_t(5 * i), dst.back()->p, nullptr, nullptr, nullptr, 0});
  }
  DevSpans dspans(dsp);
  ConvArgs g = a;
  g.x = dx.p;
  g.weight = Vector{dw.p, K * C};
  g.bias = with_bias ? Vector{db.p, C} : Vector{};
  g.out = dout.p;
  cuda::conv1d_silu(g, dspans.p, int(ns.size()), maxn(ns), nullptr);
  sync_or_fail();

  const double eo = rel_err(dout.host(), out_cpu, out_cpu.size());
  double es = 0;
  for (size_t i = 0; i < ns.size(); ++i) es = std::max(es, rel_err(dst[i]->host(), st_cpu[i], st_cpu[i].size()));
  if (!(eo < 1e-5 && es == 0))
    std::printf("  conv C=%lld K=%lld bias=%d spans=%zu: out err %.3g, state err %.3g\n", (long long)C,
                (long long)K, int(with_bias), ns.size(), eo, es);
  CHECK(eo < 1e-5);
  CHECK(es == 0);  // the state is a pure copy of inputs: bit-exact
}

}  // namespace

TEST(cuda_conv1d_silu_matches_cpu) {
  if (!cuda_device_or_skip()) return;
  ThreadPool pool(4);
  // 9B: conv_dim 12288, K 4, xBC inside zxbcdt (ldx 22656); spans shorter than,
  // equal to and longer than K-1, a decode row among them
  check_conv(pool, 12288, 4, true, 22656 - 12288, {7, 1, 2, 3, 300, 1}, 1);
  check_conv(pool, 12288, 4, true, 0, {1, 1, 1, 1}, 2);  // batched decode
  // odd small shapes
  check_conv(pool, 37, 4, true, 3, {1, 2, 3, 4, 9, 129}, 3);
  check_conv(pool, 5, 2, false, 0, {1, 6, 1}, 4);
  check_conv(pool, 300, 7, true, 1, {2, 5, 6, 7, 70000 / 300}, 5);
}

namespace {

// ---------------------------------------------------------------- ssm_scan

// One cuda::ssm_scan_path call on device copies of the inputs; updates the
// device `states`, returns y (NaN where the kernels wrote nothing).
std::vector<float> gpu_scan(const ScanInputs& in, std::vector<std::unique_ptr<DevBuf>>& states, cuda::ScanPath path) {
  DevBuf dxbc(in.xbc), ddt(in.dt), dA(in.A), dbias(in.dt_bias), dD(in.D), dy(size_t(in.rows * in.HP));
  std::vector<cuda::DevSpan> dsp;
  for (size_t i = 0; i < in.ns.size(); ++i)
    dsp.push_back(cuda::DevSpan{in.r0[i], in.ns[i], in.past(i), nullptr, states[i]->p, nullptr, nullptr, 0});
  DevSpans dspans(dsp);
  const ScanArgs g = in.args(dxbc.p, ddt.p, dA.p, dbias.p, dD.p, dy.p);
  cuda::ssm_scan_path(g, dspans.p, int(in.ns.size()), maxn(in.ns), path, nullptr);
  sync_or_fail();
  return dy.host();
}

// sqrt(mean (a-b)^2) / sqrt(1 + mean b^2): the typical error against the typical
// size; infinity if any value is not finite.
double rms_err(const std::vector<float>& a, const std::vector<float>& b) {
  double e = 0, m = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i])) return INFINITY;
    e += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    m += double(b[i]) * b[i];
  }
  return std::sqrt(e / double(b.size())) / std::sqrt(1.0 + m / double(b.size()));
}

// Bounds on rel_err (worst element) and rms_err (typical element).
struct Tol {
  double max, rms;
};
struct ScanTol {
  Tol y, state;
};
// Recurrent kernel vs the CPU: both fp32 (see the file comment).
constexpr ScanTol kFp32Tol{{1e-4, 1e-4}, {1e-4, 1e-4}};
// Chunked kernels vs the CPU: the four chunk matmuls round their inputs to
// tf32 (2^-11 relative). A y element sums up to 128 CBᵀ-weighted terms whose
// rounding errors add randomly: ~3e-4 rms of y's size at the 9B shape, with a
// tail of ~7e-3 over millions of elements (|y| reaches ~30 there); the state
// is one tf32 product per chunk, passed on in fp32: ~6e-5 rms, ~1e-3 worst.
// (Measured on a CPU emulation of the kernels with tf32 rounding, these
// inputs, T up to 2048.) The bounds leave ~3x; indexing bugs (a dropped
// diagonal, an off-by-one decay or chunk end, a wrong state-passing order)
// gave errors > 4 in that emulation.
constexpr ScanTol kTf32Tol{{2e-2, 1e-3}, {3e-3, 2e-4}};

bool expect_close(const std::vector<float>& got, const std::vector<float>& want, const Tol& tol, const char* what,
                  const std::string& label) {
  const double e = rel_err(got, want, want.size()), r = rms_err(got, want);
  const bool ok = e < tol.max && r < tol.rms;
  if (!ok) std::printf("  %s %s: err %.3g (max %.3g), rms %.3g (max %.3g)\n", label.c_str(), what, e, tol.max, r, tol.rms);
  CHECK(e < tol.max);
  CHECK(r < tol.rms);
  return ok;
}

std::string describe(const ScanShape& c, const std::vector<int64_t>& ns, const char* what) {
  std::string s = std::string(what) + " heads=" + std::to_string(c.heads) + " P=" + std::to_string(c.head_dim) +
                  " groups=" + std::to_string(c.groups) + " N=" + std::to_string(c.state) +
                  " chunk=" + std::to_string(c.chunk) + " spans={";
  for (size_t i = 0; i < ns.size(); ++i) s += (i ? "," : "") + std::to_string(ns[i]);
  return s + "}";
}

// Runs one ssm_scan call over spans of lengths `ns` on both sides, from the
// given states (updated in place: the CPU result into cpu_states, the GPU's
// compared), the GPU with `path`, the CPU with its chunked or recurrent form.
void check_scan_call(ThreadPool& pool, const ScanShape& c, const std::vector<int64_t>& ns, uint32_t seed,
                     std::vector<std::vector<float>>& cpu_states, std::vector<std::unique_ptr<DevBuf>>& gpu_states,
                     bool recurrent_ref, cuda::ScanPath path, float dt_min, float dt_max, const char* what) {
  const ScanInputs in(c, ns, seed, dt_min, dt_max);
  const std::vector<float> y_cpu = cpu_scan(pool, in, cpu_states, recurrent_ref);
  const std::vector<float> y_gpu = gpu_scan(in, gpu_states, path);
  const ScanTol& tol = path == cuda::ScanPath::Recurrent ? kFp32Tol : kTf32Tol;
  const std::string label = describe(c, ns, what);
  expect_close(y_gpu, y_cpu, tol.y, "y", label);
  for (size_t i = 0; i < ns.size(); ++i)
    if (!expect_close(gpu_states[i]->host(), cpu_states[i], tol.state, "state", label + " span " + std::to_string(i)))
      break;
}

// A prefill call over spans of lengths `ns` from non-zero states, then a batched
// decode step and a second, uneven prefill continuing every span's state, all
// through `path`.
void check_scan(ThreadPool& pool, const ScanShape& c, const std::vector<int64_t>& ns, uint32_t seed,
                cuda::ScanPath path, float dt_min = 0.f, float dt_max = INFINITY) {
  const size_t PN = size_t(c.heads * c.head_dim * c.state);
  std::vector<std::vector<float>> cpu_states;
  std::vector<std::unique_ptr<DevBuf>> gpu_states;
  for (size_t i = 0; i < ns.size(); ++i) {
    cpu_states.push_back(random_vec(PN, seed + 100 + uint32_t(i), -0.5f, 0.5f));
    gpu_states.emplace_back(new DevBuf(cpu_states.back()));
  }
  check_scan_call(pool, c, ns, seed, cpu_states, gpu_states, false, path, dt_min, dt_max, "prefill vs chunked");
  check_scan_call(pool, c, std::vector<int64_t>(ns.size(), 1), seed + 20, cpu_states, gpu_states, false, path, dt_min,
                  dt_max, "decode");
  std::vector<int64_t> more(ns.size());
  for (size_t i = 0; i < ns.size(); ++i) more[i] = 1 + int64_t((i * 5) % 11);
  check_scan_call(pool, c, more, seed + 40, cpu_states, gpu_states, true, path, dt_min, dt_max,
                  "prefill vs recurrent");
}

// The CUDA recurrent and chunked kernels on the same inputs and states.
void check_paths_agree(const ScanShape& c, const std::vector<int64_t>& ns, uint32_t seed) {
  const ScanInputs in(c, ns, seed, 0.f, INFINITY);
  const size_t PN = size_t(c.heads * c.head_dim * c.state);
  std::vector<std::unique_ptr<DevBuf>> rec, chk;
  for (size_t i = 0; i < ns.size(); ++i) {
    const std::vector<float> s0 = random_vec(PN, seed + 100 + uint32_t(i), -0.5f, 0.5f);
    rec.emplace_back(new DevBuf(s0));
    chk.emplace_back(new DevBuf(s0));
  }
  const std::vector<float> y_rec = gpu_scan(in, rec, cuda::ScanPath::Recurrent);
  const std::vector<float> y_chk = gpu_scan(in, chk, cuda::ScanPath::Chunked);
  const std::string label = describe(c, ns, "chunked vs recurrent CUDA");
  expect_close(y_chk, y_rec, kTf32Tol.y, "y", label);
  for (size_t i = 0; i < ns.size(); ++i)
    if (!expect_close(chk[i]->host(), rec[i]->host(), kTf32Tol.state, "state", label + " span " + std::to_string(i)))
      break;
}

const ScanShape k9b{128, 80, 8, 128, 128};  // heads, head_dim, groups, state, chunk (spec §1.2)

// The small fixture shapes, each with one span per interesting length in one call.
void check_small_shapes(ThreadPool& pool, cuda::ScanPath path) {
  // groups 1, head_dim 5, chunk 8
  const std::vector<int64_t> lens = {1, 7, 7 /* chunk-1 */, 8, 9, 300, 1};
  check_scan(pool, {4, 5, 1, 7, 8}, lens, 11, path);
  check_scan(pool, {6, 5, 3, 7, 8}, lens, 12, path);       // 3 groups of 2 heads
  check_scan(pool, {4, 10, 2, 40, 8}, lens, 13, path);     // 2 state columns per lane
  check_scan(pool, {2, 3, 1, 130, 16}, {1, 15, 16, 17, 40}, 14, path);   // state > 128: masked lanes / 2 column blocks
  check_scan(pool, {3, 33, 3, 16, 4}, {5, 1, 3, 4}, 15, path);           // head_dim > 32 rows, state < 32
  check_scan(pool, {4, 5, 2, 7, 8}, {9, 1, 30}, 16, path, 0.05f, 0.8f);  // time_step_limit clamp active
}

}  // namespace

TEST(cuda_ssm_scan_recurrent_matches_cpu_small_shapes) {
  if (!cuda_device_or_skip()) return;
  ThreadPool pool(4);
  check_small_shapes(pool, cuda::ScanPath::Recurrent);
}

TEST(cuda_ssm_scan_recurrent_matches_cpu_9b_shapes) {
  if (!cuda_device_or_skip()) return;
  ThreadPool pool(8);
  check_scan(pool, k9b, {1, 7, 127, 128, 129, 300}, 21, cuda::ScanPath::Recurrent);
  check_scan(pool, k9b, {1, 1, 1}, 22, cuda::ScanPath::Recurrent);  // batched decode from the start
}

TEST(cuda_ssm_scan_chunked_matches_cpu_small_shapes) {
  if (!cuda_device_or_skip()) return;
  ThreadPool pool(4);
  check_small_shapes(pool, cuda::ScanPath::Chunked);
  // head_dim and state over 128 (two column blocks each); chunk over 128 (cut to 128)
  check_scan(pool, {2, 200, 1, 150, 128}, {1, 300, 129}, 17, cuda::ScanPath::Chunked);
  check_scan(pool, {2, 130, 2, 260, 32}, {70, 1, 33}, 18, cuda::ScanPath::Chunked);
  check_scan(pool, {2, 16, 1, 16, 256}, {300, 5}, 19, cuda::ScanPath::Chunked);
}

TEST(cuda_ssm_scan_chunked_matches_cpu_9b_shapes) {
  if (!cuda_device_or_skip()) return;
  ThreadPool pool(8);
  // Every length of interest in one call (one chunk per launch set: 7 spans
  // fill the workspace cap), then a single long span (11-chunk windows: the
  // state crosses a window boundary through span.ssm).
  check_scan(pool, k9b, {1, 127, 128, 129, 300, 1000, 2048}, 23, cuda::ScanPath::Chunked);
  check_scan(pool, k9b, {2048}, 24, cuda::ScanPath::Chunked);
}

TEST(cuda_ssm_scan_auto_mixes_paths) {
  if (!cuda_device_or_skip()) return;
  ThreadPool pool(8);
  // Decode spans and short prefills (recurrent) beside spans of >= 2 chunks
  // (chunked) in one call; 12 spans overflow the workspace cap (11 slots), so
  // the chunked spans fall in two span batches (spans 0-10, span 11).
  check_scan(pool, k9b, {1, 300, 1, 1, 129, 1, 1, 1, 7, 1, 1, 256}, 25, cuda::ScanPath::Auto);
  check_small_shapes(pool, cuda::ScanPath::Auto);
}

TEST(cuda_ssm_scan_chunked_matches_recurrent_cuda) {
  if (!cuda_device_or_skip()) return;
  check_paths_agree(k9b, {1, 129, 700}, 26);
  check_paths_agree({4, 10, 2, 40, 8}, {1, 7, 300, 9, 64, 65, 1}, 27);
}

namespace {

// ---------------------------------------------------------------- gated_rms_norm

void check_norm(ThreadPool& pool, int64_t rows, int64_t dim, int64_t group_size, int64_t ldz, bool alias,
                uint32_t seed) {
  const GatedNormCase c = make_gated_norm_case(pool, rows, dim, group_size, ldz, seed);
  DevBuf dy(c.y), dz(c.z), dw(c.w), dout(size_t(alias ? 0 : rows * dim));
  const GatedNormArgs g = c.args(dy.p, dz.p, dw.p, alias ? dy.p : dout.p);
  cuda::gated_rms_norm(g, rows, nullptr);
  sync_or_fail();
  const double e = rel_err(alias ? dy.host() : dout.host(), c.want, c.want.size());
  if (!(e < 1e-5))
    std::printf("  norm rows=%lld dim=%lld group=%lld alias=%d: err %.3g\n", (long long)rows, (long long)dim,
                (long long)group_size, int(alias), e);
  CHECK(e < 1e-5);
}

}  // namespace

TEST(cuda_gated_rms_norm_matches_cpu) {
  if (!cuda_device_or_skip()) return;
  ThreadPool pool(4);
  // 9B: dim 10240 in 8 groups of 1280, z inside zxbcdt (ld 22656)
  check_norm(pool, 5, 10240, 1280, 22656, false, 31);
  check_norm(pool, 3, 10240, 1280, 22656, true, 32);  // out == y, as the model calls it
  check_norm(pool, 1, 10240, 1280, 10240, true, 33);  // decode row
  // odd small shapes: tiny groups, one group, a group not a multiple of the block
  check_norm(pool, 7, 12, 4, 13, false, 34);
  check_norm(pool, 4, 37, 37, 40, true, 35);
  check_norm(pool, 3, 2000, 1000, 2001, false, 36);
}

TEST(cuda_ssm_scan_bench_entry_runs) {
  if (!cuda_device_or_skip()) return;
  // The timing entry points a bench binary uses: run, and return sane times.
  const double ms = cuda::cuda_ssm_scan_time_ms(1024, 3);
  const double rec = cuda::cuda_ssm_scan_time_ms_path(1024, 3, cuda::ScanPath::Recurrent);
  const double chk = cuda::cuda_ssm_scan_time_ms_path(1024, 3, cuda::ScanPath::Chunked);
  std::printf("  9B-shaped prefill scan, T=1024: %.3f ms (recurrent %.3f ms, chunked %.3f ms)\n", ms, rec, chk);
  for (double t : {ms, rec, chk}) {
    CHECK(t > 0);
    CHECK(std::isfinite(t));
  }
}
