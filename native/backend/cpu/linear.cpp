// cpu_linear: regime choice, the blocked GEMM driver with its threading, the
// portable kernels, and the double-precision reference. The AVX2 kernels are in
// linear_avx2.cpp behind the same interface (linear_kernels.h).
#include "backend/cpu/linear.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "backend/cpu/linear_kernels.h"
#include "common/cpu_features.h"
#include "common/dtype.h"
#include "common/error.h"

namespace nemotron {
namespace linear_detail {
namespace {

// ---------------------------------------------------------------- tuning
// Rows up to which Auto picks GEMV; measured with nemotron_bench_cpu's
// crossover table (2-core Zen 3, bf16 4096x4096, plus 1024x1024, 4096x1024,
// 1024x4096 and 16384x4096 checked by hand). The AVX2 GEMV widens each weight
// once per 4 x rows and reaches ~75% of FMA peak by 32 rows while GEMM pays a
// full extra pass over W to pack it, so GEMV stays ahead up to 48-96 rows
// depending on the shape; 64 is the middle. The portable GEMV has no register
// blocking across x rows and falls behind the portable GEMM at 8 rows.
constexpr int64_t kGemvMaxRowsSimd = 64;
constexpr int64_t kGemvMaxRowsPortable = 7;

// GEMV tasks get at least this many weights (~128 KB of bf16), so waking a
// helper thread (~10 us) is paid back.
constexpr int64_t kGemvMinWeightsPerTask = 64 * 1024;

// GEMM blocking. kc: k per packed block, so one x micro-panel (6 x 256 fp32 =
// 6 KB) stays in L1 while the weight micro-panels (16 x 256 fp32 = 16 KB each)
// stream past it from L2. kNcPanels: panels per packed weight block, 16 x 16 KB =
// 256 KB, half of a 512 KB L2, reused by every x micro-panel of the M chunk.
constexpr int64_t kKc = 256;
constexpr int64_t kNcPanels = 16;
// Packed weights (the whole k of a block of panels) per thread: read from L3
// on the first pass over a kc slice, from L2 after.
constexpr int64_t kMaxPackedWBytes = 4 << 20;
// Packed x (the whole k for an M chunk) is capped at this size; it is shared by
// all threads and read from L3, one kc slice at a time.
constexpr int64_t kMaxPackedXBytes = 8 << 20;
// Below this many multiply-adds a GEMM runs on the calling thread only.
constexpr int64_t kGemmMinParallelMacs = 1 << 18;

// ---------------------------------------------------------------- scratch
// Per-thread, 64-byte aligned, grow-only buffers: pool threads are long-lived,
// so packing buffers are allocated once rather than per call.
class Scratch {
 public:
  ~Scratch() { std::free(p_); }
  float* get(size_t count) {
    if (count > cap_) {
      std::free(p_);
      p_ = nullptr;
      cap_ = 0;
      const size_t bytes = (count * sizeof(float) + 63) / 64 * 64;
      p_ = static_cast<float*>(std::aligned_alloc(64, bytes));
      if (!p_) throw std::bad_alloc();
      cap_ = count;
    }
    return p_;
  }

 private:
  float* p_ = nullptr;
  size_t cap_ = 0;
};
thread_local Scratch t_packed_w;
thread_local Scratch t_packed_x;
thread_local Scratch t_widened;

// ---------------------------------------------------------------- portable kernels
// Plain C++ written so the compiler vectorises it for the baseline ISA (SSE2 on
// x86-64, NEON on arm64): fixed-width lane arrays instead of scalar reductions,
// which it may not reorder.

inline float dot_lanes(const float* a, const float* b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) acc[l] += a[i + l] * b[i + l];
  float tail = 0;
  for (; i < n; ++i) tail += a[i] * b[i];
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail;
}

constexpr int kPortableMr = 4, kPortableNr = 8;

void pack_w_panel_portable(const LinearArgs& a, int64_t j, int rows_valid, int64_t k0, int64_t kc, float* dst) {
  constexpr int NR = kPortableNr;
  const size_t esize = dtype_size(a.dtype);
  float* row = t_widened.get(static_cast<size_t>(kc));
  for (int r = 0; r < NR; ++r) {
    if (r < rows_valid)
      convert_to_f32(a.w + ((j + r) * a.k + k0) * esize, a.dtype, static_cast<size_t>(kc), row);
    for (int64_t k = 0; k < kc; ++k) dst[k * NR + r] = r < rows_valid ? row[k] : 0.0f;
  }
}

void micro_portable(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, int m, int n,
                    const float* bias, bool accumulate) {
  constexpr int MR = kPortableMr, NR = kPortableNr;
  float acc[MR][NR] = {};
  for (int64_t k = 0; k < kc; ++k) {
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i][j] += ap[i] * bp[j];
    ap += MR;
    bp += NR;
  }
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      float& o = c[i * ldc + j];
      o = (accumulate ? o : (bias ? bias[j] : 0.0f)) + acc[i][j];
    }
}

