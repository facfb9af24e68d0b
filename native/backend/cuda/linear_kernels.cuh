// Kernels behind nemotron::cuda::linear (launched from linear.cu).
//   out[r, j] = sum_k x[r, k] * W[j, k] + bias[j],  x fp32 [M, K] at ldx, W [N, K] row-major, out fp32 at ldo.
// Three kernels, chosen by linear.cu:
//   gemv_kernel   few rows (decode): bound by streaming W once from memory.
//   wmma_gemm     many rows, bf16 W, sm_80+: bf16 tensor cores, fp32 accumulators.
//   simt_gemm     many rows, f16/f32 W (or a pre-sm_80 device): plain fp32 FMAs, exact widening of W.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include <cstdint>

namespace nemotron {
namespace cuda {
namespace linear_detail {

// ---------------------------------------------------------------- conversions

__device__ __forceinline__ float to_f32(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_f32(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_f32(float v) { return v; }

// Elements of W in one 16-byte vector load.
template <typename W>
struct WVec {
  static constexpr int kN = 16 / static_cast<int>(sizeof(W));
};

// Widens one 16-byte chunk of W. bf16 is the top half of an fp32, so widening
// is a shift/mask (exact); f16 goes through the hardware converter (exact too).
__device__ __forceinline__ void unpack16(const uint4& u, float (&f)[8], __nv_bfloat16) {
  const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    f[2 * i] = __uint_as_float(w[i] << 16);
    f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
  }
}
__device__ __forceinline__ void unpack16(const uint4& u, float (&f)[8], __half) {
  const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    __half2 h;
    memcpy(&h, &w[i], 4);
    const float2 p = __half22float2(h);
    f[2 * i] = p.x;
    f[2 * i + 1] = p.y;
  }
}
__device__ __forceinline__ void unpack16(const uint4& u, float (&f)[4], float) {
  f[0] = __uint_as_float(u.x);
  f[1] = __uint_as_float(u.y);
  f[2] = __uint_as_float(u.z);
  f[3] = __uint_as_float(u.w);
}

// V consecutive fp32 of x. x is small and re-read by every warp, so it is left
// to L1/L2 (plain loads); vec is false when x or ldx breaks 16-byte alignment.
template <int V>
__device__ __forceinline__ void load_x(const float* p, bool vec, float (&f)[V]) {
  if (vec) {
#pragma unroll
    for (int i = 0; i < V / 4; ++i) {
      const float4 q = __ldg(reinterpret_cast<const float4*>(p) + i);
      f[4 * i] = q.x;
      f[4 * i + 1] = q.y;
      f[4 * i + 2] = q.z;
      f[4 * i + 3] = q.w;
    }
  } else {
#pragma unroll
    for (int i = 0; i < V; ++i) f[i] = __ldg(p + i);
  }
}

// ---------------------------------------------------------------- GEMV (rows <= 16)

constexpr int kGemvWarps = 8;  // output rows per 256-thread block (one per warp)

// One warp per output feature j: the warp streams W[j, :] once with 16-byte
// loads (lanes take consecutive chunks, so a warp reads 512 contiguous bytes
// per step: fully coalesced) and applies each widened chunk to all R rows of x
// while it sits in registers, so W is read once whatever the row count. R is a
// compile-time bound (1, 2, 4, 8, 16) so the accumulators stay in registers;
// rows < R are masked. vec_w is false when W's base or row stride is not
// 16-byte aligned (a tensor in a mapped file may be only 2-byte aligned): then
// every element goes through the scalar loop, which is coalesced 2/4-byte loads.
template <typename W, int R>
__global__ void __launch_bounds__(32 * kGemvWarps) gemv_kernel(const float* __restrict__ x, int rows, int64_t ldx,
                                                               const W* __restrict__ w, int64_t n, int64_t k,
                                                               const float* __restrict__ bias, float* __restrict__ out,
                                                               int64_t ldo, bool vec_w, bool vec_x) {
  constexpr int V = WVec<W>::kN;
  // Independent W loads issued before the first use, to keep enough bytes in
  // flight per SM; fewer when many accumulators already take the registers.
  constexpr int U = R <= 4 ? 4 : 2;
  const int lane = threadIdx.x & 31;
  const int64_t j = static_cast<int64_t>(blockIdx.x) * kGemvWarps + (threadIdx.x >> 5);
  if (j >= n) return;  // warp-uniform: the shuffles below see full warps
  const W* wr = w + j * k;

  float acc[R];
#pragma unroll
  for (int r = 0; r < R; ++r) acc[r] = 0.f;

  int64_t k_scalar = 0;  // first k left to the scalar loop
  if (vec_w) {
    const int64_t nvec = k / V;
    const uint4* wv = reinterpret_cast<const uint4*>(wr);
    int64_t c = lane;
    for (; c + 32 * (U - 1) < nvec; c += 32 * U) {
      uint4 u[U];
#pragma unroll
      for (int i = 0; i < U; ++i) u[i] = __ldcs(wv + c + 32 * i);  // streamed once: evict-first
#pragma unroll
      for (int i = 0; i < U; ++i) {
        float wf[V];
        unpack16(u[i], wf, W{});
        const int64_t k0 = (c + 32 * i) * V;
#pragma unroll
        for (int r = 0; r < R; ++r) {
          if (r < rows) {
            float xf[V];
            load_x<V>(x + r * ldx + k0, vec_x, xf);
#pragma unroll
            for (int e = 0; e < V; ++e) acc[r] = fmaf(wf[e], xf[e], acc[r]);
          }
        }
      }
    }
    for (; c < nvec; c += 32) {
      float wf[V];
      unpack16(__ldcs(wv + c), wf, W{});
      const int64_t k0 = c * V;
#pragma unroll
      for (int r = 0; r < R; ++r) {
        if (r < rows) {
          float xf[V];
          load_x<V>(x + r * ldx + k0, vec_x, xf);
#pragma unroll
          for (int e = 0; e < V; ++e) acc[r] = fmaf(wf[e], xf[e], acc[r]);
        }
      }
    }
    k_scalar = nvec * V;
  }
  for (int64_t kk = k_scalar + lane; kk < k; kk += 32) {
    const float wf = to_f32(wr[kk]);
#pragma unroll
    for (int r = 0; r < R; ++r)
      if (r < rows) acc[r] = fmaf(wf, __ldg(x + r * ldx + kk), acc[r]);
  }

  // Butterfly reduction: every lane ends with every row's sum, so lane r can
  // store row r (compile-time register index, no local memory).
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) acc[r] += __shfl_xor_sync(0xffffffffu, acc[r], off);
  const float b = bias ? bias[j] : 0.f;
#pragma unroll
  for (int r = 0; r < R; ++r)
    if (r < rows && lane == r) out[r * ldo + j] = acc[r] + b;
}

// ---------------------------------------------------------------- bf16 tensor-core GEMM (sm_80+)

// Block tile 128 (rows of x) x 128 (features) x 32 (k), 8 warps as 2 x 4, each
// warp 64 x 32 = 4 x 2 WMMA 16x16x16 fragments. Tiles are staged through
// registers into a double-buffered shared-memory pair, x rounded fp32 -> bf16
// (round-to-nearest) on the way. Rows are padded by 8 bf16 (16 bytes) so the
// fragment loads' rows start in different banks; 40 bf16 is still a multiple
// of 8 elements (WMMA's ldm rule) and keeps 32-byte fragment alignment.
namespace wg {
constexpr int BM = 128, BN = 128, BK = 32, LDS = BK + 8, THREADS = 256;
constexpr int WARPS_M = 2, WARPS_N = 4, WM = BM / WARPS_M, WN = BN / WARPS_N;  // 64 x 32 per warp
constexpr int FM = WM / 16, FN = WN / 16;                                       // 4 x 2 fragments
constexpr int TILE_ELEMS = (BM + BN) * LDS;                                     // one stage, A then B
constexpr int SMEM_BYTES = 2 * TILE_ELEMS * 2;                                  // two stages, bf16
constexpr int A_F4 = BM * BK / 4 / THREADS;                                     // float4 per thread: 4
constexpr int B_V8 = BN * BK / 8 / THREADS;                                     // 8-bf16 chunks per thread: 2
static_assert(SMEM_BYTES <= 48 * 1024, "static shared memory limit");
static_assert(THREADS / 32 * 16 * 16 * 4 <= SMEM_BYTES, "epilogue scratch reuses the tile memory");
}  // namespace wg

// Bits of a bf16 rounded from fp32 (round-to-nearest-even; NaN stays NaN).
__device__ __forceinline__ uint32_t bf16_bits(float f) {
  const __nv_bfloat16 h = __float2bfloat16_rn(f);
  unsigned short s;
  memcpy(&s, &h, 2);
  return s;
}

struct WgStage {
  float4 a[wg::A_F4];
  uint4 b[wg::B_V8];
};

// Global -> registers for the k-tile at k0. Out-of-range elements (rows past M
// or N, k past K) become 0, so they add nothing to the dot products.
__device__ __forceinline__ void wg_load(WgStage& s, const float* __restrict__ x, int64_t M, int64_t ldx,
                                        const __nv_bfloat16* __restrict__ w, int64_t N, int64_t K, int64_t m0,
                                        int64_t n0, int64_t k0, bool vec_x, bool vec_w) {
#pragma unroll
  for (int i = 0; i < wg::A_F4; ++i) {
    const int idx = threadIdx.x + i * wg::THREADS;
    const int row = idx / (wg::BK / 4), c = (idx % (wg::BK / 4)) * 4;
    const int64_t m = m0 + row, kk = k0 + c;
    float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
    if (m < M) {
      const float* p = x + m * ldx + kk;
      if (vec_x && kk + 4 <= K) {
        v = __ldg(reinterpret_cast<const float4*>(p));
      } else {
        if (kk < K) v.x = __ldg(p);
        if (kk + 1 < K) v.y = __ldg(p + 1);
        if (kk + 2 < K) v.z = __ldg(p + 2);
        if (kk + 3 < K) v.w = __ldg(p + 3);
      }
    }
    s.a[i] = v;
  }
#pragma unroll
  for (int i = 0; i < wg::B_V8; ++i) {
    const int idx = threadIdx.x + i * wg::THREADS;
    const int row = idx / (wg::BK / 8), c = (idx % (wg::BK / 8)) * 8;
    const int64_t nn = n0 + row, kk = k0 + c;
    uint4 v = make_uint4(0, 0, 0, 0);
    if (nn < N) {
      const __nv_bfloat16* p = w + nn * K + kk;
      if (vec_w && kk + 8 <= K) {
        v = __ldg(reinterpret_cast<const uint4*>(p));
      } else {
        const unsigned short* ps = reinterpret_cast<const unsigned short*>(p);
        uint32_t h[8];
#pragma unroll
        for (int e = 0; e < 8; ++e) h[e] = kk + e < K ? ps[e] : 0u;
        v = make_uint4(h[0] | h[1] << 16, h[2] | h[3] << 16, h[4] | h[5] << 16, h[6] | h[7] << 16);
      }
    }
    s.b[i] = v;
  }
}

// Registers -> one shared-memory stage (A: [BM][LDS], then B: [BN][LDS]).
__device__ __forceinline__ void wg_store(const WgStage& s, __nv_bfloat16* stage) {
#pragma unroll
  for (int i = 0; i < wg::A_F4; ++i) {
    const int idx = threadIdx.x + i * wg::THREADS;
    const int row = idx / (wg::BK / 4), c = (idx % (wg::BK / 4)) * 4;
    const uint2 packed = make_uint2(bf16_bits(s.a[i].x) | bf16_bits(s.a[i].y) << 16,
                                    bf16_bits(s.a[i].z) | bf16_bits(s.a[i].w) << 16);
    *reinterpret_cast<uint2*>(stage + row * wg::LDS + c) = packed;  // 8-byte aligned: LDS*2 = 80, c*2 % 8 == 0
  }
  __nv_bfloat16* bs = stage + wg::BM * wg::LDS;
#pragma unroll
  for (int i = 0; i < wg::B_V8; ++i) {
    const int idx = threadIdx.x + i * wg::THREADS;
    const int row = idx / (wg::BK / 8), c = (idx % (wg::BK / 8)) * 8;
    *reinterpret_cast<uint4*>(bs + row * wg::LDS + c) = s.b[i];  // 16-byte aligned: 80*row + 16*(c/8)
  }
}

// Grid: x over N (features) in BN tiles, y over M (rows) in BM tiles.
// Uncapped the kernel takes 176 registers (1 block/SM). Capping at 2 blocks/SM
// (128 registers) doubles the warps that hide the global-load latency and
// compiles without spills for sm_90; sm_8x spills 88 bytes there, so it keeps 1.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
constexpr int kWgMinBlocks = 1;
#else
constexpr int kWgMinBlocks = 2;
#endif
__global__ void __launch_bounds__(wg::THREADS, kWgMinBlocks) wmma_gemm_bf16(const float* __restrict__ x, int64_t M, int64_t ldx,
                                                              const __nv_bfloat16* __restrict__ w, int64_t N,
                                                              int64_t K, const float* __restrict__ bias,
                                                              float* __restrict__ out, int64_t ldo, bool vec_x,
                                                              bool vec_w) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  __trap();  // bf16 WMMA needs sm_80; linear.cu never launches this on older devices
#else
  using namespace nvcuda;
  __shared__ __align__(128) __nv_bfloat16 smem[2 * wg::TILE_ELEMS];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int wm = warp / wg::WARPS_N, wn = warp % wg::WARPS_N;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * wg::BM, n0 = static_cast<int64_t>(blockIdx.x) * wg::BN;

  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[wg::FM][wg::FN];
#pragma unroll
  for (int i = 0; i < wg::FM; ++i)
#pragma unroll
    for (int jf = 0; jf < wg::FN; ++jf) wmma::fill_fragment(acc[i][jf], 0.f);

