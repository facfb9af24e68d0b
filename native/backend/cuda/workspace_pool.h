// The stream-ordered memory pool the CUDA kernels take their temporary
// workspaces from (attention's split-KV partials, the chunked scan's chunk
// states). One pool per device, shared by every kernel.
#pragma once
#include <cuda_runtime.h>

namespace nemotron {
namespace cuda {

// The pool keeps the memory it has handed out (release threshold = max), so
// after the first call of a given size a cudaMallocFromPoolAsync costs no driver
// call, and allocations on different streams never share a buffer.
cudaMemPool_t workspace_pool(int device);

}  // namespace cuda
}  // namespace nemotron
