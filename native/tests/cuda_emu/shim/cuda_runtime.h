// Stand-in for the CUDA toolkit's <cuda_runtime.h> when native/backend/cuda
// sources are built for the CPU emulator (this directory comes first on the
// include path of nemotron_cuda_emu_tests only).
#pragma once
#include "../emu_runtime.h"
