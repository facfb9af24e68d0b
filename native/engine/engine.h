// One loaded model: its files, config, backend, forward pass and the sequences
// created on it. Every public call is serialised by the engine's mutex, so the
// N-API layer may call from any worker thread.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "engine/sampler.h"
#include "engine/sequence_state.h"
#include "engine/state_file.h"
#include "model/config.h"
#include "model/nemotron_h.h"
#include "model/safetensors.h"
#include "model/weights.h"

namespace nemotron {

struct EngineOptions {
  std::string device = "auto";  // "auto" | "cpu" | "cuda"
  int threads = 0;              // 0 = all cores
  // Largest number of tokens one forward pass processes; longer prompts are
  // prefilled in pieces of this size, which bounds activation memory.
  int64_t max_batch_tokens = 512;
  // Element type of the KV caches: "f32", "bf16" (half the memory, and what the
  // reference model itself caches), or "auto" = bf16 on CUDA, f32 on the CPU
  // (the CPU engine is the fp32 reference).
  std::string kv_cache = "auto";
};

// stage: "config" | "weights" | "ready"; done/total in bytes for "weights".
using ProgressFn = std::function<void(const std::string& stage, uint64_t done, uint64_t total)>;

// What the model holds and what each sequence will cost, where the backend
// allocates (host RAM for the CPU, GPU memory for CUDA). Sequences reserve
// state + KV from the budget left after weights and activations (lib/admission.ts).
struct MemoryPlan {
  std::string device;
  uint64_t weight_bytes = 0;               // weights (CPU: mapped from the files)
  uint64_t state_bytes_per_sequence = 0;   // conv window + SSM state of every Mamba layer, fp32
  uint64_t kv_bytes_per_token = 0;         // k + v of every attention layer, in kv_dtype
  DType kv_dtype = DType::F32;
  uint64_t activation_bytes = 0;           // scratch of one forward pass of max_batch_tokens rows
  uint64_t workspace_bytes = 0;            // the kernels' temporaries at most beside it (0 on the CPU)
  int64_t max_batch_tokens = 0;
  uint64_t device_total_bytes = 0, device_free_bytes = 0;
};

struct DecodeItem {
  SequenceState* seq;
  int32_t token;
};

// Host memory for one decode step's logits, borrowed from the engine and given
// back when the lease ends (reused from step to step; pinned on CUDA).
class HostLease {
 public:
  HostLease(class Engine* owner, FloatBufferPtr buf) : owner_(owner), buf_(std::move(buf)) {}
  HostLease(HostLease&&) = default;
  HostLease(const HostLease&) = delete;
  ~HostLease();
  float* data() const { return buf_->data(); }

 private:
  class Engine* owner_;
  FloatBufferPtr buf_;
};

class Engine {
 public:
  static std::unique_ptr<Engine> load(const std::string& dir, const EngineOptions& opts, const ProgressFn& progress);
  ~Engine();

  const ModelConfig& config() const { return config_; }
  const std::string& device() const { return device_; }
  int threads() const { return threads_; }
  DType kv_dtype() const { return kv_dtype_; }
  uint64_t weight_bytes() const { return weight_bytes_; }

  // Lock-free (constants + a memory query), so callable while a forward pass runs.
  MemoryPlan memory_plan() const;

  std::unique_ptr<SequenceState> create_sequence(int64_t context_size);

  // Feeds `tokens` to the sequence (chunked into forward passes of at most
  // max_batch_tokens). Writes logits for every token ([n, vocab]) when
  // all_logits, else for the last token only ([vocab]).
  void prefill(SequenceState& seq, const int32_t* tokens, int64_t n, bool all_logits, float* logits);
  // One step for several sequences at once; logits [items, vocab]. More items
  // than max_batch_tokens run as several forward passes (the same results).
  void decode(const std::vector<DecodeItem>& items, float* logits);

  // One step for several sequences, sampled where the logits are (on CUDA: on
  // the GPU), so only each row's candidates reach the host: jobs[j] samples
  // batch row jobs[j].row and gets its id, advanced RNG state or error, exactly
  // as sample_rows would on the full logits. The raw logits of the rows listed in
  // `copy_rows` are copied to `copied` ([copy_rows.size(), vocab], host) first.
  // `pool` (optional) finishes the rows on several threads. Split into passes
  // of at most max_batch_tokens rows as decode() is.
  void decode_sampled(const std::vector<DecodeItem>& items, std::vector<SampleJob>& jobs,
                      const std::vector<int64_t>& copy_rows, float* copied, ThreadPool* pool);

  // At least `count` floats of host memory for logits, reused across steps.
  HostLease lease_host(size_t count);

  // context_size: the copy's (>= the sequence's length; 0 = the same).
  std::unique_ptr<SequenceState> clone_sequence(const SequenceState& seq, int64_t context_size = 0);
  void reset_sequence(SequenceState& seq);

  // Identity of the weights (model/fingerprint.h); saved states carry it.
  const std::string& fingerprint() const { return fingerprint_; }
  // Writes `seq` (nullptr: a sequence that never ran, all zeros) and the caller's `meta` to
  // `path` (engine/state_file.h); `context_size` is recorded as the default for loading.
  // The state is copied out piece by piece, the engine lock taken per piece, so other
  // sequences' forward passes run in between: the caller must not advance `seq` meanwhile
  // (lib/sequence.ts saves a private clone). Returns the file's size.
  uint64_t save_sequence(SequenceState* seq, int64_t context_size, const std::string& path, const std::string& meta);
  // A new sequence holding the state saved in `path` (checked: format, checksum, this model's
  // fingerprint and layout); context_size 0 = the saved sequence's.
  std::unique_ptr<SequenceState> load_sequence(const std::string& path, int64_t context_size);
  // A state file's header (checked), without reading the state; needs no model.
  static StateFileInfo inspect_state_file(const std::string& path);

 private:
  Engine() = default;
  void check_tokens(const int32_t* tokens, int64_t n) const;
  void check_room(const SequenceState& seq, int64_t n) const;
  // The forward items of a decode step, after checking it (mu_ held).
  std::vector<ForwardItem> decode_items(const std::vector<DecodeItem>& items);

  std::mutex mu_;
  ModelConfig config_;
  std::string device_;
  int threads_ = 1;
  DType kv_dtype_ = DType::F32;
  int64_t max_batch_tokens_ = 512;
  uint64_t weight_bytes_ = 0;
  uint64_t workspace_bytes_ = 0;  // the model's kernel workspaces at max_batch_tokens (fixed at load)
  std::string fingerprint_;
  std::unique_ptr<SafetensorsSet> files_;
  ModelWeights weights_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<NemotronH> model_;

  friend class HostLease;
  void give_back(FloatBufferPtr buf);
  std::mutex host_mu_;  // guards host_pool_ only (leases outlive the engine's call lock)
  std::vector<FloatBufferPtr> host_pool_;
};

}  // namespace nemotron
