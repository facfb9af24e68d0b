// CPU matrix products over stored weights (bf16/f16/f32) with fp32 arithmetic.
//   out[r, j] = sum_k x[r, k] * W[j, k] (+ bias[j])   for r < rows, j < W.rows
// Two regimes: few rows (decode) is bound by streaming W from memory, so the
// weights are read once and widened in registers (GEMV path); many rows
// (prefill) is bound by FMA throughput, so W is widened into packed fp32 panels
// that are reused across rows (GEMM path). AVX2/FMA/F16C code is selected at run
// time; a portable path runs everywhere else.
#pragma once
#include <cstdint>

#include "backend/backend.h"
#include "common/thread_pool.h"

namespace nemotron {

void cpu_linear(ThreadPool& pool, const float* x, int64_t rows, int64_t ldx, const Matrix& w, const float* bias,
                float* out, int64_t ldo);

// The same product computed naively in double precision, single-threaded: the
// reference the fast paths are tested against.
void cpu_linear_reference(const float* x, int64_t rows, int64_t ldx, const Matrix& w, const float* bias, float* out,
                          int64_t ldo);

}  // namespace nemotron
