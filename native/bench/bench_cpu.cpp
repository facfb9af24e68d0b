// nemotron_bench_cpu: this machine's yardsticks (memcpy and read bandwidth, FMA
// peak) and the CPU linear kernels measured against them.
//   nemotron_bench_cpu [--threads N] [--json FILE]
// Sections run in order and each adds its numbers to the JSON report; new
// sections (e.g. end-to-end decode/prefill) are one more function called from
// main() with the same BenchContext.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "backend/cpu/linear.h"
#include "backend/cpu/linear_kernels.h"
#include "bench_util.h"
#include "common/cpu_features.h"
#include "common/dtype.h"

using namespace nemotron;
using namespace nemotron::bench;

namespace {

struct Options {
  int threads = ThreadPool::default_threads();
  std::string json_path;
};

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) {
      o.threads = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--json" && i + 1 < argc) {
      o.json_path = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--threads N] [--json FILE]\n", argv[0]);
      std::exit(2);
    }
  }
  return o;
}

// ---------------------------------------------------------------- machine
void run_machine_section(BenchContext& ctx) {
  std::printf("## Machine (threads %d)\n", ctx.threads);
  ctx.memcpy_gbps = measure_memcpy_gbps(ctx.pool);
  std::printf("memcpy     : %6.1f GB/s read+written (%.1f GB/s copied; 2 x 256 MiB buffers, all threads, best of 5)\n",
              ctx.memcpy_gbps, ctx.memcpy_gbps / 2);
  ctx.read_gbps = measure_read_gbps(ctx.pool);
  std::printf("read-only  : %6.1f GB/s (sum over 256 MiB, %d streams per thread, all threads, best of 5)\n", ctx.read_gbps,
              kReadStreams);

  const double ghz = measure_core_ghz();
  ctx.fma_peak_gflops = measure_fma_peak_gflops(ctx.pool);
  const bool avx2 = fma_peak_uses_avx2();
  std::printf("FMA peak   : %6.1f GFLOP/s measured (%s, %d independent chains per thread, all threads, best of 5)\n",
              ctx.fma_peak_gflops, avx2 ? "256-bit vfmadd" : "scalar multiply-add", kFmaChains);
  // Two 256-bit FMA pipes per core is every AVX2 core since Haswell / Zen 2.
  const double theoretical = avx2 && ghz > 0 ? ctx.threads * ghz * 2 * 8 * 2 : 0;
  if (theoretical > 0)
    std::printf("             theoretical %.1f GFLOP/s = %d threads x %.2f GHz (measured, 1-cycle add chain) x 2 FMA pipes x 8 lanes x 2\n",
                theoretical, ctx.threads, ghz);
  ctx.report.num("threads", ctx.threads)
      .num("memcpy_gbps", ctx.memcpy_gbps)
      .str("memcpy_convention", "bytes read + bytes written per second (STREAM copy); copied bytes/s is half")
      .num("read_gbps", ctx.read_gbps)
      .num("fma_peak_gflops", ctx.fma_peak_gflops)
      .str("fma_peak_method", avx2 ? "12 independent 256-bit FMA chains per thread on all threads"
                                   : "12 independent scalar multiply-add chains per thread on all threads")
      .num("core_ghz", ghz)
      .num("fma_peak_theoretical_gflops", theoretical);
}

// ---------------------------------------------------------------- linear kernels
// Weights for the kernel benches: one buffer of at least 256 MiB holding
// several copies of the matrix, cycled call after call, so every call streams
// its weights from DRAM as decode does (a model's weights dwarf the L3).
class WeightPool {
 public:
  WeightPool(DType dtype, int64_t n, int64_t k) : dtype_(dtype), n_(n), k_(k) {
    bytes_ = static_cast<size_t>(n * k) * dtype_size(dtype);
    copies_ = std::max<size_t>(1, (kBandwidthBufferBytes + bytes_ - 1) / bytes_);
    buf_ = std::make_unique<AlignedBuffer<uint8_t>>(bytes_ * copies_);
    // Random bf16 values in [-1, 1]: finite when read as f16 or f32 as well.
    uint16_t* p = reinterpret_cast<uint16_t*>(buf_->data());
    const size_t count = bytes_ / 2;
    uint32_t s = 12345;
    for (size_t i = 0; i < count; ++i) {
      s = s * 1664525u + 1013904223u;
      p[i] = f32_to_bf16(static_cast<float>(s >> 8) / 8388608.0f - 1.0f);
    }
    for (size_t c = 1; c < copies_; ++c) std::memcpy(buf_->data() + c * bytes_, buf_->data(), bytes_);
  }
  Matrix next() {
    const size_t c = next_++ % copies_;
    return Matrix{buf_->data() + c * bytes_, dtype_, n_, k_};
  }
  size_t bytes() const { return bytes_; }

