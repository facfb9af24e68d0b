// Timing hooks (bench_hooks.h) for the kernels without one of their own, and the
// device-to-device copy yardstick. One Harness per call owns the stream, the
// events and every allocation, so a failing CUDA call (thrown by cuda::check)
// frees everything on the way out.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "backend/cuda/bench_hooks.h"
#include "backend/cuda/cuda_ops.h"
#include "common/error.h"

namespace nemotron {
namespace cuda {
namespace {

// Cycled copies span this many times the L2 size, so a copy is evicted before
// its next use (L2 replacement is not strict LRU; 3x leaves a margin).
constexpr int64_t kRotateSpanL2 = 3;
// Tiny per-call working sets (a 1-row norm) would need tens of thousands of
// copies; past this many, each launch is latency-bound anyway.
constexpr int64_t kMaxSlots = 8192;
constexpr int kWarmupLaunches = 3;

// Elements are padded to 64 (256 bytes) per copy, so every copy keeps the
// alignment of cudaMalloc and the kernels' 16-byte vector paths stay on.
int64_t pad64(int64_t n) { return (n + 63) / 64 * 64; }

// splitmix64 of (index, seed) -> uniform in [0, 1): fast on the device, and
// a different stream of values for every buffer.
__device__ __forceinline__ float hash01(uint64_t i, uint32_t seed) {
  uint64_t z = i * 0x9E3779B97F4A7C15ull + (static_cast<uint64_t>(seed) << 32 | seed);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<float>(z >> 40) * (1.0f / 16777216.0f);
}

__global__ void fill_uniform_kernel(float* p, int64_t n, uint32_t seed, float lo, float hi) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    p[i] = lo + (hi - lo) * hash01(i, seed);
}

__global__ void fill_bf16_kernel(__nv_bfloat16* p, int64_t n, uint32_t seed, float amp) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    p[i] = __float2bfloat16_rn(amp * (2.0f * hash01(i, seed) - 1.0f));
}

__global__ void fill_ids_kernel(int32_t* p, int64_t n, uint32_t seed, int32_t vocab) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    p[i] = min(static_cast<int32_t>(hash01(i, seed) * static_cast<float>(vocab)), vocab - 1);
}

