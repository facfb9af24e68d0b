#include "backend/cpu/ssm_common.h"
#include "backend/cpu/vec.h"

namespace nemotron {

void ssm_recurrent_head(const ScanArgs& a, const SeqSpan& sp, int64_t h, int64_t t0, int64_t t1) {
  const int64_t P = a.head_dim, N = a.state;
  const int64_t g = h / (a.heads / a.groups);  // contiguous blocks of heads share a group
  const float A = a.A.data[h], D = a.D.data[h];
  float* S = sp.mamba->ssm + h * P * N;
  const VecOps& v = vec_ops();
  for (int64_t t = t0; t < t1; ++t) {
    const int64_t r = sp.row0 + t;
    const float dt = scan_dt(a, r, h);
    const float dA = std::exp(dt * A);
    const float* x = a.x + r * a.ldx + h * P;
    const float* B = a.B + r * a.ldbc + g * N;
    const float* C = a.C + r * a.ldbc + g * N;
    float* y = a.y + r * (a.heads * P) + h * P;
    for (int64_t p = 0; p < P; ++p) y[p] = v.scale_axpy_dot(S + p * N, dA, dt * x[p], B, C, N) + D * x[p];
  }
}

void cpu_ssm_scan_recurrent(ThreadPool& pool, const ScanArgs& a, const std::vector<SeqSpan>& spans) {
  const std::vector<ScanItem> items = scan_items(a, spans);
  pool.parallel_for(static_cast<int64_t>(items.size()), 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) ssm_recurrent_head(a, *items[i].span, items[i].head, 0, items[i].span->n);
  });
}

}  // namespace nemotron
