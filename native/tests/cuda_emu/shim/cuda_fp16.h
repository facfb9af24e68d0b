// Stand-in for <cuda_fp16.h> in the CPU emulator build.
#pragma once
#include "../emu_half.h"