class Harness {
 public:
  explicit Harness(const char* what) : what_(what) {
    try {
      int dev = 0, l2 = 0;
      ok(cudaGetDevice(&dev), "cudaGetDevice");
      ok(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev), "L2 size");
      l2_bytes_ = l2;
      ok(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "stream");
      ok(cudaEventCreate(&ev_[0]), "event");
      ok(cudaEventCreate(&ev_[1]), "event");
    } catch (...) {
      release();  // a throwing constructor runs no destructor
      throw;
    }
  }
  ~Harness() { release(); }
  Harness(const Harness&) = delete;
  Harness& operator=(const Harness&) = delete;

  cudaStream_t stream() const { return stream_; }

  void ok(cudaError_t err, const char* step) const { check(err, (std::string(what_) + ": " + step).c_str()); }

  // How many copies of a call's buffers to cycle: enough to span
  // kRotateSpanL2 x L2 (1 when one call alone is that large).
  int64_t slots(int64_t bytes_per_call) const {
    const int64_t span = kRotateSpanL2 * l2_bytes_;
    return std::min(kMaxSlots, std::max<int64_t>(1, (span + bytes_per_call - 1) / std::max<int64_t>(1, bytes_per_call)));
  }

  void* alloc(size_t bytes) {
    void* p = nullptr;
    ok(cudaMalloc(&p, std::max<size_t>(bytes, 256)), "cudaMalloc");
    ptrs_.push_back(p);
    return p;
  }
  float* uniform(int64_t n, float lo, float hi) {
    float* p = static_cast<float*>(alloc(static_cast<size_t>(n) * sizeof(float)));
    fill_uniform_kernel<<<4096, 256, 0, stream_>>>(p, n, ++seed_, lo, hi);
    ok(cudaGetLastError(), "fill");
    return p;
  }
  __nv_bfloat16* bf16(int64_t n, float amp) {
    auto* p = static_cast<__nv_bfloat16*>(alloc(static_cast<size_t>(n) * 2));
    fill_bf16_kernel<<<4096, 256, 0, stream_>>>(p, n, ++seed_, amp);
    ok(cudaGetLastError(), "fill");
    return p;
  }
  int32_t* ids(int64_t n, int32_t vocab) {
    auto* p = static_cast<int32_t*>(alloc(static_cast<size_t>(n) * 4));
    fill_ids_kernel<<<1024, 256, 0, stream_>>>(p, n, ++seed_, vocab);
    ok(cudaGetLastError(), "fill");
    return p;
  }
  DevSpan* spans(const std::vector<DevSpan>& host) {
    auto* p = static_cast<DevSpan*>(alloc(host.size() * sizeof(DevSpan)));
    ok(cudaMemcpyAsync(p, host.data(), host.size() * sizeof(DevSpan), cudaMemcpyHostToDevice, stream_), "copy spans");
    return p;
  }

  // Mean ms per launch(i) over `iters` launches, after kWarmupLaunches untimed
  // ones (module load, clocks, the attention workspace pool). launch(i) uses
  // copy i % slots, so consecutive launches never find their data in L2.
  template <class Launch>
  double time(int iters, Launch&& launch) {
    if (iters <= 0) fail(ErrorCode::InvalidArgument, std::string(what_) + ": iters must be positive");
    for (int i = 0; i < kWarmupLaunches; ++i) launch(i);
    ok(cudaStreamSynchronize(stream_), "warm-up");
    ok(cudaEventRecord(ev_[0], stream_), "event record");
    for (int i = 0; i < iters; ++i) launch(kWarmupLaunches + i);
    ok(cudaEventRecord(ev_[1], stream_), "event record");
    ok(cudaEventSynchronize(ev_[1]), "synchronize");
    float ms = 0;
    ok(cudaEventElapsedTime(&ms, ev_[0], ev_[1]), "elapsed time");
    return static_cast<double>(ms) / iters;
  }

 private:
  void release() {
    if (stream_) cudaStreamSynchronize(stream_);  // nothing in flight may touch freed memory
    for (void* p : ptrs_) cudaFree(p);
    ptrs_.clear();
    for (cudaEvent_t& e : ev_) {
      if (e) cudaEventDestroy(e);
      e = nullptr;
    }
    if (stream_) cudaStreamDestroy(stream_);
    stream_ = nullptr;
  }

  const char* what_;
  int64_t l2_bytes_ = 0;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t ev_[2] = {nullptr, nullptr};
  std::vector<void*> ptrs_;
  uint32_t seed_ = 0x5eed;
};

void require_positive(const char* what, int64_t a, int64_t b, int iters) {
  if (a <= 0 || b <= 0 || iters <= 0) fail(ErrorCode::InvalidArgument, std::string(what) + ": sizes and iters must be positive");
}

}  // namespace

double cuda_copy_time_ms(int64_t bytes, int iters) {
  require_positive("cuda_copy_time_ms", bytes, 1, iters);
  Harness h("cuda_copy_time_ms");
  const int64_t stride = (bytes + 255) / 256 * 256;
  const int64_t slots = h.slots(2 * bytes);  // read + written
  // Random source bytes (filled as floats); the destination is overwritten anyway.
  auto* src = reinterpret_cast<char*>(h.uniform(slots * stride / 4, -1, 1));
  auto* dst = static_cast<char*>(h.alloc(static_cast<size_t>(slots * stride)));
  return h.time(iters, [&](int i) {
    const int64_t s = i % slots;
    h.ok(cudaMemcpyAsync(dst + s * stride, src + s * stride, static_cast<size_t>(bytes), cudaMemcpyDeviceToDevice,
                         h.stream()),
         "cudaMemcpyAsync");
  });
}

