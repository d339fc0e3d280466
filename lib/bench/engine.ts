/**
 * Times training steps on the native engine (lib/engine/mamba.ts; with --model, the baselines of
 * lib/engine/transformer.ts) and prints one JSON line per shape: bytes/s, wall ms per step, the host's ms per step (encoding and submitting, what the CPU spends)
 * beside the GPU's ms per step (timestamp queries around each step's compute pass), the GPU memory the
 * engine allocated, the dispatches per step, achieved TFLOP/s; with --profile also GPU ms per kernel
 * (one extra step run with a pass and timestamps per dispatch).
 *
 *   deno run -A --cached-only lib/bench/engine.ts --shape 512,8,16,2048 [--shape D,L,B,T ...]
 *     --shape d_model,n_layer,batch,length   (repeatable; default 512,8,16,2048)
 *     --steps N          timed steps (default 20), after --warmup N (default 3)
 *     --readback-every N losses read back every N steps (default 10)
 *     --profile          also GPU time per kernel label
 *     --backend NAME     webgpu (default), wasm (the CPU engine: WebAssembly kernels), js (the plain-JS
 *                        twins: slow), plan (no device: dispatch
 *                        counts and memory of what webgpu would run)
 *     --allow-software   accept a software WebGPU adapter (llvmpipe; for trying the bench on a CPU machine)
 *     --model KIND       mambabyte (default), transformer, perceiver_ar or megabyte: the family's config at
 *                        that width and depth (lib/models/mod.ts baselineConfig: MegaByte's global model is
 *                        d_model x n_layer, its local one in the paper's proportions), its defaults otherwise
 *                        (heads of 64, PerceiverAR's 256 latents, MegaByte's patches of 8)
 *     --attention IMPL   the baselines' attention kernels: auto (default: tiled where they fit), tiled, rows
 *     --attention-rows R the tiled kernels' stationary rows a workgroup: auto (default: 64 where they fit), 32, 64
 *     --vocab V          vocabulary (default 256: bytes; else a subword Mamba or Transformer)
 *     --split-k 0|1      split k of the weight gradients' GEMMs (default 1)
 *     --lr X             learning rate (default 1e-3)
 *     --timing 0|1       GPU timestamps around each step (default 1 on webgpu)
 *     --one-by-one       diagnostic: one step with each dispatch in its own submission, naming each on
 *                        stderr before it runs (the last name printed is the kernel a device hangs on)
 *     --out FILE         also append the JSON lines, with provenance, to FILE (e.g. data/results/bench/engine.jsonl)
 * Progress (engine created, warm-up, timed steps) goes to stderr, so a hang shows where it is.
 * Needs nothing beyond the repository and Deno's cache (no registry): imports are local or already cached.
 */
import { MambaEngine } from "../engine/mamba.ts";
import { TransformerEngine } from "../engine/transformer.ts";
import type { ArenaEngine, StepStats } from "../engine/training.ts";
import { type EngineBackendName, PlanBackend } from "../engine/backend.ts";
import { initParameters } from "../models/mamba.ts";
import { parseMambaConfig } from "../models/mamba_config.ts";
import { createModel, mambaTrainFlopsPerToken } from "../models/registry.ts";
import { baselineConfig } from "../models/mod.ts";
import { initBackend } from "../backend.ts";
import {
  type AttentionImpl,
  type AttentionRows,
  getAttentionImpl,
  getAttentionRows,
  setAttentionImpl,
  setAttentionRows,
} from "../kernels/webgpu/attention.ts";
import { disposeModel, type ModelKind, readParameters } from "../models/lm.ts";
import type { TransformerConfig } from "../models/transformer_config.ts";
import type { MegaByteConfig } from "../models/megabyte_config.ts";
import { asPerceiverAR } from "../models/perceiver_ar.ts";
import { ByteBatcher } from "../data/bytes.ts";
import { benchProvenance } from "../results/store.ts";
import { getGemmConfig } from "../kernels/webgpu/gemm.ts";

