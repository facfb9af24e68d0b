// The Mamba2 scan: the chunked SSD form against the plain recurrence computed
// independently in double precision, on lengths that are and are not multiples
// of the chunk size, from zero and from a non-zero starting state, with
// several group layouts; and the engine's recurrent decode path likewise.
#include <cstring>

#include "backend/cpu/cpu_ops.h"
#include "common/cpu_features.h"
#include "test_framework.h"
#include "test_util.h"

using namespace nemotron;
using namespace nemotron_test;

namespace {

struct ScanCase {
  int64_t heads, head_dim, groups, state, chunk;
};

struct ScanData {
  ScanCase c;
  int64_t T;
  std::vector<float> x, B, C, dt, A, dt_bias, D, init_state;
  ScanData(ScanCase cs, int64_t T_, uint32_t seed) : c(cs), T(T_) {
    x = random_vec(T * c.heads * c.head_dim, seed);
    B = random_vec(T * c.groups * c.state, seed + 1);
    C = random_vec(T * c.groups * c.state, seed + 2);
    dt = random_vec(T * c.heads, seed + 3, -4, 1);  // softplus(dt + bias) spans ~0.01 .. 1.5
    A = random_vec(c.heads, seed + 4, -8, -0.05f);  // A = -exp(A_log) < 0
    dt_bias = random_vec(c.heads, seed + 5, -1, 0.5f);
    D = random_vec(c.heads, seed + 6);
    init_state = random_vec(c.heads * c.head_dim * c.state, seed + 7, -0.5f, 0.5f);
  }
  ScanArgs args(float* y) const {
    ScanArgs a;
    a.heads = c.heads;
    a.head_dim = c.head_dim;
    a.groups = c.groups;
    a.state = c.state;
    a.chunk = c.chunk;
    a.x = x.data();
    a.ldx = c.heads * c.head_dim;
    a.B = B.data();
    a.C = C.data();
    a.ldbc = c.groups * c.state;
    a.dt = dt.data();
    a.lddt = c.heads;
    a.A = Vector{A.data(), c.heads};
    a.dt_bias = Vector{dt_bias.data(), c.heads};
    a.D = Vector{D.data(), c.heads};
    a.dt_min = 0;
    a.dt_max = INFINITY;
    a.y = y;
    return a;
  }
};

// Spec §3.2, token by token, in double: S = exp(dt A) S + dt x B^T ; y = S C + D x.
void reference_scan(const ScanData& d, std::vector<double>& y, std::vector<double>& S) {
  const auto& c = d.c;
  const int64_t P = c.head_dim, N = c.state;
  y.assign(d.T * c.heads * P, 0);
  S.assign(d.init_state.begin(), d.init_state.end());
  for (int64_t h = 0; h < c.heads; ++h) {
    const int64_t g = h / (c.heads / c.groups);
    for (int64_t t = 0; t < d.T; ++t) {
      double v = double(d.dt[t * c.heads + h]) + d.dt_bias[h];
      double dt = v > 20 ? v : std::log1p(std::exp(v));
      double dA = std::exp(dt * d.A[h]);
      for (int64_t p = 0; p < P; ++p) {
        double xv = d.x[t * c.heads * P + h * P + p], acc = 0;
        for (int64_t n = 0; n < N; ++n) {
          double& s = S[(h * P + p) * N + n];
          s = s * dA + dt * xv * d.B[t * c.groups * N + g * N + n];
          acc += s * d.C[t * c.groups * N + g * N + n];
        }
        y[t * c.heads * P + h * P + p] = acc + double(d.D[h]) * xv;
      }
    }
  }
}

void run_scan(ThreadPool& pool, const ScanData& d, bool chunked, const std::vector<int64_t>& pieces,
              std::vector<float>& y, std::vector<float>& state) {
  y.assign(d.T * d.c.heads * d.c.head_dim, 0);
  state = d.init_state;
  MambaLayerState st{nullptr, state.data()};
  ScanArgs a = d.args(y.data());
  int64_t t0 = 0;
  for (int64_t n : pieces) {
    // Each piece is a separate call: a prompt prefilled in parts.
    SeqSpan sp{t0, n, t0, &st, nullptr};
    if (chunked)
      cpu_ssm_scan(pool, a, {sp});
    else
      cpu_ssm_scan_recurrent(pool, a, {sp});
    t0 += n;
  }
}

}  // namespace

