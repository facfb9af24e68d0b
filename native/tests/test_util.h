// Helpers shared by the native op tests: seeded random data, max-error compare.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
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
