// The CUDA device model the emulated kernels compile against (through the
// shim/ headers that stand in for <cuda_runtime.h>, <mma.h>, <cuda_bf16.h> and
// <cuda_fp16.h>), so the real native/backend/cuda/*.cu sources, rewritten by
// cu_to_cpp.py, build with a plain C++ compiler and run on the CPU.
//
// What is modelled (see README.md for what is not):
//   - A launch runs its blocks one after another (order set by the schedule),
//     each block's threads as fibers that switch only at __syncthreads, warp
//     collectives (__shfl_*_sync, __ballot_sync, __syncwarp) and thread exit.
//     The schedule (NEMOTRON_EMU_SCHED=rr|low|high|random, NEMOTRON_EMU_SEED)
//     decides which runnable thread goes next, so code that reads what another
//     thread writes without a barrier in between sees a different result (or
//     NaN poison) under another schedule.
//   - Faults, reported with the kernel, block and thread and then fatal: a
//     barrier or warp collective that some threads never reach (deadlock),
//     __syncthreads reached from different source lines, warp collectives with
//     exited lanes or partial masks, WMMA calls not made by the whole warp,
//     misaligned vector or WMMA accesses, blockDim over __launch_bounds__,
//     accesses past a device buffer (guard pages and canaries) or past the
//     dynamic shared memory, writes past a static __shared__ array (poisoned
//     gaps), static shared memory over 48 KB.
//   - Launch errors, returned by cudaGetLastError as on a GPU: bad grid or
//     block shapes, dynamic shared memory over 48 KB without the
//     cudaFuncSetAttribute opt-in for that kernel on that device, or over the
//     device's limit.
//   - Fresh device memory, pool workspaces and shared memory are filled with
//     0xff bytes (NaN as fp32), so anything read before it is written shows.
//   - Several devices with their own SM count, compute capability, shared
//     memory limit and memory size (emu::configure_device), for the code paths
//     that depend on them and for out-of-memory errors.
//   - Streams whose work runs only when the host waits for it (emu_streams.cpp),
//     so a missing wait shows as stale or overwritten data.
#pragma once
#include <math.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

// ---------------------------------------------------------------- qualifiers

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
// cu_to_cpp.py puts EMU_KERNEL_ENTRY(<launch bounds>) first in every __global__ body.
#define EMU_KERNEL_ENTRY(...) ::emu::kernel_entry(__PRETTY_FUNCTION__, ##__VA_ARGS__)

// ---------------------------------------------------------------- vector types

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};
struct uint3 {
  unsigned x, y, z;
};
struct alignas(8) float2 {
  float x, y;
};
struct alignas(16) float4 {
  float x, y, z, w;
};
struct alignas(8) int2 {
  int x, y;
};
struct alignas(16) int4 {
  int x, y, z, w;
};
struct alignas(8) uint2 {
  unsigned x, y;
};
struct alignas(16) uint4 {
  unsigned x, y, z, w;
};
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline int2 make_int2(int x, int y) { return {x, y}; }
inline int4 make_int4(int x, int y, int z, int w) { return {x, y, z, w}; }
inline uint2 make_uint2(unsigned x, unsigned y) { return {x, y}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }

// The running thread's coordinates (set by the scheduler at every switch).
extern uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;
constexpr int warpSize = 32;

