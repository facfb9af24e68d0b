// Benchmark hook for the CUDA linear kernel (defined in linear.cu), for a bench
// binary to call without including CUDA headers.
#pragma once
#include <cstdint>

namespace nemotron {
namespace cuda {

// Mean time in milliseconds of one nemotron::cuda::linear call,
// out[rows, out_features] = x[rows, in_features] * W^T with bf16 W, no bias,
// on random data, timed with CUDA events over `iters` launches after a warm-up
// on the current device. Several weight copies are rotated when one fits in
// L2, so small shapes are timed from device memory rather than the cache.
// Throws nemotron::Error when a CUDA call fails (e.g. no device).
double cuda_linear_time_ms(int64_t rows, int64_t out_features, int64_t in_features, int iters);

}  // namespace cuda
}  // namespace nemotron
