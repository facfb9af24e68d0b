// cpu_linear against the double-precision reference: every dtype, odd shapes,
// padded leading dimensions, misaligned weights, bias or not, both regimes,
// SIMD and forced-portable kernels, 1 and 2 threads.
#include <cstring>
#include <string>
#include <vector>

#include "backend/cpu/linear.h"
#include "backend/cpu/linear_kernels.h"
#include "common/cpu_features.h"
#include "common/dtype.h"
#include "test_framework.h"
#include "test_util.h"

using namespace nemotron;
using namespace nemotron_test;
using linear_detail::Regime;

namespace {

// Restores run-time detection even when a REQUIRE throws mid-test.
struct ForcePortable {
  explicit ForcePortable(bool on) { cpu_features_force_portable(on); }
  ~ForcePortable() { cpu_features_force_portable(false); }
};

// Weights stored as `dtype` at `offset` bytes into a buffer (2 = only 2-byte
// aligned, as a tensor in a mapped safetensors file may be). For f16 every
// seventh value is tiny, so subnormal halves are exercised too.
struct StoredWeights {
  std::vector<uint8_t> bytes;
  size_t offset = 0;
  Matrix m;
};

StoredWeights make_weights(DType dtype, int64_t n, int64_t k, uint32_t seed, size_t offset) {
  StoredWeights s;
  const std::vector<float> v = random_vec(static_cast<size_t>(n * k), seed);
  const size_t esize = dtype_size(dtype);
  s.offset = offset;
  s.bytes.assign(offset + v.size() * esize + 8, 0xAB);
  uint8_t* dst = s.bytes.data() + offset;
  for (size_t i = 0; i < v.size(); ++i) {
    if (dtype == DType::F32) {
      std::memcpy(dst + 4 * i, &v[i], 4);
    } else {
      const float f = (dtype == DType::F16 && i % 7 == 3) ? v[i] * 1e-6f : v[i];
      const uint16_t h = dtype == DType::BF16 ? f32_to_bf16(f) : f32_to_f16(f);
      std::memcpy(dst + 2 * i, &h, 2);
    }
  }
  s.m.data = dst;
  s.m.dtype = dtype;
  s.m.rows = n;
  s.m.cols = k;
  return s;
}

struct Shape {
  int64_t rows, n, k;
};

// One configuration: shape, dtype, leading-dimension padding, bias, and the
// weights' byte offset.
struct Case {
  Shape s;
  DType dtype;
  int64_t ldx_pad = 0, ldo_pad = 0;
  bool bias = false;
  size_t w_offset = 0;
};

std::string describe(const Case& c, Regime regime, bool portable, int threads) {
  const char* rn = regime == Regime::Gemv ? "gemv" : regime == Regime::Gemm ? "gemm" : "auto";
  return std::string(dtype_name(c.dtype)) + " rows=" + std::to_string(c.s.rows) + " out=" + std::to_string(c.s.n) +
         " in=" + std::to_string(c.s.k) + " ldx+" + std::to_string(c.ldx_pad) + " ldo+" + std::to_string(c.ldo_pad) +
         (c.bias ? " bias" : "") + " woff=" + std::to_string(c.w_offset) + " " + rn +
         (portable ? " portable" : " simd") + " threads=" + std::to_string(threads);
}

// Checks one configuration against the reference on every path (SIMD and
// portable, 1 and 2 threads, GEMV, GEMM and Auto), stopping at the first
// mismatch. x's padding past k is NaN, so reading it would poison a result;
// out's padding past n holds a sentinel that must survive.
void check_case(const Case& c, uint32_t seed) {
  const int64_t rows = c.s.rows, n = c.s.n, k = c.s.k;
  const int64_t ldx = k + c.ldx_pad, ldo = n + c.ldo_pad;
  StoredWeights w = make_weights(c.dtype, n, k, seed, c.w_offset);
  std::vector<float> x = random_vec(static_cast<size_t>(rows * ldx), seed + 1, -2, 2);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = k; i < ldx; ++i) x[r * ldx + i] = std::nanf("");
  const std::vector<float> bias = random_vec(static_cast<size_t>(n), seed + 2);
  const float* b = c.bias ? bias.data() : nullptr;

  std::vector<float> ref(static_cast<size_t>(rows * ldo), 0.0f);
  cpu_linear_reference(x.data(), rows, ldx, w.m, b, ref.data(), ldo);
  // Error bound: fp32 accumulation error scales with the sum of |terms|.
  std::vector<float> wf(static_cast<size_t>(n * k));
  convert_to_f32(w.m.data, c.dtype, wf.size(), wf.data());
  std::vector<double> tol(static_cast<size_t>(rows * n));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < n; ++j) {
      double s = b ? std::fabs(b[j]) : 0.0;
      for (int64_t i = 0; i < k; ++i) s += std::fabs(double(x[r * ldx + i]) * wf[j * k + i]);
      tol[r * n + j] = 1e-5 * s + 1e-30;
    }

  const float kSentinel = 12345.0f;
  for (bool portable : {false, true}) {
    ForcePortable force(portable);
    for (int threads : {1, 2}) {
      ThreadPool pool(threads);
      for (Regime regime : {Regime::Gemv, Regime::Gemm, Regime::Auto}) {
        std::vector<float> out(static_cast<size_t>(rows * ldo), kSentinel);
        linear_detail::cpu_linear_regime(pool, x.data(), rows, ldx, w.m, b, out.data(), ldo, regime);
        int bad = 0;
        for (int64_t r = 0; r < rows && bad == 0; ++r) {
          for (int64_t j = 0; j < n; ++j) {
            const double got = out[r * ldo + j], want = ref[r * ldo + j];
            if (!(std::fabs(got - want) <= tol[r * n + j])) {
              ++bad;
              record_failure(__FILE__, __LINE__,
                             describe(c, regime, portable, threads) + ": out[" + std::to_string(r) + "," +
                                 std::to_string(j) + "] = " + std::to_string(got) + ", reference " +
                                 std::to_string(want) + ", tolerance " + std::to_string(tol[r * n + j]));
              break;
            }
          }
          for (int64_t j = n; j < ldo; ++j)
            if (out[r * ldo + j] != kSentinel) {
              ++bad;
              record_failure(__FILE__, __LINE__, describe(c, regime, portable, threads) + ": wrote past out");
              break;
            }
        }
        if (bad) return;
      }
    }
  }
  // The weights are read-only (they may be a read-only mapping).
  StoredWeights again = make_weights(c.dtype, n, k, seed, c.w_offset);
  CHECK(again.bytes == w.bytes);
}

