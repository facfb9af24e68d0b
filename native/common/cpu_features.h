// What the running CPU can do, detected once at run time. Prebuilt binaries must
// run on any x86-64, so SIMD kernels are compiled with per-function target
// attributes and chosen here, never with -march=native.
#pragma once

namespace nemotron {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  // AVX2+FMA+F16C together: the set our vector kernels use.
  bool avx2_fma_f16c() const { return avx2 && fma && f16c; }
};

const CpuFeatures& cpu_features();

// For tests and benchmarks: force the portable paths (true) or restore detection.
void cpu_features_force_portable(bool portable);

}  // namespace nemotron
