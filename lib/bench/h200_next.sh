#!/usr/bin/env bash
# Issues 17 and 18's measurements in one device call of about 4 minutes, for the H200 (2026-12-05's calls
# got an H100 only: its numbers are recorded, the issues name the H200). For the GPU machine (README "GPU
# runs": the bundle from ../shared/tools/gpu-bundle.sh with lib/cli.ts and lib/bench/{engine,decode_engine,
# speculative_engine,gpu}.ts; ../shared/anchors/peers/h200_peers.py in .peer/ and state-spaces/mamba's
# mamba_ssm package in .peer/mamba/mamba_ssm (carry that folder alone: the tree and the bundle leave about
# 4 MB of the 64 MiB); the commit in .commit):
#   - issue 17: the 972M decode with the pass defaults (256 workgroups, 16 lanes), the queued step and pass
#     now timed in 5 alternating rounds (medians), its speculative costs, and passNormColumns=2 as a sweep
#     line;
#   - issue 18: the byte Transformer's training beside PyTorch's in the same call, and a d256x4 profile.
# NEXT_SECONDS (default 260) bounds the call: with less, the later parts (issue 18's) are cut first.
# Records come back in $OUT/logs.tgz; merge them as they are (decode_972m.jsonl -> decode_engine.jsonl,
# sweep.jsonl -> sweep/decode_gemv_pass.jsonl, spec.jsonl -> speculative_engine.jsonl, gpu.jsonl ->
# gpu.jsonl, engine_256.jsonl, engine_192_r*.jsonl and engine_mamba_256.jsonl -> engine.jsonl, the peers files -> CARD-peers-DATE.jsonl).
set -x
if [ "${1:-}" != inner ]; then
  mkdir -p $OUT/logs; timeout ${NEXT_SECONDS:-260} bash "$0" inner > $OUT/logs/trace.txt 2>&1
  cd $OUT && tar czf logs.tgz logs && rm -rf logs; exit 0
fi
source .gpu-bundle/activate.sh
export MAMBABYTE_COMMIT=$(cat .commit)
L=$OUT/logs; mkdir -p $L
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu --format=csv > $L/gpu.txt 2>&1
R="deno run -A --cached-only"
date +%s > $L/t0
timeout 60 python3 .peer/h200_peers.py --mamba .peer/mamba decode > $L/peers.jsonl 2> $L/peers.err
date +%s > $L/t1
timeout 40 $R lib/bench/decode_engine.ts --shape 1792,48 --steps-per-submit 64 --bytes 1024 --contexts 1024 --profile \
  --peers $L/peers.jsonl --out $L/decode_972m.jsonl > $L/decode_972m.out 2> $L/decode_972m.err
date +%s > $L/t2
timeout 50 $R lib/bench/speculative_engine.ts --out $L/spec.jsonl > $L/spec.out 2> $L/spec.err
date +%s > $L/t3
timeout 30 $R lib/bench/decode_engine.ts --shape 1792,48 --steps-per-submit 64 --bytes 1024 --contexts 1024 --profile \
  --gemv passNormColumns=2 --peers $L/peers.jsonl --out $L/sweep.jsonl > $L/sweep.out 2> $L/sweep.err
date +%s > $L/t4
timeout 30 python3 .peer/h200_peers.py --mamba .peer/mamba train_transformer > $L/peers_tt.jsonl 2> $L/peers_tt.err
timeout 60 $R lib/bench/gpu.ts --no-scan --models transformer --engines native --train-shapes "256,4,4,1024;512,8,16,2048" \
  --peers $L/peers_tt.jsonl --out $L/gpu.jsonl > $L/gpu.out 2> $L/gpu.err
date +%s > $L/t5
timeout 20 $R lib/bench/engine.ts --model transformer --shape 256,4,4,1024 --steps 10 --warmup 2 --profile \
  --out $L/engine_256.jsonl > $L/engine_256.out 2> $L/engine_256.err
date +%s > $L/t6
# the large scale's Transformer (d 192 x 3, batch 4 x 1,024: a few hundred attention workgroups) with 32 and
# 64 stationary rows a workgroup: whether fewer rows (more workgroups) serve small batches better
for rows in 32 64; do
  timeout 15 $R lib/bench/engine.ts --model transformer --shape 192,3,4,1024 --steps 10 --warmup 2 --profile \
    --attention-rows $rows --out $L/engine_192_r$rows.jsonl > $L/engine_192_r$rows.out 2> $L/engine_192_r$rows.err
done
# and where a large-scale MambaByte step goes (d 256 x 4, batch 4 x 1,024: the plan's most bytes)
timeout 15 $R lib/bench/engine.ts --shape 256,4,4,1024 --steps 10 --warmup 2 --profile \
  --out $L/engine_mamba_256.jsonl > $L/engine_mamba_256.out 2> $L/engine_mamba_256.err
date +%s > $L/t7
