// The JS Sampler (lib/chat/sampling.ts) in C++, step for step. Every arithmetic
// step below mirrors one in the TS source, in the same precision (float32 where
// JS stores into a Float32Array, double elsewhere) and the same order, because
// the point is identical token ids for identical seeds, not just the same
// distribution. Change both files together.
#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "common/cpu_features.h"
#include "common/error.h"
#include "common/thread_pool.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define NEMOTRON_SAMPLER_AVX2 1
#include <immintrin.h>
#endif

#include "common/strict_fp.h"

namespace nemotron {
namespace {

// Math.log(1e-9) as V8 computes it: tokens less likely than 1e-9 times the best
// are not candidates (lib/chat/sampling.ts CANDIDATE_RATIO).
constexpr double kLogCandidateRatio = -20.72326583694641;
constexpr double kInf = std::numeric_limits<double>::infinity();

uint32_t rotl(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

uint64_t bits_of(double x) {
  uint64_t b;
  std::memcpy(&b, &x, sizeof b);
  return b;
}

double from_bits(uint64_t b) {
  double x;
  std::memcpy(&x, &b, sizeof x);
  return x;
}

// 2^k for -1022 <= k <= 1023, exactly.
double pow2(int k) { return from_bits(static_cast<uint64_t>(k + 1023) << 52); }

// Reused per thread: a batch samples many rows on the same pool threads, and
// these are vocabulary-sized (~2 MiB at 131k).
struct Scratch {
  std::vector<float> logits;
  std::vector<int32_t> ids;
  std::vector<double> w;
  std::vector<float> lv;  // each candidate's logit, kept beside it (no gather in comparisons)
  std::vector<int32_t> window;
};

Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

bool changes_logits(const SamplingParams& p) {
  return !p.bias.empty() || p.has_mask ||
         (!p.history.empty() && (p.repetition_penalty != 1 || p.presence_penalty != 0 || p.frequency_penalty != 0));
}

// Calls fn(token, count) for each distinct in-vocabulary token of the penalty
// window (the last penalty_window ids of the history), in id order. JS visits
// them in first-occurrence order; every token is adjusted independently, so
// the order does not change the floats.
template <class Fn>
void for_each_penalized(const SamplingParams& p, int64_t vocab, std::vector<int32_t>& window, Fn fn) {
  const size_t h = p.history.size();
  const size_t keep = p.penalty_window > 0 ? std::min(h, static_cast<size_t>(p.penalty_window)) : h;
  window.assign(p.history.end() - static_cast<std::ptrdiff_t>(keep), p.history.end());
  std::sort(window.begin(), window.end());
  for (size_t i = 0; i < window.size();) {
    size_t j = i;
    while (j < window.size() && window[j] == window[i]) ++j;
    const int32_t t = window[i];
    const double count = static_cast<double>(j - i);
    i = j;
    if (t >= 0 && t < vocab) fn(t, count);
  }
}

// What a penalty subtracts after the repetition factor (one rounding, as JS).
double penalty_subtract(const SamplingParams& p, double count) { return p.presence_penalty + count * p.frequency_penalty; }

void apply_penalties(float* l, int64_t vocab, const SamplingParams& p, std::vector<int32_t>& window) {
  for_each_penalized(p, vocab, window, [&](int32_t t, double count) {
    if (p.repetition_penalty != 1) {
      const double v = l[t];
      l[t] = static_cast<float>(v > 0 ? v / p.repetition_penalty : v * p.repetition_penalty);
    }
    l[t] = static_cast<float>(static_cast<double>(l[t]) - penalty_subtract(p, count));
  });
}

// lib/chat/sampling.ts Sampler.adjusted: penalties, bias, mask. Returns `logits`
// itself when none applies, else a float32 copy in the scratch.
const float* adjusted(const float* logits, int64_t vocab, const SamplingParams& p, Scratch& s) {
  if (!changes_logits(p)) return logits;
  s.logits.assign(logits, logits + vocab);
  float* l = s.logits.data();
  if (!p.history.empty()) apply_penalties(l, vocab, p, s.window);
  for (const auto& [t, b] : p.bias)
    if (t >= 0 && t < vocab) l[t] = static_cast<float>(static_cast<double>(l[t]) + b);
  for (int32_t t : p.mask)
    if (t >= 0 && t < vocab) l[t] = -std::numeric_limits<float>::infinity();
  return l;
}

[[noreturn]] void all_masked() { fail(ErrorCode::InvalidArgument, "sampling: every token is masked"); }

int32_t argmax(const float* l, int64_t vocab) {
  int64_t best = 0;
  for (int64_t i = 1; i < vocab; ++i)
    if (l[i] > l[best]) best = i;
  return static_cast<int32_t>(best);
}

// Candidate ids, weights and logits, permuted together.
struct Cands {
  int32_t* ids;
  double* w;
  float* lv;
  // Higher logit first, then lower id: a strict total order (no ties).
  bool better(int64_t a, int64_t b) const { return lv[a] > lv[b] || (lv[a] == lv[b] && ids[a] < ids[b]); }
  void swap(int64_t i, int64_t j) const {
    std::swap(ids[i], ids[j]);
    std::swap(w[i], w[j]);
    std::swap(lv[i], lv[j]);
  }
};

// Sampler.ts partition(): median of three moved to the end as the pivot, then
// Lomuto. Afterwards [lo, p) are better than the pivot at p, (p, hi) worse.
int64_t partition(const Cands& c, int64_t lo, int64_t hi) {
  const int64_t mid = lo + ((hi - lo) >> 1);
  const int64_t last = hi - 1;
  if (c.better(mid, lo)) c.swap(mid, lo);
  if (c.better(last, lo)) c.swap(last, lo);
  if (c.better(mid, last)) c.swap(mid, last);
  int64_t p = lo;
  for (int64_t i = lo; i < last; ++i)
    if (c.better(i, last)) c.swap(i, p++);
  c.swap(p, last);
  return p;
}

// [0, k) become the k best of [0, n), in no particular order (sampling.ts selectBest).
void select_best(const Cands& c, int64_t n, int64_t k) {
  int64_t lo = 0, hi = n;
  while (hi - lo > 1) {
    const int64_t p = partition(c, lo, hi);
    if (p == k || p + 1 == k) return;
    if (p > k)
      hi = p;
    else
      lo = p + 1;
  }
}

// The smallest set of best candidates whose weight reaches `target`, moved to
// the front; returns its size (sampling.ts selectNucleus).
int64_t select_nucleus(const Cands& c, int64_t n, double target) {
  int64_t lo = 0, hi = n;
  double acc = 0;  // weight of [0, lo), all inside the nucleus
  while (hi - lo > 1) {
    const int64_t p = partition(c, lo, hi);
    double upper = 0;
    for (int64_t i = lo; i < p; ++i) upper += c.w[i];
    if (acc + upper >= target) {
      hi = p;
    } else if (acc + upper + c.w[p] >= target) {
      return p + 1;
    } else {
      acc += upper + c.w[p];
      lo = p + 1;
    }
  }
  return lo < hi && acc < target ? lo + 1 : std::min(n, std::max<int64_t>(lo, 1));
}

#if NEMOTRON_SAMPLER_AVX2
// js_exp on four lanes, each in (-707, -2^-28]. There js_exp's branches (k = 0,
// k = -1, general k; no special values, no subnormal result) reduce to ONE
// formula: with k = 0, hi = x and lo = 0, its k != 0 expression equals its
// k = 0 one exactly (q/(c-2) is exactly -(q/(2-c)), and q != 0). So every lane
// takes the same IEEE operations, in the same order, as js_exp: the same bits.
// AVX2 without FMA, so nothing can be fused.
__attribute__((target("avx2"))) __m256d exp4_avx2(__m256d x) {
  const __m256d ln2_hi = _mm256_set1_pd(6.93147180369123816490e-01), ln2_lo = _mm256_set1_pd(1.90821492927058770002e-10);
  const __m256i hx = _mm256_srli_epi64(_mm256_castpd_si256(_mm256_sub_pd(_mm256_setzero_pd(), x)), 32);  // high word of |x|
  // k: 0 for |x| <= ln2/2, -1 below 1.5 ln2, else (int)(x / ln2 - 0.5) (x < 0 throughout)
  const __m256d k_general = _mm256_cvtepi32_pd(_mm256_cvttpd_epi32(
      _mm256_add_pd(_mm256_mul_pd(_mm256_set1_pd(1.44269504088896338700e+00), x), _mm256_set1_pd(-0.5))));
  const __m256d reduce = _mm256_castsi256_pd(_mm256_cmpgt_epi64(hx, _mm256_set1_epi64x(0x3FD62E42)));
  const __m256d general = _mm256_castsi256_pd(_mm256_cmpgt_epi64(hx, _mm256_set1_epi64x(0x3FF0A2B1)));
  const __m256d k_reduced = _mm256_blendv_pd(_mm256_set1_pd(-1.0), k_general, general);
  const __m256d t = _mm256_blendv_pd(_mm256_setzero_pd(), k_reduced, reduce);
  const __m256d hi = _mm256_sub_pd(x, _mm256_mul_pd(t, ln2_hi));
  const __m256d lo = _mm256_mul_pd(t, ln2_lo);
  const __m256d r = _mm256_sub_pd(hi, lo);
  const __m256d rr = _mm256_mul_pd(r, r);
  __m256d poly = _mm256_mul_pd(rr, _mm256_set1_pd(4.13813679705723846039e-08));
  poly = _mm256_mul_pd(rr, _mm256_add_pd(_mm256_set1_pd(-1.65339022054652515390e-06), poly));
  poly = _mm256_mul_pd(rr, _mm256_add_pd(_mm256_set1_pd(6.61375632143793436117e-05), poly));
  poly = _mm256_mul_pd(rr, _mm256_add_pd(_mm256_set1_pd(-2.77777777770155933842e-03), poly));
  poly = _mm256_mul_pd(rr, _mm256_add_pd(_mm256_set1_pd(1.66666666666666019037e-01), poly));
  const __m256d c = _mm256_sub_pd(r, poly);
  const __m256d one = _mm256_set1_pd(1.0), two = _mm256_set1_pd(2.0);
  const __m256d q = _mm256_div_pd(_mm256_mul_pd(r, c), _mm256_sub_pd(two, c));
  const __m256d y = _mm256_sub_pd(one, _mm256_sub_pd(_mm256_sub_pd(lo, q), hi));
  // 2^k from its bits (k >= -1021 here: a normal number)
  const __m256i k = _mm256_cvtepi32_epi64(_mm256_cvttpd_epi32(t));
  const __m256d two_k = _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi64(k, _mm256_set1_epi64x(1023)), 52));
  return _mm256_mul_pd(y, two_k);
}

__attribute__((target("avx2"))) void exp_in_place_avx2(double* w, int64_t n) {
  const __m256d lower = _mm256_set1_pd(-707.0), upper = _mm256_set1_pd(-0x1p-28);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const __m256d x = _mm256_loadu_pd(w + i);
    const __m256d in_range = _mm256_and_pd(_mm256_cmp_pd(x, lower, _CMP_GT_OQ), _mm256_cmp_pd(x, upper, _CMP_LE_OQ));
    if (_mm256_movemask_pd(in_range) == 0xF) {
      _mm256_storeu_pd(w + i, exp4_avx2(x));
    } else {
      for (int64_t j = i; j < i + 4; ++j) w[j] = js_exp(w[j]);
    }
  }
  for (; i < n; ++i) w[i] = js_exp(w[i]);
}
#endif

