// nemotron::cuda::linear: picks the kernel (linear_kernels.cuh) for the shape,
// the weight dtype and the device, and the cuda_linear_time_ms benchmark hook.
//
// Regimes. Up to kGemvMaxRows rows (decode, small batches) the product reads
// every weight once and does only 2*rows flops per weight: memory-bound, so
// the GEMV streams W with 16-byte loads and reuses each load across the rows.
// Above that, bf16 W on sm_80+ goes to the tensor cores (x rounded to bf16
// once into a workspace, fp32 accumulation, split-K for narrow grids) where K
// is a multiple of 8 and W is 16-byte aligned (every NemotronH projection):
// wgmma_gemm_bf16 on compute capability 9.0 with sm_90a code in the binary
// (linear_wgmma_gemm.cuh), else mma_gemm_bf16 (linear_mma_gemm.cuh: cp.async
// pipeline, mma.sync); other shapes take wmma_gemm_bf16 (x rounded on each
// tile load). NEMOTRON_GEMM=wgmma|mma|wmma asks for one (the benchmark's A/B).
// f16/f32 W, rare in NemotronH checkpoints, go to an exact fp32 SIMT GEMM, so
// their results keep fp32 accuracy.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "backend/cuda/cuda_ops.h"
#include "backend/cuda/device_info.h"
#include "backend/cuda/linear_bench.h"
#include "backend/cuda/linear_kernels.cuh"
#include "backend/cuda/linear_mma_gemm.cuh"
#include "backend/cuda/linear_wgmma_gemm.cuh"
#include "backend/cuda/workspace_pool.h"
#include "common/error.h"

