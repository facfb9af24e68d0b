#include "cpu_features.h"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#define NEMOTRON_X86_CPUID 1
#endif

namespace nemotron {
namespace {

#ifdef NEMOTRON_X86_CPUID
// XGETBV(0): which register states the OS saves on context switch. Read with
// raw bytes so the function needs no -mxsave; only called once OSXSAVE is set.
unsigned long long xgetbv0() {
  unsigned eax = 0, edx = 0;
  __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<unsigned long long>(edx) << 32) | eax;
}
#endif

CpuFeatures detect() {
  CpuFeatures f;
#ifdef NEMOTRON_X86_CPUID
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return f;
  const bool fma = ecx & (1u << 12);
  const bool osxsave = ecx & (1u << 27);
  const bool avx = ecx & (1u << 28);
  const bool f16c = ecx & (1u << 29);
  // The CPU having AVX is not enough: the OS must save the YMM registers
  // (XCR0 bits 1 = SSE state and 2 = AVX state), or using them corrupts state.
  const bool os_saves_ymm = osxsave && (xgetbv0() & 0x6) == 0x6;
  if (!avx || !os_saves_ymm) return f;
  bool avx2 = false;
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) avx2 = ebx & (1u << 5);
  f.avx2 = avx2;
  f.fma = fma;
  f.f16c = f16c;
#endif
  return f;
}

const CpuFeatures kDetected = detect();
CpuFeatures g_active = kDetected;

}  // namespace

const CpuFeatures& cpu_features() { return g_active; }

void cpu_features_force_portable(bool portable) { g_active = portable ? CpuFeatures{} : kDetected; }

}  // namespace nemotron
