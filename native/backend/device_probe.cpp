#include "backend/device_probe.h"

#ifdef NEMOTRON_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace nemotron {
namespace {

CudaStatus probe() {
  CudaStatus s;
#ifndef NEMOTRON_WITH_CUDA
  s.reason = "this binary was built without the CUDA backend (no CUDA compiler at build time)";
#else
  s.compiled = true;
#ifdef NEMOTRON_CUDA_ARCHS
  s.archs = NEMOTRON_CUDA_ARCHS;
#endif
  cudaDriverGetVersion(&s.driver_version);
  cudaRuntimeGetVersion(&s.runtime_version);
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    if (err == cudaErrorNoDevice) s.reason = "no CUDA device found";
    else if (err == cudaErrorInsufficientDriver)
      s.reason = s.driver_version == 0 ? "no NVIDIA driver is installed"
                                       : "the NVIDIA driver (" + std::to_string(s.driver_version) +
                                             ") is older than this binary's CUDA runtime (" +
                                             std::to_string(s.runtime_version) + "): update the driver";
    else s.reason = std::string("CUDA is not usable: ") + cudaGetErrorString(err);
    cudaGetLastError();  // clear the sticky error so later calls start clean
    return s;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, i) != cudaSuccess) continue;
    CudaDeviceInfo d;
    d.index = i;
    d.name = p.name;
    d.major = p.major;
    d.minor = p.minor;
    d.total_bytes = p.totalGlobalMem;
    d.multiprocessors = p.multiProcessorCount;
    size_t free_b = 0, total_b = 0;
    if (cudaSetDevice(i) == cudaSuccess && cudaMemGetInfo(&free_b, &total_b) == cudaSuccess) d.free_bytes = free_b;
    s.devices.push_back(d);
  }
  bool any_supported = false;
  for (const auto& d : s.devices) any_supported = any_supported || d.major >= 8;
  if (s.devices.empty()) s.reason = "no CUDA device found";
  else if (!any_supported) s.reason = "no GPU with compute capability 8.0 or newer (the kernels need Ampere or later)";
  else s.available = true;
#endif
  return s;
}

}  // namespace

const CudaStatus& cuda_status() {
  static const CudaStatus s = probe();
  return s;
}

}  // namespace nemotron
