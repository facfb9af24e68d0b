// Emulated sampling.cu against its CPU twins in native/backend/cpu/sampling.cpp,
// bit for bit (both sides are single IEEE operations and exact comparisons):
//   cuda::edit_logits  vs cpu_edit_logits: penalties, bias and masks on a
//     batch of rows, every other logit untouched;
//   cuda::candidates   vs cpu_candidates: each row's max and first argmax
//     (ties across warps, NaN at index 0 and elsewhere, rows of -inf or NaN
//     only), and when collecting, the candidate count, the candidates' logits
//     compacted in id order to the front of the row, and the id bitmask
//     (__ballot_sync words), on vocabularies that end inside a warp or a tile.
#include <cstring>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "backend/cuda/cuda_ops.h"
#include "emu_test_util.h"

using namespace nemotron;
using namespace emu_test;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// Rows of different shapes: coarse grid (many ties), flat, wide, long tail,
// some -inf, a clear best or a tie for it.
std::vector<float> make_logits(int64_t vocab, int64_t rows, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<float> l(vocab * rows);
  for (int64_t r = 0; r < rows; ++r) {
    float* row = l.data() + r * vocab;
    for (int64_t i = 0; i < vocab; ++i) {
      double x = u(rng);
      switch (r % 4) {
        case 0: x = std::round(x * 64) / 8; break;
        case 1: x = x * 3; break;
        case 2: x = (x - 0.5) * 30; break;
        case 3: x = std::log(x + 1e-12) * 2; break;
      }
      row[i] = static_cast<float>(x);
    }
    if (r % 5 == 1)
      for (int k = 0; k < 20; ++k) row[rng() % vocab] = -kInf;
    row[rng() % vocab] = 12.0f;
    if (r % 3 == 2) row[rng() % vocab] = 12.0f;
  }
  return l;
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, 4) == 0; }

void check_edits(int64_t vocab, int64_t rows, int nedits, uint32_t seed) {
  std::vector<float> logits = make_logits(vocab, rows, seed);
  std::mt19937 rng(seed + 1);
  std::uniform_real_distribution<double> u(-2, 2);
  std::set<std::pair<int32_t, int32_t>> used;
  std::vector<LogitEdit> edits;
  const double reps[] = {1.0, 1.3, 0.7};
  while (static_cast<int>(edits.size()) < nedits) {
    LogitEdit e;
    e.row = static_cast<int32_t>(rng() % rows);
    e.token = static_cast<int32_t>(rng() % vocab);
    if (!used.insert({e.row, e.token}).second) continue;  // at most one edit per (row, token)
    e.flags = 1 + rng() % 7;
    e.repetition = reps[rng() % 3];
    e.subtract = u(rng);
    e.bias = rng() % 10 == 0 ? -1e9 : u(rng);
    edits.push_back(e);
  }
  DevBuf<float> dl(logits);
  DevBuf<LogitEdit> de(edits);
  cuda::edit_logits(dl.p, vocab, de.p, nedits, nullptr);
  require_no_launch_error();
  cpu_edit_logits(logits.data(), vocab, edits);
  const std::vector<float> got = dl.host();
  int64_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) bad += !same_bits(got[i], logits[i]);
  if (bad)
    record_failure(__FILE__, __LINE__, "edit_logits vocab " + std::to_string(vocab) + " edits " +
                                           std::to_string(nedits) + ": " + std::to_string(bad) + " logits differ");
}

struct Query {
  int64_t row;
  bool collect;
  double floor_offset;
};