// Room for `n` candidates in the scratch.
void make_room(Scratch& s, int64_t n) {
  if (s.ids.size() < static_cast<size_t>(n)) {
    s.ids.resize(n);
    s.w.resize(n);
    s.lv.resize(n);
  }
}

// Tokens within the candidate ratio of the best, in id order, with their
// exponents (logit - max) / T in w: cut() turns them into weights exp(...) (the
// best has weight 1) after top-k, so a top-k cut exponentiates only k of them.
// Returns their count.
int64_t collect(const float* l, int64_t vocab, double t, Scratch& s) {
  double max = -kInf;
  for (int64_t i = 0; i < vocab; ++i)
    if (l[i] > max) max = l[i];
  if (max == -kInf) all_masked();
  const double floor = max + t * kLogCandidateRatio;
  make_room(s, vocab);
  int64_t n = 0;
  for (int64_t i = 0; i < vocab; ++i) {
    if (l[i] >= floor) {
      s.ids[n] = static_cast<int32_t>(i);
      s.lv[n] = l[i];
      s.w[n] = (static_cast<double>(l[i]) - max) / t;  // the exponent, for now
      ++n;
    }
  }
  return n;
}

// collect() from a backend's answer: the same list, already found.
int64_t collect_from(const RowCandidates& c, double t, Scratch& s) {
  if (c.max == -std::numeric_limits<float>::infinity()) all_masked();
  const double max = c.max;
  const int64_t n = static_cast<int64_t>(c.ids.size());
  make_room(s, n);
  for (int64_t i = 0; i < n; ++i) {
    s.ids[i] = c.ids[i];
    s.lv[i] = c.logits[i];
    s.w[i] = (static_cast<double>(c.logits[i]) - max) / t;
  }
  return n;
}

