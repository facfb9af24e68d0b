// CudaBackend: device memory, weights uploaded once, every op launched on one
// stream. Host-side span lists are flattened into DevSpans and copied to the
// device per call (a few dozen bytes per sequence).
#include "backend/cuda/cuda_backend.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <vector>

#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/workspace_pool.h"
#include "common/error.h"
#include "model/safetensors.h"

// Pinned staging slots for span lists, used round robin. A forward pass of the 9B
// uploads ~58 lists (2 per Mamba layer, 1 per attention layer), and a slot's
// event makes its reuse wait for the kernel that reads it. The emulator build
// sets 3, so slots come round within one pass and that wait is what keeps the
// results right (native/tests/cuda_emu/mutants.py removes it).
#ifndef NEMOTRON_CUDA_SPAN_SLOTS
#define NEMOTRON_CUDA_SPAN_SLOTS 64
#endif

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
  }
  ~CudaBackend() override {
    cudaStreamSynchronize(stream_);
    for (SpanSlot& s : span_ring_) {
      if (s.host) cudaFreeHost(s.host);
      if (s.device) cudaFree(s.device);
      if (s.done) cudaEventDestroy(s.done);
    }
    for (Scratch* sc : {&heads_, &masks_})
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
    cuda::check(cudaMemsetAsync(dst, 0, count * sizeof(float), stream_), "cudaMemsetAsync");
  }
  void copy(float* dst, const float* src, size_t count) override {
    bind();
    cuda::check(cudaMemcpyAsync(dst, src, count * sizeof(float), cudaMemcpyDeviceToDevice, stream_), "copy");
  }
  void to_host(const float* src, size_t count, float* host_dst) override {
    bind();
    cuda::check(cudaMemcpyAsync(host_dst, src, count * sizeof(float), cudaMemcpyDeviceToHost, stream_), "to_host");
    cuda::check(cudaStreamSynchronize(stream_), "forward pass");
  }
  void from_host(const float* host_src, size_t count, float* dst) override {
    bind();
    upload(dst, host_src, count * sizeof(float), "from_host");
  }

  MemoryInfo memory() const override {
    cuda::check(cudaSetDevice(device_), "cudaSetDevice");
    size_t free_b = 0, total_b = 0;
    cuda::check(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
    return MemoryInfo{total_b, free_b};
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
    // host_ids is the caller's pageable vector, which may be gone before the copy
    // runs (a forward that wants no logits returns without synchronising).
    const void* ids = ids_.put(host_ids, static_cast<size_t>(n) * sizeof(int32_t), stream_, "ids upload");
    cuda::embed(table, static_cast<const int32_t*>(ids), n, out, stream_);
  }
  void rms_norm(const float* x, int64_t rows, int64_t dim, const Vector& w, float eps, float* out) override {
    cuda::rms_norm(x, rows, dim, w.data, eps, out, stream_);
  }
  void linear(const float* x, int64_t rows, int64_t ldx, const Matrix& w, const Vector& bias, float* out,
              int64_t ldo) override {
    cuda::linear(x, rows, ldx, w, bias.data, out, ldo, stream_);
  }
  void relu_squared(float* x, int64_t n) override { cuda::relu_squared(x, n, stream_); }
  void add(float* h, const float* y, int64_t n) override { cuda::add(h, y, n, stream_); }
  void gated_rms_norm(const GatedNormArgs& a, int64_t rows) override { cuda::gated_rms_norm(a, rows, stream_); }

  void conv1d_silu(const ConvArgs& a, const std::vector<SeqSpan>& spans) override {
    SpanUpload u = upload_spans(spans);
    SlotRelease guard(*this, u);
    cuda::conv1d_silu(a, u.spans, static_cast<int>(spans.size()), u.max_n, stream_);
  }
  void ssm_scan(const ScanArgs& a, const std::vector<SeqSpan>& spans) override {
    SpanUpload u = upload_spans(spans);
    SlotRelease guard(*this, u);
    cuda::ssm_scan(a, u.spans, static_cast<int>(spans.size()), u.max_n, stream_);
  }
  void attention(const AttentionArgs& a, const std::vector<SeqSpan>& spans) override {
    SpanUpload u = upload_spans(spans);
    SlotRelease guard(*this, u);
    cuda::attention(a, u.spans, static_cast<int>(spans.size()), u.max_n, u.max_keys, stream_);
  }

  void edit_logits(float* logits, int64_t vocab, const std::vector<LogitEdit>& edits) override {
    if (edits.empty()) return;
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
  };

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

  // Span lists travel through a ring of pinned staging slots so the copy is truly
  // asynchronous. Each slot is guarded by an event recorded after the kernel that
  // reads it; a slot is reused only once that event has completed.
  struct SpanSlot {
    cuda::DevSpan* host = nullptr;  // pinned
    void* device = nullptr;
    size_t capacity = 0;            // in spans
    cudaEvent_t done = nullptr;
    bool pending = false;
  };
  struct SpanUpload {
    const cuda::DevSpan* spans;
    int64_t max_n, max_keys;
    SpanSlot* slot;
  };

  SpanUpload upload_spans(const std::vector<SeqSpan>& spans) {
    SpanSlot& slot = span_ring_[span_next_++ % span_ring_.size()];
    if (slot.pending) cuda::check(cudaEventSynchronize(slot.done), "span slot");
    slot.pending = false;
    if (spans.size() > slot.capacity) {
      // Grown in an order that leaves the slot empty, never half-freed, if an allocation throws.
      if (slot.host) cudaFreeHost(slot.host);
      if (slot.device) cudaFree(slot.device);
      slot.host = nullptr;
      slot.device = nullptr;
      slot.capacity = 0;
      const size_t capacity = std::max<size_t>(spans.size(), 16);
      if (!slot.done) cuda::check(cudaEventCreateWithFlags(&slot.done, cudaEventDisableTiming), "cudaEventCreate");
      cuda::check(cudaMallocHost(reinterpret_cast<void**>(&slot.host), capacity * sizeof(cuda::DevSpan)),
                  "cudaMallocHost");
      slot.device = device_alloc(capacity * sizeof(cuda::DevSpan), "span list");
      slot.capacity = capacity;
    }
    SpanUpload u{static_cast<const cuda::DevSpan*>(slot.device), 0, 0, &slot};
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
      u.max_n = std::max(u.max_n, sp.n);
      u.max_keys = std::max(u.max_keys, sp.past + sp.n);
      slot.host[i] = d;
    }
    cuda::check(cudaMemcpyAsync(slot.device, slot.host, spans.size() * sizeof(cuda::DevSpan), cudaMemcpyHostToDevice,
                                stream_),
                "span upload");
    return u;
  }

  // Records, after the launch that reads a slot (or after the launch failed to be queued), the event that
  // guards the slot's reuse: the span copy itself is already queued either way.
  class SlotRelease {
   public:
    SlotRelease(CudaBackend& b, const SpanUpload& u) : b_(b), slot_(u.slot) {}
    SlotRelease(const SlotRelease&) = delete;
    SlotRelease& operator=(const SlotRelease&) = delete;
    ~SlotRelease() {
      if (slot_->done && cudaEventRecord(slot_->done, b_.stream_) == cudaSuccess) slot_->pending = true;
    }

   private:
    CudaBackend& b_;
    SpanSlot* slot_;
  };

  int device_;
  cudaStream_t stream_ = nullptr;
  std::deque<DeviceBlock> blocks_;
  StagedUpload ids_, edits_, queries_;
  Scratch heads_, masks_;  // candidate search results on the device
  PinnedArea heads_host_, masks_host_, values_host_;
  std::vector<SpanSlot> span_ring_ = std::vector<SpanSlot>(NEMOTRON_CUDA_SPAN_SLOTS);
  size_t span_next_ = 0;
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(int device) { return std::make_unique<CudaBackend>(device); }

}  // namespace nemotron
