// The memory plan's per-sequence numbers must equal what a sequence really
// allocates: admission (lib/admission.ts) reserves exactly these amounts.
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "engine/engine.h"
#include "engine/sampler.h"
#include "model/nemotron_h.h"
#include "sampling_cases.h"
#include "test_framework.h"

using namespace nemotron;

namespace {
// The tiny fixture on one CPU thread.
std::unique_ptr<Engine> load_tiny(const std::string& base, const std::string& kv_cache = "auto",
                                  int64_t max_batch_tokens = 512) {
  EngineOptions opts;
  opts.device = "cpu";
  opts.threads = 1;
  opts.max_batch_tokens = max_batch_tokens;
  opts.kv_cache = kv_cache;
  return Engine::load(base + "/tiny-nemotron-h", opts, nullptr);
}
}  // namespace

TEST(memory_plan_matches_real_allocations) {
  const std::string base = nemotron_test::fixtures_dir();
  if (base.empty()) return nemotron_test::skip("../shared/fixtures not found");
  auto engine = load_tiny(base, "auto", 64);
  const MemoryPlan plan = engine->memory_plan();
  CHECK(plan.device == "cpu");
  CHECK(plan.weight_bytes == engine->weight_bytes());
  CHECK(plan.max_batch_tokens == 64);
  CHECK(plan.device_total_bytes > 0);
  CHECK(plan.device_free_bytes <= plan.device_total_bytes);
  CHECK(plan.activation_bytes == NemotronH::scratch_bytes(engine->config(), 64));
  CHECK(plan.activation_bytes > 0);
  CHECK(plan.workspace_bytes == 0);  // the CPU kernels take no workspace beside the scratch

  // A fresh sequence holds exactly the recurrent state (no KV yet).
  auto seq = engine->create_sequence(4096);
  CHECK(seq->bytes() == plan.state_bytes_per_sequence);
  REQUIRE(plan.kv_bytes_per_token > 0);
  // After reserving T tokens of KV, the growth is T' * kv_bytes_per_token for the
  // capacity T' >= T the caches grew to (a power-of-two multiple of 256).
  seq->reserve(1000);
  const size_t kv = seq->bytes() - plan.state_bytes_per_sequence;
  CHECK(kv % plan.kv_bytes_per_token == 0);
  CHECK(kv / plan.kv_bytes_per_token == 1024);
  // ... and never past the context size, which is what admission reserves.
  seq->reserve(4096);
  CHECK(seq->bytes() == plan.state_bytes_per_sequence + 4096 * plan.kv_bytes_per_token);
}

TEST(memory_plan_follows_the_kv_cache_type) {
  // 'auto' is f32 on the CPU; bf16 halves the KV bytes per token (and a sequence's
  // KV allocation with it); anything else is refused with the choices.
  const std::string base = nemotron_test::fixtures_dir();
  if (base.empty()) return nemotron_test::skip("../shared/fixtures not found");
  auto f32 = load_tiny(base);
  CHECK(f32->memory_plan().kv_dtype == DType::F32);
  auto bf16 = load_tiny(base, "bf16");
  const MemoryPlan a = f32->memory_plan(), b = bf16->memory_plan();
  CHECK(b.kv_dtype == DType::BF16);
  CHECK(b.kv_bytes_per_token * 2 == a.kv_bytes_per_token);
  CHECK(b.state_bytes_per_sequence == a.state_bytes_per_sequence);  // the SSM state stays fp32
  auto seq = bf16->create_sequence(2048);
  seq->reserve(2048);
  CHECK(seq->bytes() == b.state_bytes_per_sequence + 2048 * b.kv_bytes_per_token);
  bool refused = false;
  try {
    load_tiny(base, "f16");
  } catch (const Error& e) {
    refused = e.code() == ErrorCode::InvalidArgument && std::string(e.what()).find("'auto', 'f32' or 'bf16'") != std::string::npos;
  }
  CHECK(refused);
}

