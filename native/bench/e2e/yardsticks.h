// What the end-to-end numbers are measured against, and how memory is read:
// the device's copy bandwidth (decode at batch 1 streams every weight once per
// token, so weight bytes / copy bandwidth is its speed limit) and the memory in
// use (GPU: cudaMemGetInfo; CPU: the process's resident set).
#pragma once
#include <cstdint>
#include <string>

namespace nemotron {
namespace bench {

struct CopyBandwidth {
  double gbps = 0;     // bytes read + bytes written per second / 1e9 (STREAM "copy" convention)
  std::string method;  // how it was measured, or why it was not
};

// CUDA: cudaMemcpy device-to-device of a 1 GiB buffer, best of 10 (guarded by
// NEMOTRON_WITH_CUDA). CPU: bench_util.h's multi-threaded memcpy over 256 MiB.
CopyBandwidth measure_copy_bandwidth(const std::string& device, int threads);

// "NVIDIA H100 80GB HBM3 (132 SMs, 79.2 GiB)" or "AMD EPYC ... (2 cores)".
std::string describe_device(const std::string& device);

// GPU memory in use on device 0 (total - free, every process's); false without CUDA.
bool gpu_memory_used(uint64_t* used, uint64_t* total);

// The process's peak resident set (VmHWM) and current one (VmRSS), bytes; 0 if unknown.
uint64_t peak_rss_bytes();
uint64_t rss_bytes();
// Restarts VmHWM from the current RSS (Linux: "5" > /proc/self/clear_refs), so
// the yardstick's buffers do not count as the model's peak. False if refused.
bool reset_peak_rss();

}  // namespace bench
}  // namespace nemotron
