// Emulated linear.cu / linear_kernels.cuh against the CPU twin's reference
// cpu_linear_reference (native/backend/cpu/linear.cpp, double precision):
//   gemv_kernel    rows <= 16, every accumulator count (1, 2, 4, 8, 16) with
//                  masked rows, 16-byte weight loads (__ldcs) or the scalar path
//                  (weights misaligned by one element, odd k), x aligned or not;
//   wgmma_gemm_bf16 rows > 16, bf16 W, k % 8 == 0, W 16-byte aligned, on the
//                  emulated H100 (sm_90): x rounded to bf16 once, cp.async into
//                  128-byte-swizzled stages, wgmma m64n256k16 (emu_ptx_sm90.h);
//   mma_gemm_bf16  the same shapes on an emulated A100 (or NEMOTRON_GEMM=mma):
//                  4-stage cp.async pipeline, ldmatrix + mma.sync m16n8k16
//                  (emu_ptx_sm80.h), fewer k-tiles than stages and more,
//                  partial 128x128 tiles, odd widths in the epilogue;
//   wmma_gemm_bf16 rows > 16, bf16 W otherwise (and NEMOTRON_GEMM=wmma): bf16
//                  WMMA m16n16k16, double-buffered shared tiles, k tails;
//   simt_gemm      f16/f32 W, and bf16 W on an sm_75 device (no tensor cores).
// All outputs must be written, out's padding columns left alone (poison).
//
// Tolerance per element, with S1 = sum_k |x_k w_k|: 2e-5 * S1 (+ 1e-6 |bias|),
// fp32 rounding of products and partial sums (as in native/tests/cuda/
// test_cuda_linear.cpp). The tensor-core path rounds x to bf16 on load; the
// emulator does exactly that (round to nearest even), so its reference takes
// x rounded the same way and keeps the fp32 bound: a sharper check than on a
// GPU, where only a statistical bound covers the rounding.
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "backend/cpu/linear.h"
#include "backend/cuda/cuda_ops.h"
#include "common/dtype.h"
#include "emu_test_util.h"

using namespace nemotron;
using namespace emu_test;

namespace {

// W [n, k] of `dtype` on host and device; on the device `offset` bytes past an
// aligned allocation (2, or 4 for f32, breaks the 16-byte loads).
struct Weights {
  std::vector<uint8_t> host;
  std::unique_ptr<DevBuf<uint8_t>> dev;
  Matrix host_m, dev_m;
  Weights(DType dtype, int64_t n, int64_t k, size_t offset, uint32_t seed) {
    const size_t es = dtype_size(dtype), count = static_cast<size_t>(n * k);
    host.resize(count * es);
    const std::vector<float> v = random_vec(count, seed, -0.05f, 0.05f);
    for (size_t i = 0; i < count; ++i) {
      if (dtype == DType::F32) {
        std::memcpy(&host[4 * i], &v[i], 4);
      } else {
        const uint16_t h = dtype == DType::BF16 ? f32_to_bf16(v[i]) : f32_to_f16(v[i]);
        std::memcpy(&host[2 * i], &h, 2);
      }
    }
    dev.reset(new DevBuf<uint8_t>(host.size() + offset));
    if (!host.empty())
      REQUIRE(cudaMemcpy(dev->p + offset, host.data(), host.size(), cudaMemcpyHostToDevice) == cudaSuccess);
    host_m = Matrix{host.data(), dtype, n, k};
    dev_m = Matrix{dev->p + offset, dtype, n, k};
  }
};

struct RowCase {
  int64_t rows;
  int64_t ldx_pad, ldo_pad;  // ldx_pad % 4 != 0 breaks x's 16-byte alignment per row
  bool bias;
};

bool run_case(const Weights& w, size_t offset, const RowCase& c, uint32_t seed, bool tensor_cores) {
  const int64_t n = w.host_m.rows, k = w.host_m.cols, rows = c.rows;
  const int64_t ldx = k + c.ldx_pad, ldo = n + c.ldo_pad;
  const std::string what = std::string(dtype_name(w.host_m.dtype)) + " out=" + std::to_string(n) + " in=" +
                           std::to_string(k) + " rows=" + std::to_string(rows) + " ldx+" + std::to_string(c.ldx_pad) +
                           " ldo+" + std::to_string(c.ldo_pad) + (c.bias ? " bias" : "") + " woff=" +
                           std::to_string(offset);
  // x padding is NaN: a kernel reading past k poisons its results.
  std::vector<float> x = random_vec(rows * ldx, seed);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = k; i < ldx; ++i) x[r * ldx + i] = std::nanf("");
  const std::vector<float> bias = random_vec(n, seed + 1);
  DevBuf<float> dx(x), db(bias), dout(rows * ldo);
  cuda::linear(dx.p, rows, ldx, w.dev_m, c.bias ? db.p : nullptr, dout.p, ldo, nullptr);
  require_no_launch_error();
  const std::vector<float> out = dout.host();