// top-k, then top-p, then min-p over the n candidates; returns how many remain
// (at the front, in the order the draw walks them).
int64_t cut(const Cands& c, int64_t n, const SamplingParams& p) {
  if (p.top_k > 0 && p.top_k < n) {
    select_best(c, n, p.top_k);  // by logit: the exponents travel along unchanged
    n = p.top_k;
  }
  js_exp_in_place(c.w, n);
  if (p.top_p < 1) {
    double z = 0;
    for (int64_t i = 0; i < n; ++i) z += c.w[i];
    n = select_nucleus(c, n, p.top_p * z);
  }
  int64_t kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (p.min_p > 0 && c.w[i] < p.min_p) continue;  // relative to the best, whose weight is 1
    c.ids[kept] = c.ids[i];  // (the logits beside them are not needed past the cuts)
    c.w[kept++] = c.w[i];
  }
  return kept;
}

// Sampler.candidates on already adjusted logits: fills s.ids / s.w, returns the count.
int64_t candidates(const float* l, int64_t vocab, const SamplingParams& p, Scratch& s) {
  const int64_t n = collect(l, vocab, p.temperature, s);
  return cut(Cands{s.ids.data(), s.w.data(), s.lv.data()}, n, p);
}

// The seeded draw over the candidates, in their (quickselect) order.
int32_t draw(const Scratch& s, int64_t n, RngState& rng) {
  // n >= 1 always: the best token has weight 1 and survives every cut.
  if (n == 0) fail(ErrorCode::Internal, "sampling: no candidate survived");
  double total = 0;
  for (int64_t i = 0; i < n; ++i) total += s.w[i];
  Rng r(rng);
  double x = r.next() * total;
  rng = r.state();
  for (int64_t i = 0; i < n; ++i) {
    x -= s.w[i];
    if (x < 0) return s.ids[i];
  }
  return s.ids[n - 1];  // rounding left x >= 0: the last candidate, as in JS
}

