// Warpgroup-level sm_90a instructions of the Hopper GEMM (linear_wgmma_gemm.cuh),
// as inline PTX: wgmma.mma_async (a 64 x N x 16 product of four warps, its
// operands read by the tensor cores straight from shared memory through
// matrix descriptors), its fence / commit / wait, and the proxy fence that
// makes shared memory written by ordinary (generic-proxy) copies visible to it.
//
// Operand layout used here (PTX ISA, "wgmma ... matrix descriptor" and
// "shared memory layout ... 128B swizzle"): both A (rows = M) and B (rows = N)
// K-major, 64 bf16 of K per 128-byte row; rows grouped in atoms of 8 rows =
// 1024 bytes, atoms laid out one after another (stride byte offset 1024, the
// leading byte offset unused). Within an atom, the 16-byte chunk c of row r
// sits at chunk position c ^ (r % 8): the hardware XORs address bits 4-6 with
// bits 7-9, so atoms must start at 1024-byte shared addresses. The descriptor
// of the k-th 16-wide K slice is the tile's, its start advanced by 32k bytes.
//
// Accumulators of m64nNk16 (f32), per thread (warp w of the warpgroup, lane =
// 4g + t): d[i] is row 16w + g + 8((i / 2) % 2), column 8(i / 4) + 2t + i % 2
// (the mma.sync C layout of ptx_sm80.cuh, one 16x8 tile per 4 registers).
//
// wgmma runs asynchronously: accumulators are only valid, and the shared
// memory it reads only free to overwrite, once wgmma_wait<N> has left at most
// N newer groups in flight. Code for other architectures (and the host pass)
// compiles these to nothing: linear.cu launches the Hopper GEMM only where the
// binary holds sm_90a code and the device is compute capability 9.0.
//
// The CPU emulator build provides the same functions (emu_ptx_sm90.h) with
// this layout, deferred execution at the wait, and a check for the proxy fence.
#pragma once
#include <cstdint>

namespace nemotron {
namespace cuda {
namespace ptx {

// Byte offset, within a 128-byte-swizzled tile, of 16-byte chunk `chunk`
// (0..7: K elements 8 chunk .. 8 chunk + 7) of row `row`. Host and device.
__host__ __device__ constexpr uint32_t sw128_offset(uint32_t row, uint32_t chunk) {
  return row * 128u + ((chunk ^ (row & 7u)) << 4);
}

}  // namespace ptx
}  // namespace cuda
}  // namespace nemotron

#if defined(NEMOTRON_CUDA_EMULATED)
#include "emu_ptx_sm90.h"
#else
#include <cuda_runtime.h>

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define NEMOTRON_PTX_WGMMA 1
#else
#define NEMOTRON_PTX_WGMMA 0
#endif

namespace nemotron {
namespace cuda {
namespace ptx {

// The descriptor of a K-major, 128-byte-swizzled operand starting at `tile`
// (see the header comment): start address and stride byte offset in 16-byte
// units, leading byte offset 1 (unused by this layout), base offset 0, layout 1 = 128B swizzle.
__device__ __forceinline__ uint64_t sw128_desc(const void* tile) {
  const uint32_t addr = static_cast<uint32_t>(__cvta_generic_to_shared(tile));
  return static_cast<uint64_t>((addr & 0x3FFFFu) >> 4) | (1ull << 16) | (static_cast<uint64_t>(1024 >> 4) << 32) |
         (1ull << 62);
}

__device__ __forceinline__ uint32_t shared_address_of(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// Orders this thread's earlier generic-proxy writes of shared memory (cp.async
// included) before later async-proxy reads (wgmma) once a barrier follows.
__device__ __forceinline__ void fence_proxy_async_shared() {
#if NEMOTRON_PTX_WGMMA
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

// Before the first wgmma, and after the accumulators were touched by other instructions.
__device__ __forceinline__ void wgmma_fence() {
#if NEMOTRON_PTX_WGMMA
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}

// Pins the accumulators in place around wgmma_fence / wgmma_wait: an empty asm
// that "reads and writes" each of them, so the compiler cannot move an ordinary
// use of one across the fence or the wait (the wait's asm names no registers;
// an in-flight wgmma writes them behind the compiler's back). CUTLASS's
// warpgroup_fence_operand does the same.
__device__ __forceinline__ void wgmma_fence_operands(float (&d)[128]) {
#if NEMOTRON_PTX_WGMMA
#pragma unroll
  for (int i = 0; i < 128; ++i) asm volatile("" : "+f"(d[i])::"memory");
#endif
}

__device__ __forceinline__ void wgmma_commit() {
#if NEMOTRON_PTX_WGMMA
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}

// Waits until at most `Pending` of this warpgroup's committed wgmma groups are in flight.
template <int Pending>
__device__ __forceinline__ void wgmma_wait() {
#if NEMOTRON_PTX_WGMMA
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(Pending) : "memory");
#endif
}

// d (64 x 256, f32, the layout above) += A (64 x 16 bf16, a_desc) * B^T (B: 256 x 16 bf16, b_desc).
__device__ __forceinline__ void wgmma_m64n256k16_bf16(float (&d)[128], uint64_t a_desc, uint64_t b_desc) {
#if NEMOTRON_PTX_WGMMA
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "setp.ne.b32 p, 1, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, "
      "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, "
      "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, "
      "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, "
      "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}, "
      "%128, %129, p, 1, 1, 0, 0;\n"
      "}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
        "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
        "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
        "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]),
        "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]),
        "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]),
        "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]),
        "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]),
        "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]),
        "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]),
        "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]),
        "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
      : "l"(a_desc), "l"(b_desc));
#else
  (void)d, (void)a_desc, (void)b_desc;
#endif
}

}  // namespace ptx
}  // namespace cuda
}  // namespace nemotron
#endif