  // Reference: x as the kernel sees it (bf16-rounded on the tensor-core path).
  std::vector<float> xr(rows * k);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < k; ++i) {
      const float v = x[r * ldx + i];
      xr[r * k + i] = tensor_cores ? bf16_to_f32(f32_to_bf16(v)) : v;
    }
  std::vector<float> ref(rows * n);
  cpu_linear_reference(xr.data(), rows, k, w.host_m, c.bias ? bias.data() : nullptr, ref.data(), n);
  std::vector<float> wf(n * k);
  convert_to_f32(w.host.data(), w.host_m.dtype, wf.size(), wf.data());

  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = n; j < ldo; ++j) {
      uint32_t bits;
      std::memcpy(&bits, &out[r * ldo + j], 4);
      if (bits != 0xFFFFFFFFu) {
        record_failure(__FILE__, __LINE__, what + ": wrote into out's padding at row " + std::to_string(r));
        return false;
      }
    }
    for (int64_t j = 0; j < n; ++j) {
      double s1 = 0;
      for (int64_t q = 0; q < k; ++q) s1 += std::fabs(double(xr[r * k + q]) * wf[j * k + q]);
      const double tol = 2e-5 * s1 + (c.bias ? 1e-6 * std::fabs(bias[j]) : 0.0) + 1e-30;
      const double got = out[r * ldo + j], want = ref[r * n + j];
      if (!(std::fabs(got - want) <= tol)) {
        char buf[160];
        std::snprintf(buf, sizeof buf, ": out[%lld,%lld] = %.7g, reference %.7g, tolerance %.3g",
                      static_cast<long long>(r), static_cast<long long>(j), got, want, tol);
        record_failure(__FILE__, __LINE__, what + buf);
        return false;
      }
    }
  }
  return true;
}

void check_weights(DType dtype, int64_t n, int64_t k, size_t offset, const std::vector<RowCase>& cases, uint32_t seed) {
  int dev = 0, major = 0;
  cudaGetDevice(&dev);
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
  const Weights w(dtype, n, k, offset, seed);
  for (const RowCase& c : cases) {
    const bool tc = dtype == DType::BF16 && c.rows > 16 && major >= 8;
    if (!run_case(w, offset, c, seed + 7 * static_cast<uint32_t>(c.rows), tc)) return;
  }
}

const std::vector<RowCase> kGemvRows = {{1, 0, 0, true}, {2, 4, 0, false}, {3, 1, 0, false},
                                        {7, 0, 5, true}, {8, 4, 1, true},  {16, 3, 3, true}};
const std::vector<RowCase> kGemmRows = {{17, 1, 1, false}, {40, 3, 0, true}, {129, 4, 4, true}};

}  // namespace

TEST(emu_linear_gemv_matches_cpu) {
  // k tails of the 8-wide (bf16/f16) and 4-wide (f32) vectors, misaligned W, odd and 9B-wide k
  const int64_t shapes[][2] = {{7, 13}, {40, 513}, {1, 1}, {9, 33}, {12, 4488}, {5, 35}, {6, 70}};
  uint32_t seed = 100;
  for (DType dt : {DType::BF16, DType::F16, DType::F32})
    for (const auto& s : shapes)
      for (size_t off : {size_t(0), dt == DType::F32 ? size_t(4) : size_t(2)})
        check_weights(dt, s[0], s[1], off, kGemvRows, seed += 10);
}

