// The emulated CUDA Mamba2 kernels against their CPU twins:
//   cuda::conv1d_silu (conv1d.cu)  vs cpu_conv1d_silu: output to 1e-5, the conv
//     state bit for bit (a copy of inputs);
//   cuda::ssm_scan_path (ssm_scan.cu: the recurrent kernel; ssd_chunked.cu: the
//     chunked SSD kernels with tf32 WMMA) vs cpu_ssm_scan (chunked, double
//     decay sums) and cpu_ssm_scan_recurrent, through prefill, decode and a
//     second prefill that continue each span's state.
// Tolerances as in native/tests/cuda/test_cuda_mamba.cpp, whose comment gives
// the reasoning: fp32 vs fp32 (recurrent) 1e-4; tf32 operands (chunked) 2e-2
// worst / 1e-3 rms for y, 3e-3 / 2e-4 for the state. Indexing errors give O(1).
// The chunked scan's launch-set windows (kWorkspaceCap, made tunable by the
// emulator build) are shrunk so that small shapes cross window and batch edges.
#include <memory>
#include <string>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/mamba_bench.h"
#include "common/error.h"
#include "emu_test_util.h"
#include "../scan_cases.h"

using namespace nemotron;
using namespace emu_test;
using nemotron_test::cpu_scan;
using nemotron_test::ScanInputs;
using nemotron_test::ScanShape;

