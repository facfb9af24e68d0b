#!/usr/bin/env bash
# One call on a lent GPU machine (the `device` tool's `run`), so GPU time goes to
# measuring, not to setting up. Needs no npm packages (the device machine has no
# network): builds the native core, tests and benches with plain CMake for this
# GPU's architecture, runs every CUDA kernel test against its CPU twin and the
# fixtures end to end on the GPU, then the CPU benchmark for comparison.
# Logs and results go to $OUT (default ./gpu-out).
#   usage: bash scripts/gpu-session.sh [ARCH]     e.g. 90a-real for an H100
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-out}"
mkdir -p "$OUT"
ARCH="${1:-}"
if [ -z "$ARCH" ]; then
  cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '.')
  case "$cc" in 90) ARCH="90a-real" ;; "") ARCH="80-real" ;; *) ARCH="${cc}-real" ;; esac
fi
{
  echo "## $(date -u)"; nvidia-smi || true; nvcc --version | tail -2; echo "arch $ARCH"
} > "$OUT/env.txt" 2>&1

echo "== build (arch $ARCH)"
NEMOTRON_CUDA=ON NEMOTRON_CUDA_ARCHS="$ARCH" cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release > "$OUT/configure.log" 2>&1 &&
  cmake --build build-gpu -j"$(nproc)" > "$OUT/build.log" 2>&1
status=$?
tail -5 "$OUT/build.log"
[ $status -eq 0 ] || { echo "build failed: see $OUT/build.log"; exit 1; }

echo "== native tests (CUDA kernels vs CPU twins, fixtures on the GPU)"
./build-gpu/nemotron_native_tests 2>&1 | tee "$OUT/native-tests.log" | grep -E "FAIL|native:|  (tiny|skipped)" 

echo "== CPU benchmark (for comparison)"
./build-gpu/nemotron_bench_cpu --json "$OUT/bench-cpu.json" > "$OUT/bench-cpu.log" 2>&1
tail -3 "$OUT/bench-cpu.log"
echo "results in $OUT"
