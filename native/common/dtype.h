// Element types of stored tensors and scalar conversions to fp32.
// bf16 is the top half of an IEEE fp32, so widening is a 16-bit shift; f16 uses
// the F16C instruction when the CPU has it (see cpu_kernels) and a portable
// bit-exact conversion otherwise.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace nemotron {

enum class DType : uint8_t { BF16, F16, F32 };

inline size_t dtype_size(DType t) { return t == DType::F32 ? 4 : 2; }
// The floats that hold `n` values of type t, rounded up (backend memory comes in floats).
inline size_t floats_holding(size_t n, DType t) { return (n * dtype_size(t) + sizeof(float) - 1) / sizeof(float); }
const char* dtype_name(DType t);
// Parses a safetensors dtype string; returns false for dtypes we do not support.
bool dtype_from_safetensors(const std::string& s, DType* out);

inline float bf16_to_f32(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round-to-nearest-even, NaN preserved (quieted).
inline uint16_t f32_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

// Widens `n` elements of type `t` at `src` to fp32.
void convert_to_f32(const void* src, DType t, size_t n, float* dst);

}  // namespace nemotron
