#!/usr/bin/env bash
# One call on a lent GPU machine (the `device` tool's `run`), so GPU time goes to
# measuring, not to setting up. Needs no npm packages (the device machine has no
# network): builds the native core, tests and benches with plain CMake for this
# GPU's architecture, runs every CUDA kernel test against its CPU twin and the
# fixtures end to end on the GPU, then the PyTorch baselines (if python3 has torch)
# and the CUDA kernel bench at the 9B shapes, then the CPU benchmark for comparison.
# The whole run fits one 10-minute device call: each step after the build gets
# what is left of a ~9.5-minute budget (the kernel benches drop to --quick when
# the build and tests took long; the CPU bench is skipped when time is short).
# The end-to-end 9B benchmark is the second call: scripts/gpu-e2e.sh.
# Logs and results go to $OUT (default ./gpu-out), 8 files (the most a device call
# returns): build.log (environment, configure, build), native-tests.log (the PTX
# layout probes first, then every native test),
# torch-baselines.{json,log}, bench-kernels.{json,log}, bench-cpu.{json,log}.
#   usage: bash scripts/gpu-session.sh [ARCH]     e.g. 90a-real for an H100
#   (device tool: first `cp -r ../shared/fixtures .fixtures`, then run it with carry [".fixtures"])
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-out}"
mkdir -p "$OUT"
ARCH="${1:-}"
if [ -z "$ARCH" ]; then
  cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '.')
  case "$cc" in 90) ARCH="90a-real" ;; "") ARCH="80-real" ;; *) ARCH="${cc}-real" ;; esac
fi
# At most 8 files come back from a device call: the environment, configure and
# build output share build.log.
{
  echo "## $(date -u)"; nvidia-smi || true; nvcc --version | tail -2; echo "arch $ARCH"
} > "$OUT/build.log" 2>&1

echo "== build (arch $ARCH)"
NEMOTRON_CUDA=ON NEMOTRON_CUDA_ARCHS="$ARCH" cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release >> "$OUT/build.log" 2>&1 &&
  cmake --build build-gpu -j"$(nproc)" >> "$OUT/build.log" 2>&1
status=$?
tail -5 "$OUT/build.log"
[ $status -eq 0 ] || { echo "build failed: see $OUT/build.log"; exit 1; }

# ../shared does not travel to a device machine: copy the fixtures into the
# checkout first (cp -r ../shared/fixtures .fixtures) and name .fixtures in the
# run's `carry`, or the fixture tests skip.
if [ -z "${NEMOTRON_FIXTURES:-}" ] && [ -f .fixtures/tiny-nemotron-h/config.json ]; then
  export NEMOTRON_FIXTURES="$PWD/.fixtures"
fi
[ -n "${NEMOTRON_FIXTURES:-}" ] || [ -d ../shared/fixtures ] ||
  echo "WARNING: no fixtures (.fixtures or ../shared/fixtures): the end-to-end fixture tests will skip"

echo "== PTX layout probes (this project's reading of mma.sync / ldmatrix / wgmma, which the emulator shares, vs this GPU)"
# First and alone: seconds to run, and if one fails, the GEMM / attention failures below follow from it.
timeout 60 ./build-gpu/nemotron_native_tests follows_the_ptx 2>&1 | tee "$OUT/native-tests.log" |
  grep -E "^\[ (OK|FAIL|SKIP)|differ|native:"

echo "== native tests (CUDA kernels vs CPU twins, fixtures on the GPU)"
# Bounded so that a hang cannot take the benches' time (and the whole call) with it.
t=$((450 - SECONDS)); [ $t -lt 60 ] && t=60
timeout "$t" ./build-gpu/nemotron_native_tests 2>&1 | tee -a "$OUT/native-tests.log" | grep -E "FAIL|native:|  (tiny|skipped)" 
# The fixtures again with decode steps launched kernel by kernel: if only the run
# above fails, the CUDA graph path (pass_recorder.h) is what to look at.
echo "-- cuda_fixture with NEMOTRON_CUDA_GRAPHS=0" >> "$OUT/native-tests.log"
NEMOTRON_CUDA_GRAPHS=0 timeout 60 ./build-gpu/nemotron_native_tests cuda_fixture 2>&1 | tee -a "$OUT/native-tests.log" |
  grep -E "FAIL|native:" | sed 's/^/(graphs off) /'

