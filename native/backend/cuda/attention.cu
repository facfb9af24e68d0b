// Causal GQA attention over a KV cache (spec §2.4): the CUDA twin of
// native/backend/cpu/attention.cpp.
//
// 1. append_kv_kernel copies every span's new k/v rows to cache rows past..past+n-1
//    (a bf16 cache stores them rounded to nearest even, as the CPU twin does).
// 2. attn_kernel, FlashAttention-2 style, in fp32 (activations are fp32 and the
//    scores are computed exactly as the CPU does; tf32 tensor cores would cost
//    ~1e-3 relative error). One block per (span, kv head, row tile, key split):
//    the rows of a block are (token i, group member g) pairs r = i*G + g of the
//    G = q_heads/kv_heads query heads sharing that kv head, so each K/V tile
//    staged in shared memory serves the whole GQA group (5x fewer K/V bytes for
//    the 9B than a block per query head). Each row has its own causal limit
//    past+i+1; softmax is online (running max/sum, rescaled accumulators).
//    K/V tiles are widened to fp32 as they are staged, so a bf16 cache halves
//    the bytes read (what bounds decode) and changes nothing else.
//    Prefill-sized tiles over a bf16 cache run on bf16 tensor cores instead
//    (attn_tc_kernel: Q and the softmax weights rounded to bf16, fp32
//    accumulation, as FlashAttention-2 / torch SDPA in bf16); an fp32 cache
//    keeps the exact fp32 kernel (kvCache: 'f32').
// 3. When a call has too few (span, kv head, row tile) blocks to fill the GPU
//    (decode: one row tile per kv head), the key range is split into chunks
//    (flash-decoding): each split writes an unnormalised partial (acc, max, sum)
//    to a workspace and combine_kernel merges them.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "backend/cuda/attention_bench.h"
#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/device_info.h"
#include "backend/cuda/ptx_sm80.cuh"
#include "backend/cuda/workspace_pool.h"
#include "common/error.h"

