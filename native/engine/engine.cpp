#include "engine/engine.h"

#include <algorithm>

#include "backend/cpu/cpu_backend.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/device_probe.h"
#include "common/error.h"
#include "common/thread_pool.h"
#include "model/fingerprint.h"

namespace nemotron {
namespace {

// The CUDA kernels compile in CI but have not yet passed their tests on a GPU
// (no GPU was lent when they were written). Until they have, device 'auto'
// keeps users on the proven CPU engine; device 'cuda' opts in explicitly.
// Flip this once scripts/gpu-session.sh is green on a GPU.
constexpr bool kAutoSelectsCuda = false;

// Reads one byte of every page of every tensor so the weights are resident
// before the first forward pass (and progress can be reported while the OS
// reads them from disk), instead of stalling the first request.
void prefault(const SafetensorsSet& set, const ProgressFn& progress) {
  const uint64_t total = set.total_bytes();
  uint64_t done = 0, reported = 0;
  volatile uint8_t sink = 0;
  for (const auto& kv : set.tensors()) {
    const TensorView& t = kv.second;
    for (size_t off = 0; off < t.nbytes; off += 4096) sink = static_cast<uint8_t>(sink + t.data[off]);
    done += t.nbytes;
    if (progress && (done - reported >= (64u << 20) || done == total)) {
      progress("weights", done, total);
      reported = done;
    }
  }
  (void)sink;
}

}  // namespace

std::unique_ptr<Engine> Engine::load(const std::string& dir, const EngineOptions& opts, const ProgressFn& progress) {
  std::unique_ptr<Engine> e(new Engine());
  if (progress) progress("config", 0, 0);
  e->config_ = load_model_config(dir);
  e->files_ = SafetensorsSet::open_dir(dir);
  e->weights_ = bind_weights(e->config_, *e->files_);
  e->weight_bytes_ = e->files_->total_bytes();

  if (opts.device != "auto" && opts.device != "cpu" && opts.device != "cuda")
    fail(ErrorCode::InvalidArgument, "unknown device '" + opts.device + "' (expected 'auto', 'cpu' or 'cuda')");
  const CudaStatus& cuda = cuda_status();
  if (opts.device == "cuda" && !cuda.available)
    fail(ErrorCode::DeviceUnavailable, "device 'cuda' was requested but CUDA cannot be used: " + cuda.reason +
                                           ". Use device 'cpu' (or 'auto', which falls back to the CPU).");
  const bool use_cuda = opts.device == "cuda" || (opts.device == "auto" && cuda.available && kAutoSelectsCuda);
  e->device_ = use_cuda ? "cuda" : "cpu";
  e->threads_ = opts.threads > 0 ? opts.threads : ThreadPool::default_threads();
  e->max_batch_tokens_ = std::max<int64_t>(1, opts.max_batch_tokens);
  if (opts.kv_cache == "f32" || (opts.kv_cache == "auto" && !use_cuda))
    e->kv_dtype_ = DType::F32;
  else if (opts.kv_cache == "bf16" || opts.kv_cache == "auto")
    e->kv_dtype_ = DType::BF16;
  else
    fail(ErrorCode::InvalidArgument, "unknown KV cache type '" + opts.kv_cache + "' (expected 'auto', 'f32' or 'bf16')");
  if (use_cuda) {
#ifdef NEMOTRON_WITH_CUDA
    e->backend_ = make_cuda_backend(0);
#endif
  } else {
    e->backend_ = std::make_unique<CpuBackend>(e->threads_);
  }

  prefault(*e->files_, progress);
  e->fingerprint_ = model_fingerprint(e->config_, *e->files_);
  e->model_ = std::make_unique<NemotronH>(e->config_, e->weights_, *e->backend_);
  e->workspace_bytes_ = e->model_->plan_workspaces(e->max_batch_tokens_);
  if (progress) progress("ready", e->weight_bytes_, e->weight_bytes_);
  return e;
}

Engine::~Engine() = default;

MemoryPlan Engine::memory_plan() const {
  const ModelConfig& c = config_;
  MemoryPlan p;
  p.device = device_;
  p.weight_bytes = weight_bytes_;
  p.state_bytes_per_sequence = SequenceState::state_bytes(c);
  p.kv_bytes_per_token = SequenceState::kv_bytes_per_token(c, kv_dtype_);
  p.kv_dtype = kv_dtype_;
  p.max_batch_tokens = max_batch_tokens_;
  p.activation_bytes = NemotronH::scratch_bytes(c, max_batch_tokens_);
  p.workspace_bytes = workspace_bytes_;
  const MemoryInfo m = backend_->memory();
  p.device_total_bytes = m.total;
  p.device_free_bytes = m.free;
  return p;
}

std::unique_ptr<SequenceState> Engine::create_sequence(int64_t context_size) {
  std::lock_guard<std::mutex> lock(mu_);
  if (context_size <= 0)
    fail(ErrorCode::InvalidArgument, "contextSize must be a positive number of tokens, got " +
                                         std::to_string(context_size));
  return std::make_unique<SequenceState>(config_, *backend_, context_size, kv_dtype_);
}

void Engine::check_tokens(const int32_t* tokens, int64_t n) const {
  for (int64_t i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= config_.vocab_size)
      fail(ErrorCode::InvalidArgument, "token id " + std::to_string(tokens[i]) + " at index " + std::to_string(i) +
                                           " is out of range: the vocabulary has " +
                                           std::to_string(config_.vocab_size) + " tokens");
}

void Engine::check_room(const SequenceState& seq, int64_t n) const {
  if (seq.length() + n > seq.context_size())
    fail(ErrorCode::ContextOverflow, "context overflow: the sequence holds " + std::to_string(seq.length()) +
                                         " tokens and " + std::to_string(n) + " more would exceed its context size of " +
                                         std::to_string(seq.context_size()));
}

void Engine::prefill(SequenceState& seq, const int32_t* tokens, int64_t n, bool all_logits, float* logits) {
  std::lock_guard<std::mutex> lock(mu_);
  if (n <= 0) fail(ErrorCode::InvalidArgument, "prefill needs at least one token");
  check_tokens(tokens, n);
  check_room(seq, n);
  seq.reserve(seq.length() + n);
  const int64_t V = config_.vocab_size;
  for (int64_t start = 0; start < n; start += max_batch_tokens_) {
    const int64_t len = std::min(max_batch_tokens_, n - start);
    const bool last_piece = start + len == n;
    const LogitsWanted wanted = all_logits ? LogitsWanted::All : last_piece ? LogitsWanted::Last : LogitsWanted::None;
    model_->forward({ForwardItem{&seq, tokens + start, len, wanted}}, all_logits ? logits + start * V : logits);
  }
}

std::vector<ForwardItem> Engine::decode_items(const std::vector<DecodeItem>& items) {
  std::vector<ForwardItem> fwd;
  for (size_t i = 0; i < items.size(); ++i) {
    check_tokens(&items[i].token, 1);
    check_room(*items[i].seq, 1);
    for (size_t j = 0; j < i; ++j)
      if (items[j].seq == items[i].seq) fail(ErrorCode::InvalidArgument, "a sequence appears twice in one decode batch");
  }
  for (const DecodeItem& it : items) {
    it.seq->reserve(it.seq->length() + 1);
    fwd.push_back(ForwardItem{it.seq, &it.token, 1, LogitsWanted::Last});
  }
  return fwd;
}

// A decode batch of more sequences than max_batch_tokens runs as several forward passes, so no pass exceeds
// the rows the memory plan sized the activations and workspaces for (the sequences are independent).
void Engine::decode(const std::vector<DecodeItem>& items, float* logits) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::vector<ForwardItem> fwd = decode_items(items);
  const int64_t rows = static_cast<int64_t>(fwd.size()), V = config_.vocab_size;
  for (int64_t r0 = 0; r0 < rows; r0 += max_batch_tokens_) {
    const int64_t n = std::min(max_batch_tokens_, rows - r0);
    model_->forward(std::vector<ForwardItem>(fwd.begin() + r0, fwd.begin() + r0 + n), logits + r0 * V);
  }
}

