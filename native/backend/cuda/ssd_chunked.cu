// The chunked SSD (state-space duality) form of the Mamba2 scan (spec §3.3):
// the CUDA twin of native/backend/cpu/ssd_scan.cpp, used by ssm_scan.cu for
// prefill spans. Per span, head h (group g) and chunk of L <= Q tokens with
// a_s = dt_s*A, Λ_l = a_0 + ... + a_l (inclusive, within the chunk):
//   y_l     = Σ_{s<=l} (C_l·B_s) exp(Λ_l-Λ_s) dt_s x_s     intra-chunk ("diagonal")
//           + exp(Λ_l) C_l·S_in                             state carried in
//           + D x_l
//   st      = Σ_s exp(Λ_last-Λ_s) dt_s x_s ⊗ B_s            the chunk's own state
//   S_out   = exp(Λ_last) S_in + st                         passed to the next chunk
// All chunks of a span run in parallel except the cheap last line.
//
// Four kernels per launch set, 256 threads (8 warps) each, all on one stream:
//   cb_kernel     grid (chunks, groups, spans): G = C·Bᵀ [L, L], lower triangle,
//                 once per group (the 16 heads of a 9B group share it).
//   state_kernel  grid (chunks x head_dim/128 x state/128 blocks, heads, spans):
//                 st = (exp(Λ_last-Λ)·dt·X)ᵀ·B, and Λ_last per (chunk, head).
//   pass_kernel   grid (state elements/1024, heads, spans): walks the chunks in
//                 order, S <- exp(Λ_last) S + st, replacing each st by the state
//                 entering its chunk; starts from and writes back span.ssm.
//   out_kernel    grid (chunks x head_dim/128 blocks, heads, spans): warp w owns
//                 output rows [16w, 16w+16) of the chunk:
//                 Y = (exp(Λ)∘C)·S_inᵀ + (G ∘ exp(Λ_l-Λ_s) ∘ dt_s ∘ causal)·X, + D x.
// Matmul operands are staged in shared memory in slices of 32 along the
// contraction (zero-padded to 16-multiples, so head_dim 80, state 7 or a
// 9-token chunk need no special case) and fed to WMMA m16n16k8 tf32.
//
// Workspace (per launch set, from a stream-ordered pool that keeps its memory,
// as attention.cu does): per (span, chunk) slot st [heads][hd16][st16] fp32,
// G [groups][Q16][Q16] fp32 and Λ_last [heads]: 5.8 MB per chunk at the 9B
// shape. The host does not know each span's length (spans live on the device),
// so slots are reserved for every (span, chunk < ceil(max_n/Q)) pair; to bound
// that, a call is cut into launch sets of <= kWorkspaceCap bytes: windows of
// consecutive chunks of a batch of spans, in chunk order (pass_kernel carries
// the state from one window to the next through span.ssm).
//
// Precision: the four matmuls (C·Bᵀ, the chunk state, C·S_inᵀ, the masked
// G·X) take tf32 operands (10-bit mantissa, rounded to nearest when staged)
// with fp32 accumulation; dt, the Λ cumulative sums, every exp, the state
// passing, the carried state and D·x are fp32. Error vs the fp32 CPU scan at
// the 9B shape, |a-b|/(1+|b|), measured on a CPU emulation of these kernels
// (same tiling, tf32 rounding, test-like random inputs, T up to 2048, several
// spans): y worst 7.4e-3, rms 3.1e-4 (|y| reaches ~30: a y element sums up to
// 128 weighted terms, each carrying operand roundings); final state worst
// 1.0e-3, rms 6.6e-5. The tests allow 2e-2 / 1e-3 (y) and 3e-3 / 2e-4 (state).
// bf16 operands (7-bit mantissa) measured 8x worse in the same emulation
// (y worst 5.3e-2, state 6.5e-3): a tolerance wide enough for that stops
// being a sharp test, and it would buy little, since the operands arrive in
// fp32 and the chunk matmuls (~12 MFLOP per chunk and head) are small.
#include <cuda_runtime.h>
#include <mma.h>

