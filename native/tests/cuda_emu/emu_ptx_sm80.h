// The sm_80 instructions of native/backend/cuda/ptx_sm80.cuh for the emulated
// kernels, with the same register layouts (see that header's table).
//
// ldmatrix and mma.sync are warp collectives: every lane deposits its operand
// (a row address, or a pointer to its registers) at one exchange, then each
// lane computes its own result registers from all lanes' operands, and a
// second exchange keeps any lane from moving on (and overwriting its
// registers, or the shared memory read) before every lane has read. A lane
// missing from either is a divergent-warp fault, as on a GPU.
// Checked as the hardware requires: ldmatrix row addresses 16-byte aligned and
// in shared memory. Arithmetic: bf16 products are exact in fp32; each output
// adds its 16 products in k order to the accumulator in fp32 (real tensor cores
// add in another order and precision: results match to rounding).
// cp.async is emu::cp_async (emu_runtime.h): the copy lands at the wait.
#pragma once
#include <cstdint>
#include <cstring>

#include "emu_runtime.h"

namespace nemotron {
namespace cuda {
namespace ptx {

inline void cp_async_16(void* smem, const void* gmem, int src_bytes) { ::emu::cp_async(smem, gmem, src_bytes); }
inline void cp_async_commit() { ::emu::cp_async_commit(); }
template <int Pending>
inline void cp_async_wait() {
  ::emu::cp_async_wait(Pending);
}

namespace detail {
// A lane's deposit in the warp exchange, back as the pointer it was.
inline const char* deposited(uint64_t v) { return reinterpret_cast<const char*>(static_cast<uintptr_t>(v)); }
inline uint64_t deposit(const void* p) { return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p)); }
inline float bf16_half(uint32_t reg, int half) {
  const uint32_t bits = half ? (reg & 0xffff0000u) : (reg << 16);
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
}  // namespace detail

namespace detail {
// ldmatrix.x4 (or .trans): gathers the warp's 32 row addresses (lanes 8i..8i+7:
// matrix i's rows), then gives this lane its four registers.
inline void ldmatrix(uint32_t (&r)[4], const void* row, bool trans, ::emu::Site site) {
  ::emu::check_aligned(row, 16, "ldmatrix row address");
  if (!::emu::is_shared_range(row, 16)) ::emu::fatal("ldmatrix row address %p is not in shared memory", row);
  const uint64_t* all = ::emu::warp_exchange(site, ::emu::WarpOp::Mma, 0xffffffffu, deposit(row));
  const int lane = ::emu::lane_id();
  // Element (row rr, column c) of matrix i.
  auto at = [&](int i, int rr, int c) {
    uint16_t v;
    std::memcpy(&v, deposited(all[i * 8 + rr]) + 2 * c, 2);
    return static_cast<uint32_t>(v);
  };
  for (int i = 0; i < 4; ++i) {
    const int a = lane / 4, b = 2 * (lane % 4);  // plain: row a, columns b, b+1; .trans: rows b, b+1, column a
    r[i] = trans ? at(i, b, a) | at(i, b + 1, a) << 16 : at(i, a, b) | at(i, a, b + 1) << 16;
  }
  ::emu::warp_exchange(site, ::emu::WarpOp::Mma, 0xffffffffu, 0);  // no lane moves on (and writes) before all read
}
}  // namespace detail

inline void ldmatrix_x4(uint32_t (&r)[4], const void* row,
                        const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  const ::emu::Site site{file, line};  // the caller's line: a default argument of its own, not inside a braced init
  detail::ldmatrix(r, row, false, site);
}

inline void ldmatrix_x4_trans(uint32_t (&r)[4], const void* row,
                              const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  const ::emu::Site site{file, line};  // the caller's line: a default argument of its own, not inside a braced init
  detail::ldmatrix(r, row, true, site);
}

inline void mma_bf16_16816(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                           const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  const ::emu::Site site{file, line};  // the caller's line: a default argument of its own, not inside a braced init
  struct Operands {
    uint32_t a[4], b[2];
  } mine;
  std::memcpy(mine.a, a, sizeof mine.a);
  std::memcpy(mine.b, b, sizeof mine.b);
  const uint64_t* all = ::emu::warp_exchange(site, ::emu::WarpOp::Mma, 0xffffffffu, detail::deposit(&mine));
  auto lane_ops = [&](int l) { return reinterpret_cast<const Operands*>(detail::deposited(all[l])); };
  // A(r, k) lives in lane 4*(r%8) + (k%8)/2, register (r >= 8) + 2*(k >= 8), half k%2.
  auto A = [&](int r, int k) {
    return detail::bf16_half(lane_ops(4 * (r % 8) + (k % 8) / 2)->a[(r >= 8) + 2 * (k >= 8)], k % 2);
  };
  // B(k, n) lives in lane 4*n + (k%8)/2, register (k >= 8), half k%2.
  auto B = [&](int k, int n) { return detail::bf16_half(lane_ops(4 * n + (k % 8) / 2)->b[k >= 8], k % 2); };
  const int lane = ::emu::lane_id(), g = lane / 4, t = lane % 4;
  float out[4];
  for (int q = 0; q < 4; ++q) {
    const int r = g + 8 * (q / 2), n = 2 * t + q % 2;
    float s = d[q];
    for (int k = 0; k < 16; ++k) s += A(r, k) * B(k, n);
    out[q] = s;
  }
  ::emu::warp_exchange(site, ::emu::WarpOp::Mma, 0xffffffffu, 0);
  std::memcpy(d, out, sizeof out);
}

}  // namespace ptx
}  // namespace cuda
}  // namespace nemotron
