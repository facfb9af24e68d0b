#include <cmath>

#include "backend/cpu/ssm_common.h"
#include "backend/cpu/vec.h"

namespace nemotron {
namespace {

// Per-thread workspace for one chunk of one head.
struct ChunkWork {
  std::vector<double> cum;  // Λ_s: inclusive cumulative sum of dt*A inside the chunk
  std::vector<float> dt;    // dt_s
  std::vector<float> cb;    // C_l · B_s for s <= l, [Q, Q]
  void resize(int64_t q) {
    cum.resize(q);
    dt.resize(q);
    cb.resize(static_cast<size_t>(q * q));
  }
};

// Chunked SSD scan of one head over one span (spec §3.3). For each chunk of Q
// tokens with entering state S:
//   y_l   = Σ_{s<=l} (C_l·B_s) exp(Λ_l-Λ_s) dt_s x_s      (intra-chunk, "diagonal")
//         + exp(Λ_l) (S C_l)                               (state carried in)
//         + D x_l
//   S_out = exp(Λ_last) S + Σ_s exp(Λ_last-Λ_s) dt_s x_s ⊗ B_s
// which equals the token-by-token recurrence but does its work as small dense
// products. Λ is kept in double: it is a running sum of negative terms and the
// differences Λ_l-Λ_s would otherwise lose digits on long chunks.
void ssd_head(const ScanArgs& a, const SeqSpan& sp, int64_t h, ChunkWork& w) {
  const int64_t P = a.head_dim, N = a.state, Q = a.chunk;
  const int64_t g = h / (a.heads / a.groups);
  const float A = a.A.data[h], D = a.D.data[h];
  const int64_t y_ld = a.heads * P;
  float* S = sp.mamba->ssm + h * P * N;
  const VecOps& v = vec_ops();
  w.resize(Q);

  for (int64_t c0 = 0; c0 < sp.n; c0 += Q) {
    const int64_t L = std::min(Q, sp.n - c0);
    const int64_t r0 = sp.row0 + c0;
    double run = 0;
    for (int64_t s = 0; s < L; ++s) {
      w.dt[s] = scan_dt(a, r0 + s, h);
      run += static_cast<double>(w.dt[s]) * A;
      w.cum[s] = run;
    }
    // C_l · B_s, lower triangle only
    for (int64_t l = 0; l < L; ++l) {
      const float* Cl = a.C + (r0 + l) * a.ldbc + g * N;
      for (int64_t s = 0; s <= l; ++s) w.cb[l * Q + s] = v.dot(Cl, a.B + (r0 + s) * a.ldbc + g * N, N);
    }
    for (int64_t l = 0; l < L; ++l) {
      const float* xl = a.x + (r0 + l) * a.ldx + h * P;
      const float* Cl = a.C + (r0 + l) * a.ldbc + g * N;
      float* y = a.y + (r0 + l) * y_ld + h * P;
      // carried-in state and skip
      const float carry = static_cast<float>(std::exp(w.cum[l]));
      for (int64_t p = 0; p < P; ++p) y[p] = carry * v.dot(S + p * N, Cl, N) + D * xl[p];
      // intra-chunk
      for (int64_t s = 0; s <= l; ++s) {
        const float coef = w.cb[l * Q + s] * static_cast<float>(std::exp(w.cum[l] - w.cum[s])) * w.dt[s];
        v.axpy(y, coef, a.x + (r0 + s) * a.ldx + h * P, P);
      }
    }
    // state leaving the chunk
    const double last = w.cum[L - 1];
    const float decay_all = static_cast<float>(std::exp(last));
    for (int64_t i = 0; i < P * N; ++i) S[i] *= decay_all;
    for (int64_t s = 0; s < L; ++s) {
      const float coef = static_cast<float>(std::exp(last - w.cum[s])) * w.dt[s];
      const float* xs = a.x + (r0 + s) * a.ldx + h * P;
      const float* Bs = a.B + (r0 + s) * a.ldbc + g * N;
      for (int64_t p = 0; p < P; ++p) v.axpy(S + p * N, coef * xs[p], Bs, N);
    }
  }
}

}  // namespace

void cpu_ssm_scan(ThreadPool& pool, const ScanArgs& a, const std::vector<SeqSpan>& spans) {
  const std::vector<ScanItem> items = scan_items(a, spans);
  pool.parallel_for(static_cast<int64_t>(items.size()), 1, [&](int64_t b, int64_t e) {
    ChunkWork work;
    for (int64_t i = b; i < e; ++i) {
      const ScanItem& it = items[i];
      if (it.span->n == 1)
        ssm_recurrent_head(a, *it.span, it.head, 0, 1);  // decode: one step of the recurrence
      else
        ssd_head(a, *it.span, it.head, work);
    }
  });
}

}  // namespace nemotron
