#!/usr/bin/env bash
# Issue 7's serving suite in one call: starts Updraft with dummy weights of $UPDRAFT_BENCH_MODEL (a folder
# with config.json + tokenizer; scripts/device/gpu-run.sh prepares Llama-3.1-8B's), waits for /health,
# and drives it with `updraft bench serve`:
#   c1 c8 c32 c128 c256   closed loop, random 512 in / 256 out, ignore_eos, at that concurrency
#   throughput-1000       1000 requests at once, random 1024 in / 512 out, ignore_eos
#   sharegpt-inf          ShareGPT-like lengths, all at once
#   sharegpt-16rps        ShareGPT-like lengths, Poisson arrivals at 16 req/s
# The server's event-loop lag is recorded for every measured run (bench/serve/loop-lag.ts, reporting on
# the SIGUSR2 the bench sends before and after it); issue 7's host target reads it at c256. Writes two files to $OUT: serve.txt (every table, the
# summary against the targets, the server's log) and serve.json (every run's vLLM-format result without
# per-request arrays, plus the lag), both rewritten after each run so a cut-off keeps what finished.
#
#   bash bench/gpu/serve.sh [--quick]
#
# Environment: UPDRAFT_BENCH_MODEL (required), DEVICE (cuda), PORT (8011), SERVE_RUNS (a subset of the
# run names; default all), UPDRAFT_BENCH_NODE_FLAGS (Node flags for the server), SERVE_BENCH_SECONDS (480:
# the whole script, server start included; each run has its own limit inside it), UPDRAFT_BENCH_SERVE_ARGS
# (more `updraft serve` flags, e.g. "--gpu-memory-utilization 0.92"). --quick: small counts and lengths,
# for checking the script on a CPU with a tiny model:
#   UPDRAFT_BENCH_MODEL=<tiny model dir> DEVICE=cpu bash bench/gpu/serve.sh --quick
set -uo pipefail
cd "$(dirname "$0")/../.."
quick=0
[[ ${1:-} == --quick ]] && quick=1
out=${OUT:-/tmp/updraft-serve-bench}
mkdir -p "$out"
txt=$out/serve.txt
json=$out/serve.json
: > "$txt"
model=${UPDRAFT_BENCH_MODEL:-}
device=${DEVICE:-cuda}
port=${PORT:-8011}
budget=${SERVE_BENCH_SECONDS:-480}
deadline=$((SECONDS + budget))
log() { echo "$*" | tee -a "$txt"; }

if [[ -z $model || ! -f $model/config.json ]]; then
  log "serve.sh: UPDRAFT_BENCH_MODEL must be a folder with config.json and a tokenizer (got '${model}')"
  exit 2
fi
# Node >= 22.12 runs the TypeScript sources: the machine's node (the GPU machine's is 24), else npm's.
node=node
if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>22||(a===22&&b>=12)?0:1)' 2>/dev/null; then
  node=$PWD/node_modules/.bin/node
fi

