/**
 * GPU benchmarks (webgpu backend): the fused selective scan at the anchor shapes of
 * data/anchors/h200-selective-scan-*.json, and whole MambaByte training steps at the anchor shapes of
 * h200-pytorch-train-decode-*.json. Each figure is printed beside the peer's, and recorded (JSONL, with
 * provenance) to --out (default data/results/bench/gpu.jsonl).
 *
 *   deno run -A lib/bench/gpu.ts [--quick] [--out FILE] [--shapes B,D,N,L;...] [--fwd-only] [--no-train]
 *                                [--no-scan] [--variants SPEC] [--profile-train] [--gemm]
 *
 * Training runs through the trainer (lib/train/trainer.ts) on each engine of --engines (default native and
 * tfjs; TF.js only up to d512, where its step still fits and ends). --peers FILE takes the peer figures from
 * the JSONL that ../shared/anchors/peers/h200_peers.py printed in the same run on the same machine (the
 * records then say peer_source "same run"); without it they come from the anchor files (an older run).
 *
 * --gemm: the training step's Linear products through the WGSL GEMM (fastMatMul) and tf.matMul, in
 * TFLOP/s. MAMBABYTE_WEBGPU_GEMM=0 trains with tf.matMul (the record's `matmul` says which).
 *
 * Kernel settings: the environment gives the defaults (MAMBABYTE_SCAN_*, see
 * lib/kernels/webgpu/scan.ts); --variants "name:key=value,key=value;name2:..." (keys of
 * ScanKernelConfig) benchmarks several settings in one process, each recorded with its full config and
 * checked against the first variant (relative L2 error of y and of every gradient).
 *
 * Forward+backward is y and the vector-Jacobian product with a fixed gy for u, delta, A, B, C, z
 * (as y.backward(gy) in PyTorch).
 *
 * Timing: after a warm-up of K2 calls, K1 and then K2 calls are queued back to back, each run ending when a
 * one-element reduction of the last result has been read back. The figure is the slope
 * (t(K2) - t(K1)) / (K2 - K1): the sustained time per call, dispatch overhead included, without the
 * one-off latency of the read-back (recorded apart, as is t(K2) / K2). The GPU time of every pass
 * (timestamp queries, tf.time) is recorded too.
 * --profile-train adds one profiled training step per training shape: GPU time per kernel (tf.profile).
 */
import { initBackend, tf } from "../backend.ts";
import { selectiveScan } from "../ssm/mod.ts";
import { initMambaLM, mambaByteConfig } from "../models/pretrained.ts";
import { train } from "../train/trainer.ts";
import type { TrainEngine } from "../train/steps.ts";
import { createModel, mambaAsLanguageModel } from "../models/registry.ts";
import { baselineConfig } from "../models/mod.ts";
import { disposeModel, type LanguageModel, type ModelKind } from "../models/lm.ts";
import { appendRecord } from "../results/store.ts";
import { scanBenchInputs, sync } from "./gpu_inputs.ts";
import { fastMatMul, setWebGPUGemm, webgpuGemmEnabled } from "../kernels/tfjs/matmul_op.ts";
import { type GemmConfig, getGemmConfig, parseGemmConfig, setGemmConfig } from "../kernels/webgpu/gemm.ts";
import {
  forwardChunk,
  type ScanKernelConfig,
  scanKernelConfig,
  setScanKernelConfig,
} from "../kernels/webgpu/scan_wgsl.ts";
import { ANCHORS_DIR, RESULTS_DIR } from "../paths.ts";
import { getAttentionImpl } from "../kernels/webgpu/attention.ts";
import { helpOrUnknown } from "../util/usage.ts";