// ---------------------------------------------------------------- runtime API types

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInsufficientDriver = 35,
  cudaErrorNoDevice = 100,
  cudaErrorNotReady = 600,
  cudaErrorInvalidDevice = 101,
  cudaErrorLaunchOutOfResources = 701,
  cudaErrorStreamCaptureUnsupported = 900,
  cudaErrorStreamCaptureInvalidated = 901,
  cudaErrorStreamCaptureWrongThread = 908,
};
typedef cudaError_t cudaError;
typedef struct CUstream_st* cudaStream_t;
typedef struct CUevent_st* cudaEvent_t;
typedef struct CUmemPoolHandle_st* cudaMemPool_t;
typedef struct CUgraph_st* cudaGraph_t;
typedef struct CUgraphExec_st* cudaGraphExec_t;
enum cudaStreamCaptureMode {
  cudaStreamCaptureModeGlobal = 0,
  cudaStreamCaptureModeThreadLocal = 1,
  cudaStreamCaptureModeRelaxed = 2
};
enum cudaStreamCaptureStatus {
  cudaStreamCaptureStatusNone = 0,
  cudaStreamCaptureStatusActive = 1,
  cudaStreamCaptureStatusInvalidated = 2
};
enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4
};
enum cudaDeviceAttr {
  cudaDevAttrMaxThreadsPerBlock = 1,
  cudaDevAttrMaxSharedMemoryPerBlock = 8,
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrClockRate = 13,
  cudaDevAttrMemoryClockRate = 36,
  cudaDevAttrL2CacheSize = 38,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
};
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };
enum cudaMemAllocationType { cudaMemAllocationTypeInvalid = 0, cudaMemAllocationTypePinned = 1 };
enum cudaMemLocationType { cudaMemLocationTypeInvalid = 0, cudaMemLocationTypeDevice = 1 };
enum cudaMemPoolAttr { cudaMemPoolAttrReleaseThreshold = 4 };
struct cudaMemLocation {
  cudaMemLocationType type;
  int id;
};
struct cudaMemPoolProps {
  cudaMemAllocationType allocType;
  int handleTypes;
  cudaMemLocation location;
  void* win32SecurityAttributes;
  unsigned char reserved[64];
};
#define cudaStreamDefault 0x00
#define cudaStreamNonBlocking 0x01
#define cudaEventDefault 0x00
#define cudaEventDisableTiming 0x02
// The fields the sources read (the real struct has many more).
struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  int major, minor;
  int multiProcessorCount;
  int memoryBusWidth;
  int l2CacheSize;
};

namespace emu {

// ---------------------------------------------------------------- devices

struct DeviceConfig {
  int sms = 132;                    // H100 SXM
  int cc_major = 9, cc_minor = 0;
  int smem_optin = 232448;          // max dynamic + static shared memory per block (bytes)
  int l2_bytes = 50 * 1024 * 1024;
  size_t total_bytes = size_t(80) << 30;  // cudaMalloc fails (cudaErrorMemoryAllocation) past this
  const char* name = "emulated H100";
};
// Sets (or adds) device `ordinal`; devices in between get the defaults. Device 0 starts as the default.
void configure_device(int ordinal, const DeviceConfig& c);
const DeviceConfig& device_config(int ordinal);

// ---------------------------------------------------------------- schedules and diagnostics

enum class Schedule { RoundRobin, Low, High, Random };
Schedule schedule();
const char* schedule_name();
uint64_t seed();
// Kernel launches run so far (a test can check its kernels ran at all).
uint64_t launch_count();

struct Site {
  const char* file;
  int line;
  bool operator==(const Site& o) const { return line == o.line && std::strcmp(file, o.file) == 0; }
  bool operator!=(const Site& o) const { return !(*this == o); }

