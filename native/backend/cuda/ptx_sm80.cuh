// Warp-level sm_80 instructions the tensor-core kernels use directly, as
// inline PTX: cp.async (global -> shared copies that bypass registers),
// ldmatrix (shared -> the mma operand layout) and mma.sync m16n8k16 bf16.
// WMMA hides its fragment layout; these expose it, so a kernel can keep
// accumulators in registers it knows the (row, column) of (no shared-memory
// round trip in the epilogue) and feed a C fragment back as an A operand.
//
// Fragment layouts (PTX ISA, "mma.m16n8k16" and "ldmatrix"), lane = 4*g + t:
//   A 16x16 (row-major): a[0] = (row g,   k 2t..2t+1)   a[1] = (row g+8, k 2t..2t+1)
//                        a[2] = (row g,   k 2t+8..+9)   a[3] = (row g+8, k 2t+8..+9)
//   B 16x8  (k x n):     b[0] = (k 2t..2t+1, col g)     b[1] = (k 2t+8..+9, col g)
//   C/D 16x8 (fp32):     d[0], d[1] = (row g, col 2t, 2t+1)   d[2], d[3] = (row g+8, col 2t, 2t+1)
// Each 32-bit register holds two bf16, the lower index in the low half.
// ldmatrix.x4: lanes 8i..8i+7 give the row addresses (16 bytes each) of
// matrix i; register i of lane l gets row l/4, elements 2(l%4) and 2(l%4)+1
// (.trans: elements (2(l%4), l/4) and (2(l%4)+1, l/4)).
//
// The CPU emulator build (native/tests/cuda_emu) provides the same functions
// with the same layouts in emu_ptx_sm80.h, so kernels built on these run
// there against their CPU twins.
#pragma once
#include <cstdint>

#if defined(NEMOTRON_CUDA_EMULATED)
#include "emu_ptx_sm80.h"
#else
#include <cuda_runtime.h>

namespace nemotron {
namespace cuda {
namespace ptx {

__device__ __forceinline__ uint32_t shared_address(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// Copies 16 bytes global -> shared without a register round trip; only the
// first src_bytes (0..16) are read, the rest of the destination becomes zero
// (src_bytes = 0: no read at all, for tiles past the matrix edge). The data is
// there once the issuing thread has waited for its group (cp_async_wait) and,
// for other threads, after a barrier that follows the wait.
__device__ __forceinline__ void cp_async_16(void* smem, const void* gmem, int src_bytes) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(shared_address(smem)), "l"(gmem),
               "r"(src_bytes)
               : "memory");
#endif
}

// Closes the group of copies issued since the last commit.
__device__ __forceinline__ void cp_async_commit() {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

// Waits until at most `Pending` of this thread's committed groups are still in flight.
template <int Pending>
__device__ __forceinline__ void cp_async_wait() {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;\n" ::"n"(Pending) : "memory");
#endif
}

// Four 8x8 bf16 matrices from shared memory; `row` is this lane's row address.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* row) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(row))
               : "memory");
#endif
}

// The same, each matrix transposed: register i of lane l gets matrix i's
// elements (row 2(l%4), column l/4) and (row 2(l%4)+1, column l/4). For a
// B operand stored k-major (rows = k, n contiguous), e.g. V in P.V.
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* row) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(row))
               : "memory");
#endif
}

// d += A (16x16 bf16) * B (16x8 bf16), fp32 accumulation.
__device__ __forceinline__ void mma_bf16_16816(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

}  // namespace ptx
}  // namespace cuda
}  // namespace nemotron
#endif

#include <cuda_bf16.h>

#include <cstring>

namespace nemotron {
namespace cuda {
namespace ptx {

// Two floats rounded to bf16 (nearest even), `lo` in the low half: one
// register of an mma operand (two consecutive k of one row).
__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
  const __nv_bfloat16 l = __float2bfloat16_rn(lo), h = __float2bfloat16_rn(hi);
  unsigned short lb, hb;
  memcpy(&lb, &l, 2);
  memcpy(&hb, &h, 2);
  return static_cast<uint32_t>(lb) | static_cast<uint32_t>(hb) << 16;
}

}  // namespace ptx
}  // namespace cuda
}  // namespace nemotron
