#!/usr/bin/env bash
# Builds kernels/dev/matmul/bench_matmul.cu on the GPU machine (its nvcc, cuBLAS) and runs it: the
# matmul ladder's correctness checks, then each variant and cuBLAS on the Llama-3.1-8B projections.
# Writes $OUT/gemm.txt (build log, SASS summary, tables), $OUT/gemm.json (variants 0-3 and cuBLAS) and
# $OUT/gemm_v4.json (variants 4 and 6-9 and cuBLAS again).
# Run from anywhere; bench/gpu/run.sh calls it with OUT set. Extra arguments go to the benchmark
# (e.g. --m 1,16,4096 --reps 30, --no-perf).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${OUT:-/tmp/updraft-gemm}
mkdir -p "$out"
build=$(mktemp -d)
log=$out/gemm.txt
: >"$log"

echo "== build ($(nvcc --version | tail -1))" | tee -a "$log"
start=$SECONDS
if ! nvcc -std=c++17 -O3 -lineinfo -gencode=arch=compute_90a,code=sm_90a --split-compile=0 -DUD_BENCH_WITH_CUBLAS \
    -Xptxas -v -o "$build/bench_matmul" "$root/kernels/dev/matmul/bench_matmul.cu" -lcublas >"$build/build.log" 2>&1; then
  cat "$build/build.log" | tee -a "$log"
  echo "build failed" | tee -a "$log"
  exit 1
fi
echo "built in $((SECONDS - start)) s" | tee -a "$log"
# Registers / spills per matmul kernel, from ptxas.
grep -E "Compiling entry|Used [0-9]+ registers|spill" "$build/build.log" | grep -A2 "matmul\|reduce_partials" |
  sed -E 's/_ZN7updraft4cuda13matmul_detail//' | cut -c1-200 >>"$log"

# SASS: which kernels hold HGMMA (wgmma), HMMA (mma.sync), and local-memory traffic (spills).
if command -v cuobjdump >/dev/null; then
  cuobjdump --dump-sass "$build/bench_matmul" >"$build/sass.txt" 2>&1
  echo "== SASS per kernel: HGMMA HMMA LDL+STL UTMALDG" | tee -a "$log"
  awk '/Function :/ {if (name) printf "%-110s %5d %5d %5d %5d\n", name, hg, hm, ls, tma; name=$3; hg=hm=ls=tma=0}
       /HGMMA/ {hg++} /HMMA/ {hm++} /LDL|STL/ {ls++} /UTMALDG/ {tma++}
       END {if (name) printf "%-110s %5d %5d %5d %5d\n", name, hg, hm, ls, tma}' "$build/sass.txt" |
    grep -E "matmul|reduce" | sed -E 's/_ZN7updraft4cuda13matmul_detail//' | tee -a "$log"
else
  echo "(no cuobjdump: SASS summary skipped)" | tee -a "$log"
fi

# Two processes, each under a time limit: variant 4 (wgmma/TMA, never run before its first GPU call)
# runs apart, so that a hang or a device fault there cannot cost the numbers of the others.
# Exit codes: 0 all checks passed, 3 a check failed, 2 a device fault, 124 the time limit.
echo "== run: variants 0-3, 5 and cuBLAS (limit ${GEMM_LIMIT_A:-130} s)" | tee -a "$log"
timeout "${GEMM_LIMIT_A:-130}" "$build/bench_matmul" --variants 0,1,2,3,5 --json "$out/gemm.json" "$@" 2>&1 | tee -a "$log"
status_a=${PIPESTATUS[0]}
echo "bench_matmul (variants 0-3, 5) exit $status_a" | tee -a "$log"
echo "== run: variants 4, 6-9 and cuBLAS (limit ${GEMM_LIMIT_B:-150} s)" | tee -a "$log"
timeout "${GEMM_LIMIT_B:-150}" "$build/bench_matmul" --variants 4,6,7,8,9 --json "$out/gemm_v4.json" "$@" 2>&1 | tee -a "$log"
status_b=${PIPESTATUS[0]}
echo "bench_matmul (variants 4, 6-9) exit $status_b" | tee -a "$log"
rm -rf "$build"
[[ $status_a -eq 0 && $status_b -eq 0 ]]
