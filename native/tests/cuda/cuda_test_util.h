// Shared by the CUDA kernel tests: the device check that turns "no driver/no
// GPU" into a reported skip, and a check of CUDA runtime calls that fails the
// test (not the process) with the call and the CUDA error.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <string>
#include <vector>

#include "../test_framework.h"

namespace nemotron_test {

// True when a CUDA device can run kernels; otherwise records why the test is skipped.
inline bool cuda_device_or_skip() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear it, so later calls in this process start clean
    skip(std::string("no CUDA device: ") + cudaGetErrorString(err));
    return false;
  }
  if (count == 0) {
    skip("no CUDA device: cudaGetDeviceCount found 0 devices");
    return false;
  }
  return true;
}

inline void cuda_require(cudaError_t err, const char* call, const char* file, int line) {
  if (err == cudaSuccess) return;
  record_failure(file, line, std::string(call) + ": " + cudaGetErrorString(err));
  throw RequireFailed{};
}

}  // namespace nemotron_test

#define CU(call) nemotron_test::cuda_require((call), #call, __FILE__, __LINE__)
#define CUDA_REQUIRE(call) CU(call)

namespace nemotron_test {

// Raw device bytes; `at(off)` gives offset views (to reach the scalar paths).
struct DevMem {
  void* p = nullptr;
  size_t bytes = 0;
  explicit DevMem(size_t b) : bytes(b) { CU(cudaMalloc(&p, b ? b : 1)); }
  template <typename T>
  explicit DevMem(const std::vector<T>& host) : DevMem(host.size() * sizeof(T)) {
    put(0, host.data(), bytes);
  }
  ~DevMem() { cudaFree(p); }
  DevMem(const DevMem&) = delete;
  DevMem& operator=(const DevMem&) = delete;
  template <typename T>
  T* at(size_t elem_off = 0) const {
    return reinterpret_cast<T*>(static_cast<char*>(p)) + elem_off;
  }
  void put(size_t byte_off, const void* src, size_t n) {
    CU(cudaMemcpy(static_cast<char*>(p) + byte_off, src, n, cudaMemcpyHostToDevice));
  }
  void get(size_t byte_off, void* dst, size_t n) const {
    CU(cudaMemcpy(dst, static_cast<const char*>(p) + byte_off, n, cudaMemcpyDeviceToHost));
  }
  template <typename T>
  std::vector<T> host() const {
    std::vector<T> h(bytes / sizeof(T));
    get(0, h.data(), h.size() * sizeof(T));
    return h;
  }
};

}  // namespace nemotron_test