namespace {

// ---------------------------------------------------------------- conv1d_silu

void check_conv(int64_t C, int64_t K, bool with_bias, int64_t ldx_pad, const std::vector<int64_t>& ns, uint32_t seed) {
  const int64_t rows = total(ns), ldx = C + ldx_pad, S = K - 1;
  const std::vector<int64_t> r0 = prefix_rows(ns);
  const std::vector<float> x = random_vec(rows * ldx, seed);
  const std::vector<float> w = random_vec(K * C, seed + 1, -0.7f, 0.7f);
  const std::vector<float> bias = random_vec(C, seed + 2);
  std::vector<std::vector<float>> states, cpu_states;
  for (size_t i = 0; i < ns.size(); ++i) states.push_back(random_vec(std::max<int64_t>(S, 1) * C, seed + 10 + uint32_t(i)));
  cpu_states = states;

  std::vector<float> want(rows * C);
  std::vector<MambaLayerState> ms(ns.size());
  std::vector<SeqSpan> spans;
  for (size_t i = 0; i < ns.size(); ++i) {
    ms[i].conv = cpu_states[i].data();
    spans.push_back(SeqSpan{r0[i], ns[i], int64_t(5 * i), &ms[i], nullptr});
  }
  ConvArgs a;
  a.channels = C;
  a.kernel = K;
  a.x = x.data();
  a.ldx = ldx;
  a.weight = Vector{w.data(), K * C};
  if (with_bias) a.bias = Vector{bias.data(), C};
  a.out = want.data();
  cpu_conv1d_silu(pool(), a, spans);

  DevBuf<float> dx(x), dw(w), db(bias), dout(rows * C);
  std::vector<std::unique_ptr<DevBuf<float>>> dst;
  std::vector<cuda::DevSpan> hsp;
  for (size_t i = 0; i < ns.size(); ++i) {
    dst.emplace_back(new DevBuf<float>(states[i]));
    hsp.push_back(cuda::DevSpan{r0[i], ns[i], int64_t(5 * i), dst.back()->p, nullptr, nullptr, nullptr, 0});
  }
  DevBuf<cuda::DevSpan> dspans(hsp);
  ConvArgs g = a;
  g.x = dx.p;
  g.weight = Vector{dw.p, K * C};
  g.bias = with_bias ? Vector{db.p, C} : Vector{};
  g.out = dout.p;
  cuda::conv1d_silu(g, dspans.p, int(ns.size()), maxn(ns), nullptr);
  require_no_launch_error();

  const std::string what = "conv1d C=" + std::to_string(C) + " K=" + std::to_string(K) + (with_bias ? " bias" : "") +
                           " spans=" + join(ns);
  EXPECT_LE(rel_err(dout.host(), want), 1e-5, what + " out");
  for (size_t i = 0; i < ns.size(); ++i) {
    const std::vector<float> got = dst[i]->host();
    if (std::memcmp(got.data(), cpu_states[i].data(), sizeof(float) * size_t(S * C)) != 0)
      record_failure(__FILE__, __LINE__, what + ": conv state of span " + std::to_string(i) + " differs");
  }
}

// ---------------------------------------------------------------- ssm_scan

std::string describe(const ScanShape& c, const std::vector<int64_t>& ns, const char* what) {
  return std::string(what) + " heads=" + std::to_string(c.heads) + " P=" + std::to_string(c.head_dim) +
         " groups=" + std::to_string(c.groups) + " N=" + std::to_string(c.state) + " chunk=" + std::to_string(c.chunk) +
         " spans=" + join(ns);
}

// `workspace_bytes` (optional) gets the most device memory the call itself took (the chunked scan's pool workspace).
std::vector<float> emu_scan(const ScanInputs& in, std::vector<std::unique_ptr<DevBuf<float>>>& states,
                            cuda::ScanPath path, size_t* workspace_bytes = nullptr) {
  DevBuf<float> dxbc(in.xbc), ddt(in.dt), dA(in.A), dbias(in.dt_bias), dD(in.D), dy(in.rows * in.HP);
  std::vector<cuda::DevSpan> hsp;
  for (size_t i = 0; i < in.ns.size(); ++i)
    hsp.push_back(cuda::DevSpan{in.r0[i], in.ns[i], in.past(i), nullptr, states[i]->p, nullptr, nullptr, 0});
  DevBuf<cuda::DevSpan> dspans(hsp);
  int dev = 0;
  REQUIRE(cudaGetDevice(&dev) == cudaSuccess);
  const size_t before = emu::allocated_bytes(dev);
  emu::reset_peak_allocated_bytes(dev);
  cuda::ssm_scan_path(in.args(dxbc.p, ddt.p, dA.p, dbias.p, dD.p, dy.p), dspans.p, int(in.ns.size()), maxn(in.ns),
                      path, nullptr);
  require_no_launch_error();
  std::vector<float> y = dy.host();
  if (workspace_bytes) *workspace_bytes = emu::peak_allocated_bytes(dev) - before;
  return y;
}

struct Tol {
  double max, rms;
};
struct ScanTol {
  Tol y, state;
};
constexpr ScanTol kFp32Tol{{1e-4, 1e-4}, {1e-4, 1e-4}};
constexpr ScanTol kTf32Tol{{2e-2, 1e-3}, {3e-3, 2e-4}};

bool expect_close(const std::vector<float>& got, const std::vector<float>& want, const Tol& tol,
                  const std::string& what) {
  const bool a = EXPECT_LE(rel_err(got, want), tol.max, what + " (worst)");
  const bool b = EXPECT_LE(rms_err(got, want), tol.rms, what + " (rms)");
  return a && b;
}

void check_scan_call(const ScanShape& c, const std::vector<int64_t>& ns, uint32_t seed,
                     std::vector<std::vector<float>>& cpu_states, std::vector<std::unique_ptr<DevBuf<float>>>& states,
                     bool recurrent_ref, cuda::ScanPath path, float dt_min, float dt_max, const char* what) {
  const ScanInputs in(c, ns, seed, dt_min, dt_max);
  const std::vector<float> want = cpu_scan(pool(), in, cpu_states, recurrent_ref);
  const std::vector<float> got = emu_scan(in, states, path);
  const ScanTol& tol = path == cuda::ScanPath::Recurrent ? kFp32Tol : kTf32Tol;
  const std::string label = describe(c, ns, what);
  expect_close(got, want, tol.y, label + " y");
  for (size_t i = 0; i < ns.size(); ++i)
    if (!expect_close(states[i]->host(), cpu_states[i], tol.state, label + " state of span " + std::to_string(i))) break;
}

// Prefill from non-zero states, a batched decode step, then a second uneven
// prefill, all through `path`, each compared with the CPU.
void check_scan(const ScanShape& c, const std::vector<int64_t>& ns, uint32_t seed, cuda::ScanPath path,
                float dt_min = 0.f, float dt_max = INFINITY) {
  const size_t PN = size_t(c.heads * c.head_dim * c.state);
  std::vector<std::vector<float>> cpu_states;
  std::vector<std::unique_ptr<DevBuf<float>>> states;
  for (size_t i = 0; i < ns.size(); ++i) {
    cpu_states.push_back(random_vec(PN, seed + 100 + uint32_t(i), -0.5f, 0.5f));
    states.emplace_back(new DevBuf<float>(cpu_states.back()));
  }
  check_scan_call(c, ns, seed, cpu_states, states, false, path, dt_min, dt_max, "prefill vs chunked");
  check_scan_call(c, std::vector<int64_t>(ns.size(), 1), seed + 20, cpu_states, states, false, path, dt_min, dt_max,
                  "decode");
  std::vector<int64_t> more(ns.size());
  for (size_t i = 0; i < ns.size(); ++i) more[i] = 1 + int64_t((i * 5) % 11);
  check_scan_call(c, more, seed + 40, cpu_states, states, true, path, dt_min, dt_max, "prefill vs recurrent");
}

// The emulated recurrent and chunked kernels on the same inputs and states.
void check_paths_agree(const ScanShape& c, const std::vector<int64_t>& ns, uint32_t seed) {
  const ScanInputs in(c, ns, seed, 0.f, INFINITY);
  const size_t PN = size_t(c.heads * c.head_dim * c.state);
  std::vector<std::unique_ptr<DevBuf<float>>> rec, chk;
  for (size_t i = 0; i < ns.size(); ++i) {
    const std::vector<float> s0 = random_vec(PN, seed + 100 + uint32_t(i), -0.5f, 0.5f);
    rec.emplace_back(new DevBuf<float>(s0));
    chk.emplace_back(new DevBuf<float>(s0));
  }
  const std::vector<float> y_rec = emu_scan(in, rec, cuda::ScanPath::Recurrent);
  const std::vector<float> y_chk = emu_scan(in, chk, cuda::ScanPath::Chunked);
  const std::string label = describe(c, ns, "chunked vs recurrent kernel");
  expect_close(y_chk, y_rec, kTf32Tol.y, label + " y");
  for (size_t i = 0; i < ns.size(); ++i)
    if (!expect_close(chk[i]->host(), rec[i]->host(), kTf32Tol.state, label + " state of span " + std::to_string(i)))
      break;
}

// Small shapes, each with spans of every interesting length in one call.
void check_small_shapes(cuda::ScanPath path) {
  const std::vector<int64_t> lens = {1, 7, 8, 9, 40, 1};
  check_scan({4, 5, 1, 7, 8}, lens, 11, path);                         // groups 1, head_dim 5, chunk 8
  check_scan({6, 5, 3, 7, 8}, {9, 1, 17}, 12, path);                    // 3 groups of 2 heads
  check_scan({4, 10, 2, 40, 8}, {1, 7, 30}, 13, path);                  // 2 state columns per lane
  check_scan({2, 3, 1, 130, 16}, {1, 15, 16, 17, 40}, 14, path);        // state > 128
  check_scan({3, 33, 3, 16, 4}, {5, 1, 3, 4}, 15, path);                // head_dim > 32 rows, state < 32
  check_scan({4, 5, 2, 7, 8}, {9, 1, 30}, 16, path, 0.05f, 0.8f);       // time_step_limit clamp active
}

}  // namespace

