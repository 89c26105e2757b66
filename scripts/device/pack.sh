#!/usr/bin/env bash
# Packs what a GPU run needs into .device/ (git-ignored), here, on the development machine:
#   .device/addon/updraft.node        the addon built with the CUDA backend (or updraft.node.xz, when the
#                                     carry budget needs it smaller)
#   .device/node.xz                   Node 24 (the GPU machine has no Node), by ../shared/tools/device-node
#   .device/models/                   the reference checkpoints (../shared does not travel), by the same tool
#   .device/node_modules.tar.xz       the runtime node_modules the tests need (no Node binary, no
#                                     TypeScript, no build tools, no client-only packages)
#   .device/bench-models/<name>/      bench/configs/<name>/config.json + its tokenizer (xz-compressed)
# then prints the sizes and the device `run` call (scripts/device/README.md). Everything carried must stay
# under ~55 MiB (the device tool's limit is 64 MiB for the whole tree).
#
# Usage: bash scripts/device/pack.sh          (from anywhere in the checkout; needs `npm ci` done)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
budget_mib=55

step() { echo "--- $*"; }
die() { echo "pack.sh: $*" >&2; exit 1; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
bytes_of() { du -sb "$@" 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'; }

[[ -x node_modules/.bin/node ]] || die "node_modules is missing: run npm ci first"
[[ -x ../shared/tools/device-node ]] || die "../shared/tools/device-node not found (it packs Node and the reference models)"
grep -qx '.device/' .gitignore || die ".device/ must be in .gitignore"
mkdir -p .device

if [[ ${1:-} == --snapshot ]]; then
  # Build and carry the last commit, not the working tree (others may be mid-edit): the addon is built
  # from `git archive HEAD`, and .device/snapshot.tar.gz holds that tree for run-snapshot.sh.
  # The addon depends only on native/ and kernels/: when their trees at HEAD equal those of the last
  # snapshot build, that build is reused (a full CUDA build takes minutes on two cores). Otherwise only
  # the files that differ are replaced in the snapshot (their new mtime makes the build recompile
  # exactly them), so a change to one backend rebuilds that backend, not everything.
  snap=/tmp/updraft-snapshot
  # One commit for everything below: a commit landing meanwhile (a helper's) must not give an addon of
  # one commit next to the tree of another.
  rev=$(git rev-parse HEAD)
  native_trees="$(git rev-parse "$rev:native" "$rev:kernels" | tr '\n' ' ')"
  addon=$snap/build/native/Release/updraft.node
  if [[ -f $addon && -f $snap/.native-trees && $(cat "$snap/.native-trees") == "$native_trees" ]]; then
    step "reusing the snapshot addon in $snap (native/ and kernels/ unchanged since it was built)"
  else
    step "building the addon of HEAD ($(git rev-parse --short "$rev")) with the CUDA backend"
    fresh=$(mktemp -d)
    git archive "$rev" | tar -x -C "$fresh"
    if [[ -d $snap/build ]]; then
      (cd "$fresh" && find . -type f) | while read -r f; do
        cmp -s "$fresh/$f" "$snap/$f" || { mkdir -p "$(dirname "$snap/$f")" && cp "$fresh/$f" "$snap/$f"; }
      done
      (cd "$snap" && find . \( -path ./build -o -path ./node_modules \) -prune -o -type f -print) | while read -r f; do
        [[ -e $fresh/$f || $f == ./build.log || $f == ./.native-trees ]] || rm -f "$snap/$f"
      done
      rm -rf "$fresh"
    else
      rm -rf "$snap" && mv "$fresh" "$snap"
    fi
    [[ -e $snap/node_modules ]] || ln -s "$PWD/node_modules" "$snap/node_modules"
    (cd "$snap" && UPDRAFT_CUDA=ON npm run --silent build:native > build.log 2>&1) ||
      { tail -30 "$snap/build.log"; die "the snapshot's addon did not build"; }
    echo "$native_trees" > "$snap/.native-trees"
  fi
  mkdir -p .device && git archive --format=tar.gz "$rev" > .device/snapshot.tar.gz
  git rev-parse --short "$rev" > .device/snapshot.commit  # the tarball has no .git: results name the commit from this
else
  step "building the addon with the CUDA backend (UPDRAFT_CUDA=ON: fails if nvcc is missing)"
  UPDRAFT_CUDA=ON npm run --silent build:native
  addon=build/native/Release/updraft.node
fi
[[ -f $addon ]] || die "$addon was not built"
backends=$(env -u UPDRAFT_NATIVE_ADDON node_modules/.bin/node -e \
  "console.log(require('$(readlink -f "$addon")').listBackends().join(','))")
[[ ,$backends, == *,cuda,* ]] || die "the built addon lists only [$backends]: the CUDA backend was not compiled in"
echo "addon backends: $backends"

step "Node 24 and the reference models (../shared/tools/device-node)"
packed=$(../shared/tools/device-node)
echo "${packed%%$'\n'*}"

step "runtime node_modules"
# Not needed to run vitest, the server or the benchmarks on the GPU machine: the Node binary itself
# (node.xz carries it), TypeScript and type packages (vitest strips types itself), the addon's build
# tools, and the HTTP-client packages only test/e2e (not run there) uses.
excludes=(node_modules/node node_modules/.bin/node node_modules/typescript node_modules/.bin/tsc
  node_modules/.bin/tsserver node_modules/@types node_modules/cmake-js node_modules/.bin/cmake-js
  node_modules/node-addon-api node_modules/node-api-headers node_modules/openai node_modules/.bin/openai
  node_modules/eventsource-parser node_modules/.cache node_modules/.vite node_modules/.vitest
  node_modules/.vitest-cache node_modules/.vite-temp)
tarball=.device/node_modules.tar.xz
if [[ ! -f $tarball || package-lock.json -nt $tarball || node_modules/.package-lock.json -nt $tarball ]]; then
  tar -cf - "${excludes[@]/#/--exclude=}" node_modules | xz -T0 -6 > "$tarball.tmp"
  mv "$tarball.tmp" "$tarball"
else
  echo "up to date ($tarball is newer than package-lock.json)"
fi

step "benchmark models (bench/configs + tokenizers from ../shared/tokenizers)"
tokenizer_for() { # bench config folder name -> ../shared/tokenizers folder
  case $1 in
    llama-3*|llama3*) echo llama3.2 ;;
    llama-2*|llama2*) echo llama2 ;;
    qwen*) echo qwen2.5 ;;
    phi-3*|phi3*) echo phi3-mini ;;
    *) echo "" ;;
  esac
}
rm -rf .device/bench-models
for config in bench/configs/*/config.json; do
  [[ -f $config ]] || continue
  name=$(basename "$(dirname "$config")")
  tok=$(tokenizer_for "$name")
  if [[ -z $tok || ! -f ../shared/tokenizers/$tok/tokenizer.json ]]; then
    echo "warning: no tokenizer known for bench/configs/$name; skipped" >&2
    continue
  fi
  mkdir -p ".device/bench-models/$name"
  cp "$config" ".device/bench-models/$name/config.json"
  cp "../shared/tokenizers/$tok/tokenizer_config.json" ".device/bench-models/$name/" 2>/dev/null || true
  xz -T0 -9 -c "../shared/tokenizers/$tok/tokenizer.json" > ".device/bench-models/$name/tokenizer.json.xz"
  echo "$name: config + $tok tokenizer"
done

step "addon"
mkdir -p .device/addon
rm -f .device/addon/updraft.node .device/addon/updraft.node.xz
cp "$addon" .device/addon/updraft.node

# What the device run carries: tracked and untracked-not-ignored files, plus .device.
tree_bytes() { git ls-files -z -co --exclude-standard | xargs -0 du -cb 2>/dev/null | awk '$2 == "total" { s += $1 } END { print s + 0 }'; }
total() { echo $(( $(tree_bytes) + $(bytes_of .device) )); }
if (( $(total) > budget_mib * 1048576 )); then
  echo "over ${budget_mib} MiB: carrying the addon xz-compressed (gpu-run.sh unpacks it)"
  xz -T0 -6 -c .device/addon/updraft.node > .device/addon/updraft.node.xz
  rm .device/addon/updraft.node
fi

step "sizes"
for item in .device/node.xz .device/node_modules.tar.xz .device/models .device/bench-models .device/addon; do
  [[ -e $item ]] && printf '  %-32s %s\n' "$item" "$(mib "$(bytes_of "$item")")"
done
printf '  %-32s %s\n' "working tree (travels too)" "$(mib "$(tree_bytes)")"
sum=$(total)
printf '  %-32s %s (keep under %s MiB; the tool refuses over 64 MiB)\n' "total carried" "$(mib "$sum")" "$budget_mib"
(( sum <= 63 * 1048576 )) || die "the carried tree is too large for the device tool"

cat <<EOF

Packed. Run on the GPU machine with the device tool's run (one call, about 10 minutes at most):
  command: bash scripts/device/gpu-run.sh
  carry:   [".device"]
  timeout_s: 600
Logs come back in \$OUT (summary.txt first); see scripts/device/README.md.
EOF
