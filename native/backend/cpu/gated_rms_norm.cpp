#include "backend/cpu/cpu_ops.h"

namespace nemotron {

// The Mamba2 output norm (spec §2.3 step 7): gate first, v = y * silu(z), then an
// RMS norm over each group of `group_size` channels separately, times weight.
void cpu_gated_rms_norm(ThreadPool& pool, const GatedNormArgs& a, int64_t rows) {
  const int64_t groups = a.dim / a.group_size;
  pool.parallel_for(rows * groups, 4, [&](int64_t b, int64_t e) {
    for (int64_t item = b; item < e; ++item) {
      const int64_t r = item / groups, g = item % groups;
      const int64_t c0 = g * a.group_size;
      const float* y = a.y + r * a.dim + c0;
      const float* z = a.z + r * a.ldz + c0;
      const float* w = a.weight.data + c0;
      float* out = a.out + r * a.dim + c0;
      double ss = 0;
      for (int64_t i = 0; i < a.group_size; ++i) {
        const float v = y[i] * silu(z[i]);
        out[i] = v;  // out may alias y: y[i] is not read again
        ss += static_cast<double>(v) * v;
      }
      const float scale = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(a.group_size) + a.eps));
      for (int64_t i = 0; i < a.group_size; ++i) out[i] = out[i] * scale * w[i];
    }
  });
}

}  // namespace nemotron