TEST(emu_conv1d_silu_matches_cpu) {
  check_conv(37, 4, true, 3, {1, 2, 3, 4, 9, 129}, 3);  // spans shorter than, equal to, longer than K-1
  check_conv(5, 2, false, 0, {1, 6, 1}, 4);
  check_conv(300, 7, true, 1, {2, 5, 6, 7, 40}, 5);     // two channel blocks, K 7
  check_conv(70, 4, true, 0, {1, 1, 1, 1}, 6);          // batched decode
  check_conv(33, 1, true, 2, {2, 1}, 7);                // K 1: no state, no state kernel
  if (full()) {
    check_conv(12288, 4, true, 22656 - 12288, {7, 1, 2, 3, 300, 1}, 1);  // 9B: xBC inside zxbcdt
    check_conv(3, 4, true, 0, {70000}, 8);                               // rows past grid.y's 65535
  }
}

TEST(emu_ssm_scan_recurrent_matches_cpu) { check_small_shapes(cuda::ScanPath::Recurrent); }

TEST(emu_ssm_scan_chunked_matches_cpu) {
  check_small_shapes(cuda::ScanPath::Chunked);
  // head_dim and state over 128 (two column blocks each); a chunk over 128 is cut to 128
  check_scan({2, 200, 1, 150, 128}, {1, 140, 3}, 17, cuda::ScanPath::Chunked);
  check_scan({2, 130, 2, 260, 32}, {70, 1, 33}, 18, cuda::ScanPath::Chunked);
  check_scan({2, 16, 1, 16, 256}, {150, 5}, 19, cuda::ScanPath::Chunked);
}

TEST(emu_ssm_scan_auto_mixes_paths) {
  // spans below 2 chunks take the recurrent kernel, longer ones the chunked kernels, in one call
  check_scan({4, 10, 2, 40, 8}, {1, 30, 1, 15, 16, 7, 1, 64}, 25, cuda::ScanPath::Auto);
  check_scan({4, 80, 2, 128, 32}, {1, 70, 3}, 26, cuda::ScanPath::Auto);  // 9B head_dim/state, smaller chunk
}

