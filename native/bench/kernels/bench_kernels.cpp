// nemotron_bench_kernels: every CUDA kernel at the Nemotron-Nano-9B-v2 shapes,
// measured against this GPU's peaks: the device-to-device copy bandwidth
// (measured here) for memory-bound rows, the bf16 tensor-core and fp32 FMA
// peaks (device_peaks.cpp) for compute-bound rows; and, with --baseline, against
// PyTorch (cuBLAS matmul, SDPA) timed on the same shapes by
// scripts/torch-baselines.py.
//   nemotron_bench_kernels [--quick] [--filter SUBSTR] [--json FILE] [--baseline FILE]
//                          [--list] [--check-device]
// Without a usable GPU it prints "no CUDA device: <reason>" and exits 0.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "backend/cuda/bench_hooks.h"
#include "backend/cuda/cuda_ops.h"
#include "backend/device_probe.h"
#include "baseline.h"
#include "bench/bench_util.h"
#include "cases.h"
#include "common/error.h"
#include "device_peaks.h"
#include "roofline.h"

using namespace nemotron;
using namespace nemotron::bench;

namespace {

struct Options {
  bool quick = false, list = false, check_device = false;
  std::string filter, json_path, baseline_path;
};

[[noreturn]] void usage(const char* argv0, int code) {
  std::fprintf(code ? stderr : stdout,
               "usage: %s [--quick] [--filter SUBSTR] [--json FILE] [--baseline FILE] [--list] [--check-device]\n"
               "  --quick          fewer shapes and shorter timing (under a minute on an H100)\n"
               "  --filter SUBSTR  only the rows whose name contains SUBSTR (e.g. linear.lm_head, attn., .M1)\n"
               "  --json FILE      write every number (rewritten after each row)\n"
               "  --baseline FILE  PyTorch times from scripts/torch-baselines.py: adds the \"vs torch\" column\n"
               "  --list           print the row names and exit\n"
               "  --check-device   exit 0 when a usable CUDA device is present, else print why and exit 3\n",
               argv0);
  std::exit(code);
}

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(argv[0], 2);
      return argv[++i];
    };
    if (a == "--quick") o.quick = true;
    else if (a == "--list") o.list = true;
    else if (a == "--check-device") o.check_device = true;
    else if (a == "--filter") o.filter = value();
    else if (a == "--json") o.json_path = value();
    else if (a == "--baseline") o.baseline_path = value();
    else if (a == "--help" || a == "-h") usage(argv[0], 0);
    else usage(argv[0], 2);
  }
  return o;
}

std::string strf(const char* f, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, f);
  std::vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

std::string version(int v) { return strf("%d.%d", v / 1000, (v % 1000) / 10); }

// Whether the compiled architecture list (e.g. "80-real,90a-real,90-virtual")
// has code this device can run: a cubin of the same major and a minor not above
// the device's, or PTX (virtual, or a plain number) of an architecture not above it.
bool archs_cover(const std::string& archs, int major, int minor) {
  size_t pos = 0;
  while (pos <= archs.size()) {
    size_t end = archs.find_first_of(",;", pos);
    if (end == std::string::npos) end = archs.size();
    const std::string a = archs.substr(pos, end - pos);
    pos = end + 1;
    if (a.size() < 2) continue;
    const int cc = std::atoi(a.c_str());
    const int amaj = cc / 10, amin = cc % 10;
    const bool real_only = a.find("-real") != std::string::npos;
    const bool is_ptx = !real_only;  // "NN-virtual" or "NN" (both)
    if (amaj == major && amin <= minor) return true;
    if (is_ptx && (amaj < major || (amaj == major && amin <= minor))) return true;
  }
  return archs.empty();  // unknown: do not warn
}

// ---------------------------------------------------------------- results

struct Row {
  const Case* c = nullptr;
  double ms = 0;
  int iters = 0;
  Verdict v;
  const BaselineRow* torch = nullptr;
  double vs_torch = NAN;    // 100 * torch ms / our ms: 100% = parity, above = faster than torch
  std::string torch_error;  // the baseline has this row but could not time it (e.g. out of memory)
  std::string skipped;      // why the row was not measured
};

