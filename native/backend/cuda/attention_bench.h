// Timing hook for the CUDA attention kernels, for a benchmark binary.
#pragma once
#include <cstdint>

#include "common/dtype.h"

namespace nemotron {
namespace cuda {

// Average milliseconds per cuda::attention call (cache append + attention,
// + combine when split) over `iters` timed calls, after warm-up, timed with
// cudaEvents on one stream. 9B shape: 40 query heads, 8 KV heads, head_dim 128,
// one sequence of `q_len` new tokens after `past` cached ones, KV cache of
// kv_dtype (F32 or BF16); random data.
// Throws nemotron::Error on any CUDA failure (including "no device").
double cuda_attention_time_ms(int64_t q_len, int64_t past, DType kv_dtype, int iters);

}  // namespace cuda
}  // namespace nemotron
