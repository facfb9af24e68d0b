#include "backend/cpu/vec.h"

#include <immintrin.h>

#include "common/cpu_features.h"

namespace nemotron {
namespace {

// ---- portable: 8 independent partial sums let the compiler use SIMD adds
// without reassociating a single running sum.
float dot_portable(const float* a, const float* b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) acc[l] += a[i + l] * b[i + l];
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}
void axpy_portable(float* y, float a, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}
void scale_axpy_portable(float* y, float s, float a, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = s * y[i] + a * x[i];
}
float scale_axpy_dot_portable(float* y, float s, float a, const float* x, const float* c, int64_t n) {
  scale_axpy_portable(y, s, a, x, n);
  return dot_portable(y, c, n);
}

// ---- AVX2 + FMA
#define NEMOTRON_AVX2 __attribute__((target("avx2,fma")))

NEMOTRON_AVX2 inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

NEMOTRON_AVX2 float dot_avx2(const float* a, const float* b, int64_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  float s = hsum(_mm256_add_ps(s0, s1));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

NEMOTRON_AVX2 void axpy_avx2(float* y, float a, const float* x, int64_t n) {
  const __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] += a * x[i];
}

NEMOTRON_AVX2 void scale_axpy_avx2(float* y, float s, float a, const float* x, int64_t n) {
  const __m256 vs = _mm256_set1_ps(s), va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_mul_ps(vs, _mm256_loadu_ps(y + i))));
  for (; i < n; ++i) y[i] = s * y[i] + a * x[i];
}

NEMOTRON_AVX2 float scale_axpy_dot_avx2(float* y, float s, float a, const float* x, const float* c, int64_t n) {
  const __m256 vs = _mm256_set1_ps(s), va = _mm256_set1_ps(a);
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_mul_ps(vs, _mm256_loadu_ps(y + i)));
    _mm256_storeu_ps(y + i, v);
    acc = _mm256_fmadd_ps(v, _mm256_loadu_ps(c + i), acc);
  }
  float r = hsum(acc);
  for (; i < n; ++i) {
    y[i] = s * y[i] + a * x[i];
    r += y[i] * c[i];
  }
  return r;
}

const VecOps kPortable{dot_portable, axpy_portable, scale_axpy_portable, scale_axpy_dot_portable};
const VecOps kAvx2{dot_avx2, axpy_avx2, scale_axpy_avx2, scale_axpy_dot_avx2};

}  // namespace

const VecOps& vec_ops() {
  const CpuFeatures& f = cpu_features();
  return f.avx2 && f.fma ? kAvx2 : kPortable;
}

}  // namespace nemotron