namespace nemotron {
namespace cuda {

namespace {

constexpr float kLog2e = 1.4426950408889634f;
constexpr int kThreads = 256;  // a 16 x 16 grid of threads over (rows, columns)
constexpr int kMaxSplits = 256;

// ---------------------------------------------------------------- cache elements

// A cache holds float or __nv_bfloat16 (AttentionArgs::kv_dtype). Four
// consecutive values come in one vector load (16 bytes of fp32, 8 of bf16);
// bf16 widens exactly (it is the top half of an fp32).
__device__ __forceinline__ float4 load4(const float* p) { return __ldg(reinterpret_cast<const float4*>(p)); }
__device__ __forceinline__ float4 load4(const __nv_bfloat16* p) {
  const uint2 u = __ldg(reinterpret_cast<const uint2*>(p));
  return make_float4(__uint_as_float(u.x << 16), __uint_as_float(u.x & 0xffff0000u), __uint_as_float(u.y << 16),
                     __uint_as_float(u.y & 0xffff0000u));
}
__device__ __forceinline__ float load1(const float* p) { return *p; }
__device__ __forceinline__ float load1(const __nv_bfloat16* p) { return __bfloat162float(*p); }
__device__ __forceinline__ void store1(float* p, float x) { *p = x; }
__device__ __forceinline__ void store1(__nv_bfloat16* p, float x) { *p = __float2bfloat16_rn(x); }

// Bytes a vector load of four cache values needs its address aligned to.
template <typename KV>
constexpr uintptr_t kVec4Align = 4 * sizeof(KV) - 1;

// ---------------------------------------------------------------- append

// grid (max_n, nspans): one block copies one new token's k and v rows.
template <typename KV>
__global__ void append_kv_kernel(const float* __restrict__ k, const float* __restrict__ v,
                                 const DevSpan* __restrict__ spans, int64_t kvw, bool vec_src) {
  const DevSpan sp = spans[blockIdx.y];
  const int64_t i = blockIdx.x;
  if (i >= sp.n) return;
  const float* ks = k + (sp.row0 + i) * kvw;
  const float* vs = v + (sp.row0 + i) * kvw;
  KV* kd = static_cast<KV*>(sp.k) + (sp.past + i) * kvw;
  KV* vd = static_cast<KV*>(sp.v) + (sp.past + i) * kvw;
  // fp32 caches take float4 stores (kvw % 4 == 0 is part of vec_src; the cache
  // pointers are only known here); bf16 stores are 2 bytes each, coalesced.
  const bool vec = sizeof(KV) == 4 && vec_src &&
                   ((reinterpret_cast<uintptr_t>(sp.k) | reinterpret_cast<uintptr_t>(sp.v)) & 15) == 0;
  if (vec) {
    for (int64_t c = threadIdx.x; c < kvw / 4; c += blockDim.x) {
      reinterpret_cast<float4*>(kd)[c] = reinterpret_cast<const float4*>(ks)[c];
      reinterpret_cast<float4*>(vd)[c] = reinterpret_cast<const float4*>(vs)[c];
    }
  } else {
    for (int64_t c = threadIdx.x; c < kvw; c += blockDim.x) {
      store1(kd + c, ks[c]);
      store1(vd + c, vs[c]);
    }
  }
}

// ---------------------------------------------------------------- attention

// HDP: head_dim padded up to a multiple of 16 (the real head_dim is a runtime
// value <= HDP; the padding is zero in Q, K and V so it changes no dot product).
// BM rows (query (token, head) pairs) x BN keys per tile.
template <int HDP, int BM, int BN>
struct Tile {
  static constexpr int RM = BM / 16;   // rows per thread
  static constexpr int CN = BN / 16;   // score columns per thread (key tx + 16*j)
  static constexpr int CD = HDP / 16;  // output columns per thread (dim tx + 16*c)
  // Q and K rows padded by 4 floats: the 8 lanes of a 16-byte-load phase then
  // read 8 different K rows from 8 disjoint bank quads.
  static constexpr int QS = HDP + 4;
  static constexpr int PS = BN + 4;
  static constexpr int KP = (BN * QS > BM * PS) ? BN * QS : BM * PS;  // K tile, reused for P
  static constexpr int SMEM_FLOATS = BM * QS + KP + BN * HDP;
  static constexpr size_t SMEM_BYTES = sizeof(float) * SMEM_FLOATS;
  static_assert(BM % 16 == 0 && BN % 16 == 0 && HDP % 16 == 0, "tile shape");
};

struct AttnParams {
  const float* q;
  float* out;
  const DevSpan* spans;
  int nspans;
  int kv_heads, group, head_dim;
  int64_t qw, kvw;     // row widths of q/out and of k/v
  float scale_log2;    // scale * log2(e): softmax in base 2
  int64_t chunk;       // keys per split (multiple of BN); huge when not split
  int max_n;           // workspace row stride (tokens per span)
  int q_heads;
  float* ws_acc;       // split mode: [split][span][token][q head][head_dim], else null
  float* ws_ml;        // split mode: [split][span][token][q head][2] = (max, sum)
  bool vec;            // head_dim % 4 == 0 and q is 16-byte aligned
};

// What one block of either attention kernel covers. grid: x = row tile (reversed:
// longest-key tiles start first), y = span * kv_heads + kv head, z = key split.
// Rows are the span's (token, group member) pairs r = i*G + g; keys [kb, ke)
// are the split's chunk, cut at the causal limit of the block's last row.
struct BlockWork {
  int s, kvh;
  DevSpan sp;
  int64_t rows, r0, kb, split_end, ke;
};
__device__ __forceinline__ BlockWork block_work(const AttnParams& p, int bm) {
  BlockWork w;
  w.s = blockIdx.y / p.kv_heads;
  w.kvh = blockIdx.y % p.kv_heads;
  w.sp = p.spans[w.s];
  w.rows = w.sp.n * p.group;
  w.r0 = (static_cast<int64_t>(gridDim.x) - 1 - blockIdx.x) * bm;
  const int64_t r_last = min(w.r0 + bm, w.rows) - 1;
  w.kb = static_cast<int64_t>(blockIdx.z) * p.chunk;
  w.split_end = w.kb + p.chunk;
  w.ke = min(w.split_end, w.sp.past + r_last / p.group + 1);
  return w;
}

// Element d of the block's query row r (token r / G, query head kvh * G + r % G);
// 0 past head_dim and past the span's rows (the tiles' zero padding).
__device__ __forceinline__ float q_value(const AttnParams& p, const BlockWork& w, int64_t r, int d) {
  if (r >= w.rows || d >= p.head_dim) return 0.f;
  const int64_t i = r / p.group, g = r % p.group;
  return p.q[(w.sp.row0 + i) * p.qw + (w.kvh * p.group + g) * p.head_dim + d];
}

// grid: see BlockWork.
// KV: the caches' element type.
template <int HDP, int BM, int BN, typename KV>
__global__ void __launch_bounds__(kThreads) attn_kernel(const AttnParams p) {
  using T = Tile<HDP, BM, BN>;
  extern __shared__ __align__(16) float smem[];
  float* Qs = smem;                // [BM][QS]
  float* Ks = Qs + BM * T::QS;     // [BN][QS]; after the scores, P [BM][PS]
  float* Vs = Ks + T::KP;          // [BN][HDP]
  float* Ps = Ks;

  const BlockWork w = block_work(p, BM);
  if (w.r0 >= w.rows) return;
  const int s = w.s, kvh = w.kvh;
  const DevSpan& sp = w.sp;
  const int64_t rows = w.rows, r0 = w.r0, kb = w.kb, split_end = w.split_end, ke = w.ke;
  const int hd = p.head_dim, G = p.group;
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;

  // Per thread-row: exclusive causal key limit (clamped to the split), or -1 if the row is padding.
  int64_t lim[T::RM];
#pragma unroll
  for (int i = 0; i < T::RM; ++i) {
    const int64_t r = r0 + ty * T::RM + i;
    lim[i] = r < rows ? min(split_end, sp.past + r / G + 1) : -1;
  }

  // Stage Q rows (zero beyond head_dim and for padding rows).
  const int kvw_off = kvh * hd;
  if (p.vec) {
    for (int idx = tid; idx < BM * (HDP / 4); idx += kThreads) {
      const int r = idx / (HDP / 4), d = (idx % (HDP / 4)) * 4;
      float4 val = make_float4(0.f, 0.f, 0.f, 0.f);
      const int64_t rr = r0 + r;
      if (rr < rows && d < hd) {
        const int64_t i = rr / G, g = rr % G;
        val = *reinterpret_cast<const float4*>(p.q + (sp.row0 + i) * p.qw + (kvh * G + g) * hd + d);
      }
      *reinterpret_cast<float4*>(Qs + r * T::QS + d) = val;
    }
  } else {
    for (int idx = tid; idx < BM * HDP; idx += kThreads) {
      const int r = idx / HDP, d = idx % HDP;
      Qs[r * T::QS + d] = q_value(p, w, r0 + r, d);
    }
  }
  // The cache pointers are per span: check their alignment here (uniform per block).
  const KV* kc = static_cast<const KV*>(sp.k);
  const KV* vc = static_cast<const KV*>(sp.v);
  const bool vec_kv =
      p.vec && ((reinterpret_cast<uintptr_t>(kc) | reinterpret_cast<uintptr_t>(vc)) & kVec4Align<KV>) == 0;

  float m[T::RM], l[T::RM], acc[T::RM][T::CD];
#pragma unroll
  for (int i = 0; i < T::RM; ++i) {
    m[i] = -INFINITY;
    l[i] = 0.f;
#pragma unroll
    for (int c = 0; c < T::CD; ++c) acc[i][c] = 0.f;
  }

  for (int64_t t0 = kb; t0 < ke; t0 += BN) {
    __syncthreads();  // previous tile's P and V reads are done (and Q is staged)
    // Stage K and V rows t0..t0+BN-1 of this kv head; zero past `ke` and past head_dim.
    if (vec_kv) {
#pragma unroll 4
      for (int idx = tid; idx < BN * (HDP / 4); idx += kThreads) {
        const int j = idx / (HDP / 4), d = (idx % (HDP / 4)) * 4;
        float4 kk = make_float4(0.f, 0.f, 0.f, 0.f), vv = kk;
        const int64_t key = t0 + j;
        if (key < ke && d < hd) {
          kk = load4(kc + key * p.kvw + kvw_off + d);
          vv = load4(vc + key * p.kvw + kvw_off + d);
        }
        *reinterpret_cast<float4*>(Ks + j * T::QS + d) = kk;
        *reinterpret_cast<float4*>(Vs + j * HDP + d) = vv;
      }
    } else {
      for (int idx = tid; idx < BN * HDP; idx += kThreads) {
        const int j = idx / HDP, d = idx % HDP;
        float kk = 0.f, vv = 0.f;
        const int64_t key = t0 + j;
        if (key < ke && d < hd) {
          kk = load1(kc + key * p.kvw + kvw_off + d);
          vv = load1(vc + key * p.kvw + kvw_off + d);
        }
        Ks[j * T::QS + d] = kk;
        Vs[j * HDP + d] = vv;
      }
    }
    __syncthreads();

    // Scores S[row][key] = q . k for this thread's RM rows x CN keys.
    float sc[T::RM][T::CN];
#pragma unroll
    for (int i = 0; i < T::RM; ++i)
#pragma unroll
      for (int j = 0; j < T::CN; ++j) sc[i][j] = 0.f;
#pragma unroll 4
    for (int d = 0; d < HDP; d += 4) {
      float4 qv[T::RM], kv[T::CN];
#pragma unroll
      for (int i = 0; i < T::RM; ++i) qv[i] = *reinterpret_cast<const float4*>(Qs + (ty * T::RM + i) * T::QS + d);
#pragma unroll
      for (int j = 0; j < T::CN; ++j) kv[j] = *reinterpret_cast<const float4*>(Ks + (tx + 16 * j) * T::QS + d);
#pragma unroll
      for (int i = 0; i < T::RM; ++i)
#pragma unroll
        for (int j = 0; j < T::CN; ++j) {
          float a = sc[i][j];
          a = fmaf(qv[i].x, kv[j].x, a);
          a = fmaf(qv[i].y, kv[j].y, a);
          a = fmaf(qv[i].z, kv[j].z, a);
          a = fmaf(qv[i].w, kv[j].w, a);
          sc[i][j] = a;
        }
    }
    __syncthreads();  // all K reads done: P overwrites the K tile

    // Online softmax per row; the 16 lanes tx = 0..15 of a half warp share the row.
#pragma unroll
    for (int i = 0; i < T::RM; ++i) {
      float mx = -INFINITY;
#pragma unroll
      for (int j = 0; j < T::CN; ++j) {
        const int64_t key = t0 + tx + 16 * j;
        sc[i][j] = key < lim[i] ? sc[i][j] * p.scale_log2 : -INFINITY;
        mx = fmaxf(mx, sc[i][j]);
      }
#pragma unroll
      for (int o = 8; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o, 16));
      const float m_new = fmaxf(m[i], mx);
      // A row with no visible key yet keeps m = -inf; exponentiate against 0 then
      // (every p is exp2(-inf) = 0) instead of producing NaN from -inf - -inf.
      const float m_use = m_new == -INFINITY ? 0.f : m_new;
      const float alpha = exp2f(m[i] - m_use);
      float sum = 0.f;
#pragma unroll
      for (int j = 0; j < T::CN; ++j) {
        const float pj = exp2f(sc[i][j] - m_use);
        sum += pj;
        Ps[(ty * T::RM + i) * T::PS + tx + 16 * j] = pj;
      }
#pragma unroll
      for (int o = 8; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o, 16);
      l[i] = l[i] * alpha + sum;
      m[i] = m_new;
#pragma unroll
      for (int c = 0; c < T::CD; ++c) acc[i][c] *= alpha;
    }
    __syncthreads();

    // acc[row][dim] += P[row][key] * V[key][dim]
#pragma unroll 2
    for (int k = 0; k < BN; k += 4) {
      float4 pv[T::RM];
#pragma unroll
      for (int i = 0; i < T::RM; ++i) pv[i] = *reinterpret_cast<const float4*>(Ps + (ty * T::RM + i) * T::PS + k);
#pragma unroll
      for (int kk = 0; kk < 4; ++kk) {
        float vr[T::CD];
#pragma unroll
        for (int c = 0; c < T::CD; ++c) vr[c] = Vs[(k + kk) * HDP + tx + 16 * c];
#pragma unroll
        for (int i = 0; i < T::RM; ++i) {
          const float pk = kk == 0 ? pv[i].x : kk == 1 ? pv[i].y : kk == 2 ? pv[i].z : pv[i].w;
#pragma unroll
          for (int c = 0; c < T::CD; ++c) acc[i][c] = fmaf(pk, vr[c], acc[i][c]);
        }
      }
    }
  }