namespace nemotron {
namespace cuda {

namespace {

using namespace linear_detail;

constexpr int64_t kGemvMaxRows = 16;  // the largest accumulator count compiled (launch_gemv)

// Where the GEMV hands over to the GEMM: kGemvMaxRows unless NEMOTRON_GEMV_MAX_ROWS (0..16) says otherwise.
// At 8-16 rows every warp re-reads all rows of x per weight chunk, so the GEMV may become L1-bound before the
// weights' DRAM stream does; the switch point is a measurement (nemotron_bench_kernels --filter linear. with
// each setting), not a guess, hence a knob rather than a rebuild.
int64_t gemv_max_rows() {
  static const int64_t rows = [] {
    const char* v = std::getenv("NEMOTRON_GEMV_MAX_ROWS");
    if (v == nullptr || *v == 0) return kGemvMaxRows;
    char* end = nullptr;
    const long r = std::strtol(v, &end, 10);
    if (*end != 0 || r < 0 || r > kGemvMaxRows)
      fail(ErrorCode::InvalidArgument, std::string("NEMOTRON_GEMV_MAX_ROWS must be a whole number from 0 to ") +
                                           std::to_string(kGemvMaxRows) + ", not \"" + v + "\"");
    return static_cast<int64_t>(r);
  }();
  return rows;
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// Which tensor-core GEMM serves a bf16 call above the GEMV hand-over.
enum class TcKernel { Wgmma, Mma, Wmma };

// NEMOTRON_GEMM: unset, "" or "auto" = the fastest kernel that applies; "wgmma", "mma" or "wmma" ask for one (the
// benchmark's A/B). Read per call (a getenv), like NEMOTRON_ATTN_TC, so a benchmark or test can switch between calls.
enum class GemmRequest { Auto, Wgmma, Mma, Wmma };
GemmRequest gemm_request() {
  const char* v = std::getenv("NEMOTRON_GEMM");
  if (v == nullptr || *v == 0 || std::strcmp(v, "auto") == 0) return GemmRequest::Auto;
  if (std::strcmp(v, "wgmma") == 0) return GemmRequest::Wgmma;
  if (std::strcmp(v, "mma") == 0) return GemmRequest::Mma;
  if (std::strcmp(v, "wmma") == 0) return GemmRequest::Wmma;
  fail(ErrorCode::InvalidArgument, std::string("NEMOTRON_GEMM must be auto, wgmma, mma or wmma, not \"") + v + "\"");
}

// Whether wgmma_gemm_bf16 runs on this device: compute capability 9.0 exactly
// (sm_90a code runs nowhere else), the binary built with sm_90a code (the
// compute_90 PTX it also carries has no wgmma: CUDA_FORCE_PTX_JIT would pick
// that), and room for its 193 KB of shared memory.
bool wgmma_runs_here(const DeviceInfo& di) {
  if (di.cc_major != 9 || di.cc_minor != 0 || di.max_smem_optin < hg::SMEM_BYTES) return false;
#if defined(NEMOTRON_CUDA_EMULATED)
  return true;  // the emulator runs ptx_sm90.cuh's instructions (emu_ptx_sm90.h)
#elif defined(NEMOTRON_CUDA_ARCHS)
  // Fixed for the process (the driver reads CUDA_FORCE_PTX_JIT once): decided on the first call, not per GEMM.
  static const bool has_sm90a_code = [] {
    const char* jit = std::getenv("CUDA_FORCE_PTX_JIT");
    return std::strstr(NEMOTRON_CUDA_ARCHS, "90a") != nullptr && !(jit != nullptr && *jit && std::strcmp(jit, "0") != 0);
  }();
  return has_sm90a_code;
#else
  return false;
#endif
}

// The kernel for a bf16 GEMM of this shape. wgmma_gemm_bf16 and mma_gemm_bf16
// share their operand rules (K a multiple of 8, W 16-byte aligned) and a
// workspace for x's bf16 copy: the caller's, or else the stream-ordered pool's,
// which a CUDA graph capture must not allocate from (then the WMMA GEMM serves).
// Asking for wgmma where it cannot run is an error, not a silent fallback.
TcKernel tc_kernel(int64_t k, const void* w, cudaStream_t stream, bool has_workspace, const DeviceInfo& di) {
  const GemmRequest req = gemm_request();
  const bool wgmma = wgmma_runs_here(di);
  if (req == GemmRequest::Wgmma && !wgmma)
    fail(ErrorCode::InvalidArgument,
         "NEMOTRON_GEMM=wgmma needs a compute capability 9.0 GPU (H100, H200) and a build with sm_90a code "
         "(NEMOTRON_CUDA_ARCHS including 90a-real)");
  if (req == GemmRequest::Wmma || k <= 0 || k % 8 != 0 || !aligned16(w)) return TcKernel::Wmma;
  if (!has_workspace) {
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    check(cudaStreamIsCapturing(stream, &capture), "linear: cudaStreamIsCapturing");
    if (capture != cudaStreamCaptureStatusNone) return TcKernel::Wmma;
  }
  if (wgmma && req != GemmRequest::Mma) return TcKernel::Wgmma;
  return di.max_smem_optin >= mg::SMEM_BYTES ? TcKernel::Mma : TcKernel::Wmma;
}

// How wgmma_gemm_bf16 or mma_gemm_bf16 covers a shape: x's bf16 copy, and
// split-K when the block tiles alone would not give every SM a block (few rows
// times a narrow W: out_proj / mlp_down (N = 4480) at batched-decode row
// counts). Splits keep >= 8 k-tiles each and stop at 2 blocks per SM.
// Shared by the launch and linear_workspace_bytes, so a caller's workspace fits.
struct TcPlan {
  int64_t bm = 0, bn = 0, bk = 0;  // the kernel's block tile and k-tile
  int64_t lda = 0, splits = 1, kt_per_split = 0;
  size_t a_bytes = 0, partial_bytes = 0;
  size_t bytes() const { return a_bytes + partial_bytes; }
};

constexpr int64_t kMinKTilesPerSplit = 8, kMaxSplits = 16;

TcPlan plan_tc(TcKernel kernel, int64_t rows, int64_t n, int64_t k, const DeviceInfo& di) {
  const int64_t sms = di.sms;
  TcPlan p;
  const bool wg = kernel == TcKernel::Wgmma;
  p.bm = wg ? hg::BM : mg::BM;
  p.bn = wg ? hg::BN : mg::BN;
  p.bk = wg ? hg::BK : mg::BK;
  p.lda = k;  // a multiple of 8 (tc_kernel): every row starts 16-byte aligned
  p.a_bytes = (static_cast<size_t>(rows * p.lda) * 2 + 255) / 256 * 256;
  const int64_t ktiles = (k + p.bk - 1) / p.bk;
  const int64_t tiles = ((n + p.bn - 1) / p.bn) * ((rows + p.bm - 1) / p.bm);
  if (tiles > 0 && tiles < sms) {
    const int64_t want = (2 * sms + tiles - 1) / tiles;
    p.splits = std::max<int64_t>(1, std::min({want, ktiles / kMinKTilesPerSplit, kMaxSplits}));
  }
  p.kt_per_split = (ktiles + p.splits - 1) / p.splits;
  p.splits = (ktiles + p.kt_per_split - 1) / p.kt_per_split;  // no empty split
  if (p.splits > 1) p.partial_bytes = static_cast<size_t>(p.splits * rows * n) * sizeof(float);
  return p;
}

template <typename W, int R>
void launch_gemv_r(const float* x, int rows, int64_t ldx, const W* w, int64_t n, int64_t k, const float* bias,
                   float* out, int64_t ldo, cudaStream_t stream) {
  const bool vec_w = aligned16(w) && (k * static_cast<int64_t>(sizeof(W))) % 16 == 0;
  const bool vec_x = aligned16(x) && (rows == 1 || ldx % 4 == 0);
  const int64_t blocks = (n + kGemvWarps - 1) / kGemvWarps;
  gemv_kernel<W, R><<<static_cast<unsigned>(blocks), 32 * kGemvWarps, 0, stream>>>(x, rows, ldx, w, n, k, bias, out,
                                                                                   ldo, vec_w, vec_x);
}

// Rounds the row count up to a power of two so only five accumulator counts
// are compiled per dtype; the kernel masks the rows past `rows`.
template <typename W>
void launch_gemv(const float* x, int64_t rows, int64_t ldx, const W* w, int64_t n, int64_t k, const float* bias,
                 float* out, int64_t ldo, cudaStream_t stream) {
  const int r = static_cast<int>(rows);
  if (r <= 1)
    launch_gemv_r<W, 1>(x, r, ldx, w, n, k, bias, out, ldo, stream);
  else if (r <= 2)
    launch_gemv_r<W, 2>(x, r, ldx, w, n, k, bias, out, ldo, stream);
  else if (r <= 4)
    launch_gemv_r<W, 4>(x, r, ldx, w, n, k, bias, out, ldo, stream);
  else if (r <= 8)
    launch_gemv_r<W, 8>(x, r, ldx, w, n, k, bias, out, ldo, stream);
  else
    launch_gemv_r<W, 16>(x, r, ldx, w, n, k, bias, out, ldo, stream);
}

// grid.y is limited to 65535 tiles of rows; longer inputs are split.
constexpr int64_t kMaxGridY = 65535;

void launch_wmma(const float* x, int64_t rows, int64_t ldx, const __nv_bfloat16* w, int64_t n, int64_t k,
                 const float* bias, float* out, int64_t ldo, cudaStream_t stream) {
  const bool vec_w = aligned16(w) && (k * 2) % 16 == 0;
  const bool vec_x = aligned16(x) && ldx % 4 == 0;
  const int64_t chunk = kMaxGridY * wg::BM;
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t m = std::min(chunk, rows - r0);
    const dim3 grid(static_cast<unsigned>((n + wg::BN - 1) / wg::BN), static_cast<unsigned>((m + wg::BM - 1) / wg::BM));
    wmma_gemm_bf16<<<grid, wg::THREADS, 0, stream>>>(x + r0 * ldx, m, ldx, w, n, k, bias, out + r0 * ldo, ldo, vec_x,
                                                     vec_w);
  }
}

// x's bf16 copy, from the stream-ordered pool; given back (stream-ordered) also when a launch check throws.
struct PoolBuffer {
  void* p = nullptr;
  cudaStream_t stream;
  PoolBuffer(size_t bytes, int dev, cudaStream_t s) : stream(s) {
    check(cudaMallocFromPoolAsync(&p, bytes, workspace_pool(dev), stream), "linear: bf16 copy of x (workspace pool)");
  }
  ~PoolBuffer() {
    if (p) cudaFreeAsync(p, stream);
  }
  PoolBuffer(const PoolBuffer&) = delete;
  PoolBuffer& operator=(const PoolBuffer&) = delete;
};

// Raises a kernel's dynamic shared memory limit above the default 48 KB, once per kernel and device.
template <typename Kernel>
void allow_shared_memory(Kernel kernel, int bytes, int dev, const char* what) {
  static std::mutex mu;
  static std::set<std::pair<const void*, int>> raised;
  std::lock_guard<std::mutex> lk(mu);
  const std::pair<const void*, int> key(reinterpret_cast<const void*>(kernel), dev);
  if (raised.count(key) == 0) {
    check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes), what);
    raised.insert(key);
  }
}

void launch_tc(TcKernel kernel, const float* x, int64_t rows, int64_t ldx, const __nv_bfloat16* w, int64_t n,
               int64_t k, const float* bias, float* out, int64_t ldo, cudaStream_t stream, void* workspace,
               size_t workspace_bytes, const DeviceInfo& di) {
  const int dev = di.device;
  const TcPlan pl = plan_tc(kernel, rows, n, k, di);
  std::unique_ptr<PoolBuffer> pooled;
  if (workspace == nullptr) {
    pooled.reset(new PoolBuffer(pl.bytes(), dev, stream));
    workspace = pooled->p;
  } else if (workspace_bytes < pl.bytes()) {
    fail(ErrorCode::Internal, "cuda linear: the workspace given is too small");
  }
  auto* ab = static_cast<__nv_bfloat16*>(workspace);
  float* partial = pl.splits > 1 ? reinterpret_cast<float*>(static_cast<char*>(workspace) + pl.a_bytes) : nullptr;
  const bool vec_x = aligned16(x) && ldx % 4 == 0;
  const int64_t chunks = rows * (pl.lda / 8);
  const unsigned conv_blocks = static_cast<unsigned>(std::min<int64_t>((chunks + 255) / 256, 4096));
  round_rows_to_bf16<<<conv_blocks, 256, 0, stream>>>(x, rows, ldx, k, ab, pl.lda, vec_x);
  const bool wg = kernel == TcKernel::Wgmma;
  if (wg)
    allow_shared_memory(wgmma_gemm_bf16, hg::SMEM_BYTES, dev, "linear: raise wgmma_gemm_bf16 shared memory");
  else
    allow_shared_memory(mma_gemm_bf16, mg::SMEM_BYTES, dev, "linear: raise mma_gemm_bf16 shared memory");
  // Split-K only happens with few row tiles (tiles < SMs), so never with more rows than one launch takes
  // (the partials are laid out for all rows at once).
  const int64_t chunk = kMaxGridY * pl.bm;
  if (partial && rows > chunk) fail(ErrorCode::Internal, "cuda linear: split-K over more rows than one launch");
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t m = std::min(chunk, rows - r0);
    const dim3 grid(static_cast<unsigned>((n + pl.bn - 1) / pl.bn), static_cast<unsigned>((m + pl.bm - 1) / pl.bm),
                    static_cast<unsigned>(pl.splits));
    if (wg)
      wgmma_gemm_bf16<<<grid, hg::THREADS, hg::SMEM_BYTES, stream>>>(ab + r0 * pl.lda, m, pl.lda, w, n, k, bias,
                                                                    out + r0 * ldo, ldo, pl.kt_per_split, partial);
    else
      mma_gemm_bf16<<<grid, mg::THREADS, mg::SMEM_BYTES, stream>>>(ab + r0 * pl.lda, m, pl.lda, w, n, k, bias,
                                                                   out + r0 * ldo, ldo, pl.kt_per_split, partial);
  }
  if (partial) {
    const unsigned sum_blocks = static_cast<unsigned>(std::min<int64_t>((rows * n + 255) / 256, 4096));
    sum_splits<<<sum_blocks, 256, 0, stream>>>(partial, static_cast<int>(pl.splits), rows, n, bias, out, ldo);
  }
  check(cudaGetLastError(), wg ? "linear: wgmma_gemm_bf16 launch" : "linear: mma_gemm_bf16 launch");
}

