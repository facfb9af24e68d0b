// The native sampler (engine/sampler.h): its top-k / top-p / min-p sets against
// a sort-based reference, greedy ties and masks, the RNG and exp against values
// taken from Node (the JS Sampler it must match token for token), and batched
// sampling on a pool. Token-for-token equality with lib/chat/sampling.ts itself
// is checked from JS (test/native-sampling.test.ts).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "common/cpu_features.h"
#include "common/thread_pool.h"
#include "engine/sampler.h"
#include "sampling_cases.h"
#include "test_framework.h"

using namespace nemotron;

namespace {

// The test's own LCG (the same as test/sampling.test.ts's), for case generation.
struct Lcg {
  uint64_t s;
  double next() {
    s = (s * 1103515245 + 12345) % 2147483648ull;
    return static_cast<double>(s) / 2147483648.0;
  }
};

SamplingParams params(double t, int64_t top_k, double top_p, double min_p) {
  SamplingParams p;
  p.temperature = t;
  p.top_k = top_k;
  p.top_p = top_p;
  p.min_p = min_p;
  p.rng = Rng::seeded(1);
  return p;
}

// Sort by (logit desc, id asc), cut to k, then the smallest prefix reaching
// top_p of the mass, then min-p relative to the best; ids ascending.
std::vector<int32_t> reference_set(const std::vector<float>& l, const SamplingParams& p) {
  double max = -std::numeric_limits<double>::infinity();
  for (float x : l) max = std::max<double>(max, x);
  std::vector<int32_t> ids;
  for (size_t i = 0; i < l.size(); ++i)
    if (l[i] >= max + p.temperature * std::log(1e-9)) ids.push_back(static_cast<int32_t>(i));
  std::stable_sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return l[a] > l[b]; });
  if (p.top_k > 0 && static_cast<size_t>(p.top_k) < ids.size()) ids.resize(p.top_k);
  std::vector<double> w;
  double z = 0;
  for (int32_t i : ids) {
    w.push_back(js_exp((l[i] - max) / p.temperature));
    z += w.back();
  }
  size_t n = ids.size();
  if (p.top_p < 1) {
    double cum = 0;
    for (size_t i = 0; i < ids.size(); ++i) {
      cum += w[i];
      if (cum >= p.top_p * z) {
        n = i + 1;
        break;
      }
    }
  }
  std::vector<int32_t> out;
  for (size_t i = 0; i < n; ++i)
    if (w[i] >= p.min_p) out.push_back(ids[i]);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<int32_t> native_set(const std::vector<float>& l, const SamplingParams& p) {
  std::vector<int32_t> ids;
  std::vector<double> w;
  sample_candidates(l.data(), static_cast<int64_t>(l.size()), p, ids, w);
  std::sort(ids.begin(), ids.end());
  return ids;
}

}  // namespace

TEST(sampler_topk_topp_minp_sets_match_a_full_sort) {
  const double spreads[] = {0.01, 1, 8};  // flat, moderate, peaked
  const double temps[] = {0.3, 0.7, 1, 1.5};
  const int64_t top_ks[] = {0, 1, 5, 50};
  const double top_ps[] = {1, 0.95, 0.5, 0.1};
  const double min_ps[] = {0, 0.05};
  Lcg rand{12345};
  int checked = 0;
  for (int trial = 0; trial < 1200; ++trial) {
    // Mostly small vocabularies (many ties, every cut hit), some large flat ones
    // (thousands of candidates: the quickselect's deep recursion paths).
    const int64_t V =
        trial % 10 == 0 ? 2000 + static_cast<int64_t>(rand.next() * 6000) : 1 + static_cast<int64_t>(rand.next() * 300);
    const double spread = spreads[trial % 3];
    std::vector<float> l(static_cast<size_t>(V));
    for (float& x : l) x = static_cast<float>(std::round(rand.next() * spread * 8) / 8);  // a coarse grid: ties
    const SamplingParams p =
        params(temps[trial % 4], top_ks[(trial >> 2) % 4], top_ps[(trial >> 4) % 4], min_ps[(trial >> 6) % 2]);
    const std::vector<int32_t> got = native_set(l, p), want = reference_set(l, p);
    CHECK(got == want);
    if (got != want) std::fprintf(stderr, "  trial %d: %zu vs %zu ids\n", trial, got.size(), want.size());
    ++checked;
  }
  CHECK(checked == 1200);
}