const USAGE =
  `deno run -A lib/bench/gpu.ts [options]      (webgpu: the fused scan and training steps on the GPU)
  --quick            tiny shapes (scan 1,64,16,256; training 64,2,2,256), for tests
  --out FILE         the JSONL file of records (default data/results/bench/gpu.jsonl)
  --shapes LIST      scan shapes B,D,N,L;... (default 8,1536,16,8192;1,1536,16,8192;16,512,16,2048)
  --fwd-only         time the forward pass only (kernel sweeps)
  --no-scan          skip the scan benchmark
  --no-train         skip the training steps (default shapes d,layers,batch,length 256,4,4,1024 and
                     512,8,16,2048)
  --variants SPEC    kernel settings "name:key=value,key=value;name2:..." (keys of ScanKernelConfig; default:
                     the environment's, MAMBABYTE_BENCH_VARIANTS / MAMBABYTE_SCAN_*)
  --profile-train    one profiled training step per training shape (GPU time per kernel)
  --train-shapes L   training shapes d,layers,batch,length;... (default 256,4,4,1024;512,8,16,2048;1024,16,8,8192)
  --engines LIST     what trains: native,tfjs (default both; tfjs skips shapes above d512; the baselines:
                     native only unless given)
  --models LIST      which families train: mambabyte (default), transformer, perceiver_ar, megabyte (the
                     family's config at each shape's width and depth: lib/models/mod.ts baselineConfig; the
                     byte Transformer's peer is h200_peers.py train_transformer, from --peers only)
  --peers FILE       the peer figures measured in the same run (JSONL of h200_peers.py)
  --gemm             the training step's Linear products through the WGSL GEMM and tf.matMul, in TFLOP/s`;

const args = Deno.args;
helpOrUnknown(args, USAGE, "lib/bench/gpu.ts");
const quick = args.includes("--quick");
const argValue = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const outFile = argValue("--out") ?? `${RESULTS_DIR}bench/gpu.jsonl`;
const outDir = outFile.slice(0, outFile.lastIndexOf("/"));
const table = outFile.slice(outFile.lastIndexOf("/") + 1).replace(/\.jsonl$/, "");

const info = await initBackend({ backend: "webgpu" });

async function anchors(prefix: string): Promise<unknown> {
  for (const e of Deno.readDirSync(ANCHORS_DIR)) {
    if (e.name.startsWith(prefix)) {
      return JSON.parse(await Deno.readTextFile(`${ANCHORS_DIR}/${e.name}`));
    }
  }
  return undefined;
}
// peers: the same run's JSONL (--peers), else the anchor files of an older run
const peersFile = argValue("--peers");
const sameRun = peersFile
  ? (await Deno.readTextFile(peersFile)).split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l))
  : undefined;
const peerSource = peersFile ? `same run (${peersFile})` : "anchor files (an earlier run)";
const scanAnchors = sameRun ? sameRun.filter((r) => r.kind === "scan") : await anchors("h200-selective-scan");
const trainAnchors = sameRun
  ? sameRun.filter((r) => r.kind === "train" && r.length !== undefined)
  : await anchors("h200-pytorch-train-decode");

/** Finds the anchor entry for a shape wherever it sits in the anchor file's structure. */
function findAnchor(
  data: unknown,
  match: (o: Record<string, unknown>) => boolean,
): Record<string, unknown> | undefined {
  if (!data || typeof data !== "object") return undefined;
  if (!Array.isArray(data) && match(data as Record<string, unknown>)) return data as Record<string, unknown>;
  for (const v of Object.values(data as object)) {
    const hit = findAnchor(v, match);
    if (hit) return hit;
  }
  return undefined;
}

/** Wall time of `calls` back-to-back calls until the last result is read, and of queueing them alone. */
async function timeCalls(fn: () => tf.Tensor, calls: number): Promise<{ total: number; enqueue: number }> {
  const t0 = performance.now();
  let last: tf.Tensor | undefined;
  for (let i = 0; i < calls; i++) {
    last?.dispose();
    last = fn();
  }
  const enqueue = performance.now() - t0;
  await sync(last!);
  last!.dispose();
  return { total: performance.now() - t0, enqueue };
}

/**
 * Per-call time as the slope between K1 and K2 back-to-back calls (see the header), t(K2) / K2, and the
 * host time to queue one call (when it is close to `ms`, the host, not the GPU, sets the pace).
 */
