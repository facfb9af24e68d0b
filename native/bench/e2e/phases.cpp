#include "bench/e2e/phases.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <memory>

namespace nemotron {
namespace bench {
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Linear interpolation between the nearest ranks.
double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double pos = p / 100.0 * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(pos);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / static_cast<double>(v.size());
}

// Token ids are a fixed hash of (stream, position), never fed back from the
// logits: the numbers measure the engine, not a sampler, and every run feeds
// the same ids. Id 0 (pad) is avoided; every id is < vocab (the engine checks).
int32_t token_at(uint64_t stream, uint64_t i, int64_t vocab) {
  uint64_t z = stream * 0x9e3779b97f4a7c15ULL + i + 1;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return vocab > 1 ? static_cast<int32_t>(1 + z % static_cast<uint64_t>(vocab - 1)) : 0;
}

std::vector<int32_t> prompt_tokens(uint64_t stream, int64_t n, int64_t vocab) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) t[static_cast<size_t>(i)] = token_at(stream, static_cast<uint64_t>(i), vocab);
  return t;
}

bool all_finite(const std::vector<float>& v) {
  for (float x : v)
    if (!std::isfinite(x)) return false;
  return true;
}

std::string gib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", bytes / double(uint64_t(1) << 30));
  return buf;
}

// A sequence of `tokens` must fit the model's context (when the config says).
bool context_fits(const Engine& e, int64_t tokens, std::string* why) {
  const int64_t max_pos = e.config().max_position_embeddings;
  if (max_pos <= 0 || tokens <= max_pos) return true;
  *why = "needs a context of " + std::to_string(tokens) + " tokens; the model's max_position_embeddings is " +
         std::to_string(max_pos);
  return false;
}

// `seqs` sequences of `context` tokens (state + KV) must fit in 90% of the free
// memory (no pass exceeds max_batch_tokens rows, so the activations stay as planned).
bool memory_fits(const Engine& e, int64_t seqs, int64_t context, std::string* why) {
  const MemoryPlan p = e.memory_plan();
  if (p.device_free_bytes == 0) return true;  // unknown: let the allocation decide
  const uint64_t need = static_cast<uint64_t>(seqs) * (p.state_bytes_per_sequence + p.kv_bytes_per_token * context);
  if (need <= p.device_free_bytes / 10 * 9) return true;
  *why = std::to_string(seqs) + " sequence(s) of " + std::to_string(context) + " tokens need " + gib(need) +
         " of state + KV; " + gib(p.device_free_bytes) + " are free on " + p.device;
  return false;
}

template <class R>
bool admit(R& r, bool fits, const std::string& why) {
  if (fits) return true;
  r.status = "skipped";
  r.reason = why;
  return false;
}

template <class R>
void record_error(R& r, const std::exception& e) {
  r.status = "error";
  r.reason = e.what();
}

void print_not_run(const char* lead, const Outcome& o) {
  std::printf("%s  %s: %s\n", lead, o.status.c_str(), o.reason.c_str());
  std::fflush(stdout);
}

// Untimed steps, then `steps` timed ones; every step decodes one token for each
// sequence in one Engine::decode_sampled call, greedy (temperature 0) or at
// `temperature` with top-p 0.95, as the Node addon runs a batched step: sampled
// where the logits are, so only ids (or candidates) reach the host. Returns each step's seconds. The first step (a warm-up one unless
// warmup is 0) also copies every row's logits to `logits`, for the finiteness check.
std::vector<double> timed_decode(Engine& e, const std::vector<SequenceState*>& seqs, int warmup, int steps,
                                 double temperature, std::vector<float>& logits, uint64_t position) {
  const int64_t vocab = e.config().vocab_size;
  std::vector<DecodeItem> items(seqs.size());
  std::vector<SampleJob> jobs(seqs.size());
  std::vector<int64_t> all_rows(seqs.size());
  for (size_t i = 0; i < seqs.size(); ++i) all_rows[i] = static_cast<int64_t>(i);
  std::vector<double> times;
  for (int s = 0; s < warmup + steps; ++s) {
    for (size_t i = 0; i < seqs.size(); ++i) {
      items[i] = {seqs[i], token_at(i + 1000, position + s, vocab)};
      jobs[i] = SampleJob{};
      jobs[i].row = static_cast<int64_t>(i);
      jobs[i].params.temperature = temperature;
      if (temperature > 0) {
        jobs[i].params.top_p = 0.95;
        jobs[i].params.rng = Rng::seeded(static_cast<uint32_t>(i + 1));
      }
    }
    const double t0 = now_s();
    e.decode_sampled(items, jobs, s == 0 ? all_rows : std::vector<int64_t>{}, logits.data(), nullptr);
    if (s >= warmup) times.push_back(now_s() - t0);
  }
  return times;
}

}  // namespace

