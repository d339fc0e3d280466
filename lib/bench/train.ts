/**
 * Whole MambaByte training-step throughput (AdamW included) on this machine, for each engine asked for,
 * beside PyTorch on the same shape measured in the same run when it can be: Debian's python3-torch
 * (/usr/bin/python3), the peer script ../shared/anchors/peers/cpu_torch_mamba.py (--peer-script) and
 * mamba.py's pscan.py in PSCAN_DIR (never committed; see the anchors' README). Otherwise the recorded
 * anchor (data/anchors) is shown, labelled with the machine it came from, never as "this CPU".
 *
 * Each engine trains through the trainer (lib/train/trainer.ts): one warm-up run of one step, then a timed
 * run of `--steps` steps (the trainer's wall time, the engine's creation excluded; the native engine
 * reports losses in windows, so steps are timed together, not one by one). For the native engine on the
 * CPU, one more step is profiled op by op: milliseconds and GFLOP/s per kernel class (products: their
 * exact FLOPs; scan and conv: the project's FLOP count; the rest, norms, cross-entropy and AdamW, memory
 * traffic more than arithmetic: milliseconds only), beside OpenBLAS's sgemm through PyTorch on the same
 * machine and threads at the step's product shapes. One record per engine in data/results/bench/train.jsonl with `peer_source`.
 *
 *   deno run -A lib/bench/train.ts [--backend wasm] [--shape 256,4,4,1024] [--steps 5] [--engines native,tfjs]
 *                                   [--peer-script PATH]
 */
import { initBackend } from "../backend.ts";
import { initMambaLM, mambaByteConfig } from "../models/pretrained.ts";
import { disposeMambaLM, initParameters } from "../models/mamba.ts";
import { dims } from "../models/mamba_config.ts";
import { readSplit } from "../data/bytes.ts";
import { train } from "../train/trainer.ts";
import { TRAIN_ENGINES, type TrainEngine } from "../train/steps.ts";
import { mambaAsLanguageModel } from "../models/registry.ts";
import { MambaEngine } from "../engine/mamba.ts";
import { ByteBatcher } from "../data/bytes.ts";
import { appendRecord } from "../results/store.ts";
import { ANCHORS_DIR, REPO_ROOT, RESULTS_DIR, SAMPLES_DIR } from "../paths.ts";
import { helpOrUnknown } from "../util/usage.ts";
import { threadCount } from "../kernels/wasm/pool.ts";

const USAGE =
  `deno run -A lib/bench/train.ts [options]   (MambaByte training steps per second, AdamW included)
  --backend NAME   webgpu, wasm, cpu or tensorflow (default: the automatic choice)
  --shape D,L,B,T  d_model, layers, batch, length (default 256,4,4,1024)
  --steps N        timed steps, after a warm-up run of one step (default 5)
  --engines LIST   engines to time, of ${TRAIN_ENGINES.join(", ")} (default native,tfjs)
  --peer-script P  the PyTorch peer (default ../shared/anchors/peers/cpu_torch_mamba.py; run with /usr/bin/python3,
                   PSCAN_DIR naming mamba.py's pscan.py); without it the recorded anchor, labelled with its machine`;
helpOrUnknown(Deno.args, USAGE, "lib/bench/train.ts");

const arg = (name: string, fallback: string) => {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : fallback;
};
const [d, layers, batch, length] = arg("--shape", "256,4,4,1024").split(",").map(Number);
const steps = Number(arg("--steps", "5"));
const engines = arg("--engines", "native,tfjs").split(",") as TrainEngine[];
for (const e of engines) {
  if (!TRAIN_ENGINES.includes(e)) {
    console.error(`lib/bench/train.ts: --engines: "${e}" is not one of ${TRAIN_ENGINES.join(", ")}`);
    Deno.exit(2);
  }
}
const info = await initBackend();
const text = await readSplit(`${SAMPLES_DIR}/books/train`);
// the peer runs with as many threads as the project's kernels use
const threads = threadCount();

/** Seconds per step of `engine`: a one-step warm-up run, then `steps` steps timed by the trainer. */
async function timeSteps(engine: TrainEngine): Promise<{ stepS: number; name: string }> {
  const run = async (n: number) => {
    const model = initMambaLM(mambaByteConfig(d, layers), 0);
    try {
      return await train(mambaAsLanguageModel(model), text, {
        steps: n,
        batch,
        length,
        lr: 1e-4,
        warmup: 1,
        seed: 0,
        engine,
      });
    } finally {
      disposeMambaLM(model);
    }
  };
  await run(1);
  const r = await run(steps);
  return { stepS: r.wall_s / steps, name: r.engine };
}