async function perCallMs(fn: () => tf.Tensor, k1: number, k2: number) {
  await timeCalls(fn, k2); // warm-up, and fills tfjs's buffer pool for k2 calls in flight
  const a = await timeCalls(fn, k1);
  const b = await timeCalls(fn, k2);
  return { ms: (b.total - a.total) / (k2 - k1), withReadbackMs: b.total / k2, enqueueMs: b.enqueue / k2 };
}

/** The latency of a read-back alone (nothing queued): median of 5. */
async function readbackMs(): Promise<number> {
  const t = tf.ones([4]);
  await sync(t);
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    await sync(t);
    times.push(performance.now() - t0);
  }
  t.dispose();
  return times.sort((x, y) => x - y)[2];
}

/** GPU time per program (timestamp queries) of one call: {name: ms} summed over repeats of a name. */
async function gpuPasses(fn: () => tf.Tensor): Promise<Record<string, number>> {
  const timing = await tf.time(() => fn().dispose()) as tf.TimingInfo & {
    getExtraProfileInfo?: () => string;
  };
  const out: Record<string, number> = {};
  for (const item of (timing.getExtraProfileInfo?.() ?? "").split(", ").filter(Boolean)) {
    const at = item.lastIndexOf(": ");
    const name = item.slice(0, at), ms = Number(item.slice(at + 2));
    out[name] = (out[name] ?? 0) + ms;
  }
  return out;
}

/** --variants "name:key=value,...;name2:..." -> [name, partial config]; none: the environment's config. */
function parseVariants(spec: string | undefined): [string, Partial<ScanKernelConfig>][] {
  if (!spec) return [["env", {}]];
  return spec.split(";").filter(Boolean).map((part) => {
    const [name, body = ""] = part.split(":");
    const change: Record<string, unknown> = {};
    for (const kv of body.split(",").filter(Boolean)) {
      const [key, value] = kv.split("=");
      if (!(key in scanKernelConfig())) {
        throw new Error(`--variants: unknown kernel setting "${key}" in "${part}"`);
      }
      change[key] = value === "true"
        ? true
        : value === "false"
        ? false
        : /^\d+$/.test(value)
        ? Number(value)
        : value;
    }
    return [name, change as Partial<ScanKernelConfig>];
  });
}

const baseConfig = scanKernelConfig();
const variants = parseVariants(argValue("--variants") ?? Deno.env.get("MAMBABYTE_BENCH_VARIANTS"));
const shapesArg = argValue("--shapes"); // e.g. --shapes 8,1536,16,8192;1,1536,16,8192
const scanShapes: [number, number, number, number][] = args.includes("--no-scan")
  ? []
  : shapesArg
  ? shapesArg.split(";").map((s) => s.split(",").map(Number) as [number, number, number, number])
  : quick
  ? [[1, 64, 16, 256]]
  : [[8, 1536, 16, 8192], [1, 1536, 16, 8192], [16, 512, 16, 2048]];
const fwdOnly = args.includes("--fwd-only"); // skip the backward timing (kernel sweeps)
const readback = await readbackMs();
console.log(`read-back latency alone: ${readback.toFixed(2)} ms`);

