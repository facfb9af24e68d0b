// Entry points of the CUDA Mamba kernels for tests and benchmarks: the scan
// with its algorithm forced, and timings. Each timing allocates its own device
// buffers (random data, never zeros), warms up, and times with cudaEvents on a
// private stream.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/cuda_ops.h"

namespace nemotron {
namespace cuda {

// Which scan algorithm ssm_scan_path runs: Auto chooses per span as ssm_scan
// does (recurrent below 2 * chunk tokens, chunked SSD above), ignoring
// NEMOTRON_SSM_SCAN; Recurrent and Chunked force one for every span, decode included.
enum class ScanPath { Auto, Recurrent, Chunked };

void ssm_scan_path(const ScanArgs& a, const DevSpan* spans, int nspans, int64_t max_n, ScanPath path,
                   cudaStream_t stream);

// Median milliseconds of one 9B-shaped (heads 128, head_dim 80, groups 8,
// state 128, chunk 128) prefill ssm_scan of one sequence of T tokens,
// continuing from a non-zero state, over `iters` timed runs: with the path
// ssm_scan picks for T, or with `path`.
double cuda_ssm_scan_time_ms(int64_t T, int iters);
double cuda_ssm_scan_time_ms_path(int64_t T, int iters, ScanPath path);

}  // namespace cuda
}  // namespace nemotron
