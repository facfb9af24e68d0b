// The Mamba2 selective scan (spec §2.3 step 5, §3.2, §3.3): the CUDA twin of
// native/backend/cpu/ssd_scan.cpp (prefill) and ssm_update.cpp (decode).
//
// Two algorithms, chosen per span on the device (each kernel skips the other's
// spans, so one call may mix them):
//   - spans of n < 2 * chunk tokens (decode, short prefill pieces): the
//     recurrence token by token, below, all fp32:
//       S <- exp(dt*A) S + dt * x (outer) B ;  y = S C + D x
//     (dt = softplus(dt_raw + dt_bias), identity above 20, clamped to [dt_min, dt_max]);
//   - longer spans: the chunked SSD form (ssd_chunked.cu), tf32 tensor cores.
// Why 2 * chunk: below it the chunked form has at most one full chunk per
// head, so none of its chunk parallelism, and its four launches and workspace
// round trip cost about what n dependent recurrence steps do; from two chunks
// on, its chunks run in parallel while the recurrence stays O(n) sequential.
// (An estimate, not a measurement: time both with cuda_ssm_scan_time_ms_path
// or NEMOTRON_SSM_SCAN=recurrent|chunked on a GPU to move it.)
// The chunked kernels need sm_80 (tf32 WMMA); older devices use the recurrence.
//
// Recurrent kernel layout: one block per (head, span). Warp w owns head-dim rows
// [w*RPW, w*RPW + RPW) and lane l owns state columns l, l+32, ... (NPL of
// them), so the head's [head_dim, state] fp32 state lives in registers for the
// whole span (read once, written once; 80x128 = 40 KB per head spread over 320
// threads). Each row's y = S_p . C is a warp reduction; warps never wait for
// each other, so there is no block barrier in the time loop. The next token's
// dt, x, B and C are loaded before the current token's math to hide latency.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/mamba_bench.h"
#include "backend/cuda/ssd_chunked.cuh"
#include "common/error.h"

