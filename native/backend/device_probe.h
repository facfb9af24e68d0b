// What CUDA can do on this machine, asked at run time. Compiled into every build:
// a CPU-only binary answers "not compiled"; a CUDA binary on a machine without a
// driver or GPU says which of those is missing.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace nemotron {

struct CudaDeviceInfo {
  int index = 0;
  std::string name;
  int major = 0, minor = 0;  // compute capability
  uint64_t total_bytes = 0, free_bytes = 0;
  int multiprocessors = 0;
};

struct CudaStatus {
  bool compiled = false;   // this binary contains the CUDA backend
  bool available = false;  // ... and a usable device is present
  std::string reason;      // why not, when !available
  int driver_version = 0, runtime_version = 0;
  std::string archs;       // architectures compiled in, e.g. "80-real;90a-real"
  std::vector<CudaDeviceInfo> devices;
};

// Probed once, then cached (the driver answer does not change within a process).
const CudaStatus& cuda_status();

}  // namespace nemotron
