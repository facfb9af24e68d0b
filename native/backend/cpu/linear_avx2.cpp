// AVX2 + FMA + F16C kernels for cpu_linear. Every function that uses the wide
// instructions carries NEMOTRON_AVX2 (a target attribute) instead of the file
// being built with -mavx2: with a per-file flag, inline std:: templates
// instantiated here would be compiled for AVX2 too, and the linker may keep that
// copy for callers on CPUs without it. linear.cpp calls these only after
// cpu_features() says the CPU has all three extensions.
#include "backend/cpu/linear_kernels.h"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))

#include <immintrin.h>

#include <cstring>

#include "common/dtype.h"

#define NEMOTRON_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace nemotron {
namespace linear_detail {
namespace {

template <DType DT>
constexpr int64_t elem_bytes() {
  return DT == DType::F32 ? 4 : 2;
}

// One stored element widened to fp32; memcpy because the mapped weights may
// be only 2-byte aligned.
template <DType DT>
inline float widen1(const uint8_t* row, int64_t k) {
  if constexpr (DT == DType::F32) {
    float f;
    std::memcpy(&f, row + 4 * k, 4);
    return f;
  } else {
    uint16_t h;
    std::memcpy(&h, row + 2 * k, 2);
    return DT == DType::BF16 ? bf16_to_f32(h) : f16_to_f32(h);
  }
}

// Eight consecutive stored elements widened to fp32. bf16 is the top half of an
// fp32, so widening is a zero-extension and a 16-bit shift; f16 has VCVTPH2PS.
template <DType DT>
NEMOTRON_AVX2 inline __m256 load8(const uint8_t* row, int64_t k) {
  if constexpr (DT == DType::F32) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(row + 4 * k));
  } else {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * k));
    if constexpr (DT == DType::BF16)
      return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    else
      return _mm256_cvtph_ps(h);
  }
}

// The last `len` (< 8) elements, zero-padded, never reading past them (the row
// may end the mapped file). No calls in here: the accumulators of the kernels
// that use this are live across it, and a call made GCC keep them in memory.
NEMOTRON_AVX2 inline __m256 load_tail_f32(const void* p, int64_t len) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(len)), lane);
  return _mm256_maskload_ps(static_cast<const float*>(p), mask);  // masked-off lanes do not fault
}

template <DType DT>
NEMOTRON_AVX2 inline __m256 load_tail(const uint8_t* row, int64_t k, int64_t len) {
  if constexpr (DT == DType::F32) {
    return load_tail_f32(row + 4 * k, len);
  } else {
    alignas(16) uint16_t t[8] = {0, 0, 0, 0, 0, 0, 0, 0};
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i)
      if (i < len) std::memcpy(&t[i], row + 2 * (k + i), 2);
    return load8<DT>(reinterpret_cast<const uint8_t*>(t), 0);
  }
}

NEMOTRON_AVX2 inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// ---------------------------------------------------------------- GEMV
// NW weight rows against NX x rows: NW*NX independent accumulators, each weight
// vector widened once and used NX times. Memory-bound, so the goals are to
// touch every weight byte once, in long sequential runs (the prefetchers), with
// several rows' loads in flight.
template <DType DT, int NW, int NX>
NEMOTRON_AVX2 void gemv_block(const LinearArgs& a, int64_t j, int64_t r0) {
  const int64_t K = a.k, ldx = a.ldx;
  const int64_t ldw = K * elem_bytes<DT>();
  const uint8_t* w = a.w + j * ldw;
  const float* x = a.x + r0 * ldx;
  __m256 acc[NW][NX];
#pragma GCC unroll 16
  for (int i = 0; i < NW; ++i)
#pragma GCC unroll 16
    for (int r = 0; r < NX; ++r) acc[i][r] = _mm256_setzero_ps();

  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    __m256 wv[NW];
#pragma GCC unroll 16
    for (int i = 0; i < NW; ++i) wv[i] = load8<DT>(w + i * ldw, k);
#pragma GCC unroll 16
    for (int r = 0; r < NX; ++r) {
      const __m256 xv = _mm256_loadu_ps(x + r * ldx + k);
#pragma GCC unroll 16
      for (int i = 0; i < NW; ++i) acc[i][r] = _mm256_fmadd_ps(wv[i], xv, acc[i][r]);
    }
  }
  if (k < K) {
    const int64_t len = K - k;
    __m256 wv[NW];
    for (int i = 0; i < NW; ++i) wv[i] = load_tail<DT>(w + i * ldw, k, len);
    for (int r = 0; r < NX; ++r) {
      const __m256 xv = load_tail_f32(x + r * ldx + k, len);
      for (int i = 0; i < NW; ++i) acc[i][r] = _mm256_fmadd_ps(wv[i], xv, acc[i][r]);
    }
  }
  for (int r = 0; r < NX; ++r) {
    float* o = a.out + (r0 + r) * a.ldo + j;
    for (int i = 0; i < NW; ++i) o[i] = hsum(acc[i][r]) + (a.bias ? a.bias[j + i] : 0.0f);
  }
}