TEST(cpu_ssd_chunked_scan_equals_recurrence) {
  // both the AVX2 and the portable vector primitives (restored afterwards)
  for (bool portable : {false, true}) {
    cpu_features_force_portable(portable);
    ThreadPool pool(2);
    const ScanCase cases[] = {
        {8, 16, 2, 16, 128},  // the fixture's shapes
        {4, 10, 1, 12, 16},   // one group, head_dim not a power of two
        {6, 5, 3, 7, 8},      // 3 groups of 2 heads, odd sizes
        {4, 8, 4, 16, 5},     // a group per head, tiny chunk
    };
    uint32_t seed = 100;
    for (const ScanCase& c : cases) {
      for (int64_t T : std::vector<int64_t>{1, 2, 7, c.chunk - 1, c.chunk, c.chunk + 1, 2 * c.chunk + 3, 300}) {
        ScanData d(c, T, seed += 10);
        std::vector<double> y_ref, S_ref;
        reference_scan(d, y_ref, S_ref);
        std::vector<float> y, S;
        run_scan(pool, d, true, {T}, y, S);
        const double ey = max_rel_err(y.data(), y_ref.data(), y.size());
        const double es = max_rel_err(S.data(), S_ref.data(), S.size());
        if (!(ey < 2e-5 && es < 2e-5))
          std::printf("  case heads=%lld groups=%lld chunk=%lld T=%lld: y err %.3g, state err %.3g\n",
                      (long long)c.heads, (long long)c.groups, (long long)c.chunk, (long long)T, ey, es);
        CHECK(ey < 2e-5);
        CHECK(es < 2e-5);
      }
    }
  }
  cpu_features_force_portable(false);
}

TEST(cpu_ssm_recurrent_decode_equals_reference_and_pieces_compose) {
  // both the AVX2 and the portable vector primitives (restored afterwards)
  for (bool portable : {false, true}) {
    cpu_features_force_portable(portable);
    ThreadPool pool(2);
    ScanCase c{6, 5, 3, 7, 8};
    ScanData d(c, 37, 7);
    std::vector<double> y_ref, S_ref;
    reference_scan(d, y_ref, S_ref);
    std::vector<float> y, S;
    run_scan(pool, d, false, {37}, y, S);
    CHECK(max_rel_err(y.data(), y_ref.data(), y.size()) < 2e-5);
    CHECK(max_rel_err(S.data(), S_ref.data(), S.size()) < 2e-5);
    // chunked in uneven pieces, then token by token, as a chat would: prefill, decode, prefill
    std::vector<int64_t> pieces = {13, 1, 1, 9, 1, 12};
    run_scan(pool, d, true, pieces, y, S);
    CHECK(max_rel_err(y.data(), y_ref.data(), y.size()) < 2e-5);
    CHECK(max_rel_err(S.data(), S_ref.data(), S.size()) < 2e-5);
  }
  cpu_features_force_portable(false);
}

TEST(cpu_ssm_scan_applies_time_step_limit) {
  ThreadPool pool(1);
  ScanCase c{2, 3, 1, 4, 4};
  ScanData d(c, 6, 3);
  // With dt clamped to [0.5, 0.5], the result equals a run whose softplus output is 0.5 everywhere.
  std::vector<float> y1(6 * 6), y2(6 * 6), s1 = d.init_state, s2 = d.init_state;
  MambaLayerState st1{nullptr, s1.data()}, st2{nullptr, s2.data()};
  ScanArgs a = d.args(y1.data());
  a.dt_min = 0.5f;
  a.dt_max = 0.5f;
  cpu_ssm_scan(pool, a, {SeqSpan{0, 6, 0, &st1, nullptr}});
  ScanData e = d;
  const float raw = std::log(std::exp(0.5f) - 1.0f);  // softplus^-1(0.5)
  for (auto& v : e.dt) v = raw;
  for (auto& v : e.dt_bias) v = 0;
  ScanArgs b = e.args(y2.data());
  cpu_ssm_scan(pool, b, {SeqSpan{0, 6, 0, &st2, nullptr}});
  CHECK(max_abs_diff(y1.data(), y2.data(), y1.size()) < 1e-5);
}

TEST(cpu_ssm_scan_batch_of_sequences_equals_each_alone) {
  ThreadPool pool(2);
  ScanCase c{4, 8, 2, 16, 8};
  ScanData d(c, 20, 55);
  // rows 0..12 are sequence A (13 tokens), rows 13..19 sequence B (7 tokens)
  std::vector<float> y(20 * 32), sa = d.init_state, sb(d.init_state.size(), 0.f);
  MambaLayerState A{nullptr, sa.data()}, B{nullptr, sb.data()};
  ScanArgs a = d.args(y.data());
  cpu_ssm_scan(pool, a, {SeqSpan{0, 13, 0, &A, nullptr}, SeqSpan{13, 7, 0, &B, nullptr}});
  std::vector<float> y2(20 * 32), sb2(d.init_state.size(), 0.f);
  MambaLayerState B2{nullptr, sb2.data()};
  ScanArgs a2 = d.args(y2.data());
  cpu_ssm_scan(pool, a2, {SeqSpan{13, 7, 0, &B2, nullptr}});
  CHECK(max_abs_diff(y.data() + 13 * 32, y2.data() + 13 * 32, 7 * 32) == 0);
  CHECK(max_abs_diff(sb.data(), sb2.data(), sb.size()) == 0);
}
