// nemotron::cuda::linear against its CPU twin cpu_linear_reference (double
// precision) on the same stored weights: the NemotronH-Nano-9B-v2 projection
// shapes, odd shapes around the tile edges, rows on both sides of the GEMV/GEMM
// switch (16), bias or not, padded leading dimensions, misaligned weights and
// x, and bf16/f16/f32 weights. Skips (saying why) without a CUDA device.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "../test_framework.h"
#include "cuda_test_util.h"
#include "backend/cpu/linear.h"
#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/linear_bench.h"
#include "common/dtype.h"
#include "common/error.h"

using namespace nemotron;
using namespace nemotron_test;

namespace {


struct DevBuf {
  void* p = nullptr;
  explicit DevBuf(size_t bytes) { cuda::check(cudaMalloc(&p, bytes ? bytes : 1), "test cudaMalloc"); }
  ~DevBuf() { cudaFree(p); }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
};

struct Stream {
  cudaStream_t s = nullptr;
  Stream() { cuda::check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "test stream"); }
  ~Stream() { cudaStreamDestroy(s); }
};

// splitmix64: fast enough to fill the 587M-weight lm_head on the host.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  float uniform() { return static_cast<float>(next() >> 40) * (2.0f / 16777216.0f) - 1.0f; }  // [-1, 1)
};

// Weights [n, k] of `dtype` on host and device. On the device they start
// `offset` bytes past a 256-byte aligned allocation: 2 (4 for f32) makes them
// misaligned for 16-byte loads, as a tensor inside a mapped file can be.
// Values ~ U(-0.05, 0.05): the scale of trained projection weights.
struct Weights {
  std::vector<uint8_t> host;
  std::unique_ptr<DevBuf> dev;
  Matrix host_m, dev_m;
  Weights(DType dtype, int64_t n, int64_t k, size_t offset, uint64_t seed) {
    const size_t es = dtype_size(dtype), count = static_cast<size_t>(n * k);
    host.resize(count * es);
    Rng rng(seed);
    for (size_t i = 0; i < count; ++i) {
      const float f = rng.uniform() * 0.05f;
      if (dtype == DType::F32) {
        std::memcpy(&host[4 * i], &f, 4);
      } else {
        const uint16_t h = dtype == DType::BF16 ? f32_to_bf16(f) : f32_to_f16(f);
        std::memcpy(&host[2 * i], &h, 2);
      }
    }
    dev.reset(new DevBuf(host.size() + offset));
    uint8_t* d = static_cast<uint8_t*>(dev->p) + offset;
    cuda::check(cudaMemcpy(d, host.data(), host.size(), cudaMemcpyHostToDevice), "test upload W");
    host_m = Matrix{host.data(), dtype, n, k};
    dev_m = Matrix{d, dtype, n, k};
  }
};

struct RowCase {
  int64_t rows;
  int64_t ldx_pad, ldo_pad;  // ldx_pad % 4 != 0 breaks x's 16-byte alignment per row
  bool bias;
};

std::string describe(const Matrix& w, const RowCase& c, size_t offset) {
  return std::string(dtype_name(w.dtype)) + " out=" + std::to_string(w.rows) + " in=" + std::to_string(w.cols) +
         " rows=" + std::to_string(c.rows) + " ldx+" + std::to_string(c.ldx_pad) + " ldo+" +
         std::to_string(c.ldo_pad) + (c.bias ? " bias" : "") + " woff=" + std::to_string(offset);
}

