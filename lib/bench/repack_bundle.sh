#!/usr/bin/env bash
# Shrinks the GPU bundle (../shared/tools/gpu-bundle.sh) so that it, the tracked tree and a packed corpus fit
# the 64 MiB (67.1 MB) a device call carries: the Deno binary and the Deno cache recompressed at xz -9e
# (the cache without SQLite's -wal and -shm side files, which a fresh cache rebuilds). activate.sh unpacks
# both as before. Measured 2026-12-05: 40.7 MB -> 38.6 MB.
#   bash lib/bench/repack_bundle.sh [.gpu-bundle]
set -euo pipefail
b=${1:-.gpu-bundle}
[ -f "$b/deno.xz" ] && [ -f "$b/deno_dir.tar.xz" ] || { echo "$b: no deno.xz and deno_dir.tar.xz (run ../shared/tools/gpu-bundle.sh first)" >&2; exit 2; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
before=$(du -sb "$b" | cut -f1)
tar -C "$tmp" -xJf "$b/deno_dir.tar.xz"
# the cache's SQLite files sit at deno_dir's top level (npm packages below may hold any file name)
find "$tmp/deno_dir" -maxdepth 1 \( -name '*-wal' -o -name '*-shm' \) -delete
tar -C "$tmp" -cf - deno_dir | xz -9e -T0 > "$tmp/deno_dir.tar.xz"
xz -dc "$b/deno.xz" | xz -9e -T0 > "$tmp/deno.xz"
# both checked before they replace the originals
xz -t "$tmp/deno_dir.tar.xz" "$tmp/deno.xz"
mv "$tmp/deno_dir.tar.xz" "$tmp/deno.xz" "$b/"
echo "$b: $before -> $(du -sb "$b" | cut -f1) bytes"