template <typename W>
void launch_simt(const float* x, int64_t rows, int64_t ldx, const W* w, int64_t n, int64_t k, const float* bias,
                 float* out, int64_t ldo, cudaStream_t stream) {
  const int64_t chunk = kMaxGridY * sg::BM;
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t m = std::min(chunk, rows - r0);
    const dim3 grid(static_cast<unsigned>((n + sg::BN - 1) / sg::BN), static_cast<unsigned>((m + sg::BM - 1) / sg::BM));
    simt_gemm<W><<<grid, sg::THREADS, 0, stream>>>(x + r0 * ldx, m, ldx, w, n, k, bias, out + r0 * ldo, ldo);
  }
}

template <typename W>
void dispatch(const float* x, int64_t rows, int64_t ldx, const W* w, int64_t n, int64_t k, const float* bias,
              float* out, int64_t ldo, cudaStream_t stream, bool tensor_cores, void* ws, size_t ws_bytes,
              const DeviceInfo& di) {
  if (rows <= gemv_max_rows()) {
    launch_gemv<W>(x, rows, ldx, w, n, k, bias, out, ldo, stream);
  } else if (tensor_cores) {
    const auto* wb = reinterpret_cast<const __nv_bfloat16*>(w);
    const TcKernel kernel = tc_kernel(k, w, stream, ws != nullptr, di);
    if (kernel == TcKernel::Wmma)
      launch_wmma(x, rows, ldx, wb, n, k, bias, out, ldo, stream);
    else
      launch_tc(kernel, x, rows, ldx, wb, n, k, bias, out, ldo, stream, ws, ws_bytes, di);
  } else {
    launch_simt<W>(x, rows, ldx, w, n, k, bias, out, ldo, stream);
  }
}

}  // namespace

