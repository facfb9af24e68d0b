// Launchers of the PTX layout probes (ptx_layout_kernels.cu): one kernel per
// hand-written PTX primitive the GEMMs and attention rely on (mma.sync's fragment
// table, ldmatrix, wgmma's descriptors, 128-byte swizzle and accumulator layout),
// each gathering operands and scattering results by the PTX ISA's tables by hand.
// The same source runs on the CPU emulator (emu_test_emulator.cpp) and on a GPU
// (test_cuda_ptx_layouts.cpp) against the host checks in ../ptx_layout_cases.h,
// so a GPU run says directly whether the emulator's reading of each table (and
// the kernels built on it) is the hardware's. Pointers are device memory.
#pragma once
#include <cstdint>

struct __nv_bfloat16;

namespace ptx_layout {

// d [16][8] fp32 = 0.5 + a [16][16] x bt [8][16]^T (bf16), one mma.sync m16n8k16.
void mma_16x8x16(const __nv_bfloat16* a, const __nv_bfloat16* bt, float* d);
// Four 8x8 bf16 matrices m [4][8][8] through ldmatrix.x4 (.trans): out [32 lanes][4 registers].
void ldmatrix_x4(const __nv_bfloat16* m, uint32_t* out, bool trans);
// d [64][256] fp32 = 0.25 + a [64][64] x b [256][64]^T (bf16), four wgmma m64n256k16 from 128-byte-swizzled
// shared tiles (needs compute capability 9.0 and sm_90a code; elsewhere the kernel does nothing).
void wgmma_64x256x64(const __nv_bfloat16* a, const __nv_bfloat16* b, float* d);

}  // namespace ptx_layout