double cuda_conv1d_time_ms(int64_t seqs, int64_t tokens, int iters) {
  require_positive("cuda_conv1d_time_ms", seqs, tokens, iters);
  if (seqs > 65535) fail(ErrorCode::InvalidArgument, "cuda_conv1d_time_ms: at most 65535 sequences");
  const Shape9B s = kShape9B;
  const int64_t C = s.conv_dim(), K = s.conv_kernel, rows = seqs * tokens;
  Harness h("cuda_conv1d_time_ms");
  // One copy: x and out [rows, C], every sequence's state [K-1, C], weight [K, C], bias [C].
  const int64_t xn = pad64(rows * C), sn = pad64(seqs * (K - 1) * C), wn = pad64(K * C), bn = pad64(C);
  const int64_t slots = h.slots((2 * xn + sn + wn + bn) * 4);
  float* x = h.uniform(slots * xn, -1, 1);
  float* out = static_cast<float*>(h.alloc(static_cast<size_t>(slots * xn) * 4));
  float* state = h.uniform(slots * sn, -1, 1);
  float* w = h.uniform(slots * wn, -0.5f, 0.5f);
  float* bias = h.uniform(slots * bn, -0.1f, 0.1f);
  std::vector<DevSpan> hs(static_cast<size_t>(slots * seqs));
  for (int64_t c = 0; c < slots; ++c)
    for (int64_t b = 0; b < seqs; ++b)  // past > 0: a continuing sequence whose state is live
      hs[c * seqs + b] = DevSpan{b * tokens, tokens, 64, state + c * sn + b * (K - 1) * C, nullptr, nullptr, nullptr, 0};
  DevSpan* spans = h.spans(hs);
  ConvArgs a;
  a.channels = C;
  a.kernel = K;
  a.ldx = C;
  return h.time(iters, [&](int i) {
    const int64_t c = i % slots;
    a.x = x + c * xn;
    a.out = out + c * xn;
    a.weight = Vector{w + c * wn, K * C};
    a.bias = Vector{bias + c * bn, C};
    conv1d_silu(a, spans + c * seqs, static_cast<int>(seqs), tokens, h.stream());
  });
}

double cuda_ssm_decode_time_ms(int64_t seqs, int iters) {
  require_positive("cuda_ssm_decode_time_ms", seqs, 1, iters);
  if (seqs > 65535) fail(ErrorCode::InvalidArgument, "cuda_ssm_decode_time_ms: at most 65535 sequences");
  const Shape9B s = kShape9B;
  const int64_t H = s.mamba_heads, P = s.mamba_head_dim, N = s.ssm_state, G = s.n_groups;
  const int64_t cw = s.conv_dim(), di = s.d_inner(), state_n = H * P * N;
  Harness h("cuda_ssm_decode_time_ms");
  // One copy: the conv output u = [x | B | C] per row, raw dt, y, and every
  // sequence's state. A, dt_bias, D (3 x 128 floats) are shared.
  const int64_t un = pad64(seqs * cw), dtn = pad64(seqs * H), yn = pad64(seqs * di), sn = pad64(seqs * state_n);
  const int64_t slots = h.slots((un + dtn + yn + 2 * sn) * 4);
  float* u = h.uniform(slots * un, -1, 1);
  float* dt = h.uniform(slots * dtn, -4, 1);
  float* y = static_cast<float*>(h.alloc(static_cast<size_t>(slots * yn) * 4));
  float* state = h.uniform(slots * sn, -0.5f, 0.5f);
  // A = -exp(A_log) < 0, so exp(dt*A) < 1: the states stay bounded over many calls.
  const float* A = h.uniform(H, -4, -0.5f);
  const float* dt_bias = h.uniform(H, -1, 0.5f);
  const float* D = h.uniform(H, -1, 1);
  std::vector<DevSpan> hs(static_cast<size_t>(slots * seqs));
  for (int64_t c = 0; c < slots; ++c)
    for (int64_t b = 0; b < seqs; ++b)
      hs[c * seqs + b] = DevSpan{b, 1, 64, nullptr, state + c * sn + b * state_n, nullptr, nullptr, 0};
  DevSpan* spans = h.spans(hs);
  ScanArgs a;
  a.heads = H;
  a.head_dim = P;
  a.groups = G;
  a.state = N;
  a.chunk = s.chunk;
  a.ldx = cw;
  a.ldbc = cw;
  a.lddt = H;
  a.A = Vector{A, H};
  a.dt_bias = Vector{dt_bias, H};
  a.D = Vector{D, H};
  a.dt_min = 0;
  a.dt_max = INFINITY;
  return h.time(iters, [&](int i) {
    const int64_t c = i % slots;
    a.x = u + c * un;
    a.B = a.x + di;
    a.C = a.x + di + G * N;
    a.dt = dt + c * dtn;
    a.y = y + c * yn;
    ssm_scan(a, spans + c * seqs, static_cast<int>(seqs), 1, h.stream());
  });
}

