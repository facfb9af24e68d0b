// Timing entry points of the CUDA Mamba kernels, for a benchmark binary. Each
// allocates its own device buffers (random data, never zeros), warms up, and
// times with cudaEvents on a private stream.
#pragma once
#include <cstdint>

namespace nemotron {
namespace cuda {

// Median milliseconds of one 9B-shaped (heads 128, head_dim 80, groups 8,
// state 128, chunk 128) prefill ssm_scan of one sequence of T tokens,
// continuing from a non-zero state, over `iters` timed runs.
double cuda_ssm_scan_time_ms(int64_t T, int iters);

}  // namespace cuda
}  // namespace nemotron
