#!/usr/bin/env bash
# The GPU test and benchmark run, in one device `run` call, on the GPU machine (x86-64 Ubuntu, CUDA 13,
# no Node), from the repository root, with .device/ carried (made here by scripts/device/pack.sh):
#
#   bash scripts/device/gpu-run.sh [stages...]       stages: device e2e bench serve (default: device e2e bench)
#
# Unpacks Node (to /tmp/node, on the PATH) and node_modules, points the tests at the packed addon
# (UPDRAFT_NATIVE_ADDON) and the packed reference models (UPDRAFT_SHARED_MODELS), then runs
#   device  vitest run test/device        op conformance, executor and graph tests on cpu and cuda,
#                                          cuda against the native cpu backend
#   e2e     vitest run test/e2e-gpu       golden outputs through the server on cuda (when the folder exists),
#                                          then structured output on cuda (test/e2e/structured-output.test.ts)
#   bench   bash bench/gpu/run.sh         the GPU benchmarks (when the script exists)
#   serve   bash bench/gpu/serve.sh       issue 7's serving suite over HTTP (when the script exists; ~8 min,
#                                          so it runs only when named, alone: gpu-run.sh serve)
#   tp      tensor parallelism on 2 GPUs (nvidia-h200-x2; only when named): all_reduce conformance and the
#           sharded program on cuda with NCCL, TP=2 against TP=1 greedy (test/e2e-gpu/tensor-parallel-
#           cuda.test.ts), then bench/gpu/tensor-parallel.ts (batch-1 decode, batched throughput, TP=1 and 2)
# Every stage runs even when an earlier one fails, within one time budget (UPDRAFT_GPU_RUN_SECONDS,
# default 570 s, inside the tool's 600 s), each cut off when the budget runs out. Logs go to $OUT
# (at most 8 files come back): summary.txt (one line per stage, exit codes), env.txt (GPU, driver,
# Node, addon), device.txt, e2e-gpu.txt, and bench.txt / bench.json from bench/gpu/run.sh.
# Exit status: 0 when every stage that ran passed.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp/updraft-gpu-run}
mkdir -p "$out"
summary=$out/summary.txt
: > "$summary"
budget=${UPDRAFT_GPU_RUN_SECONDS:-570}
deadline=$((SECONDS + budget))
failed=0

note() { echo "$*" | tee -a "$summary"; }
left() { echo $((deadline - SECONDS)); }

# stage NAME LOGFILE COMMAND...: runs COMMAND with the time left, tee'd into $out/LOGFILE.
stage() {
  local name=$1 log=$2
  shift 2
  local limit
  limit=$(left)
  if ((limit < 15)); then
    note "SKIP  $name: the time budget ($budget s) is spent"
    failed=1
    return
  fi
  echo "=== $name (up to $limit s): $*"
  local start=$SECONDS
  timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$out/$log"
  local rc=${PIPESTATUS[0]}
  local verdict=PASS
  ((rc == 0)) || verdict=FAIL
  ((rc == 124 || rc == 137)) && verdict="FAIL (cut off by the time budget)"
  ((rc == 0)) || failed=1
  note "$verdict  $name: exit $rc after $((SECONDS - start)) s (log: $log)"
}

