/**
 * Whole MambaByte training-step throughput (AdamW step included) on the current backend, beside PyTorch
 * on the same shape. The peer is measured in the same run when it can be: Debian's python3-torch
 * (/usr/bin/python3), the peer script ../shared/anchors/peers/cpu_torch_mamba.py (--peer-script) and
 * mamba.py's pscan.py in PSCAN_DIR (never committed; see the anchors' README). Otherwise the recorded anchor
 * (data/anchors) is shown, labelled with the machine it came from, never as "this CPU". Recorded to
 * data/results/bench/train.jsonl with `peer_source`.
 *
 *   deno run -A lib/bench/train.ts [--backend wasm] [--shape 256,4,4,1024] [--steps 5] [--peer-script PATH]
 */
import { initBackend } from "../backend.ts";
import { initMambaLM, mambaByteConfig } from "../models/pretrained.ts";
import { disposeMambaLM } from "../models/mamba.ts";
import { readSplit } from "../data/bytes.ts";
import { train } from "../train/trainer.ts";
import { mambaAsLanguageModel } from "../models/registry.ts";
import { appendRecord } from "../results/store.ts";
import { ANCHORS_DIR, REPO_ROOT, RESULTS_DIR, SAMPLES_DIR } from "../paths.ts";
import { helpOrUnknown } from "../util/usage.ts";

const USAGE =
  `deno run -A lib/bench/train.ts [options]   (MambaByte training steps per second, AdamW included)
  --backend NAME   webgpu, wasm, cpu or tensorflow (default: the automatic choice)
  --shape D,L,B,T  d_model, layers, batch, length (default 256,4,4,1024)
  --steps N        timed steps after one warm-up step (default 5)
  --peer-script P  the PyTorch peer (default ../shared/anchors/peers/cpu_torch_mamba.py; run with /usr/bin/python3,
                   PSCAN_DIR naming mamba.py's pscan.py); without it the recorded anchor, labelled with its machine`;
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
// the peer: measured now, on this machine, with as many threads as the project's kernels use
const threads = Number(Deno.env.get("MAMBABYTE_THREADS") ?? navigator.hardwareConcurrency);
const script = arg("--peer-script", `${REPO_ROOT}../shared/anchors/peers/cpu_torch_mamba.py`);
let peer: { pytorch_pscan_bytes_per_s: number } | null = null;
let peerSource = "none";
const measured = await measurePeer(script, [d, layers, batch, length], threads);
if (measured) {
  peer = { pytorch_pscan_bytes_per_s: measured };
  peerSource = `same run: ${script}, ${threads} threads`;
} else {
  const anchors = JSON.parse(await Deno.readTextFile(`${ANCHORS_DIR}/cpu-pytorch-2026-11-28.json`));
  const a = (anchors.train_step as Record<string, number>[]).find((a) =>
    a.d_model === d && a.n_layer === layers && a.batch === batch && a.length === length
  );
  if (a) {
    peer = { pytorch_pscan_bytes_per_s: a.pscan_train_bytes_per_s };
    peerSource = "anchor cpu-pytorch-2026-11-28.json: a 2-core Intel Xeon, another machine";
  }
}

/** PyTorch's training bytes/s from the peer script, or undefined when it cannot run here (says why). */
async function measurePeer(path: string, shape: number[], threads: number): Promise<number | undefined> {
  try {
    await Deno.stat(path);
    const out = await new Deno.Command("/usr/bin/python3", {
      args: [path, "train", ...shape.map(String)],
      env: { THREADS: String(threads) },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const line = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
    const v = out.success ? JSON.parse(line).pscan_train_bytes_per_s : undefined;
    if (typeof v === "number") return v;
    console.error(
      `peer: ${path} gave no pscan figure (is PSCAN_DIR set to mamba.py's pscan.py?): ${
        new TextDecoder().decode(out.stderr).trim().split("\n").at(-1) ?? ""
      }`,
    );
  } catch (e) {
    console.error(`peer: not measured (${(e as Error).message}); showing the recorded anchor`);
  }
  return undefined;
}
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
  threads: String(threads),
  peer,
  peer_source: peerSource,
}, `${RESULTS_DIR}bench`);
console.log(
  `train ${info.backend} (d ${d}, ${layers} layers, batch ${batch}, length ${length}): median step ` +
    `${median.toFixed(2)} s, ${Math.round(bytesPerS)} bytes/s` +
    (peer
      ? ` (PyTorch ${Math.round(peer.pytorch_pscan_bytes_per_s)} bytes/s, ${
        (bytesPerS / peer.pytorch_pscan_bytes_per_s).toFixed(1)
      }x; ${peerSource})`
      : ""),
);
disposeMambaLM(model);