void Engine::decode_sampled(const std::vector<DecodeItem>& items, std::vector<SampleJob>& jobs,
                            const std::vector<int64_t>& copy_rows, float* copied, ThreadPool* pool) {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t rows = static_cast<int64_t>(items.size()), V = config_.vocab_size;
  for (int64_t r : copy_rows)
    if (r < 0 || r >= rows) fail(ErrorCode::InvalidArgument, "decode_sampled: a copied row is outside the batch");
  check_sample_jobs(jobs, rows);
  const std::vector<ForwardItem> fwd = decode_items(items);
  for (int64_t r0 = 0; r0 < rows; r0 += max_batch_tokens_) {  // passes of at most max_batch_tokens, as decode()
    const int64_t n = std::min(max_batch_tokens_, rows - r0);
    float* logits = model_->forward(std::vector<ForwardItem>(fwd.begin() + r0, fwd.begin() + r0 + n), nullptr);
    auto in_pass = [&](int64_t row) { return row >= r0 && row < r0 + n; };

    // Raw rows first: the edits and the candidate search below change them.
    for (size_t i = 0; i < copy_rows.size(); ++i)
      if (in_pass(copy_rows[i]))
        backend_->to_host(logits + (copy_rows[i] - r0) * V, static_cast<size_t>(V), copied + i * V);

    std::vector<SampleJob> pass_jobs;  // this pass's jobs, rows relative to it
    std::vector<size_t> job_index;
    for (size_t j = 0; j < jobs.size(); ++j)
      if (in_pass(jobs[j].row)) {
        pass_jobs.push_back(std::move(jobs[j]));
        pass_jobs.back().row -= r0;
        job_index.push_back(j);
      }
    sample_rows_in(*backend_, logits, n, V, pass_jobs, pool);
    for (size_t k = 0; k < job_index.size(); ++k) {
      pass_jobs[k].row += r0;
      jobs[job_index[k]] = std::move(pass_jobs[k]);
    }
  }
}

