#include "bench/e2e/yardsticks.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <thread>

#include "backend/device_probe.h"
#include "bench/bench_util.h"
#include "common/thread_pool.h"

#ifdef NEMOTRON_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace nemotron {
namespace bench {
namespace {

// A "Key:   1234 kB" line of /proc/self/status, in bytes.
uint64_t proc_status_kb(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const size_t n = std::strlen(key);
  while (std::getline(in, line))
    if (line.compare(0, n, key) == 0 && line.size() > n && line[n] == ':')
      return std::strtoull(line.c_str() + n + 1, nullptr, 10) * 1024;
  return 0;
}

#ifdef NEMOTRON_WITH_CUDA
// Best of 10 timed device-to-device copies; 0 with `why` set when a call fails.
double cuda_copy_gbps(size_t bytes, std::string* why) {
  void *src = nullptr, *dst = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  double best_ms = 1e30;
  cudaError_t err = cudaSetDevice(0);
  if (err == cudaSuccess) err = cudaMalloc(&src, bytes);
  if (err == cudaSuccess) err = cudaMalloc(&dst, bytes);
  if (err == cudaSuccess) err = cudaMemset(src, 1, bytes);
  if (err == cudaSuccess) err = cudaMemset(dst, 0, bytes);
  if (err == cudaSuccess) err = cudaEventCreate(&start);
  if (err == cudaSuccess) err = cudaEventCreate(&stop);
  if (err == cudaSuccess) err = cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice);  // warm-up
  for (int rep = 0; rep < 10 && err == cudaSuccess; ++rep) {
    cudaEventRecord(start);
    cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice);
    cudaEventRecord(stop);
    err = cudaEventSynchronize(stop);
    float ms = 0;
    if (err == cudaSuccess) err = cudaEventElapsedTime(&ms, start, stop);
    if (err == cudaSuccess) best_ms = std::min(best_ms, static_cast<double>(ms));
  }
  if (err != cudaSuccess) *why = cudaGetErrorString(err);
  cudaGetLastError();  // leave no sticky error for the engine
  if (start) cudaEventDestroy(start);
  if (stop) cudaEventDestroy(stop);
  if (src) cudaFree(src);
  if (dst) cudaFree(dst);
  return err == cudaSuccess ? 2.0 * static_cast<double>(bytes) / (best_ms / 1e3) / 1e9 : 0;
}
#endif

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.compare(0, 10, "model name") == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
    }
  return "unknown CPU";
}

}  // namespace

CopyBandwidth measure_copy_bandwidth(const std::string& device, int threads) {
  CopyBandwidth r;
  if (device == "cuda") {
#ifdef NEMOTRON_WITH_CUDA
    std::string why;
    // 1 GiB per buffer is far past the 50 MB L2; fall back to 256 MiB on a small GPU.
    for (size_t mib : {size_t(1024), size_t(256)}) {
      r.gbps = cuda_copy_gbps(mib << 20, &why);
      if (r.gbps > 0) {
        r.method = "cudaMemcpy device-to-device, " + std::to_string(mib) + " MiB, read+write, best of 10";
        return r;
      }
    }
    r.method = "not measured: " + why;
#else
    r.method = "not measured: built without CUDA";
#endif
    return r;
  }
  ThreadPool pool(threads > 0 ? threads : ThreadPool::default_threads());
  r.gbps = measure_memcpy_gbps(pool);
  r.method = "memcpy on " + std::to_string(pool.size()) + " threads, 256 MiB, read+write, best of 5";
  return r;
}

std::string describe_device(const std::string& device) {
  if (device == "cuda") {
    const CudaStatus& s = cuda_status();
    if (s.devices.empty()) return "CUDA device (unknown)";
    const CudaDeviceInfo& d = s.devices.front();
    char buf[256];
    std::snprintf(buf, sizeof buf, "%s (sm_%d%d, %d SMs, %.1f GiB)", d.name.c_str(), d.major, d.minor,
                  d.multiprocessors, d.total_bytes / double(1 << 30));
    return buf;
  }
  return cpu_model_name() + " (" + std::to_string(std::thread::hardware_concurrency()) + " hardware threads)";
}

bool gpu_memory_used(uint64_t* used, uint64_t* total) {
#ifdef NEMOTRON_WITH_CUDA
  size_t free_b = 0, total_b = 0;
  if (cudaSetDevice(0) != cudaSuccess || cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  *used = total_b - free_b;
  *total = total_b;
  return true;
#else
  (void)used;
  (void)total;
  return false;
#endif
}

uint64_t peak_rss_bytes() { return proc_status_kb("VmHWM"); }
uint64_t rss_bytes() { return proc_status_kb("VmRSS"); }

bool reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
  f.flush();
  return static_cast<bool>(f);
}

}  // namespace bench
}  // namespace nemotron