double cuda_attention_decode_time_ms(int64_t seqs, int64_t context, DType kv_dtype, int iters) {
  require_positive("cuda_attention_decode_time_ms", seqs, context, iters);
  if (seqs > 65535 / kShape9B.kv_heads)
    fail(ErrorCode::InvalidArgument, "cuda_attention_decode_time_ms: too many sequences for one launch");
  const Shape9B s = kShape9B;
  const int64_t qw = s.q_width(), kvw = s.kv_width(), cap = context + 1;
  Harness h("cuda_attention_decode_time_ms");
  // One copy: q and out [seqs, qw], new k and v [seqs, kvw], and every sequence's
  // K and V caches [cap, kvw] (the new token is appended at row `context`).
  const int64_t qn = pad64(seqs * qw), kn = pad64(seqs * kvw), cn = pad64(seqs * cap * kvw);
  const int64_t esize = static_cast<int64_t>(dtype_size(kv_dtype));
  const int64_t slots = h.slots((2 * qn + 2 * kn) * 4 + 2 * cn * esize);
  float* q = h.uniform(slots * qn, -2, 2);
  float* out = static_cast<float*>(h.alloc(static_cast<size_t>(slots * qn) * 4));
  float* k = h.uniform(slots * kn, -1, 1);
  float* v = h.uniform(slots * kn, -1, 1);
  const bool bf16 = kv_dtype == DType::BF16;
  char* kc = bf16 ? reinterpret_cast<char*>(h.bf16(slots * cn, 1)) : reinterpret_cast<char*>(h.uniform(slots * cn, -1, 1));
  char* vc = bf16 ? reinterpret_cast<char*>(h.bf16(slots * cn, 1)) : reinterpret_cast<char*>(h.uniform(slots * cn, -1, 1));
  std::vector<DevSpan> hs(static_cast<size_t>(slots * seqs));
  for (int64_t c = 0; c < slots; ++c)
    for (int64_t b = 0; b < seqs; ++b) {
      const int64_t off = (c * cn + b * cap * kvw) * esize;
      hs[c * seqs + b] = DevSpan{b, 1, context, nullptr, nullptr, kc + off, vc + off, cap};
    }
  DevSpan* spans = h.spans(hs);
  AttentionArgs a;
  a.q_heads = s.q_heads;
  a.kv_heads = s.kv_heads;
  a.head_dim = s.head_dim;
  a.scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  a.kv_dtype = kv_dtype;
  // Re-appending the same row each call is idempotent, so every call sees the same state.
  return h.time(iters, [&](int i) {
    const int64_t c = i % slots;
    a.q = q + c * qn;
    a.k = k + c * kn;
    a.v = v + c * kn;
    a.out = out + c * qn;
    attention(a, spans + c * seqs, static_cast<int>(seqs), 1, cap, h.stream());
  });
}

double cuda_gated_rms_norm_time_ms(int64_t rows, int iters) {
  require_positive("cuda_gated_rms_norm_time_ms", rows, 1, iters);
  const Shape9B s = kShape9B;
  const int64_t dim = s.d_inner();
  Harness h("cuda_gated_rms_norm_time_ms");
  const int64_t xn = pad64(rows * dim), wn = pad64(dim);
  const int64_t slots = h.slots((3 * xn + wn) * 4);
  float* y = h.uniform(slots * xn, -1, 1);
  float* z = h.uniform(slots * xn, -3, 3);
  float* w = h.uniform(slots * wn, 0.5f, 1.5f);
  float* out = static_cast<float*>(h.alloc(static_cast<size_t>(slots * xn) * 4));
  GatedNormArgs a;
  a.ldz = dim;
  a.dim = dim;
  a.group_size = s.norm_group();
  a.eps = 1e-5f;
  return h.time(iters, [&](int i) {
    const int64_t c = i % slots;
    a.y = y + c * xn;
    a.z = z + c * xn;
    a.weight = Vector{w + c * wn, dim};
    a.out = out + c * xn;
    gated_rms_norm(a, rows, h.stream());
  });
}

