/**
 * Decoding benchmarks (issue 5/7), recorded in data/results/bench/decode.jsonl:
 *
 * 1. Per-byte latency at batch 1 against the context length (1K, 4K, 16K, 64K bytes) on the current
 *    backend, for MambaByte (d_model 256, 4 layers; its state is O(1), so its cost must stay flat), the byte
 *    Transformer with a KV cache and MegaByte (same width and depth; their per-byte cost grows with the
 *    cache). MambaByte's context is really read (chunked `prefill` from the carried state); the attention models' caches are
 *    filled with random keys and values of the right shape (a step's cost depends on the cache's size, not
 *    its values; a real 64K prefill of full attention does not fit wasm's 4 GiB heap). MambaByte is timed
 *    with the fused JS stepper ("js", cpu/wasm) and with tfjs `step` ("tf").
 * 2. Given trained checkpoints (--verifier DIR --drafter DIR): plain greedy MambaByte decoding,
 *    speculative decoding (m 3; beta 1 and 3) and subword Mamba decoding alone, on a held-out prompt.
 *
 * Each figure is printed beside the anchor: PyTorch eager batch-1 decoding of MambaByte d256 x 4 on an
 * H200 (data/anchors/h200-pytorch-train-decode-2026-11-28.json, `decode_eager_b1`).
 *
 *   deno run -A lib/bench/decode.ts [--backend wasm] [--contexts 1024,4096,16384,65536] [--steps 100]
 *        [--models mambabyte,transformer,megabyte] [--budget-s 60] [--verifier DIR --drafter DIR]
 *        [--spec-bytes 400] [--prompt-file FILE] [--no-record]        (--models "" runs only the speculative part)
 */
import * as tf from "@tensorflow/tfjs";
import { type BackendName, initBackend, webgpuAdapter } from "../backend.ts";
import "../models/mod.ts";
import {
  asMamba,
  asMegaByte,
  asTransformer,
  baselineConfig,
  createModel,
  disposeCache,
  disposeMegaByteState,
  type KVCache,
  megabytePrefill,
  megabyteStep,
  transformerPrefill,
  transformerStep,
} from "../models/mod.ts";
import { disposeModel, readParameters } from "../models/lm.ts";
import { TransformerDecoder } from "../engine/transformer_decode.ts";
import { MegaByteDecoder } from "../engine/megabyte_decode.ts";
import type { MambaLM } from "../models/mamba.ts";
import { greedyDecode, speculativeDecode } from "../decode/speculative.ts";
import { createStepper, defaultStepperKind, type HostState, MambaStepper } from "../decode/stepper.ts";
import { loadTrained } from "../runs/experiment.ts";
import { appendRecord } from "../results/store.ts";
import { Rng } from "../util/rng.ts";
import { ANCHORS_DIR, RESULTS_DIR } from "../paths.ts";
import { RecurrentSession } from "../decode/session.ts";
import { helpOrUnknown } from "../util/usage.ts";

const arg = (name: string, fallback?: string) => {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : fallback;
};
const TABLE = "decode";
const DIR = RESULTS_DIR + "bench";
export const DECODE_SIZE = { d_model: 256, n_layer: 4 };

/** The PyTorch eager batch-1 decoding anchor for d256 x 4 (bytes/s), with its source. */
export async function decodeAnchor(): Promise<{ bytesPerS: number; source: string } | undefined> {
  const file = "h200-pytorch-train-decode-2026-11-28.json";
  try {
    const rows = JSON.parse(await Deno.readTextFile(`${ANCHORS_DIR}/${file}`)) as Record<
      string,
      number | string
    >[];
    const r = rows.find((x) => x.kind === "decode_eager_b1" && x.d_model === 256 && x.n_layer === 4);
    return r ? { bytesPerS: r.bytes_per_s as number, source: `data/anchors/${file}` } : undefined;
  } catch {
    return undefined;
  }
}

/** Steps `one()` up to `steps` times or until `budgetS` is spent (at least 3): mean seconds per step. */
/**
 * Mean time per call over at least `steps` calls and at least MIN_TIMED_S seconds (a fast stepper's 100
 * calls take ~60 ms, too short to average over GC pauses and scheduling noise), stopping at `budgetS`
 * (after 3 calls at least); the median call is recorded too.
 */