TEST(emu_ssm_scan_chunked_windows) {
  // A workspace cap of a few slots cuts the call into launch sets: windows of
  // chunks (the state crosses windows through span.ssm) and batches of spans.
  const ScanShape c{4, 16, 2, 16, 8};
  // slot = heads*16*16 + groups*16*16 + 64 (aligned) floats
  const long long slot_bytes = 4LL * (4 * 256 + 2 * 256 + 64);
  for (long long slots : {1LL, 2LL, 3LL, 7LL}) {
    UseTunable cap("kWorkspaceCap", slots * slot_bytes);
    check_scan(c, {40, 3, 17, 64}, uint32_t(30 + slots), cuda::ScanPath::Chunked);
    check_scan(c, {1, 40, 1, 23}, uint32_t(40 + slots), cuda::ScanPath::Auto);
  }
}

TEST(emu_ssm_scan_chunked_matches_recurrent_kernel) {
  check_paths_agree({4, 10, 2, 40, 8}, {1, 7, 70, 9, 64, 65, 1}, 27);
  check_paths_agree({2, 80, 1, 128, 128}, {1, 129, 300}, 28);
  if (full()) check_paths_agree({128, 80, 8, 128, 128}, {1, 129, 700}, 29);
}

TEST(emu_ssm_scan_without_tensor_cores) {
  // sm_75: Auto runs every span on the recurrent kernel; forcing the chunked form is refused.
  UseDevice dev(kTuring);
  check_scan({4, 10, 2, 40, 8}, {1, 30, 64}, 50, cuda::ScanPath::Auto);
  const ScanInputs in({2, 4, 1, 8, 8}, {20}, 51, 0.f, INFINITY);
  std::vector<std::unique_ptr<DevBuf<float>>> st;
  st.emplace_back(new DevBuf<float>(random_vec(2 * 4 * 8, 52)));
  CHECK_THROWS_WITH(emu_scan(in, st, cuda::ScanPath::Chunked), "compute capability 8.0");
}

TEST(emu_ssm_scan_9b_shapes) {
  if (!full()) {
    nemotron_test::skip("9B-shaped scans need NEMOTRON_EMU_FULL=1");
    return;
  }
  const ScanShape k9b{128, 80, 8, 128, 128};
  check_scan(k9b, {1, 7, 129, 300}, 21, cuda::ScanPath::Recurrent);
  check_scan(k9b, {1, 127, 128, 129, 300}, 23, cuda::ScanPath::Chunked);
  check_scan(k9b, {1, 300, 1, 129, 1, 256}, 25, cuda::ScanPath::Auto);
}

TEST(emu_ssm_scan_workspace_bound_is_the_most_a_call_takes) {
  // The memory plan counts ssm_scan_workspace_bound(args, max_rows) for the chunked scan's pool memory. The
  // scan reserves chunk-state slots for every span of a call times its longest span's chunks (up to the
  // workspace cap), so the costliest calls of max_rows tokens are one long span beside single-token ones
  // (a prefill piece among decode steps): measured over every such split and a few others, the most any
  // call took must equal the bound, with the cap out of reach and with a cap of a few slots.
  const ScanShape c{4, 16, 2, 16, 8};  // chunk 8: spans from 16 tokens take the chunked kernels
  const int64_t R = 24;
  const size_t PN = size_t(c.heads * c.head_dim * c.state);
  const long long slot_bytes = 4LL * (4 * 256 + 2 * 256 + 64);  // as in emu_ssm_scan_chunked_windows
  for (long long cap : {1LL << 26, 5 * slot_bytes}) {
    UseTunable use_cap("kWorkspaceCap", cap);
    std::vector<std::vector<int64_t>> splits = {{R}, {12, 12}, {16, 8}, {8, 16}, {1, 1, 1, 1}};
    for (int64_t n = 16; n <= R; ++n) {
      std::vector<int64_t> ns(size_t(R - n), 1);
      ns.insert(ns.begin() + (n % 3), n);
      splits.push_back(ns);
    }
    size_t most = 0;
    uint32_t seed = 700;
    for (const std::vector<int64_t>& ns : splits) {
      const ScanInputs in(c, ns, seed++, 0.f, INFINITY);
      std::vector<std::unique_ptr<DevBuf<float>>> states;
      for (size_t i = 0; i < ns.size(); ++i) states.emplace_back(new DevBuf<float>(random_vec(PN, seed + 50 + uint32_t(i))));
      size_t took = 0;
      emu_scan(in, states, cuda::ScanPath::Auto, &took);
      most = std::max(most, took);
    }
    const ScanInputs shape_only(c, {1}, 1, 0.f, INFINITY);
    const ScanArgs a = shape_only.args(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr);
    CHECK(most > 0);
    CHECK(cuda::ssm_scan_workspace_bound(a, R) == most);
    CHECK(cuda::ssm_scan_workspace_bound(a, 2 * c.chunk - 1) == 0);  // every span on the recurrent kernel
  }
}
