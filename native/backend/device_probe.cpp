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
  // cudaSetDevice below changes this thread's current device; put it back so a thread that probes and later
  // launches work (on device 0's stream) is not left on another GPU.
  int previous = 0;
  const bool restore = cudaGetDevice(&previous) == cudaSuccess;
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
  if (restore) cudaSetDevice(previous);
  cudaGetLastError();
  // The engine runs on device 0 (CUDA_VISIBLE_DEVICES chooses which GPU that is), so that one must be supported.
  if (s.devices.empty() || s.devices.front().index != 0) s.reason = "no CUDA device found";
  else if (s.devices.front().major < 8)
    s.reason = "GPU 0 (" + s.devices.front().name +
               ") has compute capability below 8.0; the kernels need Ampere or later (set CUDA_VISIBLE_DEVICES to "
               "another GPU)";
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