HostLease Engine::lease_host(size_t count) {
  {
    std::lock_guard<std::mutex> lock(host_mu_);
    for (size_t i = 0; i < host_pool_.size(); ++i) {
      if (host_pool_[i]->size() < count) continue;
      FloatBufferPtr buf = std::move(host_pool_[i]);
      host_pool_.erase(host_pool_.begin() + static_cast<std::ptrdiff_t>(i));
      return HostLease(this, std::move(buf));
    }
  }
  std::lock_guard<std::mutex> lock(mu_);  // the backend is not thread-safe
  return HostLease(this, backend_->alloc_host(count));
}

void Engine::give_back(FloatBufferPtr buf) {
  std::lock_guard<std::mutex> lock(host_mu_);
  // A few buffers cover the steps in flight; drop the smallest beyond that.
  host_pool_.push_back(std::move(buf));
  constexpr size_t kKeep = 4;
  if (host_pool_.size() > kKeep) {
    auto smallest = std::min_element(host_pool_.begin(), host_pool_.end(),
                                     [](const FloatBufferPtr& a, const FloatBufferPtr& b) { return a->size() < b->size(); });
    host_pool_.erase(smallest);
  }
}

HostLease::~HostLease() {
  if (buf_) owner_->give_back(std::move(buf_));
}

std::unique_ptr<SequenceState> Engine::clone_sequence(const SequenceState& seq, int64_t context_size) {
  std::lock_guard<std::mutex> lock(mu_);
  return seq.clone(context_size);
}

void Engine::reset_sequence(SequenceState& seq) {
  std::lock_guard<std::mutex> lock(mu_);
  seq.reset();
}

