// Helpers shared by the emulator test drivers (emu_test_*.cpp): device
// buffers, the emulated devices, error measures, and the NEMOTRON_EMU_FULL switch.
// The drivers use the repo's test framework (TEST, CHECK, REQUIRE) and compare
// each kernel with its CPU twin in native/backend/cpu, as the GPU tests in
// native/tests/cuda do, at shapes small enough for the emulator.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../test_framework.h"
#include "../test_util.h"
#include "common/thread_pool.h"

namespace emu_test {

using nemotron_test::random_vec;
using nemotron_test::record_failure;

// NEMOTRON_EMU_FULL=1 adds the 9B-shaped cases (minutes instead of seconds).
inline bool full() {
  const char* v = std::getenv("NEMOTRON_EMU_FULL");
  return v && *v && std::strcmp(v, "0") != 0;
}

inline nemotron::ThreadPool& pool() {
  static nemotron::ThreadPool p(2);
  return p;
}

// Emulated devices the tests switch between (emu::configure_device).
enum Device : int {
  kH100 = 0,    // 132 SMs, sm_90: the default
  kOneSm = 1,   // 1 SM: attention never splits its keys
  kTuring = 2,  // sm_75: no tf32/bf16 tensor cores (recurrent scan, SIMT GEMM)
  kManySm = 3,  // 1000 SMs: attention splits up to its cap of 256
  kA100 = 4,    // 108 SMs, sm_80, 163 KB shared memory: no wgmma (the mma.sync GEMM)
};

inline void setup_devices() {
  static bool done = false;
  if (done) return;
  done = true;
  emu::DeviceConfig one;
  one.sms = 1;
  emu::configure_device(kOneSm, one);
  emu::DeviceConfig turing;
  turing.sms = 40;
  turing.cc_major = 7;
  turing.cc_minor = 5;
  turing.smem_optin = 65536;
  emu::configure_device(kTuring, turing);
  emu::DeviceConfig many;
  many.sms = 1000;
  emu::configure_device(kManySm, many);
  emu::DeviceConfig a100;
  a100.sms = 108;
  a100.cc_major = 8;
  a100.cc_minor = 0;
  a100.smem_optin = 166912;
  emu::configure_device(kA100, a100);
}

// Makes `device` current for the scope.
struct UseDevice {
  int prev = 0;
  explicit UseDevice(int device) {
    setup_devices();
    cudaGetDevice(&prev);
    REQUIRE(cudaSetDevice(device) == cudaSuccess);
  }
  ~UseDevice() { cudaSetDevice(prev); }
};

// Sets a cu_to_cpp.py --tunable constant for the scope.
struct UseTunable {
  const char* name;
  long long prev;
  UseTunable(const char* n, long long v) : name(n), prev(emu::set_tunable(n, v)) {}
  ~UseTunable() { emu::set_tunable(name, prev); }
};

// `n` elements of device memory; fresh emulated memory is 0xff (NaN) poison,
// so an output the kernel never writes fails the comparison.
template <class T>
struct DevBuf {
  T* p = nullptr;
  size_t n = 0;
  explicit DevBuf(size_t count) : n(count) { REQUIRE(cudaMalloc(&p, sizeof(T) * (n ? n : 1)) == cudaSuccess); }
  explicit DevBuf(const std::vector<T>& h) : DevBuf(h.size()) { upload(h); }
  ~DevBuf() { cudaFree(p); }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  void upload(const std::vector<T>& h) {
    REQUIRE(h.size() == n);
    if (n) REQUIRE(cudaMemcpy(p, h.data(), sizeof(T) * n, cudaMemcpyHostToDevice) == cudaSuccess);
  }
  std::vector<T> host() const {
    std::vector<T> h(n);
    if (n) REQUIRE(cudaMemcpy(h.data(), p, sizeof(T) * n, cudaMemcpyDeviceToHost) == cudaSuccess);
    return h;
  }
};

// The launch errors a GPU would report surface here (the kernels' own checks
// throw on them already; this catches any a caller forgot).
inline void require_no_launch_error() { REQUIRE(cudaGetLastError() == cudaSuccess); }

// max |a-b| / (1+|b|); infinity if any value is not finite (NaN poison left in place).
inline double rel_err(const float* a, const float* b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i])) return INFINITY;
    m = std::max(m, std::fabs(double(a[i]) - b[i]) / (1.0 + std::fabs(double(b[i]))));
  }
  return m;
}
inline double rel_err(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  return rel_err(a.data(), b.data(), a.size());
}

// sqrt(mean (a-b)^2) / sqrt(1 + mean b^2); infinity if any value is not finite.
inline double rms_err(const std::vector<float>& a, const std::vector<float>& b) {
  double e = 0, m = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i])) return INFINITY;
    e += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    m += double(b[i]) * b[i];
  }
  return b.empty() ? 0.0 : std::sqrt(e / double(b.size())) / std::sqrt(1.0 + m / double(b.size()));
}

// Records a failure naming the case unless err <= tol (NaN fails).
inline bool expect_le(double err, double tol, const std::string& what, const char* file, int line) {
  if (err <= tol) return true;
  char buf[64];
  std::snprintf(buf, sizeof buf, ": error %.3g > %.3g", err, tol);
  record_failure(file, line, what + buf);
  return false;
}
#define EXPECT_LE(err, tol, what) ::emu_test::expect_le((err), (tol), (what), __FILE__, __LINE__)

inline std::string join(const std::vector<int64_t>& v) {
  std::string s = "{";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s + "}";
}

using nemotron_test::maxn;
using nemotron_test::prefix_rows;
using nemotron_test::total;

}  // namespace emu_test
