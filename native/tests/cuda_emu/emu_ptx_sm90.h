// The sm_90a instructions of native/backend/cuda/ptx_sm90.cuh for the emulated
// kernels, with the same descriptor and accumulator layouts (see that header).
//
// wgmma.mma_async is queued per thread and runs when the thread's
// wgmma_wait covers its group (emu_runtime.cpp): each thread computes its own
// accumulators of the warpgroup's 64 x N product, reading A and B through the
// descriptors with the 128-byte swizzle, so a kernel that reads accumulators
// before the wait, or overwrites a stage a queued product still reads, gets a
// wrong answer. Faults: a wgmma not issued by the whole warp with the same
// descriptors, descriptors outside the emulated layout (128-byte swizzle, base
// offset 0, 1024-byte aligned atoms), operands outside shared memory or with a
// cp.async into them still in flight (issued before the product ran), a
// wgmma before any wgmma.fence, a thread exiting with one pending, and
// operands landed by cp.async whose thread issued no fence.proxy.async after
// its wait (the tensor cores read through the async proxy). Plain stores to
// shared memory are not tracked for the proxy fence.
#pragma once
#include <cstdint>

#include "emu_runtime.h"

namespace nemotron {
namespace cuda {
namespace ptx {

inline uint32_t shared_address_of(const void* p) { return ::emu::shared_offset(p); }

inline uint64_t sw128_desc(const void* tile) {
  const uint32_t addr = ::emu::shared_offset(tile);
  return static_cast<uint64_t>((addr & 0x3FFFFu) >> 4) | (1ull << 16) | (static_cast<uint64_t>(1024 >> 4) << 32) |
         (1ull << 62);
}

inline void fence_proxy_async_shared() { ::emu::fence_proxy_async(); }
inline void wgmma_fence() { ::emu::wgmma_fence(); }
inline void wgmma_commit() { ::emu::wgmma_commit(); }
// (a compiler-ordering pin on a GPU; the emulator's accumulators are plain memory the wait writes)
inline void wgmma_fence_operands(float (&)[128]) {}
template <int Pending>
inline void wgmma_wait() {
  ::emu::wgmma_wait(Pending);
}

inline void wgmma_m64n256k16_bf16(float (&d)[128], uint64_t a_desc, uint64_t b_desc,
                                  const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  const ::emu::Site site{file, line};  // the caller's line: a default argument of its own, not inside a braced init
  // The whole warp issues it, with one pair of descriptors (.sync.aligned).
  const uint64_t mine = a_desc * 0x9E3779B97F4A7C15ull ^ b_desc;
  const uint64_t* all = ::emu::warp_exchange(site, ::emu::WarpOp::Mma, 0xffffffffu, mine);
  for (int l = 0; l < 32; ++l)
    if (all[l] != mine) ::emu::fatal("wgmma at %s:%d: lanes of one warp gave different descriptors", site.file, site.line);
  ::emu::warp_exchange(site, ::emu::WarpOp::Mma, 0xffffffffu, 0);
  ::emu::wgmma_issue(d, 256, a_desc, b_desc, site);
}

}  // namespace ptx
}  // namespace cuda
}  // namespace nemotron