work=$(mktemp -d)
runs=$work/runs
mkdir -p "$runs"
server_log=$work/server.log
lag_file=$work/lag.jsonl
: > "$lag_file"
name=$(basename "$model")
commit=${UPDRAFT_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
if ((quick)); then
  server_args=(--max-num-seqs 64 --max-num-batched-tokens 2048 --max-model-len 2048)
else
  # The step limits are the device's defaults (1024 sequences, 8192 tokens per step on an H100/H200:
  # src/model/batch-limits.ts), as a user who passes no flag gets them.
  server_args=(--max-model-len 4096)
fi
# shellcheck disable=SC2206 # word splitting of the extra flags is intended
server_args+=(${UPDRAFT_BENCH_SERVE_ARGS:-})
# UPDRAFT_BENCH_NODE_FLAGS: Node/V8 flags for the server process; default --max-semi-space-size=64, as
# `npm start` and the deploy/ images run it (set it empty to measure without).
# shellcheck disable=SC2206 # word splitting of the flags is intended
node_flags=(${UPDRAFT_BENCH_NODE_FLAGS---max-semi-space-size=64})
server_cmd=("$node" "${node_flags[@]}" --import ./bench/serve/loop-lag.ts bin/updraft.js serve --model "$model" --load-format dummy
  --device "$device" --host 127.0.0.1 --port "$port" --served-model-name "$name" "${server_args[@]}")

log "serving benchmark: commit $commit, $(date -u +%FT%TZ), node $("$node" --version), device $device, model $model (dummy weights)$( ((quick)) && echo ', QUICK mode')"
log "server: ${server_cmd[*]}"
UPDRAFT_EVENT_LOOP_LAG_FILE=$lag_file "${server_cmd[@]}" > "$server_log" 2>&1 &
server_pid=$!

stop_server() {
  if kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid"
    for _ in $(seq 1 60); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$server_pid" 2>/dev/null && kill -KILL "$server_pid"
  fi
  wait "$server_pid" 2>/dev/null
  { echo "=== server log (last 40 lines)"; tail -n 40 "$server_log"; } >> "$txt"
  rm -rf "$work"
}
trap stop_server EXIT

# --- wait for /health ---------------------------------------------------------------------------------------
start=$SECONDS
until "$node" -e 'fetch(process.argv[1]).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' "http://127.0.0.1:$port/health" 2>/dev/null; do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    log "the server exited before it was healthy:"; tail -n 60 "$server_log" | tee -a "$txt"; exit 1
  fi
  if ((SECONDS - start > 300 || SECONDS > deadline)); then
    log "the server was not healthy after $((SECONDS - start)) s:"; tail -n 60 "$server_log" | tee -a "$txt"; exit 1
  fi
  sleep 1
done
log "server healthy after $((SECONDS - start)) s"
sed -n '1,12p' "$server_log" | tee -a "$txt"

# --- runs -------------------------------------------------------------------------------------------------------
# The bench signals the server (--lag-report-pid) right before and after its measured run; the server's
# second report covers exactly the run. lag_after LINES FILE: waits for that report and copies it.
lag_after() {
  local before=$1
  for _ in $(seq 1 50); do (($(wc -l < "$lag_file") >= before + 2)) && break; sleep 0.1; done
  (($(wc -l < "$lag_file") >= before + 2)) && tail -n 1 "$lag_file" > "$2"
}
merge() {
  local targets=()
  ((quick)) || targets=(--targets)
  "$node" bench/serve/merge-results.ts --runs "$runs" --out "$json" "${targets[@]}" \
    --meta "commit=$commit" --meta "device=$device" --meta "model=$model" --meta "quick=$quick" --meta "server_args=${server_args[*]}"
}
order=0
failed=0
# run NAME LIMIT_SECONDS BENCH_ARGS...: one `updraft bench serve` run, recorded under NAME unless NAME is warmup.
run() {
  local run_name=$1 limit=$2
  shift 2
  # SERVE_RUNS="c1 c256": only those runs (the warm-up always runs).
  if [[ -n ${SERVE_RUNS:-} && $run_name != warmup && " $SERVE_RUNS " != *" $run_name "* ]]; then return; fi
  local left=$((deadline - SECONDS - 10))
  if ((left < 15)); then
    log "--- $run_name: skipped, the time budget ($budget s) is spent"
    failed=1
    [[ $run_name == warmup ]] && return
    printf '{"error":"skipped: the time budget (%s s) was spent"}\n' "$budget" > "$runs/$run_name.json"
    order=$((order + 1))
    printf '%s\n' "$run_name" > "$runs/$(printf %02d $order).order"
    merge > /dev/null
    return
  fi
  ((limit > left)) && limit=$left
  log "=== $run_name (time limit $limit s): updraft bench serve $*"
  local result=$runs/$run_name.json start=$SECONDS lines engine_before
  lines=$(wc -l < "$lag_file")
  engine_before=$("$node" bench/serve/engine-stats.ts "http://127.0.0.1:$port")
  # The warm-up's first request checks the server answers; the measured runs skip that check.
  local check=(--ready-check-timeout-sec 0)
  [[ $run_name == warmup ]] && check=(--ready-check-timeout-sec 60)
  timeout --kill-after=5 $((limit + 60)) "$node" bin/updraft.js bench serve --base-url "http://127.0.0.1:$port" \
    --model "$name" --tokenizer "$model" --seed 0 --time-limit "$limit" --label updraft --lag-report-pid "$server_pid" "${check[@]}" \
    --save-result --result-filename "$result" --metadata "run=$run_name" "commit=$commit" "device=$device" "$@" 2>&1 | tee -a "$txt"
  local rc=${PIPESTATUS[0]}
  lag_after "$lines" "$runs/$run_name.lag.json"
  log "--- $run_name: exit $rc after $((SECONDS - start)) s; server event-loop lag: $(cat "$runs/$run_name.lag.json" 2>/dev/null)"
  log "--- $run_name: $("$node" bench/serve/engine-stats.ts "http://127.0.0.1:$port" --since "$engine_before")"
  if [[ $run_name == warmup ]]; then rm -f "$result" "$runs/$run_name.lag.json"; return; fi
  ((rc == 0)) || failed=1
  order=$((order + 1))
  printf '%s\n' "$run_name" > "$runs/$(printf %02d $order).order"
  merge > /dev/null
}

if ((quick)); then
  fixed=(--dataset-name random --random-input-len 64 --random-output-len 32 --ignore-eos)
  run warmup 30 "${fixed[@]}" --num-prompts 8
  for c in 1 8 32; do run "c$c" 30 "${fixed[@]}" --max-concurrency "$c" --num-prompts $((c * 2 > 4 ? c * 2 : 4)); done
  run throughput-100 60 --dataset-name random --random-input-len 128 --random-output-len 64 --ignore-eos --num-prompts 100
  run sharegpt-inf 60 --dataset-name sharegpt --num-prompts 50
  run sharegpt-16rps 60 --dataset-name sharegpt --num-prompts 32 --request-rate 16
else
  fixed=(--dataset-name random --random-input-len 512 --random-output-len 256 --ignore-eos)
  run warmup 20 --dataset-name random --random-input-len 512 --random-output-len 32 --ignore-eos --num-prompts 64
  # Counts sized to finish inside the limits at about today's speed (bench/NOTES.md, GPU run 1); a run
  # that hits its limit still reports what completed (time_limit_reached in the JSON).
  run c1 25 "${fixed[@]}" --max-concurrency 1 --num-prompts 10
  run c8 25 "${fixed[@]}" --max-concurrency 8 --num-prompts 48
  run c32 30 "${fixed[@]}" --max-concurrency 32 --num-prompts 128
  run c128 35 "${fixed[@]}" --max-concurrency 128 --num-prompts 384
  run c256 45 "${fixed[@]}" --max-concurrency 256 --num-prompts 768
  run throughput-1000 100 --dataset-name random --random-input-len 1024 --random-output-len 512 --ignore-eos --num-prompts 1000
  run sharegpt-inf 45 --dataset-name sharegpt --num-prompts 1000
  run sharegpt-16rps 60 --dataset-name sharegpt --num-prompts 800 --request-rate 16
fi

log "=== summary ($( ((quick)) && echo 'quick mode: no targets' || echo "targets from issue 7, measured on $device"))"
merge | tee -a "$txt"
log "serve.sh done in $SECONDS s"
exit $failed