// The bf16 tensor-core GEMMs on the same shapes: partial block tiles, k tails
// of the k-tiles and of the 8-wide loads (k % 4 = 1, 2, 3), k-tile counts below,
// at and above the pipelines' depth (k = 8, 96, 136, 4488), misaligned W and x.
// Each call must take the kernel its shape allows: `kernel` ("wgmma_gemm_bf16",
// "mma_gemm_bf16" or "wmma_gemm_bf16") where K % 8 == 0 and W is aligned, the
// WMMA GEMM elsewhere. On a many-SM device the wgmma/mma GEMMs split K wherever
// their tiles leave SMs idle and K has 16+ k-tiles (mma, 32-wide k-tiles: k =
// 520 gives two splits, the second shorter; 1024; 4488: 16 splits. wgmma,
// 64-wide: 1024 and 4488); on one SM they never split.
void check_tensor_core_gemms(const std::string& kernel, int device, const char* gemm_env = nullptr) {
  UseDevice use(device);
  if (gemm_env) setenv("NEMOTRON_GEMM", gemm_env, 1);
  const int64_t shapes[][2] = {{7, 13},  {300, 513}, {129, 33}, {128, 32}, {255, 8},  {64, 4488},
                               {50, 35}, {33, 70},   {9, 96},   {130, 136}, {70, 520}, {200, 1024}};
  const int64_t k_tile = kernel == "wgmma_gemm_bf16" ? 64 : 32;
  uint32_t seed = 2000 + 100 * static_cast<uint32_t>(device) + static_cast<uint32_t>(kernel.size());
  for (const auto& s : shapes)
    for (size_t off : {size_t(0), size_t(2)}) {
      const Weights w(DType::BF16, s[0], s[1], off, seed += 10);
      const bool fast = kernel != "wmma_gemm_bf16" && s[1] % 8 == 0 && off == 0;
      const std::string want = fast ? kernel : "wmma_gemm_bf16";
      const std::string got = cuda::linear_kernel_name(17, w.dev_m, nullptr);
      const bool split = got.find(" split-k") != std::string::npos;
      if (split != (fast && device != kOneSm && s[1] >= 16 * k_tile)) {
        record_failure(__FILE__, __LINE__, "k=" + std::to_string(s[1]) + " on device " + std::to_string(device) +
                                               ": split-K " + (split ? "used" : "not used"));
        break;
      }
      if (got.rfind(want, 0) != 0) {
        record_failure(__FILE__, __LINE__, "k=" + std::to_string(s[1]) + " woff=" + std::to_string(off) + " took " +
                                               got + ", expected " + want);
        break;
      }
      bool ok = true;
      for (const RowCase& c : kGemmRows) ok = ok && run_case(w, off, c, seed + 7 * static_cast<uint32_t>(c.rows), true);
      if (!ok) break;
    }
  check_weights(DType::BF16, 130, 72, 0, {{300, 0, 0, true}}, 2500);  // three row tiles
  if (gemm_env) unsetenv("NEMOTRON_GEMM");
}

TEST(emu_linear_bf16_wgmma_gemm_matches_cpu) { check_tensor_core_gemms("wgmma_gemm_bf16", kH100); }
TEST(emu_linear_bf16_wgmma_gemm_unsplit_matches_cpu) { check_tensor_core_gemms("wgmma_gemm_bf16", kOneSm); }
TEST(emu_linear_bf16_mma_gemm_matches_cpu) { check_tensor_core_gemms("mma_gemm_bf16", kA100); }
TEST(emu_linear_bf16_mma_gemm_unsplit_matches_cpu) { check_tensor_core_gemms("mma_gemm_bf16", kOneSm, "mma"); }
TEST(emu_linear_bf16_wmma_gemm_matches_cpu) { check_tensor_core_gemms("wmma_gemm_bf16", kH100, "wmma"); }

