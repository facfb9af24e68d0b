// CPU twins of native/backend/cuda/sampling.cu: the logit edits and the
// candidate search the sampler (engine/sampler.cpp) runs where the logits are.
// The arithmetic is that of the JS Sampler, one IEEE operation at a time.
#include <cmath>
#include <limits>

#include "backend/cpu/cpu_ops.h"
#include "common/error.h"
#include "common/strict_fp.h"

namespace nemotron {

void cpu_edit_logits(float* logits, int64_t vocab, const std::vector<LogitEdit>& edits) {
  for (const LogitEdit& e : edits) {
    if (e.token < 0 || e.token >= vocab || e.row < 0)
      fail(ErrorCode::Internal, "edit_logits: token " + std::to_string(e.token) + " outside the vocabulary");
    float& v = logits[static_cast<int64_t>(e.row) * vocab + e.token];
    if (e.flags & LogitEdit::kPenalty) {
      if (e.repetition != 1) {
        const double d = v;
        v = static_cast<float>(d > 0 ? d / e.repetition : d * e.repetition);
      }
      v = static_cast<float>(static_cast<double>(v) - e.subtract);
    }
    if (e.flags & LogitEdit::kBias) v = static_cast<float>(static_cast<double>(v) + e.bias);
    if (e.flags & LogitEdit::kMask) v = -std::numeric_limits<float>::infinity();
  }
}

void cpu_candidates(ThreadPool& pool, const float* logits, int64_t vocab, const std::vector<CandidateQuery>& queries,
                    std::vector<RowCandidates>& out) {
  out.resize(queries.size());
  pool.parallel_for(static_cast<int64_t>(queries.size()), 1, [&](int64_t begin, int64_t end) {
    for (int64_t q = begin; q < end; ++q) {
      const CandidateQuery& cq = queries[static_cast<size_t>(q)];
      RowCandidates& r = out[static_cast<size_t>(q)];
      const float* l = logits + cq.row * vocab;
      // The greedy argmax (first index of the largest) and the largest value,
      // as the sampler's argmax and candidate scan find them.
      int64_t best = 0;
      float max = -std::numeric_limits<float>::infinity();
      for (int64_t i = 0; i < vocab; ++i) {
        if (l[i] > l[best]) best = i;
        if (l[i] > max) max = l[i];
      }
      r.max = max;
      r.argmax = static_cast<int32_t>(best);
      r.ids.clear();
      r.logits.clear();
      if (!cq.collect || max == -std::numeric_limits<float>::infinity()) continue;
      const double floor = static_cast<double>(max) + cq.floor_offset;
      for (int64_t i = 0; i < vocab; ++i) {
        if (static_cast<double>(l[i]) >= floor) {
          r.ids.push_back(static_cast<int32_t>(i));
          r.logits.push_back(l[i]);
        }
      }
    }
  });
}

}  // namespace nemotron