for (const [B, D, N, L] of scanShapes) {
  const { u, delta, A, Bm, Cm, Dv, z, bias, gy } = scanBenchInputs(B, D, N, L);
  const opts = { deltaSoftplus: true, impl: "fused" as const };
  const forward = () => selectiveScan(u, delta, A, Bm, Cm, Dv, z, bias, opts).y;
  // the vector-Jacobian product with gy, as mamba_ssm's benchmark back-propagates y.backward(gy)
  const allGrads = () =>
    tf.grads((uu: tf.Tensor, dd: tf.Tensor, aa: tf.Tensor, bb: tf.Tensor, cc: tf.Tensor, zz: tf.Tensor) =>
      selectiveScan(uu, dd, aa, bb, cc, Dv, zz, bias, opts).y
    )([u, delta, A, Bm, Cm, z], gy);
  const fwdBwd = () => {
    const grads = allGrads();
    tf.dispose(grads.slice(1));
    return grads[0];
  };
  const anchor = findAnchor(scanAnchors, (o) => o.B === B && o.D === D && o.N === N && o.L === L);
  const minBytes = typeof anchor?.fwd_min_bytes_GB === "number"
    ? anchor.fwd_min_bytes_GB as number
    : 4 * (3 * B * D * L + 2 * B * N * L + B * D * L) / 1e9;
  let reference: tf.Tensor[] | undefined; // y and the gradients of the first variant
  for (const [name, change] of variants) {
    try {
      setScanKernelConfig({ ...baseConfig, ...change });
      const cfg = scanKernelConfig();
      const k1 = quick ? 2 : 3, k2 = quick ? 4 : 13;
      const fwd = await perCallMs(forward, k1, k2);
      const both = fwdOnly ? undefined : await perCallMs(fwdBwd, quick ? 1 : 2, quick ? 3 : 7);
      const passesFwd = await gpuPasses(forward);
      const passesBoth = fwdOnly ? undefined : await gpuPasses(fwdBwd);
      // agreement with the first variant
      const outputs = tf.tidy(() => [forward(), ...(fwdOnly ? [] : allGrads())]);
      let agreement: Record<string, number> | null = null;
      if (!reference) reference = outputs;
      else {
        const names = ["y", "du", "ddelta", "dA", "dB", "dC", "dz"];
        agreement = {};
        for (const [i, t] of outputs.entries()) {
          const e = tf.tidy(() =>
            tf.div(tf.norm(tf.sub(t, reference![i])), tf.maximum(tf.norm(reference![i]), 1e-30))
          );
          agreement[names[i]] = (await e.data())[0];
          e.dispose();
        }
        tf.dispose(outputs);
      }
      const scanGpu = (p: Record<string, number> | undefined) =>
        p
          ? Object.entries(p).filter(([n]) => n.startsWith("SelectiveScan")).reduce((s, [, ms]) => s + ms, 0)
          : null;
      const rec = {
        bench: "scan",
        impl: "fused",
        variant: name,
        kernel_config: { ...cfg, fwd_chunk: forwardChunk(B, D, L), kernel: "v3-straight-line" },
        shape: { B, D, N, L },
        fwd_ms: fwd.ms,
        fwdbwd_ms: both?.ms ?? null,
        fwd_ms_with_readback: fwd.withReadbackMs,
        fwdbwd_ms_with_readback: both?.withReadbackMs ?? null,
        readback_ms: readback,
        fwd_enqueue_ms: fwd.enqueueMs,
        fwdbwd_enqueue_ms: both?.enqueueMs ?? null,
        gpu_fwd_ms: scanGpu(passesFwd),
        gpu_fwdbwd_scan_ms: scanGpu(passesBoth),
        gpu_passes_fwd: passesFwd,
        gpu_passes_fwdbwd: passesBoth ?? null,
        agreement_vs_first_variant: agreement,
        fwd_min_bytes_GB: minBytes,
        fwd_GBps: minBytes / (fwd.ms / 1000),
        peer: anchor
          ? {
            cuda_fwd_ms: anchor.cuda_fwd_ms,
            cuda_fwdbwd_ms: anchor.cuda_fwdbwd_ms,
            pscan_fwd_ms: anchor.pscan_fwd_ms,
          }
          : null,
        peer_source: anchor ? peerSource : null,
      };
      await appendRecord(table, rec, outDir);
      const ratio = (a: unknown, b: number) =>
        typeof a === "number" ? `${(b / a).toFixed(2)}x of CUDA` : "no anchor";
      console.log(
        `scan (${B}, ${D}, ${N}, ${L}) [${name}: ${JSON.stringify(change)}, fwd chunk ${
          forwardChunk(B, D, L)
        }]: ` +
          `fwd ${fwd.ms.toFixed(2)} ms (${ratio(anchor?.cuda_fwd_ms, fwd.ms)}, ${
            rec.fwd_GBps.toFixed(0)
          } GB/s; GPU ${rec.gpu_fwd_ms?.toFixed(2)} ms, ` +
          `queueing ${fwd.enqueueMs.toFixed(2)} ms), ` +
          `fwd+bwd ${both ? both.ms.toFixed(2) : "-"} ms (${
            both ? ratio(anchor?.cuda_fwdbwd_ms, both.ms) : "-"
          })` +
          (agreement
            ? `; vs first: ${
              Object.entries(agreement).map(([n, e]) => `${n} ${e.toExponential(1)}`).join(" ")
            }`
            : ""),
      );
      console.log(`  passes fwd: ${JSON.stringify(passesFwd)}`);
      if (passesBoth) console.log(`  passes fwd+bwd: ${JSON.stringify(passesBoth)}`);
    } catch (e) { // a variant the device cannot run (e.g. too much workgroup memory): record it, go on
      const message = e instanceof Error ? e.message : String(e);
      console.log(`scan (${B}, ${D}, ${N}, ${L}) [${name}]: FAILED: ${message}`);
      await appendRecord(table, {
        bench: "scan",
        impl: "fused",
        variant: name,
        shape: { B, D, N, L },
        kernel_config: { ...baseConfig, ...change },
        error: message,
      }, outDir);
    }
  }
  tf.dispose(reference ?? []);
  setScanKernelConfig(baseConfig);
  tf.dispose([u, delta, A, Bm, Cm, Dv, z, bias, gy]);
}

