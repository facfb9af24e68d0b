// The op interface the NemotronH forward pass (model/nemotron_h.cpp) is written
// against, once, for every backend. Each op works on a batch of independent
// sequences packed row-wise: rows [span.row0, span.row0 + span.n) of every
// activation belong to one sequence, which already holds `span.past` tokens.
// Row-wise ops (norms, linear, activations) ignore the spans; ops that carry
// state across time (conv, scan, attention) read and update each span's state.
//
// Pointers to activations and state live in the backend's memory (host memory
// for the CPU backend, device memory for CUDA); only `embed` ids and `to_host`
// destinations are host pointers.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/dtype.h"
#include "common/host_memory.h"

namespace nemotron {

struct TensorView;

// A weight matrix [rows = out_features, cols = in_features], row-major, as the
// backend computes from it (CPU: straight from the mapped file, no copy).
struct Matrix {
  const void* data = nullptr;
  DType dtype = DType::BF16;
  int64_t rows = 0, cols = 0;
};

// A small fp32 parameter (norm weight, bias, A, D, dt_bias, conv weight), owned
// by the backend. Empty (data == nullptr) means "absent" (e.g. no bias).
struct Vector {
  const float* data = nullptr;
  int64_t size = 0;
  explicit operator bool() const { return data != nullptr; }
};

// `count` floats of backend memory.
class FloatBuffer {
 public:
  virtual ~FloatBuffer() = default;
  float* data() const { return data_; }
  size_t size() const { return size_; }

 protected:
  float* data_ = nullptr;
  size_t size_ = 0;
};
using FloatBufferPtr = std::unique_ptr<FloatBuffer>;

// Per-sequence state of one Mamba2 layer.
struct MambaLayerState {
  float* conv = nullptr;  // [K-1, conv_dim]: the last K-1 pre-conv xBC rows, oldest first
  float* ssm = nullptr;   // [heads, head_dim, state]: S_h, fp32
};

// Per-sequence KV cache of one attention layer, [capacity, kv_heads*head_dim]
// each, of `dtype` elements: F32, or BF16 (half the memory and the bytes a
// decode step reads; the reference model's own cache is bf16).
struct KvLayerState {
  void* k = nullptr;
  void* v = nullptr;
  DType dtype = DType::F32;
  int64_t capacity = 0;
};

struct SeqSpan {
  int64_t row0 = 0;  // first row of this sequence in the packed activations
  int64_t n = 0;     // new tokens in this call
  int64_t past = 0;  // tokens already absorbed by the state
  MambaLayerState* mamba = nullptr;  // set for Mamba layers
  KvLayerState* kv = nullptr;        // set for attention layers
};

struct ConvArgs {
  int64_t channels = 0;  // conv_dim
  int64_t kernel = 0;    // K
  const float* x = nullptr;  // [rows, channels] at leading dimension ldx (pre-conv xBC)
  int64_t ldx = 0;
  Vector weight;  // [K, channels]: transposed from the checkpoint's [channels, 1, K]
  Vector bias;    // [channels] or empty
  float* out = nullptr;  // [rows, channels] contiguous, SiLU applied
};

struct ScanArgs {
  int64_t heads = 0, head_dim = 0, groups = 0, state = 0, chunk = 0;
  const float* x = nullptr;   // [rows, heads*head_dim] at ldx (post-conv)
  int64_t ldx = 0;
  const float* B = nullptr;   // [rows, groups*state] at ldbc
  const float* C = nullptr;   // [rows, groups*state] at ldbc
  int64_t ldbc = 0;
  const float* dt = nullptr;  // [rows, heads] raw (before bias/softplus) at lddt
  int64_t lddt = 0;
  Vector A;        // [heads] = -exp(A_log)
  Vector dt_bias;  // [heads]
  Vector D;        // [heads]
  float dt_min = 0, dt_max = 0;  // time_step_limit clamp
  float* y = nullptr;  // [rows, heads*head_dim] contiguous
};

struct GatedNormArgs {
  const float* y = nullptr;  // [rows, dim] contiguous
  const float* z = nullptr;  // [rows, dim] at ldz (gate)
  int64_t ldz = 0;
  int64_t dim = 0, group_size = 0;
  Vector weight;  // [dim]
  float eps = 0;
  float* out = nullptr;  // [rows, dim] contiguous; may equal y
};

struct AttentionArgs {
  int64_t q_heads = 0, kv_heads = 0, head_dim = 0;
  float scale = 0;
  const float* q = nullptr;  // [rows, q_heads*head_dim] contiguous
  const float* k = nullptr;  // [rows, kv_heads*head_dim] contiguous (new tokens)
  const float* v = nullptr;
  float* out = nullptr;      // [rows, q_heads*head_dim] contiguous
  DType kv_dtype = DType::F32;  // element type of every span's cache (F32 or BF16)
};

// ---- sampling where the logits are (engine/sampler.h finishes on the host)
// One token's adjustment in one logits row, applied as lib/chat/sampling.ts
// does (penalty, then bias, then mask) with the same roundings: each double
// operation is a single IEEE operation, so every backend gets the same bits.
struct LogitEdit {
  static constexpr uint32_t kPenalty = 1, kBias = 2, kMask = 4;
  int32_t row = 0, token = 0;
  uint32_t flags = 0;
  double repetition = 1;  // kPenalty: v = float(v > 0 ? v / repetition : v * repetition), skipped when 1
  double subtract = 0;    // kPenalty: then v = float(v - subtract) (presence + count * frequency)
  double bias = 0;        // kBias: v = float(v + bias); kMask: v = -inf
};

// What the sampler needs from one logits row: its maximum, the first index of
// it, and (unless greedy) every token whose logit is >= max + floor_offset, in
// id order, with its logit.
struct CandidateQuery {
  int64_t row = 0;
  bool collect = false;
  double floor_offset = 0;  // temperature * ln(1e-9): the sampler's candidate ratio
};
struct RowCandidates {
  float max = 0;
  int32_t argmax = 0;
  std::vector<int32_t> ids;
  std::vector<float> logits;
};

// The shapes of a model's forward passes, for Backend::plan_workspaces: every
// weight matrix a pass multiplies by, and the attention and scan layers' shapes
// (pointers unset; heads 0 where the model has no such layer).
struct WorkspaceQuery {
  int64_t max_rows = 0;  // packed tokens per forward pass
  std::vector<const Matrix*> weights;
  AttentionArgs attention;
  ScanArgs scan;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;

