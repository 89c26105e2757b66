#!/usr/bin/env bash
# On the GPU machine: runs gpu-run.sh on the commit that `pack.sh --snapshot` packed (.device/snapshot.tar.gz),
# not on the working tree that travelled with the call. Same arguments as gpu-run.sh.
set -euo pipefail
[[ -f .device/snapshot.tar.gz ]] || { echo "no .device/snapshot.tar.gz: run scripts/device/pack.sh --snapshot here" >&2; exit 2; }
dir=/tmp/updraft-run
rm -rf "$dir" && mkdir -p "$dir"
tar -xzf .device/snapshot.tar.gz -C "$dir"
ln -s "$PWD/.device" "$dir/.device"
cd "$dir"
# The unpacked tree has no .git; gpu-run.sh and bench/gpu/serve.sh label their results with this.
export UPDRAFT_COMMIT=$(cat .device/snapshot.commit 2>/dev/null || echo unknown)
exec bash scripts/device/gpu-run.sh "$@"
