// CudaBackend: device memory, weights uploaded once, every op launched on one
// stream. The ops of a forward pass are recorded and run together at its end
// (pass_recorder.h): one upload of the pass's ids and span lists, then the
// kernels, as a CUDA graph for repeating decode steps.
#include "backend/cuda/cuda_backend.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <vector>

#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/pass_recorder.h"
#include "backend/cuda/workspace_pool.h"
#include "common/error.h"
#include "model/safetensors.h"

namespace nemotron {
namespace {

// What to do about running out: the weights are fixed, the rest grows with contexts and sequences.
constexpr const char* kStateHint = "use a smaller contextSize, fewer sequences, or device 'cpu'";
constexpr const char* kWeightHint = "the weights alone do not fit: free the GPU (other processes), use a GPU with more memory, or device 'cpu'";

// cudaMalloc with an out-of-memory error that says how much was needed and free.
void* device_alloc(size_t bytes, const char* what, const char* hint = kStateHint) {
  void* p = nullptr;
  if (bytes == 0) return nullptr;
  cudaError_t err = cudaMalloc(&p, bytes);
  if (err == cudaErrorMemoryAllocation) {
    // The workspace pool keeps what attention and the scan freed (it never trims by itself): give that
    // back to the device and try once more before calling it out of memory.
    cudaGetLastError();
    int device = 0;
    if (cudaGetDevice(&device) == cudaSuccess) cudaMemPoolTrimTo(cuda::workspace_pool(device), 0);
    err = cudaMalloc(&p, bytes);
  }
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // reset the recorded error so the next launch check does not report this one
    cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    fail(ErrorCode::OutOfMemory, std::string("GPU out of memory allocating ") + what + ": needed " + bytes_text(bytes) +
                                     ", free " + bytes_text(free_b) + " of " + bytes_text(total_b) + " (" + hint +
                                     ")");
  }
  cuda::check(err, what);
  return p;
}

class DeviceBuffer final : public FloatBuffer {
 public:
  DeviceBuffer(size_t count, cudaStream_t stream) {
    data_ = static_cast<float*>(device_alloc(count * sizeof(float), "a state/activation buffer"));
    size_ = count;
    if (!count) return;
    const cudaError_t err = cudaMemsetAsync(data_, 0, count * sizeof(float), stream);
    if (err != cudaSuccess) {
      cudaFree(data_);  // a throwing constructor runs no destructor
      data_ = nullptr;
      cuda::check(err, "cudaMemsetAsync");
    }
  }
  ~DeviceBuffer() override {
    if (data_) cudaFree(data_);
  }
};

// Page-locked host memory (for logits copied back every step); plain heap memory
// if the pinned allocation fails, which is slower to copy into but still correct.
class PinnedBuffer final : public FloatBuffer {
 public:
  explicit PinnedBuffer(size_t count) {
    size_ = count;
    if (count == 0) return;
    if (cudaMallocHost(reinterpret_cast<void**>(&data_), count * sizeof(float)) == cudaSuccess) {
      pinned_ = true;
      return;
    }
    cudaGetLastError();  // clear the failed allocation's error
    data_ = static_cast<float*>(std::malloc(count * sizeof(float)));
    if (!data_) fail(ErrorCode::OutOfMemory, "out of host memory allocating " + bytes_text(count * sizeof(float)) + " for logits");
  }
  ~PinnedBuffer() override {
    if (!data_) return;
    if (pinned_)
      cudaFreeHost(data_);
    else
      std::free(data_);
  }

 private:
  bool pinned_ = false;
};

// Host data copied to the device on a stream through page-locked memory, so the
// copy is truly asynchronous and the caller's buffer may go away at once (CUDA
// only says a pageable cudaMemcpyAsync "might" consume its source before
// returning). The pinned area is rewritten only after the previous copy out of
// it has run; the device area is reused in stream order.
class StagedUpload {
 public:
  StagedUpload() = default;
  StagedUpload(const StagedUpload&) = delete;
  ~StagedUpload() {
    if (host_) cudaFreeHost(host_);
    if (device_) cudaFree(device_);
    if (done_) cudaEventDestroy(done_);
  }

