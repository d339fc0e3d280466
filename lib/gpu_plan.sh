#!/usr/bin/env bash
# Runs a scale of the compute-matched plan on the GPU machine (see README, "GPU runs"), several plan
# entries at once (one process each: the GPU is shared, each process mostly waits on kernel launches), each
# bounded in time; then copies the records, the logs and what a later call needs to $OUT.
#   bash lib/gpu_plan.sh SECONDS DOMAIN[,DOMAIN]:entry,entry DOMAIN:entry ...
# Environment:
#   GPU_PLAN_SCALE=large          the scale (default gpu)
#   GPU_PLAN_ENGINE=tfjs          what trains the runs (default native: every family on the engine)
#   GPU_PLAN_MODELS="books code"  also pack the final models of these domains ($OUT/models-DOMAIN.tar.xz:
#                                 for evaluations and decoding benchmarks in a later call)
#   GPU_PLAN_TAG=rerun            a suffix for the results directory, which then starts empty (runs trained
#                                 again on purpose)
#   GPU_PLAN_NO_CARRY=1           no checkpoint archives of runs cut short (a warm machine keeps them)
#   GPU_PLAN_RETRAIN="books/transformer_8k"  runs trained again although published (their published records
#                                 are left out of the results directory): a run whose model went with an
#                                 earlier machine before a stage that needs it evaluated it; its new record
#                                 is the latest one of the run, which every table reads
# Every process records into one directory, data/tmp/gpu/results-SCALE[-TAG]/runs.jsonl (ignored by git,
# so a warm machine keeps it), which starts from the published records of the scale: runs recorded there
# are skipped and a family's learning-rate sweep, once published, gives its runs their rate. Until a
# family's sweep is settled, keep its entries in one process: every process selecting a family plans its
# sweep, and a second process reaching a sweep run another one holds fails that run in one line.
# Merge $OUT/runs-gpu.jsonl (this call's records) and $OUT/diverged-gpu.jsonl on the workstation with
# lib/results/merge.ts.
set -uo pipefail
limit=$1; shift
out=${OUT:-/tmp/out}; mkdir -p "$out" data/tmp/gpu
# the corpus packed on the workstation (data/corpora is not tracked; the large scale's learning-rate sweep
# scores books' validation split):
#   bash lib/bench/pack_corpora.sh books code stories prose latex (or only the domains this call trains)
# unpacked again whenever the carried archive changes (.unpacked holds its checksum): a warm machine that
# unpacked one domain's corpus skipped the next call's other domain, whose runs then found no corpus
if [ -f data/tmp/gpu-corpora.tar.xz ]; then
  sum=$(sha256sum data/tmp/gpu-corpora.tar.xz | cut -c1-64)
  if [ "$(cat data/corpora/.unpacked 2>/dev/null)" != "$sum" ]; then
    mkdir -p data/corpora && tar -C data/corpora -xJf data/tmp/gpu-corpora.tar.xz && echo "$sum" > data/corpora/.unpacked
  fi
fi
# resume from checkpoints and models brought back by an earlier call
for t in carry-*.tar.xz models-*.tar.xz; do [ -f "$t" ] && tar -xJf "$t"; done
scale=${GPU_PLAN_SCALE:-gpu}
results="data/tmp/gpu/results-$scale${GPU_PLAN_TAG:+-$GPU_PLAN_TAG}"
mkdir -p "$results"
touch "$results/runs.jsonl" "$results/diverged.jsonl"
# the published records of the scale this tree carries, added to what a warm machine kept (without TAG)
if [ -z "${GPU_PLAN_TAG:-}" ]; then
  # GPU_PLAN_RETRAIN's runs: their published records stay out (also where an earlier call on this machine
  # copied them in), while a record this machine trained since stays: the run is not trained a third time
  retrain=$(mktemp); set -f
  for r in ${GPU_PLAN_RETRAIN:-}; do
    found=
    for f in data/results/runs.jsonl data/results/diverged.jsonl; do
      # the closing quote: a run whose name only begins with r is another run
      [ -f "$f" ] && grep -hF "\"run\":\"compute-matched/$scale/$r\"" "$f" >> "$retrain" && found=1
    done
    [ -n "$found" ] || echo "GPU_PLAN_RETRAIN: no published record of $r at scale $scale (DOMAIN/ENTRY, as compute-matched/$scale/ names it)" >&2
  done
  set +f
  for t in runs diverged; do
    [ -f "data/results/$t.jsonl" ] || continue
    if [ -s "$retrain" ]; then
      grep -vxFf "$retrain" "$results/$t.jsonl" > "$results/$t.kept" || true
      mv "$results/$t.kept" "$results/$t.jsonl"
    fi
    grep -F "\"scale\":\"$scale\"" "data/results/$t.jsonl" | grep -vxFf "$results/$t.jsonl" |
      { if [ -s "$retrain" ]; then grep -vxFf "$retrain"; else cat; fi; } >> "$results/$t.jsonl" || true
  done
  rm -f "$retrain"