async function timeSteps(one: () => Promise<void>, steps: number, budgetS: number) {
  for (let i = 0; i < 10; i++) await one(); // warm-up: compiles kernels, grows buffers, lets the JIT optimise the JS stepper
  const times: number[] = [];
  const t0 = performance.now();
  const elapsed = () => (performance.now() - t0) / 1000;
  while ((times.length < steps || elapsed() < MIN_TIMED_S) && (times.length < 3 || elapsed() < budgetS)) {
    const t = performance.now();
    await one();
    times.push(performance.now() - t);
  }
  const n = times.length, s = elapsed() / n;
  const sorted = times.sort((a, b) => a - b);
  return { steps: n, msPerByte: s * 1000, medianMsPerByte: sorted[n >> 1], bytesPerS: 1 / s };
}

/** The least time a decoding-speed figure is averaged over (seconds). */
const MIN_TIMED_S = 2;

async function mambaAt(ctx: number, steps: number, budgetS: number, rng: Rng) {
  const model = createModel("mambabyte", DECODE_SIZE, 0);
  const m = asMamba(model);
  const out: Record<string, unknown>[] = [];
  const context = Int32Array.from({ length: ctx }, () => Math.floor(rng.uniform() * 256));
  const t0 = performance.now();
  const s = new RecurrentSession(m, "tf");
  await s.prefill(context, 4096); // the real context, chunk by chunk, state carried
  const prefillS = (performance.now() - t0) / 1000;
  for (const kind of ["tf"] as const) { // the JS stepper: mambaJsRoundRobin
    const stepper = createStepper(m, kind);
    let state = s.state!, id = 65;
    const r = await timeSteps(
      async () => {
        const x = await stepper.step(state, id);
        state = x.state;
        id = (id * 31 + 7) % 256;
      },
      steps,
      budgetS,
    );
    out.push({ model: "mambabyte", stepper: kind, context: ctx, prefill_s: prefillS, ...r });
  }
  s.dispose();
  disposeModel(model);
  return out;
}

/**
 * The fused JS stepper's per-byte time at every context length, measured round-robin: one step at each
 * context in turn, so that this machine's noise (GC pauses, a neighbour's load) falls on all contexts
 * alike and the flatness comparison is between like and like. Each context's state comes from really
 * reading a random context of that length (chunked tfjs passes).
 */
async function mambaJsRoundRobin(contexts: number[], steps: number, budgetS: number, rng: Rng) {
  const model = createModel("mambabyte", DECODE_SIZE, 0);
  const m = asMamba(model);
  const runs: { ctx: number; state: HostState; id: number; times: number[]; prefillS: number }[] = [];
  for (const ctx of contexts) {
    const t0 = performance.now();
    const s = new RecurrentSession(m, "tf");
    await s.prefill(Int32Array.from({ length: ctx }, () => Math.floor(rng.uniform() * 256)), 4096);
    runs.push({
      ctx,
      state: s.state!,
      id: 65,
      times: [] as number[],
      prefillS: (performance.now() - t0) / 1000,
    });
    s.dispose();
  }
  const stepper = await MambaStepper.create(m);
  const one = async (r: typeof runs[number], keep: boolean) => {
    const t = performance.now();
    const x = await stepper.step(r.state, r.id);
    if (keep) r.times.push(performance.now() - t);
    r.state = x.state;
    r.id = (r.id * 31 + 7) % 256;
  };
  for (let i = 0; i < 10; i++) for (const r of runs) await one(r, false); // warm-up
  const t0 = performance.now();
  const elapsed = () => (performance.now() - t0) / 1000;
  while (
    (runs[0].times.length < steps || elapsed() < MIN_TIMED_S * runs.length) &&
    (runs[0].times.length < 3 || elapsed() < budgetS * runs.length)
  ) {
    for (const r of runs) await one(r, true);
  }
  disposeModel(model);
  return new Map(runs.map((r) => {
    const n = r.times.length, ms = r.times.reduce((a, b) => a + b, 0) / n;
    const sorted = [...r.times].sort((a, b) => a - b);
    return [r.ctx, {
      model: "mambabyte",
      stepper: "js",
      context: r.ctx,
      prefill_s: r.prefillS,
      timing: "round-robin over the context lengths",
      steps: n,
      msPerByte: ms,
      medianMsPerByte: sorted[n >> 1],
      bytesPerS: 1000 / ms,
    }];
  }));
}