struct Report {
  JsonObject head;  // device, peaks, options
  std::vector<Row> rows;
  JsonObject targets;
  bool have_targets = false;

  JsonObject row_json(const Row& r) const {
    JsonObject o;
    o.str("name", r.c->name).str("group", r.c->group).str("shape", r.c->shape);
    o.num("flops", r.c->cost.flops).num("bytes", r.c->cost.bytes);
    if (!r.skipped.empty()) return o.str("skipped", r.skipped);
    o.num("ms", r.ms).num("iters", r.iters).num("tflops", r.v.tflops).num("gbps", r.v.gbps);
    o.str("bound", r.v.bound).num("pct_of_peak", r.v.pct);
    if (r.torch) o.num("torch_ms", r.torch->ms).str("torch_what", r.torch->what).num("vs_torch_pct", r.vs_torch);
    if (!r.torch_error.empty()) o.str("torch_error", r.torch_error);
    return o;
  }
  void write(const std::string& path) const {
    if (path.empty()) return;
    JsonObject doc = head;
    std::vector<JsonObject> rs;
    for (const Row& r : rows) rs.push_back(row_json(r));
    doc.arr("rows", rs);
    if (have_targets) doc.obj("targets", targets);
    // Written whole to a temporary, then renamed: a run cut off mid-write (a
    // timeout) leaves the previous complete file, never a truncated one.
    const std::string tmp = path + ".tmp";
    {
      std::ofstream f(tmp);
      f << doc.dump_pretty();
      if (!f) {
        std::fprintf(stderr, "warning: could not write %s\n", tmp.c_str());
        return;
      }
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) std::fprintf(stderr, "warning: could not write %s\n", path.c_str());
  }
};

// ---------------------------------------------------------------- measuring

// Mean ms per call: one calibration call (1 timed iteration after the hook's own
// warm-up), then enough iterations for ~target_ms of timed work. A call longer
// than the target is measured once (the calibration result).
double measure(const Case& c, double target_ms, int& iters) {
  const double t1 = c.run(1);
  const int n = static_cast<int>(std::min(2000.0, std::max(1.0, target_ms / std::max(t1, 1e-4))));
  if (n < 3) {
    iters = 1;
    return t1;
  }
  iters = n;
  return c.run(n);
}

// The copy yardstick: best of 3 means of 10 copies of a buffer far larger than L2.
double measure_copy_gbps(int64_t bytes) {
  double best_ms = 1e30;
  for (int rep = 0; rep < 3; ++rep) best_ms = std::min(best_ms, cuda::cuda_copy_time_ms(bytes, 10));
  return 2.0 * double(bytes) / (best_ms * 1e-3) / 1e9;
}

void print_row(const Row& r, const Peaks& peaks) {
  const Case& c = *r.c;
  std::printf("%-26s %-34s", c.name.c_str(), c.shape.c_str());
  if (!r.skipped.empty()) {
    std::printf(" %s\n", r.skipped.c_str());
    std::fflush(stdout);
    return;
  }
  const bool flops_row = c.cost.kind != FlopKind::None && r.v.bound != "copy" && !r.v.bound.empty();
  const std::string achieved = flops_row ? strf("%7.1f TF/s", r.v.tflops) : strf("%7.0f GB/s", r.v.gbps);
  const std::string pct = std::isnan(r.v.pct) ? strf("%-15s", "  -") : strf("%6.1f%% %-7s", r.v.pct, r.v.bound.c_str());
  std::string vs;
  if (r.torch) vs = strf("%5.0f%% (%.4g ms)", r.vs_torch, r.torch->ms);
  else if (!r.torch_error.empty()) vs = "torch failed: " + r.torch_error.substr(0, 60);
  std::printf(" %10.4f %12s %s %s", r.ms, achieved.c_str(), pct.c_str(), vs.c_str());
  // Prefill attention is judged against the bf16 tensor peak (what SDPA runs
  // on, and the tensor-core kernel); the fp32 kernel's own ceiling is the fp32
  // FMA peak, so show that for its row.
  if (c.name.rfind("attn.prefill", 0) == 0 && c.name.find("fp32kernel") != std::string::npos && peaks.fp32_tflops > 0)
    std::printf("  [= %.0f%% of fp32 FMA peak]", 100.0 * r.v.tflops / peaks.fp32_tflops);
  std::printf("\n");
  std::fflush(stdout);
}