// The products of the Linear layers in the d512 x 8 training step (32768 tokens): in_proj's forward x W^T
// and its two gradients dy W and dy^T x, and the weight gradients of out_proj and x_proj (few outputs, long
// k), through fastMatMul's WGSL GEMM and through tf.matMul, in TFLOP/s.
if (args.includes("--gemm")) {
  const T = quick ? 512 : 32768, d = 512, e2 = 2048;
  // settings to compare: MAMBABYTE_GEMM_VARIANTS="wgsl,128,16,1;wgsl,128,16,0;tfjs-b" (impl,tile,bk,split k;
  // tile, bk and split default to 128, 16 and 1), default: the current
  const variantsSpec = Deno.env.get("MAMBABYTE_GEMM_VARIANTS");
  const gemmVariants: Partial<GemmConfig>[] = variantsSpec
    ? variantsSpec.split(";").map((v) => ({ tile: 128, bk: 16, splitK: true, ...parseGemmConfig(v) }))
    : [getGemmConfig()];
  const products: [string, number[], number[], boolean, boolean][] = [
    ["x W^T (in_proj forward)", [T, d], [e2, d], false, true],
    ["dy W (in_proj input gradient)", [T, e2], [e2, d], false, false],
    ["dy^T x (in_proj weight gradient)", [T, e2], [T, d], true, false],
    ["dy^T x (out_proj weight gradient)", [T, d], [T, e2 / 2], true, false],
    ["dy^T x (x_proj weight gradient)", [T, 64], [T, e2 / 2], true, false],
  ];
  for (const [what, sa, sb, ta, tb] of products) {
    const a = tf.randomNormal(sa), b = tf.randomNormal(sb);
    const [M, K] = ta ? [sa[1], sa[0]] : sa;
    const N = tb ? sb[0] : sb[1];
    const flop = 2 * M * N * K;
    const rec: Record<string, unknown> = {
      bench: "gemm",
      product: what,
      M,
      N,
      K,
      transposeA: ta,
      transposeB: tb,
    };
    setWebGPUGemm(false);
    const tfjs = await perCallMs(() => tf.matMul(a, b, ta, tb), 3, 13);
    setWebGPUGemm(true);
    const base = getGemmConfig();
    for (const cfg of gemmVariants) {
      setGemmConfig(cfg);
      const t = await perCallMs(() => fastMatMul(a, b, ta, tb), 3, 13);
      await appendRecord(table, {
        ...rec,
        gemm_config: cfg,
        gemm_ms: t.ms,
        gemm_tflops: flop / t.ms / 1e9,
        tfjs_ms: tfjs.ms,
        tfjs_tflops: flop / tfjs.ms / 1e9,
      }, outDir);
      console.log(
        `gemm ${what} (${M} x ${K} x ${N}) ${JSON.stringify(cfg)}: WGSL ${t.ms.toFixed(2)} ms ` +
          `(${(flop / t.ms / 1e9).toFixed(1)} TFLOP/s), tf.matMul ${tfjs.ms.toFixed(2)} ms ` +
          `(${(flop / tfjs.ms / 1e9).toFixed(1)} TFLOP/s)`,
      );
    }
    setGemmConfig(base);
    setWebGPUGemm(undefined);
    tf.dispose([a, b]);
  }
}

