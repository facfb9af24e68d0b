// Helpers shared by the CPU microbenchmark sections: timing, this machine's
// memory bandwidth and FMA peak (the yardsticks every kernel number is quoted
// against), and a small JSON writer for --json output.
#pragma once
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "common/cpu_features.h"
#include "common/thread_pool.h"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define NEMOTRON_BENCH_X86 1
#endif

namespace nemotron {
namespace bench {

inline double now_seconds() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

// Best (smallest) wall time of `reps` calls of fn, after one untimed warm-up.
template <class Fn>
double best_seconds(int reps, Fn&& fn) {
  fn();
  double best = 1e300;
  for (int i = 0; i < reps; ++i) {
    const double t0 = now_seconds();
    fn();
    best = std::min(best, now_seconds() - t0);
  }
  return best;
}

// 64-byte aligned heap buffer, not initialised.
template <class T>
class AlignedBuffer {
 public:
  explicit AlignedBuffer(size_t count) : count_(count) {
    const size_t bytes = std::max<size_t>(64, (count * sizeof(T) + 63) / 64 * 64);
    p_ = static_cast<T*>(std::aligned_alloc(64, bytes));
    if (!p_) throw std::bad_alloc();
  }
  ~AlignedBuffer() { std::free(p_); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  T* data() const { return p_; }
  size_t size() const { return count_; }

 private:
  T* p_ = nullptr;
  size_t count_ = 0;
};

// Buffers far larger than the last-level cache, so every figure is DRAM's.
constexpr size_t kBandwidthBufferBytes = size_t(256) << 20;

// memcpy bandwidth over all pool threads (each copies a contiguous slice),
// best of several passes. Counted as bytes read + bytes written (the STREAM
// "copy" convention), i.e. twice the bytes copied: glibc copies buffers this
// large with non-temporal stores, so that is the real DRAM traffic.
inline double measure_memcpy_gbps(ThreadPool& pool) {
  const size_t n = kBandwidthBufferBytes;
  AlignedBuffer<uint8_t> src(n), dst(n);
  // First touch in parallel (page faults out of the timing).
  pool.parallel_for(static_cast<int64_t>(n), 1 << 20, [&](int64_t b, int64_t e) {
    std::memset(src.data() + b, 1, static_cast<size_t>(e - b));
    std::memset(dst.data() + b, 0, static_cast<size_t>(e - b));
  });
  const double s = best_seconds(5, [&] {
    pool.run_on_all([&](int t, int count) {
      const size_t b = n * t / count, e = n * (t + 1) / count;
      std::memcpy(dst.data() + b, src.data() + b, e - b);
    });
  });
  return 2.0 * n / s / 1e9;
}

// Sums `streams` equal contiguous parts of [p, p + n) in lockstep: several
// sequential streams per core, as a GEMV reading several weight rows at once,
// keep more DRAM requests in flight than one does.
constexpr int kReadStreams = 4;

#ifdef NEMOTRON_BENCH_X86
__attribute__((target("avx2"))) inline float sum_streams_avx2(const float* p, size_t n) {
  const size_t part = n / kReadStreams / 32 * 32;
  __m256 acc[kReadStreams];
  for (int s = 0; s < kReadStreams; ++s) acc[s] = _mm256_setzero_ps();
  for (size_t i = 0; i < part; i += 32)
    for (int s = 0; s < kReadStreams; ++s) {
      const float* q = p + s * part + i;
      const __m256 a = _mm256_add_ps(_mm256_loadu_ps(q), _mm256_loadu_ps(q + 8));
      const __m256 b = _mm256_add_ps(_mm256_loadu_ps(q + 16), _mm256_loadu_ps(q + 24));
      acc[s] = _mm256_add_ps(acc[s], _mm256_add_ps(a, b));
    }
  __m256 t = acc[0];
  for (int s = 1; s < kReadStreams; ++s) t = _mm256_add_ps(t, acc[s]);
  alignas(32) float o[8];
  _mm256_store_ps(o, t);
  return o[0] + o[1] + o[2] + o[3] + o[4] + o[5] + o[6] + o[7];
}
#endif

inline float sum_streams(const float* p, size_t n) {
#ifdef NEMOTRON_BENCH_X86
  if (cpu_features().avx2) return sum_streams_avx2(p, n);
#endif
  const size_t part = n / kReadStreams / 16 * 16;
  float acc[16] = {};
  for (size_t i = 0; i < part; i += 16)
    for (int s = 0; s < kReadStreams; ++s)
      for (int l = 0; l < 16; ++l) acc[l] += p[s * part + i + l];
  float t = 0;
  for (float v : acc) t += v;
  return t;
}

// Read-only bandwidth (sums over the buffer, kReadStreams streams per thread,
// all threads, best of 5): the ceiling for a kernel that only streams weights in.
inline double measure_read_gbps(ThreadPool& pool) {
  const size_t n = kBandwidthBufferBytes / sizeof(float);
  AlignedBuffer<float> buf(n);
  pool.parallel_for(static_cast<int64_t>(n), 1 << 18, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) buf.data()[i] = 1.0f;
  });
  std::vector<float> sink(static_cast<size_t>(pool.size()));
  std::vector<double> bytes(static_cast<size_t>(pool.size()));
  const double s = best_seconds(5, [&] {
    pool.run_on_all([&](int t, int count) {
      const size_t b = n * t / count, e = n * (t + 1) / count;
      sink[t] = sum_streams(buf.data() + b, e - b);
      bytes[t] = double((e - b) / kReadStreams / 32 * 32 * kReadStreams) * sizeof(float);
    });
  });
  volatile float keep = sink[0];
  (void)keep;
  double total = 0;
  for (double v : bytes) total += v;
  return total / s / 1e9;
}

// FMA peak: each thread runs kChains independent FMA dependency chains in
// registers (enough to cover latency x pipes on current x86 cores: 4 x 2 on Zen,
// 4-5 x 2 on Intel), nothing else in the loop but the counter. FLOPs = 2 per
// lane per FMA.
constexpr int kFmaChains = 12;
constexpr int64_t kFmaIterations = 20'000'000;

#ifdef NEMOTRON_BENCH_X86
__attribute__((target("avx2,fma"))) inline float fma_chains_avx2(int64_t iters) {
  __m256 acc[kFmaChains];
  for (int c = 0; c < kFmaChains; ++c) acc[c] = _mm256_set1_ps(0.001f * c);
  const __m256 m = _mm256_set1_ps(0.9999999f), a = _mm256_set1_ps(1e-7f);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 12
    for (int c = 0; c < kFmaChains; ++c) acc[c] = _mm256_fmadd_ps(acc[c], m, a);
  }
  __m256 s = acc[0];
  for (int c = 1; c < kFmaChains; ++c) s = _mm256_add_ps(s, acc[c]);
  alignas(32) float t[8];
  _mm256_store_ps(t, s);
  return t[0];
}
#endif

