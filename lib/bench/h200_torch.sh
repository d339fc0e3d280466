#!/usr/bin/env bash
# Issue 25's GPU measurement in one device call: the torch engine's job (lib/runs/job.ts) for MambaByte
# d1024x16, batch 8 x 8,192 bytes per GPU, on 1 H200 and (on the two-GPU machine, kind nvidia-h200-x2) on 2
# (NCCL, NVLink multicast off), beside the single-GPU peer measured in the same call; then a job killed
# mid-run and started again (on 2 GPUs where there are two, else on 1), whose curve must continue the
# uninterrupted one; then the one-GPU job again with --fsdp (its parameters, gradients and moments sharded by
# fully_shard, over one process here), whose curve must follow the DDP one.
# Needs: the bundle (../shared/tools/gpu-bundle.sh lib/cli.ts), a copy of state-spaces/mamba in .peer/mamba and
# ../shared/anchors/peers/h200_peers.py in .peer/ (its `train` builds mamba_ssm's CUDA scan into .peer-build/;
# the jobs load mamba_ssm's model from .peer/mamba through MAMBA_SSM_SOURCE, lib/torch/train.py), the commit
# in .commit. The bytes are the tracked sample's (scale smoke): this measures speed, not learning. Logs and
# every job's train_log.jsonl come back in $OUT/logs.tgz.
set -x
source .gpu-bundle/activate.sh
export MAMBABYTE_COMMIT=$(cat .commit) NCCL_NVLS_ENABLE=0
L=$OUT/logs; mkdir -p $L
rm -rf jobs # a machine still held keeps the last call's jobs: job refuses an existing --out
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu --format=csv > $L/gpu.txt 2>&1
G=$(nvidia-smi -L | wc -l)
timeout 300 python3 .peer/h200_peers.py --mamba .peer/mamba train > $L/peers.jsonl 2> $L/peers.err
export PYTHONPATH=$PWD/.peer-build${PYTHONPATH:+:$PYTHONPATH} MAMBA_SSM_SOURCE=$PWD/.peer/mamba
JOB="deno run -A --cached-only lib/cli.ts job --engine torch --device cuda --model mambabyte --size small \
  --config {\"d_model\":1024,\"n_layer\":16} --data books --scale smoke --length 8192 --steps 30 --warmup 5 --checkpoint-every 10 --name d1024x16"
$JOB --gpus 1 --batch 8 --out jobs/one > $L/job_one.out 2>&1
timeout 200 bash jobs/one/run.sh > $L/one.out 2>&1
if [ "$G" -ge 2 ]; then
  $JOB --gpus 2 --batch 16 --out jobs/two > $L/job_two.out 2>&1
  timeout 200 bash jobs/two/run.sh > $L/two.out 2>&1
  KILLED="--gpus 2 --batch 16" REF=two
else
  KILLED="--gpus 1 --batch 8" REF=one
fi
$JOB $KILLED --out jobs/killed > $L/job_killed.out 2>&1
setsid bash jobs/killed/run.sh > $L/killed1.out 2>&1 &
pid=$!
for _ in $(seq 900); do
  [ "$(wc -l < jobs/killed/runs/d1024x16/train_log.jsonl 2>/dev/null || echo 0)" -ge 17 ] && break
  sleep 0.2
done
kill -9 -- -$pid; wait $pid
timeout 200 bash jobs/killed/run.sh > $L/killed2.out 2>&1
$JOB --gpus 1 --batch 8 --fsdp --out jobs/fsdp > $L/job_fsdp.out 2>&1
timeout 150 bash jobs/fsdp/run.sh > $L/fsdp.out 2>&1
for j in one two killed fsdp; do
  [ -f jobs/$j/runs/d1024x16/train_log.jsonl ] && cp jobs/$j/runs/d1024x16/train_log.jsonl $L/$j.train_log.jsonl
done
REF=$REF python3 - > $L/summary.json <<'PY'
import json, os
def log(j):
    p = f"jobs/{j}/runs/d1024x16/train_log.jsonl"
    return [json.loads(l) for l in open(p)] if os.path.exists(p) else None
def rate(e):  # bytes/s from step 10 to the last (start-up and the first steps excluded)
    if not e or len(e) < 12: return None
    a, b = e[9], e[-1]
    return (b["bytes"] - a["bytes"]) / (b["wall_s"] - a["wall_s"])
one, two, killed, fsdp, ref = log("one"), log("two"), log("killed"), log("fsdp"), log(os.environ["REF"])
EVAL = "jobs/one/runs/d1024x16/eval.json"  # train.py names the implementation there (not in the log lines)
peer = [json.loads(l) for l in open(os.environ["OUT"] + "/logs/peers.jsonl") if '"train"' in l]
peer = next((p for p in peer if p["d_model"] == 1024), None)
r1, r2 = rate(one), rate(two)
print(json.dumps({
    "one_gpu_bytes_per_s": r1, "two_gpu_bytes_per_s": r2, "scaling": r2 and r1 and r2 / r1,
    "peer_bytes_per_s": peer and peer["bytes_per_s"],
    "one_gpu_vs_peer": peer and r1 and r1 / peer["bytes_per_s"],
    "per_gpu_vs_peer": peer and r2 and r2 / 2 / peer["bytes_per_s"],
    "resumed_against": os.environ["REF"],
    "resumed_max_abs_loss_diff": ref and killed and max(abs(a["loss"] - b["loss"]) for a, b in zip(ref, killed)),
    "fsdp_bytes_per_s": rate(fsdp),
    "fsdp_max_abs_loss_diff": one and fsdp and max(abs(a["loss"] - b["loss"]) for a, b in zip(one, fsdp)),
    "steps": [len(x) if x else 0 for x in (one, two, killed, fsdp)],
    "implementation": os.path.exists(EVAL) and json.load(open(EVAL)).get("implementation"),
}))
PY
cd $OUT && tar czf logs.tgz logs
