// rms_norm, gated_rms_norm, relu_squared, add, embedding vs naive double formulas.
#include "backend/cpu/cpu_ops.h"
#include "common/dtype.h"
#include "test_framework.h"
#include "test_util.h"

using namespace nemotron;
using namespace nemotron_test;

TEST(cpu_rms_norm_matches_formula) {
  ThreadPool pool(2);
  for (int64_t dim : {1, 7, 64, 4480}) {
    const int64_t rows = 5;
    auto x = random_vec(rows * dim, 1, -3, 3), w = random_vec(dim, 2);
    std::vector<float> out(rows * dim);
    cpu_rms_norm(pool, x.data(), rows, dim, w.data(), 1e-5f, out.data());
    std::vector<double> ref(rows * dim);
    for (int64_t r = 0; r < rows; ++r) {
      double ss = 0;
      for (int64_t i = 0; i < dim; ++i) ss += double(x[r * dim + i]) * x[r * dim + i];
      double s = 1.0 / std::sqrt(ss / dim + 1e-5);
      for (int64_t i = 0; i < dim; ++i) ref[r * dim + i] = x[r * dim + i] * s * w[i];
    }
    CHECK(max_rel_err(out.data(), ref.data(), ref.size()) < 1e-5);
  }
}

TEST(cpu_gated_rms_norm_matches_formula_per_group) {
  ThreadPool pool(2);
  const int64_t rows = 3, dim = 48, ldz = 60;
  for (int64_t group : {48, 16, 12, 1}) {
    auto y = random_vec(rows * dim, 3, -2, 2), z = random_vec(rows * ldz, 4, -4, 4), w = random_vec(dim, 5);
    std::vector<float> out(rows * dim);
    GatedNormArgs a;
    a.y = y.data();
    a.z = z.data();
    a.ldz = ldz;
    a.dim = dim;
    a.group_size = group;
    a.weight = Vector{w.data(), dim};
    a.eps = 1e-5f;
    a.out = out.data();
    cpu_gated_rms_norm(pool, a, rows);
    std::vector<double> ref(rows * dim);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t g0 = 0; g0 < dim; g0 += group) {
        double ss = 0;
        std::vector<double> v(group);
        for (int64_t i = 0; i < group; ++i) {
          double zz = z[r * ldz + g0 + i];
          v[i] = y[r * dim + g0 + i] * (zz / (1 + std::exp(-zz)));
          ss += v[i] * v[i];
        }
        double s = 1.0 / std::sqrt(ss / group + 1e-5);
        for (int64_t i = 0; i < group; ++i) ref[r * dim + g0 + i] = v[i] * s * w[g0 + i];
      }
    CHECK(max_rel_err(out.data(), ref.data(), ref.size()) < 1e-5);
    // in place (out == y) gives the same result
    std::vector<float> inplace = y;
    a.y = inplace.data();
    a.out = inplace.data();
    cpu_gated_rms_norm(pool, a, rows);
    CHECK(max_abs_diff(inplace.data(), out.data(), out.size()) == 0);
  }
}

TEST(cpu_relu_squared_and_add) {
  ThreadPool pool(2);
  auto x = random_vec(100000, 6, -2, 2), y = random_vec(100000, 7);
  std::vector<float> r = x, h = x;
  cpu_relu_squared(pool, r.data(), static_cast<int64_t>(r.size()));
  cpu_add(pool, h.data(), y.data(), static_cast<int64_t>(h.size()));
  bool ok = true;
  for (size_t i = 0; i < x.size(); ++i) {
    const float e = x[i] > 0 ? x[i] * x[i] : 0.f;
    ok = ok && r[i] == e && h[i] == x[i] + y[i];
  }
  CHECK(ok);
}

TEST(cpu_embedding_gathers_and_widens_every_dtype) {
  ThreadPool pool(2);
  const int64_t vocab = 10, dim = 6;
  auto f = random_vec(vocab * dim, 8);
  std::vector<uint16_t> bf(vocab * dim), hf(vocab * dim);
  for (size_t i = 0; i < f.size(); ++i) {
    bf[i] = f32_to_bf16(f[i]);
    hf[i] = f32_to_f16(f[i]);
  }
  const int32_t ids[] = {3, 0, 9, 3};
  for (DType t : {DType::F32, DType::BF16, DType::F16}) {
    Matrix m{t == DType::F32 ? static_cast<const void*>(f.data()) : t == DType::BF16 ? bf.data() : hf.data(), t,
             vocab, dim};
    std::vector<float> out(4 * dim);
    cpu_embed(pool, m, ids, 4, out.data());
    for (int i = 0; i < 4; ++i)
      for (int64_t d = 0; d < dim; ++d) {
        const float src = f[ids[i] * dim + d];
        const float tol = t == DType::F32 ? 0.f : t == DType::BF16 ? 4e-3f : 1e-3f;
        CHECK(std::fabs(out[i * dim + d] - src) <= tol * (1 + std::fabs(src)));
      }
  }
}