  // Write: normalised output, or the split's unnormalised partial.
#pragma unroll
  for (int i = 0; i < T::RM; ++i) {
    if (lim[i] < 0) continue;
    const int64_t r = r0 + ty * T::RM + i;
    const int64_t tok = r / G;
    const int h = kvh * G + static_cast<int>(r % G);
    if (p.ws_acc == nullptr) {
      // Unsplit: key 0 is in range for every real row, so l >= 1.
      const float inv = 1.f / l[i];
      float* o = p.out + (sp.row0 + tok) * p.qw + static_cast<int64_t>(h) * hd;
#pragma unroll
      for (int c = 0; c < T::CD; ++c) {
        const int d = tx + 16 * c;
        if (d < hd) o[d] = acc[i][c] * inv;
      }
    } else {
      const int64_t pi = ((static_cast<int64_t>(blockIdx.z) * p.nspans + s) * p.max_n + tok) * p.q_heads + h;
      float* o = p.ws_acc + pi * hd;
#pragma unroll
      for (int c = 0; c < T::CD; ++c) {
        const int d = tx + 16 * c;
        if (d < hd) o[d] = acc[i][c];
      }
      if (tx == 0) {
        p.ws_ml[pi * 2] = m[i];
        p.ws_ml[pi * 2 + 1] = l[i];
      }
    }
  }
}

// ---------------------------------------------------------------- tensor-core prefill attention

// The large-tile path for bf16 caches (prefill: BM = 64 (token, group member)
// rows per block), on bf16 tensor cores with fp32 accumulation, as
// FlashAttention-2 and torch SDPA compute in bf16: Q is rounded to bf16 as it is
// staged and the softmax weights P as they are fed to P.V; K and V are the
// cache's bf16 values as they are. Scores, the online softmax and the output
// accumulate in fp32. Same blocks, key splits and causal limits as attn_kernel,
// and the same partial format for combine_kernel.
//
// 4 warps; warp w owns rows 16w..16w+15, and everything about them stays in its
// registers (mma.sync, ptx_sm80.cuh, whose layouts are known, unlike WMMA's):
// its Q rows as A operands for the whole head, the scores of a 64-key tile as
// C fragments (lane 4g+t holds rows g and g+8, keys 8j+2t, 8j+2t+1), the online
// softmax on them (a row's four lanes combine by two shuffles), the softmax
// weights re-packed as the A operand of P.V (a C fragment pair of 8-key tiles
// is exactly an A fragment of 16 keys), and O as C fragments rescaled in place.
// Shared memory holds only K and V tiles, double-buffered: the next tile's
// copies (cp.async, or plain stores for head dims that are not a multiple of 8)
// are in flight while this one is multiplied. Q passes through the second
// buffer once, before the first prefetch.
constexpr int kTcBM = 64, kTcBN = 64, kTcThreads = 128;
template <int HDP>
struct TcTile {
  static constexpr int LDQ = HDP + 8;  // bf16 rows padded by 16 bytes: an ldmatrix's 8 rows hit 8 bank groups
  static constexpr int TILE = kTcBN * LDQ;                  // one K or V tile, bf16
  static constexpr size_t SMEM_BYTES = 4 * size_t(TILE) * 2;  // (K, V) x 2 buffers; HDP 128: 68 KB
  static_assert(HDP % 16 == 0 && HDP <= 128, "tensor-core attention tile");
  static_assert(kTcBM <= kTcBN, "Q is staged in one K tile");
};

// Copies keys t0..t0+kTcBN-1 of this kv head into a K and a V tile: 16-byte
// cp.async chunks when `async` (head_dim % 8 == 0, caches 16-byte aligned;
// chunks past ke or head_dim zero-filled), else element by element.
template <int HDP>
__device__ __forceinline__ void tc_stage_kv(__nv_bfloat16* Kt, __nv_bfloat16* Vt, const __nv_bfloat16* kc,
                                            const __nv_bfloat16* vc, const AttnParams& p, int64_t kv_off, int64_t t0,
                                            int64_t ke, bool async) {
  using T = TcTile<HDP>;
  const int hd = p.head_dim;
  if (async) {
    for (int idx = threadIdx.x; idx < kTcBN * (HDP / 8); idx += kTcThreads) {
      const int j = idx / (HDP / 8), d = (idx % (HDP / 8)) * 8;
      const int64_t key = t0 + j;
      const bool in = key < ke && d < hd;
      const int64_t off = in ? key * p.kvw + kv_off + d : 0;
      cuda::ptx::cp_async_16(Kt + j * T::LDQ + d, kc + off, in ? 16 : 0);
      cuda::ptx::cp_async_16(Vt + j * T::LDQ + d, vc + off, in ? 16 : 0);
    }
  } else {
    for (int idx = threadIdx.x; idx < kTcBN * HDP; idx += kTcThreads) {
      const int j = idx / HDP, d = idx % HDP;
      __nv_bfloat16 kk = __float2bfloat16_rn(0.f), vv = kk;
      const int64_t key = t0 + j;
      if (key < ke && d < hd) {
        kk = kc[key * p.kvw + kv_off + d];
        vv = vc[key * p.kvw + kv_off + d];
      }
      Kt[j * T::LDQ + d] = kk;
      Vt[j * T::LDQ + d] = vv;
    }
  }
}

template <int HDP>
__global__ void __launch_bounds__(kTcThreads) attn_tc_kernel(const AttnParams p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  __trap();  // bf16 mma.sync needs sm_80; attention() never launches this on older devices
#else
  using T = TcTile<HDP>;
  constexpr int KD = HDP / 16;     // 16-wide steps over the head dim (Q.K^T)
  constexpr int SJ = kTcBN / 8;    // 8-key score tiles
  constexpr int ON = HDP / 8;      // 8-wide output column tiles
  extern __shared__ __align__(16) __nv_bfloat16 tc_smem[];
  // Buffer b: K tile at tc_smem + 2b * TILE, V tile right after it.

  const BlockWork w = block_work(p, kTcBM);
  if (w.r0 >= w.rows) return;
  const int s = w.s, kvh = w.kvh;
  const DevSpan& sp = w.sp;
  const int64_t rows = w.rows, r0 = w.r0, kb = w.kb, split_end = w.split_end, ke = w.ke;
  const int hd = p.head_dim, G = p.group;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, tq = lane % 4;

  // This lane's two rows (h = 0: g, h = 1: g + 8 of the warp's 16) and their causal key limits.
  int64_t rr[2], lim[2];
  float m[2], l[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    rr[h] = r0 + warp * 16 + g + 8 * h;
    lim[h] = rr[h] < rows ? min(split_end, sp.past + rr[h] / G + 1) : -1;
    m[h] = -INFINITY;
    l[h] = 0.f;
  }

  const int64_t kv_off = static_cast<int64_t>(kvh) * hd;
  const __nv_bfloat16* kc = static_cast<const __nv_bfloat16*>(sp.k);
  const __nv_bfloat16* vc = static_cast<const __nv_bfloat16*>(sp.v);
  const bool async = hd % 8 == 0 && p.kvw % 8 == 0 &&
                     ((reinterpret_cast<uintptr_t>(kc) | reinterpret_cast<uintptr_t>(vc)) & 15) == 0;

  // Q (rounded to bf16; zero past head_dim and for padding rows) through buffer 1's K tile.
  __nv_bfloat16* Qs = tc_smem + 2 * T::TILE;
  for (int idx = tid; idx < kTcBM * HDP; idx += kTcThreads) {
    const int r = idx / HDP, d = idx % HDP;
    Qs[r * T::LDQ + d] = __float2bfloat16_rn(q_value(p, w, r0 + r, d));
  }
  if (kb < ke) tc_stage_kv<HDP>(tc_smem, tc_smem + T::TILE, kc, vc, p, kv_off, kb, ke, async);
  cuda::ptx::cp_async_commit();
  __syncthreads();  // Q is staged
  // ldmatrix.x4 lanes 0-15 give rows 0-15 at dims 0-7, lanes 16-31 the same rows at dims 8-15: a[0..3].
  uint32_t qf[KD][4];
#pragma unroll
  for (int kd = 0; kd < KD; ++kd)
    cuda::ptx::ldmatrix_x4(qf[kd], Qs + (warp * 16 + (lane & 15)) * T::LDQ + kd * 16 + (lane >> 4) * 8);

  float o[ON][4];
#pragma unroll
  for (int n = 0; n < ON; ++n)
#pragma unroll
    for (int q = 0; q < 4; ++q) o[n][q] = 0.f;

  // K rows are B's columns (dims contiguous): matrices (keys 0-7, dims 0-7), (keys 0-7, dims 8-15),
  // (keys 8-15, dims 0-7), (keys 8-15, dims 8-15) = b[0], b[1] of two 8-key tiles.
  const int k_row = ((lane >> 4) << 3) + (lane & 7), k_col = ((lane >> 3) & 1) * 8;
  // V rows are keys (B's k) with dims contiguous, so transposed loads: matrices (keys 0-7, dims 0-7),
  // (keys 8-15, dims 0-7), (keys 0-7, dims 8-15), (keys 8-15, dims 8-15) = b[0], b[1] of two 8-dim tiles.
  const int v_row = (lane & 7) + ((lane >> 3) & 1) * 8, v_col = (lane >> 4) * 8;

  int buf = 0;
  for (int64_t t0 = kb; t0 < ke; t0 += kTcBN, buf ^= 1) {
    // This thread's copies of tile t0 have landed; the barrier publishes everyone's, and says every warp is
    // done with the other buffer (the previous tile, or Q), which the prefetch below overwrites.
    cuda::ptx::cp_async_wait<0>();
    __syncthreads();
    if (t0 + kTcBN < ke)
      tc_stage_kv<HDP>(tc_smem + 2 * (buf ^ 1) * T::TILE, tc_smem + (2 * (buf ^ 1) + 1) * T::TILE, kc, vc, p, kv_off,
                       t0 + kTcBN, ke, async);
    cuda::ptx::cp_async_commit();
    const __nv_bfloat16* Kt = tc_smem + 2 * buf * T::TILE;
    const __nv_bfloat16* Vt = Kt + T::TILE;

    // S = Q K^T for this warp's 16 rows and the tile's keys.
    float sc[SJ][4];
#pragma unroll
    for (int j = 0; j < SJ; ++j)
#pragma unroll
      for (int q = 0; q < 4; ++q) sc[j][q] = 0.f;
#pragma unroll
    for (int kd = 0; kd < KD; ++kd)
#pragma unroll
      for (int j = 0; j < SJ; j += 2) {
        uint32_t r[4];
        cuda::ptx::ldmatrix_x4(r, Kt + (j * 8 + k_row) * T::LDQ + kd * 16 + k_col);
        const uint32_t b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
        cuda::ptx::mma_bf16_16816(sc[j], qf[kd], b0);
        cuda::ptx::mma_bf16_16816(sc[j + 1], qf[kd], b1);
      }

    // Online softmax (base 2) of each of this lane's rows; its four lanes (same g) hold the row's other keys.
    float alpha[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float mx = -INFINITY;
#pragma unroll
      for (int j = 0; j < SJ; ++j)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int64_t key = t0 + j * 8 + 2 * tq + e;
          const float v = key < lim[h] ? sc[j][2 * h + e] * p.scale_log2 : -INFINITY;
          sc[j][2 * h + e] = v;
          mx = fmaxf(mx, v);
        }
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_new = fmaxf(m[h], mx);
      const float m_use = m_new == -INFINITY ? 0.f : m_new;  // no visible key yet: every p is 0, not NaN
      alpha[h] = exp2f(m[h] - m_use);
      float sum = 0.f;
#pragma unroll
      for (int j = 0; j < SJ; ++j)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const float e2 = exp2f(sc[j][2 * h + e] - m_use);
          sc[j][2 * h + e] = e2;
          sum += e2;
        }
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      l[h] = l[h] * alpha[h] + sum;
      m[h] = m_new;
    }
#pragma unroll
    for (int n = 0; n < ON; ++n) {
      o[n][0] *= alpha[0];
      o[n][1] *= alpha[0];
      o[n][2] *= alpha[1];
      o[n][3] *= alpha[1];
    }

