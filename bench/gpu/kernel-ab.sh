#!/usr/bin/env bash
# kernel-ab.sh — on the GPU machine, from the repo root: the kernel-level A/B runs of one session in one
# call, without the addon. Builds bench_matmul (with cuBLAS) and bench_attention in parallel, then
#  1. bench_attention --quick: the attention self-tests (every variant, FP8 included) on the defaults;
#  2. bench_attention --bench-only on ATTN_CASE with the default kernels, then again with each
#     UPDRAFT_* switch in ATTN_AB (space-separated NAME=VALUE; default none);
#  3. bench_matmul --variants GEMM_VARIANTS (default 6,9) over GEMM_M (default 512,1024,2048,8192):
#     its checks (the persistent grid cut to 1-3 CTAs included), then the timings against cuBLAS;
#     then again with each UPDRAFT_* switch in GEMM_AB (space-separated NAME=VALUE; default none).
# ATTN=0 skips steps 1-2. Writes $OUT/attention-*.txt, $OUT/gemm.txt and $OUT/gemm.json (few files: the device tool brings back
# eight at most; the attention JSONs stay in $SCRATCH). Exit 0 when every check passed.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/kernel-ab}
ATTN_CASE=${ATTN_CASE:-b=512 ctx=1152}
ATTN_AB=${ATTN_AB:-}
GEMM_VARIANTS=${GEMM_VARIANTS:-6,9}
GEMM_M=${GEMM_M:-512,1024,2048,8192}
GEMM_AB=${GEMM_AB:-}
build=$(mktemp -d)
SCRATCH=${SCRATCH:-$build}
mkdir -p "$OUT" "$SCRATCH"

nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -DUD_BENCH_WITH_CUBLAS -I native/include \
  -o "$build/bench_matmul" kernels/dev/matmul/bench_matmul.cu -lcublas >"$build/gemm-build.log" 2>&1 &
gemm_build=$!

status=0
if [[ ${ATTN:-1} != 0 ]]; then
  OUT="$SCRATCH/attention-quick" bash bench/gpu/build_and_run_attention.sh --quick >"$OUT/attention-quick.txt" 2>&1 || status=1
  tail -30 "$OUT/attention-quick.txt"
  bin=${BUILD:-/tmp/attention-build}/bench_attention
  if [[ -x $bin ]]; then
    "$bin" --bench-only --case "$ATTN_CASE" --json "$SCRATCH/attention-default.json" >"$OUT/attention-default.txt" 2>&1 || status=1
    echo "== attention, defaults: $ATTN_CASE"; tail -12 "$OUT/attention-default.txt"
    for ab in $ATTN_AB; do
      env "$ab" "$bin" --bench-only --case "$ATTN_CASE" --json "$SCRATCH/attention-${ab//=/_}.json" >"$OUT/attention-${ab//=/_}.txt" 2>&1 || status=1
      echo "== attention, $ab: $ATTN_CASE"; tail -12 "$OUT/attention-${ab//=/_}.txt"
    done
  fi
fi

if wait "$gemm_build"; then
  timeout "${GEMM_LIMIT:-300}" "$build/bench_matmul" --variants "$GEMM_VARIANTS" --m "$GEMM_M" --json "$OUT/gemm.json" \
    >"$OUT/gemm.txt" 2>&1 || status=1
  grep -vE "^  (ok|PASS)" "$OUT/gemm.txt" | tail -45
  for ab in $GEMM_AB; do
    env "$ab" timeout "${GEMM_LIMIT:-300}" "$build/bench_matmul" --variants "$GEMM_VARIANTS" --m "$GEMM_M" \
      >"$OUT/gemm-${ab//=/_}.txt" 2>&1 || status=1
    echo "== matmul, $ab"; grep -vE "^  (ok|PASS)" "$OUT/gemm-${ab//=/_}.txt" | tail -25
  done
else
  cat "$build/gemm-build.log"; status=1
fi
rm -rf "$build"
exit "$status"
