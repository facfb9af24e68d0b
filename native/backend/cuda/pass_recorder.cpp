#include "backend/cuda/pass_recorder.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "backend/cuda/cuda_ops.h"
#include "common/error.h"

namespace nemotron {
namespace cuda {
namespace {

// Graphs kept: a server's decode batches take a few sizes; each graph of the 9B
// holds ~450 nodes (a few hundred KB of driver memory).
constexpr size_t kMaxGraphs = 16;
constexpr size_t kStagingBlock = 64 << 10;

bool graphs_enabled_by_env() {
  const char* v = std::getenv("NEMOTRON_CUDA_GRAPHS");
  return !(v && std::strcmp(v, "0") == 0);
}

}  // namespace

// Every field goes in: a new field of these structs must be added here (the size
// checks stop the build until it is), or a graph could replay a stale value.
Signature& Signature::operator<<(const Matrix& m) {
  static_assert(sizeof(Matrix) == 32, "Matrix changed: update its signature");
  return *this << m.data << m.dtype << m.rows << m.cols;
}
Signature& Signature::operator<<(const Vector& v) {
  static_assert(sizeof(Vector) == 16, "Vector changed: update its signature");
  return *this << v.data << v.size;
}
Signature& Signature::operator<<(const ConvArgs& a) {
  static_assert(sizeof(ConvArgs) == 72, "ConvArgs changed: update its signature");
  return *this << a.channels << a.kernel << a.x << a.ldx << a.weight << a.bias << a.out;
}
Signature& Signature::operator<<(const ScanArgs& a) {
  static_assert(sizeof(ScanArgs) == 160, "ScanArgs changed: update its signature");
  return *this << a.heads << a.head_dim << a.groups << a.state << a.chunk << a.x << a.ldx << a.B << a.C << a.ldbc
               << a.dt << a.lddt << a.A << a.dt_bias << a.D << a.dt_min << a.dt_max << a.y;
}
Signature& Signature::operator<<(const GatedNormArgs& a) {
  static_assert(sizeof(GatedNormArgs) == 72, "GatedNormArgs changed: update its signature");
  return *this << a.y << a.z << a.ldz << a.dim << a.group_size << a.weight << a.eps << a.out;
}
Signature& Signature::operator<<(const AttentionArgs& a) {
  static_assert(sizeof(AttentionArgs) == 72, "AttentionArgs changed: update its signature");
  return *this << a.q_heads << a.kv_heads << a.head_dim << a.scale << a.q << a.k << a.v << a.out << a.kv_dtype;
}

PassRecorder::PassRecorder(cudaStream_t stream) : stream_(stream), graphs_on_(graphs_enabled_by_env()) {}

PassRecorder::~PassRecorder() {
  cudaStreamSynchronize(stream_);
  for (Graph& g : graphs_) cudaGraphExecDestroy(g.exec);
  for (Block& b : blocks_) {
    cudaFreeHost(b.host);
    cudaFree(b.device);
  }
  if (staged_) cudaEventDestroy(staged_);
  for (void* p : retired_) cudaFree(p);
}

void PassRecorder::begin(bool repeating) {
  if (active_) fail(ErrorCode::Internal, "CUDA: a forward pass started inside another");
  // The previous pass's upload reads the pinned staging area when it runs.
  if (staged_pending_) cuda::check(cudaEventSynchronize(staged_), "pass staging");
  staged_pending_ = false;
  for (Block& b : blocks_) b.used = 0;
  sig_.clear();
  ops_.clear();
  active_ = true;
  repeating_ = repeating;
}

void* PassRecorder::stage(const void* host, size_t bytes) {
  const size_t need = (bytes + 15) / 16 * 16;
  // Blocks are filled in order, so the same sequence of stagings lands at the same
  // addresses pass after pass (which is what lets a graph be replayed).
  for (Block& b : blocks_) {
    if (b.capacity - b.used < need) continue;
    std::memcpy(b.host + b.used, host, bytes);
    char* d = b.device + b.used;
    b.used += need;
    return d;
  }
  Block nb;
  nb.capacity = std::max(need, kStagingBlock);
  cuda::check(cudaMallocHost(reinterpret_cast<void**>(&nb.host), nb.capacity), "cudaMallocHost (pass staging)");
  if (cudaMalloc(reinterpret_cast<void**>(&nb.device), nb.capacity) != cudaSuccess) {
    cudaGetLastError();
    cudaFreeHost(nb.host);
    fail(ErrorCode::OutOfMemory, "GPU out of memory allocating " + bytes_text(nb.capacity) + " of pass staging");
  }
  if (!staged_) cuda::check(cudaEventCreateWithFlags(&staged_, cudaEventDisableTiming), "cudaEventCreate");
  std::memcpy(nb.host, host, bytes);
  nb.used = need;
  blocks_.push_back(nb);
  return nb.device;
}

void PassRecorder::end() {
  if (!active_) fail(ErrorCode::Internal, "CUDA: a forward pass ended that never started");
  active_ = false;
  for (const Block& b : blocks_)
    if (b.used) cuda::check(cudaMemcpyAsync(b.device, b.host, b.used, cudaMemcpyHostToDevice, stream_), "pass staging upload");
  if (staged_) {
    cuda::check(cudaEventRecord(staged_, stream_), "cudaEventRecord");
    staged_pending_ = true;
  }
  try {
    if (repeating_ && graphs_on_)
      run_as_graph();
    else
      run_eagerly();
  } catch (...) {
    ops_.clear();
    free_retired();
    throw;
  }
  ops_.clear();
  free_retired();
}

void PassRecorder::cancel() {
  active_ = false;
  ops_.clear();
  free_retired();
}

void PassRecorder::run_eagerly() {
  for (const auto& op : ops_) op();
}

void PassRecorder::run_as_graph() {
  const std::string& sig = sig_.bytes();
  const size_t hash = std::hash<std::string>()(sig);
  auto it = std::find_if(graphs_.begin(), graphs_.end(),
                         [&](const Graph& g) { return g.hash == hash && g.signature == sig; });
  if (it == graphs_.end()) {
    // Capturing costs about what a few eager steps do: only for a shape seen twice in a row.
    if (sig != last_signature_) {
      last_signature_ = sig;
      run_eagerly();
      return;
    }
    cudaGraphExec_t exec = capture();
    if (!exec) {
      run_eagerly();
      return;
    }
    graphs_.push_front(Graph{hash, sig, exec});
    if (graphs_.size() > kMaxGraphs) {
      cuda::check(cudaStreamSynchronize(stream_), "stream");  // (an evicted graph may still be running)
      cudaGraphExecDestroy(graphs_.back().exec);
      graphs_.pop_back();
    }
    it = graphs_.begin();
  } else if (it != graphs_.begin()) {
    graphs_.splice(graphs_.begin(), graphs_, it);
    it = graphs_.begin();
  }
  cuda::check(cudaGraphLaunch(it->exec, stream_), "CUDA graph launch");
  ++graph_launches_;
}

// Records the ops into a graph and instantiates it; null (graphs now off) when
// the driver refuses, after saying why once.
cudaGraphExec_t PassRecorder::capture() {
  auto give_up = [&](const char* step, cudaError_t err) -> cudaGraphExec_t {
    cudaGetLastError();
    graphs_on_ = false;
    std::fprintf(stderr, "nemotron: CUDA graphs off (%s: %s); decode steps launch kernel by kernel\n", step,
                 cudaGetErrorString(err));
    return nullptr;
  };
  cudaError_t err = cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal);
  if (err != cudaSuccess) return give_up("cudaStreamBeginCapture", err);
  cudaGraph_t graph = nullptr;
  try {
    for (const auto& op : ops_) op();
  } catch (const std::exception& e) {
    // An op the capture refused (or a launch that failed): nothing ran. Eagerly, a
    // real launch error shows again, with its own message.
    const cudaError_t end = cudaStreamEndCapture(stream_, &graph);
    if (graph) cudaGraphDestroy(graph);
    std::fprintf(stderr, "nemotron: capturing a decode step failed: %s\n", e.what());
    return give_up("capture", end == cudaSuccess ? cudaErrorStreamCaptureUnsupported : end);
  }
  err = cudaStreamEndCapture(stream_, &graph);
  if (err != cudaSuccess) return give_up("cudaStreamEndCapture", err);
  cudaGraphExec_t exec = nullptr;
  err = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  if (err != cudaSuccess) return give_up("cudaGraphInstantiate", err);
  return exec;
}

void PassRecorder::free_retired() {
  for (void* p : retired_) cudaFree(p);  // (cudaFree waits for the device: the pass that used them is done)
  retired_.clear();
}

}  // namespace cuda
}  // namespace nemotron
