#!/usr/bin/env bash
# Packs the corpus domains a device call needs into data/tmp/gpu-corpora.tar.xz, with a manifest cut down
# to those domains (the whole manifest is 5.5 MB of the 64 MiB a call may carry; books' part is 24 KB), at
# xz -9e. The copy still passes `deno task data --check` (checked here before packing).
#   bash lib/bench/pack_corpora.sh books [code stories prose latex]
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: pack_corpora.sh DOMAIN [DOMAIN...]" >&2; exit 2; }
src=data/corpora
[ -f "$src/manifest.json" ] || { echo "$src/manifest.json does not exist: run deno task data" >&2; exit 2; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
DOMAINS="$*" deno eval '
const keep = new Set(Deno.env.get("DOMAINS")!.split(" "));
const m = JSON.parse(Deno.readTextFileSync(Deno.args[0]));
for (const d of keep) if (!(d in m.domains)) { console.error(`${Deno.args[0]}: no domain ${d}`); Deno.exit(2); }
m.domains = Object.fromEntries(Object.entries(m.domains).filter(([d]) => keep.has(d)));
for (const k of ["sources", "documents", "dropped"]) m[k] = m[k].filter((x: { domain: string }) => keep.has(x.domain));
Deno.writeTextFileSync(Deno.args[1], JSON.stringify(m, null, 1));
' "$src/manifest.json" "$tmp/manifest.json"
for d in "$@"; do cp -r "$src/$d" "$tmp/"; done
deno run -A lib/data/corpora/main.ts --check --out "$tmp" >/dev/null
mkdir -p data/tmp
XZ_OPT=-9e tar -C "$tmp" -cJf data/tmp/gpu-corpora.tar.xz.part manifest.json "$@"
mv data/tmp/gpu-corpora.tar.xz.part data/tmp/gpu-corpora.tar.xz
ls -l data/tmp/gpu-corpora.tar.xz
