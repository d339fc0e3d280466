#!/usr/bin/env bash
# One device call of the large scale (issue 6/6): lib/gpu_plan.sh for about 9 minutes, each family's books
# entries in one process (its sweep first, then its ladder and seeds), and only this call's records and
# logs brought back in $OUT/records.tgz (runs cut short keep their checkpoints on a warm machine, which the
# next call resumes; archives of them are too large to come back, so a fresh machine starts them over).
# Carry: .gpu-bundle (../shared/tools/gpu-bundle.sh lib/cli.ts), .commit (git rev-parse --short=12 HEAD),
# data/tmp/gpu-corpora.tar.xz (bash lib/bench/pack_corpora.sh with the domains of LARGE_DOMAINS, below: each
# with its splits and a manifest cut to them; packed at xz -9e books is 4.75 MB, code 5.5, stories 2.5,
# prose 3.85, latex 4.2, all five 20.7). The tree, the bundle and the corpus must fit 64 MiB (67.1 MB):
# after `bash lib/bench/repack_bundle.sh` the bundle is 38.6 MB (40.7 as built), and with the tree at
# 22.2 MB (MambaByte's float16 model and the large-scale notebook pages committed) about 6.3 MB are left:
# books alone, or code, or latex, or stories with prose (6.35 MB: check `du -cb` before a call). The published records in data/results travel with the tree: runs already recorded
# are skipped and settled sweeps give their families' rates.
# Back here: deno run -A lib/results/merge.ts runs runs-gpu.jsonl; ... merge.ts diverged diverged-gpu.jsonl;
# with LARGE_FINAL=1 also ... merge.ts extrapolation extrapolation-gpu.jsonl and ... merge.ts noise noise-gpu.jsonl
# (the noise figures and verdict read the largest scale comparing MambaByte with the subword Mamba, so one
# model's large-scale records do not hide the smaller scale's comparison);
# half-large-books_ENTRY.tar.xz (a float16 model each, about 3-8 MB since a tied head is stored once):
# `tar -C data/models -xJf` those of at most 10 MB that the notebooks read (mambabyte or a seed of it, under
# its own name: findTrainedModel takes an entry's seeds; mamba_subword_equal_bytes, 5.6 MB, only once the
# tree has room for it beside the bundle and a corpus, above) to commit them; for the
# evaluation stages, `tar -C DIR -xJf` each and move DIR/large/books/ENTRY to
# data/checkpoints/runs/compute-matched/large/books/ENTRY/model (weights rounded to float16: say so).
if [ "${1:-}" != inner ]; then
  mkdir -p "$OUT/records"
  timeout "${LARGE_SECONDS:-560}" bash "$0" inner > "$OUT/records/trace.txt" 2>&1
  # here, not in the inner script: a call whose inner part ran into its limit still brings back its
  # records (written when training stopped) and the float16 models whose archives were finished
  cp /tmp/plan-out/runs-gpu.jsonl /tmp/plan-out/diverged-gpu.jsonl /tmp/plan-out/logs-plan.tar.xz "$OUT/records/"
  cp /tmp/plan-out/extrapolation-gpu.jsonl /tmp/plan-out/noise-gpu.jsonl /tmp/plan-out/logs-stages.tar.xz \
    "$OUT/records/" 2>/dev/null # LARGE_FINAL's evaluation stages, where they ran
  cp /tmp/plan-out/half-*.tar.xz "$OUT/" 2>/dev/null # one file each beside records.tgz (8 files come back)
  cd "$OUT" && tar czf records.tgz records && rm -rf records; exit 0
fi
set -x
source .gpu-bundle/activate.sh
export MAMBABYTE_COMMIT=$(cat .commit)
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem --format=csv
# this call's files only (a warm machine keeps the last call's)
rm -rf /tmp/plan-out && mkdir -p /tmp/plan-out
# the models notebooks 06-07 read, in float16, from whichever of these runs finished on this machine
# (and those the evaluation stages read: the subword Mamba or its first seed for noise, the context-8192 pair for extrapolation)
# and the other domains' MambaByte and subword Mamba, for the noise stage on every domain (at most seven
# archives come back beside records.tgz: the first finished in this order)
export GPU_PLAN_HALF="books/mambabyte books/mambabyte_seed1 books/mambabyte_seed2 books/mamba_subword_equal_bytes books/mamba_subword books/mambabyte_8k books/transformer_8k books/mamba_subword_seed1 books/transformer"
for d in code stories prose latex; do GPU_PLAN_HALF="$GPU_PLAN_HALF $d/mambabyte $d/mamba_subword"; done
# training stops 75 s before the call's limit: the records, logs and float16 exports run after it.
# LARGE_FINAL=1 (a session's last call, whose machine goes back after it): start no run that the speed
# recorded for runs like it says cannot finish in this call (reproduce --time-left), since its checkpoint would be lost
if [ "${LARGE_FINAL:-}" = 1 ] && [ $(( ${LARGE_SECONDS:-560} - 90 )) -gt 0 ]; then
  export GPU_PLAN_TIME_LEFT=$(( ${LARGE_SECONDS:-560} - 90 ))