// Runs sample(index, job) for every job, in parallel on the pool when given; a
// job that throws gets id -1 and the message, the others are unaffected.
template <class Sample>
void run_jobs(std::vector<SampleJob>& jobs, ThreadPool* pool, Sample sample) {
  auto run = [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      SampleJob& j = jobs[static_cast<size_t>(i)];
      try {
        j.id = sample(static_cast<size_t>(i), j);
      } catch (const std::exception& e) {
        j.id = -1;
        j.error = e.what();
      }
    }
  };
  const int64_t n = static_cast<int64_t>(jobs.size());
  if (pool && n > 1)
    pool->parallel_for(n, 1, run);
  else
    run(0, n);
}

}  // namespace

RngState Rng::seeded(uint32_t seed) {
  // splitmix32 expands the seed into the 128-bit state
  uint32_t x = seed;
  RngState st;
  for (uint32_t& word : st.s) {
    x += 0x9e3779b9u;
    uint32_t z = x;
    z = (z ^ (z >> 16)) * 0x85ebca6bu;
    z = (z ^ (z >> 13)) * 0xc2b2ae35u;
    word = z ^ (z >> 16);
  }
  return st;
}

double Rng::next() {
  uint32_t* s = st_.s;
  const uint32_t result = rotl(s[1] * 5u, 7) * 9u;
  const uint32_t t = s[1] << 9;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 11);
  return result / 4294967296.0;
}

int32_t sample_token(const float* logits, int64_t vocab, SamplingParams& p) {
  if (vocab <= 0) fail(ErrorCode::InvalidArgument, "sampling: empty logits");
  Scratch& s = scratch();
  const float* l = adjusted(logits, vocab, p, s);
  if (p.temperature == 0) {
    const int32_t best = argmax(l, vocab);
    if (l[best] == -std::numeric_limits<float>::infinity()) all_masked();
    return best;
  }
  const int64_t n = candidates(l, vocab, p, s);
  return draw(s, n, p.rng);
}

