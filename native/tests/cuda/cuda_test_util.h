// Shared by the CUDA kernel tests: the device check that turns "no driver/no
// GPU" into a reported skip, and a check of CUDA runtime calls that fails the
// test (not the process) with the call and the CUDA error.
#pragma once
#include <cuda_runtime.h>

#include <string>

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
