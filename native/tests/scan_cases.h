// Mamba2 scan cases shared by the GPU test (cuda/test_cuda_mamba.cpp) and the emulator test
// (cuda_emu/emu_test_mamba.cpp): the inputs of one ssm_scan call laid out as the model lays them
// out, and the CPU twin's answer for them.
#pragma once
#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/cpu_ops.h"
#include "common/thread_pool.h"
#include "test_util.h"

namespace nemotron_test {

using nemotron::MambaLayerState;
using nemotron::ScanArgs;
using nemotron::SeqSpan;
using nemotron::ThreadPool;
using nemotron::Vector;

struct ScanShape {
  int64_t heads, head_dim, groups, state, chunk;
};

// Host inputs of one ssm_scan call over spans of lengths `ns`, laid out as in
// the model: x, B, C slices of one xBC buffer, dt a slice of a wider buffer.
// Span i has absorbed 3i+1 tokens already (past > 0).
struct ScanInputs {
  ScanShape c;
  std::vector<int64_t> ns, r0;
  int64_t rows, HP, GN, ld, lddt;
  std::vector<float> xbc, dt, A, dt_bias, D;
  float dt_min, dt_max;

  ScanInputs(const ScanShape& shape, const std::vector<int64_t>& lens, uint32_t seed, float lo, float hi)
      : c(shape), ns(lens), r0(prefix_rows(lens)), rows(total(lens)), HP(c.heads * c.head_dim),
        GN(c.groups * c.state), ld(HP + 2 * GN + 5), lddt(c.heads + 3), dt_min(lo), dt_max(hi) {
    xbc = random_vec(rows * ld, seed);
    dt = random_vec(rows * lddt, seed + 1, -4, 1);  // softplus(dt + bias) ~ 0.01 .. 1.5
    A = random_vec(c.heads, seed + 2, -8, -0.05f);
    dt_bias = random_vec(c.heads, seed + 3, -1, 0.5f);
    D = random_vec(c.heads, seed + 4);
  }
  int64_t past(size_t i) const { return int64_t(3 * i + 1); }

  ScanArgs args(const float* xbc_p, const float* dt_p, const float* A_p, const float* bias_p, const float* D_p,
                float* y) const {
    ScanArgs a;
    a.heads = c.heads;
    a.head_dim = c.head_dim;
    a.groups = c.groups;
    a.state = c.state;
    a.chunk = c.chunk;
    a.x = xbc_p;
    a.ldx = ld;
    a.B = xbc_p + HP;
    a.C = xbc_p + HP + GN;
    a.ldbc = ld;
    a.dt = dt_p;
    a.lddt = lddt;
    a.A = Vector{A_p, c.heads};
    a.dt_bias = Vector{bias_p, c.heads};
    a.D = Vector{D_p, c.heads};
    a.dt_min = dt_min;
    a.dt_max = dt_max;
    a.y = y;
    return a;
  }
};

// The CPU twin (chunked SSD, or the plain recurrence); updates `states`, returns y.
inline std::vector<float> cpu_scan(ThreadPool& pool, const ScanInputs& in, std::vector<std::vector<float>>& states,
                            bool recurrent) {
  std::vector<float> y(in.rows * in.HP, 0.f);
  std::vector<MambaLayerState> ms(in.ns.size());
  std::vector<SeqSpan> spans;
  for (size_t i = 0; i < in.ns.size(); ++i) {
    ms[i].ssm = states[i].data();
    spans.push_back(SeqSpan{in.r0[i], in.ns[i], in.past(i), &ms[i], nullptr});
  }
  const ScanArgs a = in.args(in.xbc.data(), in.dt.data(), in.A.data(), in.dt_bias.data(), in.D.data(), y.data());
  if (recurrent)
    nemotron::cpu_ssm_scan_recurrent(pool, a, spans);
  else
    nemotron::cpu_ssm_scan(pool, a, spans);
  return y;
}

}  // namespace nemotron_test
