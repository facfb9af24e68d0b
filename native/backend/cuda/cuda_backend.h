// Factory for the CUDA backend. Kept free of CUDA headers so the engine can
// include it in every build (only called when the build has CUDA).
#pragma once
#include <memory>

#include "backend/backend.h"

namespace nemotron {

// A backend on CUDA device `device`. Throws Error(DeviceUnavailable) when it cannot be used.
std::unique_ptr<Backend> make_cuda_backend(int device);

}  // namespace nemotron
