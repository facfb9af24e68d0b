#include <algorithm>

#include "backend/cpu/cpu_ops.h"

namespace nemotron {

namespace {
constexpr int64_t kElementGrain = 1 << 14;  // below this, threading costs more than it saves
}

// MLP activation "relu2" (spec §2.5): relu(x)^2.
void cpu_relu_squared(ThreadPool& pool, float* x, int64_t n) {
  pool.parallel_for(n, kElementGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float r = std::max(x[i], 0.0f);
      x[i] = r * r;
    }
  });
}

// Residual add. The residual stream stays fp32 on the CPU (the reference rounds it
// to bf16 per layer; fp32 is closer to the float64 goldens).
void cpu_add(ThreadPool& pool, float* h, const float* y, int64_t n) {
  pool.parallel_for(n, kElementGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) h[i] += y[i];
  });
}

}  // namespace nemotron
