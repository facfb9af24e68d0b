// Random sampling cases shared by the tests of sampling where the logits are
// (test_sampler.cpp on the CPU backend, cuda/test_cuda_sampling.cpp on the GPU):
// logits rows with ties, -inf and flat/peaked shapes, and per-row options that
// reach every branch of the sampler: greedy, top-k/top-p/min-p, penalties (with
// out-of-range history ids), bias (including a duplicated id, which forces the
// full-row fallback), masks (including everything masked: a per-row error).
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "engine/sampler.h"

namespace nemotron_test {

struct SamplingCases {
  int64_t vocab = 0, rows = 0;
  std::vector<float> logits;  // [rows, vocab]
  std::vector<nemotron::SampleJob> jobs;
};

inline SamplingCases make_sampling_cases(int64_t vocab, int64_t rows, uint64_t seed) {
  using nemotron::SamplingParams;
  uint64_t s = seed * 2654435761u + 1;
  auto next = [&s]() {  // uniform [0, 1)
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<double>(s >> 11) / 9007199254740992.0;
  };
  auto pick = [&](int64_t n) { return static_cast<int64_t>(next() * static_cast<double>(n)); };
  SamplingCases c;
  c.vocab = vocab;
  c.rows = rows;
  c.logits.resize(static_cast<size_t>(vocab * rows));
  for (int64_t r = 0; r < rows; ++r) {
    float* l = c.logits.data() + r * vocab;
    const int shape = static_cast<int>(r % 4);
    for (int64_t i = 0; i < vocab; ++i) {
      double x = next();
      if (shape == 0) x = std::round(x * 64) / 8;    // coarse grid: many ties, 8 wide
      if (shape == 1) x = x * 3;                     // flat: a huge candidate set
      if (shape == 2) x = (x - 0.5) * 30;            // wide: few candidates
      if (shape == 3) x = std::log(x + 1e-12) * 2;   // long tail
      l[i] = static_cast<float>(x);
    }
    if (r % 5 == 1)
      for (int k = 0; k < 20; ++k) l[pick(vocab)] = -std::numeric_limits<float>::infinity();
    l[pick(vocab)] = 12.0f;  // a clear best in most rows
    if (r % 7 == 3) l[pick(vocab)] = 12.0f;  // ...or a tie for it
  }
  const double temps[] = {0, 0.3, 0.7, 1.0, 1.6};
  const int64_t top_ks[] = {0, 1, 7, 40};
  const double top_ps[] = {1, 0.95, 0.5};
  const double min_ps[] = {0, 0.02};
  for (int64_t r = 0; r < rows; ++r) {
    nemotron::SampleJob j;
    j.row = (r * 5 + 3) % rows;  // jobs out of row order (rows must stay distinct: 5 is coprime to rows)
    SamplingParams& p = j.params;
    p.temperature = temps[pick(5)];
    p.top_k = top_ks[pick(4)];
    p.top_p = top_ps[pick(3)];
    p.min_p = min_ps[pick(2)];
    p.rng = nemotron::Rng::seeded(static_cast<uint32_t>(seed * 100 + r));
    if (r % 3 == 0) {
      p.repetition_penalty = r % 2 ? 1.3 : 1;
      p.presence_penalty = 0.4;
      p.frequency_penalty = r % 4 == 0 ? 0.2 : 0;
      p.penalty_window = r % 2 ? 0 : 8;
      for (int k = 0; k < 24; ++k) p.history.push_back(static_cast<int32_t>(pick(std::min<int64_t>(vocab, 50))));
      p.history.push_back(static_cast<int32_t>(vocab + 3));  // out of range: ignored
      p.history.push_back(-2);
    }
    if (r % 4 == 1) {
      p.bias = {{static_cast<int32_t>(pick(vocab)), 2.5}, {static_cast<int32_t>(pick(vocab)), -1e9},
                {static_cast<int32_t>(vocab + 1), 3.0}};
    }
    if (r % 11 == 5) {  // the same id twice: adds round twice, so no single edit expresses it
      const int32_t t = static_cast<int32_t>(pick(vocab));
      p.bias = {{t, 0.3}, {t, 0.7}};
    }
    if (r % 6 == 2) {
      p.has_mask = true;
      for (int k = 0; k < 30; ++k) p.mask.push_back(static_cast<int32_t>(pick(vocab)));
    }
    if (r % 13 == 7) {  // everything masked: this row's error, nobody else's
      p.has_mask = true;
      p.mask.clear();
      for (int32_t t = 0; t < vocab; ++t) p.mask.push_back(t);
    }
    c.jobs.push_back(j);
  }
  return c;
}

}  // namespace nemotron_test