/** Grows every cache tensor's time axis (axis 2 of (b, h, t, k)) to `len` with random values. */
function syntheticCache(cache: KVCache, len: number, seed: number): KVCache {
  const layers = cache.layers.map((l, i) => {
    const [b, h, , k] = l.k.shape;
    return {
      k: tf.randomNormal([b, h, len, k], 0, 1, "float32", seed + 2 * i),
      v: tf.randomNormal([b, h, len, k], 0, 1, "float32", seed + 2 * i + 1),
    };
  });
  return { ...cache, layers, position: len, length: len };
}

async function transformerAt(ctx: number, steps: number, budgetS: number) {
  const model = createModel(
    "transformer",
    baselineConfig("transformer", DECODE_SIZE, { vocab_size: 256 }),
    0,
  );
  const t = asTransformer(model);
  const ids = tf.tensor([[1, 2, 3, 4]], [1, 4], "int32");
  const pre = transformerPrefill(t, ids);
  ids.dispose();
  pre.logits.dispose();
  let cache = syntheticCache(pre.cache, ctx, 1);
  disposeCache(pre.cache);
  let id = 65;
  try {
    const r = await timeSteps(
      async () => {
        const x = transformerStep(t, id, cache);
        await x.logits.data();
        x.logits.dispose();
        disposeCache(cache);
        cache = x.cache;
        id = (id * 31 + 7) % 256;
      },
      steps,
      budgetS,
    );
    return { model: "transformer", context: ctx, cache: "kv (synthetic, appended per step)", ...r };
  } finally {
    disposeCache(cache);
    disposeModel(model);
  }
}

/**
 * The byte Transformer or MegaByte on the native engine (lib/engine/transformer_decode.ts,
 * megabyte_decode.ts; webgpu): the KV caches (MegaByte: the global one, over the patches of `ctx` bytes)
 * filled with random keys and values up to `ctx`, then greedy runs of 64 steps per submission from there
 * (rewound before each run): milliseconds per byte of those runs.
 */
async function attentionEngineAt(
  kind: "transformer" | "megabyte",
  ctx: number,
  steps: number,
  budgetS: number,
  rng: Rng,
) {
  const K = 64;
  const model = createModel(
    kind,
    baselineConfig(kind, DECODE_SIZE, kind === "transformer" ? { vocab_size: 256 } : {}),
    0,
  );
  const common = { params: await readParameters(model), maxLen: ctx + K, stepsPerSubmit: K };
  const dec = kind === "megabyte"
    ? await MegaByteDecoder.create({ ...common, config: asMegaByte(model).config })
    : await TransformerDecoder.create({ ...common, config: asTransformer(model).config });
  try {
    dec.fillCache(ctx, (n) => rng.normalArray(n, 1));
    let id = 65;
    const r = await timeSteps(
      async () => {
        dec.seek(ctx);
        const ids = await dec.greedy(id, K);
        id = (ids[K - 1] * 31 + 7) % 256;
      },
      Math.ceil(steps / K),
      budgetS,
    );
    return {
      model: kind,
      stepper: "engine",
      context: ctx,
      ...(kind === "megabyte"
        ? {
          patch_size: asMegaByte(model).config.patch_size,
          cache: "global kv on the device (synthetic) + local, 64 greedy steps per submission",
        }
        : { cache: "kv on the device (synthetic), 64 greedy steps per submission" }),
      steps: r.steps * K,
      msPerByte: r.msPerByte / K,
      medianMsPerByte: r.medianMsPerByte / K,
      bytesPerS: r.bytesPerS * K,
    };
  } finally {
    dec.destroy();
    disposeModel(model);
  }
}

