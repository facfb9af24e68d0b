// The GPU the kernel bench runs on, and its compute peaks. Peaks come from a
// table (datasheet figure for parts we recognise, else per-SM rate x SMs x the
// driver's maximum SM clock), each with a sentence saying which; value 0 means
// unknown (no % of peak is printed against it). The memory yardstick is not
// here: it is measured (device-to-device copy, see bench_kernels.cpp).
#pragma once
#include <cstdint>
#include <string>

namespace nemotron {
namespace bench {

struct DeviceDesc {
  int index = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0;
  int sms = 0;
  double sm_clock_ghz = 0;   // the driver's maximum SM clock (cudaDevAttrClockRate)
  double mem_clock_ghz = 0;  // cudaDevAttrMemoryClockRate
  int bus_bits = 0;
  int64_t l2_bytes = 0;
  int64_t total_bytes = 0;
  // 2 (double data rate) x memory clock x bus width / 8: the usual theoretical
  // DRAM bandwidth, informational (the measured copy is the yardstick).
  double dram_theoretical_gbps() const { return 2.0 * mem_clock_ghz * bus_bits / 8.0; }
};

// Throws nemotron::Error when the device cannot be queried.
DeviceDesc describe_device(int index);

struct Peak {
  double tflops = 0;  // 0: unknown
  std::string source;
};

// Dense (no sparsity) bf16 tensor-core FLOP/s with fp32 accumulation.
Peak bf16_tensor_peak(const DeviceDesc& d);

// fp32 FMA FLOP/s on the CUDA cores (no tensor cores).
Peak fp32_fma_peak(const DeviceDesc& d);

}  // namespace bench
}  // namespace nemotron
