/**
 * GPU benchmarks (webgpu backend): the fused selective scan at the anchor shapes of
 * data/anchors/h200-selective-scan-*.json, and whole MambaByte training steps at the anchor shapes of
 * h200-pytorch-train-decode-*.json. Each figure is printed beside the peer's, and recorded (JSONL, with
 * provenance) to --out (default data/results/bench/gpu.jsonl).
 *
 *   deno run -A lib/bench/gpu.ts [--quick] [--out FILE] [--shapes B,D,N,L;...] [--fwd-only] [--no-train]
 *
 * Kernel settings come from the environment (MAMBABYTE_SCAN_FWD_CHUNK, MAMBABYTE_SCAN_FWD_WGS,
 * MAMBABYTE_SCAN_CHUNK, MAMBABYTE_SCAN_SUB; see lib/ssm/kernels/scan_webgpu.ts) and are recorded.
 *
 * Timing: after a warm-up, K calls are queued back to back and the clock stops when a one-element
 * reduction of the last result has been read back, so the figure is the sustained time per call,
 * dispatch overhead included.
 */
import { initBackend, tf } from "../backend.ts";
import { selectiveScan } from "../ssm/mod.ts";
import { initMambaLM, mambaByteConfig } from "../models/pretrained.ts";
import { trainBytes } from "../train/train.ts";
import { appendRecord } from "../results/store.ts";
import { forwardChunk } from "../ssm/kernels/scan_webgpu.ts";

const args = Deno.args;
const quick = args.includes("--quick");
const outIdx = args.indexOf("--out");
const root = new URL("../../", import.meta.url).pathname;
const outFile = outIdx >= 0 ? args[outIdx + 1] : `${root}data/results/bench/gpu.jsonl`;
const outDir = outFile.slice(0, outFile.lastIndexOf("/"));
const table = outFile.slice(outFile.lastIndexOf("/") + 1).replace(/\.jsonl$/, "");

const info = await initBackend({ backend: "webgpu" });

async function anchors(prefix: string): Promise<unknown> {
  for (const e of Deno.readDirSync(`${root}data/anchors`)) {
    if (e.name.startsWith(prefix)) return JSON.parse(await Deno.readTextFile(`${root}data/anchors/${e.name}`));
  }
  return undefined;
}
const scanAnchors = await anchors("h200-selective-scan");
const trainAnchors = await anchors("h200-pytorch-train-decode");

/** Finds the anchor entry for a shape wherever it sits in the anchor file's structure. */
function findAnchor(data: unknown, match: (o: Record<string, unknown>) => boolean): Record<string, unknown> | undefined {
  if (!data || typeof data !== "object") return undefined;
  if (!Array.isArray(data) && match(data as Record<string, unknown>)) return data as Record<string, unknown>;
  for (const v of Object.values(data as object)) {
    const hit = findAnchor(v, match);
    if (hit) return hit;
  }
  return undefined;
}

async function sustainedMs(fn: () => tf.Tensor, repeats: number): Promise<number> {
  const sync = async (t: tf.Tensor) => {
    const s = tf.sum(t);
    await s.data();
    s.dispose();
  };
  const warm = fn();
  await sync(warm);
  warm.dispose();
  const t0 = performance.now();
  let last: tf.Tensor | undefined;
  for (let i = 0; i < repeats; i++) {
    last?.dispose();
    last = fn();
  }
  await sync(last!);
  last!.dispose();
  return (performance.now() - t0) / repeats;
}

const shapesIdx = args.indexOf("--shapes"); // e.g. --shapes 8,1536,16,8192;1,1536,16,8192
const scanShapes: [number, number, number, number][] = shapesIdx >= 0
  ? args[shapesIdx + 1].split(";").map((s) => s.split(",").map(Number) as [number, number, number, number])
  : quick
  ? [[1, 64, 16, 256]]
  : [[8, 1536, 16, 8192], [1, 1536, 16, 8192], [16, 512, 16, 2048]];
const fwdOnly = args.includes("--fwd-only"); // skip the backward timing (kernel sweeps)
const kernelConfig: Record<string, unknown> = { sub: Deno.env.get("MAMBABYTE_SCAN_SUB") ?? "default", chunk: Deno.env.get("MAMBABYTE_SCAN_CHUNK") ?? "default" };