async function megabyteAt(ctx: number, steps: number, budgetS: number) {
  const model = createModel("megabyte", baselineConfig("megabyte", DECODE_SIZE), 0);
  const mb = asMegaByte(model);
  const P = mb.config.patch_size;
  const ids = tf.tensor([[1, 2, 3, 4, 5, 6, 7, 8, 9].slice(0, P + 1)], [1, P + 1], "int32"); // a second patch begun
  const pre = megabytePrefill(mb, ids);
  ids.dispose();
  pre.logits.dispose();
  // the global cache holds the patches begun: ctx / P of them at context ctx
  const patches = Math.ceil(ctx / P);
  const global = syntheticCache(pre.state.global, patches, 3);
  disposeCache(pre.state.global);
  let state = {
    ...pre.state,
    global,
    position: pre.state.position + (patches - pre.state.global.length) * P,
  };
  let id = 65;
  try {
    const r = await timeSteps(
      async () => {
        const x = megabyteStep(mb, id, state);
        await x.logits.data();
        x.logits.dispose();
        disposeMegaByteState(state);
        state = x.state;
        id = (id * 31 + 7) % 256;
      },
      Math.max(steps, 2 * P),
      budgetS,
    );
    return { model: "megabyte", context: ctx, patch_size: P, cache: "global kv (synthetic) + local", ...r };
  } finally {
    disposeMegaByteState(state);
    disposeModel(model);
  }
}

/**
 * What bounds speculative decoding with the fused JS stepper: the verifier's cost per byte stepping one
 * byte at a time and reading `draftLen` bytes in one fused pass (MambaStepper.read), and the drafter's cost
 * per step (one subword token), each the mean over at least MIN_TIMED_S. At full acceptance a round of m
 * tokens costs m drafter steps plus one pass over their bytes.
 */
async function verifyCost(verifier: MambaLM, drafter: MambaLM, text: Uint8Array, draftLen = 12) {
  const v = await MambaStepper.create(verifier), d = await MambaStepper.create(drafter);
  let state = v.emptyState();
  for (const b of text.subarray(0, 64)) state = v.stepSync(state, b).state;
  const bytes = Array.from(text.subarray(64, 64 + draftLen));
  // mean ms per call over at least MIN_TIMED_S (timeSteps), here per byte or per token
  const timed = async (fn: () => void) =>
    (await timeSteps(() => Promise.resolve(fn()), 1, Infinity)).msPerByte;
  const stepMs = await timed(() => {
    let s = state;
    for (const b of bytes) s = v.stepSync(s, b).state;
  }) / bytes.length;
  const passMs = await timed(() => v.read(state, bytes)) / bytes.length;
  let ds = d.emptyState();
  const drafterStepMs = await timed(() => (ds = d.stepSync(ds, 65).state));
  return {
    mode: "verify_cost",
    stepper: "js",
    draft_bytes: bytes.length,
    verifier_step_ms_per_byte: stepMs,
    verifier_pass_ms_per_byte: passMs,
    pass_over_step: passMs / stepMs,
    drafter_step_ms: drafterStepMs,
  };
}

