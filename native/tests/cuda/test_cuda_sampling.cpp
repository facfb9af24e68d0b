// Sampling on the GPU (cuda/sampling.cu behind CudaBackend::edit_logits and
// ::candidates) against sampling the same logits on the host: ids, RNG states
// and errors must be identical, at the real vocabulary (131072) and a batch of
// 64 rows, and on a small odd vocabulary (partial mask words, partial tiles).
// Also the raw kernel output: the compacted logits and the id bitmask against a
// host scan. Skips without a CUDA device.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "../sampling_cases.h"
#include "../test_framework.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_ops.h"
#include "cuda_test_util.h"
#include "engine/sampler.h"

using namespace nemotron;
using namespace nemotron_test;

namespace {

void check_against_host(Backend& backend, int64_t vocab, int64_t rows, uint64_t seed) {
  SamplingCases c = make_sampling_cases(vocab, rows, seed);
  std::vector<SampleJob> want = c.jobs;
  sample_rows(c.logits.data(), vocab, want, nullptr);
  FloatBufferPtr dev = backend.alloc(c.logits.size());
  // On the backend's stream (alloc's zero-fill is queued there): a legacy-stream copy would not be ordered.
  backend.from_host(c.logits.data(), c.logits.size(), dev->data());
  std::vector<SampleJob> got = c.jobs;
  sample_rows_in(backend, dev->data(), rows, vocab, got, nullptr);
  int mismatches = 0;
  for (size_t j = 0; j < got.size(); ++j) {
    const bool same = got[j].id == want[j].id && got[j].error == want[j].error &&
                      std::equal(got[j].params.rng.s, got[j].params.rng.s + 4, want[j].params.rng.s);
    if (!same && mismatches++ < 5)
      std::fprintf(stderr, "  vocab %lld job %zu (row %lld, T %.1f): gpu %d vs host %d\n",
                   static_cast<long long>(vocab), j, static_cast<long long>(got[j].row), got[j].params.temperature,
                   got[j].id, want[j].id);
    CHECK(same);
  }
}

}  // namespace

TEST(cuda_sampling_equals_host_sampling_at_the_9b_vocab) {
  if (!cuda_device_or_skip()) return;
  if (!backend_sampling_enabled()) {
    std::printf("  skipped: NEMOTRON_BACKEND_SAMPLING=0 makes sample_rows_in sample on the host (host vs host)\n");
    return;
  }
  std::unique_ptr<Backend> backend = make_cuda_backend(0);
  check_against_host(*backend, 131072, 64, 1);
  check_against_host(*backend, 131072, 1, 2);
  check_against_host(*backend, 1000, 26, 3);  // odd vocabulary: partial words and tiles
  check_against_host(*backend, 33, 26, 4);
}

TEST(cuda_candidates_kernel_compacts_in_place_with_an_exact_bitmask) {
  if (!cuda_device_or_skip()) return;
  const int64_t vocab = 5000, rows = 3;
  SamplingCases c = make_sampling_cases(vocab, rows, 9);
  {
    // Row 0: its largest value twice, the copy 1000 ids later (another warp): the lower id must win.
    // Row 1: a NaN at index 0, which the CPU scan (l[i] > l[best] from best = 0) keeps as the argmax.
    float* r0 = c.logits.data();
    const int64_t best = std::max_element(r0, r0 + vocab) - r0;
    r0[(best + 1000) % vocab] = r0[best];
    c.logits[static_cast<size_t>(vocab)] = std::nanf("");
  }
  float* logits = nullptr;
  cuda::DevCandidateQuery* q = nullptr;
  cuda::CandidateHead* heads = nullptr;
  uint32_t* masks = nullptr;
  const int64_t words = cuda::candidate_mask_words(vocab);
  CU(cudaMalloc(&logits, c.logits.size() * sizeof(float)));
  CU(cudaMalloc(&q, rows * sizeof(*q)));
  CU(cudaMalloc(&heads, rows * sizeof(*heads)));
  CU(cudaMalloc(&masks, rows * words * sizeof(uint32_t)));
  CU(cudaMemcpy(logits, c.logits.data(), c.logits.size() * sizeof(float), cudaMemcpyHostToDevice));
  std::vector<cuda::DevCandidateQuery> hq;
  for (int64_t r = 0; r < rows; ++r) hq.push_back({r, -0.5 * (r + 1), 1, 0});  // keep logits >= max - 0.5(r+1)
  CU(cudaMemcpy(q, hq.data(), rows * sizeof(*q), cudaMemcpyHostToDevice));
  cuda::candidates(logits, vocab, q, static_cast<int>(rows), heads, masks, nullptr);
  CU(cudaDeviceSynchronize());
  std::vector<cuda::CandidateHead> h(rows);
  std::vector<uint32_t> m(rows * words);
  std::vector<float> out(c.logits.size());
  CU(cudaMemcpy(h.data(), heads, rows * sizeof(*heads), cudaMemcpyDeviceToHost));
  CU(cudaMemcpy(m.data(), masks, m.size() * sizeof(uint32_t), cudaMemcpyDeviceToHost));
  CU(cudaMemcpy(out.data(), logits, out.size() * sizeof(float), cudaMemcpyDeviceToHost));
  for (int64_t r = 0; r < rows; ++r) {
    const float* l = c.logits.data() + r * vocab;
    // The CPU twin's scan (cpu_candidates): first index of the largest, NaNs never compare greater.
    int64_t best = 0;
    float max = -INFINITY;
    for (int64_t i = 0; i < vocab; ++i) {
      if (l[i] > l[best]) best = i;
      if (l[i] > max) max = l[i];
    }
    CHECK(h[r].max == max);
    CHECK(h[r].argmax == best);
    std::vector<float> kept;
    for (int64_t i = 0; i < vocab; ++i) {
      const bool in = static_cast<double>(l[i]) >= static_cast<double>(max) + hq[r].floor_offset;
      CHECK(in == (((m[r * words + i / 32] >> (i % 32)) & 1u) != 0));
      if (in) kept.push_back(l[i]);
    }
    REQUIRE(h[r].count == static_cast<int32_t>(kept.size()));
    CHECK(std::equal(kept.begin(), kept.end(), out.begin() + r * vocab));
  }
  cudaFree(logits);
  cudaFree(q);
  cudaFree(heads);
  cudaFree(masks);
}