    // O += P V, P (bf16) straight from the score registers: keys 16kk..16kk+15 are score tiles 2kk, 2kk+1.
#pragma unroll
    for (int kk = 0; kk < kTcBN / 16; ++kk) {
      const uint32_t pa[4] = {cuda::ptx::pack_bf16x2(sc[2 * kk][0], sc[2 * kk][1]),
                              cuda::ptx::pack_bf16x2(sc[2 * kk][2], sc[2 * kk][3]),
                              cuda::ptx::pack_bf16x2(sc[2 * kk + 1][0], sc[2 * kk + 1][1]),
                              cuda::ptx::pack_bf16x2(sc[2 * kk + 1][2], sc[2 * kk + 1][3])};
#pragma unroll
      for (int n = 0; n < ON; n += 2) {
        uint32_t r[4];
        cuda::ptx::ldmatrix_x4_trans(r, Vt + (kk * 16 + v_row) * T::LDQ + n * 8 + v_col);
        const uint32_t b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
        cuda::ptx::mma_bf16_16816(o[n], pa, b0);
        cuda::ptx::mma_bf16_16816(o[n + 1], pa, b1);
      }
    }
  }

  // Write: normalised output, or the split's unnormalised partial (as attn_kernel does).
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    if (lim[h] < 0) continue;
    const int64_t tok = rr[h] / G;
    const int head = kvh * G + static_cast<int>(rr[h] % G);
    float* dst;
    float scale = 1.f;
    if (p.ws_acc == nullptr) {
      scale = 1.f / l[h];  // unsplit: key 0 is visible to every real row, so l >= 1
      dst = p.out + (sp.row0 + tok) * p.qw + static_cast<int64_t>(head) * hd;
    } else {
      const int64_t pi = ((static_cast<int64_t>(blockIdx.z) * p.nspans + s) * p.max_n + tok) * p.q_heads + head;
      dst = p.ws_acc + pi * hd;
      if (tq == 0) {
        p.ws_ml[pi * 2] = m[h];
        p.ws_ml[pi * 2 + 1] = l[h];
      }
    }
#pragma unroll
    for (int n = 0; n < ON; ++n)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int d = n * 8 + 2 * tq + e;
        if (d < hd) dst[d] = o[n][2 * h + e] * scale;
      }
  }