async function speculativeBench(verifierDir: string, drafterDir: string, nBytes: number, prompt: Uint8Array) {
  const { model: vModel } = await loadTrained(verifierDir);
  const { model: dModel, tokenizer } = await loadTrained(drafterDir);
  if (!tokenizer) {
    throw new Error(`${drafterDir}: no tokenizer.json (the drafter must be a mamba_subword checkpoint)`);
  }
  const verifier = asMamba(vModel), drafter = asMamba(dModel);
  const out: Record<string, unknown>[] = [];
  const base = { verifier: verifierDir, drafter: drafterDir, prompt_bytes: prompt.length, bytes: nBytes };
  const plain = await greedyDecode(verifier, prompt, nBytes);
  const plainBps = nBytes / plain.seconds;
  const stepper = defaultStepperKind(); // what RecurrentSession uses below
  out.push({ ...base, mode: "plain", stepper, bytesPerS: plainBps, seconds: plain.seconds });
  out.push({ ...base, ...await verifyCost(verifier, drafter, plain.bytes) });
  const plainTf = await greedyDecode(verifier, prompt, Math.min(nBytes, 100), { stepper: "tf" });
  out.push({
    ...base,
    bytes: Math.min(nBytes, 100),
    mode: "plain",
    stepper: "tf",
    bytesPerS: Math.min(nBytes, 100) / plainTf.seconds,
    seconds: plainTf.seconds,
  });
  for (const [beta, verify] of [[1, "steps"], [3, "steps"], [1, "pass"], [3, "pass"]] as const) {
    const r = await speculativeDecode(verifier, drafter, tokenizer, prompt, nBytes, {
      draftTokens: 3,
      beta,
      verify,
    });
    const same = beta === 1 ? r.bytes.every((b, i) => b === plain.bytes[i]) : undefined;
    out.push({
      ...base,
      mode: "speculative",
      stepper,
      verify,
      draftTokens: 3,
      beta,
      ...r.stats,
      speedup: r.stats.bytesPerSecond / plainBps,
      bytesPerS: r.stats.bytesPerSecond,
      identicalToGreedy: same,
      sample: new TextDecoder().decode(r.bytes),
      acceptedMask: Array.from(r.accepted).join(""),
    });
  }
  // the subword Mamba alone: greedy tokens, counted in bytes
  const s = new RecurrentSession(drafter);
  const t0 = performance.now();
  await s.prefill(tokenizer.encode(prompt));
  let bytes = 0, tokens = 0;
  while (bytes < nBytes) {
    let best = 0;
    for (let i = 1; i < tokenizer.vocabSize; i++) if (s.next[i] > s.next[best]) best = i;
    bytes += tokenizer.tokenBytes(best).length;
    tokens++;
    await s.step(best);
  }
  const sec = (performance.now() - t0) / 1000;
  s.dispose();
  out.push({
    ...base,
    bytes,
    mode: "subword",
    stepper,
    tokens,
    bytesPerS: bytes / sec,
    seconds: sec,
    speedup: bytes / sec / plainBps,
  });
  disposeModel(vModel);
  disposeModel(dModel);
  return out;
}

const USAGE = `deno run -A lib/bench/decode.ts [options]   (per-byte decoding latency; speculative decoding)
  --backend NAME       webgpu, wasm, cpu or tensorflow (default: the automatic choice)
  --contexts LIST      context lengths in bytes (default 1024,4096,16384,65536)
  --steps N            timed decoding steps per context (default 100)
  --models LIST        mambabyte, transformer, megabyte (default all three; "" runs only the speculative part);
                       on webgpu with a GPU the byte Transformer and MegaByte are also decoded on the native
                       engine (KV caches on the GPU)
  --budget-s S         seconds allowed per (model, context) (default 60)
  --verifier DIR       a trained MambaByte model: with --drafter, benchmarks speculative decoding (default: none)
  --drafter DIR        a trained mamba_subword model with tokenizer.json (default: none)
  --spec-bytes N       bytes generated per speculative measurement (default 400)
  --prompt-file FILE   the prompt of the speculative part (default: "It was the best of times, ...")
  --engine-only        only the native engine's series (the byte Transformer and MegaByte on a GPU), not TF.js's
  --no-record          print only; append nothing to data/results/bench/decode.jsonl`;

