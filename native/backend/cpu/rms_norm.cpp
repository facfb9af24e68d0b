#include "backend/cpu/cpu_ops.h"

namespace nemotron {

// y = x * rsqrt(mean(x^2) + eps) * w  (spec §2.2; the sum of squares is
// accumulated in double so hidden sizes in the thousands lose nothing).
void cpu_rms_norm(ThreadPool& pool, const float* x, int64_t rows, int64_t dim, const float* w, float eps,
                  float* out) {
  pool.parallel_for(rows, 4, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* xr = x + r * dim;
      float* yr = out + r * dim;
      double ss = 0;
      for (int64_t i = 0; i < dim; ++i) ss += static_cast<double>(xr[i]) * xr[i];
      const float scale = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(dim) + eps));
      for (int64_t i = 0; i < dim; ++i) yr[i] = xr[i] * scale * w[i];
    }
  });
}

}  // namespace nemotron