fi
cp "$results/runs.jsonl" "$results/runs.before"
pids=()
for job in "$@"; do
  domain=${job%%:*}; models=${job#*:}
  name="${domain//,/+}-${models//,/_}${GPU_PLAN_TAG:+-$GPU_PLAN_TAG}"
  timeout -s INT "$limit" deno run -A --cached-only lib/cli.ts reproduce --scale "$scale" --no-data --no-evaluations \
    --no-figures --no-notebooks --domains "$domain" --models "$models" --results "$results" \
    --runs-dir data/checkpoints/runs --engine "${GPU_PLAN_ENGINE:-native}" ${GPU_PLAN_TIME_LEFT:+--time-left "$GPU_PLAN_TIME_LEFT"} \
    > "data/tmp/gpu/log-$name.txt" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
# this call's records only
grep -vxFf "$results/runs.before" "$results/runs.jsonl" > "$out/runs-gpu.jsonl" || true
cp "$results/diverged.jsonl" "$out/diverged-gpu.jsonl"
tar -C data/tmp/gpu -cJf "$out/logs-plan.tar.xz" $(cd data/tmp/gpu && ls log-*.txt)
for d in ${GPU_PLAN_MODELS:-}; do
  dirs=$(ls -d data/checkpoints/runs/compute-matched/"$scale"/"$d"/*/model 2>/dev/null)
  [ -n "$dirs" ] && tar -cJf "$out/models-$d.tar.xz" $dirs
done
# float16 copies of finished runs' models (export --format f16), for data/models/SCALE/DOMAIN/ENTRY where the
# notebooks find them, and for evaluations off this machine: GPU_PLAN_HALF="books/mambabyte ..." (run names
# under compute-matched/SCALE). One archive per model, since a file coming back holds at most 16 MiB. A model
# counts as sent (data/tmp/half/SCALE/RUN) only once its archive is written, so one a call could not finish
# is exported again by the next call on this (warm) machine; runs not finished here are left out.
# At most GPU_PLAN_HALF_MAX archives a call (default 7: a device call brings back 8 files, one of them the
# records); the rest wait, unsent, for the next call.
for r in ${GPU_PLAN_HALF:-}; do
  [ "$(ls "$out"/half-*.tar.xz 2>/dev/null | wc -l)" -lt "${GPU_PLAN_HALF_MAX:-7}" ] || break
  m="data/checkpoints/runs/compute-matched/$scale/$r/model"
  [ -f "$m/config.json" ] && [ ! -d "data/tmp/half/$scale/$r" ] || continue
  rm -rf data/tmp/half-work && mkdir -p "data/tmp/half-work/$scale/$(dirname "$r")" "data/tmp/half/$scale/$(dirname "$r")" &&
    deno run -A --cached-only lib/cli.ts export --model "$m" --format f16 --out "data/tmp/half-work/$scale/$r" > /dev/null &&
    tar -C data/tmp/half-work -cJf "$out/half-$scale-${r//\//_}.tar.xz.part" "$scale/$r" &&
    mv "$out/half-$scale-${r//\//_}.tar.xz.part" "$out/half-$scale-${r//\//_}.tar.xz" &&
    mv "data/tmp/half-work/$scale/$r" "data/tmp/half/$scale/$r"
done
# runs without a record (training or evaluation cut by the time limit): their checkpoints go back, one
# archive per run, for the next call to resume (not with GPU_PLAN_NO_CARRY=1: a warm machine keeps them, and
# a call's files cannot bring many back)
[ -n "${GPU_PLAN_NO_CARRY:-}" ] || (cd data/checkpoints/runs 2>/dev/null && find . -name trainer_state.json -path '*/checkpoint/*') | sed 's#^\./##; s#/checkpoint/trainer_state.json##' |
  while read -r r; do
    # finished (its record is in the run directory; a run restarted at a moved rate lost it) or diverged
    [ -f "data/checkpoints/runs/$r/record.json" ] && continue
    grep -qF "\"run\":\"$r\"" "$results/diverged.jsonl" && continue
    tar -cJf "$out/carry-${r//\//_}.tar.xz" "data/checkpoints/runs/$r/checkpoint" "data/checkpoints/runs/$r/train_log.jsonl" 2>/dev/null
  done
grep -h "bits-per-byte\|rror\|failed" data/tmp/gpu/log-*.txt | tail -40
