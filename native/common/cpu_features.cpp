#include "cpu_features.h"

namespace nemotron {
namespace {

CpuFeatures detect() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  f.avx2 = __builtin_cpu_supports("avx2");
  f.fma = __builtin_cpu_supports("fma");
  f.f16c = __builtin_cpu_supports("f16c");
#endif
  return f;
}

const CpuFeatures kDetected = detect();
CpuFeatures g_active = kDetected;

}  // namespace

const CpuFeatures& cpu_features() { return g_active; }

void cpu_features_force_portable(bool portable) { g_active = portable ? CpuFeatures{} : kDetected; }

}  // namespace nemotron