#endif
}

// grid (q_heads, max_n, nspans), 128 threads: merges the splits' partials of one
// (span, token, head) row: out = sum_z acc_z 2^(m_z - M) / sum_z l_z 2^(m_z - M).
__global__ void combine_kernel(const float* __restrict__ ws_acc, const float* __restrict__ ws_ml,
                               const DevSpan* __restrict__ spans, int nspans, int max_n, int q_heads, int head_dim,
                               int64_t qw, int nsplits, float* __restrict__ out) {
  __shared__ float w[kMaxSplits];
  __shared__ float red[32];
  const int h = blockIdx.x, tok = blockIdx.y, s = blockIdx.z;
  const DevSpan sp = spans[s];
  if (tok >= sp.n) return;
  const int64_t split_stride = static_cast<int64_t>(nspans) * max_n * q_heads;
  const int64_t base = (static_cast<int64_t>(s) * max_n + tok) * q_heads + h;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;

  float mloc = -INFINITY;
  for (int z = threadIdx.x; z < nsplits; z += blockDim.x) mloc = fmaxf(mloc, ws_ml[(z * split_stride + base) * 2]);
  for (int o = 16; o > 0; o >>= 1) mloc = fmaxf(mloc, __shfl_xor_sync(0xffffffffu, mloc, o));
  if (lane == 0) red[warp] = mloc;
  __syncthreads();
  float M = -INFINITY;
  for (int i = 0; i < nwarps; ++i) M = fmaxf(M, red[i]);
  __syncthreads();  // red is reused below

  // Split 0 holds key 0, visible to every row, so M is finite. Splits with no
  // visible key have m = -inf, l = 0, acc = 0: weight 0.
  float lloc = 0.f;
  for (int z = threadIdx.x; z < nsplits; z += blockDim.x) {
    const float mz = ws_ml[(z * split_stride + base) * 2];
    const float wz = mz == -INFINITY ? 0.f : exp2f(mz - M);
    w[z] = wz;
    lloc += wz * ws_ml[(z * split_stride + base) * 2 + 1];
  }
  for (int o = 16; o > 0; o >>= 1) lloc += __shfl_xor_sync(0xffffffffu, lloc, o);
  if (lane == 0) red[warp] = lloc;
  __syncthreads();
  float L = 0.f;
  for (int i = 0; i < nwarps; ++i) L += red[i];
  const float inv = 1.f / L;

  float* o = out + (sp.row0 + tok) * qw + static_cast<int64_t>(h) * head_dim;
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float a = 0.f;
    for (int z = 0; z < nsplits; ++z) a = fmaf(w[z], ws_acc[(z * split_stride + base) * head_dim + d], a);
    o[d] = a * inv;
  }
}