namespace {
// Floats per piece when a state moves between backend memory and a file: 16 MiB
// of staging, so saving a 9B state (139 MiB) holds the engine lock ~9 short times.
// (Even, so a piece of a bf16 block starts on a float boundary.)
constexpr size_t kStatePieceFloats = size_t{4} << 20;

// A state file holds every block as fp32, whatever the caches' type, so a state
// moves between devices and KV cache types. Elements [off, off+n) of a block:
float* block_floats(const SequenceState::Block& b, size_t off) {
  return reinterpret_cast<float*>(static_cast<char*>(b.data) + off * dtype_size(b.dtype));
}

void block_to_host(Backend& be, const SequenceState::Block& b, size_t off, size_t n, float* dst,
                   std::vector<uint16_t>& raw) {
  if (b.dtype == DType::F32) return be.to_host(block_floats(b, off), n, dst);
  raw.resize(floats_holding(n, b.dtype) * 2);  // whole floats: the backend copies floats
  be.to_host(block_floats(b, off), floats_holding(n, b.dtype), reinterpret_cast<float*>(raw.data()));
  convert_to_f32(raw.data(), b.dtype, n, dst);
}

void block_from_host(Backend& be, const float* src, size_t n, const SequenceState::Block& b, size_t off,
                     std::vector<uint16_t>& raw) {
  if (b.dtype == DType::F32) return be.from_host(src, n, block_floats(b, off));
  raw.assign(floats_holding(n, b.dtype) * 2, 0);
  for (size_t i = 0; i < n; ++i) raw[i] = f32_to_bf16(src[i]);  // round to nearest even, as the kernels append
  be.from_host(reinterpret_cast<const float*>(raw.data()), floats_holding(n, b.dtype),
               block_floats(b, off));
}
}  // namespace

uint64_t Engine::save_sequence(SequenceState* seq, int64_t context_size, const std::string& path,
                               const std::string& meta) {
  StateFileInfo info;
  info.model = fingerprint_;
  info.pattern = config_.pattern;
  info.length = seq ? seq->length() : 0;
  info.context_size = std::max(context_size, info.length);
  info.meta = meta;
  std::vector<SequenceState::Block> blocks;
  if (seq) {
    std::lock_guard<std::mutex> lock(mu_);
    blocks = seq->blocks();
  }
  // A sequence that never ran is the zero state: saved with no blocks at all (a few hundred bytes).
  if (seq)
    for (size_t n : SequenceState::block_sizes(config_, info.length)) info.blocks.push_back(n);
  if (blocks.size() != info.blocks.size()) fail(ErrorCode::Internal, "save_sequence: block layout mismatch");
  HostLease staging = lease_host(kStatePieceFloats);
  std::vector<uint16_t> raw;
  return write_state_file(
      path, info,
      [&](size_t b, size_t off, size_t n, float* dst) {
        std::lock_guard<std::mutex> lock(mu_);
        block_to_host(*backend_, blocks[b], off, n, dst, raw);
      },
      staging.data(), kStatePieceFloats);
}

StateFileInfo Engine::inspect_state_file(const std::string& path) { return StateFileReader(path).info(); }

std::unique_ptr<SequenceState> Engine::load_sequence(const std::string& path, int64_t context_size) {
  StateFileReader reader(path);
  const StateFileInfo& info = reader.info();
  if (info.model != fingerprint_)
    fail(ErrorCode::StateFile, "state file '" + path + "' was saved by another model (weights fingerprint " +
                                   info.model + ", pattern " + info.pattern + "; this model: " + fingerprint_ +
                                   ", pattern " + config_.pattern + ")");
  std::vector<uint64_t> expected;
  for (size_t n : SequenceState::block_sizes(config_, info.length)) expected.push_back(n);
  const bool zero_state = info.length == 0 && info.blocks.empty();  // saved before it ran
  if (!zero_state && info.blocks != expected)
    fail(ErrorCode::StateFile, "state file '" + path + "': its block sizes do not match this model's state layout");
  if (context_size == 0) context_size = info.context_size;
  if (context_size < std::max<int64_t>(1, info.length))
    fail(ErrorCode::InvalidArgument, "a contextSize of " + std::to_string(context_size) + " cannot hold the " +
                                         std::to_string(info.length) + " tokens saved in '" + path + "'");
  std::unique_ptr<SequenceState> seq = create_sequence(context_size);
  std::vector<SequenceState::Block> blocks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    seq->reserve(info.length);
    seq->advance(info.length);
    if (!zero_state) blocks = seq->blocks();
  }
  HostLease staging = lease_host(kStatePieceFloats);
  std::vector<uint16_t> raw;
  reader.read_payload(
      [&](size_t b, size_t off, size_t n, const float* src) {
        std::lock_guard<std::mutex> lock(mu_);
        block_from_host(*backend_, src, n, blocks[b], off, raw);
      },
      staging.data(), kStatePieceFloats);
  return seq;
}

}  // namespace nemotron