interface Options {
  shapes: [number, number, number, number][];
  steps: number;
  warmup: number;
  readbackEvery: number;
  profile: boolean;
  backend: EngineBackendName;
  model: ModelKind;
  allowSoftware: boolean;
  vocab: number;
  splitK: boolean;
  lr: number;
  out?: string;
  timing: boolean;
  oneByOne: boolean;
}

function parse(args: string[]): Options {
  const o: Options = {
    shapes: [],
    steps: 20,
    warmup: 3,
    readbackEvery: 10,
    profile: false,
    backend: "webgpu",
    model: "mambabyte",
    allowSoftware: false,
    vocab: 256,
    splitK: true,
    lr: 1e-3,
    timing: true,
    oneByOne: false,
  };
  const num = (flag: string, v: string | undefined, min = 1) => {
    const x = Number(v);
    if (!Number.isFinite(x) || x < min) throw new Error(`${flag}: expected a number >= ${min}, got "${v}"`);
    return x;
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i], v = args[i + 1];
    if (a === "--shape") {
      const s = (v ?? "").split(",").map(Number);
      if (s.length !== 4 || !s.every((x) => Number.isInteger(x) && x >= 1)) {
        throw new Error(`--shape: expected d_model,n_layer,batch,length (e.g. 512,8,16,2048), got "${v}"`);
      }
      o.shapes.push(s as [number, number, number, number]);
      i++;
    } else if (a === "--steps") o.steps = num(a, v), i++;
    else if (a === "--warmup") o.warmup = num(a, v, 0), i++;
    else if (a === "--readback-every") o.readbackEvery = num(a, v), i++;
    else if (a === "--profile") o.profile = true;
    else if (a === "--backend") o.backend = v as EngineBackendName, i++;
    else if (a === "--model") o.model = v as ModelKind, i++;
    else if (a === "--attention") setAttentionImpl(v as AttentionImpl), i++;
    else if (a === "--attention-rows") setAttentionRows(v === "auto" ? v : Number(v) as AttentionRows), i++;
    else if (a === "--allow-software") o.allowSoftware = true;
    else if (a === "--vocab") o.vocab = num(a, v, 2), i++;
    else if (a === "--split-k") o.splitK = v !== "0", i++;
    else if (a === "--lr") o.lr = num(a, v, 0), i++;
    else if (a === "--out") o.out = v, i++;
    else if (a === "--timing") o.timing = v !== "0", i++;
    else if (a === "--one-by-one") o.oneByOne = true;
    else if (a === "--help" || a === "-h") {
      console.log(new TextDecoder().decode(Deno.readFileSync(new URL(import.meta.url))).split("*/")[0]);
      Deno.exit(0);
    } else throw new Error(`unknown option "${a}" (--help lists them)`);
  }
  if (!["webgpu", "wasm", "js", "plan"].includes(o.backend)) {
    throw new Error(`--backend: webgpu, wasm, js or plan`);
  }
  if (!ENGINE_MODELS.includes(o.model)) throw new Error(`--model: one of ${ENGINE_MODELS.join(", ")}`);
  if (o.model !== "mambabyte" && o.vocab !== 256) {
    if (o.model !== "transformer") throw new Error(`--vocab: ${o.model} reads bytes (256)`);
    o.model = "transformer_subword";
  }
  if (!o.shapes.length) o.shapes.push([512, 8, 16, 2048]);
  return o;
}

const ENGINE_MODELS: ModelKind[] = ["mambabyte", "transformer", "perceiver_ar", "megabyte"];