/** The CPU engine's step op by op: ms per kernel class, and GFLOP/s of the products. */
async function cpuProfile() {
  const config = mambaByteConfig(d, layers);
  const engine = await MambaEngine.create({
    config,
    params: initParameters(config, 0),
    batch,
    length,
    backend: "wasm",
  });
  try {
    const batcher = new ByteBatcher(text, batch, length, 0);
    await engine.step(batcher.next(), 1e-4); // warm-up
    await engine.flush();
    const ops = await engine.profile(batcher.next(), 1e-4);
    const classOf = (label: string) =>
      label.startsWith("gemm")
        ? "products"
        : label.startsWith("scan") || label === "packBC"
        ? "scan"
        : label.startsWith("conv")
        ? "conv"
        : "rest";
    const classes: Record<string, { ms: number; gflops?: number; flops: number }> = {};
    for (const o of ops) {
      const c = classes[classOf(o.label)] ??= { ms: 0, flops: 0 };
      c.ms += o.ms;
      c.flops += o.flops;
    }
    // the scan's and the conv's FLOPs by the project's count (models/registry.ts mambaTrainFlopsPerToken:
    // per token and layer, forward 9 e n for the scan plus 5 e for the gate, which the scan kernels apply,
    // and 2 k e for the conv; training 3x the forward); the products' are exact (2 M N K each)
    const { e, n, k } = dims(config), tokens = batch * length;
    classes.scan.flops = 3 * (9 * e * n + 5 * e) * tokens * layers;
    classes.conv.flops = 3 * 2 * k * e * tokens * layers;
    for (const c of Object.values(classes)) {
      if (c.flops) c.gflops = Math.round(c.flops / c.ms / 1e6 * 10) / 10;
      c.ms = Math.round(c.ms * 10) / 10;
    }
    const products = ops.filter((o) => o.label.startsWith("gemm")).map((o) => ({
      label: o.label,
      ms: Math.round(o.ms * 10) / 10,
      gflops: Math.round(o.flops / o.ms / 1e6 * 10) / 10,
    }));
    return { classes, products, total_ms: Math.round(ops.reduce((a, o) => a + o.ms, 0) * 10) / 10 };
  } finally {
    engine.destroy();
  }
}

/** PyTorch's training bytes/s from the peer script, or undefined when it cannot run here (says why). */
async function measurePeer(path: string, shape: number[]): Promise<number | undefined> {
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

/** OpenBLAS sgemm GFLOP/s through PyTorch at the step's product shapes (M, N, K), or undefined. */
async function measureSgemm(): Promise<Record<string, number> | undefined> {
  const e = 2 * d, T = batch * length;
  const shapes: Record<string, number[]> = {
    "in_proj (T, 2e, d)": [T, 2 * e, d],
    "out_proj (T, d, e)": [T, d, e],
    "in_proj weight grad (2e, d, T)": [2 * e, d, T],
    "1024^3": [1024, 1024, 1024],
  };
  const code = `import json, sys, time, torch
torch.set_num_threads(${threads})
out = {}
for name, (M, N, K) in json.loads(sys.argv[1]).items():
    a, b = torch.randn(M, K), torch.randn(K, N)
    for _ in range(2): a @ b
    n, t = 0, time.perf_counter()
    while n < 3 or time.perf_counter() - t < 1: a @ b; n += 1
    out[name] = round(2 * M * N * K * n / (time.perf_counter() - t) / 1e9, 1)
print(json.dumps(out))`;
  try {
    const r = await new Deno.Command("/usr/bin/python3", {
      args: ["-c", code, JSON.stringify(shapes)],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (r.success) return JSON.parse(new TextDecoder().decode(r.stdout).trim().split("\n").at(-1)!);
    console.error(`sgemm peer: ${new TextDecoder().decode(r.stderr).trim().split("\n").at(-1)}`);
  } catch (err) {
    console.error(`sgemm peer: not measured (${(err as Error).message})`);
  }
  return undefined;
}

const script = arg("--peer-script", `${REPO_ROOT}../shared/anchors/peers/cpu_torch_mamba.py`);
const timed: { engine: string; stepS: number; profile?: Awaited<ReturnType<typeof cpuProfile>> }[] = [];
for (const e of engines) {
  console.error(`timing the ${e} engine...`);
  const t = await timeSteps(e);
  const profile = t.name.startsWith("native (wasm") ? await cpuProfile() : undefined;
  timed.push({ engine: t.name, stepS: t.stepS, profile });
}
console.error("measuring the PyTorch peer (minutes)...");
let peer: { pytorch_pscan_bytes_per_s: number } | null = null;
let peerSource = "none";
const measured = await measurePeer(script, [d, layers, batch, length]);
if (measured) {
  peer = { pytorch_pscan_bytes_per_s: measured };
  peerSource = `same run: ${script.replace(REPO_ROOT, "")}, ${threads} threads`;
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
const sgemm = timed.some((t) => t.profile) ? await measureSgemm() : undefined;
for (const t of timed) {
  const bytesPerS = batch * length / t.stepS;
  await appendRecord("train", {
    bench: "train",
    model: "mambabyte",
    d_model: d,
    n_layer: layers,
    batch,
    length,
    steps,
    engine: t.engine,
    mean_step_s: t.stepS,
    bytes_per_s: bytesPerS,
    threads: String(threads),
    peer,
    peer_source: peerSource,
    ...(t.profile ? { kernel_classes: t.profile.classes, products: t.profile.products } : {}),
    ...(t.profile && sgemm ? { openblas_sgemm_gflops: sgemm } : {}),
  }, `${RESULTS_DIR}bench`);
  console.log(
    `train ${info.backend}, ${t.engine} (d ${d}, ${layers} layers, batch ${batch}, length ${length}): ` +
      `${t.stepS.toFixed(2)} s per step, ${Math.round(bytesPerS)} bytes/s` +
      (peer
        ? ` (PyTorch ${Math.round(peer.pytorch_pscan_bytes_per_s)} bytes/s, ${
          (bytesPerS / peer.pytorch_pscan_bytes_per_s).toFixed(1)
        }x; ${peerSource})`
        : ""),
  );
  if (t.profile) {
    const c = t.profile.classes;
    console.log(
      `  per step: ${
        Object.entries(c).map(([k, v]) => `${k} ${v.ms} ms${v.gflops ? ` (${v.gflops} GFLOP/s)` : ""}`).join(
          ", ",
        )
      }` + (sgemm ? `; OpenBLAS sgemm ${JSON.stringify(sgemm)} GFLOP/s` : ""),
    );
  }
}