inline bool fma_peak_uses_avx2() { return cpu_features().avx2_fma_f16c(); }

// Lanes x FLOPs per FMA instruction of the peak loop (8 x 2 with AVX2).
inline double flops_per_fma_instruction() { return fma_peak_uses_avx2() ? 16.0 : 2.0; }

inline double measure_fma_peak_gflops(ThreadPool& pool) {
  std::vector<float> sink(static_cast<size_t>(pool.size()));
  auto one_thread = [&](int t) {
#ifdef NEMOTRON_BENCH_X86
    if (fma_peak_uses_avx2()) {
      sink[t] = fma_chains_avx2(kFmaIterations);
      return;
    }
#endif
    // No FMA unit known: scalar multiply-add chains (counted as 2 FLOPs each).
    float acc[kFmaChains];
    for (int c = 0; c < kFmaChains; ++c) acc[c] = 0.001f * c;
    for (int64_t i = 0; i < kFmaIterations; ++i)
      for (int c = 0; c < kFmaChains; ++c) acc[c] = acc[c] * 0.9999999f + 1e-7f;
    float s = 0;
    for (float v : acc) s += v;
    sink[t] = s;
  };
  const double s = best_seconds(5, [&] { pool.run_on_all([&](int t, int) { one_thread(t); }); });
  volatile float keep = sink[0];
  (void)keep;
  return pool.size() * double(kFmaIterations) * kFmaChains * flops_per_fma_instruction() / s / 1e9;
}

// Core clock (GHz) from a chain of dependent integer adds, one per cycle on
// every x86 core; 0 where not measurable.
inline double measure_core_ghz() {
#ifdef NEMOTRON_BENCH_X86
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    uint64_t iters = 20'000'000, acc = 0;
    const double t0 = now_seconds();
    __asm__ volatile(
        "1:\n\t"
        "add $1, %1\n\tadd $1, %1\n\tadd $1, %1\n\tadd $1, %1\n\tadd $1, %1\n\t"
        "add $1, %1\n\tadd $1, %1\n\tadd $1, %1\n\tadd $1, %1\n\tadd $1, %1\n\t"
        "dec %0\n\tjnz 1b"
        : "+r"(iters), "+r"(acc));
    const double s = now_seconds() - t0;
    best = std::max(best, 20'000'000.0 * 10 / s / 1e9);
  }
  return best;
#else
  return 0;
#endif
}

// ---------------------------------------------------------------- JSON
// Ordered members, rendered as they are added.
class JsonObject {
 public:
  JsonObject& num(const std::string& key, double v) { return raw(key, number(v)); }
  JsonObject& str(const std::string& key, const std::string& v) { return raw(key, quote(v)); }
  JsonObject& obj(const std::string& key, const JsonObject& v) { return raw(key, v.dump()); }
  JsonObject& arr(const std::string& key, const std::vector<JsonObject>& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ",\n    " : "\n    ") + v[i].dump();
    return raw(key, s + (v.empty() ? "]" : "\n  ]"));
  }
  std::string dump() const {
    std::string s = "{";
    for (size_t i = 0; i < members_.size(); ++i)
      s += (i ? ", " : "") + quote(members_[i].first) + ": " + members_[i].second;
    return s + "}";
  }
  // Top level: one member per line.
  std::string dump_pretty() const {
    std::string s = "{\n";
    for (size_t i = 0; i < members_.size(); ++i)
      s += "  " + quote(members_[i].first) + ": " + members_[i].second + (i + 1 < members_.size() ? ",\n" : "\n");
    return s + "}\n";
  }

 private:
  JsonObject& raw(const std::string& key, std::string v) {
    members_.emplace_back(key, std::move(v));
    return *this;
  }
  static std::string number(double v) {
    if (!std::isfinite(v)) return "null";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    return buf;
  }
  static std::string quote(const std::string& s) {
    std::string q = "\"";
    for (char c : s) {
      if (c == '"' || c == '\\') q += '\\';
      if (static_cast<unsigned char>(c) < 0x20) continue;
      q += c;
    }
    return q + "\"";
  }
  std::vector<std::pair<std::string, std::string>> members_;
};

// What every bench section gets: the pool, the machine yardsticks measured
// first, and the JSON report to add its numbers to.
struct BenchContext {
  ThreadPool& pool;
  int threads = 1;
  double memcpy_gbps = 0;      // read + write traffic, see measure_memcpy_gbps
  double read_gbps = 0;        // read-only streaming
  double fma_peak_gflops = 0;  // measured, all threads
  JsonObject& report;
};

}  // namespace bench
}  // namespace nemotron