  const int64_t ktiles = (K + wg::BK - 1) / wg::BK;
  WgStage st;
  if (ktiles > 0) {
    wg_load(st, x, M, ldx, w, N, K, m0, n0, 0, vec_x, vec_w);
    wg_store(st, smem);
  }
  __syncthreads();
  // One barrier per k-tile suffices: iteration t writes stage (t+1)&1, which
  // nobody reads during t, and the barrier ending t-1 retired its last readers.
  for (int64_t t = 0; t < ktiles; ++t) {
    const bool more = t + 1 < ktiles;
    if (more) wg_load(st, x, M, ldx, w, N, K, m0, n0, (t + 1) * wg::BK, vec_x, vec_w);  // in flight during the MMAs
    const __nv_bfloat16* as = smem + (t & 1) * wg::TILE_ELEMS;
    const __nv_bfloat16* bs = as + wg::BM * wg::LDS;
#pragma unroll
    for (int kk = 0; kk < wg::BK; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa[wg::FM];
      // W tile is [n][k] in shared memory, i.e. B = W^T stored column-major.
      wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> fb[wg::FN];
#pragma unroll
      for (int i = 0; i < wg::FM; ++i) wmma::load_matrix_sync(fa[i], as + (wm * wg::WM + i * 16) * wg::LDS + kk, wg::LDS);
#pragma unroll
      for (int jf = 0; jf < wg::FN; ++jf)
        wmma::load_matrix_sync(fb[jf], bs + (wn * wg::WN + jf * 16) * wg::LDS + kk, wg::LDS);
#pragma unroll
      for (int i = 0; i < wg::FM; ++i)
#pragma unroll
        for (int jf = 0; jf < wg::FN; ++jf) wmma::mma_sync(acc[i][jf], fa[i], fb[jf], acc[i][jf]);
    }
    if (more) wg_store(st, smem + ((t + 1) & 1) * wg::TILE_ELEMS);
    __syncthreads();
  }