for (const [B, D, N, L] of scanShapes) {
  const u = tf.randomNormal([B, D, L]), delta = tf.randomUniform([B, D, L], -6, -2);
  const A = tf.neg(tf.range(1, N + 1).tile([D]).reshape([D, N]));
  const Bm = tf.randomNormal([B, N, L]), Cm = tf.randomNormal([B, N, L]);
  const Dv = tf.ones([D]), z = tf.randomNormal([B, D, L]), bias = tf.zeros([D]);
  const gy = tf.randomNormal([B, D, L]);
  const opts = { deltaSoftplus: true, impl: "fused" as const };
  const fwd = await sustainedMs(() => selectiveScan(u, delta, A, Bm, Cm, Dv, z, bias, opts).y, quick ? 3 : 20);
  const fwdBwd = fwdOnly ? NaN : await sustainedMs(() => {
    const grads = tf.grads((uu: tf.Tensor, dd: tf.Tensor, aa: tf.Tensor, bb: tf.Tensor, cc: tf.Tensor, zz: tf.Tensor) =>
      tf.sum(tf.mul(selectiveScan(uu, dd, aa, bb, cc, Dv, zz, bias, opts).y, gy)) as tf.Scalar
    )([u, delta, A, Bm, Cm, z]);
    const first = grads[0];
    tf.dispose(grads.slice(1));
    return first;
  }, quick ? 3 : Number(Deno.env.get("MAMBABYTE_BENCH_REPEATS") ?? 10));
  const anchor = findAnchor(scanAnchors, (o) => o.B === B && o.D === D && o.N === N && o.L === L);
  const minBytes = typeof anchor?.fwd_min_bytes_GB === "number" ? anchor.fwd_min_bytes_GB as number
    : 4 * (3 * B * D * L + 2 * B * N * L + B * D * L) / 1e9;
  const rec = {
    bench: "scan", impl: "fused", kernel_config: { ...kernelConfig, fwd_chunk: forwardChunk(B, D, L), kernel: "tiled-v2" }, shape: { B, D, N, L }, fwd_ms: fwd, fwdbwd_ms: fwdOnly ? null : fwdBwd,
    fwd_min_bytes_GB: minBytes, fwd_GBps: minBytes / (fwd / 1000),
    peer: anchor ? { cuda_fwd_ms: anchor.cuda_fwd_ms, cuda_fwdbwd_ms: anchor.cuda_fwdbwd_ms, pscan_fwd_ms: anchor.pscan_fwd_ms } : null,
  };
  await appendRecord(table, rec, outDir);
  const ratio = (a: unknown, b: number) => typeof a === "number" ? `${(b / a).toFixed(2)}x of CUDA` : "no anchor";
  console.log(`scan (${B}, ${D}, ${N}, ${L}) [sub ${kernelConfig.sub}, chunk ${kernelConfig.chunk}, fwd chunk ${forwardChunk(B, D, L)}]: fwd ${fwd.toFixed(2)} ms (${ratio(anchor?.cuda_fwd_ms, fwd)}, ` +
    `${rec.fwd_GBps.toFixed(0)} GB/s), fwd+bwd ${fwdBwd.toFixed(2)} ms (${ratio(anchor?.cuda_fwdbwd_ms, fwdBwd)})`);
  tf.dispose([u, delta, A, Bm, Cm, Dv, z, bias, gy]);
}

const trainShapes: [number, number, number, number][] = args.includes("--no-train") ? []
  : quick ? [[64, 2, 2, 256]] : [[256, 4, 4, 1024], [512, 8, 16, 2048]];
for (const [d, layers, batch, length] of trainShapes) {
  const model = initMambaLM(mambaByteConfig(d, layers), 0);
  const text = new Uint8Array(1 << 20);
  for (let i = 0; i < text.length; i++) text[i] = 32 + (i * 2654435761 % 95); // synthetic bytes: speed only
  const steps = quick ? 3 : 8;
  const warm = await trainBytes(model, text, { steps: 2, batch, length, lr: 1e-4, warmup: 1, seed: 0 });
  const run = await trainBytes(model, text, { steps, batch, length, lr: 1e-4, warmup: 1, seed: 1 });
  const bytesPerS = run.bytes_seen / run.wall_s;
  const anchor = findAnchor(trainAnchors, (o) => (o.d_model === d || o.d === d) && (o.n_layer === layers || o.layers === layers) &&
    (o.batch === batch || o.B === batch));
  await appendRecord(table, {
    bench: "train", model: "mambabyte", d_model: d, n_layer: layers, batch, length, steps, bytes_per_s: bytesPerS,
    warmup_wall_s: warm.wall_s, wall_s: run.wall_s, peer: anchor ?? null,
  }, outDir);
  console.log(`train (d ${d}, ${layers} layers, batch ${batch}, length ${length}): ${Math.round(bytesPerS)} bytes/s` +
    (anchor ? ` (peer entry: ${JSON.stringify(anchor)})` : ""));
  for (const v of model.params.values()) v.dispose();
}
console.log(`device: ${info.device}; records in ${outFile}`);