  template <class T>
  T shfl(unsigned mask, T v, int src, int width = 32) const;
  template <class T>
  T shfl_xor(unsigned mask, T v, int lane_mask, int width = 32) const;
  template <class T>
  T shfl_up(unsigned mask, T v, unsigned delta, int width = 32) const;
  template <class T>
  T shfl_down(unsigned mask, T v, unsigned delta, int width = 32) const;
  unsigned ballot(unsigned mask, int pred) const;
  int all(unsigned mask, int pred) const;
  int any(unsigned mask, int pred) const;
  void syncwarp(unsigned mask = 0xffffffffu) const;
};

[[noreturn]] void fatal(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// ---------------------------------------------------------------- device-side hooks

void kernel_entry(const char* name, int max_threads = 0, int min_blocks = 0);
void syncthreads(const char* file, int line);
enum class WarpOp { Shfl, Ballot, Vote, SyncWarp, Wmma, Mma };
// All lanes of the warp deposit `value` and wait for each other; returns the
// 32 deposited values (index = lane), valid until this lane's next collective.
const uint64_t* warp_exchange(Site site, WarpOp op, unsigned mask, uint64_t value);
// Lane and warp of the running thread.
int lane_id();
// Counts one WMMA call of this lane: every lane of a warp must make the same
// calls (checked at barriers and at block end), as a warp-wide operation needs.
void wmma_op();
// Fails (fatal) unless p is a multiple of `align` bytes; `what` names the access.
void check_aligned(const void* p, size_t align, const char* what);
// True when [p, p+bytes) lies in the running block's shared memory (static or dynamic).
bool is_shared_range(const void* p, size_t bytes);
// cp.async (emu_ptx_sm80.h): a 16-byte copy into shared memory that lands only
// when the issuing thread waits for its group, as on a GPU where it arrives at
// some point before the wait: a read of the destination before the wait sees
// the old bytes (poison, or the tile before). The source (src_bytes of it, the
// rest zero) is read at issue; it must be device memory that the kernel does not write.
void cp_async(void* smem_dst, const void* src, int src_bytes);
void cp_async_commit();
// Lands this thread's committed groups except the newest `pending` ones.
void cp_async_wait(int pending);

// sm_90a (emu_ptx_sm90.h). The shared-window address of p (its offset in the
// block's shared-memory arena, as __cvta_generic_to_shared gives on a GPU).
uint32_t shared_offset(const void* p);
// fence.proxy.async.shared::cta: this thread's landed cp.async chunks become
// readable by wgmma (until then a wgmma reading them is a fault).
void fence_proxy_async();
// wgmma.mma_async m64nNk16 bf16 -> f32 with 128-byte-swizzled K-major operands:
// queued by the issuing thread, executed (its 64 x N share of the accumulators
// d) when a wgmma_wait covers its group, so accumulators read before the wait
// are stale and shared memory overwritten before it is what the product sees;
// a cp.async into its operands still in flight when it runs is a fault.
// Needs a wgmma_fence earlier in the block; a thread may not exit with one pending.
void wgmma_fence();
void wgmma_issue(float* d, int n, uint64_t a_desc, uint64_t b_desc, Site site);
void wgmma_commit();
void wgmma_wait(int pending);

struct SharedSlot {
  uint64_t launch = 0;
  size_t offset = 0;
};
// The block's static __shared__ array behind one declaration (cu_to_cpp.py's EMU_SHARED).
void* shared_slot(SharedSlot& slot, size_t bytes, size_t align, size_t natural_align, const char* name);
void* dynamic_shared(size_t align);

// ---------------------------------------------------------------- host side

void* device_alloc(size_t bytes);  // 256-byte aligned, 0xff-filled, guard page after
void device_free(void* p);
// True when [p, p+bytes) lies inside one live device allocation.
bool is_device_range(const void* p, size_t bytes);

struct LaunchCfg {
  dim3 grid, block;
  size_t smem;
  cudaStream_t stream;
  LaunchCfg(dim3 g, dim3 b, size_t s = 0, cudaStream_t st = nullptr) : grid(g), block(b), smem(s), stream(st) {}
};
// Checks the launch now (an invalid one sets the error cudaGetLastError returns,
// as a GPU does, and never runs), then queues body(ctx) as every thread of every
// block of the grid on cfg.stream (emu_streams.cpp): it runs when something
// waits for that stream, not before.
void run_grid(const void* kernel, const LaunchCfg& cfg, void (*body)(void*), std::shared_ptr<void> ctx);

// kernel<<<cfg>>>(args...) after cu_to_cpp.py. Arguments are converted to the
// parameter types and copied once at launch, as CUDA copies them into the
// kernel's parameter buffer (the launch may run later, after the caller's
// variables are gone); each thread then gets its own copy of the values.
template <class... P, class... A>
void launch(void (*kernel)(P...), const LaunchCfg& cfg, A&&... args) {
  static_assert(sizeof...(P) == sizeof...(A), "kernel launched with the wrong number of arguments");
  using Params = std::tuple<std::decay_t<P>...>;
  struct Job {
    void (*k)(P...);
    Params params;
  };
  auto job = std::make_shared<Job>(Job{kernel, Params(std::forward<A>(args)...)});
  run_grid(reinterpret_cast<const void*>(kernel), cfg, [](void* c) {
    const Job* j = static_cast<const Job*>(c);
    std::apply(j->k, j->params);
  }, std::shared_ptr<void>(job, job.get()));
}

cudaError_t func_set_attribute(const void* kernel, cudaFuncAttribute attr, int value);
// Sets the error cudaGetLastError returns; prints `why` when NEMOTRON_EMU_VERBOSE is set.
cudaError_t set_error(cudaError_t err, const std::string& why);
// Device memory in use on `device` (what cudaMemGetInfo subtracts from total_bytes).
size_t allocated_bytes(int device);
// The most device memory `device` has had in use since the last reset (tests
// check a memory plan against what a forward pass really allocated).
size_t peak_allocated_bytes(int device);
void reset_peak_allocated_bytes(int device);

// Streams (emu_streams.cpp). Work queued on a stream runs, in order, only when
// the host waits for it (stream, event or device synchronisation, a synchronous
// copy, cudaFree), on the device current when it was queued: the latest moment
// a GPU may run it, so a result read before waiting shows stale data.
void enqueue(cudaStream_t s, std::function<void()> op);
// True when [p, p+bytes) lies inside one cudaMallocHost allocation.
bool is_pinned_range(const void* p, size_t bytes);
// During a stream capture a call that would synchronise or allocate fails, as on a
// GPU, and invalidates the capture: then this sets the error and returns true.
bool refused_during_capture(const char* call);
// Graphs launched so far (a test can check its work went through one).
uint64_t graph_launch_count();
// While set, cudaStreamBeginCapture fails (cudaErrorStreamCaptureUnsupported), as
// a driver may: for testing the fallback of code that captures.
void refuse_captures(bool refuse);

// Integral constants made changeable by cu_to_cpp.py --tunable NAME (a size
// knob such as a workspace cap, so small test shapes reach its boundaries).
void register_tunable(const char* name, void (*set)(void*, long long), void* value, long long initial);
// Sets a registered tunable; returns its previous value. Fatal for an unknown name.
long long set_tunable(const char* name, long long value);
template <class T>
const T& tunable(const char* name, T initial) {
  static_assert(std::is_integral<T>::value, "integral tunables only");
  T* v = new T(initial);
  register_tunable(name, [](void* p, long long x) { *static_cast<T*>(p) = static_cast<T>(x); }, v,
                   static_cast<long long>(initial));
  return *v;
}

// A reinterpret_cast (cu_to_cpp.py rewrites them all to this) that checks the
// alignment of pointer casts: on a GPU a misaligned 8- or 16-byte access faults.
template <class T, class S>
inline T checked_cast(S s) {
  if constexpr (std::is_pointer<T>::value && std::is_pointer<S>::value) {
    using E = std::remove_cv_t<std::remove_pointer_t<T>>;
    if constexpr (!std::is_void<E>::value && !std::is_function<E>::value)
      check_aligned(reinterpret_cast<const void*>(s), alignof(E), "vector/pointer cast");
  }
  return reinterpret_cast<T>(s);
}

}  // namespace emu

// cu_to_cpp.py: `__shared__ T name dims;` becomes EMU_SHARED(T, name, dims, align).
#define EMU_SHARED(T, name, dims, align)                                                             \
  static ::emu::SharedSlot emu_shared_slot_##name;                                                 \
  T(&name) dims = *static_cast<T(*) dims>(                                                         \
      ::emu::shared_slot(emu_shared_slot_##name, sizeof(T dims), (align), alignof(T), #name))

// ---------------------------------------------------------------- device intrinsics

#define __syncthreads() ::emu::syncthreads(__FILE__, __LINE__)
#define __syncwarp(...) (::emu::Site{__FILE__, __LINE__}.syncwarp(__VA_ARGS__))
#define __shfl_sync(...) (::emu::Site{__FILE__, __LINE__}.shfl(__VA_ARGS__))
#define __shfl_xor_sync(...) (::emu::Site{__FILE__, __LINE__}.shfl_xor(__VA_ARGS__))
#define __shfl_up_sync(...) (::emu::Site{__FILE__, __LINE__}.shfl_up(__VA_ARGS__))
#define __shfl_down_sync(...) (::emu::Site{__FILE__, __LINE__}.shfl_down(__VA_ARGS__))
#define __ballot_sync(...) (::emu::Site{__FILE__, __LINE__}.ballot(__VA_ARGS__))
#define __all_sync(...) (::emu::Site{__FILE__, __LINE__}.all(__VA_ARGS__))
#define __any_sync(...) (::emu::Site{__FILE__, __LINE__}.any(__VA_ARGS__))

[[noreturn]] inline void __trap() { ::emu::fatal("__trap() called"); }

template <class T>
inline T __ldg(const T* p) {
  return *p;
}
template <class T>
inline T __ldcs(const T* p) {
  return *p;
}
template <class T>
inline T __ldcg(const T* p) {
  return *p;
}
template <class T>
inline void __stcs(T* p, T v) {
  *p = v;
}

inline float __uint_as_float(unsigned u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline unsigned __float_as_uint(float f) {
  unsigned u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float __int_as_float(int i) {
  float f;
  std::memcpy(&f, &i, 4);
  return f;
}
inline int __float_as_int(float f) {
  int i;
  std::memcpy(&i, &f, 4);
  return i;
}
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned>(x)); }
inline int __ffs(int x) { return __builtin_ffs(x); }

// Single IEEE operations (the emulator is built with -ffp-contract=off, so none is fused).
inline float __double2float_rn(double d) { return static_cast<float>(d); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }

// Device min/max: CUDA overloads them for every arithmetic pair.
template <class A, class B>
inline std::common_type_t<A, B> min(A a, B b) {
  return b < a ? b : a;
}
template <class A, class B>
inline std::common_type_t<A, B> max(A a, B b) {
  return a < b ? b : a;
}

// Atomics: GPU threads only switch at barriers and collectives, so a plain
// read-modify-write is already atomic here.
template <class T>
inline T atomicAdd(T* p, T v) {
  const T old = *p;
  *p = old + v;
  return old;
}
template <class T>
inline T atomicMax(T* p, T v) {
  const T old = *p;
  *p = old < v ? v : old;
  return old;
}
template <class T>
inline T atomicMin(T* p, T v) {
  const T old = *p;
  *p = v < old ? v : old;
  return old;
}
template <class T>
inline T atomicExch(T* p, T v) {
  const T old = *p;
  *p = v;
  return old;
}
template <class T>
inline T atomicCAS(T* p, T compare, T v) {
  const T old = *p;
  if (old == compare) *p = v;
  return old;
}

// ---------------------------------------------------------------- warp collectives

namespace emu {

template <class T>
inline uint64_t to_bits(T v) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffled type");
  uint64_t u = 0;
  std::memcpy(&u, &v, sizeof(T));
  return u;
}
template <class T>
inline T from_bits(uint64_t u) {
  T v;
  std::memcpy(&v, &u, sizeof(T));
  return v;
}
void check_width(int width);

template <class T>
T Site::shfl(unsigned mask, T v, int src, int width) const {
  check_width(width);
  const uint64_t* all = warp_exchange(*this, WarpOp::Shfl, mask, to_bits(v));
  const int lane = lane_id();
  return from_bits<T>(all[lane / width * width + (src & (width - 1))]);
}
template <class T>
T Site::shfl_xor(unsigned mask, T v, int lane_mask, int width) const {
  check_width(width);
  const uint64_t* all = warp_exchange(*this, WarpOp::Shfl, mask, to_bits(v));
  // Lanes may read earlier groups of `width` lanes; a later group gives their own value back.
  const int lane = lane_id(), src = lane ^ lane_mask;
  return src < (lane / width + 1) * width ? from_bits<T>(all[src]) : v;
}
template <class T>
T Site::shfl_up(unsigned mask, T v, unsigned delta, int width) const {
  check_width(width);
  const uint64_t* all = warp_exchange(*this, WarpOp::Shfl, mask, to_bits(v));
  const int lane = lane_id();
  return lane % width >= static_cast<int>(delta) ? from_bits<T>(all[lane - static_cast<int>(delta)]) : v;
}
template <class T>
T Site::shfl_down(unsigned mask, T v, unsigned delta, int width) const {
  check_width(width);
  const uint64_t* all = warp_exchange(*this, WarpOp::Shfl, mask, to_bits(v));
  const int lane = lane_id();
  return lane % width + static_cast<int>(delta) < width ? from_bits<T>(all[lane + static_cast<int>(delta)]) : v;
}

}  // namespace emu

// ---------------------------------------------------------------- runtime API

const char* cudaGetErrorString(cudaError_t e);
const char* cudaGetErrorName(cudaError_t e);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
cudaError_t cudaGetDeviceCount(int* n);
cudaError_t cudaGetDevice(int* d);
cudaError_t cudaSetDevice(int d);
cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr a, int dev);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int dev);
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes);
cudaError_t cudaDriverGetVersion(int* v);
cudaError_t cudaRuntimeGetVersion(int* v);
cudaError_t cudaDeviceSynchronize();
template <class F>
cudaError_t cudaFuncSetAttribute(F kernel, cudaFuncAttribute a, int value) {
  return emu::func_set_attribute(reinterpret_cast<const void*>(kernel), a, value);
}

