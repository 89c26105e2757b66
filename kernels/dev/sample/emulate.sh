#!/usr/bin/env bash
# Builds kernels/dev/sample/emulate.cc (the CUDA sample kernel's device code run on the host, see
# emu_cuda.h) with 1024 threads per block (as on the GPU) and with 64 (more warps per element, other
# chunk edges), runs both against the CPU reference. Needs only g++. Pass --quick for fewer rows.
set -euo pipefail
cd "$(dirname "$0")/../../.."
out=${TMPDIR:-/tmp}/updraft-sample-emulate
mkdir -p "$out"
for threads in 1024 64; do
  g++ -std=c++17 -O2 -U_FORTIFY_SOURCE -ffp-contract=off -Wall -Wextra -Wno-unknown-pragmas -DUPDRAFT_SAMPLE_THREADS=$threads \
    kernels/dev/sample/emulate.cc kernels/cpu/sample.cc kernels/cpu/thread_pool.cc -lpthread -o "$out/emulate-$threads"
done
for threads in 1024 64; do
  echo "== $threads threads per block"
  "$out/emulate-$threads" "$@"
done