  // ---- memory
  virtual FloatBufferPtr alloc(size_t count) = 0;  // zero-filled
  // Host memory that to_host writes into fastest (CUDA: page-locked, so the
  // device-to-host copy runs at bus speed instead of through a staging buffer).
  virtual FloatBufferPtr alloc_host(size_t count) = 0;
  virtual void zero(float* dst, size_t count) = 0;
  virtual void copy(float* dst, const float* src, size_t count) = 0;  // both backend memory
  virtual void to_host(const float* src, size_t count, float* host_dst) = 0;
  // Host -> backend memory; complete (and ordered before later work) when it returns.
  virtual void from_host(const float* host_src, size_t count, float* dst) = 0;
  // Total and currently free memory where this backend allocates (host RAM or
  // the GPU's memory), for the memory plan and admission.
  virtual MemoryInfo memory() const = 0;
  // The most temporary memory this backend's kernels take beside the model's
  // activation scratch during a forward pass of the query's shapes (CUDA: the
  // GEMM's bf16 copy of x and split-K partials, attention's split-KV partials,
  // the chunked scan's chunk states), for the memory plan: an upper bound over
  // every batch shape of up to max_rows tokens, at any context length. The
  // backend sizes the workspaces it keeps to that plan when it first needs them
  // (one allocation each, none of the plan's bytes spent twice while one grows).
  virtual uint64_t plan_workspaces(const WorkspaceQuery&) { return 0; }

  // ---- weights (called once at load)
  virtual Matrix upload_matrix(const TensorView& t) = 0;
  virtual Vector upload_vector(const std::vector<float>& host) = 0;

  // ---- forward passes
  // Every op of one forward pass comes between begin_pass and end_pass (results
  // are read back after end_pass). A backend may hold the ops and run them at
  // end_pass (CUDA: one upload of the pass's host data, then the kernels, as a
  // CUDA graph when `repeating`: passes of this shape recur, as decode steps do).
  // cancel_pass drops a pass whose building failed. The CPU runs ops at once.
  virtual void begin_pass(bool repeating) {}
  virtual void end_pass() {}
  virtual void cancel_pass() {}

  // ---- row-wise ops
  virtual void embed(const Matrix& table, const int32_t* host_ids, int64_t n, float* out) = 0;
  virtual void rms_norm(const float* x, int64_t rows, int64_t dim, const Vector& w, float eps, float* out) = 0;
  // out[r, j] = sum_k x[r, k] * w[j, k] + bias[j]
  virtual void linear(const float* x, int64_t rows, int64_t ldx, const Matrix& w, const Vector& bias, float* out,
                      int64_t ldo) = 0;
  virtual void relu_squared(float* x, int64_t n) = 0;
  virtual void add(float* h, const float* y, int64_t n) = 0;  // h += y
  virtual void gated_rms_norm(const GatedNormArgs& a, int64_t rows) = 0;

  // ---- ops with per-sequence state
  virtual void conv1d_silu(const ConvArgs& a, const std::vector<SeqSpan>& spans) = 0;
  virtual void ssm_scan(const ScanArgs& a, const std::vector<SeqSpan>& spans) = 0;
  // Appends the spans' new k/v to their caches (capacity >= past + n), then
  // computes causal attention of each new query over cached + new keys.
  virtual void attention(const AttentionArgs& a, const std::vector<SeqSpan>& spans) = 0;

  // ---- sampling support (rows of a [rows, vocab] logits array in backend memory)
  virtual void edit_logits(float* logits, int64_t vocab, const std::vector<LogitEdit>& edits) = 0;
  // One result per query, in query order. May overwrite the queried rows (CUDA
  // compacts the candidates in place), so read anything else from them first.
  virtual void candidates(float* logits, int64_t vocab, const std::vector<CandidateQuery>& queries,
                          std::vector<RowCandidates>& out) = 0;
};

// Brackets a forward pass on a backend (Backend::begin_pass); a pass left by an
// exception is dropped (cancel_pass), not run.
class PassScope {
 public:
  PassScope(Backend& be, bool repeating) : be_(be) { be_.begin_pass(repeating); }
  PassScope(const PassScope&) = delete;
  PassScope& operator=(const PassScope&) = delete;
  ~PassScope() {
    if (open_) be_.cancel_pass();
  }
  void end() {
    open_ = false;
    be_.end_pass();
  }

 private:
  Backend& be_;
  bool open_ = true;
};

}  // namespace nemotron