namespace nemotron {
namespace cuda {
namespace {

constexpr int kMaxWarps = 16;

// Per-token inputs one lane needs: its rows' x, its columns' B and C, the head's raw dt.
template <int RPW, int NPL>
struct TokenIn {
  float dt_raw;
  float x[RPW];
  float b[NPL], c[NPL];
};

template <int RPW, int NPL>
__device__ __forceinline__ void load_token(const ScanParams& p, int64_t r, int64_t h, int64_t g, int64_t p0,
                                           int lane, TokenIn<RPW, NPL>& in) {
  in.dt_raw = p.dt[r * p.lddt + h];
  const float* xr = p.x + r * p.ldx + h * p.head_dim;
#pragma unroll
  for (int i = 0; i < RPW; ++i) in.x[i] = p0 + i < p.head_dim ? xr[p0 + i] : 0.0f;
  const float* br = p.B + r * p.ldbc + g * p.state;
  const float* cr = p.C + r * p.ldbc + g * p.state;
#pragma unroll
  for (int j = 0; j < NPL; ++j) {
    const int64_t n = lane + 32 * j;
    const bool ok = n < p.state;
    in.b[j] = ok ? br[n] : 0.0f;
    in.c[j] = ok ? cr[n] : 0.0f;
  }
}

// Spans of min_chunked tokens or more are the chunked kernels'.
template <int RPW, int NPL>
__global__ void __launch_bounds__(32 * kMaxWarps) ssm_scan_seq_kernel(ScanParams p, const DevSpan* __restrict__ spans,
                                                                     int64_t min_chunked) {
  const DevSpan sp = spans[blockIdx.y];
  if (sp.n <= 0 || sp.n >= min_chunked) return;
  const int64_t h = blockIdx.x;
  const int64_t g = h / (p.heads / p.groups);  // contiguous blocks of heads share a group
  const int lane = threadIdx.x % 32;
  const int64_t p0 = static_cast<int64_t>(threadIdx.x / 32) * RPW;
  const int64_t P = p.head_dim, N = p.state;
  const float A = p.A[h], D = p.D[h], bias = p.dt_bias[h];
  float* Sg = sp.ssm + h * P * N;

  float S[RPW][NPL];
#pragma unroll
  for (int i = 0; i < RPW; ++i)
#pragma unroll
    for (int j = 0; j < NPL; ++j) {
      const int64_t pp = p0 + i, n = lane + 32 * j;
      S[i][j] = pp < P && n < N ? Sg[pp * N + n] : 0.0f;
    }

  TokenIn<RPW, NPL> cur, nxt;
  load_token<RPW, NPL>(p, sp.row0, h, g, p0, lane, cur);
  const int64_t y_ld = p.heads * P;
  for (int64_t t = 0; t < sp.n; ++t) {
    const int64_t r = sp.row0 + t;
    if (t + 1 < sp.n) load_token<RPW, NPL>(p, r + 1, h, g, p0, lane, nxt);
    const float dtv = scan_dt(cur.dt_raw, bias, p.dt_min, p.dt_max);
    const float dA = expf(dtv * A);
    float acc[RPW];
#pragma unroll
    for (int i = 0; i < RPW; ++i) {
      const float dx = dtv * cur.x[i];
      float s = 0.0f;
#pragma unroll
      for (int j = 0; j < NPL; ++j) {
        S[i][j] = fmaf(S[i][j], dA, dx * cur.b[j]);
        s = fmaf(S[i][j], cur.c[j], s);
      }
      acc[i] = s;
    }
    // Butterfly sums: afterwards every lane holds each row's full dot product.
#pragma unroll
    for (int off = 16; off > 0; off >>= 1)
#pragma unroll
      for (int i = 0; i < RPW; ++i) acc[i] += __shfl_xor_sync(0xffffffffu, acc[i], off);
    float* yr = p.y + r * y_ld + h * P;
#pragma unroll
    for (int i = 0; i < RPW; ++i)
      if (lane == i && p0 + i < P) yr[p0 + i] = acc[i] + D * cur.x[i];
    if (t + 1 < sp.n) cur = nxt;
  }

#pragma unroll
  for (int i = 0; i < RPW; ++i)
#pragma unroll
    for (int j = 0; j < NPL; ++j) {
      const int64_t pp = p0 + i, n = lane + 32 * j;
      if (pp < P && n < N) Sg[pp * N + n] = S[i][j];
    }
}

template <int RPW, int NPL>
void launch_seq(const ScanParams& p, const DevSpan* spans, int nspans, int64_t min_chunked, cudaStream_t stream) {
  const int warps = static_cast<int>((p.head_dim + RPW - 1) / RPW);
  ssm_scan_seq_kernel<RPW, NPL><<<dim3(static_cast<unsigned>(p.heads), static_cast<unsigned>(nspans)), 32 * warps, 0,
                                  stream>>>(p, spans, min_chunked);
}

template <int NPL>
void dispatch_rows(const ScanParams& p, const DevSpan* spans, int nspans, int64_t min_chunked, cudaStream_t stream) {
  // The fewest rows per warp that keep the block within kMaxWarps warps:
  // more, smaller warps per head hide more latency; P = 80 gives 8 rows x 10 warps.
  const int64_t P = p.head_dim;
  if (P <= 1 * kMaxWarps) return launch_seq<1, NPL>(p, spans, nspans, min_chunked, stream);
  if (P <= 2 * kMaxWarps) return launch_seq<2, NPL>(p, spans, nspans, min_chunked, stream);
  if (P <= 4 * kMaxWarps) return launch_seq<4, NPL>(p, spans, nspans, min_chunked, stream);
  if (P <= 8 * kMaxWarps) return launch_seq<8, NPL>(p, spans, nspans, min_chunked, stream);
  if (P <= 16 * kMaxWarps) return launch_seq<16, NPL>(p, spans, nspans, min_chunked, stream);
  fail(ErrorCode::Internal, "ssm_scan: head_dim > 256 is not supported by the CUDA scan");
}

// The recurrent kernel over the spans of fewer than min_chunked tokens.
void scan_recurrent(const ScanParams& p, const DevSpan* spans, int nspans, int64_t min_chunked, cudaStream_t stream) {
  const int64_t N = p.state;
  if (N <= 32)
    dispatch_rows<1>(p, spans, nspans, min_chunked, stream);
  else if (N <= 64)
    dispatch_rows<2>(p, spans, nspans, min_chunked, stream);
  else if (N <= 128)
    dispatch_rows<4>(p, spans, nspans, min_chunked, stream);
  else if (N <= 256)
    dispatch_rows<8>(p, spans, nspans, min_chunked, stream);
  else
    fail(ErrorCode::Internal, "ssm_scan: state > 256 is not supported by the CUDA scan");
  cuda::check(cudaGetLastError(), "ssm_scan: kernel launch");
}

// tf32 WMMA (the chunked kernels) needs compute capability 8.0; cached per device.
bool has_tf32_tensor_cores() {
  static std::mutex mu;
  static std::unordered_map<int, bool> known;
  int dev = 0;
  cuda::check(cudaGetDevice(&dev), "ssm_scan: cudaGetDevice");
  std::lock_guard<std::mutex> lk(mu);
  auto it = known.find(dev);
  if (it != known.end()) return it->second;
  int major = 0;
  cuda::check(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev), "ssm_scan: compute capability");
  return known[dev] = major >= 8;
}

// NEMOTRON_SSM_SCAN=recurrent|chunked forces one algorithm for every span
// (benchmarking, bisecting a numerical difference); unset or "auto" chooses per span.
ScanPath env_scan_path() {
  static const ScanPath path = [] {
    const char* v = std::getenv("NEMOTRON_SSM_SCAN");
    if (v == nullptr || *v == 0 || std::strcmp(v, "auto") == 0) return ScanPath::Auto;
    if (std::strcmp(v, "recurrent") == 0) return ScanPath::Recurrent;
    if (std::strcmp(v, "chunked") == 0) return ScanPath::Chunked;
    fail(ErrorCode::InvalidArgument,
         std::string("NEMOTRON_SSM_SCAN must be auto, recurrent or chunked, not \"") + v + "\"");
  }();
  return path;
}

// Any chunk length gives the same result up to rounding (the SSD duality);
// the kernels tile at most kMaxChunk tokens, so a longer (or unset) chunk is cut to that.
int64_t scan_chunk(const ScanArgs& a) { return a.chunk >= 1 && a.chunk <= kMaxChunk ? a.chunk : kMaxChunk; }

// Spans of at least this many tokens take the chunked form, in a call whose
// longest span is max_n (INT64_MAX: none).
int64_t min_chunked_span(ScanPath path, int64_t chunk, int64_t max_n) {
  if (path == ScanPath::Chunked) {
    if (!has_tf32_tensor_cores())
      fail(ErrorCode::DeviceUnavailable, "ssm_scan: the chunked scan needs compute capability 8.0 or newer");
    return 1;
  }
  if (path == ScanPath::Auto && max_n >= 2 * chunk && has_tf32_tensor_cores()) return 2 * chunk;
  return INT64_MAX;
}

ScanParams shape_params(const ScanArgs& a) {
  return ScanParams{a.heads, a.head_dim, a.groups, a.state, nullptr, 0, nullptr, nullptr, 0,
                    nullptr, 0, nullptr, nullptr, nullptr, 0, 0, nullptr};
}

}  // namespace

size_t ssm_scan_workspace_bound(const ScanArgs& a, int64_t max_rows) {
  if (a.heads <= 0 || max_rows <= 0) return 0;
  const int64_t chunk = scan_chunk(a);
  const int64_t min_n = min_chunked_span(env_scan_path(), chunk, max_rows);
  return min_n > max_rows ? 0 : ssd_chunked_workspace_bound(shape_params(a), chunk, max_rows, min_n);
}

void ssm_scan_path(const ScanArgs& a, const DevSpan* spans, int nspans, int64_t max_n, ScanPath path,
                   cudaStream_t stream) {
  if (nspans <= 0 || max_n <= 0 || a.heads <= 0) return;
  if (a.groups <= 0 || a.heads % a.groups != 0) fail(ErrorCode::Internal, "ssm_scan: heads not a multiple of groups");
  if (nspans > 65535) fail(ErrorCode::Internal, "ssm_scan: too many spans in one call");
  if (a.heads > 65535) fail(ErrorCode::Internal, "ssm_scan: too many heads");
  const ScanParams p{a.heads, a.head_dim, a.groups, a.state, a.x, a.ldx, a.B, a.C, a.ldbc,
                     a.dt, a.lddt, a.A.data, a.dt_bias.data, a.D.data, a.dt_min, a.dt_max, a.y};
  const int64_t chunk = scan_chunk(a);
  const int64_t min_chunked = min_chunked_span(path, chunk, max_n);
  if (min_chunked > 1) scan_recurrent(p, spans, nspans, min_chunked, stream);
  if (max_n >= min_chunked) ssd_chunked_scan(p, chunk, spans, nspans, max_n, min_chunked, stream);
}

void ssm_scan(const ScanArgs& a, const DevSpan* spans, int nspans, int64_t max_n, cudaStream_t stream) {
  ssm_scan_path(a, spans, nspans, max_n, env_scan_path(), stream);
}

// ---- benchmark entry points (mamba_bench.h)

namespace {

float* upload_random(size_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> h(n);
  for (auto& v : h) v = d(rng);
  float* dev = nullptr;
  cuda::check(cudaMalloc(&dev, n * sizeof(float)), "bench: cudaMalloc");
  cuda::check(cudaMemcpy(dev, h.data(), n * sizeof(float), cudaMemcpyHostToDevice), "bench: cudaMemcpy");
  return dev;
}

// Median milliseconds of `run` over a 9B-shaped single-sequence prefill of T tokens.
double time_scan(int64_t T, int iters,
                 const std::function<void(const ScanArgs&, const DevSpan*, int64_t, cudaStream_t)>& run) {
  const int64_t heads = 128, P = 80, groups = 8, N = 128;
  if (T <= 0 || iters <= 0) return 0.0;
  std::vector<float*> owned;
  auto up = [&](size_t n, uint32_t seed, float lo, float hi) {
    owned.push_back(upload_random(n, seed, lo, hi));
    return owned.back();
  };
  ScanArgs a;
  a.heads = heads;
  a.head_dim = P;
  a.groups = groups;
  a.state = N;
  a.chunk = 128;
  a.x = up(T * heads * P, 1, -1, 1);
  a.ldx = heads * P;
  a.B = up(T * groups * N, 2, -1, 1);
  a.C = up(T * groups * N, 3, -1, 1);
  a.ldbc = groups * N;
  a.dt = up(T * heads, 4, -4, 1);
  a.lddt = heads;
  a.A = Vector{up(heads, 5, -8, -0.05f), heads};
  a.dt_bias = Vector{up(heads, 6, -1, 0.5f), heads};
  a.D = Vector{up(heads, 7, -1, 1), heads};
  a.dt_min = 0;
  a.dt_max = INFINITY;
  float* state = up(heads * P * N, 8, -0.5f, 0.5f);
  float* y = up(T * heads * P, 9, -1, 1);
  a.y = y;
  DevSpan span{0, T, 0, nullptr, state, nullptr, nullptr, 0};
  DevSpan* dspan = nullptr;
  cuda::check(cudaMalloc(&dspan, sizeof(DevSpan)), "bench: cudaMalloc");
  cuda::check(cudaMemcpy(dspan, &span, sizeof(DevSpan), cudaMemcpyHostToDevice), "bench: cudaMemcpy");

  cudaStream_t stream;
  cuda::check(cudaStreamCreate(&stream), "bench: cudaStreamCreate");
  cudaEvent_t e0, e1;
  cuda::check(cudaEventCreate(&e0), "bench: cudaEventCreate");
  cuda::check(cudaEventCreate(&e1), "bench: cudaEventCreate");
  for (int i = 0; i < 2; ++i) run(a, dspan, T, stream);  // warm-up: module load, caches, workspace pool
  cuda::check(cudaStreamSynchronize(stream), "bench: warm-up");
  std::vector<double> ms;
  for (int i = 0; i < iters; ++i) {
    cuda::check(cudaEventRecord(e0, stream), "bench: cudaEventRecord");
    run(a, dspan, T, stream);
    cuda::check(cudaEventRecord(e1, stream), "bench: cudaEventRecord");
    cuda::check(cudaEventSynchronize(e1), "bench: cudaEventSynchronize");
    float t = 0;
    cuda::check(cudaEventElapsedTime(&t, e0, e1), "bench: cudaEventElapsedTime");
    ms.push_back(t);
  }
  std::sort(ms.begin(), ms.end());
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cudaStreamDestroy(stream);
  cudaFree(dspan);
  for (float* f : owned) cudaFree(f);
  return ms[ms.size() / 2];
}

}  // namespace

double cuda_ssm_scan_time_ms(int64_t T, int iters) {
  return time_scan(T, iters, [](const ScanArgs& a, const DevSpan* sp, int64_t n, cudaStream_t st) {
    ssm_scan(a, sp, 1, n, st);
  });
}

double cuda_ssm_scan_time_ms_path(int64_t T, int iters, ScanPath path) {
  return time_scan(T, iters, [path](const ScanArgs& a, const DevSpan* sp, int64_t n, cudaStream_t st) {
    ssm_scan_path(a, sp, 1, n, path, st);
  });
}

}  // namespace cuda
}  // namespace nemotron
