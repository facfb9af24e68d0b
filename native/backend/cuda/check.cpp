// nemotron::cuda::check: turns a failed CUDA runtime call into nemotron::Error.
#include <string>

#include "backend/cuda/cuda_ops.h"
#include "common/error.h"

namespace nemotron {
namespace cuda {

void check(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return;
  // Clear the (non-sticky) error so that the next cudaGetLastError after an
  // unrelated launch does not report this one again.
  cudaGetLastError();
  // An allocation failure is the caller's to handle (smaller batch, CPU
  // fallback), so it gets its own code; anything else is a bug or a dead device.
  const ErrorCode code = err == cudaErrorMemoryAllocation ? ErrorCode::OutOfMemory : ErrorCode::Internal;
  fail(code, std::string(what ? what : "CUDA call") + ": " + cudaGetErrorString(err));
}

}  // namespace cuda
}  // namespace nemotron