const trainShapes: [number, number, number, number][] = args.includes("--no-train")
  ? []
  : argValue("--train-shapes")
  ? argValue("--train-shapes")!.split(";").map((s) =>
    s.split(",").map(Number) as [number, number, number, number]
  )
  : quick
  ? [[64, 2, 2, 256]]
  : [[256, 4, 4, 1024], [512, 8, 16, 2048], [1024, 16, 8, 8192]];
const models = (argValue("--models") ?? "mambabyte").split(",") as ModelKind[];
for (const kind of models) {
  if (!["mambabyte", "transformer", "perceiver_ar", "megabyte"].includes(kind)) {
    console.error(
      `lib/bench/gpu.ts: --models: mambabyte, transformer, perceiver_ar or megabyte (got "${kind}")`,
    );
    Deno.exit(2);
  }
}
const text = new Uint8Array(1 << 20);
for (let i = 0; i < text.length; i++) text[i] = 32 + (i * 2654435761 % 95); // synthetic bytes: speed only
for (const [d, layers, batch, length] of trainShapes) {
  // MambaByte's model: only when it trains or its step is profiled
  const mamba = models.includes("mambabyte") || args.includes("--profile-train")
    ? initMambaLM(mambaByteConfig(d, layers), 0)
    : undefined;
  for (const kind of models) {
    const model: LanguageModel = kind === "mambabyte"
      ? mambaAsLanguageModel(mamba!)
      : createModel(kind, baselineConfig(kind, { d_model: d, n_layer: layers }), 0);
    const engines = (argValue("--engines") ?? (kind === "mambabyte" ? "native,tfjs" : "native"))
      .split(",") as TrainEngine[];
    for (const engine of engines) {
      if (engine === "tfjs" && d > 512 && !argValue("--train-shapes")) continue; // minutes per step, if it fits
      await trainRecord(kind, model, engine, [d, layers, batch, length]);
    }
    if (kind !== "mambabyte") disposeModel(model);
  }
  if (args.includes("--profile-train")) {
    try {
      // one step with every kernel timed on the GPU (each is submitted alone, so the wall time is not the step's)
      const t0 = performance.now();
      const profile = await tf.profile(async () => {
        await train(mambaAsLanguageModel(mamba!), text, {
          steps: 1,
          batch,
          length,
          lr: 1e-4,
          warmup: 1,
          seed: 2,
          engine: "tfjs", // tf.profile sees TF.js's kernels only (the engine's: lib/bench/engine.ts --profile)
        });
      });
      const byKernel = new Map<string, { ms: number; calls: number }>();
      for (const kern of profile.kernels) {
        const ms = typeof kern.kernelTimeMs === "number" ? kern.kernelTimeMs : 0;
        const e = byKernel.get(kern.name) ?? { ms: 0, calls: 0 };
        e.ms += ms;
        e.calls++;
        byKernel.set(kern.name, e);
      }
      const rows = [...byKernel.entries()].sort((a, b) => b[1].ms - a[1].ms);
      const total = rows.reduce((s, [, e]) => s + e.ms, 0);
      await appendRecord(table, {
        bench: "train_profile",
        model: "mambabyte",
        d_model: d,
        n_layer: layers,
        batch,
        length,
        gpu_ms_total: total,
        profiled_wall_s: (performance.now() - t0) / 1000,
        kernels: Object.fromEntries(rows.map(([n, e]) => [n, { ms: e.ms, calls: e.calls }])),
      }, outDir);
      console.log(
        `  profiled step: ${total.toFixed(0)} ms of GPU time over ${profile.kernels.length} kernels; top:`,
      );
      for (const [n, e] of rows.slice(0, 15)) {
        console.log(`    ${n.padEnd(28)} ${e.ms.toFixed(1).padStart(8)} ms  ${e.calls} calls`);
      }
    } catch (e) {
      console.log(`  profiling failed: ${e instanceof Error ? e.message : e}`);
    }
  }
  for (const v of mamba?.params.values() ?? []) v.dispose();
}
console.log(`device: ${info.device}; records in ${outFile}`);

