#!/usr/bin/env bash
# Every GPU benchmark in one device call: ceilings (PyTorch/cuBLAS), our GEMM, attention and sampling
# kernels against them, and the end-to-end 8B-shaped dummy model. Writes two files to $OUT (the
# device tool brings back at most 8): bench.txt (the tables) and bench.json (everything, merged).
# Run from the repo root on the GPU machine, after scripts/device/gpu-run.sh has unpacked Node.
set -uo pipefail
out=${OUT:-/tmp/updraft-bench}
mkdir -p "$out"
: > "$out/bench.txt"
work=$(mktemp -d)
# Results land in $out after every stage, so a run cut off by the device's time limit keeps them.
merge_json() {
python3 - "$work" "$out/bench.json" <<'PY'
import json, os, sys
work, dest = sys.argv[1], sys.argv[2]
merged = {}
for root, _, files in os.walk(work):
    for name in files:
        if name.endswith('.json'):
            path = os.path.join(root, name)
            key = os.path.relpath(path, work)[:-5].replace(os.sep, '/')
            try:
                merged[key] = json.load(open(path))
            except Exception as error:  # keep going: report what broke
                merged[key] = {"error": str(error)}
json.dump(merged, open(dest, 'w'), indent=1)
PY
}
stage() { # name, time limit in seconds, command...
  local name=$1 limit=$2; shift 2
  echo "=== $name" | tee -a "$out/bench.txt"
  local start=$SECONDS
  timeout "$limit" "$@" 2>&1 | tee -a "$out/bench.txt"
  echo "--- $name: exit ${PIPESTATUS[0]} after $((SECONDS - start)) s" | tee -a "$out/bench.txt"
  merge_json
}

model=${UPDRAFT_BENCH_MODEL:-.device/bench-models/llama-3.1-8b}
# Which benchmarks, in order (BENCH_STAGES="e2e gemm" runs just those); ceilings always come first.
stages=${BENCH_STAGES:-e2e prefix gemm attention sample}
stage ceilings 120 bash -c "python3 bench/gpu/ceilings.py > '$work/ceilings.json' && head -c 400 '$work/ceilings.json'"
for name in $stages; do
  case $name in
    e2e) [[ -d $model ]] && stage "end-to-end dummy $(basename "$model")" 300 node bench/gpu/e2e.ts --model "$model" --ceilings "$work/ceilings.json" --json "$work/e2e.json" ;;
    e2e-gemv5) [[ -d $model ]] && stage "end-to-end dummy $(basename "$model"), decode GEMV v5" 300 env UPDRAFT_GEMM_DECODE=5 node bench/gpu/e2e.ts --model "$model" --ceilings "$work/ceilings.json" --json "$work/e2e_gemv5.json" ;;
    # The same with every kernel launched plainly (pdl.cuh): an A/B of programmatic dependent launch.
    e2e-nopdl) [[ -d $model ]] && stage "end-to-end dummy $(basename "$model"), UPDRAFT_PDL=0" 300 env UPDRAFT_PDL=0 node bench/gpu/e2e.ts --model "$model" --ceilings "$work/ceilings.json" --json "$work/e2e_nopdl.json" ;;
    # Per-kernel device time of decode steps under Nsight Compute (PROFILE_CASES="batch:prompt ...").
    profile) [[ -d $model ]] && stage "kernel profile of decode steps" 500 bash bench/gpu/kernel-profile.sh "$model" "$work/profile" ;;
    prefix) [[ -d $model ]] && stage "shared prefix $(basename "$model")" 240 node bench/gpu/prefix.ts --model "$model" --json "$work/prefix.json" ;;
    # Not in the default list: needs 2 GPUs (it refuses on one). BENCH_STAGES="tp" on nvidia-h200-x2.
    tp) [[ -d $model ]] && stage "tensor parallel TP=1,2 $(basename "$model")" 420 node bench/gpu/tensor-parallel.ts --model "$model" --json "$work/tp.json" ;;
    gemm | attention | sample)
      script=bench/gpu/build_and_run_$name.sh
      [[ -f $script ]] && stage "$name kernels" 300 env OUT="$work/$name" bash "$script" ;;
    *) echo "unknown bench stage $name" | tee -a "$work/bench.txt" ;;
  esac
done

