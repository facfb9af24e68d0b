// nvcuda::wmma for the emulated kernels (shim/mma.h): the shapes the kernels
// use, tf32 m16n16k8 and bf16/f16 m16n16k16 with fp32 accumulators.
//
// A fragment holds the whole 16x16 tile. The warp-wide operations (load, mma,
// store) are done once per warp, by lane 0 on its own fragment copy; the other
// lanes only count the call, and the emulator checks at every barrier and at
// block end that all lanes of a warp made the same number of WMMA calls (a
// WMMA call skipped by some lanes is undefined on a GPU). Because lane 0 alone
// writes a stored tile, a lane that reads it before a __syncwarp sees stale
// data under the schedules where it runs first, as it could on a GPU.
//
// Checked as the hardware requires: 256-bit (32-byte) aligned pointers and a
// leading dimension that is a multiple of 16 bytes. Arithmetic: operands are
// widened exactly (bf16/f16), tf32 operands lose their 13 low mantissa bits
// (kernels round with __float_to_tf32 first, which makes that exact), products
// are exact in fp32 for both, and each output sums its K products in k order
// in fp32 from the accumulator's value. Real tensor cores add in another order
// and internal precision: results match to rounding, not bit for bit.
#pragma once
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "emu_half.h"
#include "emu_runtime.h"

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
namespace precision {
struct tf32 {};
}  // namespace precision
enum layout_t { mem_row_major, mem_col_major };

namespace detail {
// Element type in memory of a fragment declared with type T.
template <class T>
struct mem_type {
  using type = T;
};
template <>
struct mem_type<precision::tf32> {
  using type = float;
};
inline float widen(float v) {
  // tf32: 1 sign, 8 exponent, 10 mantissa bits; the hardware ignores the rest.
  return __uint_as_float(__float_as_uint(v) & 0xffffe000u);
}
inline float widen(__nv_bfloat16 v) { return __bfloat162float(v); }
inline float widen(__half v) { return __half2float(v); }

template <class Use, int M, int N, int K>
struct shape;
template <int M, int N, int K>
struct shape<matrix_a, M, N, K> {
  static constexpr int rows = M, cols = K;
};
template <int M, int N, int K>
struct shape<matrix_b, M, N, K> {
  static constexpr int rows = K, cols = N;
};
template <int M, int N, int K>
struct shape<accumulator, M, N, K> {
  static constexpr int rows = M, cols = N;
};

template <class T, int M, int N, int K>
constexpr bool supported() {
  return (std::is_same<T, precision::tf32>::value && M == 16 && N == 16 && K == 8) ||
         ((std::is_same<T, __nv_bfloat16>::value || std::is_same<T, __half>::value) && M == 16 && N == 16 &&
          K == 16) ||
         (std::is_same<T, float>::value && M == 16 && N == 16 && (K == 8 || K == 16));
}

template <class E>
inline void check_access(const E* p, unsigned ldm, const char* what) {
  emu::check_aligned(p, 32, what);
  if ((static_cast<size_t>(ldm) * sizeof(E)) % 16 != 0)
    emu::fatal("%s: ldm %u elements is not a multiple of 16 bytes", what, ldm);
}
}  // namespace detail

template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment {
  static_assert(detail::supported<T, M, N, K>(), "WMMA shape/type not emulated");
  static constexpr int rows = detail::shape<Use, M, N, K>::rows, cols = detail::shape<Use, M, N, K>::cols;
  float v[rows][cols];  // the whole tile (meaningful in lane 0's copy)
};

template <class Use, int M, int N, int K, class T, class L, class E>
void load_matrix_sync(fragment<Use, M, N, K, T, L>& f, const E* p, unsigned ldm) {
  static_assert(!std::is_same<Use, accumulator>::value, "accumulator loads take a layout");
  static_assert(std::is_same<E, typename detail::mem_type<T>::type>::value, "pointer type does not match the fragment");
  emu::wmma_op();
  detail::check_access(p, ldm, "wmma::load_matrix_sync");
  if (emu::lane_id() != 0) return;
  constexpr bool row = std::is_same<L, row_major>::value;
  for (int r = 0; r < f.rows; ++r)
    for (int c = 0; c < f.cols; ++c) f.v[r][c] = detail::widen(row ? p[r * ldm + c] : p[c * ldm + r]);
}

template <int M, int N, int K, class T>
void load_matrix_sync(fragment<accumulator, M, N, K, T>& f, const float* p, unsigned ldm, layout_t layout) {
  emu::wmma_op();
  detail::check_access(p, ldm, "wmma::load_matrix_sync");
  if (emu::lane_id() != 0) return;
  for (int r = 0; r < M; ++r)
    for (int c = 0; c < N; ++c) f.v[r][c] = layout == mem_row_major ? p[r * ldm + c] : p[c * ldm + r];
}

template <int M, int N, int K, class T>
void fill_fragment(fragment<accumulator, M, N, K, T>& f, float value) {
  emu::wmma_op();
  for (int r = 0; r < M; ++r)
    for (int c = 0; c < N; ++c) f.v[r][c] = value;
}

template <int M, int N, int K, class T, class LA, class LB>
void mma_sync(fragment<accumulator, M, N, K, float>& d, const fragment<matrix_a, M, N, K, T, LA>& a,
              const fragment<matrix_b, M, N, K, T, LB>& b, const fragment<accumulator, M, N, K, float>& c) {
  emu::wmma_op();
  if (emu::lane_id() != 0) return;
  float r[M][N];  // d may be c
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      float s = c.v[i][j];
      for (int k = 0; k < K; ++k) s += a.v[i][k] * b.v[k][j];
      r[i][j] = s;
    }
  std::memcpy(d.v, r, sizeof r);
}

template <int M, int N, int K, class T>
void store_matrix_sync(float* p, const fragment<accumulator, M, N, K, T>& f, unsigned ldm, layout_t layout) {
  emu::wmma_op();
  detail::check_access(p, ldm, "wmma::store_matrix_sync");
  if (emu::lane_id() != 0) return;
  for (int r = 0; r < M; ++r)
    for (int c = 0; c < N; ++c) (layout == mem_row_major ? p[r * ldm + c] : p[c * ldm + r]) = f.v[r][c];
}

// cvt.rna.tf32.f32: round to the nearest tf32, ties away from zero; inf/NaN kept.
inline float __float_to_tf32(float x) {
  uint32_t u = __float_as_uint(x);
  if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u;
  return __uint_as_float(u);
}

}  // namespace wmma
}  // namespace nvcuda
