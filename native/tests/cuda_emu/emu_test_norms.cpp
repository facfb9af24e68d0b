// Emulated cuda::gated_rms_norm (gated_rms_norm.cu) against its CPU twin
// cpu_gated_rms_norm: one block per (row, group), a warp-shuffle + shared
// memory block reduction, out aliasing y as the model calls it. Both sides are
// fp32; they differ by summation order and expf, ~1e-6 relative, so 1e-5.
#include <string>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "backend/cuda/cuda_ops.h"
#include "emu_test_util.h"

using namespace nemotron;
using namespace emu_test;

namespace {

void check_gated_norm(int64_t rows, int64_t dim, int64_t group, int64_t ldz, bool alias, uint32_t seed) {
  const std::vector<float> y = random_vec(rows * dim, seed, -2, 2);
  const std::vector<float> z = random_vec(rows * ldz, seed + 1, -3, 3);
  const std::vector<float> w = random_vec(dim, seed + 2, 0.5f, 1.5f);
  std::vector<float> want(rows * dim);
  GatedNormArgs a;
  a.y = y.data();
  a.z = z.data();
  a.ldz = ldz;
  a.dim = dim;
  a.group_size = group;
  a.weight = Vector{w.data(), dim};
  a.eps = 1e-5f;
  a.out = want.data();
  cpu_gated_rms_norm(pool(), a, rows);

  DevBuf<float> dy(y), dz(z), dw(w), dout(alias ? 0 : rows * dim);
  GatedNormArgs g = a;
  g.y = dy.p;
  g.z = dz.p;
  g.weight = Vector{dw.p, dim};
  g.out = alias ? dy.p : dout.p;
  cuda::gated_rms_norm(g, rows, nullptr);
  require_no_launch_error();
  const std::string what = "gated_rms_norm rows=" + std::to_string(rows) + " dim=" + std::to_string(dim) +
                           " group=" + std::to_string(group) + " ldz=" + std::to_string(ldz) + (alias ? " out=y" : "");
  EXPECT_LE(rel_err(alias ? dy.host() : dout.host(), want), 1e-5, what);
}

}  // namespace

TEST(emu_gated_rms_norm_matches_cpu) {
  check_gated_norm(3, 96, 32, 96, false, 1);        // groups smaller than the 256-thread block
  check_gated_norm(2, 2560, 1280, 2600, true, 2);   // 9B group size, several elements per thread, z strided
  check_gated_norm(2, 40, 40, 40, true, 3);         // one group, one warp's worth
  check_gated_norm(7, 12, 4, 13, false, 4);         // tiny groups, odd ldz
  check_gated_norm(4, 37, 37, 40, true, 5);         // group not a multiple of 32
  check_gated_norm(3, 2000, 1000, 2001, false, 6);  // group not a multiple of the block
  if (full()) check_gated_norm(5, 10240, 1280, 22656, true, 7);  // 9B: z inside zxbcdt
}
