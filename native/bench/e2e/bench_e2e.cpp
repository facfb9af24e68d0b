// nemotron_bench_e2e: the engine end to end on RANDOM weights of a real
// NemotronH shape (issue 4: load, prefill and batch-1 decode tokens/s, peak
// memory; issue 8: batched decode at many streams). A plain native binary, so
// it runs on a GPU machine without Node: it writes its own random checkpoint.
// Speed does not depend on weight values; the outputs are meaningless.
#include <chrono>
#include <cstdio>
#include <exception>
#include <fstream>
#include <utility>

#include "backend/device_probe.h"
#include "bench/e2e/memory_tracker.h"
#include "bench/e2e/options.h"
#include "bench/e2e/phases.h"
#include "bench/e2e/random_checkpoint.h"
#include "bench/e2e/report.h"
#include "bench/e2e/weight_traffic.h"
#include "bench/e2e/yardsticks.h"
#include "engine/engine.h"

using namespace nemotron;
using namespace nemotron::bench;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Prints "label 10% ... 100%" as a long job crosses each tenth.
class TenthsPrinter {
 public:
  explicit TenthsPrinter(const char* label) : label_(label) {}
  void update(uint64_t done, uint64_t total) {
    if (total == 0) return;
    if (!started_) std::printf("  %s", label_);
    started_ = true;
    const int tenth = static_cast<int>(done * 10 / total);
    if (tenth <= shown_) {
      std::fflush(stdout);
      return;
    }
    shown_ = tenth;
    std::printf(" %d%%", tenth * 10);
    if (tenth == 10) std::printf("\n");
    std::fflush(stdout);
  }

 private:
  const char* label_;
  bool started_ = false;
  int shown_ = 0;
};

