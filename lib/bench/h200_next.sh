#!/usr/bin/env bash
# The measurements the engine's last changes wait for, in one device call (about 8 minutes), for the GPU
# machine (README "GPU runs": the bundle from ../shared/tools/gpu-bundle.sh with lib/cli.ts,
# lib/bench/{engine,decode_engine,speculative_engine,gpu}.ts, tests/engine_{kernels,decode}_test.ts; a copy
# of state-spaces/mamba in .peer/mamba and ../shared/anchors/peers/h200_peers.py in .peer/):
#   - the rows GEMV (A in registers) checked against the JS twins on the H200, then the 972M pass of 8 bytes
#     over a step with it on and off and two of its settings (issue 17: <= 1.5x asked);
#   - speculative decoding's costs at the paper's shapes;
#   - the byte Transformer's training (issue 18: d256x4 >= 0.5x PyTorch; columnSum was 18% of that step);
#   - d256x4 decoding (unchanged path; a control).
# Logs and JSONL records (with provenance) come back in $OUT/logs.tgz; merge the records into
# data/results/bench/ (decode_engine.jsonl, speculative_engine.jsonl, gpu.jsonl, engine.jsonl; the --gemv sweep
# into sweep/decode_gemv_rows.jsonl) as they are: lines are copied, never edited.
set -x
source .gpu-bundle/activate.sh
export MAMBABYTE_COMMIT=$(cat .commit)
L=$OUT/logs; mkdir -p $L
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu --format=csv > $L/gpu.txt 2>&1
R="deno run -A --cached-only"
MAMBABYTE_TEST_BACKENDS=webgpu,js timeout 120 deno test -A --cached-only --no-check tests/engine_kernels_test.ts \
  --filter "several rows" > $L/test_kernels.out 2>&1
MAMBABYTE_TEST_BACKENDS=webgpu timeout 120 deno test -A --cached-only --no-check tests/engine_decode_test.ts \
  --filter "pass of k" > $L/test_decode.out 2>&1
timeout 200 python3 .peer/h200_peers.py --mamba .peer/mamba train_transformer decode > $L/peers.jsonl 2> $L/peers.err
$R lib/bench/decode_engine.ts --shape 1792,48 --steps-per-submit 64 --bytes 2048 --contexts 1024,65536 --profile \
  \
  --gemv rowsKernel=true,rowsOutputs=8 --peers $L/peers.jsonl --out $L/decode_972m.jsonl \
  > $L/decode_972m.out 2> $L/decode_972m.err
$R lib/bench/speculative_engine.ts --out $L/spec.jsonl > $L/spec.out 2> $L/spec.err
$R lib/bench/gpu.ts --no-scan --models transformer --engines native --train-shapes "256,4,4,1024;512,8,16,2048" \
  --peers $L/peers.jsonl --out $L/gpu.jsonl > $L/gpu.out 2> $L/gpu.err
$R lib/bench/engine.ts --model transformer --shape 256,4,4,1024 --profile --out $L/engine.jsonl \
  > $L/engine.out 2> $L/engine.err
$R lib/bench/decode_engine.ts --shape 256,4 --steps-per-submit 64 --bytes 4096 --contexts 1024,65536 --profile \
  --peers $L/peers.jsonl --out $L/decode_256.jsonl > $L/decode_256.out 2> $L/decode_256.err
cd $OUT && tar czf logs.tgz logs
