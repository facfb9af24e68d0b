// The PTX layout probes (ptx_layout_kernels.cu) on a real GPU: the fragment
// tables of mma.sync and ldmatrix, and wgmma's descriptors, 128-byte swizzle and
// accumulator layout, as this project reads the PTX ISA. The CPU emulator runs
// the same kernels against the same checks (emu_test_emulator.cpp), so these
// passing here says the emulator's model of each instruction is the hardware's;
// a failure names the instruction and the first outputs that differ, which is
// where to look first when the tensor-core GEMMs or attention disagree with the CPU.
// Skips without a device, and per probe where the GPU lacks the instruction.
#include <cuda_runtime.h>

#include <vector>

#include "../ptx_layout_cases.h"
#include "../test_framework.h"
#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/device_info.h"
#include "cuda_test_util.h"
#include "ptx_layout_kernels.h"

using namespace nemotron;
using namespace nemotron_test;

namespace {
// mma.sync bf16 and ldmatrix need compute capability 8.0 (the probes compile to nothing below it).
bool sm80_or_skip() {
  if (!cuda_device_or_skip()) return false;
  const cuda::DeviceInfo di = cuda::current_device_info();
  if (di.cc_major >= 8) return true;
  skip("compute capability " + std::to_string(di.cc_major) + "." + std::to_string(di.cc_minor) + " has no bf16 mma.sync");
  return false;
}
const __nv_bfloat16* bf16(const DevMem& m) { return static_cast<const __nv_bfloat16*>(m.p); }
}  // namespace

TEST(cuda_mma_sync_follows_the_ptx_fragment_table) {
  if (!sm80_or_skip()) return;
  DevMem a(mma_layout_a()), bt(mma_layout_bt()), d(16 * 8 * sizeof(float));
  ptx_layout::mma_16x8x16(bf16(a), bf16(bt), d.at<float>());
  CU(cudaGetLastError());
  CU(cudaDeviceSynchronize());
  CHECK_LAYOUT(check_mma_layout(d.host<float>()), "mma.sync m16n8k16");
}

TEST(cuda_ldmatrix_follows_the_ptx_layout) {
  if (!sm80_or_skip()) return;
  for (bool trans : {false, true}) {
    DevMem m(ldmatrix_layout_m()), out(32 * 4 * sizeof(uint32_t));
    ptx_layout::ldmatrix_x4(bf16(m), out.at<uint32_t>(), trans);
    CU(cudaGetLastError());
    CU(cudaDeviceSynchronize());
    CHECK_LAYOUT(check_ldmatrix_layout(out.host<uint32_t>(), trans), trans ? "ldmatrix.x4.trans" : "ldmatrix.x4");
  }
}

TEST(cuda_wgmma_follows_the_ptx_layout) {
  if (!cuda_device_or_skip()) return;
  if (!cuda::wgmma_gemm_available())
    return skip("wgmma needs a compute capability 9.0 GPU and a build with sm_90a code (NEMOTRON_CUDA_ARCHS with 90a)");
  DevMem a(wgmma_layout_a()), b(wgmma_layout_b()), d(64 * 256 * sizeof(float));
  ptx_layout::wgmma_64x256x64(bf16(a), bf16(b), d.at<float>());
  CU(cudaGetLastError());
  CU(cudaDeviceSynchronize());
  CHECK_LAYOUT(check_wgmma_layout(d.host<float>()), "wgmma m64n256k16 (128-byte swizzle, descriptors +32 B per k16)");
}