stages=("$@")
((${#stages[@]})) || stages=(device e2e bench)
wants() { [[ " ${stages[*]} " == *" $1 "* ]]; }

# --- set-up -------------------------------------------------------------------------------------------
if [[ ! -f .device/node.xz || ! -f .device/node_modules.tar.xz ]]; then
  note "FAIL  setup: .device/ is missing or incomplete: run scripts/device/pack.sh here and carry \".device\""
  exit 2
fi
xz -dc .device/node.xz > /tmp/node && chmod +x /tmp/node
export PATH=/tmp:$PATH
rm -rf node_modules && tar -xJf .device/node_modules.tar.xz || { note "FAIL  setup: cannot unpack node_modules"; exit 2; }
if [[ -f .device/addon/updraft.node ]]; then
  export UPDRAFT_NATIVE_ADDON=$PWD/.device/addon/updraft.node
elif [[ -f .device/addon/updraft.node.xz ]]; then
  mkdir -p /tmp/updraft-addon && xz -dc .device/addon/updraft.node.xz > /tmp/updraft-addon/updraft.node
  export UPDRAFT_NATIVE_ADDON=/tmp/updraft-addon/updraft.node
else
  note "FAIL  setup: no addon in .device/addon"
  exit 2
fi
[[ -d .device/models ]] && export UPDRAFT_SHARED_MODELS=$PWD/.device/models
# Benchmark models: config.json + tokenizer, unpacked where the benchmarks can write beside them.
if [[ -d .device/bench-models ]]; then
  for dir in .device/bench-models/*/; do
    name=$(basename "$dir")
    dest=/tmp/updraft-bench-models/$name
    rm -rf "$dest" && mkdir -p "$dest"
    for f in "$dir"*; do
      case $f in
        *.xz) xz -dc "$f" > "$dest/$(basename "${f%.xz}")" ;;
        *) cp "$f" "$dest/" ;;
      esac
    done
  done
  if [[ -d /tmp/updraft-bench-models/llama-3.1-8b ]]; then
    export UPDRAFT_BENCH_MODEL=${UPDRAFT_BENCH_MODEL:-/tmp/updraft-bench-models/llama-3.1-8b}
  fi
fi
# NCCL (tensor parallelism): PyTorch's image has it as pip's nvidia-nccl wheel, in site-packages and off
# the loader's path; the addon dlopens UPDRAFT_NCCL_LIBRARY first. NVLink multicast stays off (KINDS.md).
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
if [[ -z ${UPDRAFT_NCCL_LIBRARY:-} ]] && ! ldconfig -p 2>/dev/null | grep -q 'libnccl\.so\.2'; then
  nccl=$(python3 -c 'import nvidia.nccl, os; print(os.path.join(list(nvidia.nccl.__path__)[0], "lib", "libnccl.so.2"))' 2>/dev/null)
  [[ -f $nccl ]] || nccl=$(find /usr/local/lib /usr/lib /opt -name 'libnccl.so.2' 2>/dev/null | head -1)
  [[ -f $nccl ]] && export UPDRAFT_NCCL_LIBRARY=$nccl
fi
export CI=1 NO_COLOR=1  # plain, non-interactive output from vitest: the logs are read as text
vitest=(node node_modules/vitest/vitest.mjs run)

# --- environment ----------------------------------------------------------------------------------------
{
  echo "date: $(date -u +%FT%TZ)   commit: ${UPDRAFT_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}"
  nvidia-smi || echo "nvidia-smi failed"
  nvcc --version 2>/dev/null | tail -2
  echo "node $(node --version) at $(command -v node)"
  echo "addon: $UPDRAFT_NATIVE_ADDON"
  echo "nccl: ${UPDRAFT_NCCL_LIBRARY:-libnccl.so.2 on the loader path}; GPUs: $(nvidia-smi -L 2>/dev/null | wc -l)"
  node -e '
    const addon = require(process.env.UPDRAFT_NATIVE_ADDON);
    console.log("backends:", addon.listBackends().join(", "));
    for (const name of addon.listBackends()) {
      try {
        const device = addon.openDevice(name);
        console.log(name + ":", JSON.stringify(device.info()));
        device.close();
      } catch (error) { console.log(name + ": cannot open:", error.message); }
    }'
} 2>&1 | tee "$out/env.txt"
if grep -q '^cuda: {' "$out/env.txt"; then
  note "PASS  cuda opens: $(grep '^cuda: {' "$out/env.txt" | cut -c 7-200)"
else
  note "FAIL  cuda does not open (env.txt says why); the suites below skip it"
  failed=1
fi

# --- stages ---------------------------------------------------------------------------------------------
if wants device; then
  stage "device tests (test/device: conformance on cpu and cuda, executor, graphs, cuda vs cpu)" device.txt \
    "${vitest[@]}" test/device --reporter=verbose
fi
if wants e2e; then
  if [[ -d test/e2e-gpu ]]; then
    stage "GPU golden end-to-end tests (test/e2e-gpu)" e2e-gpu.txt "${vitest[@]}" test/e2e-gpu --reporter=verbose
    # Structured output (grammar masks through the CUDA process_logits kernel): every response validates.
    stage "structured output on cuda (test/e2e/structured-output.test.ts)" e2e-gpu.txt \
      env UPDRAFT_E2E_DEVICE=cuda "${vitest[@]}" test/e2e/structured-output.test.ts --reporter=verbose
  else
    note "SKIP  e2e: no test/e2e-gpu folder"
  fi
fi
if wants bench; then
  if [[ -f bench/gpu/run.sh ]]; then
    # bench/gpu/run.sh writes bench.txt and bench.json into $OUT itself.
    stage "GPU benchmarks (bench/gpu/run.sh)" bench-console.txt env OUT="$out" bash bench/gpu/run.sh
    [[ -s $out/bench.txt ]] && rm -f "$out/bench-console.txt"  # the same text is in bench.txt
  else
    note "SKIP  bench: no bench/gpu/run.sh"
  fi
fi

if wants tp; then
  # Tensor parallelism needs 2 GPUs and NCCL; with fewer GPUs these tests skip and the bench refuses.
  stage "tensor parallelism: all_reduce conformance and sharded programs on cuda (NCCL)" tp.txt \
    "${vitest[@]}" test/device/conformance.test.ts test/device/sharded-program.test.ts -t "all_reduce|sharded" --reporter=verbose
  stage "tensor parallelism: TP=2 against TP=1 greedy on cuda (test/e2e-gpu/tensor-parallel-cuda.test.ts)" tp.txt \
    "${vitest[@]}" test/e2e-gpu/tensor-parallel-cuda.test.ts --reporter=verbose
  if [[ -n ${UPDRAFT_BENCH_MODEL:-} ]]; then
    stage "tensor parallelism bench: TP=1 and TP=2 (bench/gpu/tensor-parallel.ts)" tp.txt \
      node bench/gpu/tensor-parallel.ts --model "$UPDRAFT_BENCH_MODEL" --json "$out/tp.json"
  fi
fi
if wants serve; then
  if [[ -f bench/gpu/serve.sh && -n ${UPDRAFT_BENCH_MODEL:-} ]]; then
    # bench/gpu/serve.sh writes serve.txt and serve.json into $OUT itself, and keeps inside the time left.
    stage "serving benchmark (bench/gpu/serve.sh)" serve-console.txt \
      env OUT="$out" SERVE_BENCH_SECONDS=$(($(left) - 20)) bash bench/gpu/serve.sh
    [[ -s $out/serve.txt ]] && rm -f "$out/serve-console.txt"  # the same text is in serve.txt
  else
    note "SKIP  serve: no bench/gpu/serve.sh or no benchmark model (.device/bench-models/llama-3.1-8b)"
  fi
fi

note "done in $SECONDS s: $( ((failed)) && echo 'SOME STAGES FAILED' || echo 'all stages passed')"
echo "--- summary"
cat "$summary"
exit $failed