// Indices checked against the reference: all when few, else the ends and the
// elements on both sides of the 64/128 tile boundaries and the middle. Every
// output element is still checked for having been written (not NaN).
std::vector<int64_t> sample(int64_t n, int64_t all_up_to) {
  std::vector<int64_t> v;
  if (n <= all_up_to) {
    for (int64_t i = 0; i < n; ++i) v.push_back(i);
    return v;
  }
  auto add_range = [&](int64_t a, int64_t b) {
    for (int64_t i = std::max<int64_t>(a, 0); i < std::min(b, n); ++i) v.push_back(i);
  };
  add_range(0, 40);
  add_range(n - 40, n);
  const int64_t mid = (n / 2) / 128 * 128;
  add_range(mid - 20, mid + 20);
  for (int64_t b : {64, 128, 256}) add_range(b - 2, b + 2);
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

// Worst error / tolerance seen, for the summary line each test prints.
double g_worst_ratio = 0;

// Runs one row configuration against the reference; returns false after the
// first mismatch (already recorded).
//
// Tolerances, per element, with S1 = sum_k |x_k w_k| and S2 = sqrt(sum_k (x_k w_k)^2):
//  * fp32 paths (rows <= 16: the GEMV keeps x in fp32; f16/f32 W: exact SIMT
//    GEMM): only fp32 rounding of products and partial sums, far below
//    2e-5 * S1 for these K (the CPU twin's test uses 1e-5 * S1 at K = 4096).
//  * bf16 tensor-core path (bf16 W, rows > 16): x is rounded to bf16, a
//    relative error |d_k| <= 2^-8 per element, so the result moves by
//    sum_k x_k w_k d_k. The hard bound 2^-8 * S1 is too loose to catch a
//    dropped k-tile at K = 4480; the d_k are independent and zero-mean
//    (round-to-nearest), so the error is a random sum with standard deviation
//    ~ 2^-8/sqrt(3) * S2, and 6 * 2^-8 * S2 is ~10 sigma (never reached by
//    chance over millions of elements). A dropped 32-wide k-tile moves the
//    result by ~ sqrt(32/K) * S2 = 0.085 * S2 at K = 4480, 3.6x this bound
//    (0.023 * S2), so such bugs still fail. We use min(hard, statistical)
//    + the fp32 term.
// Plus 1e-6 * |bias| for the final fp32 add.
bool run_case(const Weights& w, size_t offset, const RowCase& c, cudaStream_t stream, uint64_t seed) {
  const int64_t n = w.host_m.rows, k = w.host_m.cols, rows = c.rows;
  const int64_t ldx = k + c.ldx_pad, ldo = n + c.ldo_pad;
  const std::string what = describe(w.host_m, c, offset);

  // x padding is NaN, so a kernel reading past k poisons its results.
  std::vector<float> x(static_cast<size_t>(rows * ldx));
  Rng rng(seed);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < ldx; ++i) x[r * ldx + i] = i < k ? rng.uniform() : std::nanf("");
  std::vector<float> bias(static_cast<size_t>(n));
  for (auto& b : bias) b = rng.uniform();

  DevBuf dx(x.size() * 4), db(bias.size() * 4), dout(static_cast<size_t>(rows * ldo) * 4);
  cuda::check(cudaMemcpy(dx.p, x.data(), x.size() * 4, cudaMemcpyHostToDevice), "test upload x");
  cuda::check(cudaMemcpy(db.p, bias.data(), bias.size() * 4, cudaMemcpyHostToDevice), "test upload bias");
  // Poison: all-ones bits is a NaN; unwritten outputs stay NaN, padding must.
  cuda::check(cudaMemset(dout.p, 0xFF, static_cast<size_t>(rows * ldo) * 4), "test poison out");
  // The uploads and the poison ran on the legacy default stream, the kernel runs on
  // a non-blocking stream that does not wait for it: cudaMemset is asynchronous, and
  // a pageable cudaMemcpy may return before its DMA lands. Without this wait the
  // poison can overwrite the kernel's outputs, or the kernel read stale x/bias/W.
  cuda::check(cudaDeviceSynchronize(), "test sync before linear");

  cuda::linear(static_cast<const float*>(dx.p), rows, ldx, w.dev_m, c.bias ? static_cast<const float*>(db.p) : nullptr,
               static_cast<float*>(dout.p), ldo, stream);
  cuda::check(cudaStreamSynchronize(stream), "test sync after linear");
  std::vector<float> out(static_cast<size_t>(rows * ldo));
  cuda::check(cudaMemcpy(out.data(), dout.p, out.size() * 4, cudaMemcpyDeviceToHost), "test download out");

  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < n; ++j)
      if (!std::isfinite(out[r * ldo + j])) {
        record_failure(__FILE__, __LINE__,
                       what + ": out[" + std::to_string(r) + "," + std::to_string(j) + "] not written (or not finite)");
        return false;
      }
    for (int64_t j = n; j < ldo; ++j) {
      uint32_t bits;
      std::memcpy(&bits, &out[r * ldo + j], 4);
      if (bits != 0xFFFFFFFFu) {
        record_failure(__FILE__, __LINE__, what + ": wrote into out's padding at row " + std::to_string(r));
        return false;
      }
    }
  }

  // Reference on the sampled rows (gathered densely) and sampled features.
  const std::vector<int64_t> rs = sample(rows, 24), js = sample(n, 512);
  const int64_t ns = static_cast<int64_t>(rs.size());
  std::vector<float> xs(static_cast<size_t>(ns * k));
  for (int64_t i = 0; i < ns; ++i) std::copy_n(&x[rs[i] * ldx], k, &xs[i * k]);
  const size_t es = dtype_size(w.host_m.dtype);
  const bool bf16_rounded = w.host_m.dtype == DType::BF16 && rows > 16;
  std::vector<float> wrow(static_cast<size_t>(k));
  double err2 = 0, ref2 = 0;
  for (int64_t j : js) {
    const Matrix wj{w.host.data() + j * k * es, w.host_m.dtype, 1, k};
    std::vector<float> ref(static_cast<size_t>(ns));
    cpu_linear_reference(xs.data(), ns, k, wj, c.bias ? &bias[j] : nullptr, ref.data(), 1);
    convert_to_f32(wj.data, wj.dtype, static_cast<size_t>(k), wrow.data());
    for (int64_t i = 0; i < ns; ++i) {
      double s1 = 0, s2 = 0;
      for (int64_t q = 0; q < k; ++q) {
        const double t = static_cast<double>(xs[i * k + q]) * wrow[q];
        s1 += std::fabs(t);
        s2 += t * t;
      }
      double tol = 2e-5 * s1 + (c.bias ? 1e-6 * std::fabs(bias[j]) : 0.0) + 1e-30;
      if (bf16_rounded) tol += std::min(std::ldexp(s1, -8), 6 * std::ldexp(std::sqrt(s2), -8));
      const double got = out[rs[i] * ldo + j], want = ref[i];
      const double err = std::fabs(got - want);
      err2 += err * err;
      ref2 += want * want;
      g_worst_ratio = std::max(g_worst_ratio, err / tol);
      if (!(err <= tol)) {
        char buf[160];
        std::snprintf(buf, sizeof buf, ": out[%lld,%lld] = %.7g, reference %.7g, |diff| %.3g > tolerance %.3g",
                      static_cast<long long>(rs[i]), static_cast<long long>(j), got, want, err, tol);
        record_failure(__FILE__, __LINE__, what + buf);
        return false;
      }
    }
  }
  // Norm-wise relative error (METHOD.md): bf16 operands land in 1e-3..1e-2,
  // fp32 arithmetic far under 1e-5.
  const double rel = ref2 > 0 ? std::sqrt(err2 / ref2) : std::sqrt(err2);
  if (!(rel <= (bf16_rounded ? 1e-2 : 1e-5))) {
    record_failure(__FILE__, __LINE__, what + ": norm-wise relative error " + std::to_string(rel));
    return false;
  }
  return true;
}