TEST(emu_linear_gemm_choice) {
  // What decides the GEMM besides the shape: the GEMV below 17 rows, the
  // device (wgmma on compute capability 9.0 only), NEMOTRON_GEMM (a bad value,
  // or wgmma where it cannot run, is a clear error), and a captured stream (a
  // CUDA graph must not allocate x's bf16 copy from the pool) takes the WMMA kernel.
  const Weights w(DType::BF16, 16, 64, 0, 2900);
  CHECK(std::string(cuda::linear_kernel_name(16, w.dev_m, nullptr)) == "gemv");
  CHECK(std::string(cuda::linear_kernel_name(40, w.dev_m, nullptr)) == "wgmma_gemm_bf16");
  setenv("NEMOTRON_GEMM", "cublas", 1);
  CHECK_THROWS_WITH(cuda::linear_kernel_name(40, w.dev_m, nullptr), "NEMOTRON_GEMM must be auto, wgmma, mma or wmma");
  setenv("NEMOTRON_GEMM", "auto", 1);
  CHECK(std::string(cuda::linear_kernel_name(40, w.dev_m, nullptr)) == "wgmma_gemm_bf16");
  setenv("NEMOTRON_GEMM", "mma", 1);
  CHECK(std::string(cuda::linear_kernel_name(40, w.dev_m, nullptr)) == "mma_gemm_bf16");
  {
    UseDevice a100(kA100);
    setenv("NEMOTRON_GEMM", "wgmma", 1);
    CHECK_THROWS_WITH(cuda::linear_kernel_name(40, w.dev_m, nullptr), "NEMOTRON_GEMM=wgmma needs a compute capability 9.0");
    unsetenv("NEMOTRON_GEMM");
    CHECK(std::string(cuda::linear_kernel_name(40, w.dev_m, nullptr)) == "mma_gemm_bf16");
  }
  unsetenv("NEMOTRON_GEMM");
  cudaStream_t s = nullptr;
  REQUIRE(cudaStreamCreate(&s) == cudaSuccess);
  REQUIRE(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal) == cudaSuccess);
  const std::string captured = cuda::linear_kernel_name(40, w.dev_m, s);
  const std::string captured_ws = cuda::linear_kernel_name(40, w.dev_m, s, true);
  cudaGraph_t g = nullptr;
  REQUIRE(cudaStreamEndCapture(s, &g) == cudaSuccess);
  if (g) cudaGraphDestroy(g);
  cudaStreamDestroy(s);
  CHECK(captured == "wmma_gemm_bf16");
  CHECK(captured_ws == "wgmma_gemm_bf16");  // with the caller's workspace (the CUDA backend's) a graph may use it
  // Workspace sizes: 0 where no wgmma/mma GEMM runs; enough for x's bf16 copy otherwise.
  CHECK(cuda::linear_workspace_bytes(16, w.dev_m) == 0);
  CHECK(cuda::linear_workspace_bytes(40, w.dev_m) >= size_t(40 * 64 * 2));
  CHECK(cuda::linear_workspace_bytes(40, Matrix{nullptr, DType::BF16, 0, 64}) == size_t(40 * 64 * 2));  // no features
}

TEST(emu_linear_tc_gemm_in_callers_workspace) {
  // A split-K shape run in a workspace the caller sized by linear_workspace_bytes, from inside a graph
  // capture, by both kernels that use one; a workspace one byte short is refused.
  const int64_t n = 130, k = 1024, rows = 40;
  const Weights w(DType::BF16, n, k, 0, 2950);
  for (const char* gemm : {"wgmma", "mma"}) {
    setenv("NEMOTRON_GEMM", gemm, 1);
    REQUIRE(std::string(cuda::linear_kernel_name(rows, w.dev_m, nullptr)) == std::string(gemm) + "_gemm_bf16 split-k");
    const size_t bytes = cuda::linear_workspace_bytes(rows, w.dev_m);
    DevBuf<uint8_t> ws(bytes);
    const std::vector<float> x = random_vec(rows * k, 2951);
    DevBuf<float> dx(x), dout(rows * n), dref(rows * n);
    cuda::linear(dx.p, rows, k, w.dev_m, nullptr, dref.p, n, nullptr);  // pool workspace
    cudaStream_t s = nullptr;
    REQUIRE(cudaStreamCreate(&s) == cudaSuccess);
    REQUIRE(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal) == cudaSuccess);
    cuda::linear(dx.p, rows, k, w.dev_m, nullptr, dout.p, n, s, ws.p, bytes);
    cudaGraph_t g = nullptr;
    REQUIRE(cudaStreamEndCapture(s, &g) == cudaSuccess);
    cudaGraphExec_t exec = nullptr;
    REQUIRE(cudaGraphInstantiate(&exec, g, 0) == cudaSuccess);
    REQUIRE(cudaGraphLaunch(exec, s) == cudaSuccess);
    REQUIRE(cudaStreamSynchronize(s) == cudaSuccess);
    const std::vector<float> out = dout.host(), ref = dref.host();
    for (size_t i = 0; i < out.size(); ++i)
      if (out[i] != ref[i]) {
        record_failure(__FILE__, __LINE__, std::string(gemm) + ": graph-launched GEMM differs from the direct call at " +
                                               std::to_string(i));
        break;
      }
    CHECK_THROWS_WITH(cuda::linear(dx.p, rows, k, w.dev_m, nullptr, dout.p, n, nullptr, ws.p, bytes - 1),
                      "workspace given is too small");
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(g);
    cudaStreamDestroy(s);
  }
  unsetenv("NEMOTRON_GEMM");
}

