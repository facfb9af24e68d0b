// Helpers shared by the native op tests: seeded random data, max-error compare.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

namespace nemotron_test {

inline std::vector<float> random_vec(size_t n, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// max |a - b| / (1 + |b|): relative for large values, absolute near zero.
inline double max_rel_err(const float* a, const double* b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(a[i] - b[i]) / (1.0 + std::fabs(b[i])));
  return m;
}
inline double max_abs_diff(const float* a, const float* b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, static_cast<double>(std::fabs(a[i] - b[i])));
  return m;
}

// Logit rows compared as the fixtures' bf16 tolerance is stated: the largest
// |a - b| and the smallest row cosine. A non-finite value (a NaN a kernel wrote,
// poison it read) fails every bound instead of vanishing in a max/min.
struct RowDiff {
  double max_abs = 0, min_cos = 1;
  void add(const float* a, const float* b, int64_t n) {
    double ab = 0, aa = 0, bb = 0;
    for (int64_t i = 0; i < n; ++i) {
      if (!std::isfinite(a[i]) || !std::isfinite(b[i])) {
        max_abs = INFINITY;
        min_cos = -INFINITY;
        return;
      }
      max_abs = std::max(max_abs, std::fabs(double(a[i]) - b[i]));
      ab += double(a[i]) * b[i];
      aa += double(a[i]) * a[i];
      bb += double(b[i]) * b[i];
    }
    min_cos = std::min(min_cos, ab / std::sqrt(aa * bb + 1e-300));
  }
  // Every row of two [rows, width] arrays.
  void add_rows(const std::vector<float>& a, const std::vector<float>& b, int64_t width) {
    for (size_t r = 0; r + static_cast<size_t>(width) <= a.size() && r + static_cast<size_t>(width) <= b.size();
         r += static_cast<size_t>(width))
      add(a.data() + r, b.data() + r, width);
  }
  void print(const char* what) const { std::printf("  %s: max |dlogit| %.4g, min cosine %.7f\n", what, max_abs, min_cos); }
};

// A batch of spans of lengths `ns` stacked row after row: where each starts, how many rows in all, the longest.
inline std::vector<int64_t> prefix_rows(const std::vector<int64_t>& ns) {
  std::vector<int64_t> r0(ns.size());
  int64_t r = 0;
  for (size_t i = 0; i < ns.size(); ++i) {
    r0[i] = r;
    r += ns[i];
  }
  return r0;
}
inline int64_t total(const std::vector<int64_t>& ns) {
  int64_t t = 0;
  for (int64_t n : ns) t += n;
  return t;
}
inline int64_t maxn(const std::vector<int64_t>& ns) {
  int64_t m = 0;
  for (int64_t n : ns) m = std::max(m, n);
  return m;
}

}  // namespace nemotron_test