bool logit_edits(const SamplingParams& p, int32_t row, int64_t vocab, std::vector<LogitEdit>& out) {
  if (!changes_logits(p)) return true;
  // The edits of this row, one per token, in the order adjusted() first touches them.
  const size_t first = out.size();
  std::vector<std::pair<int32_t, size_t>> index;  // token -> edit, sorted by token
  auto edit_of = [&](int32_t t) -> LogitEdit& {
    auto it = std::lower_bound(index.begin(), index.end(), std::make_pair(t, size_t{0}));
    if (it != index.end() && it->first == t) return out[it->second];
    index.insert(it, {t, out.size()});
    LogitEdit e;
    e.row = row;
    e.token = t;
    out.push_back(e);
    return out.back();
  };
  if (!p.history.empty()) {
    for_each_penalized(p, vocab, scratch().window, [&](int32_t t, double count) {
      LogitEdit& e = edit_of(t);
      e.flags |= LogitEdit::kPenalty;
      e.repetition = p.repetition_penalty;
      e.subtract = penalty_subtract(p, count);
    });
  }
  for (const auto& [t, b] : p.bias) {
    if (t < 0 || t >= vocab) continue;
    LogitEdit& e = edit_of(t);
    if (e.flags & LogitEdit::kBias) {  // float(float(v + b1) + b2) is not one edit
      out.resize(first);
      return false;
    }
    e.flags |= LogitEdit::kBias;
    e.bias = b;
  }
  for (int32_t t : p.mask)
    if (t >= 0 && t < vocab) edit_of(t).flags |= LogitEdit::kMask;
  return true;
}

CandidateQuery candidate_query(const SamplingParams& p, int64_t row) {
  CandidateQuery q;
  q.row = row;
  q.collect = p.temperature != 0;
  q.floor_offset = p.temperature * kLogCandidateRatio;  // collect()'s floor is max + this
  return q;
}

int32_t sample_from_candidates(const RowCandidates& c, int64_t vocab, SamplingParams& p) {
  if (vocab <= 0) fail(ErrorCode::InvalidArgument, "sampling: empty logits");
  if (p.temperature == 0) {
    if (c.max == -std::numeric_limits<float>::infinity()) all_masked();
    return c.argmax;
  }
  Scratch& s = scratch();
  const int64_t found = collect_from(c, p.temperature, s);  // (may grow the scratch: before taking pointers)
  const int64_t n = cut(Cands{s.ids.data(), s.w.data(), s.lv.data()}, found, p);
  return draw(s, n, p.rng);
}

void check_sample_jobs(const std::vector<SampleJob>& jobs, int64_t rows) {
  std::vector<bool> taken(static_cast<size_t>(std::max<int64_t>(rows, 0)), false);
  for (const SampleJob& j : jobs) {
    if (j.row < 0 || j.row >= rows)
      fail(ErrorCode::InvalidArgument, "sampling: row " + std::to_string(j.row) + " is outside the batch of " +
                                           std::to_string(rows));
    if (taken[static_cast<size_t>(j.row)])
      fail(ErrorCode::InvalidArgument, "sampling: row " + std::to_string(j.row) + " is sampled twice");
    taken[static_cast<size_t>(j.row)] = true;
  }
}

bool backend_sampling_enabled() {
  const char* v = std::getenv("NEMOTRON_BACKEND_SAMPLING");
  return !(v && std::strcmp(v, "0") == 0);
}

void sample_rows_in(Backend& backend, float* logits, int64_t rows, int64_t vocab, std::vector<SampleJob>& jobs,
                    ThreadPool* pool) {
  check_sample_jobs(jobs, rows);
  const bool in_backend = backend_sampling_enabled();
  // Each job becomes edits + one candidate query; the rare one whose edits do not
  // fit (see logit_edits), or every job when backend sampling is off, is sampled from its full row, copied first.
  std::vector<LogitEdit> edits;
  std::vector<CandidateQuery> queries;
  std::vector<int64_t> query_of(jobs.size(), -1);
  std::vector<std::vector<float>> full_rows(jobs.size());
  for (size_t j = 0; j < jobs.size(); ++j) {
    const SamplingParams& p = jobs[j].params;
    if (in_backend && logit_edits(p, static_cast<int32_t>(jobs[j].row), vocab, edits)) {
      query_of[j] = static_cast<int64_t>(queries.size());
      queries.push_back(candidate_query(p, jobs[j].row));
    } else {
      full_rows[j].resize(static_cast<size_t>(vocab));
      backend.to_host(logits + jobs[j].row * vocab, static_cast<size_t>(vocab), full_rows[j].data());
    }
  }
  if (!edits.empty()) backend.edit_logits(logits, vocab, edits);
  std::vector<RowCandidates> found;
  if (!queries.empty()) backend.candidates(logits, vocab, queries, found);

  run_jobs(jobs, pool, [&](size_t i, SampleJob& j) {
    const int64_t q = query_of[i];
    return q >= 0 ? sample_from_candidates(found[static_cast<size_t>(q)], vocab, j.params)
                  : sample_token(full_rows[i].data(), vocab, j.params);
  });
}