TEST(emu_linear_simt_gemm_matches_cpu) {
  uint32_t seed = 3000;
  for (DType dt : {DType::F16, DType::F32})
    for (size_t off : {size_t(0), dt == DType::F32 ? size_t(4) : size_t(2)}) {
      check_weights(dt, 7, 13, off, kGemmRows, seed += 10);
      check_weights(dt, 70, 130, off, {{17, 0, 0, true}, {100, 1, 0, false}}, seed += 10);
    }
  UseDevice turing(kTuring);  // bf16 weights without tensor cores take the SIMT GEMM too
  check_weights(DType::BF16, 70, 130, 2, {{40, 3, 1, true}}, seed += 10);
}

TEST(emu_linear_empty_inner_dimension) {
  // k = 0: out = bias (or 0); no weight is read (GEMV and GEMM regimes)
  const std::vector<float> bias = {1, 2, 3};
  for (int64_t rows : {1, 40}) {
    DevBuf<float> db(bias), dout(rows * 3), dx(1);
    cuda::linear(dx.p, rows, 0, Matrix{nullptr, DType::BF16, 3, 0}, db.p, dout.p, 3, nullptr);
    require_no_launch_error();
    const std::vector<float> out = dout.host();
    for (int64_t r = 0; r < rows; ++r)
      for (int j = 0; j < 3; ++j) CHECK(out[r * 3 + j] == bias[j]);
  }
}

TEST(emu_linear_9b_shapes) {
  if (!full()) {
    nemotron_test::skip("9B projection shapes need NEMOTRON_EMU_FULL=1");
    return;
  }
  check_weights(DType::BF16, 1024, 4480, 0, {{1, 0, 0, false}, {16, 0, 0, true}, {100, 3, 0, true}}, 4000);  // attn k
  check_weights(DType::BF16, 4480, 1024, 0, {{3, 0, 0, true}, {130, 0, 0, false}}, 4100);
}

TEST(emu_linear_workspace_bound_is_the_most_any_row_count_needs) {
  // The memory plan counts linear_workspace_bound(max_rows, w) for the GEMMs' workspace (x's bf16 copy plus the
  // split-K partials, which peak at row counts that leave SMs idle, not at max_rows): it must equal the largest
  // linear_workspace_bytes over every row count up to max_rows, here found by trying each one, at the 9B
  // projections' shapes on devices with few and many SMs and for each GEMM.
  const int64_t shapes[][2] = {{22656, 4480}, {4480, 10240}, {15680, 4480}, {4480, 15680}, {1024, 4480},
                               {131072, 4480}, {130, 1024}};
  struct Case {
    int device;
    const char* gemm;  // NEMOTRON_GEMM
  };
  for (const Case c : {Case{kH100, "auto"}, Case{kA100, "auto"}, Case{kH100, "mma"}, Case{kOneSm, "auto"},
                       Case{kManySm, "auto"}, Case{kH100, "wmma"}}) {
    UseDevice use(c.device);
    setenv("NEMOTRON_GEMM", c.gemm, 1);
    for (const auto& s : shapes) {
      const Matrix w{nullptr, DType::BF16, s[0], s[1]};
      size_t most = 0, most_partials = 0;
      for (int64_t rows = 1; rows <= 1100; ++rows) {
        const size_t bytes = cuda::linear_workspace_bytes(rows, w);
        most = std::max(most, bytes);
        most_partials = std::max(most_partials, bytes - std::min(bytes, (size_t(rows * s[1]) * 2 + 255) / 256 * 256));
        if (rows == 1 || rows == 16 || rows == 17 || rows == 300 || rows == 1100) {
          const size_t bound = cuda::linear_workspace_bound(rows, w);
          if (bound != most)
            record_failure(__FILE__, __LINE__, std::string(c.gemm) + " on device " + std::to_string(c.device) + ", " +
                                                   std::to_string(s[0]) + "x" + std::to_string(s[1]) + " up to " +
                                                   std::to_string(rows) + " rows: bound " + std::to_string(bound) +
                                                   ", most needed " + std::to_string(most));
        }
      }
      // The split-K partials do show up (where split-K can happen at all), so the search above is not vacuous.
      if (std::strcmp(c.gemm, "wmma") != 0 && c.device != kOneSm && s[0] == 4480) CHECK(most_partials > 0);
    }
  }
  unsetenv("NEMOTRON_GEMM");
  CHECK(cuda::linear_workspace_bound(1100, Matrix{nullptr, DType::F16, 4480, 4480}) == 0);  // SIMT GEMM: none
}