/** Trains `model` a few steps on one engine through the trainer and appends the record (with its peer). */
async function trainRecord(
  kind: ModelKind,
  model: LanguageModel,
  engine: TrainEngine,
  [d, layers, batch, length]: [number, number, number, number],
): Promise<void> {
  // long enough that the native engine's read-backs (every 16 steps) and start are a small part
  const steps = quick ? 3 : engine === "tfjs" ? 8 : d >= 1024 ? 12 : 48;
  const common = { batch, length, lr: 1e-4, warmup: 1, engine };
  const warm = await train(model, text, { ...common, steps: 2, seed: 0 });
  const run = await train(model, text, { ...common, steps, seed: 1 });
  const bytesPerS = run.bytes_seen / run.wall_s;
  // the peer: mamba_ssm's training step for MambaByte; PyTorch's byte Transformer (same run only) for the
  // Transformer; none for PerceiverAR and MegaByte (recorded beside the Transformer)
  const anchor = kind === "mambabyte"
    ? findAnchor(
      trainAnchors,
      (o) =>
        (o.d_model === d || o.d === d) && (o.n_layer === layers || o.layers === layers) &&
        (o.batch === batch || o.B === batch),
    )
    : kind === "transformer"
    ? sameRun?.find((o) =>
      o.kind === "train_transformer" && o.d_model === d && o.n_layer === layers && o.batch === batch &&
      o.length === length
    )
    : undefined;
  await appendRecord(table, {
    bench: "train",
    model: kind,
    ...(kind === "mambabyte" ? {} : { config: model.config, attention: getAttentionImpl() }),
    engine: run.engine,
    d_model: d,
    n_layer: layers,
    batch,
    length,
    steps,
    bytes_per_s: bytesPerS,
    step_s: run.wall_s / steps,
    warmup_wall_s: warm.wall_s,
    wall_s: run.wall_s,
    gpu_bytes: run.gpu_bytes ?? null,
    final_loss: run.log.at(-1)?.loss ?? null,
    kernel_config: scanKernelConfig(),
    matmul: engine === "tfjs" && !webgpuGemmEnabled() ? "tf.matMul" : getGemmConfig(),
    peer: anchor ?? null,
    peer_source: anchor ? peerSource : null,
    ratio_to_peer: typeof anchor?.bytes_per_s === "number" ? bytesPerS / anchor.bytes_per_s : null,
  }, outDir);
  console.log(
    `train ${kind} on ${run.engine} (d ${d}, ${layers} layers, batch ${batch}, length ${length}): ` +
      `${Math.round(bytesPerS)} bytes/s, ${(run.wall_s / steps * 1000).toFixed(0)} ms/step` +
      (run.gpu_bytes ? `, ${(run.gpu_bytes / 1e9).toFixed(1)} GB` : "") +
      (typeof anchor?.bytes_per_s === "number"
        ? `; peer ${Math.round(anchor.bytes_per_s)} bytes/s (${(bytesPerS / anchor.bytes_per_s).toFixed(2)}x)`
        : ""),
  );
}
