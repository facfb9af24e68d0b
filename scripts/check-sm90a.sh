#!/usr/bin/env bash
# Compiles the sm_90a-only code (the wgmma GEMM in linear.cu; other builds compile it to a trap)
# for sm_90a, so CI, which builds one older architecture, still proves it compiles; and fails
# where ptxas spills its registers or serializes its wgmma (both would cost most of its speed).
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
