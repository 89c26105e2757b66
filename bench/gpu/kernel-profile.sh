#!/usr/bin/env bash
# Per-kernel device time of steady decode steps, measured with Nsight Compute (ncu) on the GPU
# machine: for each case "batch:prompt" it runs bench/gpu/decode-case.ts under ncu, skips the launches
# of loading, prefill and the first decode steps, times the next PROFILE_LAUNCHES kernels (a few
# steps) and summarises them by kernel and grid with bench/gpu/kernel-profile.py. The steps run eagerly
# (--enforce-eager): ncu counts a replayed graph as one launch, so --launch-skip would not land in the
# decode steps; a kernel's own time is the same either way. ncu runs each kernel alone (no overlap with its neighbours, no launch
# gap), caches left as they are, clocks left alone (METHOD.md). So: the sum per step is the kernels'
# own time, and the step's wall time minus it is what launches and gaps cost.
#
#   PROFILE_CASES="1:128 1:640 8:512" bash bench/gpu/kernel-profile.sh MODEL_DIR OUT_DIR
set -uo pipefail
model=$1
out=$2
mkdir -p "$out"
ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
[[ -x $ncu ]] || { echo "no ncu on this machine" >&2; exit 2; }
skip=${PROFILE_SKIP:-12000}
count=${PROFILE_LAUNCHES:-1100}
for spec in ${PROFILE_CASES:-1:128 1:640 8:640}; do
  batch=${spec%%:*}
  prompt=${spec#*:}
  name="b${batch}_p${prompt}${PROFILE_TAG:+_$PROFILE_TAG}"
  echo "=== kernel profile: batch $batch, $prompt-token prompts (launches $skip .. $((skip + count)))"
  # Enough steps that the window lies in steady decode: ~340 kernels a step.
  tokens=$(( (skip + count) / 300 + 40 ))
  "$ncu" --clock-control none --cache-control none --graph-profiling node --target-processes all \
    --metrics gpu__time_duration.sum --launch-skip "$skip" --launch-count "$count" \
    --csv --page raw --print-units base --log-file "$out/$name.csv" \
    node bench/gpu/decode-case.ts --model "$model" --batch "$batch" --prompt "$prompt" --tokens "$tokens" --enforce-eager \
    > "$out/$name.stdout" 2> "$out/$name.stderr"
  echo "ncu exit $?"; tail -n 2 "$out/$name.stdout"
  python3 bench/gpu/kernel-profile.py "$out/$name.csv" | tee "$out/$name.txt" ||
    { echo "--- head of $name.csv:"; head -c 1500 "$out/$name.csv"; echo "--- tail of stderr:"; tail -c 1500 "$out/$name.stderr"; }
done
