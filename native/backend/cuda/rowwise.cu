// Row-wise CUDA ops: embed, rms_norm, relu_squared, add. CUDA twins of
// native/backend/cpu/{embedding,rms_norm,elementwise}.cpp. All are memory-bound:
// 16-byte (float4) accesses when the pointers are 16-byte aligned and the row
// length is a multiple of 4, scalar otherwise (odd dims, offset views).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "backend/cuda/cuda_ops.h"
#include "common/error.h"

namespace nemotron {
namespace cuda {

namespace {

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

// Widening loads; bf16 is the top half of an fp32 (exact), f16 converts exactly.
template <DType D>
__device__ __forceinline__ float load_elem(const void* base, int64_t i);
template <>
__device__ __forceinline__ float load_elem<DType::F32>(const void* base, int64_t i) {
  return static_cast<const float*>(base)[i];
}
template <>
__device__ __forceinline__ float load_elem<DType::BF16>(const void* base, int64_t i) {
  return __uint_as_float(static_cast<uint32_t>(static_cast<const uint16_t*>(base)[i]) << 16);
}
template <>
__device__ __forceinline__ float load_elem<DType::F16>(const void* base, int64_t i) {
  return __half2float(static_cast<const __half*>(base)[i]);
}

// Four consecutive elements from an address aligned to 4 elements' size.
template <DType D>
__device__ __forceinline__ float4 load4(const void* base, int64_t i4);
template <>
__device__ __forceinline__ float4 load4<DType::F32>(const void* base, int64_t i4) {
  return static_cast<const float4*>(base)[i4];
}
template <>
__device__ __forceinline__ float4 load4<DType::BF16>(const void* base, int64_t i4) {
  const uint2 u = static_cast<const uint2*>(base)[i4];
  return make_float4(__uint_as_float(u.x << 16), __uint_as_float(u.x & 0xffff0000u), __uint_as_float(u.y << 16),
                     __uint_as_float(u.y & 0xffff0000u));
}
template <>
__device__ __forceinline__ float4 load4<DType::F16>(const void* base, int64_t i4) {
  const uint2 u = static_cast<const uint2*>(base)[i4];
  const float2 a = __half22float2(*reinterpret_cast<const __half2*>(&u.x));
  const float2 b = __half22float2(*reinterpret_cast<const __half2*>(&u.y));
  return make_float4(a.x, a.y, b.x, b.y);
}

// grid-stride over rows: block b gathers row ids[b] of the table.
template <DType D, bool VEC>
__global__ void embed_kernel(const void* __restrict__ table, int64_t dim, const int32_t* __restrict__ ids, int64_t n,
                             float* __restrict__ out) {
  const size_t esz = D == DType::F32 ? 4 : 2;
  for (int64_t r = blockIdx.x; r < n; r += gridDim.x) {
    const void* row = static_cast<const uint8_t*>(table) + static_cast<size_t>(ids[r]) * static_cast<size_t>(dim) * esz;
    float* o = out + r * dim;
    if (VEC) {
      for (int64_t c = threadIdx.x; c < dim / 4; c += blockDim.x) reinterpret_cast<float4*>(o)[c] = load4<D>(row, c);
    } else {
      for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) o[c] = load_elem<D>(row, c);
    }
  }
}

template <DType D>
void launch_embed(const Matrix& t, const int32_t* ids, int64_t n, float* out, cudaStream_t st) {
  const size_t esz = D == DType::F32 ? 4 : 2;
  // Vector path: whole rows of 4-element groups, each group's source aligned to 4*esz.
  const bool vec = t.cols % 4 == 0 && aligned16(out) && (reinterpret_cast<uintptr_t>(t.data) % (4 * esz)) == 0;
  const unsigned grid = static_cast<unsigned>(std::min<int64_t>(n, 65535));
  const int threads = static_cast<int>(std::min<int64_t>(256, std::max<int64_t>(32, ((vec ? t.cols / 4 : t.cols) + 31) / 32 * 32)));
  if (vec)
    embed_kernel<D, true><<<grid, threads, 0, st>>>(t.data, t.cols, ids, n, out);
  else
    embed_kernel<D, false><<<grid, threads, 0, st>>>(t.data, t.cols, ids, n, out);
}

// Block-wide sum; every thread gets the result. `red` holds one float per warp.
__device__ __forceinline__ float block_sum(float v, float* red) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nw = (blockDim.x + 31) / 32;
  if (lane == 0) red[warp] = v;
  __syncthreads();
  float s = 0.f;
  for (int i = 0; i < nw; ++i) s += red[i];
  return s;
}

// One block per row (grid-stride). Two passes over the row: sum of squares, then
// scale; the second pass re-reads x from L1/L2. out may alias x (same element,
// same thread, read before write).
template <bool VEC>
__global__ void rms_norm_kernel(const float* x, int64_t rows, int64_t dim, const float* __restrict__ w, float eps,
                                float* out) {
  __shared__ float red[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* xr = x + r * dim;
    float* yr = out + r * dim;
    float ss = 0.f;
    if (VEC) {
      for (int64_t c = threadIdx.x; c < dim / 4; c += blockDim.x) {
        const float4 v = reinterpret_cast<const float4*>(xr)[c];
        ss = fmaf(v.x, v.x, ss);
        ss = fmaf(v.y, v.y, ss);
        ss = fmaf(v.z, v.z, ss);
        ss = fmaf(v.w, v.w, ss);
      }
    } else {
      for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) ss = fmaf(xr[c], xr[c], ss);
    }
    ss = block_sum(ss, red);
    // Same formula as the CPU (1/sqrt in double of the fp32 mean); the fp32 sum's
    // tree order loses ~log2(dim) ulp at most, far under the test tolerance.
    const float scale = static_cast<float>(1.0 / sqrt(static_cast<double>(ss) / static_cast<double>(dim) + eps));
    if (VEC) {
      for (int64_t c = threadIdx.x; c < dim / 4; c += blockDim.x) {
        const float4 v = reinterpret_cast<const float4*>(xr)[c];
        const float4 g = reinterpret_cast<const float4*>(w)[c];
        reinterpret_cast<float4*>(yr)[c] = make_float4(v.x * scale * g.x, v.y * scale * g.y, v.z * scale * g.z,
                                                       v.w * scale * g.w);
      }
    } else {
      for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) yr[c] = xr[c] * scale * w[c];
    }
    __syncthreads();  // `red` is rewritten by the next row
  }
}