// "auto" means CUDA when usable (the engine's own 'auto' still prefers the CPU
// until the CUDA kernels are verified; a benchmark wants the GPU).
bool resolve_device(const std::string& asked, std::string* device) {
  const CudaStatus& cuda = cuda_status();
  if (asked == "cuda" && !cuda.available) {
    std::fprintf(stderr, "nemotron_bench_e2e: --device cuda, but CUDA cannot be used: %s\n", cuda.reason.c_str());
    return false;
  }
  *device = asked == "cpu" ? "cpu" : asked == "cuda" ? "cuda" : (cuda.available ? "cuda" : "cpu");
  if (asked == "auto")
    std::printf("device   auto -> %s%s\n", device->c_str(),
                cuda.available ? "" : (" (CUDA not usable: " + cuda.reason + ")").c_str());
  return true;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

int run(int argc, char** argv) {
  BenchOptions o;
  int code = 0;
  if (!parse_options(argc, argv, &o, &code)) return code;

  std::printf("# nemotron_bench_e2e: end-to-end engine benchmark%s\n",
              o.model_dir.empty() ? " on RANDOM weights (speed does not depend on values; outputs are meaningless)"
                                  : "");
  RunInfo info;
  if (!resolve_device(o.device, &info.device)) return 1;
  info.device_name = describe_device(info.device);
  resolve_defaults(&o, info.device);
  std::printf("device   %s: %s\n", info.device.c_str(), info.device_name.c_str());
  std::printf("sizes    prefill %s | decode context %s | streams %s | %d decode steps%s\n",
              join_lengths(o.prefill).c_str(), join_lengths(o.decode_context).c_str(), join_lengths(o.streams).c_str(),
              o.decode_steps, o.quick ? " (--quick)" : "");
  if (!o.defaulted.empty())
    std::printf("         (%s: %s defaults%s)\n", join(o.defaulted).c_str(), info.device == "cuda" ? "GPU" : "CPU",
                info.device == "cuda" ? "" : ", small so a CPU run takes seconds; pass them to change");

  // ---- the checkpoint
  if (o.model_dir.empty()) {
    info.preset = o.preset.empty() ? (info.device == "cuda" ? "nano-9b-v2" : "bench-mid") : o.preset;
    const RandomPreset* preset = find_random_preset(info.preset);
    info.model_dir = o.dir.empty() ? "/tmp/nemotron-random-" + info.preset : o.dir;
    std::printf("model    preset %s (random, bf16, %.1f GB) in %s\n", info.preset.c_str(),
                random_checkpoint_file_bytes(*preset) / 1e9, info.model_dir.c_str());
    std::fflush(stdout);
    try {
      TenthsPrinter tenths("writing random checkpoint:");
      const RandomCheckpoint ck = ensure_random_checkpoint(info.model_dir, *preset, o.seed,
                                                           [&](uint64_t d, uint64_t t) { tenths.update(d, t); });
      info.checkpoint_written = ck.written;
      info.checkpoint_write_s = ck.seconds;
      if (ck.written)
        std::printf("  wrote %.1f GB in %.1f s (%.2f GB/s)\n", ck.file_bytes / 1e9, ck.seconds,
                    ck.file_bytes / 1e9 / ck.seconds);
      else
        std::printf("  reusing it: its config.json matches the preset\n");
    } catch (const std::exception& e) {
      std::fprintf(stderr, "nemotron_bench_e2e: cannot prepare the random checkpoint: %s\n", e.what());
      return 1;
    }
  } else {
    info.model_dir = o.model_dir;
    std::printf("model    %s\n", info.model_dir.c_str());
  }

  // ---- yardstick, before the model takes the memory and the cores
  info.copy = measure_copy_bandwidth(info.device, o.threads);
  if (info.copy.gbps > 0)
    std::printf("copy bw  %.1f GB/s (%s)\n", info.copy.gbps, info.copy.method.c_str());
  else
    std::printf("copy bw  %s\n", info.copy.method.c_str());
  MemoryTracker memory(info.device);

  // ---- load
  std::unique_ptr<Engine> engine;
  try {
    EngineOptions eo;
    eo.device = info.device;
    eo.threads = o.threads;
    eo.max_batch_tokens = o.max_batch_tokens;
    eo.kv_cache = o.kv_cache;
    TenthsPrinter tenths("loading weights:");
    const double t0 = now_s();
    engine = Engine::load(info.model_dir, eo, [&](const std::string& stage, uint64_t done, uint64_t total) {
      if (stage == "weights") tenths.update(done, total);
    });
    info.load_s = now_s() - t0;
    info.decode_weight_bytes = decode_weight_bytes(info.model_dir, engine->config());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nemotron_bench_e2e: loading %s failed: %s\n", info.model_dir.c_str(), e.what());
    return 1;
  }
  memory.sample("load");
  const ModelConfig& c = engine->config();
  std::printf("load     %.2f s (%.2f GB, %.2f GB/s) on %s, %d threads; %lld layers %s, hidden %lld, vocab %lld\n",
              info.load_s, engine->weight_bytes() / 1e9, engine->weight_bytes() / 1e9 / info.load_s,
              engine->device().c_str(), engine->threads(), static_cast<long long>(c.num_layers), c.pattern.c_str(),
              static_cast<long long>(c.hidden_size), static_cast<long long>(c.vocab_size));
  std::printf("decode reads %.2f GB of weights per step (all but the embedding table)\n",
              info.decode_weight_bytes / 1e9);
  std::fflush(stdout);

  // ---- phases
  PhaseContext ctx{*engine, o, memory, info.decode_weight_bytes, info.copy.gbps};
  RunResults r;
  // The report is rewritten after every phase, so a run cut off by a time
  // limit (a lent GPU's call) still leaves the numbers it measured.
  auto write_json = [&](JsonOut targets) {
    if (o.json.empty()) return true;
    std::ofstream out(o.json, std::ios::binary | std::ios::trunc);
    out << build_report(info, o, *engine, memory, r, std::move(targets)).dump() << "\n";
    if (out) return true;
    std::fprintf(stderr, "nemotron_bench_e2e: cannot write %s\n", o.json.c_str());
    return false;
  };
  r.prefill = run_prefill(ctx);
  write_json(JsonOut::array());
  r.decode = run_decode(ctx);
  write_json(JsonOut::array());
  r.streams = run_streams(ctx);

  if (!write_json(print_summary(info, *engine, memory, r))) return 1;
  if (!o.json.empty()) std::printf("wrote %s\n", o.json.c_str());

  // Skipped sizes are expected (context, memory); a phase that threw is not.
  bool errors = false;
  for (const auto& x : r.prefill) errors = errors || x.status == "error";
  for (const auto& x : r.decode) errors = errors || x.status == "error";
  for (const auto& x : r.streams) errors = errors || x.status == "error";
  if (errors) std::fprintf(stderr, "nemotron_bench_e2e: some measurements failed (see 'error' rows above)\n");
  return errors ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nemotron_bench_e2e: %s\n", e.what());
    return 1;
  }
}
