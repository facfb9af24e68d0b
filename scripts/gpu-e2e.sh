#!/usr/bin/env bash
# The second call of a GPU session (the first is scripts/gpu-session.sh): the
# end-to-end benchmark at the real 9B shape. A lent machine is bare again after
# 30 s idle, so this builds what it needs itself (the core + nemotron_bench_e2e
# only, for this GPU's architecture), writes the 17.8 GB random checkpoint to
# local disk (reused when the machine is still warm), then runs prefill
# (1K/8K/32K), batch-1 decode (1K/32K context) and batched decode (1..128
# streams) within one 10-minute device call, then batch-1 and 64-stream decode
# again with CUDA graphs off. Results: $OUT/bench-e2e{,-nographs}.{json,log}.
#   usage: bash scripts/gpu-e2e.sh [extra nemotron_bench_e2e options, e.g. --quick]
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-out}"
mkdir -p "$OUT"
cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '.')
case "$cc" in 90) ARCH="90a-real" ;; "") ARCH="80-real" ;; *) ARCH="${cc}-real" ;; esac

echo "== build nemotron_bench_e2e (arch $ARCH)"
NEMOTRON_CUDA=ON NEMOTRON_CUDA_ARCHS="$ARCH" cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release > "$OUT/e2e-configure.log" 2>&1 &&
  cmake --build build-gpu -j"$(nproc)" --target nemotron_bench_e2e > "$OUT/e2e-build.log" 2>&1 ||
  { tail -20 "$OUT/e2e-build.log"; echo "build failed"; exit 1; }
echo "   built in ${SECONDS} s"

# Whatever is left of a ~9.5-minute budget; the JSON is rewritten after every
# phase, so a run cut off by the limit keeps what it measured.
# (75 s of it stay for the same decode steps launched kernel by kernel, below.)
t=$((570 - 75 - SECONDS))
echo "== nemotron_bench_e2e (${t} s budget)"
timeout "$t" ./build-gpu/nemotron_bench_e2e --device cuda --json "$OUT/bench-e2e.json" "$@" 2>&1 | tee "$OUT/bench-e2e.log"
rc=${PIPESTATUS[0]}
[ "$rc" -eq 124 ] && echo "(cut off after ${t}s: bench-e2e.json holds the phases measured so far)"
nvidia-smi --query-gpu=memory.used,memory.total --format=csv >> "$OUT/bench-e2e.log" 2>&1

# Decode steps run as CUDA graphs by default; the same steps launched kernel by
# kernel show what the graphs save (launch overhead: the target is under 5%).
t=$((570 - SECONDS))
if [ "$t" -gt 40 ]; then
  echo "== decode without CUDA graphs (NEMOTRON_CUDA_GRAPHS=0, ${t} s budget)"
  NEMOTRON_CUDA_GRAPHS=0 timeout "$t" ./build-gpu/nemotron_bench_e2e --device cuda --prefill 128 --decode-context 1024 \
    --streams 1,64 --decode-steps 64 --json "$OUT/bench-e2e-nographs.json" > "$OUT/bench-e2e-nographs.log" 2>&1
  grep -iE "decode|tok/s" "$OUT/bench-e2e-nographs.log" | tail -8
fi
echo "results in $OUT (${SECONDS} s)"
