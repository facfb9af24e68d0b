// The gated RMSNorm case shared by the GPU test (cuda/test_cuda_mamba.cpp) and the
// emulator test (cuda_emu/emu_test_norms.cpp): seeded inputs (z at a leading
// dimension of its own, as inside zxbcdt) and the CPU twin's answer for them.
#pragma once
#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/cpu_ops.h"
#include "common/thread_pool.h"
#include "test_util.h"

namespace nemotron_test {

struct GatedNormCase {
  int64_t rows = 0, dim = 0, group = 0, ldz = 0;
  std::vector<float> y, z, w;
  std::vector<float> want;  // cpu_gated_rms_norm's output

  // The call's arguments over y, z, w (host buffers or their device copies); out may be y.
  nemotron::GatedNormArgs args(const float* y_, const float* z_, const float* w_, float* out) const {
    nemotron::GatedNormArgs a;
    a.y = y_;
    a.z = z_;
    a.ldz = ldz;
    a.dim = dim;
    a.group_size = group;
    a.weight = nemotron::Vector{w_, dim};
    a.eps = 1e-5f;
    a.out = out;
    return a;
  }
};

inline GatedNormCase make_gated_norm_case(nemotron::ThreadPool& pool, int64_t rows, int64_t dim, int64_t group,
                                          int64_t ldz, uint32_t seed) {
  GatedNormCase c;
  c.rows = rows;
  c.dim = dim;
  c.group = group;
  c.ldz = ldz;
  c.y = random_vec(rows * dim, seed, -2, 2);
  c.z = random_vec(rows * ldz, seed + 1, -3, 3);
  c.w = random_vec(dim, seed + 2, 0.5f, 1.5f);
  c.want.assign(rows * dim, 0.f);
  nemotron::cpu_gated_rms_norm(pool, c.args(c.y.data(), c.z.data(), c.w.data(), c.want.data()), rows);
  return c;
}

}  // namespace nemotron_test
