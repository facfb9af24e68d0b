// Operands and host checks of the PTX layout probes (cuda/ptx_layout_kernels.h),
// shared by the emulator's tests and the GPU's: each check returns how many
// outputs differ from the host's result and describes the first few, so a GPU
// run that disagrees with the emulator says which table was misread and where.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "common/dtype.h"
#include "test_framework.h"

namespace nemotron_test {

struct LayoutCheck {
  int bad = 0;
  std::string first;  // the first few differences: "[row][col] got x, want y"
  void add(int r, int c, double got, double want) {
    if (bad++ >= 4) return;
    char line[96];
    std::snprintf(line, sizeof line, "%s[%d][%d] got %.6g, want %.6g", first.empty() ? "" : "; ", r, c, got, want);
    first += line;
  }
};

// Fails the test when the check found differences, naming how many and the first ones.
inline void expect_layout(const LayoutCheck& c, const std::string& what, const char* file, int line) {
  if (c.bad == 0) return;
  record_failure(file, line, what + ": " + std::to_string(c.bad) + " outputs differ from the host's: " + c.first);
}
#define CHECK_LAYOUT(check, what) nemotron_test::expect_layout((check), (what), __FILE__, __LINE__)

// bf16 operands: small integers and halves, exact in bf16 and in every partial sum (so products are exact),
// with moduli prime to the step of 7, so no operand is constant along K (a permuted K shows).
inline std::vector<uint16_t> layout_bf16_values(int n, int mod, int shift) {
  std::vector<uint16_t> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v[i] = nemotron::f32_to_bf16(static_cast<float>(i * 7 % mod - shift) * 0.5f);
  return v;
}

// d [m][n] against init + a [m][k] x b [n][k]^T.
inline LayoutCheck check_bf16_product(const std::vector<float>& d, const std::vector<uint16_t>& a,
                                      const std::vector<uint16_t>& b, int m, int n, int k, double init) {
  LayoutCheck c;
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      double want = init;
      for (int e = 0; e < k; ++e)
        want += double(nemotron::bf16_to_f32(a[i * k + e])) * nemotron::bf16_to_f32(b[j * k + e]);
      const double got = d[static_cast<size_t>(i) * n + j];
      if (!(std::fabs(got - want) <= 1e-5 * (1 + std::fabs(want)))) c.add(i, j, got, want);
    }
  return c;
}

// mma_16x8x16: a [16][16], bt [8][16].
inline std::vector<uint16_t> mma_layout_a() { return layout_bf16_values(16 * 16, 11, 5); }
inline std::vector<uint16_t> mma_layout_bt() { return layout_bf16_values(8 * 16, 9, 4); }
inline LayoutCheck check_mma_layout(const std::vector<float>& d) {
  return check_bf16_product(d, mma_layout_a(), mma_layout_bt(), 16, 8, 16, 0.5);
}

// wgmma_64x256x64: a [64][64], b [256][64].
inline std::vector<uint16_t> wgmma_layout_a() { return layout_bf16_values(64 * 64, 13, 6); }
inline std::vector<uint16_t> wgmma_layout_b() { return layout_bf16_values(256 * 64, 11, 5); }
inline LayoutCheck check_wgmma_layout(const std::vector<float>& d) {
  return check_bf16_product(d, wgmma_layout_a(), wgmma_layout_b(), 64, 256, 64, 0.25);
}

// ldmatrix_x4: raw bits, each element unique. Register i of lane l: matrix i, row l/4, columns 2(l%4) and
// 2(l%4)+1 (low half first); .trans: column l/4, rows 2(l%4) and 2(l%4)+1. Rows of the check are lanes.
inline std::vector<uint16_t> ldmatrix_layout_m() {
  std::vector<uint16_t> m(4 * 64);
  for (int i = 0; i < 4 * 64; ++i) m[i] = static_cast<uint16_t>(i + 1);
  return m;
}
inline LayoutCheck check_ldmatrix_layout(const std::vector<uint32_t>& out, bool trans) {
  const std::vector<uint16_t> m = ldmatrix_layout_m();
  LayoutCheck c;
  for (int l = 0; l < 32; ++l)
    for (int i = 0; i < 4; ++i) {
      auto at = [&](int r, int col) { return static_cast<uint32_t>(m[i * 64 + r * 8 + col]); };
      const uint32_t want = trans ? at(2 * (l % 4), l / 4) | at(2 * (l % 4) + 1, l / 4) << 16
                                  : at(l / 4, 2 * (l % 4)) | at(l / 4, 2 * (l % 4) + 1) << 16;
      if (out[l * 4 + i] != want) c.add(l, i, out[l * 4 + i], want);
    }
  return c;
}

}  // namespace nemotron_test