std::vector<PrefillResult> run_prefill(PhaseContext& ctx) {
  Engine& e = ctx.engine;
  const int64_t vocab = e.config().vocab_size;
  std::vector<PrefillResult> out;
  std::printf("\nprefill: a fresh sequence per prompt, last-token logits; the engine runs chunks of %lld tokens\n",
              static_cast<long long>(ctx.opts.max_batch_tokens));
  std::printf("  %8s  %10s  %12s  %4s\n", "prompt", "ms", "tokens/s", "reps");
  std::fflush(stdout);
  std::vector<float> logits(static_cast<size_t>(vocab));
  // Warm-up: the first forward pass allocates the activation scratch and loads kernels.
  try {
    const int64_t n = std::min<int64_t>(*std::min_element(ctx.opts.prefill.begin(), ctx.opts.prefill.end()),
                                        ctx.opts.max_batch_tokens);
    std::string why;
    if (context_fits(e, n, &why)) {
      auto seq = e.create_sequence(n);
      const auto t = prompt_tokens(0, n, vocab);
      e.prefill(*seq, t.data(), n, false, logits.data());
    }
  } catch (const std::exception&) {
    // the measured prompts below report the problem
  }
  for (int64_t len : ctx.opts.prefill) {
    PrefillResult r;
    r.tokens = len;
    char lead[32];
    std::snprintf(lead, sizeof lead, "  %8lld", static_cast<long long>(len));
    std::string why;
    if (!admit(r, context_fits(e, len, &why) && memory_fits(e, 1, len, &why), why)) {
      print_not_run(lead, r);
      out.push_back(r);
      continue;
    }
    try {
      const auto tokens = prompt_tokens(1, len, vocab);
      std::vector<double> secs;
      // Up to 3 repetitions within ~2 s (one with --quick); the median is reported.
      const int max_reps = ctx.opts.quick ? 1 : 3;
      double spent = 0;
      while (static_cast<int>(secs.size()) < max_reps && (secs.empty() || spent < 2.0)) {
        auto seq = e.create_sequence(len);
        const double t0 = now_s();
        e.prefill(*seq, tokens.data(), len, false, logits.data());
        secs.push_back(now_s() - t0);
        spent += secs.back();
        r.logits_finite = r.logits_finite && all_finite(logits);
        ctx.memory.sample("prefill " + std::to_string(len));
      }
      r.reps = static_cast<int>(secs.size());
      r.ms = percentile(secs, 50) * 1e3;
      r.tokens_per_s = len / (r.ms / 1e3);
      std::printf("%s  %10.1f  %12.1f  %4d%s\n", lead, r.ms, r.tokens_per_s, r.reps,
                  r.logits_finite ? "" : "  WARNING: non-finite logits");
      std::fflush(stdout);
    } catch (const std::exception& ex) {
      record_error(r, ex);
      print_not_run(lead, r);
    }
    out.push_back(r);
  }
  return out;
}

std::vector<DecodeResult> run_decode(PhaseContext& ctx) {
  Engine& e = ctx.engine;
  const BenchOptions& o = ctx.opts;
  const int64_t vocab = e.config().vocab_size;
  std::vector<DecodeResult> out;
  const bool bw = ctx.decode_weight_bytes > 0 && ctx.copy_gbps > 0;
  std::printf("\ndecode, batch 1: %d timed steps (+%d warm-up) after a prompt of each context length\n",
              o.decode_steps, o.warmup_steps);
  std::printf("  %8s  %10s  %9s  %8s  %8s  %11s  %11s\n", "context", "tokens/s", "ms/step", "p50 ms", "p90 ms",
              "weight GB/s", "% copy bw");
  std::fflush(stdout);
  std::vector<float> logits(static_cast<size_t>(vocab));
  for (int64_t c : o.decode_context) {
    DecodeResult r;
    r.context = c;
    r.steps = o.decode_steps;
    char lead[32];
    std::snprintf(lead, sizeof lead, "  %8lld", static_cast<long long>(c));
    const int64_t total = c + o.warmup_steps + o.decode_steps;
    std::string why;
    if (!admit(r, context_fits(e, total, &why) && memory_fits(e, 1, total, &why), why)) {
      print_not_run(lead, r);
      out.push_back(r);
      continue;
    }
    try {
      auto seq = e.create_sequence(total);
      const auto tokens = prompt_tokens(2, c, vocab);
      const double t0 = now_s();
      e.prefill(*seq, tokens.data(), c, false, logits.data());
      r.prefill_ms = (now_s() - t0) * 1e3;
      const auto times = timed_decode(e, {seq.get()}, o.warmup_steps, o.decode_steps, o.temperature, logits, c);
      r.logits_finite = all_finite(logits);
      ctx.memory.sample("decode @" + std::to_string(c));
      r.ms_per_step = mean(times) * 1e3;
      r.tokens_per_s = 1e3 / r.ms_per_step;
      r.p50_ms = percentile(times, 50) * 1e3;
      r.p90_ms = percentile(times, 90) * 1e3;
      const double gbps = ctx.decode_weight_bytes / (r.ms_per_step / 1e3) / 1e9;
      if (bw)
        std::printf("%s  %10.1f  %9.2f  %8.2f  %8.2f  %11.1f  %10.1f%%", lead, r.tokens_per_s, r.ms_per_step,
                    r.p50_ms, r.p90_ms, gbps, 100.0 * gbps / ctx.copy_gbps);
      else
        std::printf("%s  %10.1f  %9.2f  %8.2f  %8.2f  %11s  %11s", lead, r.tokens_per_s, r.ms_per_step, r.p50_ms,
                    r.p90_ms, "-", "-");
      std::printf("%s\n", r.logits_finite ? "" : "  WARNING: non-finite logits");
      std::fflush(stdout);
    } catch (const std::exception& ex) {
      record_error(r, ex);
      print_not_run(lead, r);
    }
    out.push_back(r);
  }
  return out;
}

