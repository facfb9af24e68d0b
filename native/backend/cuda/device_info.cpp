#include "backend/cuda/device_info.h"

#include <cuda_runtime.h>

#include <mutex>
#include <unordered_map>

#include "backend/cuda/cuda_ops.h"

namespace nemotron {
namespace cuda {

DeviceInfo current_device_info() {
  static std::mutex mu;
  static std::unordered_map<int, DeviceInfo> known;
  int dev = 0;
  check(cudaGetDevice(&dev), "cudaGetDevice");
  std::lock_guard<std::mutex> lk(mu);
  auto it = known.find(dev);
  if (it != known.end()) return it->second;
  DeviceInfo d;
  d.device = dev;
  check(cudaDeviceGetAttribute(&d.sms, cudaDevAttrMultiProcessorCount, dev), "device multiprocessor count");
  check(cudaDeviceGetAttribute(&d.max_smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev),
        "device shared memory limit");
  check(cudaDeviceGetAttribute(&d.cc_major, cudaDevAttrComputeCapabilityMajor, dev), "device compute capability");
  check(cudaDeviceGetAttribute(&d.cc_minor, cudaDevAttrComputeCapabilityMinor, dev), "device compute capability");
  known[dev] = d;
  return d;
}

}  // namespace cuda
}  // namespace nemotron
