#!/usr/bin/env bash
# Compiles the sm_90a-only code (the wgmma GEMM in linear.cu and the GPU tests' wgmma layout probe;
# other builds compile them to a trap or to nothing) for sm_90a, so CI, which builds one older
# architecture, still proves it compiles; and fails where ptxas spills the GEMM's registers,
# serializes its wgmma (both would cost most of its speed), or has to inject a wgmma fence
# (warning C7519: the code let accumulator moves slip past its own wgmma.fence).
# Needs nvcc; prints a reason and exits 0 without it.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v nvcc >/dev/null 2>&1; then
  echo "check-sm90a: skipped: no nvcc on PATH"
  exit 0
fi
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
log="$out/ptxas.log"
nvcc -std=c++17 -O3 -arch=sm_90a --expt-relaxed-constexpr -Xptxas -v -I native \
  -c native/backend/cuda/linear.cu -o "$out/linear.o" >"$log" 2>&1 || { cat "$log"; exit 1; }
nvcc -std=c++17 -O3 -arch=sm_90a -Xptxas -v -I native -I native/tests/cuda \
  -c native/tests/cuda/ptx_layout_kernels.cu -o "$out/probes.o" >>"$log" 2>&1 || { cat "$log"; exit 1; }
if grep -q "C7519\|warpgroup.arrive is injected" "$log"; then
  grep "C7519\|warpgroup.arrive" "$log"
  echo "check-sm90a: ptxas had to inject a wgmma fence (accumulators touched after wgmma.fence)"
  exit 1
fi
if grep -qi "wgmma.*serializ\|serializ.*wgmma" "$log"; then
  grep -i "serializ" "$log"
  echo "check-sm90a: ptxas serializes the wgmma instructions"
  exit 1
fi
props="$(grep -A2 "Compiling entry function '.*wgmma_gemm_bf16" "$log" | grep -E "spill|registers" || true)"
if [ -z "$props" ]; then
  echo "check-sm90a: no ptxas report for wgmma_gemm_bf16"; cat "$log"; exit 1
fi
if ! grep -q "0 bytes spill stores, 0 bytes spill loads" <<<"$props"; then
  echo "$props"; echo "check-sm90a: wgmma_gemm_bf16 spills registers"; exit 1
fi
echo "check-sm90a: wgmma_gemm_bf16 compiled for sm_90a: $(grep -o 'Used [0-9]* registers' <<<"$(grep -A3 "Compiling entry function '.*wgmma_gemm_bf16" "$log")"), no spills"
