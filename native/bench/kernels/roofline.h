// One measured time against the device's peaks (roofline): the ideal time of
// a call is the larger of (compulsory bytes / copy bandwidth) and (FLOPs / the
// compute peak of its kind); whichever is larger is the bound, and
//   % of peak = ideal time / measured time
//             = achieved GB/s / copy GB/s        (memory-bound rows)
//             = achieved TFLOP/s / peak TFLOP/s  (compute-bound rows).
// For the 9B shapes this makes decode (M <= 64 linears, decode attention and
// scan, norms, conv, embed) memory-bound and prefill GEMMs, prefill attention
// and the prefill scan compute-bound, on every supported GPU.
#pragma once
#include <algorithm>
#include <cmath>
#include <string>

#include "cost_model.h"

namespace nemotron {
namespace bench {

struct Peaks {
  double copy_gbps = 0;       // measured D2D copy: bytes read + written per second / 1e9
  double bf16_tflops = 0;     // 0: unknown
  double fp32_tflops = 0;     // 0: unknown
};

struct Verdict {
  double gbps = 0, tflops = 0;  // achieved (compulsory bytes, useful FLOPs)
  std::string bound;            // "copy", "bf16 TC", "fp32", or "" when unknown
  double pct = NAN;             // of the binding peak; NaN when a needed peak is unknown
};

inline Verdict judge(const Cost& c, double ms, const Peaks& p) {
  Verdict v;
  const double s = ms * 1e-3;
  v.gbps = c.bytes / s / 1e9;
  v.tflops = c.flops / s / 1e12;
  const double t_mem = p.copy_gbps > 0 ? c.bytes / (p.copy_gbps * 1e9) : NAN;
  double t_flop = 0;
  const char* flop_name = "";
  if (c.kind == FlopKind::TensorBf16) {
    t_flop = p.bf16_tflops > 0 ? c.flops / (p.bf16_tflops * 1e12) : NAN;
    flop_name = "bf16 TC";
  } else if (c.kind == FlopKind::Fp32) {
    t_flop = p.fp32_tflops > 0 ? c.flops / (p.fp32_tflops * 1e12) : NAN;
    flop_name = "fp32";
  }
  // An unknown peak could be the binding one: then no % at all (an understated
  // ideal time would print a % that means nothing).
  if (std::isnan(t_mem) || std::isnan(t_flop)) return v;
  const bool compute = t_flop > t_mem;
  v.bound = compute ? flop_name : "copy";
  v.pct = 100.0 * std::max(t_mem, t_flop) / s;
  return v;
}

}  // namespace bench
}  // namespace nemotron