const std::vector<RowCase>& standard_rows() {
  // 1: decode; 3: masked GEMV rows; 16: the last GEMV row count; 17: the first
  // GEMM one (a 128-row tile with 111 empty rows); 100, 512: prefill.
  static const std::vector<RowCase> v = {{1, 0, 0, false},  {3, 3, 1, true},   {16, 4, 0, true},
                                         {17, 0, 2, false}, {100, 3, 0, true}, {512, 0, 0, true}};
  return v;
}

void check_weights(DType dtype, int64_t n, int64_t k, size_t offset, const std::vector<RowCase>& cases,
                   uint64_t seed) {
  Stream stream;
  Weights w(dtype, n, k, offset, seed);
  for (const RowCase& c : cases)
    if (!run_case(w, offset, c, stream.s, seed + 7 * static_cast<uint64_t>(c.rows))) return;
}

void report(const char* test) {
  std::printf("  %s: worst |error| / tolerance = %.3f\n", test, g_worst_ratio);
  g_worst_ratio = 0;
}

}  // namespace

// The NemotronH-Nano-9B-v2 projections (out x in), bf16 as in the checkpoint.
TEST(cuda_linear_nemotron_nano_shapes) {
  if (!cuda_device_or_skip()) return;
  const struct {
    const char* name;
    int64_t n, k;
  } shapes[] = {{"mamba in_proj", 22656, 4480}, {"mamba out_proj", 4480, 10240}, {"mlp up", 15680, 4480},
                {"mlp down", 4480, 15680},      {"attn q", 5120, 4480},          {"attn k", 1024, 4480}};
  uint64_t seed = 100;
  for (const auto& s : shapes) {
    std::printf("  %s %lldx%lld\n", s.name, static_cast<long long>(s.n), static_cast<long long>(s.k));
    check_weights(DType::BF16, s.n, s.k, 0, standard_rows(), seed += 1000);
  }
  report("nano shapes");
}

