#!/usr/bin/env bash
# An optional GPU-session call: the small CUDA kernel tests under
# compute-sanitizer (memcheck for out-of-bounds/misaligned accesses, racecheck
# and synccheck for shared-memory hazards), which the timing-oriented first call
# (scripts/gpu-session.sh) has no time for. Reuses build-gpu/ when the machine
# is still warm, else builds the test binary. Log: $OUT/sanitizer.log.
#   usage: bash scripts/gpu-sanitize.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-out}"
mkdir -p "$OUT"
command -v compute-sanitizer > /dev/null || { echo "compute-sanitizer not on PATH"; exit 1; }
if [ ! -x build-gpu/nemotron_native_tests ]; then
  cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '.')
  case "$cc" in 90) ARCH="90a-real" ;; "") ARCH="80-real" ;; *) ARCH="${cc}-real" ;; esac
  echo "== build nemotron_native_tests (arch $ARCH)"
  NEMOTRON_CUDA=ON NEMOTRON_CUDA_ARCHS="$ARCH" cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release > "$OUT/san-configure.log" 2>&1 &&
    cmake --build build-gpu -j"$(nproc)" --target nemotron_native_tests > "$OUT/san-build.log" 2>&1 ||
    { tail -20 "$OUT/san-build.log"; exit 1; }
fi
# Small shapes only: the sanitizers slow kernels down 10-100x (not the 70k-key
# decode or lm_head cases). Each test name is a substring filter of the binary.
run() {  # tool test
  t=$((560 - SECONDS)); [ $t -lt 20 ] && { echo "(no time left for $1 $2)"; return; }
  [ $t -gt 120 ] && t=120
  echo "== $1: $2"
  timeout "$t" compute-sanitizer --tool "$1" --error-exitcode 9 ./build-gpu/nemotron_native_tests "$2" 2>&1 |
    tee -a "$OUT/sanitizer.log" | grep -E "ERROR SUMMARY|========= (Invalid|Race|Barrier|Error)|native:" | head -20
}
: > "$OUT/sanitizer.log"
for t in cuda_attention_odd_shapes cuda_attention_incremental cuda_linear_odd_shapes_bf16 cuda_conv1d_silu_matches_cpu \
         cuda_ssm_scan_chunked_matches_cpu_small_shapes cuda_gated_rms_norm_matches_cpu cuda_embed_matches_cpu; do
  run memcheck "$t"
done
for t in cuda_attention_incremental cuda_linear_odd_shapes_bf16 cuda_ssm_scan_chunked_matches_cpu_small_shapes; do
  run racecheck "$t"
  run synccheck "$t"
done
echo "log in $OUT/sanitizer.log (${SECONDS} s)"