void sample_candidates(const float* logits, int64_t vocab, const SamplingParams& p, std::vector<int32_t>& ids,
                       std::vector<double>& weights) {
  Scratch& s = scratch();
  const int64_t n = candidates(adjusted(logits, vocab, p, s), vocab, p, s);
  ids.assign(s.ids.begin(), s.ids.begin() + n);
  weights.assign(s.w.begin(), s.w.begin() + n);
}

void sample_rows(const float* logits, int64_t vocab, std::vector<SampleJob>& jobs, ThreadPool* pool) {
  run_jobs(jobs, pool, [&](size_t, SampleJob& j) { return sample_token(logits + j.row * vocab, vocab, j.params); });
}

void js_exp_in_place(double* x, int64_t n) {
#if NEMOTRON_SAMPLER_AVX2
  if (cpu_features().avx2) return exp_in_place_avx2(x, n);
#endif
  for (int64_t i = 0; i < n; ++i) x[i] = js_exp(x[i]);
}

// fdlibm's exp (as in V8's src/base/ieee754.cc): reduce x = k ln2 + r with
// |r| <= ln2/2 (ln2 split in a high part exact in k*ln2_hi and a low part), a
// rational approximation of exp(r) from a degree-5 polynomial, then scale by 2^k.
double js_exp(double x) {
  constexpr double kHalf[2] = {0.5, -0.5};
  constexpr double kLn2Hi[2] = {6.93147180369123816490e-01, -6.93147180369123816490e-01};
  constexpr double kLn2Lo[2] = {1.90821492927058770002e-10, -1.90821492927058770002e-10};
  constexpr double kInvLn2 = 1.44269504088896338700e+00;
  constexpr double kOverflow = 7.09782712893383973096e+02;
  constexpr double kUnderflow = -7.45133219101941108420e+02;
  constexpr double kE = 2.718281828459045;
  constexpr double P1 = 1.66666666666666019037e-01, P2 = -2.77777777770155933842e-03,
                   P3 = 6.61375632143793436117e-05, P4 = -1.65339022054652515390e-06,
                   P5 = 4.13813679705723846039e-08;

  const uint64_t b = bits_of(x);
  const uint32_t high = static_cast<uint32_t>(b >> 32);
  const int sign = static_cast<int>(high >> 31);
  const uint32_t hx = high & 0x7fffffffu;  // high word of |x|

  if (hx >= 0x40862E42u) {  // |x| >= 709.78: not finite, overflow or underflow
    if (hx >= 0x7ff00000u) {
      if (((hx & 0xfffffu) | static_cast<uint32_t>(b)) != 0) return x + x;  // NaN
      return sign == 0 ? x : 0.0;                                             // exp(+-inf)
    }
    if (x > kOverflow) return kInf;
    if (x < kUnderflow) return 0.0;
  }

  double hi = 0, lo = 0;
  int k = 0;
  if (hx > 0x3FD62E42u) {    // |x| > ln2/2: reduce
    if (hx < 0x3FF0A2B2u) {  // |x| < 1.5 ln2: k = +-1
      if (x == 1.0) return kE;  // V8 special-cases exp(1)
      hi = x - kLn2Hi[sign];
      lo = kLn2Lo[sign];
      k = 1 - sign - sign;
    } else {
      k = static_cast<int>(kInvLn2 * x + kHalf[sign]);
      const double t = k;
      hi = x - t * kLn2Hi[0];  // exact: ln2_hi has trailing zero bits
      lo = t * kLn2Lo[0];
    }
    x = hi - lo;
  } else if (hx < 0x3e300000u) {  // |x| < 2^-28: exp(x) rounds to 1 + x
    return 1.0 + x;
  }

  const double t = x * x;
  const double c = x - t * (P1 + t * (P2 + t * (P3 + t * (P4 + t * P5))));
  if (k == 0) return 1.0 - ((x * c) / (c - 2.0) - x);
  const double y = 1.0 - ((lo - (x * c) / (2.0 - c)) - hi);
  if (k >= -1021) {
    if (k == 1024) return y * 2.0 * pow2(1023);
    return y * pow2(k);
  }
  return y * pow2(k + 1000) * pow2(-1000);
}

}  // namespace nemotron
