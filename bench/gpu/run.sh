#!/usr/bin/env bash
# Every GPU benchmark in one device call: ceilings (PyTorch/cuBLAS), our GEMM, attention and sampling
# kernels against them, and the end-to-end 8B-shaped dummy model. Writes two files to $OUT (the
# device tool brings back at most 8): bench.txt (the tables) and bench.json (everything, merged).
# Run from the repo root on the GPU machine, after scripts/device/gpu-run.sh has unpacked Node.
set -uo pipefail
out=${OUT:-/tmp/updraft-bench}
mkdir -p "$out"
work=$(mktemp -d)
stage() { # name, time limit in seconds, command...
  local name=$1 limit=$2; shift 2
  echo "=== $name" | tee -a "$work/bench.txt"
  local start=$SECONDS
  timeout "$limit" "$@" 2>&1 | tee -a "$work/bench.txt"
  echo "--- $name: exit ${PIPESTATUS[0]} after $((SECONDS - start)) s" | tee -a "$work/bench.txt"
}

stage ceilings 120 bash -c "python3 bench/gpu/ceilings.py > '$work/ceilings.json' && cat '$work/ceilings.json' | head -c 400"
for kernel in gemm attention sample; do
  script=bench/gpu/build_and_run_$kernel.sh
  [[ -f $script ]] && stage "$kernel kernels" 240 env OUT="$work/$kernel" bash "$script"
done
model=${UPDRAFT_BENCH_MODEL:-.device/bench-models/llama-3.1-8b}
if [[ -d $model ]]; then
  stage "end-to-end dummy $(basename "$model")" 300 node bench/gpu/e2e.ts --model "$model" --ceilings "$work/ceilings.json" --json "$work/e2e.json"
  stage "shared prefix $(basename "$model")" 240 node bench/gpu/prefix.ts --model "$model" --json "$work/prefix.json"
fi

cp "$work/bench.txt" "$out/bench.txt"
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
