#!/usr/bin/env bash
# build_and_run_sample.sh — build the sampling self-test + benchmark (kernels/dev/sample/bench_sample.cu
# with kernels/cuda/sample.cu and the CPU reference kernels/cpu/sample.cc) for sm_90a and run it.
#
#   bash bench/gpu/build_and_run_sample.sh [--quick]
#
# Writes $OUT/sample.txt (self-test summary and the timing table: µs per call and GB/s of logits for
# S in {1, 64, 256} x V = 128256 for greedy, temperature, top-k 50, top-p 0.9 and more),
# $OUT/sample.json (the same numbers) and $OUT/sample_ptxas.txt (registers / shared memory / spills).
# Needs nvcc (CUDA 12.x/13.x) and a Hopper GPU. Exit status: non-zero if the build or any self-test
# check failed. BUILD (default /tmp/sample-build) holds the objects.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/sample-out}
BUILD=${BUILD:-/tmp/sample-build}
NVCC=${NVCC:-nvcc}
mkdir -p "$OUT" "$BUILD"
FLAGS=(-std=c++17 -O3 -lineinfo --expt-relaxed-constexpr -gencode=arch=compute_90a,code=sm_90a -I kernels/cuda)

echo "building with $("$NVCC" --version | tail -1)"
start=$(date +%s)
status=0
"$NVCC" "${FLAGS[@]}" -Xptxas -v -c kernels/cuda/sample.cu -o "$BUILD/sample.o" > "$OUT/sample_ptxas.txt" 2>&1 || status=1
"$NVCC" "${FLAGS[@]}" -c kernels/dev/sample/bench_sample.cu -o "$BUILD/bench_sample.o" >> "$OUT/sample_ptxas.txt" 2>&1 || status=1
for src in kernels/cpu/sample.cc kernels/cpu/thread_pool.cc; do
  "$NVCC" -std=c++17 -O3 -x c++ -c "$src" -o "$BUILD/cpu_$(basename "${src%.cc}").o" >> "$OUT/sample_ptxas.txt" 2>&1 || status=1
done
if [ "$status" -ne 0 ]; then
  grep -iE "error|warning" -A3 "$OUT/sample_ptxas.txt" | head -60
  echo "build failed" | tee "$OUT/sample.txt"
  exit 1
fi
"$NVCC" -gencode=arch=compute_90a,code=sm_90a "$BUILD"/sample.o "$BUILD"/bench_sample.o "$BUILD"/cpu_*.o -lpthread \
  -o "$BUILD/bench_sample"
echo "built in $(( $(date +%s) - start )) s; $(grep -A2 'sample_kernel' "$OUT/sample_ptxas.txt" | grep -E 'registers|spill' | tr -s ' ' | paste -sd ';')"

set +e
"$BUILD/bench_sample" --txt "$OUT/sample.txt" --json "$OUT/sample.json" "$@"
exit $?
