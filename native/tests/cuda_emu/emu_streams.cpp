// Streams, events and copies for the emulator: work is queued per stream and
// runs, in order, only when the host waits for it. That is the latest moment a
// GPU may run it, so host code that reads a result (or reuses a staging buffer,
// or frees a source) without waiting for the stream sees what a GPU would show
// on an unlucky day: stale or overwritten data. Ordering follows CUDA's rules:
//   - the legacy default stream (0) waits for all earlier work of blocking
//     streams, and their later work waits for it; non-blocking streams
//     (cudaStreamNonBlocking) are ordered with neither;
//   - synchronous cudaMemcpy/cudaMemset run on the legacy stream (cudaMemcpy
//     returns when done; cudaMemset to device memory may not);
//   - cudaMemcpyAsync to pageable host memory returns when done; to pinned
//     memory (cudaMallocHost) it is queued; host sources are read when the copy
//     runs, pinned or not (the strict reading of "might");
//   - cudaFree and cudaFreeHost wait for the whole device first, cudaFreeAsync
//     frees in stream order;
//   - an event completes when its stream has run everything queued before it;
//   - work queued on a capturing stream goes into the capture (a graph), not the
//     queue; synchronising or allocating calls during a capture fail with
//     cudaErrorStreamCaptureUnsupported and invalidate it (as on a GPU in the
//     thread-local mode); a launched graph queues its recorded work again.
#include <chrono>
#include <deque>
#include <map>
#include <vector>

#include "emu_runtime.h"

using QueuedOp = std::pair<int, std::function<void()>>;  // (device current at enqueue, op)

struct CUstream_st {
  bool blocking = true;
  std::deque<QueuedOp> queue;
  uint64_t queued = 0, done = 0;
  bool capturing = false, invalidated = false;
  std::vector<QueuedOp> captured;
};
struct CUgraph_st {
  std::vector<QueuedOp> ops;
};
struct CUgraphExec_st {
  std::vector<QueuedOp> ops;
};
struct CUevent_st {
  CUstream_st* stream = nullptr;
  uint64_t at = 0;  // complete once stream->done reaches it
  // Host time when the stream reached the record (a cell of its own: the event may be
  // destroyed before its record runs).
  std::shared_ptr<std::chrono::steady_clock::time_point> stamp;
};