// ---------------------------------------------------------------- targets

struct TargetDef {
  Target t;
  const char* key;
  const char* text;
  double threshold;  // in %
  bool needs_baseline;
};

const TargetDef kTargets[] = {
    {Target::GemvOfCopy, "decode_gemv_pct_of_copy", "decode GEMV (M <= 16) >= 85% of copy bandwidth", 85, false},
    {Target::GemmOfCublas, "prefill_gemm_pct_of_cublas", "prefill GEMM (M >= 512) >= 75% of cuBLAS", 75, true},
    {Target::AttnOfSdpa, "attn_prefill_8k_pct_of_sdpa", "causal prefill attention at 8K >= 80% of torch SDPA", 80,
     true},
};

void summarise_targets(Report& rep, bool have_baseline) {
  std::printf("\n## Targets (from the issue; H100 goals)\n");
  for (const TargetDef& td : kTargets) {
    std::vector<JsonObject> js;
    int pass = 0, total = 0;
    std::string fails;
    for (const Row& r : rep.rows) {
      if (r.c->target != td.t || !r.skipped.empty()) continue;
      const double v = td.needs_baseline ? r.vs_torch : (r.v.bound == "copy" ? r.v.pct : NAN);
      if (std::isnan(v)) continue;
      ++total;
      const bool ok = v >= td.threshold;
      pass += ok;
      if (!ok) fails += strf("\n    %-26s %5.1f%%", r.c->name.c_str(), v);
      JsonObject o;
      o.str("name", r.c->name).num("value_pct", v).str("pass", ok ? "yes" : "no");
      js.push_back(o);
    }
    std::string status;
    if (total == 0)
      status = td.needs_baseline && !have_baseline ? "n/a (needs --baseline from scripts/torch-baselines.py)"
                                                   : "n/a (no measured rows)";
    else
      status = strf("%d/%d rows pass%s", pass, total, pass == total ? "" : "; below target:");
    std::printf("%-56s %s%s\n", td.text, status.c_str(), fails.c_str());
    JsonObject t;
    t.str("what", td.text).num("threshold_pct", td.threshold).num("pass", pass).num("total", total).arr("rows", js);
    rep.targets.obj(td.key, t);
  }
  rep.have_targets = true;
}

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse_args(argc, argv);
  const double t_start = now_seconds();

  if (opt.list) {
    for (const Case& c : make_cases(opt.quick))
      if (opt.filter.empty() || c.name.find(opt.filter) != std::string::npos)
        std::printf("%-26s %s\n", c.name.c_str(), c.shape.c_str());
    return 0;
  }

  const CudaStatus& st = cuda_status();
  if (!st.available) {
    std::printf("no CUDA device: %s\n", st.reason.c_str());
    if (!opt.json_path.empty()) {
      JsonObject o;
      o.str("skipped", "no CUDA device: " + st.reason);
      std::ofstream(opt.json_path) << o.dump_pretty();
    }
    return opt.check_device ? 3 : 0;
  }
  // The first device the kernels support (compute capability 8.0+; cuda_status
  // reports available only when there is one).
  const CudaDeviceInfo& dev = *std::find_if(st.devices.begin(), st.devices.end(),
                                            [](const CudaDeviceInfo& x) { return x.major >= 8; });
  if (opt.check_device) {
    std::printf("CUDA device: %s\n", dev.name.c_str());
    return 0;
  }

  try {
    cuda::check(cudaSetDevice(dev.index), "bench: cudaSetDevice");
    const DeviceDesc d = describe_device(dev.index);
    size_t free_b = 0, total_b = 0;
    cuda::check(cudaMemGetInfo(&free_b, &total_b), "bench: cudaMemGetInfo");

    Report rep;
    std::printf("# nemotron_bench_kernels: CUDA kernels at the Nemotron-Nano-9B-v2 shapes%s\n\n",
                opt.quick ? " (--quick)" : "");
    std::printf("device %d : %s, compute capability %d.%d, %d SMs, max SM clock %.3f GHz\n", d.index, d.name.c_str(),
                d.cc_major, d.cc_minor, d.sms, d.sm_clock_ghz);
    std::printf("memory   : %.1f GiB (%.1f free), %d-bit bus at %.3f GHz -> %.0f GB/s theoretical "
                "(2 x clock x bus/8); L2 %.1f MiB\n",
                double(total_b) / (1 << 30), double(free_b) / (1 << 30), d.bus_bits, d.mem_clock_ghz,
                d.dram_theoretical_gbps(), double(d.l2_bytes) / (1 << 20));
    std::printf("software : driver %s, runtime %s, kernels compiled for %s\n", version(st.driver_version).c_str(),
                version(st.runtime_version).c_str(), st.archs.c_str());
    if (!archs_cover(st.archs, d.cc_major, d.cc_minor))
      std::printf("WARNING  : no code for compute capability %d.%d in this build (%s): kernels will fail to launch; "
                  "rebuild with NEMOTRON_CUDA_ARCHS=%d%d%s-real\n",
                  d.cc_major, d.cc_minor, st.archs.c_str(), d.cc_major, d.cc_minor, d.cc_major == 9 ? "a" : "");

    // ---- peaks
    Peaks peaks;
    const int64_t copy_bytes = std::min<int64_t>(int64_t(1) << 30, int64_t(free_b / 4) >> 20 << 20);
    peaks.copy_gbps = measure_copy_gbps(copy_bytes);
    const Peak tc = bf16_tensor_peak(d), f32 = fp32_fma_peak(d);
    peaks.bf16_tflops = tc.tflops;
    peaks.fp32_tflops = f32.tflops;
    std::printf("\n## Peaks (the %% of peak column is against the binding one of these, see roofline.h)\n");
    std::printf("copy     : %.0f GB/s read+written = %.0f GB/s copied (measured: cudaMemcpyAsync D2D of %.0f MiB, "
                "best of 3 x 10)%s\n",
                peaks.copy_gbps, peaks.copy_gbps / 2, double(copy_bytes) / (1 << 20),
                d.dram_theoretical_gbps() > 0
                    ? strf(" = %.0f%% of theoretical", 100 * peaks.copy_gbps / d.dram_theoretical_gbps()).c_str()
                    : "");
    std::printf("bf16 TC  : %s TFLOP/s dense (%s)\n", tc.tflops > 0 ? strf("%.1f", tc.tflops).c_str() : "unknown",
                tc.source.c_str());
    std::printf("fp32 FMA : %s TFLOP/s (%s)\n", f32.tflops > 0 ? strf("%.1f", f32.tflops).c_str() : "unknown",
                f32.source.c_str());
    std::printf("bytes count reads + writes (as the copy figure does), FLOPs count 2 per multiply-add "
                "(cost_model.h)\n");

    JsonObject dev, pk, opts;
    dev.str("name", d.name).str("compute_capability", strf("%d.%d", d.cc_major, d.cc_minor)).num("sms", d.sms);
    dev.num("sm_clock_ghz", d.sm_clock_ghz).num("mem_clock_ghz", d.mem_clock_ghz).num("bus_bits", d.bus_bits);
    dev.num("l2_bytes", double(d.l2_bytes)).num("total_bytes", double(total_b)).num("free_bytes", double(free_b));
    dev.str("driver", version(st.driver_version)).str("runtime", version(st.runtime_version)).str("archs", st.archs);
    pk.num("copy_gbps", peaks.copy_gbps)
        .str("copy_convention", "bytes read + bytes written per second (a copy of N bytes counts 2N); copied = half")
        .num("copy_buffer_bytes", double(copy_bytes))
        .num("dram_theoretical_gbps", d.dram_theoretical_gbps())
        .num("bf16_tensor_tflops", tc.tflops)
        .str("bf16_tensor_source", tc.source)
        .num("fp32_fma_tflops", f32.tflops)
        .str("fp32_fma_source", f32.source);
    opts.str("quick", opt.quick ? "yes" : "no").str("filter", opt.filter).str("baseline", opt.baseline_path);
    rep.head.str("bench", "nemotron_bench_kernels").obj("device", dev).obj("peaks", pk).obj("options", opts);

    // ---- baseline
    Baseline base;
    const bool have_base = !opt.baseline_path.empty();
    if (have_base) {
      base = load_baseline(opt.baseline_path);
      std::printf("baseline : torch %s on %s (%s), %zu rows", base.torch_version.c_str(), base.device.c_str(),
                  base.path.c_str(), base.rows.size());
      if (base.copy_gbps > 0) std::printf("; torch copy %.0f GB/s read+written", base.copy_gbps);
      std::printf("\n");
      if (base.device != d.name)
        std::printf("WARNING  : the baseline ran on \"%s\", this is \"%s\": the vs-torch ratios compare two GPUs\n",
                    base.device.c_str(), d.name.c_str());
      JsonObject b;
      b.str("path", base.path).str("device", base.device).str("torch", base.torch_version).num("copy_gbps", base.copy_gbps);
      rep.head.obj("baseline", b);
    }
    rep.write(opt.json_path);

    // ---- rows
    const double target_ms = opt.quick ? 40 : 150;
    const std::vector<Case> cases = make_cases(opt.quick);
    rep.rows.reserve(cases.size());
    std::string group;
    bool broken = false;
    for (const Case& c : cases) {
      if (!opt.filter.empty() && c.name.find(opt.filter) == std::string::npos) continue;
      if (c.group != group) {
        group = c.group;
        std::printf("\n## %s\n%-26s %-34s %10s %12s %7s %-7s %s\n", group.c_str(), "name", "shape", "ms", "achieved",
                    "%peak", "bound", have_base ? "vs torch (torch ms)" : "");
      }
      Row r;
      r.c = &c;
      if (broken) {
        r.skipped = "not run: the CUDA context failed earlier";
      } else {
        // Device memory the hook allocates: the call's own bytes, the L2-spanning
        // copies it cycles, anything it keeps besides (embed table), and slack.
        const double need = c.cost.bytes + c.extra_bytes + 3.0 * double(d.l2_bytes) + 64.0 * (1 << 20);
        size_t fr = 0, tot = 0;
        cuda::check(cudaMemGetInfo(&fr, &tot), "bench: cudaMemGetInfo");
        if (need > 0.95 * double(fr)) {
          r.skipped = strf("skipped: needs ~%.1f GB of device memory, %.1f GB free", need / 1e9, double(fr) / 1e9);
        } else {
          try {
            r.ms = measure(c, target_ms, r.iters);
            r.v = judge(c.cost, r.ms, peaks);
            if (have_base) {
              r.torch = base.find(c.name);
              if (r.torch) r.vs_torch = 100.0 * r.torch->ms / r.ms;
              auto it = base.rows.find(c.name);
              if (!r.torch && it != base.rows.end()) r.torch_error = it->second.error.empty() ? "no time" : it->second.error;
            }
          } catch (const Error& e) {
            r.skipped = std::string(e.code() == ErrorCode::OutOfMemory ? "out of memory: " : "error: ") + e.what();
            // A kernel fault poisons the context: every later call would fail too.
            if (e.code() != ErrorCode::OutOfMemory && cudaDeviceSynchronize() != cudaSuccess) broken = true;
            cudaGetLastError();
          }
        }
      }
      rep.rows.push_back(r);
      print_row(rep.rows.back(), peaks);
      rep.write(opt.json_path);
    }

    summarise_targets(rep, have_base);
    rep.head.num("seconds", now_seconds() - t_start);
    rep.write(opt.json_path);
    std::printf("\n(total %.1f s%s)\n", now_seconds() - t_start,
                opt.json_path.empty() ? "" : (", results in " + opt.json_path).c_str());
    return broken ? 1 : 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "nemotron_bench_kernels: %s\n", e.what());
    return 1;
  }
}