// Each shape in two layouts: dense with bias, and padded/misaligned without.
void check_shapes(const std::vector<Shape>& shapes, uint32_t seed) {
  for (DType dtype : {DType::BF16, DType::F16, DType::F32}) {
    for (const Shape& s : shapes) {
      Case dense{s, dtype, 0, 0, true, 0};
      Case padded{s, dtype, 3, 5, false, 2};
      check_case(dense, seed);
      check_case(padded, seed + 10);
      seed += 100;
    }
  }
}

}  // namespace

TEST(linear_reference_matches_hand_computed) {
  // W = [[1, 2, 3], [-1, 0, 0.5]] in bf16 (all exact), x = [[1, 1, 1], [2, -1, 4]]
  const float wv[6] = {1, 2, 3, -1, 0, 0.5f};
  uint16_t wb[6];
  for (int i = 0; i < 6; ++i) wb[i] = f32_to_bf16(wv[i]);
  Matrix w{wb, DType::BF16, 2, 3};
  const float x[6] = {1, 1, 1, 2, -1, 4};
  const float bias[2] = {0.5f, -2};
  float out[4];
  cpu_linear_reference(x, 2, 3, w, bias, out, 2);
  CHECK_NEAR(out[0], 6.5, 0, 0);
  CHECK_NEAR(out[1], -2.5, 0, 0);
  CHECK_NEAR(out[2], 12.5, 0, 0);
  CHECK_NEAR(out[3], -2, 0, 0);
}

TEST(linear_in_proj_like_shapes) { check_shapes({{1, 328, 64}, {37, 328, 64}}, 1000); }

TEST(linear_odd_tiny_shapes) {
  check_shapes({{1, 1, 1}, {5, 7, 13}, {2, 3, 5}, {3, 17, 9}, {7, 33, 31}, {6, 16, 8}, {13, 5, 100}, {1, 9, 7}},
               2000);
}

// Rows on each side of the Auto regime switch, and k just past a multiple of 8.
TEST(linear_regime_boundary_rows) {
  const int64_t t = linear_detail::gemv_max_rows(true), tp = linear_detail::gemv_max_rows(false);
  check_shapes({{t, 50, 73}, {t + 1, 50, 73}, {tp, 21, 41}, {tp + 1, 21, 41}}, 3000);
}

// Several kc blocks of k and several packed-weight blocks of out.
TEST(linear_bigger_shape) { check_shapes({{200, 300, 513}}, 4000); }

// Enough rows x k that the packed x is split into several M chunks.
TEST(linear_gemm_many_row_chunks) {
  for (DType dtype : {DType::BF16, DType::F32}) check_case(Case{{600, 24, 4096}, dtype, 1, 2, true, 2}, 5000);
}

TEST(linear_empty_inner_dimension_gives_bias) {
  ThreadPool pool(2);
  Matrix w{nullptr, DType::BF16, 3, 0};
  const float bias[3] = {1, 2, 3};
  float out[6];
  for (Regime regime : {Regime::Gemv, Regime::Gemm}) {
    std::fill(out, out + 6, -7.0f);
    linear_detail::cpu_linear_regime(pool, nullptr, 2, 0, w, bias, out, 3, regime);
    for (int i = 0; i < 6; ++i) CHECK(out[i] == bias[i % 3]);
    linear_detail::cpu_linear_regime(pool, nullptr, 2, 0, w, nullptr, out, 3, regime);
    for (int i = 0; i < 6; ++i) CHECK(out[i] == 0.0f);
  }
}

TEST(linear_public_entry_point_matches_reference) {
  ThreadPool pool(2);
  StoredWeights w = make_weights(DType::BF16, 40, 96, 77, 2);
  for (int64_t rows : {1, 3, 64}) {
    std::vector<float> x = random_vec(static_cast<size_t>(rows * 96), 78);
    std::vector<float> out(static_cast<size_t>(rows * 40)), ref(out.size());
    cpu_linear(pool, x.data(), rows, 96, w.m, nullptr, out.data(), 40);
    cpu_linear_reference(x.data(), rows, 96, w.m, nullptr, ref.data(), 40);
    CHECK(max_abs_diff(out.data(), ref.data(), out.size()) < 1e-4);
  }
}