void linear(const float* x, int64_t rows, int64_t ldx, const Matrix& w, const float* bias, float* out, int64_t ldo,
            cudaStream_t stream, void* workspace, size_t workspace_bytes) {
  const int64_t n = w.rows, k = w.cols;
  if (rows < 0 || n < 0 || k < 0 || (rows > 1 && (ldx < k || ldo < n)))
    fail(ErrorCode::InvalidArgument, "cuda linear: bad shape rows=" + std::to_string(rows) + " out=" +
                                         std::to_string(n) + " in=" + std::to_string(k) + " ldx=" +
                                         std::to_string(ldx) + " ldo=" + std::to_string(ldo));
  if (rows == 0 || n == 0) return;
  if ((k > 0 && (w.data == nullptr || x == nullptr)) || out == nullptr)
    fail(ErrorCode::InvalidArgument, "cuda linear: null pointer");
  switch (w.dtype) {
    case DType::BF16: {
      // The device is asked only where it decides something (not on the GEMV path).
      const DeviceInfo di = rows > gemv_max_rows() ? current_device_info() : DeviceInfo{};
      const bool tc = rows > gemv_max_rows() && di.cc_major >= 8;
      dispatch(x, rows, ldx, static_cast<const __nv_bfloat16*>(w.data), n, k, bias, out, ldo, stream, tc, workspace,
               workspace_bytes, di);
      break;
    }
    case DType::F16:
      dispatch(x, rows, ldx, static_cast<const __half*>(w.data), n, k, bias, out, ldo, stream, false, nullptr, 0,
               DeviceInfo{});
      break;
    case DType::F32:
      dispatch(x, rows, ldx, static_cast<const float*>(w.data), n, k, bias, out, ldo, stream, false, nullptr, 0,
               DeviceInfo{});
      break;
  }
  check(cudaGetLastError(), "cuda linear: kernel launch");
}