double cuda_rms_norm_time_ms(int64_t rows, int iters) {
  require_positive("cuda_rms_norm_time_ms", rows, 1, iters);
  const int64_t dim = kShape9B.hidden;
  Harness h("cuda_rms_norm_time_ms");
  const int64_t xn = pad64(rows * dim), wn = pad64(dim);
  const int64_t slots = h.slots((2 * xn + wn) * 4);
  float* x = h.uniform(slots * xn, -1, 1);
  float* w = h.uniform(slots * wn, 0.5f, 1.5f);
  float* out = static_cast<float*>(h.alloc(static_cast<size_t>(slots * xn) * 4));
  return h.time(iters, [&](int i) {
    const int64_t c = i % slots;
    rms_norm(x + c * xn, rows, dim, w + c * wn, 1e-5f, out + c * xn, h.stream());
  });
}

double cuda_embed_time_ms(int64_t tokens, int iters) {
  require_positive("cuda_embed_time_ms", tokens, 1, iters);
  const Shape9B s = kShape9B;
  Harness h("cuda_embed_time_ms");
  // The table (1.2 GB) is far larger than L2 and the ids are random rows, so
  // only the ids and the output are cycled.
  const Matrix table{h.bf16(s.vocab * s.hidden, 0.05f), DType::BF16, s.vocab, s.hidden};
  const int64_t idn = pad64(tokens), on = pad64(tokens * s.hidden);
  const int64_t slots = h.slots(idn * 4 + on * 4 + tokens * s.hidden * 2);
  const int32_t* ids = h.ids(slots * idn, static_cast<int32_t>(s.vocab));
  float* out = static_cast<float*>(h.alloc(static_cast<size_t>(slots * on) * 4));
  return h.time(iters, [&](int i) {
    const int64_t c = i % slots;
    embed(table, ids + c * idn, tokens, out + c * on, h.stream());
  });
}

double cuda_candidates_time_ms(int64_t rows, bool collect, int iters) {
  require_positive("cuda_candidates_time_ms", rows, 1, iters);
  const int64_t V = kShape9B.vocab, words = candidate_mask_words(V);
  Harness h("cuda_candidates_time_ms");
  const int64_t ln = pad64(rows * V), mn = pad64(rows * words);
  const int64_t slots = h.slots(ln * 4 + mn * 4);
  // Values within 3 of each other: every token is a candidate at temperature 1.
  // (The in-place compaction rewrites a row with its own values in order, so later
  // launches see the same data.)
  float* logits = h.uniform(slots * ln, -1.5f, 1.5f);
  auto* masks = static_cast<uint32_t*>(h.alloc(static_cast<size_t>(slots * mn) * 4));
  auto* heads = static_cast<CandidateHead*>(h.alloc(static_cast<size_t>(slots * rows) * sizeof(CandidateHead)));
  std::vector<DevCandidateQuery> q(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) q[static_cast<size_t>(r)] = DevCandidateQuery{r, -20.72326583694641, collect ? 1 : 0, 0};
  auto* dq = static_cast<DevCandidateQuery*>(h.alloc(q.size() * sizeof(DevCandidateQuery)));
  // On the harness's stream: a legacy-stream copy is not ordered before launches on a non-blocking stream.
  h.ok(cudaMemcpyAsync(dq, q.data(), q.size() * sizeof(DevCandidateQuery), cudaMemcpyHostToDevice, h.stream()),
       "queries upload");
  return h.time(iters, [&](int i) {
    const int64_t c = i % slots;
    candidates(logits + c * ln, V, dq, static_cast<int>(rows), heads + c * rows, masks + c * mn, h.stream());
  });
}

}  // namespace cuda
}  // namespace nemotron