TEST(sampler_greedy_takes_the_first_best_and_never_draws) {
  std::vector<float> l = {1.0f, 3.0f, 2.0f, 3.0f};
  SamplingParams p = params(0, 0, 1, 0);
  const RngState before = p.rng;
  CHECK(sample_token(l.data(), 4, p) == 1);  // a tie goes to the lower id
  p.mask = {1};
  p.has_mask = true;
  CHECK(sample_token(l.data(), 4, p) == 3);
  p.bias = {{0, 5.0}};
  CHECK(sample_token(l.data(), 4, p) == 0);
  CHECK(std::equal(before.s, before.s + 4, p.rng.s));
  CHECK(l[0] == 1.0f && l[1] == 3.0f);  // the input is not modified
}

TEST(sampler_penalties_follow_the_js_rules) {
  const std::vector<float> l = {2.0f, 1.0f, 0.5f, -1.0f, 0.0f};
  SamplingParams p = params(0, 0, 1, 0);
  p.repetition_penalty = 4;  // 2 / 4 = 0.5 < 1
  p.history = {0};
  CHECK(sample_token(l.data(), 5, p) == 1);
  p = params(0, 0, 1, 0);
  p.frequency_penalty = 0.4;  // 2 - 0.8 still wins; 2 - 1.2 does not
  p.history = {0, 0};
  CHECK(sample_token(l.data(), 5, p) == 0);
  p.history = {0, 0, 0};
  CHECK(sample_token(l.data(), 5, p) == 1);
  p.penalty_window = 2;  // only the last two count
  CHECK(sample_token(l.data(), 5, p) == 0);
  const std::vector<float> neg = {-1.0f, -1.5f};
  p = params(0, 0, 1, 0);
  p.repetition_penalty = 2;  // negative logits are multiplied
  p.history = {0, 7, -3};    // out-of-range ids are ignored
  CHECK(sample_token(neg.data(), 2, p) == 1);
}

TEST(sampler_all_masked_is_an_error_and_keeps_the_rng) {
  const std::vector<float> l = {1.0f, 2.0f};
  for (double t : {0.0, 1.0}) {
    SamplingParams p = params(t, 0, 1, 0);
    p.mask = {0, 1};
    p.has_mask = true;
    const RngState before = p.rng;
    CHECK_THROWS_WITH(sample_token(l.data(), 2, p), "every token is masked");
    CHECK(std::equal(before.s, before.s + 4, p.rng.s));
  }
}

TEST(sampler_rng_matches_lib_chat_rng) {
  // new Rng(42).next() * 2**32, four times, and new Rng(-1) (seed >>> 0), from Node.
  Rng r(Rng::seeded(42));
  const double want[] = {2837322924.0, 544945897.0, 479756282.0, 3500138142.0};
  for (double w : want) CHECK(r.next() * 4294967296.0 == w);
  Rng m(Rng::seeded(0xffffffffu));
  CHECK(m.next() * 4294967296.0 == 835879718.0);
}

TEST(sampler_exp_matches_v8_math_exp) {
  // {x, Math.exp(x)} from Node; the first six are inputs where glibc's exp differs by an ulp.
  const double cases[][2] = {{-490.91023206710815, 6.3153162493212547e-214},
                             {-281.03779515624046, 8.8478216017615263e-123},
                             {-82.639641761779785, 1.2884263448682225e-36},
                             {-0.54939746856689453, 0.57729754552672286},
                             {-651.14714080095291, 1.6232665636553671e-283},
                             {-8.2325185537338257, 0.00026586588880865168},
                             {-26.206161938607693, 4.1572723633004486e-12},
                             {0.35892295837402344, 1.4317864901631747},
                             {1.731233596801758e-8, 1.000000017312336},
                             {359.12901163101196, 9.284276003707237e+155},
                             {1.0, 2.718281828459045},
                             {0.0, 1.0},
                             {743.8216209411621, std::numeric_limits<double>::infinity()},
                             {-std::numeric_limits<double>::infinity(), 0.0}};
  for (const auto& c : cases) CHECK(js_exp(c[0]) == c[1]);
  CHECK(std::isnan(js_exp(std::numeric_limits<double>::quiet_NaN())));
}

