// Launchers of the emulator's self-test kernels (emu_selftest.cu); pointers are device memory.
#pragma once
#include <cstddef>
#include <cstdint>

typedef struct CUstream_st* cudaStream_t;
struct __nv_bfloat16;

namespace emu_selftest {

void fill(float* out, int n, float value, cudaStream_t stream);
void arrival(int* order, int* blocks, int* counter, int* block_counter, int nblocks, int threads);
void reverse(const float* in, float* out, int n, bool barrier);
void big_shared(float* out, size_t smem, bool opt_in);
void bad_block(float* out);
void bad_grid(float* out);
void divergent_barrier();
void half_warp_shuffle(float* out);
void shuffle_after_exit(float* out);
void misaligned_vector(const float* in, float* out);
void read_at(const float* in, int64_t index, float* out);
void write_at(float* p, int64_t index);
void over_bounds(float* out);
void shared_overflow(float* out);
void half_warp_wmma(float* out);
void wmma_16x16x8(const float* a, const float* b, float* c);
void cp_async(const float* src, float* before, float* after);

}  // namespace emu_selftest
