// Small fp32 vector primitives for the ops whose inner loops are short dot
// products and updates (the Mamba scans, attention). Plain loops do not
// vectorise the reductions without -ffast-math, and the baseline ISA has no
// FMA, so these are chosen at run time: AVX2+FMA where the CPU has it, a
// portable version with independent partial sums otherwise.
#pragma once
#include <cstdint>

namespace nemotron {

struct VecOps {
  float (*dot)(const float* a, const float* b, int64_t n);               // sum a[i]*b[i]
  void (*axpy)(float* y, float a, const float* x, int64_t n);            // y += a*x
  void (*scale_axpy)(float* y, float s, float a, const float* x, int64_t n);  // y = s*y + a*x
  // y = s*y + a*x, returning dot(y_new, c): the recurrent SSM update of one state row
  float (*scale_axpy_dot)(float* y, float s, float a, const float* x, const float* c, int64_t n);
};

// The ops for this CPU (honours cpu_features_force_portable at call time).
const VecOps& vec_ops();

}  // namespace nemotron