/** The engine, and the training FLOPs per token, of one bench shape (random parameters, seed 0). */
async function createEngine(
  o: Options,
  [d, L, b, l]: [number, number, number, number],
): Promise<{ engine: ArenaEngine; flopsPerToken: number; config: Record<string, unknown> }> {
  const common = {
    batch: b,
    length: l,
    backend: o.backend,
    allowSoftwareGpu: o.allowSoftware,
    readbackEvery: o.readbackEvery,
    timing: o.backend === "webgpu" && o.timing,
  };
  if (o.model === "mambabyte") {
    const config = parseMambaConfig({ d_model: d, n_layer: L, vocab_size: o.vocab }, "--shape");
    const engine = await MambaEngine.create({
      ...common,
      config,
      params: initParameters(config, 0),
      splitK: o.splitK,
    });
    return { engine, flopsPerToken: mambaTrainFlopsPerToken(config), config: { ...config } };
  }
  // a baseline: the TF.js model initialises the parameters (on TF.js's CPU backend), the engine trains them
  await initBackend({ backend: "cpu", quiet: true });
  const extra = o.model === "transformer_subword" ? { vocab_size: o.vocab } : {};
  const model = createModel(o.model, baselineConfig(o.model, { d_model: d, n_layer: L }, extra), 0);
  try {
    const config = model.config as unknown as TransformerConfig | MegaByteConfig;
    const engine = await TransformerEngine.create({
      ...common,
      config,
      params: await readParameters(model),
      latents: o.model === "perceiver_ar" ? asPerceiverAR(model).config.num_latents : undefined,
    });
    return { engine, flopsPerToken: model.trainFlopsPerToken(l), config: { ...config } };
  } finally {
    disposeModel(model);
  }
}

/** Training text for the batches: the repository's README (English prose and tables), repeated. */
function trainingBytes(minBytes: number): Uint8Array {
  let text: Uint8Array;
  try {
    text = Deno.readFileSync(new URL("../../README.md", import.meta.url));
  } catch {
    text = new TextEncoder().encode("The quick brown fox jumps over the lazy dog. ".repeat(1000));
  }
  const out = new Uint8Array(Math.max(minBytes, text.length));
  for (let i = 0; i < out.length; i += text.length) out.set(text.subarray(0, out.length - i), i);
  return out;
}

