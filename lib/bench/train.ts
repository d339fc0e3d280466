/**
 * Whole MambaByte training-step throughput (AdamW step included) on the current backend, beside the
 * PyTorch anchor on the same shape (data/anchors). Recorded to data/results/bench/train.jsonl.
 *
 *   deno run -A lib/bench/train.ts [--backend wasm] [--shape 256,4,4,1024] [--steps 5]
 */
import { initBackend } from "../backend.ts";
import { initMambaLM, mambaByteConfig } from "../models/pretrained.ts";
import { disposeMambaLM } from "../models/mamba.ts";
import { readSplit } from "../data/bytes.ts";
import { train } from "../train/trainer.ts";
import { mambaAsLanguageModel } from "../models/registry.ts";
import { appendRecord } from "../results/store.ts";
import { ANCHORS_DIR, RESULTS_DIR, SAMPLES_DIR } from "../paths.ts";
import { helpOrUnknown } from "../util/usage.ts";

const USAGE =
  `deno run -A lib/bench/train.ts [options]   (MambaByte training steps per second, AdamW included)
  --backend NAME   webgpu, wasm, cpu or tensorflow (default: the automatic choice)
  --shape D,L,B,T  d_model, layers, batch, length (default 256,4,4,1024)
  --steps N        timed steps after one warm-up step (default 5)`;
helpOrUnknown(Deno.args, USAGE, "lib/bench/train.ts");

const arg = (name: string, fallback: string) => {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : fallback;
};
const [d, layers, batch, length] = arg("--shape", "256,4,4,1024").split(",").map(Number);
const steps = Number(arg("--steps", "5"));
const info = await initBackend();
const text = await readSplit(`${SAMPLES_DIR}/books/train`);
const model = initMambaLM(mambaByteConfig(d, layers), 0);
const times: number[] = [];
let last = performance.now();
await train(mambaAsLanguageModel(model), text, {
  steps: steps + 1,
  batch,
  length,
  lr: 1e-4,
  warmup: 1,
  seed: 0,
  onStep: () => {
    const now = performance.now();
    times.push((now - last) / 1000);
    last = now;
  },
});
const timed = times.slice(1).sort((a, b) => a - b); // the first step compiles and warms up
const median = timed[Math.floor(timed.length / 2)];
const bytesPerS = batch * length / median;
const anchors = JSON.parse(await Deno.readTextFile(`${ANCHORS_DIR}/cpu-pytorch-2026-11-28.json`));
const peer = (anchors.train_step as Record<string, number>[]).find((a) =>
  a.d_model === d && a.n_layer === layers && a.batch === batch && a.length === length
);
await appendRecord("train", {
  bench: "train",
  model: "mambabyte",
  d_model: d,
  n_layer: layers,
  batch,
  length,
  steps: timed.length,
  median_step_s: median,
  bytes_per_s: bytesPerS,
  step_s: timed,
  threads: Deno.env.get("MAMBABYTE_THREADS") ?? String(navigator.hardwareConcurrency),
  peer: peer ? { pytorch_pscan_bytes_per_s: peer.pscan_train_bytes_per_s } : null,
}, `${RESULTS_DIR}bench`);
console.log(
  `train ${info.backend} (d ${d}, ${layers} layers, batch ${batch}, length ${length}): median step ` +
    `${median.toFixed(2)} s, ${Math.round(bytesPerS)} bytes/s` +
    (peer
      ? ` (PyTorch on this CPU: ${peer.pscan_train_bytes_per_s} bytes/s, ${
        (bytesPerS / peer.pscan_train_bytes_per_s).toFixed(1)
      }x)`
      : ""),
);
disposeMambaLM(model);
