// Emulated cuda::gated_rms_norm (gated_rms_norm.cu) against its CPU twin
// cpu_gated_rms_norm: one block per (row, group), a warp-shuffle + shared
// memory block reduction, out aliasing y as the model calls it. Both sides are
// fp32; they differ by summation order and expf, ~1e-6 relative, so 1e-5.
#include <string>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "backend/cuda/cuda_ops.h"
#include "../norm_cases.h"
#include "emu_test_util.h"

using namespace nemotron;
using namespace emu_test;

namespace {

void check_gated_norm(int64_t rows, int64_t dim, int64_t group, int64_t ldz, bool alias, uint32_t seed) {
  const nemotron_test::GatedNormCase c = nemotron_test::make_gated_norm_case(pool(), rows, dim, group, ldz, seed);
  DevBuf<float> dy(c.y), dz(c.z), dw(c.w), dout(alias ? 0 : rows * dim);
  const GatedNormArgs g = c.args(dy.p, dz.p, dw.p, alias ? dy.p : dout.p);
  cuda::gated_rms_norm(g, rows, nullptr);
  require_no_launch_error();
  const std::string what = "gated_rms_norm rows=" + std::to_string(rows) + " dim=" + std::to_string(dim) +
                           " group=" + std::to_string(group) + " ldz=" + std::to_string(ldz) + (alias ? " out=y" : "");
  EXPECT_LE(rel_err(alias ? dy.host() : dout.host(), c.want), 1e-5, what);
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
