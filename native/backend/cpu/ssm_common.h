// Pieces shared by the recurrent and the chunked Mamba2 scans.
#pragma once
#include <algorithm>
#include <vector>

#include "backend/cpu/cpu_ops.h"

namespace nemotron {

// dt for token row `r`, head `h`: softplus(dt_raw + dt_bias), clamped to time_step_limit.
inline float scan_dt(const ScanArgs& a, int64_t r, int64_t h) {
  const float v = softplus_mamba(a.dt[r * a.lddt + h] + a.dt_bias.data[h]);
  return std::min(std::max(v, a.dt_min), a.dt_max);
}

// One (span, head) pair: the unit of parallel work in both scans.
struct ScanItem {
  const SeqSpan* span;
  int64_t head;
};

inline std::vector<ScanItem> scan_items(const ScanArgs& a, const std::vector<SeqSpan>& spans) {
  std::vector<ScanItem> items;
  items.reserve(spans.size() * static_cast<size_t>(a.heads));
  for (const SeqSpan& sp : spans)
    for (int64_t h = 0; h < a.heads; ++h) items.push_back({&sp, h});
  return items;
}

// Recurrent update of one head over rows [t0, t1) of a span (spec §3.2):
//   S <- exp(dt*A) S + dt * x (outer) B ;  y = S C + D x
void ssm_recurrent_head(const ScanArgs& a, const SeqSpan& sp, int64_t h, int64_t t0, int64_t t1);

}  // namespace nemotron
