#!/usr/bin/env bash
# Runs the `gpu` scale of the compute-matched plan on the GPU machine (see README, "GPU runs"), several
# plan entries at once (one process each: the GPU is shared, each process mostly waits on kernel launches),
# each bounded in time; then copies the records and any unfinished run's checkpoint to $OUT so a later
# call can resume it.
#   bash lib/gpu_plan.sh SECONDS DOMAIN:entry,entry DOMAIN:entry ...
set -uo pipefail
limit=$1; shift
out=${OUT:-/tmp/out}; mkdir -p "$out" data/results
# the corpus subset packed on the workstation (data/corpora is not tracked)
[ -f data/tmp/gpu-corpora.tar.xz ] && mkdir -p data/corpora && tar -C data/corpora -xJf data/tmp/gpu-corpora.tar.xz
# resume from checkpoints brought back by an earlier call
[ -f carry-runs.tar.xz ] && tar -xJf carry-runs.tar.xz
pids=()
for job in "$@"; do
  domain=${job%%:*}; models=${job#*:}
  log="$out/log-${domain}-${models//,/_}.txt"
  timeout -s INT "$limit" deno run -A --cached-only lib/cli.ts reproduce --scale gpu --no-data --no-evaluations \
    --no-figures --no-notebooks --domains "$domain" --models "$models" --results "data/results/gpu-$domain-${models//,/_}" \
    > "$log" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
cat data/results/gpu-*/runs.jsonl > "$out/runs-gpu.jsonl" 2>/dev/null || true
# runs without a record (training or evaluation cut by the time limit): their checkpoints (small
# models: a few MB) go back for the next call, which resumes them
unfinished=$(cd data/checkpoints/runs 2>/dev/null && find . -name trainer_state.json -path '*/checkpoint/*' | sed 's#/checkpoint/trainer_state.json##' |
  while read -r r; do grep -q "\"run\":\"${r#./}\"" "$out/runs-gpu.jsonl" || echo "data/checkpoints/runs/${r#./}/checkpoint"; done)
[ -n "$unfinished" ] && tar -cJf "$out/carry-runs.tar.xz" $unfinished
grep -h "bits-per-byte\|error\|failed" "$out"/log-*.txt | tail -40