namespace emu {
namespace {

struct Streams {
  CUstream_st legacy;
  std::vector<CUstream_st*> live;     // created streams, in creation order
  std::map<const char*, size_t> pinned;  // cudaMallocHost allocations
  int capturing = 0;                      // streams in capture
  uint64_t graph_launches = 0;
  bool refuse_captures = false;
};
Streams& S() {
  static Streams* s = new Streams;  // never destroyed, like the emulator's state
  return *s;
}

CUstream_st* resolve(cudaStream_t s) { return s ? s : &S().legacy; }

// Runs the oldest queued op of `s`, on the device it was queued for.
void run_one(CUstream_st* s) {
  auto op = std::move(s->queue.front());
  s->queue.pop_front();
  int prev = 0;
  cudaGetDevice(&prev);
  cudaSetDevice(op.first);
  op.second();
  cudaSetDevice(prev);
  ++s->done;
}
void drain(CUstream_st* s) {
  while (!s->queue.empty()) run_one(s);
}
void drain_blocking() {
  for (CUstream_st* s : S().live)
    if (s->blocking) drain(s);
}
void drain_device() {
  drain(&S().legacy);
  for (CUstream_st* s : S().live) drain(s);
}

bool host_is_pinned(const void* p) { return is_pinned_range(p, 1); }

// Device-side ranges of a copy or memset must lie inside one device allocation.
bool check_range(const void* p, size_t bytes, bool device, const char* what) {
  if (bytes == 0 || !device || is_device_range(p, bytes)) return true;
  char why[160];
  std::snprintf(why, sizeof why, "%s: [%p, +%zu) is not inside a device allocation", what, p, bytes);
  set_error(cudaErrorInvalidValue, why);
  return false;
}

// Which sides of a copy are device memory (cudaMemcpyDefault: whichever pointer is).
void sides(cudaMemcpyKind kind, const void* dst, const void* src, bool& dst_dev, bool& src_dev) {
  if (kind == cudaMemcpyDefault) {
    dst_dev = is_device_range(dst, 1);
    src_dev = is_device_range(src, 1);
    return;
  }
  dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
}

// Queues a (possibly strided) copy; runs it before returning where CUDA's copy is synchronous.
cudaError_t copy_2d(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t height,
                    cudaMemcpyKind kind, cudaStream_t stream, bool synchronous, const char* what) {
  bool dst_dev = false, src_dev = false;
  sides(kind, dst, src, dst_dev, src_dev);
  if (height > 1 && (dpitch < width || spitch < width)) return set_error(cudaErrorInvalidValue, "copy pitch below width");
  const size_t dspan = height ? dpitch * (height - 1) + width : 0, sspan = height ? spitch * (height - 1) + width : 0;
  if (!check_range(dst, dspan, dst_dev, what) || !check_range(src, sspan, src_dev, what)) return cudaErrorInvalidValue;
  if (!width || !height) return cudaSuccess;
  if (resolve(stream)->capturing && ((!dst_dev && !host_is_pinned(dst)) || (!src_dev && !host_is_pinned(src))))
    return refused_during_capture("a copy to or from pageable host memory") ? cudaErrorStreamCaptureUnsupported
                                                                           : cudaSuccess;
  if (synchronous && refused_during_capture(what)) return cudaErrorStreamCaptureUnsupported;
  enqueue(stream, [=] {
    for (size_t r = 0; r < height; ++r)
      std::memmove(static_cast<char*>(dst) + r * dpitch, static_cast<const char*>(src) + r * spitch, width);
  });
  // Into pageable host memory a copy returns only once it is done.
  if (synchronous || (!dst_dev && src_dev && !host_is_pinned(dst))) drain(resolve(stream));
  return cudaSuccess;
}

}  // namespace

void enqueue(cudaStream_t stream, std::function<void()> op) {
  CUstream_st* s = resolve(stream);
  int device = 0;
  cudaGetDevice(&device);
  if (s->capturing) {
    s->captured.emplace_back(device, std::move(op));
    return;
  }
  if (s == &S().legacy)
    drain_blocking();  // the legacy stream waits for the blocking streams' earlier work
  else if (s->blocking)
    drain(&S().legacy);  // and they wait for its earlier work
  s->queue.emplace_back(device, std::move(op));
  ++s->queued;
}

bool refused_during_capture(const char* call) {
  if (S().capturing == 0) return false;
  for (CUstream_st* s : S().live)
    if (s->capturing) s->invalidated = true;
  set_error(cudaErrorStreamCaptureUnsupported, std::string(call) + " during a stream capture");
  return true;
}

uint64_t graph_launch_count() { return S().graph_launches; }
void refuse_captures(bool refuse) { S().refuse_captures = refuse; }

bool is_pinned_range(const void* p, size_t bytes) {
  const char* c = static_cast<const char*>(p);
  auto it = S().pinned.upper_bound(c);
  if (it == S().pinned.begin()) return false;
  --it;
  return c >= it->first && c + bytes <= it->first + it->second;
}

}  // namespace emu

// ---------------------------------------------------------------- runtime API

using emu::S;

cudaError_t cudaDeviceSynchronize() {
  if (emu::refused_during_capture("cudaDeviceSynchronize")) return cudaErrorStreamCaptureUnsupported;
  emu::drain_device();
  return cudaSuccess;
}