// x rows [r0, r0 + m_valid) over the whole k, as [k][mr] with zero rows past m_valid.
void pack_x_panel(const LinearArgs& a, int64_t r0, int m_valid, int mr, float* dst) {
  const int64_t K = a.k;
  for (int i = 0; i < mr; ++i) {
    const float* src = i < m_valid ? a.x + (r0 + i) * a.ldx : nullptr;
    for (int64_t k = 0; k < K; ++k) dst[k * mr + i] = src ? src[k] : 0.0f;
  }
}

// ---------------------------------------------------------------- GEMM driver
// Loop nest, outermost first: M chunks (packed x bounded in size) -> thread tasks
// (a range of weight panels, or of x panels when W is too narrow to split) ->
// blocks of up to kNcPanels weight panels (packed over the whole k) -> kc slices
// of k -> x micro-panels -> weight micro-panels -> micro-kernel over kc.
void gemm(ThreadPool& pool, const LinearArgs& a, const GemmKernel& kern) {
  const int MR = kern.mr, NR = kern.nr;
  const int64_t M = a.rows, N = a.n, K = a.k;
  const int64_t n_panels = (N + NR - 1) / NR;

  int64_t mc = std::max<int64_t>(1, kMaxPackedXBytes / (K * 4 * MR)) * MR;
  mc = std::min(mc, (M + MR - 1) / MR * MR);
  const bool parallel = pool.size() > 1 && M * N * K >= kGemmMinParallelMacs;
  // Weight panels per block: at most kNcPanels (one kc slice in half of L2),
  // fewer when the whole-k packed block would pass kMaxPackedWBytes.
  const int64_t block_panels = std::clamp<int64_t>(kMaxPackedWBytes / (NR * K * 4), 1, kNcPanels);
  const int64_t threads = parallel ? pool.size() : 1;

  float* packed_x = t_packed_x.get(static_cast<size_t>(mc * K));
  for (int64_t m0 = 0; m0 < M; m0 += mc) {
    const int64_t m = std::min(mc, M - m0);
    const int64_t m_panels = (m + MR - 1) / MR;

    auto pack_x = [&](int64_t q0, int64_t q1) {
      for (int64_t q = q0; q < q1; ++q)
        pack_x_panel(a, m0 + q * MR, static_cast<int>(std::min<int64_t>(MR, m - q * MR)), MR, packed_x + q * MR * K);
    };
    if (parallel)
      pool.parallel_for(m_panels, std::max<int64_t>(1, (64 << 10) / (MR * K)), pack_x);
    else
      pack_x(0, m_panels);

    // Splitting N keeps each weight byte packed by one thread only; M is split
    // only when there are too few weight panels to share out.
    const bool split_n = n_panels >= 4 * threads || m_panels < threads;
    const int64_t tasks = std::min(threads, split_n ? n_panels : m_panels);

    auto run_task = [&](int64_t t) {
      const int64_t p0 = split_n ? n_panels * t / tasks : 0, p1 = split_n ? n_panels * (t + 1) / tasks : n_panels;
      const int64_t q0 = split_n ? 0 : m_panels * t / tasks, q1 = split_n ? m_panels : m_panels * (t + 1) / tasks;
      float* packed_w = t_packed_w.get(static_cast<size_t>(block_panels * NR * K));
      for (int64_t jp = p0; jp < p1; jp += block_panels) {
        const int64_t jpe = std::min(p1, jp + block_panels);
        // Pack the whole k of this block first, panel by panel, so each panel
        // reads its 16 weight rows as long sequential streams (packing one kc
        // slice of every row at a time, 512-byte runs, was ~20% slower).
        // Layout: kc slice k0 starts at k0 * panels * NR, panels [kc][NR] inside.
        const int64_t panels = jpe - jp;
        for (int64_t p = jp; p < jpe; ++p)
          for (int64_t k0 = 0; k0 < K; k0 += kKc) {
            const int64_t kc = std::min(kKc, K - k0);
            kern.pack_w_panel(a, p * NR, static_cast<int>(std::min<int64_t>(NR, N - p * NR)), k0, kc,
                              packed_w + k0 * panels * NR + (p - jp) * kc * NR);
          }
        for (int64_t k0 = 0; k0 < K; k0 += kKc) {
          const int64_t kc = std::min(kKc, K - k0);
          const float* wslice = packed_w + k0 * panels * NR;
          for (int64_t q = q0; q < q1; ++q) {
            const float* ap = packed_x + q * MR * K + k0 * MR;
            const int mv = static_cast<int>(std::min<int64_t>(MR, m - q * MR));
            float* crow = a.out + (m0 + q * MR) * a.ldo;
            for (int64_t p = jp; p < jpe; ++p) {
              const int nv = static_cast<int>(std::min<int64_t>(NR, N - p * NR));
              kern.micro(kc, ap, wslice + (p - jp) * kc * NR, crow + p * NR, a.ldo, mv, nv,
                         a.bias ? a.bias + p * NR : nullptr, k0 > 0);
            }
          }
        }
      }
    };
    if (tasks > 1)
      pool.parallel_for(tasks, 1, [&](int64_t b, int64_t e) {
        for (int64_t t = b; t < e; ++t) run_task(t);
      });
    else
      run_task(0);
  }
}

