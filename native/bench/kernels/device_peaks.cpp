#include "device_peaks.h"

#include <cuda_runtime.h>

#include <cstdio>
#include <string>

#include "backend/cuda/cuda_ops.h"

namespace nemotron {
namespace bench {

namespace {

bool has(const std::string& s, const char* sub) { return s.find(sub) != std::string::npos; }

std::string fmt(const char* f, double a, double b = 0, double c = 0, double d = 0) {
  char buf[256];
  std::snprintf(buf, sizeof buf, f, a, b, c, d);
  return buf;
}

// Dense bf16 FLOPs per SM per clock with fp32 accumulation (2 per FMA), from
// NVIDIA's architecture whitepapers: A100 312 TFLOP/s = 108 SMs x 2048 x 1.41 GHz;
// GA10x/AD10x professional parts (A10, A40, L4, L40S, RTX A/Ada) 1024, GeForce
// parts run fp32-accumulate at half rate (512); H100 989.4 = 132 x 4096 x 1.83;
// B200 is assumed 2x Hopper per SM (not checked against a datasheet). 0: unknown.
int bf16_flops_per_sm_clock(const DeviceDesc& d, bool& geforce_half) {
  geforce_half = false;
  const int cc = d.cc_major * 10 + d.cc_minor;
  switch (cc) {
    case 80: return 2048;
    case 86:
    case 89:
      geforce_half = has(d.name, "GeForce");
      return geforce_half ? 512 : 1024;
    case 90: return 4096;
    case 100: return 8192;
    default: return 0;
  }
}

// fp32 lanes per SM (each does one FMA = 2 FLOPs per clock): 64 on sm_80, 128 on
// sm_86 and later (GA10x doubled the fp32 datapath; Hopper and Blackwell keep 128).
int fp32_lanes_per_sm(const DeviceDesc& d) {
  const int cc = d.cc_major * 10 + d.cc_minor;
  if (cc == 80) return 64;
  if (cc >= 86) return 128;
  return 0;
}

}  // namespace

DeviceDesc describe_device(int index) {
  DeviceDesc d;
  d.index = index;
  cudaDeviceProp p{};
  cuda::check(cudaGetDeviceProperties(&p, index), "bench: cudaGetDeviceProperties");
  d.name = p.name;
  d.cc_major = p.major;
  d.cc_minor = p.minor;
  d.sms = p.multiProcessorCount;
  d.bus_bits = p.memoryBusWidth;
  d.l2_bytes = p.l2CacheSize;
  d.total_bytes = static_cast<int64_t>(p.totalGlobalMem);
  int khz = 0;
  // Clocks are attributes (the cudaDeviceProp fields were removed in CUDA 13); kHz.
  if (cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, index) == cudaSuccess) d.sm_clock_ghz = khz / 1e6;
  if (cudaDeviceGetAttribute(&khz, cudaDevAttrMemoryClockRate, index) == cudaSuccess) d.mem_clock_ghz = khz / 1e6;
  cudaGetLastError();  // an unsupported attribute is not an error for later calls
  return d;
}

Peak bf16_tensor_peak(const DeviceDesc& d) {
  const int cc = d.cc_major * 10 + d.cc_minor;
  // Datasheet figures (dense bf16) for parts recognised by name and SM count.
  // NVIDIA quotes them at a tensor-load boost clock below the driver's maximum.
  if (cc == 90 && d.sms == 132 && !has(d.name, "NVL") &&
      (has(d.name, "H100") || has(d.name, "H800") || has(d.name, "H200") || has(d.name, "GH200")))
    return {989.4, "NVIDIA datasheet, H100/H200 SXM: 132 SMs x 4096 FLOP/clk x 1.83 GHz, dense" +
                       fmt(" (the driver's max clock %.2f GHz would give %.1f)", d.sm_clock_ghz,
                           132.0 * 4096 * d.sm_clock_ghz / 1e3)};
  if (cc == 90 && d.sms == 114 && has(d.name, "H100"))
    return {756.5, "NVIDIA datasheet, H100 PCIe: 114 SMs x 4096 FLOP/clk x 1.62 GHz, dense"};
  if (cc == 80 && d.sms == 108) return {312.0, "NVIDIA datasheet, A100: 108 SMs x 2048 FLOP/clk x 1.41 GHz, dense"};
  bool half = false;
  const int per = bf16_flops_per_sm_clock(d, half);
  if (per == 0 || d.sm_clock_ghz <= 0)
    return {0, fmt("unknown for compute capability %.0f.%.0f: no %% of tensor peak", d.cc_major, d.cc_minor)};
  const double tf = double(d.sms) * per * d.sm_clock_ghz / 1e3;
  return {tf, fmt("estimate: %.0f SMs x %.0f FLOP/clk/SM x %.3f GHz (driver max clock)", d.sms, per, d.sm_clock_ghz) +
                  (half ? " (GeForce: fp32 accumulate at half rate)" : "") +
                  (cc == 100 ? " (per-SM rate assumed 2x Hopper)" : "")};
}

Peak fp32_fma_peak(const DeviceDesc& d) {
  const int lanes = fp32_lanes_per_sm(d);
  if (lanes == 0 || d.sm_clock_ghz <= 0) return {0, "unknown for this compute capability"};
  const double tf = double(d.sms) * lanes * 2 * d.sm_clock_ghz / 1e3;
  return {tf, fmt("%.0f SMs x %.0f fp32 lanes x 2 FLOP/FMA x %.3f GHz (driver max clock)", d.sms, lanes,
                  d.sm_clock_ghz)};
}

}  // namespace bench
}  // namespace nemotron