cudaError_t cudaFree(void* p) {
  if (!p) return cudaSuccess;
  if (emu::refused_during_capture("cudaFree")) return cudaErrorStreamCaptureUnsupported;
  emu::drain_device();  // cudaFree waits for the device: no queued kernel may still use p
  emu::device_free(p);
  return cudaSuccess;
}
cudaError_t cudaMallocHost(void** p, size_t bytes) {
  if (emu::refused_during_capture("cudaMallocHost")) return cudaErrorStreamCaptureUnsupported;
  *p = std::malloc(bytes ? bytes : 1);
  if (!*p) return emu::set_error(cudaErrorMemoryAllocation, "cudaMallocHost");
  S().pinned[static_cast<const char*>(*p)] = bytes ? bytes : 1;
  return cudaSuccess;
}
cudaError_t cudaFreeHost(void* p) {
  if (!p) return cudaSuccess;
  if (emu::refused_during_capture("cudaFreeHost")) return cudaErrorStreamCaptureUnsupported;
  emu::drain_device();
  auto it = S().pinned.find(static_cast<const char*>(p));
  if (it == S().pinned.end()) emu::fatal("cudaFreeHost of %p, which cudaMallocHost did not return", p);
  S().pinned.erase(it);
  std::free(p);
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  return emu::copy_2d(dst, bytes, src, bytes, bytes, 1, kind, nullptr, true, "cudaMemcpy");
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s) {
  return emu::copy_2d(dst, bytes, src, bytes, bytes, 1, kind, s, false, "cudaMemcpyAsync");
}
cudaError_t cudaMemcpy2DAsync(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t height,
                              cudaMemcpyKind kind, cudaStream_t s) {
  return emu::copy_2d(dst, dpitch, src, spitch, width, height, kind, s, false, "cudaMemcpy2DAsync");
}
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t s) {
  if (!emu::check_range(p, bytes, true, "cudaMemset")) return cudaErrorInvalidValue;
  if (!s && emu::refused_during_capture("cudaMemset on the legacy stream")) return cudaErrorStreamCaptureUnsupported;
  if (bytes) emu::enqueue(s, [=] { std::memset(p, value, bytes); });
  return cudaSuccess;
}
cudaError_t cudaMemset(void* p, int value, size_t bytes) { return cudaMemsetAsync(p, value, bytes, nullptr); }

cudaError_t cudaMemPoolCreate(cudaMemPool_t* pool, const cudaMemPoolProps*) {
  static int dummy;
  *pool = reinterpret_cast<cudaMemPool_t>(&dummy);
  return cudaSuccess;
}
cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t, cudaMemPoolAttr, void*) { return cudaSuccess; }
cudaError_t cudaMemPoolTrimTo(cudaMemPool_t, size_t) { return cudaSuccess; }  // freed pool memory is unmapped at once
cudaError_t cudaMallocFromPoolAsync(void** p, size_t bytes, cudaMemPool_t, cudaStream_t) {
  // (a GPU records an allocation node; the emulator does not model graph-owned memory)
  if (emu::refused_during_capture("cudaMallocFromPoolAsync")) return cudaErrorStreamCaptureUnsupported;
  return cudaMalloc(p, bytes);  // poisoned, like every fresh emulated allocation
}
cudaError_t cudaFreeAsync(void* p, cudaStream_t s) {
  if (p) emu::enqueue(s, [p] { emu::device_free(p); });
  return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags) {
  *s = new CUstream_st;
  (*s)->blocking = !(flags & cudaStreamNonBlocking);
  S().live.push_back(*s);
  return cudaSuccess;
}
cudaError_t cudaStreamCreate(cudaStream_t* s) { return cudaStreamCreateWithFlags(s, cudaStreamDefault); }
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  if (!s) return emu::set_error(cudaErrorInvalidValue, "cudaStreamDestroy of the legacy stream");
  emu::drain(s);  // its work still completes
  auto& live = S().live;
  for (size_t i = 0; i < live.size(); ++i)
    if (live[i] == s) live.erase(live.begin() + static_cast<std::ptrdiff_t>(i));
  delete s;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  if (emu::refused_during_capture("cudaStreamSynchronize")) return cudaErrorStreamCaptureUnsupported;
  emu::drain(emu::resolve(s));
  return cudaSuccess;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned) {
  *e = new CUevent_st;
  return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t* e) { return cudaEventCreateWithFlags(e, cudaEventDefault); }
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
  if (!e) return emu::set_error(cudaErrorInvalidValue, "cudaEventRecord of a null event");
  CUstream_st* st = emu::resolve(s);
  // (a GPU records an event node; the emulator does not model them)
  if (st->capturing && emu::refused_during_capture("cudaEventRecord")) return cudaErrorStreamCaptureUnsupported;
  auto stamp = std::make_shared<std::chrono::steady_clock::time_point>();
  emu::enqueue(s, [stamp] { *stamp = std::chrono::steady_clock::now(); });
  e->stream = st;
  e->at = st->queued;
  e->stamp = stamp;
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  if (!e) return emu::set_error(cudaErrorInvalidValue, "cudaEventSynchronize of a null event");
  if (emu::refused_during_capture("cudaEventSynchronize")) return cudaErrorStreamCaptureUnsupported;
  if (e->stream)  // (a never-recorded event is complete)
    while (e->stream->done < e->at) emu::run_one(e->stream);
  return cudaSuccess;
}
// The host time between the two records running: emulator time, so it only
// keeps timing loops honest (it says nothing about a GPU's speed).
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b) {
  if (!a || !b || !a->stamp || !b->stamp) return emu::set_error(cudaErrorInvalidValue, "cudaEventElapsedTime: event never recorded");
  if (a->stream->done < a->at || b->stream->done < b->at) return cudaErrorNotReady;
  *ms = std::chrono::duration<float, std::milli>(*b->stamp - *a->stamp).count();
  return cudaSuccess;
}

cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode) {
  if (!s) return emu::set_error(cudaErrorStreamCaptureUnsupported, "capturing the legacy stream");
  if (s->capturing) return emu::set_error(cudaErrorInvalidValue, "cudaStreamBeginCapture: already capturing");
  if (S().refuse_captures) return emu::set_error(cudaErrorStreamCaptureUnsupported, "captures refused (emu::refuse_captures)");
  s->capturing = true;
  s->invalidated = false;
  s->captured.clear();
  ++S().capturing;
  return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t* graph) {
  *graph = nullptr;
  if (!s || !s->capturing) return emu::set_error(cudaErrorInvalidValue, "cudaStreamEndCapture: not capturing");
  s->capturing = false;
  --S().capturing;
  std::vector<QueuedOp> ops = std::move(s->captured);
  s->captured.clear();
  if (s->invalidated) return emu::set_error(cudaErrorStreamCaptureInvalidated, "cudaStreamEndCapture");
  *graph = new CUgraph_st{std::move(ops)};
  return cudaSuccess;
}
cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus* status) {
  const CUstream_st* st = emu::resolve(s);
  *status = !st->capturing ? cudaStreamCaptureStatusNone
            : st->invalidated ? cudaStreamCaptureStatusInvalidated : cudaStreamCaptureStatusActive;
  return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long) {
  if (!graph) return emu::set_error(cudaErrorInvalidValue, "cudaGraphInstantiate of a null graph");
  *exec = new CUgraphExec_st{graph->ops};
  return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s) {
  if (!exec) return emu::set_error(cudaErrorInvalidValue, "cudaGraphLaunch of a null graph");
  if (emu::resolve(s)->capturing) return emu::set_error(cudaErrorStreamCaptureUnsupported, "graph launch into a capture");
  int prev = 0;
  cudaGetDevice(&prev);
  for (const QueuedOp& op : exec->ops) {
    cudaSetDevice(op.first);
    emu::enqueue(s, op.second);
  }
  cudaSetDevice(prev);
  ++S().graph_launches;
  return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  delete exec;
  return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  delete graph;
  return cudaSuccess;
}
