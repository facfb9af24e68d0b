#include "bench/e2e/options.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "bench/e2e/random_presets.h"

namespace nemotron {
namespace bench {
namespace {

void usage(FILE* f) {
  std::fprintf(f,
               "usage: nemotron_bench_e2e [options]\n"
               "End-to-end benchmark of the engine on RANDOM weights of a real NemotronH shape\n"
               "(or on --model DIR): load, prefill tok/s, decode tok/s at batch 1, batched decode\n"
               "at several stream counts, peak memory.\n\n"
               "  --preset %s   shape of the random checkpoint\n"
               "                     (default: nano-9b-v2 when CUDA is usable, else bench-mid)\n"
               "  --model DIR        benchmark an existing checkpoint (e.g. the real one) instead\n"
               "  --dir DIR          where the random checkpoint is written / reused\n"
               "                     (default /tmp/nemotron-random-<preset>)\n"
               "  --device auto|cpu|cuda   (auto: CUDA when usable)\n"
               "  --kv-cache auto|f32|bf16 KV cache type (auto: bf16 on CUDA, f32 on the CPU)\n"
               "  --prefill L1,L2,..        prompt lengths (GPU default 1024,8192,32768; CPU 128,512)\n"
               "  --decode-context C1,..    contexts for batch-1 decode (GPU 1024,32768; CPU 128)\n"
               "  --streams N1,N2,..        concurrent streams (GPU 1,8,32,64,128; CPU 1,4,16)\n"
               "  --decode-steps N          timed decode steps per measurement (GPU 128; CPU 32)\n"
               "  --warmup-steps N          untimed steps before each decode measurement (2)\n"
               "  --stream-prompt N         prompt tokens per stream in the batched phase (16)\n"
               "  --temperature T           decode sampling: 0 = greedy (default), else T with top-p 0.95\n"
               "  --max-batch-tokens N      prefill chunk size of the engine (512)\n"
               "  --threads N               CPU threads (default all cores)\n"
               "  --seed N                  random weights seed (1234)\n"
               "  --quick                   fewer sizes and steps (GPU 1024,8192 / 1024 / 1,8,64 / 32;\n"
               "                            CPU 128 / 64 / 1,4 / 8)\n"
               "  --json FILE               write every number as JSON\n",
               random_preset_names().c_str());
}

bool parse_int(const char* s, int64_t lo, int64_t hi, int64_t* out) {
  if (!s || !*s) return false;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(s, &end, 10);
  if (errno || *end || v < lo || v > hi) return false;
  *out = v;
  return true;
}

bool parse_list(const char* s, int64_t lo, int64_t hi, std::vector<int64_t>* out) {
  out->clear();
  std::string item;
  for (const char* p = s;; ++p) {
    if (*p == ',' || *p == 0) {
      int64_t v = 0;
      if (!parse_int(item.c_str(), lo, hi, &v)) return false;
      out->push_back(v);
      item.clear();
      if (*p == 0) break;
    } else {
      item += *p;
    }
  }
  return !out->empty();
}

}  // namespace

std::string join_lengths(const std::vector<int64_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s;
}

bool parse_options(int argc, char** argv, BenchOptions* o, int* exit_code) {
  *exit_code = 2;
  auto bad = [&](const std::string& msg) {
    std::fprintf(stderr, "nemotron_bench_e2e: %s\n\n", msg.c_str());
    usage(stderr);
    return false;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      usage(stdout);
      *exit_code = 0;
      return false;
    }
    if (a == "--quick") {
      o->quick = true;
      continue;
    }
    static const char* const kValued[] = {"--preset",         "--model",          "--dir",
                                          "--device",         "--prefill",        "--decode-context",
                                          "--streams",        "--decode-steps",   "--warmup-steps",
                                          "--stream-prompt",  "--max-batch-tokens", "--threads",
                                          "--seed",           "--json",           "--temperature",
                                          "--kv-cache"};
    bool known = false;
    for (const char* k : kValued) known = known || a == k;
    if (!known) return bad("unknown option " + a);
    if (i + 1 >= argc) return bad("option " + a + " needs a value");
    const char* v = argv[++i];
    int64_t n = 0;
    constexpr int64_t kMaxLen = int64_t(1) << 24;  // 16M tokens: far past any context
    if (a == "--preset") {
      if (!find_random_preset(v)) return bad(std::string("unknown preset '") + v + "' (" + random_preset_names() + ")");
      o->preset = v;
    } else if (a == "--model") {
      o->model_dir = v;
    } else if (a == "--dir") {
      o->dir = v;
    } else if (a == "--device") {
      o->device = v;
      if (o->device != "auto" && o->device != "cpu" && o->device != "cuda")
        return bad("--device must be auto, cpu or cuda");
    } else if (a == "--kv-cache") {
      o->kv_cache = v;
      if (o->kv_cache != "auto" && o->kv_cache != "f32" && o->kv_cache != "bf16")
        return bad("--kv-cache must be auto, f32 or bf16");
    } else if (a == "--prefill") {
      if (!parse_list(v, 1, kMaxLen, &o->prefill)) return bad("--prefill expects positive lengths like 1024,8192");
    } else if (a == "--decode-context") {
      if (!parse_list(v, 1, kMaxLen, &o->decode_context))
        return bad("--decode-context expects positive lengths like 1024,32768");
    } else if (a == "--streams") {
      if (!parse_list(v, 1, 4096, &o->streams)) return bad("--streams expects counts like 1,8,64 (1..4096)");
      // Ascending, so the 1-stream row (the scaling's base) comes first.
      std::sort(o->streams.begin(), o->streams.end());
      o->streams.erase(std::unique(o->streams.begin(), o->streams.end()), o->streams.end());
    } else if (a == "--decode-steps") {
      if (!parse_int(v, 1, 1 << 20, &n)) return bad("--decode-steps expects a positive count");
      o->decode_steps = static_cast<int>(n);
    } else if (a == "--warmup-steps") {
      if (!parse_int(v, 0, 1000, &n)) return bad("--warmup-steps expects 0..1000");
      o->warmup_steps = static_cast<int>(n);
    } else if (a == "--temperature") {
      char* end = nullptr;
      const double t = std::strtod(v, &end);
      if (end == v || *end != '\0' || !(t >= 0 && t <= 10)) return bad("--temperature expects 0..10");
      o->temperature = t;
    } else if (a == "--stream-prompt") {
      if (!parse_int(v, 1, kMaxLen, &n)) return bad("--stream-prompt expects a positive length");
      o->stream_prompt = n;
    } else if (a == "--max-batch-tokens") {
      if (!parse_int(v, 1, 1 << 20, &n)) return bad("--max-batch-tokens expects a positive count");
      o->max_batch_tokens = n;
    } else if (a == "--threads") {
      if (!parse_int(v, 0, 4096, &n)) return bad("--threads expects 0..4096");
      o->threads = static_cast<int>(n);
    } else if (a == "--seed") {
      if (!parse_int(v, 0, INT64_MAX, &n)) return bad("--seed expects a non-negative integer");
      o->seed = static_cast<uint64_t>(n);
    } else {  // --json
      o->json = v;
    }
  }
  if (!o->model_dir.empty() && !o->preset.empty()) return bad("--model and --preset exclude each other");
  return true;
}

void resolve_defaults(BenchOptions* o, const std::string& device) {
  const bool gpu = device == "cuda";
  auto fill = [&](std::vector<int64_t>* v, const char* name, std::vector<int64_t> full, std::vector<int64_t> quick) {
    if (!v->empty()) return;
    *v = o->quick ? quick : full;
    o->defaulted.push_back(name);
  };
  if (gpu) {
    fill(&o->prefill, "prefill", {1024, 8192, 32768}, {1024, 8192});
    fill(&o->decode_context, "decode-context", {1024, 32768}, {1024});
    fill(&o->streams, "streams", {1, 8, 32, 64, 128}, {1, 8, 64});
  } else {
    fill(&o->prefill, "prefill", {128, 512}, {128});
    fill(&o->decode_context, "decode-context", {128}, {64});
    fill(&o->streams, "streams", {1, 4, 16}, {1, 4});
  }
  if (o->decode_steps == 0) {
    o->decode_steps = gpu ? (o->quick ? 32 : 128) : (o->quick ? 8 : 32);
    o->defaulted.push_back("decode-steps");
  }
}

}  // namespace bench
}  // namespace nemotron