// ---------------------------------------------------------------- host side

// Launches an attention kernel with `smem` bytes of dynamic shared memory,
// first raising that kernel's limit when it needs more than the default 48 KB
// (a setting per device and per kernel: made once, remembered here).
void launch_kernel(void (*kern)(AttnParams), dim3 grid, int threads, size_t smem, int dev, const AttnParams& p,
                   cudaStream_t stream, const char* what) {
  if (smem > 48 * 1024) {
    static std::mutex mu;
    static std::set<std::pair<const void*, int>> raised;
    std::lock_guard<std::mutex> lk(mu);
    const std::pair<const void*, int> key(reinterpret_cast<const void*>(kern), dev);
    if (raised.count(key) == 0) {
      cuda::check(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)),
                  (std::string("raise ") + what + " shared memory").c_str());
      raised.insert(key);
    }
  }
  kern<<<grid, threads, smem, stream>>>(p);
  cuda::check(cudaGetLastError(), (std::string(what) + " launch").c_str());
}

template <int HDP, int BM, int BN, typename KV>
void launch_attn(const AttnParams& p, dim3 grid, int dev, cudaStream_t stream) {
  launch_kernel(attn_kernel<HDP, BM, BN, KV>, grid, kThreads, Tile<HDP, BM, BN>::SMEM_BYTES, dev, p, stream,
                "attention kernel");
}

template <int HDP>
void launch_tc(const AttnParams& p, dim3 grid, int dev, cudaStream_t stream) {
  launch_kernel(attn_tc_kernel<HDP>, grid, kTcThreads, TcTile<HDP>::SMEM_BYTES, dev, p, stream,
                "tensor-core attention kernel");
}

// NEMOTRON_ATTN_TC=0 keeps bf16-cache prefill on the fp32 kernel (to compare
// speed and numerics); read at every call, so a test can run both paths.
bool tensor_core_attention_enabled() {
  const char* v = std::getenv("NEMOTRON_ATTN_TC");
  return v == nullptr || std::strcmp(v, "0") != 0;
}

// Row-tile height: small when the longest span has few (token, head) rows (decode),
// where a 64-row tile would compute mostly padding.
template <int HDP, int BM_SMALL, int BM_LARGE, int BN>
struct Shape {
  static constexpr int hdp = HDP, bm_small = BM_SMALL, bm_large = BM_LARGE, bn = BN;
  template <typename KV>
  static void launch(bool small, const AttnParams& p, dim3 grid, int dev, cudaStream_t st) {
    if (small)
      launch_attn<HDP, BM_SMALL, BN, KV>(p, grid, dev, st);
    else
      launch_attn<HDP, BM_LARGE, BN, KV>(p, grid, dev, st);
  }
};

// How a call splits its keys: ~2 waves of 2 blocks per SM when the unsplit grid
// would leave SMs idle, chunks of whole key tiles, at most kMaxSplits. Shared by
// the launch and by attention_workspace_bytes, so a caller's workspace fits.
struct AttnPlan {
  bool small = false;
  int64_t tiles = 0, nsplits = 1, chunk = INT64_MAX / 4;
  int64_t workspace_floats = 0;  // partial results of the splits (0 unsplit)
};

template <typename S>
AttnPlan plan_attention(const AttentionArgs& a, int nspans, int64_t max_n, int64_t max_keys, const DeviceInfo& di) {
  AttnPlan pl;
  const int G = static_cast<int>(a.q_heads / a.kv_heads);
  const int64_t max_rows = max_n * G;
  pl.small = max_rows <= S::bm_small;
  const int bm = pl.small ? S::bm_small : S::bm_large;
  pl.tiles = (max_rows + bm - 1) / bm;
  const int64_t base_blocks = pl.tiles * nspans * a.kv_heads;
  const int64_t key_tiles = (max_keys + S::bn - 1) / S::bn;
  const int64_t target = 4LL * di.sms;
  // (combine_kernel puts tokens on grid.y, so a split call needs max_n <= 65535;
  // a call with that many tokens fills the GPU without splitting anyway.)
  if (base_blocks < target && key_tiles >= 4 && max_n <= 65535) {
    pl.nsplits = std::min<int64_t>({(target + base_blocks - 1) / base_blocks, key_tiles / 2, kMaxSplits});
    pl.nsplits = std::max<int64_t>(pl.nsplits, 1);
  }
  if (pl.nsplits > 1) {
    pl.chunk = ((key_tiles + pl.nsplits - 1) / pl.nsplits) * S::bn;
    pl.nsplits = (max_keys + pl.chunk - 1) / pl.chunk;
  }
  if (pl.nsplits > 1) pl.workspace_floats = pl.nsplits * nspans * max_n * a.q_heads * (a.head_dim + 2);
  return pl;
}

template <typename S, typename KV>
bool uses_tensor_cores(const AttnPlan& pl, const DeviceInfo& di) {
  return std::is_same<KV, __nv_bfloat16>::value && !pl.small && S::hdp <= 128 && S::bm_large == kTcBM &&
         di.cc_major >= 8 && tensor_core_attention_enabled();
}