fi
# LARGE_DOMAINS="books,stories": the domains this call trains, the ones packed into the carried corpus (its
# runs in the plan's order, each entry on the domains it has). Two processes, each family's entries in one
# of them (a family's sweep, then its ladder and seeds, in order), so that runs finish within calls (below).
D=${LARGE_DOMAINS:-books}
JOBS=("$D:mambabyte,mambabyte_0.375,mambabyte_8k,transformer,transformer_equal_params,transformer_8k"
  "$D:megabyte,perceiver_ar,transformer_subword,mamba_subword,mamba_subword_equal_bytes")
# LARGE_JOBS="books:mambabyte_8k books:mambabyte ...": the processes spelled out instead (gpu_plan.sh's
# DOMAIN:entry,entry, space-separated on one line), when a family's entries need not wait on one another
# (once its sweep is published): an entry with its seeds in one process, another entry in the next.
# Fewer processes finish runs within a call: alone on an H100 a top budget took 162-163 s (MambaByte on code,
# MegaByte on books: 2026-12-06, calls 1 and 6), against 607-1,040 s beside five to seven others, and the
# card's total was about the same (4.9 TFLOP/s with three processes, call 2-3); a run still in progress
# when a machine goes is lost. `--models` takes entries: an entry's seeds run with it.
[ -n "${LARGE_JOBS:-}" ] && read -r -a JOBS <<< "$LARGE_JOBS"
OUT=/tmp/plan-out GPU_PLAN_SCALE=large GPU_PLAN_NO_CARRY=1 bash lib/gpu_plan.sh $(( ${LARGE_SECONDS:-560} - 75 )) "${JOBS[@]}"
# LARGE_FINAL=1: what is left of the call once no run can start goes to the evaluation stages (extrapolation,
# then noise; lib/runs/stages.ts) of the runs whose models are on this machine, the committed float16 copies
# standing in where a run's own model went with an earlier machine (a seed's for its entry: the stage's
# stand-in). Each stage records as it goes and the next pass finishes what a limit cut. The published
# records of the scale seed the results directory, so nothing evaluated before is evaluated again; this
# call's new records come back as extrapolation-gpu.jsonl and noise-gpu.jsonl.
if [ "${LARGE_FINAL:-}" = 1 ]; then
  R=data/tmp/gpu/results-large
  for m in data/models/large/*/*; do
    d="data/checkpoints/runs/compute-matched/large/${m#data/models/large/}/model"
    [ -f "$m/config.json" ] && [ ! -e "$d" ] && mkdir -p "$(dirname "$d")" && cp -r "$m" "$d"
  done
  for t in extrapolation noise; do
    touch "$R/$t.jsonl"
    grep -F '"scale":"large"' "data/results/$t.jsonl" | grep -vxFf "$R/$t.jsonl" >> "$R/$t.jsonl" || true
    cp "$R/$t.jsonl" "$R/$t.before"
  done
  # extrapolation takes at most half, so noise gets its turn (each resumes next time where it stopped);
  # then extrapolation again with what noise left (nothing to do is a few seconds: what is recorded is skipped)
  for pass in extrapolation noise extrapolation-again; do
    t=${pass%-again}
    left=$(( ${LARGE_SECONDS:-560} - SECONDS - 45 ))
    [ "$pass" = extrapolation ] && left=$(( left / 2 ))
    [ "$left" -gt 30 ] || continue
    # noise: the paper's pair only (MambaByte, the subword Mamba); the byte Transformer's eleven settings took
    # what was left of 2026-12-06b's last call and its model went with the machine (three settings recorded)
    kinds=(); [ "$t" = noise ] && kinds=(--kinds mambabyte,mamba_subword)
    timeout "$left" deno run -A --cached-only lib/runs/stages.ts "$t" --scale large --results "$R" \
      --runs-dir data/checkpoints/runs "${kinds[@]}" > "data/tmp/gpu/log-stage-$pass.txt" 2>&1
    tail -5 "data/tmp/gpu/log-stage-$pass.txt"
  done
  for t in extrapolation noise; do
    grep -vxFf "$R/$t.before" "$R/$t.jsonl" > "/tmp/plan-out/$t-gpu.jsonl" || true
  done
  logs=$(cd data/tmp/gpu && ls log-stage-*.txt 2>/dev/null)
  [ -n "$logs" ] && tar -C data/tmp/gpu -cJf /tmp/plan-out/logs-stages.tar.xz $logs
fi