bool simd_available() { return cpu_features().avx2_fma_f16c() && kGemmAvx2.micro != nullptr; }

}  // namespace

const GemmKernel kGemmPortable = {kPortableMr, kPortableNr, pack_w_panel_portable, micro_portable};

void gemv_portable(const LinearArgs& a, int64_t j0, int64_t j1) {
  // W rows are widened a chunk at a time into a small buffer that stays in L1
  // while every x row is dotted with it.
  constexpr int64_t kChunk = 512;
  const size_t esize = dtype_size(a.dtype);
  float* wbuf = t_widened.get(kChunk);
  std::vector<float> sums(static_cast<size_t>(a.rows));
  for (int64_t j = j0; j < j1; ++j) {
    std::fill(sums.begin(), sums.end(), 0.0f);
    for (int64_t k0 = 0; k0 < a.k; k0 += kChunk) {
      const int64_t len = std::min(kChunk, a.k - k0);
      convert_to_f32(a.w + (j * a.k + k0) * esize, a.dtype, static_cast<size_t>(len), wbuf);
      for (int64_t r = 0; r < a.rows; ++r) sums[r] += dot_lanes(wbuf, a.x + r * a.ldx + k0, len);
    }
    const float b = a.bias ? a.bias[j] : 0.0f;
    for (int64_t r = 0; r < a.rows; ++r) a.out[r * a.ldo + j] = sums[r] + b;
  }
}

int64_t gemv_max_rows(bool simd) { return simd ? kGemvMaxRowsSimd : kGemvMaxRowsPortable; }

void cpu_linear_regime(ThreadPool& pool, const float* x, int64_t rows, int64_t ldx, const Matrix& w,
                       const float* bias, float* out, int64_t ldo, Regime regime) {
  if (rows <= 0 || w.rows <= 0) return;
  if (ldx < w.cols || ldo < w.rows)
    fail(ErrorCode::Internal, "cpu_linear: leading dimension smaller than the row (ldx " + std::to_string(ldx) +
                                  ", in " + std::to_string(w.cols) + ", ldo " + std::to_string(ldo) + ", out " +
                                  std::to_string(w.rows) + ")");
  LinearArgs a;
  a.x = x;
  a.rows = rows;
  a.ldx = ldx;
  a.w = static_cast<const uint8_t*>(w.data);
  a.dtype = w.dtype;
  a.n = w.rows;
  a.k = w.cols;
  a.bias = bias;
  a.out = out;
  a.ldo = ldo;

  if (a.k == 0) {  // empty sum: the bias alone
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < a.n; ++j) out[r * ldo + j] = bias ? bias[j] : 0.0f;
    return;
  }
  const bool simd = simd_available();
  if (regime == Regime::Auto) regime = rows <= gemv_max_rows(simd) ? Regime::Gemv : Regime::Gemm;

  if (regime == Regime::Gemm) {
    gemm(pool, a, simd ? kGemmAvx2 : kGemmPortable);
    return;
  }
  void (*gemv)(const LinearArgs&, int64_t, int64_t) = simd ? gemv_avx2 : gemv_portable;
  const int64_t grain = std::max<int64_t>(4, (kGemvMinWeightsPerTask + a.k - 1) / a.k);
  pool.parallel_for(a.n, grain, [&](int64_t j0, int64_t j1) { gemv(a, j0, j1); });
}

}  // namespace linear_detail

void cpu_linear(ThreadPool& pool, const float* x, int64_t rows, int64_t ldx, const Matrix& w, const float* bias,
                float* out, int64_t ldo) {
  linear_detail::cpu_linear_regime(pool, x, rows, ldx, w, bias, out, ldo, linear_detail::Regime::Auto);
}

void cpu_linear_reference(const float* x, int64_t rows, int64_t ldx, const Matrix& w, const float* bias, float* out,
                          int64_t ldo) {
  const size_t esize = dtype_size(w.dtype);
  std::vector<float> row(static_cast<size_t>(w.cols));
  for (int64_t j = 0; j < w.rows; ++j) {
    convert_to_f32(static_cast<const uint8_t*>(w.data) + j * w.cols * esize, w.dtype, row.size(), row.data());
    for (int64_t r = 0; r < rows; ++r) {
      double s = bias ? bias[j] : 0.0;
      for (int64_t k = 0; k < w.cols; ++k) s += static_cast<double>(x[r * ldx + k]) * row[k];
      out[r * ldo + j] = static_cast<float>(s);
    }
  }
}

}  // namespace nemotron
