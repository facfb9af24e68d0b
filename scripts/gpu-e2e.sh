#!/usr/bin/env bash
# The second call of a GPU session (the first is scripts/gpu-session.sh): the
# end-to-end benchmark at the real 9B shape. A lent machine is bare again after
# 30 s idle, so this builds what it needs itself (the core + nemotron_bench_e2e
# only, for this GPU's architecture), writes the 17.8 GB random checkpoint to
# local disk (reused when the machine is still warm), then runs prefill
# (1K/8K/32K), batch-1 decode (1K/32K context) and batched decode (1..128
# streams) within one 10-minute device call. Results: $OUT/bench-e2e.{json,log}.
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
t=$((570 - SECONDS))
echo "== nemotron_bench_e2e (${t} s budget)"
timeout "$t" ./build-gpu/nemotron_bench_e2e --device cuda --json "$OUT/bench-e2e.json" "$@" 2>&1 | tee "$OUT/bench-e2e.log"
rc=${PIPESTATUS[0]}
[ "$rc" -eq 124 ] && echo "(cut off after ${t}s: bench-e2e.json holds the phases measured so far)"
nvidia-smi --query-gpu=memory.used,memory.total --format=csv >> "$OUT/bench-e2e.log" 2>&1
echo "results in $OUT (${SECONDS} s)"