// Weight rows [j0, j1) against x rows [r0, r0 + NX). Weight rows per step: 4
// for one or two x rows (8 accumulators, 4 streams in flight), 3 for three or
// four (9 or 12 accumulators: with 4 x rows of a long k the x loads come from
// L2, so each x vector should feed as many weight rows as registers allow).
template <DType DT, int NX>
NEMOTRON_AVX2 void gemv_rows(const LinearArgs& a, int64_t j0, int64_t j1, int64_t r0) {
  constexpr int NW = NX <= 2 ? 4 : 3;
  int64_t j = j0;
  for (; j + NW <= j1; j += NW) gemv_block<DT, NW, NX>(a, j, r0);
  for (; j < j1; ++j) gemv_block<DT, 1, NX>(a, j, r0);
}

// L2 bytes for one tile of weights when x has more than 4 rows.
constexpr int64_t kGemvTileBytes = 192 << 10;

template <DType DT>
NEMOTRON_AVX2 void gemv_range(const LinearArgs& a, int64_t j0, int64_t j1) {
  // More than 4 x rows take several passes over the weights: do them tile by
  // tile, small enough to still be in L2 on the next pass, so that memory is
  // streamed once. (Cutting k into L1-sized chunks instead was tried: the
  // weights are then read in short runs per row, and DRAM throughput fell by a
  // third, more than the x loads from L2 cost.)
  const int64_t row_bytes = a.k * elem_bytes<DT>();
  int64_t tile = j1 - j0;
  if (a.rows > 4) tile = kGemvTileBytes / row_bytes;
  if (tile < 4) tile = 4;
  for (int64_t jt = j0; jt < j1; jt += tile) {
    const int64_t je = jt + tile < j1 ? jt + tile : j1;
    for (int64_t r0 = 0; r0 < a.rows; r0 += 4) {
      switch (a.rows - r0) {
        case 1: gemv_rows<DT, 1>(a, jt, je, r0); break;
        case 2: gemv_rows<DT, 2>(a, jt, je, r0); break;
        case 3: gemv_rows<DT, 3>(a, jt, je, r0); break;
        default: gemv_rows<DT, 4>(a, jt, je, r0); break;
      }
    }
  }
}

// ---------------------------------------------------------------- GEMM
constexpr int kMr = 6, kNr = 16;