TEST(sampler_vector_exp_equals_the_scalar_one_bit_for_bit) {
  // The AVX2 path covers (-707, -2^-28]; probe it densely, around its branch
  // thresholds (high words of ln2/2, 1.5 ln2, 2^-28, 709.78) and outside it.
  Lcg rand{3};
  std::vector<double> x;
  const uint32_t thresholds[] = {0x3FD62E42u, 0x3FD62E43u, 0x3FF0A2B1u, 0x3FF0A2B2u, 0x3e300000u, 0x3e2fffffu, 0x40862E42u};
  for (int i = 0; i < 400000; ++i) {
    switch (i % 5) {
      case 0: x.push_back(-rand.next() * 30); break;
      case 1: x.push_back(-rand.next() * 720); break;
      case 2: {
        const uint64_t hi = thresholds[i % 7] | 0x80000000u, lo = static_cast<uint64_t>(rand.next() * 4294967296.0);
        const uint64_t bits = hi << 32 | lo;
        double v;
        std::memcpy(&v, &bits, sizeof v);
        x.push_back(v);
        break;
      }
      case 3: x.push_back(-std::ldexp(1 + rand.next(), -static_cast<int>(rand.next() * 40))); break;
      default: x.push_back(rand.next() * 4 - 2); break;
    }
  }
  x.push_back(std::numeric_limits<double>::quiet_NaN());
  x.push_back(-std::numeric_limits<double>::infinity());
  std::vector<double> y = x;
  js_exp_in_place(y.data(), static_cast<int64_t>(y.size()));
  size_t bad = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double want = js_exp(x[i]);
    if (!(y[i] == want || (std::isnan(y[i]) && std::isnan(want)))) ++bad;
  }
  CHECK(bad == 0);
  // ... and the portable path (no AVX2) is the scalar one
  cpu_features_force_portable(true);
  std::vector<double> z = x;
  js_exp_in_place(z.data(), static_cast<int64_t>(z.size()));
  cpu_features_force_portable(false);
  CHECK(std::equal(z.begin(), z.end() - 2, y.begin()));
}

TEST(sampler_rows_on_a_pool_equal_rows_one_by_one_and_errors_stay_per_row) {
  const int64_t V = 5000, rows = 24;
  Lcg rand{7};
  std::vector<float> logits(static_cast<size_t>(V * rows));
  for (float& x : logits) x = static_cast<float>(rand.next() * 10);
  std::vector<SampleJob> jobs(rows);
  for (int64_t r = 0; r < rows; ++r) {
    jobs[r].row = r;
    jobs[r].params = params(r % 4 == 0 ? 0 : 0.6, r % 3 == 0 ? 40 : 0, 0.95, r % 5 == 0 ? 0.05 : 0);
    jobs[r].params.rng = Rng::seeded(static_cast<uint32_t>(r));
  }
  jobs[5].params.has_mask = true;
  for (int32_t t = 0; t < V; ++t) jobs[5].params.mask.push_back(t);  // row 5 cannot be sampled
  std::vector<SampleJob> serial = jobs;
  ThreadPool pool(4);
  sample_rows(logits.data(), V, jobs, &pool);
  sample_rows(logits.data(), V, serial, nullptr);
  for (int64_t r = 0; r < rows; ++r) {
    CHECK(jobs[r].id == serial[r].id);
    CHECK(std::equal(jobs[r].params.rng.s, jobs[r].params.rng.s + 4, serial[r].params.rng.s));
    CHECK((r == 5) == (jobs[r].id == -1));
    CHECK((r == 5) == !jobs[r].error.empty());
  }
}

// Sampling where the logits are (sample_rows_in: edits + candidate search in the
// backend, the draw on the host) must give sample_rows's ids, RNG states and
// errors exactly; here on the CPU backend (the CUDA one: cuda/test_cuda_sampling.cpp).
TEST(sampler_in_the_backend_equals_sampling_the_full_rows) {
  CpuBackend backend(2);
  int fallbacks = 0, errors = 0, draws = 0;
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    const int64_t vocab = seed % 2 ? 3001 : 257, rows = 26;
    nemotron_test::SamplingCases c = nemotron_test::make_sampling_cases(vocab, rows, seed);
    std::vector<SampleJob> want = c.jobs;
    sample_rows(c.logits.data(), vocab, want, nullptr);
    std::vector<float> buffer = c.logits;  // the CPU backend's memory is host memory
    std::vector<SampleJob> got = c.jobs;
    ThreadPool pool(2);
    sample_rows_in(backend, buffer.data(), rows, vocab, got, seed % 3 ? &pool : nullptr);
    for (size_t j = 0; j < got.size(); ++j) {
      CHECK(got[j].id == want[j].id);
      CHECK(got[j].error == want[j].error);
      CHECK(std::equal(got[j].params.rng.s, got[j].params.rng.s + 4, want[j].params.rng.s));
      std::vector<LogitEdit> edits;
      if (!logit_edits(c.jobs[j].params, 0, vocab, edits)) ++fallbacks;
      if (!want[j].error.empty()) ++errors;
      if (want[j].params.temperature > 0 && want[j].error.empty()) ++draws;
    }
  }
  // every path was taken
  CHECK(fallbacks > 0);
  CHECK(errors > 0);
  CHECK(draws > 20);
}