#include <algorithm>

#include "backend/cuda/ssd_chunked.cuh"
#include "backend/cuda/workspace_pool.h"
#include "common/error.h"

namespace nemotron {
namespace cuda {
namespace {

using namespace nvcuda;

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kTile = 16;  // WMMA m = n
constexpr int kStep = 8;   // WMMA k for tf32
constexpr int kMaxTiles = static_cast<int>(kMaxChunk) / kTile;
static_assert(kMaxTiles == kWarps, "out_kernel gives each warp one 16-row tile of the chunk");
constexpr int kCols = 128;      // output columns (head_dim or state) per block
constexpr int kSlice = 32;      // contraction length staged per step
constexpr int kLdK = kSlice + 4;  // stride of [rows][kSlice] staging; +4 staggers banks
constexpr int kLdC = kCols + 4;   // stride of [kSlice][kCols] staging
// Both strides are multiples of 4 floats and every fragment offset used below
// (16-row and 8-column steps) is a multiple of 32 bytes, as WMMA loads require.
static_assert(kLdK % 4 == 0 && (kTile * kLdK * 4) % 32 == 0 && (kStep * kLdC * 4) % 32 == 0, "WMMA alignment");
constexpr int kPassElems = 4;  // state elements per thread in pass_kernel
// Workspace bytes per launch set: 11 chunk slots at the 9B shape (one
// 1408-token span, or two 512-token ones, per launch set).
constexpr size_t kWorkspaceCap = size_t(64) << 20;

struct ChunkParams {
  ScanParams s;
  const DevSpan* spans;
  int64_t min_n;           // spans shorter than this belong to the recurrent kernel
  int Q, QP, PP, NP;       // chunk, and chunk / head_dim / state rounded up to 16
  int span0;               // this launch set: spans span0 + blockIdx.z ...
  int64_t chunk0;          // ... and their chunks chunk0 .. chunk0 + wchunks - 1
  int wchunks;
  float* st;   // [slot][heads][PP][NP]: chunk states, then (after pass_kernel) entering states
  float* cb;   // [slot][groups][QP][QP]: C·Bᵀ, lower triangle of 16x16 tiles
  float* dec;  // [slot][heads]: Λ_last of the chunk
};

// tf32 WMMA exists from sm_80 on. For older targets the three matmul kernels
// compile to a trap (and their helpers to nothing): ssm_scan.cu never
// launches them on such a device.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#define SSD_HAVE_TF32 0
#else
#define SSD_HAVE_TF32 1
#endif

#if SSD_HAVE_TF32
using FragArow = wmma::fragment<wmma::matrix_a, kTile, kTile, kStep, wmma::precision::tf32, wmma::row_major>;
using FragAcol = wmma::fragment<wmma::matrix_a, kTile, kTile, kStep, wmma::precision::tf32, wmma::col_major>;
using FragBrow = wmma::fragment<wmma::matrix_b, kTile, kTile, kStep, wmma::precision::tf32, wmma::row_major>;
using FragBcol = wmma::fragment<wmma::matrix_b, kTile, kTile, kStep, wmma::precision::tf32, wmma::col_major>;
using FragAcc = wmma::fragment<wmma::accumulator, kTile, kTile, kStep, float>;

// The chunk a block works on.
struct ChunkRef {
  int64_t r0;  // its first row in the packed activations
  int L;       // its length (1..Q)
  int64_t slot;
};

// False when the block has nothing to do: the span is the recurrent kernel's,
// or ends before chunk chunk0 + wi.
__device__ bool chunk_ref(const ChunkParams& c, int wi, ChunkRef& r) {
  const DevSpan sp = c.spans[c.span0 + blockIdx.z];
  if (sp.n < c.min_n) return false;
  const int64_t t0 = (c.chunk0 + wi) * c.Q;
  if (t0 >= sp.n) return false;
  r.r0 = sp.row0 + t0;
  r.L = static_cast<int>(min(static_cast<int64_t>(c.Q), sp.n - t0));
  r.slot = static_cast<int64_t>(blockIdx.z) * c.wchunks + wi;
  return true;
}

// dt_s (0 past the chunk's end) and the inclusive cumulative sums Λ_s of
// dt_s*A, fp32, for positions 0..kMaxChunk-1 (past L, Λ stays Λ_last). Warp 0
// scans: each lane sums 4 consecutive positions, then the lanes' totals are
// scanned with shuffles. Ends with a barrier.
__device__ void chunk_decay(const ChunkParams& c, const ChunkRef& r, int64_t h, float* dt_s, float* cum_s) {
  const ScanParams& p = c.s;
  for (int i = threadIdx.x; i < kMaxChunk; i += kThreads)
    dt_s[i] = i < r.L ? scan_dt(p.dt[(r.r0 + i) * p.lddt + h], p.dt_bias[h], p.dt_min, p.dt_max) : 0.0f;
  __syncthreads();
  if (threadIdx.x < 32) {
    static_assert(kMaxChunk == 4 * 32, "one warp, 4 positions per lane");
    const int lane = threadIdx.x, i0 = 4 * lane;
    const float A = p.A[h];
    float v[4];
    float run = 0.0f;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      run += dt_s[i0 + j] * A;
      v[j] = run;
    }
    float incl = run;  // inclusive scan of the lane totals
#pragma unroll
    for (int off = 1; off < 32; off <<= 1) {
      const float o = __shfl_up_sync(0xffffffffu, incl, off);
      if (lane >= off) incl += o;
    }
    const float before = incl - run;
#pragma unroll
    for (int j = 0; j < 4; ++j) cum_s[i0 + j] = before + v[j];
  }
  __syncthreads();
}

// dst[i][k] (stride kLdK) = tf32(scale_i * src[i*ld + k]) for i < valid_rows,
// k < valid_k; zero elsewhere in [rows][kSlice]. scale may be null (1).
// Rounding to tf32 here, once per element, is what the fragments need: loads
// of already-rounded values are exact.
__device__ void stage_rows(float* dst, const float* __restrict__ src, int64_t ld, int valid_rows, int rows,
                           int valid_k, const float* scale) {
  for (int e = threadIdx.x; e < rows * kSlice; e += kThreads) {
    const int i = e / kSlice, k = e % kSlice;
    float v = 0.0f;
    if (i < valid_rows && k < valid_k) v = src[i * ld + k] * (scale ? scale[i] : 1.0f);
    dst[i * kLdK + k] = wmma::__float_to_tf32(v);
  }
}

// dst[k][j] (stride kLdC) = tf32(w_k * src[k*ld + j]) for k < valid_k,
// j < valid_cols; zero elsewhere in [kSlice][cols]. w may be null (1).
__device__ void stage_cols(float* dst, const float* __restrict__ src, int64_t ld, int valid_k, int valid_cols,
                           int cols, const float* w) {
  for (int e = threadIdx.x; e < kSlice * cols; e += kThreads) {
    const int k = e / cols, j = e % cols;
    float v = 0.0f;
    if (k < valid_k && j < valid_cols) v = src[k * ld + j] * (w ? w[k] : 1.0f);
    dst[k * kLdC + j] = wmma::__float_to_tf32(v);
  }
}

__device__ __forceinline__ void zero(FragAcc (&acc)[kMaxTiles]) {
#pragma unroll
  for (int i = 0; i < kMaxTiles; ++i) wmma::fill_fragment(acc[i], 0.0f);
}

// dst[l][k] (stride kLdK) = tf32(G[l][s] exp(Λ_l-Λ_s) dt_s), s = s0 + k, for
// s <= l < L; zero elsewhere in [rows][kSlice] (G above the diagonal tiles
// was never written, so it is never read).
__device__ void stage_masked_cb(float* dst, const float* __restrict__ G, int QP, int s0, int L, int rows,
                                const float* cum_s, const float* dt_s) {
  for (int e = threadIdx.x; e < rows * kSlice; e += kThreads) {
    const int l = e / kSlice, s = s0 + e % kSlice;
    float v = 0.0f;
    if (s <= l && l < L) v = G[l * QP + s] * expf(cum_s[l] - cum_s[s]) * dt_s[s];
    dst[l * kLdK + (s - s0)] = wmma::__float_to_tf32(v);
  }
}
#endif

// ---------------------------------------------------------------- C·Bᵀ per group

// Warp w computes column tile w of G for row tiles w..tiles-1 (the lower
// triangle; out_kernel reads nothing above the diagonal tiles).
__global__ void __launch_bounds__(kThreads) cb_kernel(ChunkParams c) {
#if SSD_HAVE_TF32
  ChunkRef r;
  if (!chunk_ref(c, blockIdx.x, r)) return;
  const ScanParams& p = c.s;
  const int64_t g = blockIdx.y, N = p.state;
  __shared__ __align__(128) float cs[kMaxChunk * kLdK];
  __shared__ __align__(128) float bs[kMaxChunk * kLdK];
  const int warp = threadIdx.x / 32;
  const int tiles = (r.L + kTile - 1) / kTile;
  const float* Cg = p.C + r.r0 * p.ldbc + g * N;
  const float* Bg = p.B + r.r0 * p.ldbc + g * N;

  FragAcc acc[kMaxTiles];
  zero(acc);
  for (int64_t n0 = 0; n0 < N; n0 += kSlice) {
    const int kw = static_cast<int>(min(static_cast<int64_t>(kSlice), N - n0));
    stage_rows(cs, Cg + n0, p.ldbc, r.L, tiles * kTile, kw, nullptr);
    stage_rows(bs, Bg + n0, p.ldbc, r.L, tiles * kTile, kw, nullptr);
    __syncthreads();
    if (warp < tiles) {
      for (int k = 0; k < kw; k += kStep) {
        FragBcol b;  // Bᵀ[n][s] = bs[s][n]
        wmma::load_matrix_sync(b, bs + warp * kTile * kLdK + k, kLdK);
#pragma unroll
        for (int i = 0; i < kMaxTiles; ++i) {
          if (i < warp || i >= tiles) continue;
          FragArow a;
          wmma::load_matrix_sync(a, cs + i * kTile * kLdK + k, kLdK);
          wmma::mma_sync(acc[i], a, b, acc[i]);
        }
      }
    }
    __syncthreads();
  }
  if (warp >= tiles) return;
  float* G = c.cb + (r.slot * p.groups + g) * c.QP * c.QP;
#pragma unroll
  for (int i = 0; i < kMaxTiles; ++i)
    if (i >= warp && i < tiles) wmma::store_matrix_sync(G + i * kTile * c.QP + warp * kTile, acc[i], c.QP, wmma::mem_row_major);
#else
  __trap();
#endif
}

// ---------------------------------------------------------------- chunk states

// One block computes a [<=128 head_dim rows] x [<=128 state columns] slice of
// st = Xwᵀ·B with Xw[s][p] = exp(Λ_last-Λ_s) dt_s x_s[p]; its 16x16 tiles
// are dealt to the warps round-robin.
__global__ void __launch_bounds__(kThreads) state_kernel(ChunkParams c, int npb, int nnb) {
#if SSD_HAVE_TF32
  const int wi = blockIdx.x / (npb * nnb), pb = blockIdx.x / nnb % npb, nb = blockIdx.x % nnb;
  ChunkRef r;
  if (!chunk_ref(c, wi, r)) return;
  const ScanParams& p = c.s;
  const int64_t h = blockIdx.y, g = h / (p.heads / p.groups), P = p.head_dim, N = p.state;
  const int64_t p0 = static_cast<int64_t>(pb) * kCols, n0 = static_cast<int64_t>(nb) * kCols;
  const int PB = static_cast<int>(min(static_cast<int64_t>(kCols), P - p0));
  const int NB = static_cast<int>(min(static_cast<int64_t>(kCols), N - n0));
  const int PT = (PB + kTile - 1) / kTile, NT = (NB + kTile - 1) / kTile;
  __shared__ float dt_s[kMaxChunk], cum_s[kMaxChunk], w_s[kMaxChunk];
  __shared__ __align__(128) float xs[kSlice * kLdC];
  __shared__ __align__(128) float bs[kSlice * kLdC];
  const int warp = threadIdx.x / 32;

  chunk_decay(c, r, h, dt_s, cum_s);
  const float last = cum_s[r.L - 1];
  for (int i = threadIdx.x; i < kMaxChunk; i += kThreads) w_s[i] = i < r.L ? expf(last - cum_s[i]) * dt_s[i] : 0.0f;
  if (pb == 0 && nb == 0 && threadIdx.x == 0) c.dec[r.slot * p.heads + h] = last;
  __syncthreads();

  const float* xh = p.x + r.r0 * p.ldx + h * P + p0;
  const float* bg = p.B + r.r0 * p.ldbc + g * N + n0;
  FragAcc acc[kMaxTiles];
  zero(acc);
  for (int s0 = 0; s0 < r.L; s0 += kSlice) {
    const int kv = min(kSlice, r.L - s0);
    stage_cols(xs, xh + s0 * p.ldx, p.ldx, kv, PB, PT * kTile, w_s + s0);
    stage_cols(bs, bg + s0 * p.ldbc, p.ldbc, kv, NB, NT * kTile, nullptr);
    __syncthreads();
    for (int k = 0; k < kv; k += kStep) {
#pragma unroll
      for (int i = 0; i < kMaxTiles; ++i) {
        const int t = warp + kWarps * i;
        if (t >= PT * NT) continue;
        const int tp = t / NT, tn = t % NT;
        FragAcol a;  // Xwᵀ[p][s] = xs[s][p]
        FragBrow b;
        wmma::load_matrix_sync(a, xs + k * kLdC + tp * kTile, kLdC);
        wmma::load_matrix_sync(b, bs + k * kLdC + tn * kTile, kLdC);
        wmma::mma_sync(acc[i], a, b, acc[i]);
      }
    }
    __syncthreads();
  }
  float* out = c.st + (r.slot * p.heads + h) * c.PP * c.NP + p0 * c.NP + n0;
#pragma unroll
  for (int i = 0; i < kMaxTiles; ++i) {
    const int t = warp + kWarps * i;
    if (t >= PT * NT) continue;
    const int tp = t / NT, tn = t % NT;
    wmma::store_matrix_sync(out + tp * kTile * c.NP + tn * kTile, acc[i], c.NP, wmma::mem_row_major);
  }
#else
  __trap();
#endif
}

// ---------------------------------------------------------------- state passing

// Sequential over the window's chunks, parallel over the [PP][NP] state
// elements (padding included: it stays zero). Each slot's chunk state is
// replaced by the state entering that chunk, which out_kernel reads.
__global__ void __launch_bounds__(kThreads) pass_kernel(ChunkParams c) {
  const DevSpan sp = c.spans[c.span0 + blockIdx.z];
  if (sp.n < c.min_n) return;
  const int64_t chunks = (sp.n + c.Q - 1) / c.Q;
  const int cnt = static_cast<int>(min(static_cast<int64_t>(c.wchunks), chunks - c.chunk0));
  if (cnt <= 0) return;
  const ScanParams& p = c.s;
  const int64_t h = blockIdx.y, P = p.head_dim, N = p.state, PN = static_cast<int64_t>(c.PP) * c.NP;
  const int64_t slot0 = static_cast<int64_t>(blockIdx.z) * c.wchunks;
  float* S0 = sp.ssm + h * P * N;
#pragma unroll
  for (int j = 0; j < kPassElems; ++j) {
    const int64_t e = (static_cast<int64_t>(blockIdx.x) * kPassElems + j) * kThreads + threadIdx.x;
    if (e >= PN) break;
    const int64_t pp = e / c.NP, n = e % c.NP;
    const bool real = pp < P && n < N;
    float S = real ? S0[pp * N + n] : 0.0f;
    for (int w = 0; w < cnt; ++w) {
      const int64_t slot = slot0 + w;
      float* st = c.st + (slot * p.heads + h) * PN + e;
      const float add = *st;
      *st = S;
      S = fmaf(expf(c.dec[slot * p.heads + h]), S, add);
    }
    if (real) S0[pp * N + n] = S;
  }
}

// ---------------------------------------------------------------- outputs

// Warp w owns output rows [16w, 16w+16) of the chunk and all (<= 8) 16-column
// tiles of the block's head_dim slice; its causal contraction stops at s = 16w+15.
__global__ void __launch_bounds__(kThreads) out_kernel(ChunkParams c, int npb) {
#if SSD_HAVE_TF32
  const int wi = blockIdx.x / npb, pb = blockIdx.x % npb;
  ChunkRef r;
  if (!chunk_ref(c, wi, r)) return;
  const ScanParams& p = c.s;
  const int64_t h = blockIdx.y, g = h / (p.heads / p.groups), P = p.head_dim, N = p.state;
  const int64_t p0 = static_cast<int64_t>(pb) * kCols;
  const int PB = static_cast<int>(min(static_cast<int64_t>(kCols), P - p0));
  const int PT = (PB + kTile - 1) / kTile;
  constexpr int kBuf = 2 * kMaxChunk * kLdK > kMaxChunk * kLdK + kSlice * kLdC ? 2 * kMaxChunk * kLdK
                                                                              : kMaxChunk * kLdK + kSlice * kLdC;
  static_assert(kWarps * kTile * kTile <= kBuf, "epilogue staging fits in the operand buffer");
  __shared__ float dt_s[kMaxChunk], cum_s[kMaxChunk], e_s[kMaxChunk];
  __shared__ __align__(128) float buf[kBuf];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int tiles = (r.L + kTile - 1) / kTile;

  chunk_decay(c, r, h, dt_s, cum_s);
  for (int i = threadIdx.x; i < kMaxChunk; i += kThreads) e_s[i] = i < r.L ? expf(cum_s[i]) : 0.0f;
  __syncthreads();

  FragAcc acc[kMaxTiles];
  zero(acc);
  // 1. State carried in: (exp(Λ_l) C_l) · S_in[p]
  {
    float* cs = buf;
    float* ss = buf + kMaxChunk * kLdK;
    const float* Cg = p.C + r.r0 * p.ldbc + g * N;
    const float* S_in = c.st + (r.slot * p.heads + h) * c.PP * c.NP + p0 * c.NP;
    for (int64_t n0 = 0; n0 < N; n0 += kSlice) {
      const int kw = static_cast<int>(min(static_cast<int64_t>(kSlice), N - n0));
      stage_rows(cs, Cg + n0, p.ldbc, r.L, tiles * kTile, kw, e_s);
      stage_rows(ss, S_in + n0, c.NP, PB, PT * kTile, kw, nullptr);
      __syncthreads();
      if (warp < tiles) {
        for (int k = 0; k < kw; k += kStep) {
          FragArow a;
          wmma::load_matrix_sync(a, cs + warp * kTile * kLdK + k, kLdK);
#pragma unroll
          for (int j = 0; j < kMaxTiles; ++j) {
            if (j >= PT) continue;
            FragBcol b;  // S_inᵀ[n][p] = ss[p][n]
            wmma::load_matrix_sync(b, ss + j * kTile * kLdK + k, kLdK);
            wmma::mma_sync(acc[j], a, b, acc[j]);
          }
        }
      }
      __syncthreads();
    }
  }
  // 2. Intra-chunk: (G ∘ exp(Λ_l-Λ_s) dt_s, causal) · X
  {
    float* ms = buf;
    float* xs = buf + kMaxChunk * kLdK;
    const float* G = c.cb + (r.slot * p.groups + g) * c.QP * c.QP;
    const float* xh = p.x + r.r0 * p.ldx + h * P + p0;
    for (int s0 = 0; s0 < r.L; s0 += kSlice) {
      const int kv = min(kSlice, r.L - s0);
      stage_masked_cb(ms, G, c.QP, s0, r.L, tiles * kTile, cum_s, dt_s);
      stage_cols(xs, xh + s0 * p.ldx, p.ldx, kv, PB, PT * kTile, nullptr);
      __syncthreads();
      if (warp < tiles) {
        for (int k = 0; k < kv && s0 + k < (warp + 1) * kTile; k += kStep) {
          FragArow a;
          wmma::load_matrix_sync(a, ms + warp * kTile * kLdK + k, kLdK);
#pragma unroll
          for (int j = 0; j < kMaxTiles; ++j) {
            if (j >= PT) continue;
            FragBrow b;
            wmma::load_matrix_sync(b, xs + k * kLdC + j * kTile, kLdC);
            wmma::mma_sync(acc[j], a, b, acc[j]);
          }
        }
      }
      __syncthreads();
    }
  }
  // 3. + D x (fp32), masked store through a per-warp 16x16 staging tile.
  if (warp >= tiles) return;
  float* stage = buf + warp * kTile * kTile;
  const float D = p.D[h];
  const int64_t y_ld = p.heads * P;
#pragma unroll
  for (int j = 0; j < kMaxTiles; ++j) {
    if (j >= PT) continue;
    wmma::store_matrix_sync(stage, acc[j], kTile, wmma::mem_row_major);
    __syncwarp();
    for (int e = lane; e < kTile * kTile; e += 32) {
      const int l = warp * kTile + e / kTile, pp = j * kTile + e % kTile;
      if (l < r.L && pp < PB) {
        const int64_t row = r.r0 + l, col = h * P + p0 + pp;
        p.y[row * y_ld + col] = stage[e] + D * p.x[row * p.ldx + col];
      }
    }
    __syncwarp();
  }
#else
  __trap();
#endif
}

// ---------------------------------------------------------------- host side

int64_t round16(int64_t v) { return (v + 15) / 16 * 16; }
// Floats, rounded up so each workspace region starts 256-byte aligned.
int64_t aligned_floats(int64_t v) { return (v + 63) / 64 * 64; }

// Workspace floats of one (span, chunk) slot, region by region.
struct SlotSize {
  int64_t st, cb, dec;
  int64_t total() const { return st + cb + dec; }
};

// How a call is cut into launch sets: as many chunks per span as fit the cap
// with every span in one batch, then as many spans as fit with that window (at
// least 1 x 1). Shared by the launch and ssd_chunked_workspace_bound.
struct LaunchSets {
  SlotSize slot{};
  int64_t chunks = 0, window = 0, batch = 0;
  int64_t slots() const { return window * batch; }
  size_t bytes() const { return static_cast<size_t>(slots() * slot.total()) * sizeof(float); }
};

LaunchSets plan_launch_sets(const ScanParams& s, int64_t chunk, int nspans, int64_t max_n) {
  LaunchSets ls;
  ls.slot = SlotSize{aligned_floats(s.heads * round16(s.head_dim) * round16(s.state)),
                     aligned_floats(s.groups * round16(chunk) * round16(chunk)), aligned_floats(s.heads)};
  const int64_t slot_bytes = ls.slot.total() * static_cast<int64_t>(sizeof(float));
  ls.chunks = (max_n + chunk - 1) / chunk;
  const int64_t cap_slots = std::max<int64_t>(1, static_cast<int64_t>(kWorkspaceCap) / slot_bytes);
  ls.window = std::clamp<int64_t>(cap_slots / nspans, 1, ls.chunks);
  ls.batch = std::clamp<int64_t>(cap_slots / ls.window, 1, nspans);
  return ls;
}

}  // namespace

// The slots grow with the spans in a call times the chunks of its longest span,
// up to the cap: the most spans a call of max_rows tokens can have beside a
// longest span of n is max_rows - n + 1, so every n from min_n up is tried.
size_t ssd_chunked_workspace_bound(const ScanParams& s, int64_t chunk, int64_t max_rows, int64_t min_n) {
  size_t most = 0;
  for (int64_t n = std::max<int64_t>(1, min_n); n <= max_rows; ++n) {
    const int nspans = static_cast<int>(std::min<int64_t>(max_rows - n + 1, 65535));
    most = std::max(most, plan_launch_sets(s, chunk, nspans, n).bytes());
  }
  return most;
}

void ssd_chunked_scan(const ScanParams& s, int64_t chunk, const DevSpan* spans, int nspans, int64_t max_n,
                      int64_t min_n, cudaStream_t stream) {
  if (chunk < 1 || chunk > kMaxChunk) fail(ErrorCode::Internal, "ssd scan: chunk out of range");
  ChunkParams c{};
  c.s = s;
  c.spans = spans;
  c.min_n = min_n;
  c.Q = static_cast<int>(chunk);
  c.QP = static_cast<int>(round16(chunk));
  c.PP = static_cast<int>(round16(s.head_dim));
  c.NP = static_cast<int>(round16(s.state));
  const int npb = static_cast<int>((s.head_dim + kCols - 1) / kCols);
  const int nnb = static_cast<int>((s.state + kCols - 1) / kCols);
  const unsigned pass_blocks =
      static_cast<unsigned>((static_cast<int64_t>(c.PP) * c.NP + kThreads * kPassElems - 1) / (kThreads * kPassElems));

  const LaunchSets ls = plan_launch_sets(s, chunk, nspans, max_n);
  const SlotSize slot = ls.slot;
  const int64_t chunks = ls.chunks, window = ls.window, batch = ls.batch, slots = ls.slots();

  int dev = 0;
  cuda::check(cudaGetDevice(&dev), "ssd scan: cudaGetDevice");
  void* ws = nullptr;
  cuda::check(cudaMallocFromPoolAsync(&ws, ls.bytes(), workspace_pool(dev), stream), "ssd scan workspace");
  c.st = static_cast<float*>(ws);
  c.cb = c.st + slots * slot.st;
  c.dec = c.cb + slots * slot.cb;

  for (int64_t s0 = 0; s0 < nspans; s0 += batch) {
    const unsigned zs = static_cast<unsigned>(std::min<int64_t>(batch, nspans - s0));
    c.span0 = static_cast<int>(s0);
    for (int64_t c0 = 0; c0 < chunks; c0 += window) {
      c.chunk0 = c0;
      c.wchunks = static_cast<int>(std::min<int64_t>(window, chunks - c0));
      const unsigned wn = static_cast<unsigned>(c.wchunks);
      const unsigned heads = static_cast<unsigned>(s.heads);
      cb_kernel<<<dim3(wn, static_cast<unsigned>(s.groups), zs), kThreads, 0, stream>>>(c);
      state_kernel<<<dim3(wn * npb * nnb, heads, zs), kThreads, 0, stream>>>(c, npb, nnb);
      pass_kernel<<<dim3(pass_blocks, heads, zs), kThreads, 0, stream>>>(c);
      out_kernel<<<dim3(wn * npb, heads, zs), kThreads, 0, stream>>>(c, npb);
      cuda::check(cudaGetLastError(), "ssd scan: kernel launch");
    }
  }
  cuda::check(cudaFreeAsync(ws, stream), "ssd scan: free workspace");
}

}  // namespace cuda
}  // namespace nemotron
