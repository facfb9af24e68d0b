// The reference fixtures end to end through the Engine on device "cuda", with the
// bf16 tolerances of fixture.json (max |Δlogit| 0.5, row cosine 0.999), so a lent
// GPU can prove the whole CUDA path without Node or npm packages. Skips, and says
// why, without a usable device or without the fixtures.
#include <cmath>
#include <fstream>
#include <vector>

#include "../test_framework.h"
#include "../test_util.h"
#include "backend/device_probe.h"
#include "engine/engine.h"

using namespace nemotron;

namespace {

std::vector<float> read_f32(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  std::vector<float> v(static_cast<size_t>(f.tellg()) / 4);
  f.seekg(0);
  f.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(v.size() * 4));
  return v;
}

// The prompt of the public fixture case (fixture.json cases.prompt.prompt_ids).
const std::vector<int32_t> kPrompt = {1,   143, 379, 408, 97,  388, 269, 418, 230, 169, 310, 81,
                                      177, 291, 103, 365, 413, 44,  97,  183, 364, 157, 405, 108};

}  // namespace

TEST(cuda_fixture_prompt_logits_within_bf16_tolerance) {
  const CudaStatus& cs = cuda_status();
  if (!cs.available) return nemotron_test::skip("CUDA not usable: " + cs.reason);
  const std::string base = nemotron_test::fixtures_dir();
  if (base.empty()) return nemotron_test::skip("../shared/fixtures not found");
  for (const char* name : {"tiny-nemotron-h", "tiny-nemotron-h-sharded"}) {
    const std::string dir = base + "/" + name;
    EngineOptions opts;
    opts.device = "cuda";
    auto gpu = Engine::load(dir, opts, nullptr);
    REQUIRE(gpu->device() == "cuda");
    const int64_t V = gpu->config().vocab_size, T = static_cast<int64_t>(kPrompt.size());
    std::vector<float> logits(static_cast<size_t>(T * V));
    auto seq = gpu->create_sequence(64);
    gpu->prefill(*seq, kPrompt.data(), T, true, logits.data());
    const std::vector<float> golden = read_f32(dir + "/golden_prompt_logits.f32");
    REQUIRE(golden.size() == logits.size());
    nemotron_test::RowDiff rc;
    for (int64_t t = 0; t < T; ++t) rc.add(logits.data() + t * V, golden.data() + t * V, V);
    std::printf("  %s: prompt max |dlogit| %.4f, min cosine %.6f\n", name, rc.max_abs, rc.min_cos);
    CHECK(rc.max_abs <= 0.5);
    CHECK(rc.min_cos >= 0.999);

    // decode path: the golden greedy step logits, teacher-forced with the expected ids
    const std::vector<int32_t> expected = {151, 285, 456, 115, 330, 60, 250, 126, 87, 129, 391, 104, 269, 418, 337, 57};
    const std::vector<float> steps = read_f32(dir + "/golden_greedy_step_logits.f32");
    nemotron_test::RowDiff dc;
    std::vector<float> step(static_cast<size_t>(V));
    for (size_t j = 0; j + 1 < expected.size(); ++j) {
      gpu->decode({DecodeItem{seq.get(), expected[j]}}, step.data());
      dc.add(step.data(), steps.data() + (j + 1) * V, V);
    }
    std::printf("  %s: decode max |dlogit| %.4f, min cosine %.6f\n", name, dc.max_abs, dc.min_cos);
    CHECK(dc.max_abs <= 0.5);
    CHECK(dc.min_cos >= 0.999);
  }
}