  void* put(const void* src, size_t bytes, cudaStream_t stream, const char* what) {
    if (pending_) cuda::check(cudaEventSynchronize(done_), what);
    pending_ = false;
    if (bytes > capacity_) {
      // queued kernels may still read the old device area
      cuda::check(cudaStreamSynchronize(stream), what);
      if (host_) cudaFreeHost(host_);
      if (device_) cudaFree(device_);
      host_ = nullptr;
      device_ = nullptr;
      capacity_ = 0;
      const size_t cap = std::max<size_t>(bytes, 4096);
      cuda::check(cudaMallocHost(&host_, cap), "cudaMallocHost");
      device_ = device_alloc(cap, what);
      capacity_ = cap;
      if (!done_) cuda::check(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming), "cudaEventCreate");
    }
    std::memcpy(host_, src, bytes);
    cuda::check(cudaMemcpyAsync(device_, host_, bytes, cudaMemcpyHostToDevice, stream), what);
    cuda::check(cudaEventRecord(done_, stream), "cudaEventRecord");
    pending_ = true;
    return device_;
  }

 private:
  void* host_ = nullptr;
  void* device_ = nullptr;
  size_t capacity_ = 0;
  cudaEvent_t done_ = nullptr;
  bool pending_ = false;
};

// Grow-only page-locked host memory that results are copied back into.
class PinnedArea {
 public:
  PinnedArea() = default;
  PinnedArea(const PinnedArea&) = delete;
  ~PinnedArea() {
    if (ptr_) cudaFreeHost(ptr_);
  }
  // Only call when no copy into the area is in flight.
  void* get(size_t bytes) {
    if (bytes > bytes_) {
      if (ptr_) cudaFreeHost(ptr_);
      ptr_ = nullptr;
      bytes_ = 0;
      cuda::check(cudaMallocHost(&ptr_, std::max<size_t>(bytes, 4096)), "cudaMallocHost");
      bytes_ = std::max<size_t>(bytes, 4096);
    }
    return ptr_;
  }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// Owns a device allocation for the backend's lifetime (weights, small vectors).
struct DeviceBlock {
  void* ptr = nullptr;
  DeviceBlock(size_t bytes, const char* what) : ptr(device_alloc(bytes, what, kWeightHint)) {}
  DeviceBlock(const DeviceBlock&) = delete;
  ~DeviceBlock() {
    if (ptr) cudaFree(ptr);
  }
};

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device) : device_(device) {
    // A device that is present but cannot be used (exclusive-process mode and busy, a failing driver) is
    // DeviceUnavailable, as the header promises, so device 'auto' can fall back to the CPU.
    cudaError_t err = cudaSetDevice(device);
    if (err == cudaSuccess) err = cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking);
    if (err != cudaSuccess) {
      cudaGetLastError();
      fail(ErrorCode::DeviceUnavailable, std::string("CUDA device ") + std::to_string(device) +
                                             " cannot be used: " + cudaGetErrorString(err));
    }
    pass_ = std::make_unique<cuda::PassRecorder>(stream_);
  }
  ~CudaBackend() override {
    cudaStreamSynchronize(stream_);
    pass_.reset();
    for (Scratch* sc : {&heads_, &masks_, &attention_ws_, &linear_ws_})
      if (sc->ptr) cudaFree(sc->ptr);
    blocks_.clear();
    cudaStreamDestroy(stream_);
  }

  std::string name() const override { return "cuda"; }

  FloatBufferPtr alloc(size_t count) override {
    bind();
    return std::make_unique<DeviceBuffer>(count, stream_);
  }
  FloatBufferPtr alloc_host(size_t count) override {
    bind();
    return std::make_unique<PinnedBuffer>(count);
  }
  void zero(float* dst, size_t count) override {
    bind();
    op(pass_->sig() << Op::Zero << dst << count,
       [=] { cuda::check(cudaMemsetAsync(dst, 0, count * sizeof(float), stream_), "cudaMemsetAsync"); });
  }
  void copy(float* dst, const float* src, size_t count) override {
    bind();
    op(pass_->sig() << Op::Copy << dst << src << count, [=] {
      cuda::check(cudaMemcpyAsync(dst, src, count * sizeof(float), cudaMemcpyDeviceToDevice, stream_), "copy");
    });
  }
  void to_host(const float* src, size_t count, float* host_dst) override {
    bind();
    outside_pass("to_host");
    cuda::check(cudaMemcpyAsync(host_dst, src, count * sizeof(float), cudaMemcpyDeviceToHost, stream_), "to_host");
    cuda::check(cudaStreamSynchronize(stream_), "forward pass");
  }
  void from_host(const float* host_src, size_t count, float* dst) override {
    bind();
    outside_pass("from_host");
    upload(dst, host_src, count * sizeof(float), "from_host");
  }

  void begin_pass(bool repeating) override {
    bind();
    pass_->begin(repeating);
  }
  void end_pass() override {
    bind();
    pass_->end();
  }
  void cancel_pass() override { pass_->cancel(); }

  MemoryInfo memory() const override {
    cuda::check(cudaSetDevice(device_), "cudaSetDevice");
    size_t free_b = 0, total_b = 0;
    cuda::check(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
    return MemoryInfo{total_b, free_b};
  }

  // Each op's workspace at its worst for passes of up to max_rows tokens: every linear shares one buffer (the
  // largest any weight needs), attention keeps one, and the chunked scan takes its chunk states from the pool.
  uint64_t plan_workspaces(const WorkspaceQuery& q) override {
    bind();
    size_t linear = 0;
    for (const Matrix* w : q.weights) linear = std::max(linear, cuda::linear_workspace_bound(q.max_rows, *w));
    linear_ws_.planned = linear;
    attention_ws_.planned = cuda::attention_workspace_bound(q.attention);
    return linear + attention_ws_.planned + cuda::ssm_scan_workspace_bound(q.scan, q.max_rows);
  }

  Matrix upload_matrix(const TensorView& t) override {
    bind();
    blocks_.emplace_back(t.nbytes, t.name.c_str());
    upload(blocks_.back().ptr, t.data, t.nbytes, "weight upload");
    Matrix m;
    m.data = blocks_.back().ptr;
    m.dtype = t.dtype;
    m.rows = t.shape.at(0);
    m.cols = t.numel() / m.rows;
    return m;
  }
  Vector upload_vector(const std::vector<float>& host) override {
    bind();
    blocks_.emplace_back(host.size() * sizeof(float), "a parameter vector");
    upload(blocks_.back().ptr, host.data(), host.size() * sizeof(float), "parameter upload");
    return Vector{static_cast<const float*>(blocks_.back().ptr), static_cast<int64_t>(host.size())};
  }

  void embed(const Matrix& table, const int32_t* host_ids, int64_t n, float* out) override {
    bind();
    if (n <= 0) return;
    in_a_pass([&] {
      // staged with the pass (the caller's ids may be gone when the pass runs)
      const auto* ids = static_cast<const int32_t*>(pass_->stage(host_ids, static_cast<size_t>(n) * sizeof(int32_t)));
      op(pass_->sig() << Op::Embed << table << ids << n << out, [=] { cuda::embed(table, ids, n, out, stream_); });
    });
  }
  void rms_norm(const float* x, int64_t rows, int64_t dim, const Vector& w, float eps, float* out) override {
    op(pass_->sig() << Op::RmsNorm << x << rows << dim << w << eps << out,
       [=] { cuda::rms_norm(x, rows, dim, w.data, eps, out, stream_); });
  }
  void linear(const float* x, int64_t rows, int64_t ldx, const Matrix& w, const Vector& bias, float* out,
              int64_t ldo) override {
    // The mma GEMM's scratch comes from a workspace owned here (as attention's), so decode steps captured as
    // CUDA graphs can use it too; every linear of a pass runs in order on one stream, so they share it.
    bind();
    const size_t ws_bytes = cuda::linear_workspace_bytes(rows, w);
    grow(linear_ws_, ws_bytes, "the GEMM workspace");
    void* ws = ws_bytes > 0 ? linear_ws_.ptr : nullptr;
    const size_t ws_cap = linear_ws_.bytes;
    op(pass_->sig() << Op::Linear << x << rows << ldx << w << bias << out << ldo << ws << ws_cap,
       [=] { cuda::linear(x, rows, ldx, w, bias.data, out, ldo, stream_, ws, ws_cap); });
  }
  void relu_squared(float* x, int64_t n) override {
    op(pass_->sig() << Op::ReluSquared << x << n, [=] { cuda::relu_squared(x, n, stream_); });
  }
  void add(float* h, const float* y, int64_t n) override {
    op(pass_->sig() << Op::Add << h << y << n, [=] { cuda::add(h, y, n, stream_); });
  }
  void gated_rms_norm(const GatedNormArgs& a, int64_t rows) override {
    op(pass_->sig() << Op::GatedRmsNorm << a << rows, [=] { cuda::gated_rms_norm(a, rows, stream_); });
  }

  void conv1d_silu(const ConvArgs& a, const std::vector<SeqSpan>& spans) override {
    in_a_pass([&] {
      const StagedSpans st = stage_spans(spans);
      op(pass_->sig() << Op::Conv << a << st.spans << st.count << st.max_n,
         [=] { cuda::conv1d_silu(a, st.spans, st.count, st.max_n, stream_); });
    });
  }
  void ssm_scan(const ScanArgs& a, const std::vector<SeqSpan>& spans) override {
    in_a_pass([&] {
      const StagedSpans st = stage_spans(spans);
      op(pass_->sig() << Op::Scan << a << st.spans << st.count << st.max_n,
         [=] { cuda::ssm_scan(a, st.spans, st.count, st.max_n, stream_); });
    });
  }
  void attention(const AttentionArgs& a, const std::vector<SeqSpan>& spans) override {
    for (const SeqSpan& sp : spans)
      if (sp.kv->dtype != a.kv_dtype) fail(ErrorCode::Internal, "attention: a span's KV cache type differs from the call's");
    in_a_pass([&] {
      const StagedSpans st = stage_spans(spans);
      // The split-KV partials go to a workspace owned here (no allocation inside a graph capture), sized
      // by the plan (plan_workspaces) at its first use.
      grow(attention_ws_, cuda::attention_workspace_bytes(a, st.count, st.max_n, st.max_keys),
           "the attention workspace");
      float* ws = static_cast<float*>(attention_ws_.ptr);
      const size_t ws_cap = attention_ws_.bytes;
      op(pass_->sig() << Op::Attention << a << st.spans << st.count << st.max_n << st.max_keys << ws << ws_cap,
         [=] { cuda::attention(a, st.spans, st.count, st.max_n, st.max_keys, stream_, ws, ws_cap); });
    });
  }

  void edit_logits(float* logits, int64_t vocab, const std::vector<LogitEdit>& edits) override {
    if (edits.empty()) return;
    outside_pass("edit_logits");
    for (const LogitEdit& e : edits)
      if (e.token < 0 || e.token >= vocab || e.row < 0)
        fail(ErrorCode::Internal, "edit_logits: token " + std::to_string(e.token) + " outside the vocabulary");
    const void* dev = edits_.put(edits.data(), edits.size() * sizeof(LogitEdit), stream_, "logit edits upload");
    cuda::edit_logits(logits, vocab, static_cast<const LogitEdit*>(dev), static_cast<int>(edits.size()), stream_);
  }

  // Two round trips: the heads (max, argmax, count) and id bitmasks first, then
  // only as many logits per row as the largest candidate set, in one 2-D copy.
  void candidates(float* logits, int64_t vocab, const std::vector<CandidateQuery>& queries,
                  std::vector<RowCandidates>& out) override {
    out.clear();
    out.resize(queries.size());
    if (queries.empty()) return;
    outside_pass("candidates");
    const size_t nq = queries.size();
    const int64_t words = cuda::candidate_mask_words(vocab);
    std::vector<cuda::DevCandidateQuery> dq(nq);
    int64_t first_row = queries[0].row, last_row = queries[0].row;
    bool any_collect = false;
    for (size_t i = 0; i < nq; ++i) {
      dq[i] = cuda::DevCandidateQuery{queries[i].row, queries[i].floor_offset, queries[i].collect ? 1 : 0, 0};
      first_row = std::min(first_row, queries[i].row);
      last_row = std::max(last_row, queries[i].row);
      any_collect = any_collect || queries[i].collect;
    }
    const void* dev_q = queries_.put(dq.data(), nq * sizeof(dq[0]), stream_, "candidate queries upload");
    auto* heads = static_cast<cuda::CandidateHead*>(scratch(heads_, nq * sizeof(cuda::CandidateHead)));
    auto* masks = static_cast<uint32_t*>(scratch(masks_, nq * static_cast<size_t>(words) * sizeof(uint32_t)));
    cuda::candidates(logits, vocab, static_cast<const cuda::DevCandidateQuery*>(dev_q), static_cast<int>(nq), heads,
                     masks, stream_);

    auto* host_heads = static_cast<cuda::CandidateHead*>(heads_host_.get(nq * sizeof(cuda::CandidateHead)));
    auto* host_masks = static_cast<uint32_t*>(masks_host_.get(nq * static_cast<size_t>(words) * sizeof(uint32_t)));
    cuda::check(cudaMemcpyAsync(host_heads, heads, nq * sizeof(cuda::CandidateHead), cudaMemcpyDeviceToHost, stream_),
                "candidate heads copy");
    if (any_collect)  // (an all-greedy step needs only the heads: 16 bytes a row)
      cuda::check(cudaMemcpyAsync(host_masks, masks, nq * static_cast<size_t>(words) * sizeof(uint32_t),
                                  cudaMemcpyDeviceToHost, stream_),
                  "candidate masks copy");
    cuda::check(cudaStreamSynchronize(stream_), "sampling");

    int64_t widest = 0;
    for (size_t i = 0; i < nq; ++i) widest = std::max<int64_t>(widest, host_heads[i].count);
    const float* host_vals = nullptr;
    if (widest > 0) {
      // rows first_row..last_row, the first `widest` floats of each
      const size_t height = static_cast<size_t>(last_row - first_row + 1);
      auto* vals = static_cast<float*>(values_host_.get(height * static_cast<size_t>(widest) * sizeof(float)));
      cuda::check(cudaMemcpy2DAsync(vals, widest * sizeof(float), logits + first_row * vocab, vocab * sizeof(float),
                                    widest * sizeof(float), height, cudaMemcpyDeviceToHost, stream_),
                  "candidate logits copy");
      cuda::check(cudaStreamSynchronize(stream_), "sampling");
      host_vals = vals;
    }
    for (size_t i = 0; i < nq; ++i) {
      const cuda::CandidateHead& h = host_heads[i];
      RowCandidates& r = out[i];
      r.max = h.max;
      r.argmax = h.argmax;
      if (h.count == 0) continue;
      r.ids.reserve(static_cast<size_t>(h.count));
      const uint32_t* mask = host_masks + i * static_cast<size_t>(words);
      for (int64_t w = 0; w < words; ++w)
        for (uint32_t bits = mask[w]; bits != 0; bits &= bits - 1)
          r.ids.push_back(static_cast<int32_t>(w * 32 + __builtin_ctz(bits)));
      if (static_cast<int64_t>(r.ids.size()) != h.count)
        fail(ErrorCode::Internal, "candidates: the id mask and the count disagree");
      const float* v = host_vals + (queries[i].row - first_row) * widest;
      r.logits.assign(v, v + h.count);
    }
  }

 private:
  struct Scratch {
    void* ptr = nullptr;
    size_t bytes = 0;
    size_t planned = 0;  // plan_workspaces: what any pass of the model's shapes can need
  };
  // Makes `sc` hold at least `bytes`: the first use allocates the planned size at once; a call past the plan
  // (a shape outside it, e.g. another NEMOTRON_GEMM) gets a larger one, the old one kept until the pass that
  // recorded it has run (pass_->retire).
  void grow(Scratch& sc, size_t bytes, const char* what) {
    if (bytes <= sc.bytes) return;
    bytes = std::max(bytes, sc.planned);
    if (sc.ptr) pass_->retire(sc.ptr);
    sc.ptr = nullptr;
    sc.bytes = 0;
    sc.ptr = device_alloc(bytes, what);
    sc.bytes = bytes;
  }

  // Work arrives on whichever libuv worker thread runs it, whose current device is 0 unless set: every entry
  // that starts work (a forward pass starts with embed; clone/reset/save/load use zero/copy/to_host/from_host)
  // makes this backend's device current first. Cheap when it already is.
  void bind() { cuda::check(cudaSetDevice(device_), "cudaSetDevice"); }

  // Host -> device copy that is complete, and ordered before every later launch on
  // stream_, when it returns. A plain cudaMemcpy would run on the legacy default
  // stream, which stream_ (non-blocking) does not wait for, and from pageable
  // memory it may return before its DMA has landed: the first kernels could then
  // read a weight that is still being written.
  void upload(void* dst, const void* src, size_t bytes, const char* what) {
    if (bytes == 0) return;
    cuda::check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_), what);
    cuda::check(cudaStreamSynchronize(stream_), what);
  }

  // A grow-only device scratch area. Growing waits for the stream first: earlier
  // launches may still read the old area.
  void* scratch(Scratch& s, size_t bytes) {
    if (bytes > s.bytes) {
      cuda::check(cudaStreamSynchronize(stream_), "stream");
      if (s.ptr) cudaFree(s.ptr);
      s.ptr = nullptr;  // if the allocation below throws, nothing points at freed memory
      s.bytes = 0;
      s.ptr = device_alloc(std::max<size_t>(bytes, 4096), "scratch");
      s.bytes = std::max<size_t>(bytes, 4096);
    }
    return s.ptr;
  }

  // What an op's launch depends on, first in its signature.
  enum class Op : uint8_t { Zero, Copy, Embed, RmsNorm, Linear, ReluSquared, Add, GatedRmsNorm, Conv, Scan, Attention };

  // Records the op into the running pass, or launches it now outside one.
  template <class F>
  void op(cuda::Signature&, F&& launch) {
    if (pass_->active())
      pass_->add(std::forward<F>(launch));
    else {
      pass_->sig().clear();  // (the signature of an op launched at once is not kept)
      launch();
    }
  }

  void outside_pass(const char* what) {
    if (pass_->active()) fail(ErrorCode::Internal, std::string("CUDA: ") + what + " inside a forward pass");
  }

  // Records an op with staged host data into the running pass; called outside one, the op runs as a pass of
  // its own (ended here, dropped if `record` throws).
  template <class F>
  void in_a_pass(F&& record) {
    if (pass_->active()) return record();
    PassScope own(*this, false);
    record();
    own.end();
  }

  // A span list staged with the pass. max_keys is rounded up to a multiple of
  // kKeyBucket (it only sets attention's split plan), so a decode step's launch
  // arguments, and with them its graph, stay the same for that many steps.
  static constexpr int64_t kKeyBucket = 256;
  struct StagedSpans {
    const cuda::DevSpan* spans;
    int count;
    int64_t max_n, max_keys;
  };
  StagedSpans stage_spans(const std::vector<SeqSpan>& spans) {
    staging_.resize(spans.size());
    StagedSpans st{nullptr, static_cast<int>(spans.size()), 0, 0};
    for (size_t i = 0; i < spans.size(); ++i) {
      const SeqSpan& sp = spans[i];
      cuda::DevSpan d{};
      d.row0 = sp.row0;
      d.n = sp.n;
      d.past = sp.past;
      if (sp.mamba) {
        d.conv = sp.mamba->conv;
        d.ssm = sp.mamba->ssm;
      }
      if (sp.kv) {
        d.k = sp.kv->k;
        d.v = sp.kv->v;
        d.kv_capacity = sp.kv->capacity;
      }
      st.max_n = std::max(st.max_n, sp.n);
      st.max_keys = std::max(st.max_keys, sp.past + sp.n);
      staging_[i] = d;
    }
    st.max_keys = (st.max_keys + kKeyBucket - 1) / kKeyBucket * kKeyBucket;
    if (!spans.empty())
      st.spans = static_cast<const cuda::DevSpan*>(pass_->stage(staging_.data(), spans.size() * sizeof(cuda::DevSpan)));
    return st;
  }

  int device_;
  cudaStream_t stream_ = nullptr;
  std::deque<DeviceBlock> blocks_;
  StagedUpload edits_, queries_;
  Scratch heads_, masks_;  // candidate search results on the device
  Scratch attention_ws_;   // split-KV partials
  Scratch linear_ws_;      // the mma GEMM's bf16 x and split-K partials
  PinnedArea heads_host_, masks_host_, values_host_;
  std::unique_ptr<cuda::PassRecorder> pass_;
  std::vector<cuda::DevSpan> staging_;  // host copy of one span list being staged
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(int device) { return std::make_unique<CudaBackend>(device); }

}  // namespace nemotron