cudaError_t cudaMalloc(void** p, size_t bytes);
template <class T>
cudaError_t cudaMalloc(T** p, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(p), bytes);
}
cudaError_t cudaFree(void* p);
cudaError_t cudaMallocHost(void** p, size_t bytes);
cudaError_t cudaFreeHost(void* p);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s = nullptr);
cudaError_t cudaMemset(void* p, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t s = nullptr);
cudaError_t cudaMemcpy2DAsync(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t height,
                              cudaMemcpyKind kind, cudaStream_t s = nullptr);

cudaError_t cudaMemPoolCreate(cudaMemPool_t* pool, const cudaMemPoolProps* props);
cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void* value);
cudaError_t cudaMallocFromPoolAsync(void** p, size_t bytes, cudaMemPool_t pool, cudaStream_t s);
cudaError_t cudaFreeAsync(void* p, cudaStream_t s);
cudaError_t cudaMemPoolTrimTo(cudaMemPool_t pool, size_t keep);

// Streams and events (emu_streams.cpp): queued work runs when waited for.
cudaError_t cudaStreamCreate(cudaStream_t* s);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
// Graphs (emu_streams.cpp): work queued on a capturing stream is recorded, not
// run; a launched graph queues the recorded work again (kernels with the
// arguments they were captured with, copies reading their sources when they run).
// Synchronising or allocating calls during a capture fail and invalidate it.
cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t* graph);
cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus* status);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long flags = 0);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);
cudaError_t cudaEventCreate(cudaEvent_t* e);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b);
