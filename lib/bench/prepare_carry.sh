#!/usr/bin/env bash
# Rebuilds, on a workstation that lost its ignored folders (it happens between sessions), what a device call
# of lib/bench/h200_large.sh carries beside the tracked tree, then says how large each call's carry is:
#   - the corpora (deno task data), unless data/corpora/manifest.json is there;
#   - the GPU bundle (../shared/tools/gpu-bundle.sh with the entries the device calls run, then
#     lib/bench/repack_bundle.sh), unless .gpu-bundle/activate.sh is there (REBUILD_BUNDLE=1: always;
#     rebuild it whenever imports change);
#   - the peer archive data/tmp/peer.tar.xz for lib/bench/h200_next.sh (an H200 call: mamba_ssm's sources
#     and ../shared/anchors/peers/h200_peers.py), from a state-spaces/mamba git directory named by
#     MAMBA_GIT_DIR, unless the archive is there; without either, said and skipped;
#   - one packed corpus per domain, data/tmp/DOMAIN.tar.xz (lib/bench/pack_corpora.sh; packed each time), to copy onto
#     data/tmp/gpu-corpora.tar.xz before each call (a chained call must follow at once: packing takes
#     18-60 s, longer than a machine stays idle);
#   - .commit (git rev-parse --short=12 HEAD): commit before a call.
#   bash lib/bench/prepare_carry.sh books stories ...
# Deno must be on PATH (npm install --prefix .tools deno@2.9.6; export PATH=$PWD/.tools/node_modules/.bin:$PATH).
set -euo pipefail
cd "$(git rev-parse --show-toplevel)" # ../shared and the repository's paths below are the root's
[ $# -ge 1 ] || { echo "usage: prepare_carry.sh DOMAIN [DOMAIN...] (books code stories prose latex)" >&2; exit 2; }
command -v deno > /dev/null || {
  echo "deno is not on PATH: npm install --prefix .tools deno@2.9.6 && export PATH=\$PWD/.tools/node_modules/.bin:\$PATH" >&2
  exit 2
}
limit=67108864 # 64 MiB: what a device call carries in all
[ -f data/corpora/manifest.json ] || deno task data
if [ -n "${REBUILD_BUNDLE:-}" ] || [ ! -f .gpu-bundle/activate.sh ]; then
  ../shared/tools/gpu-bundle.sh lib/cli.ts lib/bench/engine.ts lib/bench/decode_engine.ts \
    lib/bench/speculative_engine.ts lib/bench/gpu.ts tests/engine_kernels_test.ts tests/engine_decode_test.ts
  bash lib/bench/repack_bundle.sh
fi
mkdir -p data/tmp
if [ ! -f data/tmp/peer.tar.xz ]; then
  if [ -n "${MAMBA_GIT_DIR:-}" ]; then
    rm -rf .peer && mkdir -p .peer/mamba
    git --git-dir="$MAMBA_GIT_DIR" archive HEAD mamba_ssm csrc | tar -x -C .peer/mamba
    cp ../shared/anchors/peers/h200_peers.py .peer/
    tar -cJf data/tmp/peer.tar.xz .peer
  else
    echo "no data/tmp/peer.tar.xz and no MAMBA_GIT_DIR (a state-spaces/mamba git directory): an H200 call's lib/bench/h200_next.sh will lack its peer" >&2
  fi
fi
for d in "$@"; do
  bash lib/bench/pack_corpora.sh "$d" > /dev/null
  mv data/tmp/gpu-corpora.tar.xz "data/tmp/$d.tar.xz"
done
git rev-parse --short=12 HEAD > .commit
# what each call carries: the working tree as the device copies it (tracked files and untracked ones git
# does not ignore), the bundle, .commit, the peer and one corpus
tree=$(git ls-files -co --exclude-standard -z | du -cb --files0-from=- | tail -1 | cut -f1)
peer=0; [ -f data/tmp/peer.tar.xz ] && peer=$(du -b data/tmp/peer.tar.xz | cut -f1)
fixed=$(( tree + $(du -cb .gpu-bundle .commit | tail -1 | cut -f1) + peer ))
for d in "$@"; do
  total=$(( fixed + $(du -b "data/tmp/$d.tar.xz" | cut -f1) ))
  verdict=fits; [ "$total" -le "$limit" ] || verdict="DOES NOT FIT (leave the peer out, or shrink the tree)"
  echo "$d: tree $tree + bundle, peer and .commit $(( fixed - tree )) + corpus $(du -b "data/tmp/$d.tar.xz" | cut -f1) = $total of $limit bytes: $verdict"
done
echo "before a call: cp data/tmp/DOMAIN.tar.xz data/tmp/gpu-corpora.tar.xz (carry .gpu-bundle, .commit, data/tmp/gpu-corpora.tar.xz, data/tmp/peer.tar.xz)"