 private:
  DType dtype_;
  int64_t n_, k_;
  size_t bytes_ = 0, copies_ = 1, next_ = 0;
  std::unique_ptr<AlignedBuffer<uint8_t>> buf_;
};

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::vector<float> v(n);
  for (auto& x : v) {
    seed = seed * 1664525u + 1013904223u;
    x = static_cast<float>(seed >> 8) / 8388608.0f - 1.0f;
  }
  return v;
}

// Best seconds of one linear call over `reps` calls (at least ~0.4 s in all).
double time_linear(BenchContext& ctx, WeightPool& weights, int64_t rows, int64_t n, int64_t k,
                   linear_detail::Regime regime, int min_reps = 5) {
  const std::vector<float> x = random_floats(static_cast<size_t>(rows * k), 7);
  std::vector<float> out(static_cast<size_t>(rows * n));
  auto call = [&] {
    linear_detail::cpu_linear_regime(ctx.pool, x.data(), rows, k, weights.next(), nullptr, out.data(), n, regime);
  };
  double best = 1e300, total = 0;
  call();
  for (int i = 0; i < min_reps || (total < 0.4 && i < 1000); ++i) {
    const double t0 = now_seconds();
    call();
    const double s = now_seconds() - t0;
    best = std::min(best, s);
    total += s;
  }
  return best;
}

void run_gemv_section(BenchContext& ctx) {
  std::printf("\n## GEMV (decode regime): weights streamed from DRAM (copies cycled)\n");
  std::printf("%-5s %6s %6s %4s %9s %8s %10s %10s\n", "dtype", "out", "in", "rows", "ms", "GB/s", "% memcpy",
              "% read-only");
  struct Shape {
    DType dtype;
    int64_t n, k, rows;
  };
  const Shape shapes[] = {{DType::BF16, 4096, 4096, 1},  {DType::BF16, 16384, 4096, 1}, {DType::BF16, 4096, 16384, 1},
                          {DType::BF16, 4096, 4096, 4},  {DType::F16, 4096, 4096, 1},   {DType::F32, 4096, 4096, 1}};
  std::vector<JsonObject> rows;
  for (const Shape& s : shapes) {
    WeightPool w(s.dtype, s.n, s.k);
    const double sec = time_linear(ctx, w, s.rows, s.n, s.k, linear_detail::Regime::Gemv, 10);
    const double gbps = w.bytes() / sec / 1e9;
    std::printf("%-5s %6lld %6lld %4lld %9.3f %8.1f %9.0f%% %9.0f%%\n", dtype_name(s.dtype), (long long)s.n,
                (long long)s.k, (long long)s.rows, sec * 1e3, gbps, 100 * gbps / ctx.memcpy_gbps,
                100 * gbps / ctx.read_gbps);
    rows.push_back(JsonObject()
                       .str("dtype", dtype_name(s.dtype))
                       .num("out", double(s.n))
                       .num("in", double(s.k))
                       .num("rows", double(s.rows))
                       .num("ms", sec * 1e3)
                       .num("weight_gbps", gbps)
                       .num("pct_of_memcpy", 100 * gbps / ctx.memcpy_gbps)
                       .num("pct_of_read", 100 * gbps / ctx.read_gbps));
  }
  ctx.report.arr("gemv", rows);
}

