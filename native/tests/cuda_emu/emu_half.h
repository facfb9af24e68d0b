// 16-bit float types for the emulated kernels (shim/cuda_bf16.h, shim/cuda_fp16.h):
// __nv_bfloat16 and __half as their raw bits, 2-byte aligned like CUDA's, with
// the conversions the kernels use. Widening is exact; narrowing rounds to
// nearest even, NaN stays NaN, as the CUDA intrinsics of the same names do.
#pragma once
#include <cstdint>
#include <cstring>

#include "emu_runtime.h"

struct alignas(2) __nv_bfloat16 {
  uint16_t bits;
};
struct alignas(2) __half {
  uint16_t bits;
};
struct alignas(4) __half2 {
  __half x, y;
};
struct alignas(4) __nv_bfloat162 {
  __nv_bfloat16 x, y;
};

inline float __bfloat162float(__nv_bfloat16 h) { return __uint_as_float(static_cast<uint32_t>(h.bits) << 16); }

inline __nv_bfloat16 __float2bfloat16_rn(float f) {
  uint32_t u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return __nv_bfloat16{static_cast<uint16_t>((u >> 16) | 0x40)};
  u += 0x7fffu + ((u >> 16) & 1u);
  return __nv_bfloat16{static_cast<uint16_t>(u >> 16)};
}

inline float __half2float(__half h) {
  const uint32_t sign = static_cast<uint32_t>(h.bits & 0x8000u) << 16;
  uint32_t exp = (h.bits >> 10) & 0x1fu, man = h.bits & 0x3ffu;
  if (exp == 0x1f) return __uint_as_float(sign | 0x7f800000u | (man << 13));  // inf / NaN
  if (exp == 0) {
    if (man == 0) return __uint_as_float(sign);
    // subnormal (man * 2^-24): shift until the implicit bit is set, one exponent step per shift
    int shifts = 0;
    do {
      man <<= 1;
      ++shifts;
    } while ((man & 0x400u) == 0);
    man &= 0x3ffu;
    return __uint_as_float(sign | (static_cast<uint32_t>(113 - shifts) << 23) | (man << 13));
  }
  return __uint_as_float(sign | ((exp + 112u) << 23) | (man << 13));
}

inline __half __float2half_rn(float f) {
  const uint32_t u = __float_as_uint(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return __half{static_cast<uint16_t>(sign | 0x7e00u)};  // NaN
  if (a >= 0x477ff000u) return __half{static_cast<uint16_t>(sign | 0x7c00u)};  // rounds to inf
  if (a < 0x38800000u) {                                                      // subnormal or zero
    const float s = __uint_as_float(a) * 16777216.0f;  // exact: scale to units of 2^-24
    const uint32_t q = static_cast<uint32_t>(s);
    const float rem = s - static_cast<float>(q);
    uint32_t r = q + (rem > 0.5f || (rem == 0.5f && (q & 1u)));
    return __half{static_cast<uint16_t>(sign | r)};
  }
  uint32_t r = a - 0x38000000u;  // rebias 127 -> 15
  r += 0xfffu + ((r >> 13) & 1u);
  return __half{static_cast<uint16_t>(sign | (r >> 13))};
}

inline float2 __half22float2(__half2 h) { return make_float2(__half2float(h.x), __half2float(h.y)); }