const char* linear_kernel_name(int64_t rows, const Matrix& w, cudaStream_t stream, bool with_workspace) {
  if (rows <= gemv_max_rows()) return "gemv";
  const DeviceInfo di = current_device_info();
  if (w.dtype != DType::BF16 || di.cc_major < 8) return "simt_gemm";
  const TcKernel kernel = tc_kernel(w.cols, w.data, stream, with_workspace, di);
  if (kernel == TcKernel::Wmma) return "wmma_gemm_bf16";
  const bool split = plan_tc(kernel, rows, w.rows, w.cols, di).splits > 1;
  if (kernel == TcKernel::Wgmma) return split ? "wgmma_gemm_bf16 split-k" : "wgmma_gemm_bf16";
  return split ? "mma_gemm_bf16 split-k" : "mma_gemm_bf16";
}

bool wgmma_gemm_available() { return wgmma_runs_here(current_device_info()); }

size_t linear_workspace_bytes(int64_t rows, const Matrix& w) {
  if (w.dtype != DType::BF16 || rows <= gemv_max_rows() || w.cols <= 0 || w.cols % 8 != 0) return 0;
  // For the kernel a call given a workspace takes now (NEMOTRON_GEMM is read per call).
  const DeviceInfo di = current_device_info();
  const TcKernel kernel = tc_kernel(w.cols, w.data, nullptr, true, di);
  return kernel == TcKernel::Wmma ? 0 : plan_tc(kernel, rows, w.rows, w.cols, di).bytes();
}

