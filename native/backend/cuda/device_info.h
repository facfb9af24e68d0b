// What the CUDA kernels' launch code needs to know about the current device
// (SM count, opt-in shared memory, compute capability), read from the driver
// once per device and remembered: the launch paths ask on every call.
#pragma once

namespace nemotron {
namespace cuda {

struct DeviceInfo {
  int device = 0;  // the ordinal these describe
  int sms = 0;
  int max_smem_optin = 0;  // bytes of shared memory one block may opt in to
  int cc_major = 0, cc_minor = 0;
};

// The current device's (cudaGetDevice) properties. Thread-safe.
DeviceInfo current_device_info();

}  // namespace cuda
}  // namespace nemotron
