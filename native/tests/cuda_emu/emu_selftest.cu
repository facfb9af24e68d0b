// Kernels that test the emulator itself (emu_test_emulator.cpp): each does one
// thing right or one thing wrong on purpose, so the tests can check that the
// schedules differ, that poison shows races, and that each fault is reported.
// Built like the real kernels: rewritten by cu_to_cpp.py, then compiled as C++.
#include <cuda_runtime.h>
#include <mma.h>

#include <cstdint>

#include "backend/cuda/ptx_sm80.cuh"
#include "emu_selftest.h"

namespace emu_selftest {
namespace {

// Thread t of block b writes its arrival rank: order[b][rank] = t, blocks[rank of block] = b.
__global__ void arrival_kernel(int* order, int* blocks, int* counter, int* block_counter) {
  const int rank = atomicAdd(counter + blockIdx.x, 1);
  order[blockIdx.x * blockDim.x + rank] = threadIdx.x;
  __syncthreads();
  if (threadIdx.x == 0) blocks[atomicAdd(block_counter, 1)] = blockIdx.x;
}

// out[t] = in[n - 1 - t] through shared memory, with or without the barrier between write and read.
__global__ void reverse_kernel(const float* in, float* out, bool barrier) {
  __shared__ float s[256];
  const int t = threadIdx.x, n = blockDim.x;
  s[t] = in[t];
  if (barrier) __syncthreads();
  out[t] = s[n - 1 - t];
}

__global__ void big_shared_kernel(float* out) {
  extern __shared__ __align__(16) float dyn[];
  dyn[threadIdx.x] = static_cast<float>(threadIdx.x);
  __syncthreads();
  out[threadIdx.x] = dyn[blockDim.x - 1 - threadIdx.x];
}

__global__ void divergent_barrier_kernel() {
  if (threadIdx.x < 32) __syncthreads();
  __syncthreads();
}

__global__ void half_warp_shuffle_kernel(float* out) {
  float v = static_cast<float>(threadIdx.x);
  if (threadIdx.x % 32 < 16) v += __shfl_xor_sync(0xffffffffu, v, 1);
  __syncthreads();
  out[threadIdx.x] = v;
}

__global__ void shuffle_after_exit_kernel(float* out) {
  if (threadIdx.x % 32 == 31) return;
  out[threadIdx.x] = __shfl_down_sync(0xffffffffu, 1.0f, 1);
}

__global__ void misaligned_vector_kernel(const float* in, float* out) {
  const float4 v = *reinterpret_cast<const float4*>(in + 1);
  out[threadIdx.x] = v.x;
}

__global__ void read_kernel(const float* in, int64_t index, float* out) { out[threadIdx.x] = in[index]; }

__global__ void write_kernel(float* p, int64_t index) {
  if (threadIdx.x == 0) p[index] = 1.0f;
}

__global__ void shared_overflow_kernel(float* out) {
  __shared__ float a[32];
  a[threadIdx.x] = 1.0f;  // 33 threads: a[32] is one past the end
  __syncthreads();
  out[threadIdx.x] = a[threadIdx.x % 32];
}

__global__ void __launch_bounds__(64) bounded_kernel(float* out) { out[threadIdx.x] = 0.0f; }

__global__ void half_warp_wmma_kernel(float* out) {
  using namespace nvcuda;
  __shared__ __align__(128) float tile[16 * 16];
  for (int i = threadIdx.x; i < 256; i += blockDim.x) tile[i] = 1.0f;
  __syncthreads();
  wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc;
  if (threadIdx.x < 16) {
    wmma::fill_fragment(acc, 0.0f);
    wmma::store_matrix_sync(out, acc, 16, wmma::mem_row_major);
  }
  __syncthreads();
}

// A 16x16x8 tf32 product of known matrices through the WMMA path.
__global__ void wmma_kernel(const float* a, const float* b, float* c) {
  using namespace nvcuda;
  wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fa;
  wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::col_major> fb;
  wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc;
  wmma::fill_fragment(acc, 1.0f);
  wmma::load_matrix_sync(fa, a, 8);
  wmma::load_matrix_sync(fb, b, 8);
  wmma::mma_sync(acc, fa, fb, acc);
  wmma::store_matrix_sync(c, acc, 16, wmma::mem_row_major);
}

// One cp.async of 16 bytes per thread into poisoned shared memory: `before`
// gets what the destination holds after the commit but before the wait,
// `after` what it holds after the wait.
__global__ void cp_async_kernel(const float* src, float* before, float* after) {
  __shared__ __align__(16) float dst[32 * 4];
  const int i = threadIdx.x;
  nemotron::cuda::ptx::cp_async_16(dst + 4 * i, src + 4 * i, i == 31 ? 8 : 16);  // the last: 8 bytes, 8 zeros
  nemotron::cuda::ptx::cp_async_commit();
  for (int e = 0; e < 4; ++e) before[4 * i + e] = dst[4 * i + e];
  nemotron::cuda::ptx::cp_async_wait<0>();
  for (int e = 0; e < 4; ++e) after[4 * i + e] = dst[4 * i + e];
}

__global__ void fill_kernel(float* out, int n, float value) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = value;
}

}  // namespace

void fill(float* out, int n, float value, cudaStream_t stream) { fill_kernel<<<(n + 127) / 128, 128, 0, stream>>>(out, n, value); }
void arrival(int* order, int* blocks, int* counter, int* block_counter, int nblocks, int threads) {
  arrival_kernel<<<nblocks, threads>>>(order, blocks, counter, block_counter);
}
void reverse(const float* in, float* out, int n, bool barrier) { reverse_kernel<<<1, n>>>(in, out, barrier); }
void big_shared(float* out, size_t smem, bool opt_in) {
  if (opt_in) cudaFuncSetAttribute(big_shared_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
  big_shared_kernel<<<1, 128, smem>>>(out);
}
void bad_block(float* out) { reverse_kernel<<<1, 2048>>>(out, out, true); }
void bad_grid(float* out) { reverse_kernel<<<dim3(1, 70000), 32>>>(out, out, true); }
void divergent_barrier() { divergent_barrier_kernel<<<1, 64>>>(); }
void half_warp_shuffle(float* out) { half_warp_shuffle_kernel<<<1, 64>>>(out); }
void shuffle_after_exit(float* out) { shuffle_after_exit_kernel<<<1, 32>>>(out); }
void misaligned_vector(const float* in, float* out) { misaligned_vector_kernel<<<1, 32>>>(in, out); }
void read_at(const float* in, int64_t index, float* out) { read_kernel<<<1, 1>>>(in, index, out); }
void write_at(float* p, int64_t index) { write_kernel<<<1, 32>>>(p, index); }
void over_bounds(float* out) { bounded_kernel<<<1, 128>>>(out); }
void shared_overflow(float* out) { shared_overflow_kernel<<<1, 33>>>(out); }
void half_warp_wmma(float* out) { half_warp_wmma_kernel<<<1, 32>>>(out); }
void wmma_16x16x8(const float* a, const float* b, float* c) { wmma_kernel<<<1, 32>>>(a, b, c); }
void cp_async(const float* src, float* before, float* after) { cp_async_kernel<<<1, 32>>>(src, before, after); }

}  // namespace emu_selftest