std::vector<StreamsResult> run_streams(PhaseContext& ctx) {
  Engine& e = ctx.engine;
  const BenchOptions& o = ctx.opts;
  const int64_t vocab = e.config().vocab_size;
  std::vector<StreamsResult> out;
  std::printf(
      "\nbatched decode: N streams with a %lld-token prompt each, then %d timed steps (+%d warm-up) of one\n"
      "Engine::decode_sampled call with N items (%s, sampled where the logits are); a step's time is\n"
      "every stream's inter-token latency\n",
      static_cast<long long>(o.stream_prompt), o.decode_steps, o.warmup_steps,
      o.temperature > 0 ? "temperature + top-p 0.95" : "greedy");
  std::printf("  %8s  %12s  %12s  %9s  %8s  %8s  %8s\n", "streams", "agg tok/s", "tok/s/strm", "mean ms", "p50 ms",
              "p90 ms", "scaling");
  std::fflush(stdout);
  double single = 0;  // the 1-stream aggregate, the scaling's base
  for (int64_t n : o.streams) {
    StreamsResult r;
    r.streams = n;
    r.steps = o.decode_steps;
    char lead[32];
    std::snprintf(lead, sizeof lead, "  %8lld", static_cast<long long>(n));
    const int64_t total = o.stream_prompt + o.warmup_steps + o.decode_steps;
    std::string why;
    if (!admit(r, context_fits(e, total, &why) && memory_fits(e, n, total, &why), why)) {
      print_not_run(lead, r);
      out.push_back(r);
      continue;
    }
    try {
      std::vector<std::unique_ptr<SequenceState>> owned;
      std::vector<SequenceState*> seqs;
      std::vector<float> logits(static_cast<size_t>(n * vocab));
      for (int64_t i = 0; i < n; ++i) {
        owned.push_back(e.create_sequence(total));
        seqs.push_back(owned.back().get());
        const auto tokens = prompt_tokens(static_cast<uint64_t>(100 + i), o.stream_prompt, vocab);
        e.prefill(*seqs.back(), tokens.data(), o.stream_prompt, false, logits.data());
      }
      const auto times = timed_decode(e, seqs, o.warmup_steps, o.decode_steps, o.temperature, logits, o.stream_prompt);
      r.logits_finite = all_finite(logits);
      ctx.memory.sample("batched decode x" + std::to_string(n));
      double sum = 0;
      for (double t : times) sum += t;
      r.aggregate_tokens_per_s = static_cast<double>(n) * o.decode_steps / sum;
      r.mean_ms = mean(times) * 1e3;
      r.per_stream_tokens_per_s = 1e3 / r.mean_ms;
      r.p50_ms = percentile(times, 50) * 1e3;
      r.p90_ms = percentile(times, 90) * 1e3;
      if (n == 1) single = r.aggregate_tokens_per_s;
      r.scaling = single > 0 ? r.aggregate_tokens_per_s / single : 0;
      char scaling[16] = "-";
      if (r.scaling > 0) std::snprintf(scaling, sizeof scaling, "%.2fx", r.scaling);
      std::printf("%s  %12.1f  %12.1f  %9.2f  %8.2f  %8.2f  %8s%s\n", lead, r.aggregate_tokens_per_s,
                  r.per_stream_tokens_per_s, r.mean_ms, r.p50_ms, r.p90_ms, scaling,
                  r.logits_finite ? "" : "  WARNING: non-finite logits");
      std::fflush(stdout);
    } catch (const std::exception& ex) {
      record_error(r, ex);
      print_not_run(lead, r);
    }
    out.push_back(r);
  }
  return out;
}

}  // namespace bench
}  // namespace nemotron