// In-register 8x8 transpose: v[r] holds row r on entry, column r on exit.
NEMOTRON_AVX2 inline void transpose8(__m256 v[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(v[0], v[1]), t1 = _mm256_unpackhi_ps(v[0], v[1]);
  const __m256 t2 = _mm256_unpacklo_ps(v[2], v[3]), t3 = _mm256_unpackhi_ps(v[2], v[3]);
  const __m256 t4 = _mm256_unpacklo_ps(v[4], v[5]), t5 = _mm256_unpackhi_ps(v[4], v[5]);
  const __m256 t6 = _mm256_unpacklo_ps(v[6], v[7]), t7 = _mm256_unpackhi_ps(v[6], v[7]);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  v[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
  v[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  v[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
  v[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  v[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
  v[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  v[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
  v[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

// W rows are contiguous along k but the micro-kernel wants 16 output features
// per k, so packing transposes 8x8 blocks in registers while widening.
template <DType DT>
NEMOTRON_AVX2 void pack_w_panel(const LinearArgs& a, int64_t j, int rows_valid, int64_t k0, int64_t kc,
                                float* dst) {
  const int64_t ldw = a.k * elem_bytes<DT>();
  const uint8_t* w = a.w + j * ldw;
  int64_t k = 0;
  if (rows_valid == kNr) {
    for (; k + 8 <= kc; k += 8) {
      for (int h = 0; h < 2; ++h) {
        __m256 v[8];
#pragma GCC unroll 8
        for (int r = 0; r < 8; ++r) v[r] = load8<DT>(w + (h * 8 + r) * ldw, k0 + k);
        transpose8(v);
#pragma GCC unroll 8
        for (int c = 0; c < 8; ++c) _mm256_store_ps(dst + (k + c) * kNr + h * 8, v[c]);
      }
    }
  }
  for (; k < kc; ++k)
    for (int r = 0; r < kNr; ++r) dst[k * kNr + r] = r < rows_valid ? widen1<DT>(w + r * ldw, k0 + k) : 0.0f;
}

void pack_w_panel_avx2(const LinearArgs& a, int64_t j, int rows_valid, int64_t k0, int64_t kc, float* dst) {
  switch (a.dtype) {
    case DType::BF16: pack_w_panel<DType::BF16>(a, j, rows_valid, k0, kc, dst); return;
    case DType::F16: pack_w_panel<DType::F16>(a, j, rows_valid, k0, kc, dst); return;
    case DType::F32: pack_w_panel<DType::F32>(a, j, rows_valid, k0, kc, dst); return;
  }
}

NEMOTRON_AVX2 inline void store_row(float* row, __m256 lo, __m256 hi, const float* bias, bool accumulate) {
  if (accumulate) {
    lo = _mm256_add_ps(lo, _mm256_loadu_ps(row));
    hi = _mm256_add_ps(hi, _mm256_loadu_ps(row + 8));
  } else if (bias) {
    lo = _mm256_add_ps(lo, _mm256_loadu_ps(bias));
    hi = _mm256_add_ps(hi, _mm256_loadu_ps(bias + 8));
  }
  _mm256_storeu_ps(row, lo);
  _mm256_storeu_ps(row + 8, hi);
}

// 6x16 register block: 12 accumulators + 2 weight vectors + 1 broadcast = 15 of
// the 16 ymm registers. Per k: 2 loads and 6 broadcasts feed 12 FMAs, so the two
// FMA pipes, not the load ports, are the limit. The accumulators are named
// variables, not an array: GCC keeps an array that is also stored in the edge
// path in memory, spilling it on every k.
NEMOTRON_AVX2 void micro_6x16(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, int m, int n,
                              const float* bias, bool accumulate) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#define NEMOTRON_FMA_ROW(i, lo, hi)                   \
  {                                                   \
    const __m256 ai = _mm256_broadcast_ss(ap + (i));  \
    lo = _mm256_fmadd_ps(ai, b0, lo);                 \
    hi = _mm256_fmadd_ps(ai, b1, hi);                 \
  }
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_load_ps(bp), b1 = _mm256_load_ps(bp + 8);
    NEMOTRON_FMA_ROW(0, c00, c01)
    NEMOTRON_FMA_ROW(1, c10, c11)
    NEMOTRON_FMA_ROW(2, c20, c21)
    NEMOTRON_FMA_ROW(3, c30, c31)
    NEMOTRON_FMA_ROW(4, c40, c41)
    NEMOTRON_FMA_ROW(5, c50, c51)
    ap += kMr;
    bp += kNr;
  }
#undef NEMOTRON_FMA_ROW
  if (m == kMr && n == kNr) {
    store_row(c, c00, c01, bias, accumulate);
    store_row(c + ldc, c10, c11, bias, accumulate);
    store_row(c + 2 * ldc, c20, c21, bias, accumulate);
    store_row(c + 3 * ldc, c30, c31, bias, accumulate);
    store_row(c + 4 * ldc, c40, c41, bias, accumulate);
    store_row(c + 5 * ldc, c50, c51, bias, accumulate);
    return;
  }
  // Edge tile: through a buffer, writing only the m x n valid part.
  alignas(32) float t[kMr][kNr];
  store_row(t[0], c00, c01, nullptr, false);
  store_row(t[1], c10, c11, nullptr, false);
  store_row(t[2], c20, c21, nullptr, false);
  store_row(t[3], c30, c31, nullptr, false);
  store_row(t[4], c40, c41, nullptr, false);
  store_row(t[5], c50, c51, nullptr, false);
  for (int i = 0; i < m; ++i)
    for (int jj = 0; jj < n; ++jj) {
      float& o = c[i * ldc + jj];
      o = (accumulate ? o : (bias ? bias[jj] : 0.0f)) + t[i][jj];
    }
}

}  // namespace

void gemv_avx2(const LinearArgs& a, int64_t j0, int64_t j1) {
  switch (a.dtype) {
    case DType::BF16: gemv_range<DType::BF16>(a, j0, j1); return;
    case DType::F16: gemv_range<DType::F16>(a, j0, j1); return;
    case DType::F32: gemv_range<DType::F32>(a, j0, j1); return;
  }
}

const GemmKernel kGemmAvx2 = {kMr, kNr, pack_w_panel_avx2, micro_6x16};

}  // namespace linear_detail
}  // namespace nemotron

#else  // not x86 with GCC/Clang: no SIMD kernels; cpu_features() reports none.

namespace nemotron {
namespace linear_detail {
void gemv_avx2(const LinearArgs& a, int64_t j0, int64_t j1) { gemv_portable(a, j0, j1); }
const GemmKernel kGemmAvx2 = {0, 0, nullptr, nullptr};
}  // namespace linear_detail
}  // namespace nemotron

#endif