// The 9B projections take the wgmma GEMM on an H100/H200 built with sm_90a
// code, else the mma.sync GEMM (K % 8 == 0, aligned W); each tensor-core GEMM
// (NEMOTRON_GEMM=mma, =wmma: the one odd K uses) runs the same shapes too.
TEST(cuda_linear_nemotron_nano_shapes_every_gemm) {
  if (!cuda_device_or_skip()) return;
  const Weights probe(DType::BF16, 64, 4480, 0, 1);
  const std::string auto_kernel = cuda::linear_kernel_name(512, probe.dev_m, nullptr);
  std::printf("  default GEMM at 512 rows: %s\n", auto_kernel.c_str());
  CHECK(auto_kernel == "wgmma_gemm_bf16" || auto_kernel == "mma_gemm_bf16");
  const std::vector<RowCase> rows = {{17, 0, 2, false}, {100, 3, 0, true}, {512, 0, 0, true}};
  for (const char* gemm : {"auto", "mma", "wmma"}) {
    setenv("NEMOTRON_GEMM", gemm, 1);
    const std::string kernel = cuda::linear_kernel_name(512, probe.dev_m, nullptr);
    CHECK(std::string(gemm) == "auto" || kernel == std::string(gemm) + "_gemm_bf16");
    std::printf("  NEMOTRON_GEMM=%s: %s\n", gemm, kernel.c_str());
    check_weights(DType::BF16, 22656, 4480, 0, rows, 9100);  // mamba in_proj
    check_weights(DType::BF16, 4480, 15680, 0, rows, 9200);  // mlp down (split-K at 17 and 100 rows)
  }
  unsetenv("NEMOTRON_GEMM");
  report("nano shapes, every GEMM");
}

// lm_head: 131072 x 4480 (1.2 GB of bf16), decoded one token at a time.
TEST(cuda_linear_lm_head_decode) {
  if (!cuda_device_or_skip()) return;
  check_weights(DType::BF16, 131072, 4480, 0, {{1, 0, 0, false}, {2, 4, 3, true}}, 77);
  report("lm_head");
}

// Odd shapes: k tails of the 8-wide vectors and the 32-wide k-tiles, partial
// 128x128 tiles, misaligned weights (2-byte offset -> scalar loads) and x
// (ldx % 4 != 0), for every row regime. {40, 3, ...} gives ldx % 4 == 0 for
// k = 13, 33, 513, 1, 35, 70: the tensor-core path's float4 x loads with k ending inside
// a float4 (the per-element tail branch after vector loads in the same row).
TEST(cuda_linear_odd_shapes_bf16) {
  if (!cuda_device_or_skip()) return;
  const std::vector<RowCase> rows = {{1, 0, 0, true},    {3, 1, 0, false},  {7, 0, 5, true},
                                     {16, 3, 3, true},   {17, 1, 1, false}, {100, 0, 0, true},
                                     {512, 2, 0, false}, {129, 4, 4, true}, {40, 3, 0, true}};
  // k = 35 and 70 end inside a float4 with 3 and 2 elements left (k % 4 of 3 and 2; the emulator's linear
  // test needed them to catch an off-by-one planted in the GEMM's k tail).
  const int64_t shapes[][2] = {{7, 13}, {300, 513}, {1, 1}, {129, 33}, {128, 32}, {255, 8}, {64, 4488}, {70, 35}, {33, 70}};
  uint64_t seed = 5000;
  for (const auto& s : shapes)
    for (size_t offset : {size_t(0), size_t(2)}) check_weights(DType::BF16, s[0], s[1], offset, rows, seed += 10);
  report("odd bf16");
}

