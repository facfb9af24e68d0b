// Private interface between the linear driver (linear.cpp: dispatch, blocking,
// threading, portable kernels) and the AVX2/FMA/F16C kernels (linear_avx2.cpp).
// Tests and the microbenchmark include it to force a regime or a path.
#pragma once
#include <cstdint>

#include "backend/backend.h"
#include "common/thread_pool.h"

namespace nemotron {
namespace linear_detail {

// One call's operands, validated and flattened.
struct LinearArgs {
  const float* x = nullptr;  // [rows, k] at ldx
  int64_t rows = 0, ldx = 0;
  const uint8_t* w = nullptr;  // [n, k] row-major, any 2-byte alignment
  DType dtype = DType::BF16;
  int64_t n = 0, k = 0;
  const float* bias = nullptr;  // [n] or null
  float* out = nullptr;         // [rows, n] at ldo
  int64_t ldo = 0;
};

// ---- GEMV regime: every x row against W rows [j0, j1), each W row read once.
void gemv_portable(const LinearArgs& a, int64_t j0, int64_t j1);
void gemv_avx2(const LinearArgs& a, int64_t j0, int64_t j1);

// ---- GEMM regime: the pieces the blocked driver is built from.
// Packed W: per panel of `nr` output features, [kc][nr] fp32 (zero columns past n).
// Packed x: per panel of `mr` rows, [k][mr] fp32 over the whole k (zero rows past m).
struct GemmKernel {
  int mr, nr;
  // Widens W rows [j, j + rows_valid) (rows_valid <= nr), columns [k0, k0 + kc),
  // into one [kc][nr] panel at dst.
  void (*pack_w_panel)(const LinearArgs& a, int64_t j, int rows_valid, int64_t k0, int64_t kc, float* dst);
  // c[0..m) x [0..n) (m <= mr, n <= nr, leading dimension ldc) gets
  // sum_k ap[k][i] * bp[k][j]; added to c when `accumulate`, otherwise stored
  // with bias[j] added (bias may be null).
  void (*micro)(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, int m, int n,
                const float* bias, bool accumulate);
};
extern const GemmKernel kGemmPortable;
extern const GemmKernel kGemmAvx2;

// ---- Forcing a regime (tests and benchmarks).
enum class Regime { Auto, Gemv, Gemm };
void cpu_linear_regime(ThreadPool& pool, const float* x, int64_t rows, int64_t ldx, const Matrix& w,
                       const float* bias, float* out, int64_t ldo, Regime regime);

// Rows at or below which Auto picks the GEMV regime (measured; see linear.cpp).
int64_t gemv_max_rows(bool simd);

}  // namespace linear_detail
}  // namespace nemotron