void check_candidates(int64_t vocab, std::vector<float> logits, const std::vector<Query>& qs, const std::string& what) {
  const int nq = static_cast<int>(qs.size());
  const int64_t words = cuda::candidate_mask_words(vocab);
  std::vector<CandidateQuery> cq;
  std::vector<cuda::DevCandidateQuery> hq;
  for (const Query& q : qs) {
    cq.push_back(CandidateQuery{q.row, q.collect, q.floor_offset});
    hq.push_back(cuda::DevCandidateQuery{q.row, q.floor_offset, q.collect ? 1 : 0, 0});
  }
  DevBuf<float> dl(logits);
  DevBuf<cuda::DevCandidateQuery> dq(hq);
  DevBuf<cuda::CandidateHead> dh(nq);
  DevBuf<uint32_t> dm(nq * words);
  cuda::candidates(dl.p, vocab, dq.p, nq, dh.p, dm.p, nullptr);
  require_no_launch_error();
  std::vector<RowCandidates> want;
  cpu_candidates(pool(), logits.data(), vocab, cq, want);

  const std::vector<cuda::CandidateHead> heads = dh.host();
  const std::vector<uint32_t> masks = dm.host();
  const std::vector<float> out = dl.host();
  for (int q = 0; q < nq; ++q) {
    const std::string label = what + " query " + std::to_string(q) + " (row " + std::to_string(qs[q].row) + ")";
    const RowCandidates& w = want[q];
    if (!same_bits(heads[q].max, w.max) || heads[q].argmax != w.argmax) {
      record_failure(__FILE__, __LINE__, label + ": max/argmax " + std::to_string(heads[q].max) + "/" +
                                             std::to_string(heads[q].argmax) + " vs " + std::to_string(w.max) + "/" +
                                             std::to_string(w.argmax));
      continue;
    }
    if (heads[q].count != static_cast<int32_t>(w.ids.size())) {
      record_failure(__FILE__, __LINE__, label + ": " + std::to_string(heads[q].count) + " candidates vs " +
                                             std::to_string(w.ids.size()));
      continue;
    }
    if (w.ids.empty()) continue;
    const float* row = out.data() + qs[q].row * vocab;
    for (size_t i = 0; i < w.ids.size(); ++i)
      if (!same_bits(row[i], w.logits[i])) {
        record_failure(__FILE__, __LINE__, label + ": compacted logit " + std::to_string(i) + " differs");
        break;
      }
    std::vector<uint32_t> bits(words, 0);
    for (int32_t id : w.ids) bits[id / 32] |= 1u << (id % 32);
    if (!std::equal(bits.begin(), bits.end(), masks.begin() + q * words))
      record_failure(__FILE__, __LINE__, label + ": candidate bitmask differs");
  }
}

// Queries over every row, out of row order, collecting or not, with several floors.
void check_rows(int64_t vocab, int64_t rows, uint32_t seed, std::vector<float> logits = {}) {
  if (logits.empty()) logits = make_logits(vocab, rows, seed);
  std::vector<Query> qs;
  const double offsets[] = {-0.5, -3.0, -20.7, 0.0};
  for (int64_t k = 0; k < rows; ++k) {
    const int64_t r = (k * 5 + 3) % rows;  // rows distinct (5 coprime to rows) and out of order
    qs.push_back(Query{r, k % 3 != 1, offsets[k % 4]});
  }
  check_candidates(vocab, logits, qs, "candidates vocab " + std::to_string(vocab));
}

}  // namespace

TEST(emu_edit_logits_matches_cpu) {
  check_edits(1000, 6, 700, 1);  // several 256-edit blocks, the last partial
  check_edits(33, 3, 40, 2);
  check_edits(131072, 2, 300, 3);  // 9B vocabulary
}

TEST(emu_candidates_match_cpu) {
  check_rows(1000, 26, 3);  // vocab ends inside a warp's 32 and inside a 1024 tile
  check_rows(33, 26, 4);    // one partial tile, two mask words
  check_rows(4096, 6, 5);   // whole tiles
  check_rows(5000, 7, 6);

  // Edge rows: a tie for the max 1000 ids later (another warp: the lower id wins),
  // NaN at index 0 (the CPU scan keeps index 0) and in the middle, all -inf, all NaN.
  const int64_t vocab = 3000, rows = 6;
  std::vector<float> l = make_logits(vocab, rows, 7);
  float* r0 = l.data();
  const int64_t best = std::max_element(r0, r0 + vocab) - r0;
  r0[(best + 1000) % vocab] = r0[best];
  l[vocab] = std::nanf("");
  l[2 * vocab + 1500] = std::nanf("");
  std::fill(l.begin() + 3 * vocab, l.begin() + 4 * vocab, -kInf);
  std::fill(l.begin() + 4 * vocab, l.begin() + 5 * vocab, std::nanf(""));
  check_rows(vocab, rows, 8, l);
}

TEST(emu_candidates_9b_vocab) { check_rows(131072, 8, 9); }  // 128 tiles per row