// The workspace grows with the rows (x's copy) and, while the row tiles leave
// SMs idle, with the split-K partials (splits x rows x N); within one count of
// row tiles both peak at its last row, so those rows and max_rows cover every case.
size_t linear_workspace_bound(int64_t max_rows, const Matrix& w) {
  if (w.dtype != DType::BF16 || max_rows <= gemv_max_rows() || w.cols <= 0 || w.cols % 8 != 0) return 0;
  const DeviceInfo di = current_device_info();
  const TcKernel kernel = tc_kernel(w.cols, w.data, nullptr, true, di);
  if (kernel == TcKernel::Wmma) return 0;
  size_t most = plan_tc(kernel, max_rows, w.rows, w.cols, di).bytes();
  const int64_t bm = plan_tc(kernel, 1, w.rows, w.cols, di).bm;
  for (int64_t rows = bm; rows < max_rows; rows += bm) {
    if (rows <= gemv_max_rows()) continue;
    const TcPlan p = plan_tc(kernel, rows, w.rows, w.cols, di);
    if (p.splits == 1) break;  // more row tiles only fill more SMs
    most = std::max(most, p.bytes());
  }
  return most;
}

// ---------------------------------------------------------------- benchmark hook

namespace {

// Uniform values in [-1, 1) from a hash of the index: fast to generate on the
// device and not zeros (zeros can time faster than real data).
__device__ __forceinline__ float hash_uniform(uint64_t i, uint32_t seed) {
  uint64_t z = i * 0x9E3779B97F4A7C15ull + seed;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<float>(z >> 40) * (2.0f / 16777216.0f) - 1.0f;
}

__global__ void fill_f32(float* p, int64_t n, uint32_t seed) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    p[i] = hash_uniform(i, seed);
}