TEST(engine_host_leases_are_reused_and_sized) {
  const std::string base = nemotron_test::fixtures_dir();
  if (base.empty()) return nemotron_test::skip("../shared/fixtures not found");
  auto engine = load_tiny(base);
  float* first = nullptr;
  {
    HostLease a = engine->lease_host(1000);
    first = a.data();
    a.data()[999] = 1.0f;  // the whole requested range is writable (ASan would flag otherwise)
    HostLease b = engine->lease_host(1000);
    CHECK(b.data() != a.data());  // two leases at once never share memory
  }
  HostLease c = engine->lease_host(500);  // a returned buffer that is big enough is reused
  CHECK(c.data() != nullptr);
  HostLease d = engine->lease_host(500);
  CHECK(c.data() == first || d.data() == first);
  HostLease big = engine->lease_host(1 << 20);  // too big for the pooled ones: a new buffer
  CHECK(big.data() != c.data() && big.data() != d.data());
  big.data()[(1 << 20) - 1] = 2.0f;
}

TEST(engine_decode_batches_past_max_batch_tokens_run_in_passes) {
  // The memory plan sizes activations (and the GPU's workspaces) for max_batch_tokens rows, so a decode batch
  // of more sequences runs as several forward passes: 7 sequences at max_batch_tokens 3 are passes of 3, 3 and
  // 1, with the logits and the sampled ids (jobs out of row order, raw rows copied) of one 7-row pass, which the
  // same sequences decoded one at a time give (the CPU engine's rows do not depend on their batch).
  const std::string base = nemotron_test::fixtures_dir();
  if (base.empty()) return nemotron_test::skip("../shared/fixtures not found");
  auto engine = load_tiny(base, "auto", 3);
  const int64_t V = engine->config().vocab_size, n = 7;
  std::vector<std::unique_ptr<SequenceState>> batch, alone, sampled;
  std::vector<DecodeItem> items, sampled_items;
  for (int64_t i = 0; i < n; ++i) {
    batch.push_back(engine->create_sequence(64));
    std::vector<int32_t> prompt;
    for (int64_t t = 0; t <= i; ++t) prompt.push_back(static_cast<int32_t>(1 + (t * 31 + i * 7) % 500));
    std::vector<float> last(static_cast<size_t>(V));
    engine->prefill(*batch.back(), prompt.data(), static_cast<int64_t>(prompt.size()), false, last.data());
    alone.push_back(engine->clone_sequence(*batch.back()));
    sampled.push_back(engine->clone_sequence(*batch.back()));
    items.push_back(DecodeItem{batch.back().get(), static_cast<int32_t>(10 + 3 * i)});
    sampled_items.push_back(DecodeItem{sampled.back().get(), items.back().token});
  }
  std::vector<float> got(static_cast<size_t>(n * V)), want(static_cast<size_t>(n * V));
  engine->decode(items, got.data());
  for (int64_t i = 0; i < n; ++i) engine->decode({DecodeItem{alone[i].get(), items[i].token}}, want.data() + i * V);
  CHECK(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)) == 0);
  for (int64_t i = 0; i < n; ++i) CHECK(batch[i]->length() == alone[i]->length());

  std::vector<SampleJob> jobs = nemotron_test::make_sampling_cases(V, n, 11).jobs;
  std::vector<SampleJob> expected = nemotron_test::make_sampling_cases(V, n, 11).jobs;
  const std::vector<int64_t> copy_rows = {5, 0, 3};
  std::vector<float> copied(copy_rows.size() * static_cast<size_t>(V));
  engine->decode_sampled(sampled_items, jobs, copy_rows, copied.data(), nullptr);
  sample_rows(want.data(), V, expected, nullptr);
  REQUIRE(jobs.size() == expected.size());
  for (size_t j = 0; j < jobs.size(); ++j) {
    CHECK(jobs[j].row == expected[j].row);
    CHECK(jobs[j].id == expected[j].id);
    CHECK(jobs[j].error == expected[j].error);
    CHECK(std::memcmp(jobs[j].params.rng.s, expected[j].params.rng.s, sizeof expected[j].params.rng.s) == 0);
  }
  for (size_t i = 0; i < copy_rows.size(); ++i)
    CHECK(std::memcmp(copied.data() + i * V, want.data() + copy_rows[i] * V, V * sizeof(float)) == 0);
}