// NEMOTRON_BACKEND_SAMPLING=0 (the switch that rules the backend kernels out)
// samples every row from a host copy: still the same ids.
TEST(sampler_backend_sampling_switch_gives_the_same_ids) {
  CpuBackend backend(1);
  nemotron_test::SamplingCases c = nemotron_test::make_sampling_cases(999, 26, 11);
  std::vector<SampleJob> want = c.jobs;
  sample_rows(c.logits.data(), 999, want, nullptr);
  setenv("NEMOTRON_BACKEND_SAMPLING", "0", 1);
  CHECK(!backend_sampling_enabled());
  std::vector<float> buffer = c.logits;
  std::vector<SampleJob> got = c.jobs;
  sample_rows_in(backend, buffer.data(), 26, 999, got, nullptr);
  unsetenv("NEMOTRON_BACKEND_SAMPLING");
  CHECK(backend_sampling_enabled());
  CHECK(buffer == c.logits);  // nothing was edited in place: every row went to the host
  for (size_t j = 0; j < got.size(); ++j) {
    CHECK(got[j].id == want[j].id);
    CHECK(got[j].error == want[j].error);
  }
}

TEST(sampler_in_the_backend_rejects_bad_rows_before_touching_anything) {
  CpuBackend backend(1);
  std::vector<float> l = {1, 2, 3, 4};
  std::vector<SampleJob> jobs(2);
  jobs[0].row = 0;
  jobs[1].row = 0;
  CHECK_THROWS_WITH(sample_rows_in(backend, l.data(), 2, 2, jobs, nullptr), "sampled twice");
  jobs[1].row = 2;
  CHECK_THROWS_WITH(sample_rows_in(backend, l.data(), 2, 2, jobs, nullptr), "outside the batch");
  jobs[1].row = 1;
  jobs[1].params.temperature = 0;
  jobs[0].params.temperature = 0;
  sample_rows_in(backend, l.data(), 2, 2, jobs, nullptr);
  CHECK(jobs[0].id == 1 && jobs[1].id == 1);
}

// The edits alone: applied by the backend they give adjusted() of the JS Sampler
// (checked through greedy picks, which read the adjusted row directly).
TEST(sampler_logit_edits_are_one_per_token_and_merge_penalty_bias_mask) {
  SamplingParams p;
  p.history = {4, 2, 4, 9};
  p.repetition_penalty = 2;
  p.presence_penalty = 0.5;
  p.bias = {{4, 1.0}, {7, -2.0}, {99, 1.0}};
  p.has_mask = true;
  p.mask = {2, 2, 8};
  std::vector<LogitEdit> edits;
  CHECK(logit_edits(p, 3, 10, edits));
  std::vector<int32_t> tokens;
  for (const LogitEdit& e : edits) {
    tokens.push_back(e.token);
    CHECK(e.row == 3);
  }
  std::sort(tokens.begin(), tokens.end());
  CHECK((tokens == std::vector<int32_t>{2, 4, 7, 8, 9}));  // 99 is out of range; 2 once
  for (const LogitEdit& e : edits) {
    if (e.token == 4) CHECK(e.flags == (LogitEdit::kPenalty | LogitEdit::kBias) && e.subtract == 0.5);
    if (e.token == 2) CHECK(e.flags == (LogitEdit::kPenalty | LogitEdit::kMask));
    if (e.token == 8) CHECK(e.flags == LogitEdit::kMask);
  }
  p.bias.push_back({7, 1.0});
  const size_t before = edits.size();
  CHECK(!logit_edits(p, 1, 10, edits));
  CHECK(edits.size() == before);  // nothing half-written
}