// Shared memory per block (fp32): HDP 128: 98 KB (64-row) / 75 KB (16-row);
// HDP 256 uses 32-key tiles to stay at 97 KB (fits A100's 163 KB too).
template <typename S, typename KV>
void run_attention(const AttentionArgs& a, const DevSpan* spans, int nspans, int64_t max_n, int64_t max_keys,
                   int dev, const DeviceInfo& di, float* workspace, size_t workspace_bytes, cudaStream_t stream) {
  const AttnPlan pl = plan_attention<S>(a, nspans, max_n, max_keys, di);
  AttnParams p;
  p.q = a.q;
  p.out = a.out;
  p.spans = spans;
  p.nspans = nspans;
  p.kv_heads = static_cast<int>(a.kv_heads);
  p.group = static_cast<int>(a.q_heads / a.kv_heads);
  p.head_dim = static_cast<int>(a.head_dim);
  p.qw = a.q_heads * a.head_dim;
  p.kvw = a.kv_heads * a.head_dim;
  p.scale_log2 = a.scale * kLog2e;
  p.chunk = pl.chunk;
  p.max_n = static_cast<int>(max_n);
  p.q_heads = static_cast<int>(a.q_heads);
  p.ws_acc = nullptr;
  p.ws_ml = nullptr;
  p.vec = a.head_dim % 4 == 0 && (reinterpret_cast<uintptr_t>(a.q) & 15) == 0;

  if (pl.tiles > 0x7fffffffLL || static_cast<int64_t>(nspans) * a.kv_heads > 65535)
    fail(ErrorCode::Internal, "CUDA attention: too many rows or spans for one launch");
  dim3 grid(static_cast<unsigned>(pl.tiles), static_cast<unsigned>(nspans * a.kv_heads),
            static_cast<unsigned>(pl.nsplits));

  // Large (prefill) tiles over a bf16 cache go to tensor cores (same blocks and partials).
  const bool tc = uses_tensor_cores<S, KV>(pl, di);
  auto launch = [&] {
    if constexpr (S::hdp <= 128) {
      if (tc) return launch_tc<S::hdp>(p, grid, dev, stream);
    }
    S::template launch<KV>(pl.small, p, grid, dev, stream);
  };
  if (pl.nsplits == 1) {
    launch();
    return;
  }
  const int64_t rows_ws = pl.nsplits * nspans * max_n * a.q_heads;
  const size_t bytes = sizeof(float) * static_cast<size_t>(pl.workspace_floats);
  // The caller's workspace when it gave one (CUDA graphs: no allocation inside a capture), else the pool's.
  void* ws = workspace;
  if (ws && workspace_bytes < bytes) fail(ErrorCode::Internal, "CUDA attention: the workspace given is too small");
  if (!ws) cuda::check(cudaMallocFromPoolAsync(&ws, bytes, workspace_pool(dev), stream), "attention workspace");
  p.ws_acc = static_cast<float*>(ws);
  p.ws_ml = p.ws_acc + rows_ws * a.head_dim;
  launch();
  combine_kernel<<<dim3(static_cast<unsigned>(a.q_heads), static_cast<unsigned>(max_n), static_cast<unsigned>(nspans)),
                   128, 0, stream>>>(p.ws_acc, p.ws_ml, spans, nspans, static_cast<int>(max_n),
                                     static_cast<int>(a.q_heads), static_cast<int>(a.head_dim), p.qw,
                                     static_cast<int>(pl.nsplits), a.out);
  cuda::check(cudaGetLastError(), "attention combine launch");
  if (!workspace) cuda::check(cudaFreeAsync(ws, stream), "attention: free workspace");
}

// Calls f.template operator()<Shape>() with the tile shape for a.head_dim:
// specialised shapes for head_dim 64 and 128 (the 9B); other head dims run on
// the next padded shape (zero padding, same code).
template <typename F>
auto with_shape(const AttentionArgs& a, F&& f) {
  if (a.head_dim <= 32) return f(Shape<32, 16, 64, 64>{});
  if (a.head_dim <= 64) return f(Shape<64, 16, 64, 64>{});
  if (a.head_dim <= 128) return f(Shape<128, 16, 64, 64>{});
  return f(Shape<256, 16, 32, 32>{});
}

void check_shape(const AttentionArgs& a, int nspans, int64_t max_n) {
  if (a.kv_heads <= 0 || a.q_heads % a.kv_heads != 0 || a.head_dim <= 0 || a.head_dim > 256)
    fail(ErrorCode::Internal, "CUDA attention: unsupported head shape (q_heads % kv_heads, head_dim <= 256)");
  if (a.kv_dtype != DType::F32 && a.kv_dtype != DType::BF16)
    fail(ErrorCode::Internal, "CUDA attention: the KV cache must be f32 or bf16");
  if (nspans > 65535 || max_n > 0x7fffffffLL) fail(ErrorCode::Internal, "CUDA attention: too many spans or tokens");
}

}  // namespace

bool attention_uses_tensor_cores(const AttentionArgs& a, int nspans, int64_t max_n, int64_t max_keys) {
  if (nspans <= 0 || max_n <= 0 || a.kv_dtype != DType::BF16) return false;
  check_shape(a, nspans, max_n);
  const DeviceInfo di = current_device_info();
  return with_shape(a, [&](auto shape) {
    using S = decltype(shape);
    return uses_tensor_cores<S, __nv_bfloat16>(plan_attention<S>(a, nspans, max_n, max_keys, di), di);
  });
}

size_t attention_workspace_bytes(const AttentionArgs& a, int nspans, int64_t max_n, int64_t max_keys) {
  if (nspans <= 0 || max_n <= 0) return 0;
  check_shape(a, nspans, max_n);
  const DeviceInfo di = current_device_info();
  return with_shape(a, [&](auto shape) {
    return sizeof(float) * static_cast<size_t>(plan_attention<decltype(shape)>(a, nspans, max_n, max_keys, di).workspace_floats);
  });
}

// plan_attention splits only calls whose base grid (nspans x kv_heads x row
// tiles of bm) is under target = 4 x SMs, into at most ceil(target / base)
// parts; the rows padded to tiles cover nspans x max_n x q_heads, so the
// partials (nsplits x that x (head_dim + 2)) stay under 2 x target x bm x (head_dim + 2).
size_t attention_workspace_bound(const AttentionArgs& a) {
  if (a.q_heads <= 0) return 0;
  check_shape(a, 1, 1);
  const DeviceInfo di = current_device_info();
  return with_shape(a, [&](auto shape) {
    using S = decltype(shape);
    const int64_t bm = std::max(S::bm_small, S::bm_large);
    return sizeof(float) * static_cast<size_t>(2 * 4LL * di.sms * bm * (a.head_dim + 2));
  });
}