async function benchShape(o: Options, [d, L, b, l]: [number, number, number, number]) {
  const tokens = b * l;
  const t0 = performance.now();
  const { engine, flopsPerToken, config } = await createEngine(o, [d, L, b, l]);
  const createMs = performance.now() - t0;
  const say = (s: string) => console.error(`engine ${d}x${L} b${b} l${l}: ${s}`);
  say(`created in ${round(createMs)} ms`);
  const dispatches = engine.dispatches();
  const record: Record<string, unknown> = {
    bench: "engine",
    model: o.model,
    shape: { d_model: d, n_layer: L, batch: b, length: l, vocab: o.vocab },
    config,
    ...(o.model === "mambabyte" ? {} : { attention: getAttentionImpl(), attention_rows: getAttentionRows() }),
    backend: o.backend,
    device: engine.backend.device,
    dispatches_per_step: dispatches.total,
    dispatches_by_kernel: dispatches.byLabel,
    gpu_bytes: engine.backend.allocatedBytes,
    create_ms: round(createMs), // buffers, pipelines (compiled here), dispatch lists, parameter upload
    split_k: o.splitK,
    matmul: getGemmConfig(), // the GEMM's settings (MAMBABYTE_GEMM), as gpu.ts records them
  };
  try {
    if (o.backend === "plan") {
      const list = PlanBackend.dispatches(engine.stepPrograms);
      record.workgroups_per_step = list.reduce((s, x) => s + x.groups[0] * x.groups[1] * x.groups[2], 0);
      return record;
    }
    const vocabIds = o.vocab === 256 ? undefined : o.vocab;
    const batcher = new ByteBatcher(trainingBytes(4 * (l + 1) + 1024), b, l, 1);
    const next = () => {
      const ids = batcher.next();
      if (vocabIds) { for (let i = 0; i < ids.length; i++) ids[i] = (ids[i] * 131 + i) % vocabIds; }
      return ids;
    };
    if (o.oneByOne) {
      await engine.stepOneByOne(next(), o.lr, (label, i) => say(`dispatch ${i} ${label}`));
      say("one-by-one step done");
    }
    for (let s = 0; s < o.warmup; s++) await engine.step(next(), o.lr);
    await engine.flush();
    say(`${o.warmup} warm-up steps done`);
    const stats: Promise<StepStats>[] = [];
    let hostMs = 0;
    const times0 = { ...(engine.backend.hostTimes ?? { waitMs: 0, encodeMs: 0, submitMs: 0, mapMs: 0 }) };
    const start = performance.now();
    for (let s = 0; s < o.steps; s++) {
      const ids = next(); // the batch is the data loader's work, outside the step's host time
      const h = performance.now();
      stats.push((await engine.step(ids, o.lr)).stats);
      hostMs += performance.now() - h;
    }
    const times1 = { ...(engine.backend.hostTimes ?? times0) };
    await engine.flush();
    const wallMs = performance.now() - start;
    const all = await Promise.all(stats);
    const gpu = all.map((s) => s.gpuMs).filter((x): x is number => x !== undefined);
    const msPerStep = wallMs / o.steps;
    const flops = flopsPerToken * tokens;
    Object.assign(record, {
      steps: o.steps,
      ms_per_step: round(msPerStep),
      host_ms_per_step: round(hostMs / o.steps),
      // where the host's time goes (webgpu): encoding is the host's work; a busy read-back ring makes wait,
      // and issuing a read-back's map makes map, block until the GPU catches up
      ...(engine.backend.hostTimes
        ? Object.fromEntries(
          (["encode", "submit", "wait", "map"] as const).map((k) => [
            `host_${k}_ms_per_step`,
            round((times1[`${k}Ms`] - times0[`${k}Ms`]) / o.steps),
          ]),
        )
        : {}),
      gpu_ms_per_step: gpu.length ? round(gpu.reduce((a, x) => a + x, 0) / gpu.length) : null,
      gpu_ms_per_step_min: gpu.length ? round(Math.min(...gpu)) : null,
      bytes_per_s: Math.round(tokens / (msPerStep / 1000)),
      tflops: round(flops / (msPerStep / 1000) / 1e12),
      loss_first: all[0]?.loss,
      loss_last: all[all.length - 1]?.loss,
      halted: engine.halted ?? null,
    });
    if (o.profile && engine.backend.profile) {
      const kernels = await engine.profile(next(), o.lr);
      // per label: GPU ms, dispatches, TFLOP/s (GEMMs), and bound bytes / time in GB/s (an upper estimate
      // of the traffic rate: each binding counted once) against the H200's ~4.8 TB/s and 52 TFLOP/s of WGSL fma
      record.kernel_ms = Object.fromEntries(
        kernels.map((k) => [k.label, {
          ms: round(k.ms),
          count: k.count,
          ...(k.flops ? { tflops: round(k.flops / k.ms / 1e9) } : {}),
          bound_GBps: round(k.boundBytes / k.ms / 1e6),
        }]),
      );
      record.kernel_ms_total = round(kernels.reduce((s, k) => s + k.ms, 0));
    }
    return record;
  } finally {
    engine.destroy();
  }
}

const round = (x: number) => Math.round(x * 1000) / 1000;

if (import.meta.main) {
  let o: Options;
  try {
    o = parse(Deno.args);
  } catch (e) {
    console.error(`lib/bench/engine.ts: ${(e as Error).message}`); // a bad option: one line, no stack
    Deno.exit(2);
  }
  for (const shape of o.shapes) {
    let line: string;
    try {
      const r = await benchShape(o, shape);
      // provenance as the results store writes it (the TF.js fields aside: TF.js is not in the loop)
      line = JSON.stringify({ ...r, provenance: benchProvenance(`engine ${o.backend}`, String(r.device)) });
    } catch (e) {
      line = JSON.stringify({ bench: "engine", shape, backend: o.backend, error: (e as Error).message });
    }
    console.log(line);
    if (o.out) await Deno.writeTextFile(o.out, line + "\n", { append: true });
  }
}