  // Epilogue: fragments have an opaque register layout, so each goes through a
  // per-warp 16x16 fp32 scratch (the tile memory is free after the last
  // barrier), then lanes add the bias and store the in-range elements.
  float* scratch = reinterpret_cast<float*>(smem) + warp * 256;
#pragma unroll
  for (int i = 0; i < wg::FM; ++i) {
#pragma unroll
    for (int jf = 0; jf < wg::FN; ++jf) {
      wmma::store_matrix_sync(scratch, acc[i][jf], 16, wmma::mem_row_major);
      __syncwarp();
      const int64_t mb = m0 + wm * wg::WM + i * 16, nb = n0 + wn * wg::WN + jf * 16;
#pragma unroll
      for (int e = lane; e < 256; e += 32) {
        const int64_t m = mb + e / 16, nn = nb + e % 16;
        if (m < M && nn < N) out[m * ldo + nn] = scratch[e] + (bias ? bias[nn] : 0.f);
      }
      __syncwarp();
    }
  }
#endif
}

// ---------------------------------------------------------------- fp32 SIMT GEMM (f16/f32 W, pre-sm_80)

// A plain, exact fallback: 64x64 block tile, k-step 16, 256 threads each
// computing 4x4 outputs strided by 16 (so a warp's shared-memory reads are
// broadcasts or consecutive words, and its stores are coalesced). W is widened
// to fp32 exactly, so f32 weights get fp32 results, not bf16 ones.
namespace sg {
constexpr int BM = 64, BN = 64, BK = 16, THREADS = 256, PAD = 4;
}

template <typename W>
__global__ void __launch_bounds__(sg::THREADS) simt_gemm(const float* __restrict__ x, int64_t M, int64_t ldx,
                                                         const W* __restrict__ w, int64_t N, int64_t K,
                                                         const float* __restrict__ bias, float* __restrict__ out,
                                                         int64_t ldo) {
  __shared__ float as[sg::BK][sg::BM + sg::PAD];
  __shared__ float bs[sg::BK][sg::BN + sg::PAD];
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * sg::BM, n0 = static_cast<int64_t>(blockIdx.x) * sg::BN;
  float acc[4][4] = {};
  for (int64_t k0 = 0; k0 < K; k0 += sg::BK) {
    // 64 x 16 elements of each operand, 4 per thread; consecutive threads take
    // consecutive k (coalesced along the rows of x and W).
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int idx = threadIdx.x + i * sg::THREADS;
      const int row = idx / sg::BK, kk = idx % sg::BK;
      const int64_t k = k0 + kk, m = m0 + row, nn = n0 + row;
      as[kk][row] = (m < M && k < K) ? x[m * ldx + k] : 0.f;
      bs[kk][row] = (nn < N && k < K) ? to_f32(w[nn * K + k]) : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < sg::BK; ++kk) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = as[kk][ty + 16 * i];
#pragma unroll
      for (int jj = 0; jj < 4; ++jj) b[jj] = bs[kk][tx + 16 * jj];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int jj = 0; jj < 4; ++jj) acc[i][jj] = fmaf(a[i], b[jj], acc[i][jj]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t m = m0 + ty + 16 * i;
#pragma unroll
    for (int jj = 0; jj < 4; ++jj) {
      const int64_t nn = n0 + tx + 16 * jj;
      if (m < M && nn < N) out[m * ldo + nn] = acc[i][jj] + (bias ? bias[nn] : 0.f);
    }
  }
}

}  // namespace linear_detail
}  // namespace cuda
}  // namespace nemotron