# Seconds left of the session budget (SECONDS counts from the script's start).
BUDGET=570
left() { echo $((BUDGET - SECONDS)); }
echo "== $(left) s left after build and tests"

# Full kernel benches need ~1 min (torch) + ~2-3 min (ours) on an H100; --quick ~1 min for both.
QUICK=""
[ "$(left)" -lt 330 ] && QUICK="--quick"

echo "== PyTorch baselines ${QUICK:+($QUICK) }(cuBLAS matmul and SDPA on the kernel bench's shapes)"
BASELINE=()
rm -f "$OUT/torch-baselines.json"
if python3 -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 3)" > /dev/null 2>&1; then
  t=$(( $(left) / 3 )); [ $t -gt 150 ] && t=150
  timeout "$t" python3 scripts/torch-baselines.py $QUICK --out "$OUT/torch-baselines.json" > "$OUT/torch-baselines.log" 2>&1
  rc=$?
  [ $rc -eq 124 ] && echo "(torch baselines cut off after ${t}s: the rows measured so far are kept)"
  head -2 "$OUT/torch-baselines.log"; tail -1 "$OUT/torch-baselines.log"
  [ -s "$OUT/torch-baselines.json" ] && BASELINE=(--baseline "$OUT/torch-baselines.json")
else
  echo "(python3 cannot import torch with CUDA: no baselines, no \"vs torch\" column)"
fi

echo "== CUDA kernel bench ${QUICK:+($QUICK) }(9B shapes vs copy bandwidth / tensor peak${BASELINE:+ / torch})"
t=$(( $(left) - 20 )); [ $t -gt 240 ] && t=240
if [ $t -gt 30 ]; then
  timeout "$t" ./build-gpu/nemotron_bench_kernels $QUICK ${BASELINE[@]+"${BASELINE[@]}"} --json "$OUT/bench-kernels.json" \
    > "$OUT/bench-kernels.log" 2>&1
  rc=$?
  [ $rc -eq 124 ] && echo "(kernel bench cut off after ${t}s: bench-kernels.json holds the rows measured so far)"
  [ $rc -ne 0 ] && [ $rc -ne 124 ] && { echo "(kernel bench exited $rc)"; tail -5 "$OUT/bench-kernels.log"; }
  grep -q '^## Peaks' "$OUT/bench-kernels.log" || head -3 "$OUT/bench-kernels.log"  # e.g. "no CUDA device: ..."
  sed -n '/^## Peaks/,/^$/p' "$OUT/bench-kernels.log"
  sed -n '/^## Targets/,$p' "$OUT/bench-kernels.log"
else
  echo "(skipped: $(left) s left)"
fi

# Where the GEMV should hand over to the tensor-core GEMM: the same linear rows with the GEMM for every row count
# (appended to bench-kernels.log; compare the .M8 / .M16 rows of the two runs).
if [ "$(left)" -gt 90 ]; then
  echo "== linear with the GEMM at every row count (NEMOTRON_GEMV_MAX_ROWS=0) vs the GEMV up to 16 rows"
  { echo; echo "## A/B: NEMOTRON_GEMV_MAX_ROWS=0 (tensor-core GEMM from M=1)"; } >> "$OUT/bench-kernels.log"
  NEMOTRON_GEMV_MAX_ROWS=0 timeout 60 ./build-gpu/nemotron_bench_kernels --quick --filter linear. \
    >> "$OUT/bench-kernels.log" 2>&1
  grep -E '^ *linear\.[a-z_0-9]+\.M(8|16) ' "$OUT/bench-kernels.log" || true
fi

if [ "$(left)" -gt 100 ]; then
  echo "== CPU benchmark (for comparison)"
  timeout $(( $(left) - 10 )) ./build-gpu/nemotron_bench_cpu --json "$OUT/bench-cpu.json" > "$OUT/bench-cpu.log" 2>&1
  tail -3 "$OUT/bench-cpu.log"
else
  echo "== CPU benchmark skipped ($(left) s left)"
fi
echo "results in $OUT (${SECONDS} s)"