// f16 and f32 weights (GEMV and the exact SIMT GEMM), aligned and not.
TEST(cuda_linear_f16_f32_weights) {
  if (!cuda_device_or_skip()) return;
  const std::vector<RowCase> rows = {{1, 0, 0, true}, {5, 3, 2, false}, {16, 0, 0, false}, {17, 4, 1, true},
                                     {100, 1, 0, true}};
  const int64_t shapes[][2] = {{7, 13}, {300, 513}, {65, 4480}};
  uint64_t seed = 9000;
  for (DType dtype : {DType::F16, DType::F32})
    for (const auto& s : shapes)
      for (size_t offset : {size_t(0), dtype == DType::F32 ? size_t(4) : size_t(2)})
        check_weights(dtype, s[0], s[1], offset, rows, seed += 10);
  report("f16/f32");
}

// in = 0: the sum is empty, so out = bias (or 0); no weight is read.
TEST(cuda_linear_empty_inner_dimension) {
  if (!cuda_device_or_skip()) return;
  Stream stream;
  const float bias[3] = {1, 2, 3};
  for (int64_t rows : {1, 40}) {
    DevBuf db(sizeof bias), dout(static_cast<size_t>(rows) * 3 * 4), dx(4);
    cuda::check(cudaMemcpy(db.p, bias, sizeof bias, cudaMemcpyHostToDevice), "upload");
    cuda::check(cudaMemset(dout.p, 0xFF, static_cast<size_t>(rows) * 3 * 4), "poison");
    cuda::check(cudaDeviceSynchronize(), "sync before linear");  // legacy-stream work vs the non-blocking stream
    const Matrix w{nullptr, DType::BF16, 3, 0};
    cuda::linear(static_cast<const float*>(dx.p), rows, 0, w, static_cast<const float*>(db.p),
                 static_cast<float*>(dout.p), 3, stream.s);
    cuda::check(cudaStreamSynchronize(stream.s), "sync");
    std::vector<float> out(static_cast<size_t>(rows) * 3);
    cuda::check(cudaMemcpy(out.data(), dout.p, out.size() * 4, cudaMemcpyDeviceToHost), "download");
    for (int64_t r = 0; r < rows; ++r)
      for (int j = 0; j < 3; ++j) CHECK(out[r * 3 + j] == bias[j]);
  }
}

TEST(cuda_check_maps_errors) {
  // Needs no device: check only formats the error.
  CHECK_THROWS_WITH(cuda::check(cudaErrorMemoryAllocation, "alloc weights"), "alloc weights: ");
  for (cudaError_t err : {cudaErrorMemoryAllocation, cudaErrorInvalidValue}) {
    bool threw = false;
    try {
      cuda::check(err, "x");
    } catch (const Error& e) {
      threw = true;
      CHECK(e.code() == (err == cudaErrorMemoryAllocation ? ErrorCode::OutOfMemory : ErrorCode::Internal));
    }
    CHECK(threw);
  }
  cuda::check(cudaSuccess, "nothing");  // must not throw
}

// The benchmark hook runs and reports a plausible bandwidth for decode (the
// numbers are informational; the bench binary records them).
TEST(cuda_linear_bench_hook) {
  if (!cuda_device_or_skip()) return;
  const double ms1 = cuda::cuda_linear_time_ms(1, 22656, 4480, 20);
  const double ms512 = cuda::cuda_linear_time_ms(512, 22656, 4480, 10);
  CHECK(ms1 > 0);
  CHECK(ms512 > 0);
  const double bytes = 22656.0 * 4480 * 2;
  std::printf("  in_proj rows=1: %.3f ms (%.0f GB/s of weights); rows=512: %.3f ms (%.1f TFLOP/s)\n", ms1,
              bytes / ms1 / 1e6, ms512, 2.0 * 512 * 22656 * 4480 / ms512 / 1e9);
}