void run_gemm_section(BenchContext& ctx) {
  std::printf("\n## GEMM (prefill regime), bf16 weights\n");
  std::printf("%-5s %6s %6s %4s %9s %9s %8s\n", "dtype", "out", "in", "rows", "ms", "GFLOP/s", "% peak");
  struct Shape {
    int64_t n, k, rows;
  };
  const Shape shapes[] = {{1024, 1024, 512}, {4096, 1024, 512}, {1024, 4096, 512}, {4096, 4096, 512}};
  std::vector<JsonObject> rows;
  for (const Shape& s : shapes) {
    WeightPool w(DType::BF16, s.n, s.k);
    const double sec = time_linear(ctx, w, s.rows, s.n, s.k, linear_detail::Regime::Gemm, 3);
    const double gflops = 2.0 * s.rows * s.n * s.k / sec / 1e9;
    std::printf("%-5s %6lld %6lld %4lld %9.3f %9.1f %7.0f%%\n", "BF16", (long long)s.n, (long long)s.k,
                (long long)s.rows, sec * 1e3, gflops, 100 * gflops / ctx.fma_peak_gflops);
    rows.push_back(JsonObject()
                       .str("dtype", "BF16")
                       .num("out", double(s.n))
                       .num("in", double(s.k))
                       .num("rows", double(s.rows))
                       .num("ms", sec * 1e3)
                       .num("gflops", gflops)
                       .num("pct_of_fma_peak", 100 * gflops / ctx.fma_peak_gflops));
  }
  ctx.report.arr("gemm", rows);
}

// Both regimes over a range of rows, for the SIMD and the portable kernels:
// the data behind gemv_max_rows().
void run_crossover_section(BenchContext& ctx) {
  const int64_t n = 4096, k = 4096;
  std::printf("\n## Regime crossover, bf16 %lldx%lld: ms per call (Auto switches to GEMM above %lld rows SIMD, %lld portable)\n",
              (long long)n, (long long)k, (long long)linear_detail::gemv_max_rows(true),
              (long long)linear_detail::gemv_max_rows(false));
  std::printf("%-9s %4s %9s %9s\n", "kernels", "rows", "gemv ms", "gemm ms");
  WeightPool w(DType::BF16, n, k);
  std::vector<JsonObject> rows;
  for (bool portable : {false, true}) {
    if (!portable && !cpu_features().avx2_fma_f16c()) continue;
    cpu_features_force_portable(portable);
    const std::vector<int64_t> row_counts = portable ? std::vector<int64_t>{1, 2, 4, 6, 7, 8, 10, 12, 16}
                                                     : std::vector<int64_t>{1, 4, 8, 16, 32, 48, 64, 80, 96, 128};
    for (int64_t r : row_counts) {
      const double gemv = time_linear(ctx, w, r, n, k, linear_detail::Regime::Gemv, 3);
      const double gemm = time_linear(ctx, w, r, n, k, linear_detail::Regime::Gemm, 3);
      std::printf("%-9s %4lld %9.3f %9.3f%s\n", portable ? "portable" : "simd", (long long)r, gemv * 1e3, gemm * 1e3,
                  gemv <= gemm ? "" : "  <- gemm faster");
      rows.push_back(JsonObject()
                         .str("kernels", portable ? "portable" : "simd")
                         .num("rows", double(r))
                         .num("gemv_ms", gemv * 1e3)
                         .num("gemm_ms", gemm * 1e3));
    }
    cpu_features_force_portable(false);
  }
  ctx.report.arr("regime_crossover", rows);
}

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse_args(argc, argv);
  ThreadPool pool(opt.threads);
  JsonObject report;
  BenchContext ctx{pool, opt.threads, 0, 0, 0, report};
  const double t0 = now_seconds();

  std::printf("# nemotron_bench_cpu: %s kernels\n\n", cpu_features().avx2_fma_f16c() ? "AVX2/FMA/F16C" : "portable");
  run_machine_section(ctx);
  run_gemv_section(ctx);
  run_gemm_section(ctx);
  run_crossover_section(ctx);

  std::printf("\n(total %.1f s)\n", now_seconds() - t0);
  if (!opt.json_path.empty()) {
    std::ofstream f(opt.json_path);
    f << report.dump_pretty();
    if (!f) {
      std::fprintf(stderr, "could not write %s\n", opt.json_path.c_str());
      return 1;
    }
  }
  return 0;
}
