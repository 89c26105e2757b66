#!/usr/bin/env bash
# build_and_run_attention.sh — build the attention self-test + benchmark (kernels/dev/attention/
# bench_attention.cu with the kernel sources kernels/cuda/attention*.cu) for sm_90a and run it.
#
#   bash bench/gpu/build_and_run_attention.sh [--quick] [--bench-only]
#
# Writes $OUT/attention.json (every self-test and timing), $OUT/attention.txt (the log; its tail is a
# summary table) and $OUT/attention_ptxas.txt (registers / shared memory / spills of every kernel).
# Needs nvcc (CUDA 12.x/13.x) and a Hopper GPU. Exit status: the benchmark's (non-zero if any
# self-test or cross-variant check failed). BUILD (default /tmp/attention-build) holds the objects.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/attention-out}
BUILD=${BUILD:-/tmp/attention-build}
NVCC=${NVCC:-nvcc}
mkdir -p "$OUT" "$BUILD"
FLAGS=(-std=c++17 -O3 -lineinfo --expt-relaxed-constexpr -gencode=arch=compute_90a,code=sm_90a -I kernels/cuda)
SOURCES=(kernels/cuda/attention.cu kernels/cuda/attention_decode.cu kernels/cuda/attention_decode_f16.cu
         kernels/cuda/attention_prefill.cu kernels/dev/attention/bench_attention.cu)

echo "building with $("$NVCC" --version | tail -1)"
start=$(date +%s)
pids=()
for src in "${SOURCES[@]}"; do
  obj="$BUILD/$(basename "${src%.cu}").o"
  "$NVCC" "${FLAGS[@]}" -Xptxas -v -c "$src" -o "$obj" > "$BUILD/$(basename "${src%.cu}").log" 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
cat "$BUILD"/*.log > "$OUT/attention_ptxas.txt"
if [ "$status" -ne 0 ]; then
  grep -iE " error|warning" -A3 "$OUT/attention_ptxas.txt" | head -60
  echo "build failed" | tee "$OUT/attention.txt"
  exit 1
fi
"$NVCC" -gencode=arch=compute_90a,code=sm_90a "$BUILD"/*.o -o "$BUILD/bench_attention"
echo "built in $(( $(date +%s) - start )) s; spills: $(grep -c 'bytes spill stores' "$OUT/attention_ptxas.txt") reports, $(grep -E '[1-9][0-9]* bytes spill stores' "$OUT/attention_ptxas.txt" | wc -l) with spills"

set +e
"$BUILD/bench_attention" --json "$OUT/attention.json" "$@" 2>&1 | tee "$OUT/attention.txt"
rc=${PIPESTATUS[0]}
exit "$rc"