__global__ void fill_bf16(__nv_bfloat16* p, int64_t n, uint32_t seed) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    p[i] = __float2bfloat16_rn(hash_uniform(i, seed) * 0.05f);
}

// Frees whatever was allocated, also when a check throws midway.
struct DeviceAllocs {
  std::vector<void*> ptrs;
  cudaEvent_t ev[2] = {nullptr, nullptr};
  cudaStream_t stream = nullptr;
  ~DeviceAllocs() {
    for (void* p : ptrs) cudaFree(p);
    for (cudaEvent_t e : ev)
      if (e) cudaEventDestroy(e);
    if (stream) cudaStreamDestroy(stream);
  }
  void* alloc(size_t bytes) {
    void* p = nullptr;
    check(cudaMalloc(&p, bytes), "cuda_linear_time_ms: cudaMalloc");
    ptrs.push_back(p);
    return p;
  }
};

}  // namespace

double cuda_linear_time_ms(int64_t rows, int64_t out_features, int64_t in_features, int iters) {
  if (rows <= 0 || out_features <= 0 || in_features <= 0 || iters <= 0)
    fail(ErrorCode::InvalidArgument, "cuda_linear_time_ms: sizes and iters must be positive");
  DeviceAllocs d;
  int dev = 0, l2 = 0;
  check(cudaGetDevice(&dev), "cuda_linear_time_ms: cudaGetDevice");
  check(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev), "cuda_linear_time_ms: L2 size");
  check(cudaStreamCreateWithFlags(&d.stream, cudaStreamNonBlocking), "cuda_linear_time_ms: stream");
  check(cudaEventCreate(&d.ev[0]), "cuda_linear_time_ms: event");
  check(cudaEventCreate(&d.ev[1]), "cuda_linear_time_ms: event");

  const int64_t w_elems = out_features * in_features;
  const size_t w_bytes = static_cast<size_t>(w_elems) * 2;
  // Enough weight copies to span ~3x L2, so each launch reads W from DRAM.
  const int copies =
      static_cast<int>(std::min<int64_t>(16, std::max<int64_t>(1, (3 * static_cast<int64_t>(l2)) / w_bytes + 1)));
  float* x = static_cast<float*>(d.alloc(static_cast<size_t>(rows * in_features) * 4));
  float* out = static_cast<float*>(d.alloc(static_cast<size_t>(rows * out_features) * 4));
  fill_f32<<<1024, 256, 0, d.stream>>>(x, rows * in_features, 1);
  std::vector<Matrix> ws;
  for (int c = 0; c < copies; ++c) {
    auto* w = static_cast<__nv_bfloat16*>(d.alloc(w_bytes));
    fill_bf16<<<4096, 256, 0, d.stream>>>(w, w_elems, 100 + c);
    ws.push_back(Matrix{w, DType::BF16, out_features, in_features});
  }
  check(cudaGetLastError(), "cuda_linear_time_ms: fill");
  for (int c = 0; c < copies; ++c)
    linear(x, rows, in_features, ws[c], nullptr, out, out_features, d.stream);  // warm-up: module load, clocks
  check(cudaEventRecord(d.ev[0], d.stream), "cuda_linear_time_ms: record");
  for (int i = 0; i < iters; ++i)
    linear(x, rows, in_features, ws[i % copies], nullptr, out, out_features, d.stream);
  check(cudaEventRecord(d.ev[1], d.stream), "cuda_linear_time_ms: record");
  check(cudaEventSynchronize(d.ev[1]), "cuda_linear_time_ms: synchronize");
  float ms = 0;
  check(cudaEventElapsedTime(&ms, d.ev[0], d.ev[1]), "cuda_linear_time_ms: elapsed");
  return static_cast<double>(ms) / iters;
}

}  // namespace cuda
}  // namespace nemotron
