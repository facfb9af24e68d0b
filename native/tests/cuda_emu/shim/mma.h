// Stand-in for <mma.h> (nvcuda::wmma) in the CPU emulator build.
#pragma once
#include "../emu_wmma.h"