void attention(const AttentionArgs& a, const DevSpan* spans, int nspans, int64_t max_n, int64_t max_keys,
               cudaStream_t stream, float* workspace, size_t workspace_bytes) {
  if (nspans <= 0 || max_n <= 0) return;
  check_shape(a, nspans, max_n);
  const int64_t kvw = a.kv_heads * a.head_dim;
  const bool vec_src = kvw % 4 == 0 && ((reinterpret_cast<uintptr_t>(a.k) | reinterpret_cast<uintptr_t>(a.v)) & 15) == 0;
  const dim3 append_grid(static_cast<unsigned>(max_n), static_cast<unsigned>(nspans));
  if (a.kv_dtype == DType::BF16)
    append_kv_kernel<__nv_bfloat16><<<append_grid, 128, 0, stream>>>(a.k, a.v, spans, kvw, vec_src);
  else
    append_kv_kernel<float><<<append_grid, 128, 0, stream>>>(a.k, a.v, spans, kvw, vec_src);
  cuda::check(cudaGetLastError(), "attention: append kv launch");

  const DeviceInfo di = current_device_info();
  const int dev = di.device;
  with_shape(a, [&](auto shape) {
    if (a.kv_dtype == DType::BF16)
      run_attention<decltype(shape), __nv_bfloat16>(a, spans, nspans, max_n, max_keys, dev, di, workspace,
                                                    workspace_bytes, stream);
    else
      run_attention<decltype(shape), float>(a, spans, nspans, max_n, max_keys, dev, di, workspace, workspace_bytes,
                                            stream);
  });
}

// ---------------------------------------------------------------- benchmark hook

namespace {
template <typename T>
__global__ void fill_kernel(T* x, int64_t n, uint32_t seed, float amp) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    uint32_t h = static_cast<uint32_t>(i) * 2654435761u ^ seed;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    store1(x + i, amp * (static_cast<float>(h >> 8) * (1.0f / 8388608.0f) - 1.0f));  // [-amp, amp)
  }
}
}  // namespace

double cuda_attention_time_ms(int64_t q_len, int64_t past, DType kv_dtype, int iters) {
  const int64_t qh = 40, kvh = 8, hd = 128, qw = qh * hd, kvw = kvh * hd, cap = past + q_len;
  const size_t esize = dtype_size(kv_dtype);
  float *q = nullptr, *k = nullptr, *v = nullptr, *out = nullptr;
  void *kc = nullptr, *vc = nullptr;
  DevSpan* dspan = nullptr;
  cudaStream_t st = nullptr;
  cudaEvent_t e0 = nullptr, e1 = nullptr;
  auto release = [&] {
    cudaFree(q), cudaFree(k), cudaFree(v), cudaFree(out), cudaFree(kc), cudaFree(vc), cudaFree(dspan);
    if (e0) cudaEventDestroy(e0);
    if (e1) cudaEventDestroy(e1);
    if (st) cudaStreamDestroy(st);
  };
  try {
    cuda::check(cudaMalloc(&q, sizeof(float) * q_len * qw), "attention: malloc q");
    cuda::check(cudaMalloc(&k, sizeof(float) * q_len * kvw), "attention: malloc k");
    cuda::check(cudaMalloc(&v, sizeof(float) * q_len * kvw), "attention: malloc v");
    cuda::check(cudaMalloc(&out, sizeof(float) * q_len * qw), "attention: malloc out");
    cuda::check(cudaMalloc(&kc, esize * cap * kvw), "attention: malloc k cache");
    cuda::check(cudaMalloc(&vc, esize * cap * kvw), "attention: malloc v cache");
    cuda::check(cudaMalloc(&dspan, sizeof(DevSpan)), "attention: malloc span");
    cuda::check(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking), "attention: stream");
    cuda::check(cudaEventCreate(&e0), "attention: event");
    cuda::check(cudaEventCreate(&e1), "attention: event");
    fill_kernel<float><<<1024, 256, 0, st>>>(q, q_len * qw, 1, 2.f);
    fill_kernel<float><<<1024, 256, 0, st>>>(k, q_len * kvw, 2, 1.f);
    fill_kernel<float><<<1024, 256, 0, st>>>(v, q_len * kvw, 3, 1.f);
    if (kv_dtype == DType::BF16) {
      fill_kernel<__nv_bfloat16><<<1024, 256, 0, st>>>(static_cast<__nv_bfloat16*>(kc), cap * kvw, 4, 1.f);
      fill_kernel<__nv_bfloat16><<<1024, 256, 0, st>>>(static_cast<__nv_bfloat16*>(vc), cap * kvw, 5, 1.f);
    } else {
      fill_kernel<float><<<1024, 256, 0, st>>>(static_cast<float*>(kc), cap * kvw, 4, 1.f);
      fill_kernel<float><<<1024, 256, 0, st>>>(static_cast<float*>(vc), cap * kvw, 5, 1.f);
    }
    cuda::check(cudaGetLastError(), "attention: fill");
    DevSpan hs{0, q_len, past, nullptr, nullptr, kc, vc, cap};
    cuda::check(cudaMemcpyAsync(dspan, &hs, sizeof(hs), cudaMemcpyHostToDevice, st), "attention: copy span");
    AttentionArgs a;
    a.q_heads = qh;
    a.kv_heads = kvh;
    a.head_dim = hd;
    a.scale = 1.0f / std::sqrt(static_cast<float>(hd));
    a.q = q;
    a.k = k;
    a.v = v;
    a.out = out;
    a.kv_dtype = kv_dtype;
    // Re-appending the same rows each call is idempotent, so every call sees the same state.
    for (int i = 0; i < 3; ++i) attention(a, dspan, 1, q_len, cap, st);
    cuda::check(cudaEventRecord(e0, st), "attention: record");
    for (int i = 0; i < iters; ++i) attention(a, dspan, 1, q_len, cap, st);
    cuda::check(cudaEventRecord(e1, st), "attention: record");
    cuda::check(cudaEventSynchronize(e1), "attention: sync");
    float ms = 0;
    cuda::check(cudaEventElapsedTime(&ms, e0, e1), "attention: elapsed");
    release();
    return static_cast<double>(ms) / std::max(iters, 1);
  } catch (...) {
    release();
    throw;
  }
}

}  // namespace cuda
}  // namespace nemotron