if (import.meta.main) {
  helpOrUnknown(Deno.args, USAGE, "lib/bench/decode.ts");
  const backend = arg("backend") as BackendName | undefined;
  const info = await initBackend({ backend, quiet: false });
  const contexts = (arg("contexts", "1024,4096,16384,65536")!).split(",").map(Number);
  const steps = Number(arg("steps", "100"));
  const budgetS = Number(arg("budget-s", "60"));
  const models = (arg("models", "mambabyte,transformer,megabyte")!).split(",").filter(Boolean);
  for (const m of models) {
    if (!["mambabyte", "transformer", "megabyte"].includes(m)) {
      throw new Error(`--models: unknown model "${m}" (mambabyte, transformer, megabyte; "" for none)`);
    }
  }
  const record = !Deno.args.includes("--no-record");
  const anchor = await decodeAnchor();
  const anchorText = anchor
    ? `anchor: PyTorch eager H200 d256x4 ${anchor.bytesPerS.toFixed(0)} bytes/s (${anchor.source})`
    : "anchor: not found";
  const device = `${info.backend}${info.device ? ` on ${info.device}` : ""}`;
  const save = async (rec: Record<string, unknown>) => {
    const full = {
      bench: "decode",
      backend: tf.getBackend(),
      device,
      ...DECODE_SIZE,
      batch: 1,
      anchor_bytes_per_s: anchor?.bytesPerS,
      anchor_source: anchor?.source,
      ...rec,
    };
    if (record) await appendRecord(TABLE, full, DIR);
    const bps = rec.bytesPerS as number | undefined;
    console.log(
      `${String(rec.model ?? rec.mode).padEnd(12)} ${String(rec.stepper ?? "").padEnd(3)} ctx ${
        String(rec.context ?? rec.prompt_bytes).padStart(6)
      }  ` +
        (rec.skipped
          ? `skipped: ${rec.skipped}`
          : rec.mode === "verify_cost"
          ? `verifier step ${
            ((rec.verifier_step_ms_per_byte as number) * 1000).toFixed(0)
          } us/byte, fused pass ` +
            `${((rec.verifier_pass_ms_per_byte as number) * 1000).toFixed(0)} us/byte, drafter ` +
            `${((rec.drafter_step_ms as number) * 1000).toFixed(0)} us/token`
          : `${(rec.msPerByte as number | undefined)?.toFixed(3) ?? "-"} ms/byte  ${
            bps?.toFixed(1)
          } bytes/s`) +
        (bps && anchor ? `  (${(bps / anchor.bytesPerS).toFixed(2)}x ${anchorText})` : ""),
    );
  };
  const rng = new Rng(0);
  // the engine's series: on webgpu with a GPU (not a software adapter)
  const gpuEngine = info.backend === "webgpu" && (await webgpuAdapter())?.fallback === false;
  const engineOnly = Deno.args.includes("--engine-only");
  const skipAfter = new Map<string, string>(); // model -> why longer contexts are skipped
  const jsTimes = models.includes("mambabyte") && !engineOnly
    ? await mambaJsRoundRobin(contexts, steps, budgetS, rng)
    : undefined;
  for (const ctx of contexts) {
    // the byte Transformer and MegaByte on the native engine (webgpu): their own series, their own failures
    for (const name of gpuEngine ? models.filter((m) => m !== "mambabyte") : []) {
      try {
        await save(await attentionEngineAt(name as "transformer" | "megabyte", ctx, steps, budgetS, rng));
      } catch (e) {
        await save({
          model: name,
          stepper: "engine",
          context: ctx,
          skipped: `failed: ${(e as Error).message.slice(0, 300)}`,
        });
      }
    }
    for (const name of engineOnly ? [] : models) {
      if (skipAfter.has(name)) {
        await save({ model: name, context: ctx, skipped: skipAfter.get(name) });
        continue;
      }
      try {
        const recs = name === "mambabyte"
          ? [jsTimes!.get(ctx)!, ...await mambaAt(ctx, steps, budgetS, rng)]
          : name === "transformer"
          ? [await transformerAt(ctx, steps, budgetS)]
          : [await megabyteAt(ctx, steps, budgetS)];
        for (const r of recs) {
          await save(r);
          // a model whose step already takes > 1/10 of the budget would need > 10x longer at 4x the context
          if ((r.msPerByte as number) * 10 > budgetS * 1000 / 10 && name !== "mambabyte") {
            skipAfter.set(
              name,
              `per-byte cost ${
                (r.msPerByte as number).toFixed(0)
              } ms at context ${ctx} grows with the context; longer contexts exceed the ${budgetS} s budget`,
            );
          }
        }
      } catch (e) {
        const msg = (e as Error).message.slice(0, 300);
        await save({ model: name, context: ctx, skipped: `failed: ${msg}` });
        skipAfter.set(name, `failed at context ${ctx}: ${msg}`);
      }
    }
  }
  const verifierDir = arg("verifier"), drafterDir = arg("drafter");
  if (!verifierDir || !drafterDir) {
    console.log(
      "speculative: skipped (give --verifier DIR --drafter DIR, trained mambabyte and mamba_subword checkpoints)",
    );
  } else {
    const nBytes = Number(arg("spec-bytes", "400"));
    let prompt = new TextEncoder().encode(
      "It was the best of times, it was the worst of times, it was the age of wisdom, ",
    );
    const promptFile = arg("prompt-file");
    if (promptFile) prompt = await Deno.readFile(promptFile);
    for (const r of await speculativeBench(verifierDir, drafterDir, nBytes, prompt)) {
      const { sample: _s, acceptedMask: _a, ...shown } = r;
      await save(r);
      console.log("  ", JSON.stringify(shown));
    }
  }
}