__device__ __forceinline__ float relu2(float v) {
  const float r = fmaxf(v, 0.f);
  return r * r;
}

template <bool VEC>
__global__ void relu_squared_kernel(float* x, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (VEC) {
    float4* x4 = reinterpret_cast<float4*>(x);
    for (int64_t j = i; j < n / 4; j += stride) {
      float4 v = x4[j];
      v.x = relu2(v.x), v.y = relu2(v.y), v.z = relu2(v.z), v.w = relu2(v.w);
      x4[j] = v;
    }
    for (int64_t j = n / 4 * 4 + i; j < n; j += stride) x[j] = relu2(x[j]);  // tail (< 4)
  } else {
    for (; i < n; i += stride) x[i] = relu2(x[i]);
  }
}

template <bool VEC>
__global__ void add_kernel(float* h, const float* y, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (VEC) {
    float4* h4 = reinterpret_cast<float4*>(h);
    const float4* y4 = reinterpret_cast<const float4*>(y);
    for (int64_t j = i; j < n / 4; j += stride) {
      float4 a = h4[j];
      const float4 b = y4[j];
      a.x += b.x, a.y += b.y, a.z += b.z, a.w += b.w;
      h4[j] = a;
    }
    for (int64_t j = n / 4 * 4 + i; j < n; j += stride) h[j] += y[j];
  } else {
    for (; i < n; i += stride) h[i] += y[i];
  }
}

// Enough blocks to cover the work once, capped at a few waves (grid-stride beyond).
unsigned elementwise_grid(int64_t work, int threads) {
  return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>((work + threads - 1) / threads, 8192)));
}

}  // namespace

void embed(const Matrix& table, const int32_t* ids, int64_t n, float* out, cudaStream_t stream) {
  if (n <= 0 || table.cols <= 0) return;
  switch (table.dtype) {
    case DType::F32: launch_embed<DType::F32>(table, ids, n, out, stream); break;
    case DType::BF16: launch_embed<DType::BF16>(table, ids, n, out, stream); break;
    case DType::F16: launch_embed<DType::F16>(table, ids, n, out, stream); break;
  }
  cuda::check(cudaGetLastError(), "embed launch");
}

void rms_norm(const float* x, int64_t rows, int64_t dim, const float* w, float eps, float* out, cudaStream_t stream) {
  if (rows <= 0 || dim <= 0) return;
  const bool vec = dim % 4 == 0 && aligned16(x) && aligned16(w) && aligned16(out);
  const int64_t per_row = vec ? dim / 4 : dim;
  // 4480 / 4 = 1120 float4 per row for the 9B: 256 threads, ~4-5 each.
  const int threads = static_cast<int>(std::min<int64_t>(256, std::max<int64_t>(32, (per_row + 31) / 32 * 32)));
  const unsigned grid = static_cast<unsigned>(std::min<int64_t>(rows, 65535));
  if (vec)
    rms_norm_kernel<true><<<grid, threads, 0, stream>>>(x, rows, dim, w, eps, out);
  else
    rms_norm_kernel<false><<<grid, threads, 0, stream>>>(x, rows, dim, w, eps, out);
  cuda::check(cudaGetLastError(), "rms_norm launch");
}

void relu_squared(float* x, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  const bool vec = aligned16(x);
  const int threads = 256;
  if (vec)
    relu_squared_kernel<true><<<elementwise_grid((n + 3) / 4, threads), threads, 0, stream>>>(x, n);
  else
    relu_squared_kernel<false><<<elementwise_grid(n, threads), threads, 0, stream>>>(x, n);
  cuda::check(cudaGetLastError(), "relu_squared launch");
}

void add(float* h, const float* y, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  const bool vec = aligned16(h) && aligned16(y);
  const int threads = 256;
  if (vec)
    add_kernel<true><<<elementwise_grid((n + 3) / 4, threads), threads, 0, stream>>>(h, y, n);
  else
    add_kernel<false><<<elementwise_grid(n, threads), threads, 0, stream>>>(h, y, n);
  cuda::check(cudaGetLastError(), "add launch");
}

}  // namespace cuda
}  // namespace nemotron
