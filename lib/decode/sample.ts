/**
 * Sampling from a MambaLM (MambaByte or the subword Mamba) with its recurrent state: the prompt is
 * prefilled once (parallel scan), then each new token costs one O(1) step, whatever the context length.
 * Greedy, temperature, top-k and top-p; streaming; a batch of prompts.
 */
import * as tf from "@tensorflow/tfjs";
import { disposeState, type MambaLM, type MambaState, prefill, step } from "../models/mamba.ts";
import { defaultStepperKind } from "./stepper.ts";
import type { WeightFormat } from "../kernels/wasm/decode.ts";
import { Rng } from "../util/rng.ts";
import { checkLogits, RecurrentSession } from "./session.ts";
import { reclaimWebGpuGarbage } from "../backend.ts";
import { readParameters } from "../models/lm.ts";
import { MambaDecoder } from "../engine/decode.ts";
import { MAX_SAMPLE_VOCAB } from "../kernels/js/decode.ts";

export interface SamplingOptions {
  /** Argmax decoding (ignores the other options). */
  greedy?: boolean;
  temperature?: number;
  /** Keep only the k most likely bytes (0 = off). */
  topK?: number;
  /** Keep the smallest set of bytes whose probability reaches p (1 = off). */
  topP?: number;
  seed?: number;
  /**
   * Decode on the CPU stepper with its weight matrices in this format (lib/decode/stepper.ts; default: the
   * model's `decodeWeights`, else float32 on whichever decoder the backend picks).
   */
  weights?: WeightFormat;
}

/**
 * Picks the next token from one row of logits (host-side; V is small). Logits holding NaN or an infinity
 * are an error (NonFiniteError): no token is drawn from them. Exported for tests.
 */
export function pickToken(logits: Float32Array, opts: SamplingOptions, rng: Rng): number {
  checkLogits(logits);
  if (opts.greedy) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
    return best;
  }
  const T = opts.temperature ?? 1;
  if (!(T > 0)) throw new Error(`temperature must be > 0 (got ${T}); use greedy decoding for T = 0`);
  const order = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a]);
  const k = opts.topK && opts.topK > 0 ? Math.min(opts.topK, order.length) : order.length;
  const kept = order.slice(0, k);
  const max = logits[kept[0]];
  let probs = kept.map((i) => Math.exp((logits[i] - max) / T));
  let sum = probs.reduce((a, b) => a + b, 0);
  probs = probs.map((p) => p / sum);
  const topP = opts.topP ?? 1;
  let cut = probs.length;
  if (topP < 1) {
    let acc = 0;
    for (let i = 0; i < probs.length; i++) {
      acc += probs[i];
      if (acc >= topP) {
        cut = i + 1;
        break;
      }
    }
  }
  sum = probs.slice(0, cut).reduce((a, b) => a + b, 0);
  let r = rng.uniform() * sum;
  for (let i = 0; i < cut; i++) {
    r -= probs[i];
    if (r <= 0) return kept[i];
  }
  return kept[cut - 1];
}

/** Whether decoding runs through the fused JS stepper (cpu/wasm) rather than tfjs ops. */
function useJsStepper(kind?: Stepping): boolean {
  return (kind ?? defaultStepperKind()) === "js";
}

/**
 * How the steps run: "js" the fused CPU stepper, "tf" tfjs `step`, "engine" the native engine's decoder on
 * WebGPU (lib/engine/decode.ts). Default: engine on webgpu, js on cpu/wasm.
 */
export type Stepping = "js" | "tf" | "engine";

/** Whether `streamTokens` decodes on the native engine: asked for, or by default on webgpu. */
function useEngine(kind?: Stepping): boolean {
  return kind === "engine" || (kind === undefined && tf.getBackend() === "webgpu");
}

/**
 * Decoding on the native engine: the prompt read step by step, then ids chosen on the device (many steps per
 * submission, only ids read back): greedy, or sampled by pickToken's rule with the uniforms of the same
 * seeded Rng written by the host (vocabularies up to MAX_SAMPLE_VOCAB; larger ones read each step's logits
 * back and sample on the host).
 */
async function engineTokens(
  model: MambaLM,
  prompt: ArrayLike<number>,
  maxTokens: number,
  opts: SamplingOptions,
  rng: Rng,
  onToken: (t: number) => void | Promise<void>,
): Promise<number> {
  const V = model.config.vocab_size;
  const onDevice = opts.greedy || V <= MAX_SAMPLE_VOCAB;
  const sampling = opts.greedy
    ? undefined
    : { temperature: opts.temperature ?? 1, topK: opts.topK ?? 0, topP: opts.topP ?? 1 };
  const dec = await MambaDecoder.create({
    config: model.config,
    params: await readParameters(model),
    backend: "webgpu",
    allowSoftwareGpu: true, // TF.js already runs on this adapter
    stepsPerSubmit: 64, // on the H200, 16 per submission gave 3.1K bytes/s at d256x4, 64 gave 5.0K
    ...(onDevice && sampling ? { sampling } : {}),
  });
  try {
    for (let i = 0; i < prompt.length - 1; i++) await dec.feed([prompt[i]]);
    const last = prompt[prompt.length - 1];
    const each = async (ids: Int32Array) => {
      for (const t of ids) await onToken(t);
    };
    if (opts.greedy) await dec.greedy([last], maxTokens, each);
    else if (onDevice) await dec.sample([last], maxTokens, () => rng.uniform(), each);
    else {
      let logits = await dec.step([last]);
      for (let i = 0; i < maxTokens; i++) {
        const t = pickToken(logits.subarray(0, V), opts, rng);
        await onToken(t);
        if (i < maxTokens - 1) logits = await dec.step([t]);
      }
    }
    return maxTokens;
  } finally {
    dec.destroy();
  }
}

/**
 * Generates `maxBytes` tokens after `prompt` (at least one) from a MambaLM: MambaByte (tokens = bytes) or
 * the subword Mamba (token ids; decode them with its tokenizer). `onByte` receives each token as it is
 * produced (streaming). On cpu/wasm the steps run through the fused JS stepper (lib/decode/stepper.ts),
 * elsewhere through tfjs `step` with the state kept on the device.
 */
export async function generate(
  model: MambaLM,
  prompt: Uint8Array | Int32Array,
  maxBytes: number,
  opts: SamplingOptions & { stepper?: Stepping } = {},
  onByte?: (b: number) => void | Promise<void>,
): Promise<Uint8Array> {
  if (prompt.length === 0) throw new Error("generate: the prompt must hold at least one byte");
  if (model.config.vocab_size > 256) {
    throw new Error(
      `generate returns bytes; this model has ${model.config.vocab_size} tokens: use generateTokens`,
    );
  }
  return Uint8Array.from(await generateTokens(model, prompt, maxBytes, opts, onByte));
}

/** `generate` for any vocabulary: returns token ids. */
export async function generateTokens(
  model: MambaLM,
  prompt: ArrayLike<number>,
  maxTokens: number,
  opts: SamplingOptions & { stepper?: Stepping } = {},
  onToken?: (t: number) => void | Promise<void>,
): Promise<Int32Array> {
  const out = new TokenList();
  await streamTokens(model, prompt, maxTokens, opts, async (t) => {
    out.push(t);
    await onToken?.(t);
  });
  return out.array();
}

/**
 * Samples up to `maxTokens` tokens after `prompt`, handing each to `onToken` as it is produced and keeping
 * none: memory does not depend on `maxTokens` (the command line streams unbounded output this way).
 * Returns how many tokens were produced. Same sampling and steppers as `generateTokens`.
 */
export async function streamTokens(
  model: MambaLM,
  prompt: ArrayLike<number>,
  maxTokens: number,
  opts: SamplingOptions & { stepper?: Stepping },
  onToken: (t: number) => void | Promise<void>,
): Promise<number> {
  if (prompt.length === 0) throw new Error("generate: the prompt must hold at least one token");
  checkCount(maxTokens);
  const rng = new Rng(opts.seed ?? 0);
  const weights = opts.weights ?? model.decodeWeights;
  if (weights && opts.stepper && opts.stepper !== "js") {
    throw new Error(
      `generate: weights "${weights}" are the CPU stepper's; stepper "${opts.stepper}" was asked for`,
    );
  }
  if (!weights && useEngine(opts.stepper)) {
    return await engineTokens(model, prompt, maxTokens, opts, rng, onToken);
  }
  if (weights || useJsStepper(opts.stepper)) {
    // a weight format decodes on the CPU stepper whatever the backend (its weights read asynchronously)
    const s = weights ? await RecurrentSession.onCpu(model, { weights }) : new RecurrentSession(model, "js");
    try {
      await s.prefill(prompt);
      for (let i = 0; i < maxTokens; i++) {
        const t = pickToken(s.next, opts, rng);
        await onToken(t);
        if (i < maxTokens - 1) await s.step(t);
      }
    } finally {
      s.dispose();
    }
    return maxTokens;
  }
  await generateBatchTf(model, [prompt], maxTokens, opts, [rng], (_, t) => onToken(t));
  return maxTokens;
}

function checkCount(maxTokens: number): void {
  if (!Number.isSafeInteger(maxTokens) || maxTokens < 0) {
    throw new Error(`generate: the number of tokens must be an integer >= 0 (got ${maxTokens})`);
  }
}

/** Token ids collected as they come (grows by doubling: nothing allocated for tokens not produced). */
class TokenList {
  private buf = new Int32Array(256);
  private n = 0;
  push(t: number): void {
    if (this.n === this.buf.length) {
      const bigger = new Int32Array(this.buf.length * 2);
      bigger.set(this.buf);
      this.buf = bigger;
    }
    this.buf[this.n++] = t;
  }
  array(): Int32Array {
    return this.buf.slice(0, this.n);
  }
}

/**
 * A batch of prompts (any lengths): each row sampled with its own generator (seed + row). On tfjs
 * backends the rows advance together, one batched `step` per token; on cpu/wasm they run one after another
 * through the fused stepper (its cost is arithmetic, so batching would save nothing there).
 */
export async function generateBatch(
  model: MambaLM,
  prompts: ArrayLike<number>[],
  maxTokens: number,
  opts: SamplingOptions & { stepper?: Stepping } = {},
  onToken?: (row: number, t: number) => void | Promise<void>,
): Promise<Int32Array[]> {
  if (prompts.length === 0) throw new Error("generateBatch: no prompts");
  prompts.forEach((p, i) => {
    if (p.length === 0) throw new Error(`generateBatch: prompt ${i} is empty (need at least one token)`);
  });
  const seed = opts.seed ?? 0;
  if (useJsStepper(opts.stepper)) {
    const out: Int32Array[] = [];
    for (let i = 0; i < prompts.length; i++) {
      out.push(
        await generateTokens(
          model,
          prompts[i],
          maxTokens,
          { ...opts, seed: seed + i, stepper: "js" },
          onToken && ((t) => onToken(i, t)),
        ),
      );
    }
    return out;
  }
  checkCount(maxTokens);
  const lists = prompts.map(() => new TokenList());
  await generateBatchTf(
    model,
    prompts,
    maxTokens,
    opts,
    prompts.map((_, i) => new Rng(seed + i)),
    async (r, t) => {
      lists[r].push(t);
      await onToken?.(r, t);
    },
  );
  return lists.map((l) => l.array());
}

/**
 * The rows advance together through tfjs `step`, the state kept on the device; each token goes to `onToken`
 * as it is sampled (nothing is kept here).
 */
async function generateBatchTf(
  model: MambaLM,
  prompts: ArrayLike<number>[],
  maxTokens: number,
  opts: SamplingOptions,
  rngs: Rng[],
  onToken: (row: number, t: number) => void | Promise<void>,
): Promise<void> {
  const V = model.config.vocab_size; // sample real tokens only, not the padding rows
  const b = prompts.length;
  // each prompt prefilled on its own (lengths differ), the states stacked along the batch axis
  const rows: Float32Array[] = [];
  const states: MambaState[] = [];
  for (const p of prompts) {
    const ids = tf.tensor(Int32Array.from(p), [1, p.length], "int32");
    const { logits, state } = prefill(model, ids);
    ids.dispose();
    const last = tf.tidy(() => tf.slice(logits, [0, p.length - 1, 0], [1, 1, V]).reshape([V]));
    logits.dispose();
    rows.push((await last.data()) as Float32Array);
    last.dispose();
    states.push(state);
  }
  let state: MambaState = states[0].map((_, l) => ({
    conv: tf.concat(states.map((s) => s[l].conv), 0), // (b, e, k)
    ssm: tf.concat(states.map((s) => s[l].ssm), 0), // (b, e, n)
  }));
  states.forEach(disposeState);
  try {
    const next = new Int32Array(b);
    for (let i = 0; i < maxTokens; i++) {
      for (let r = 0; r < b; r++) {
        next[r] = pickToken(rows[r], opts, rngs[r]);
        await onToken(r, next[r]);
      }
      if (i === maxTokens - 1) break;
      const input = tf.tensor(next, [b], "int32");
      const s = step(model, input, state);
      input.dispose();
      disposeState(state);
      state = s.state;
      const all = tf.tidy(() => tf.slice(s.logits, [0, 0], [b, V]));
      s.logits.dispose();
      const flat = (await all.data()) as Float32Array;
      all.dispose();
      for (let r = 0; r < b; r++) rows[r] = flat.subarray(r * V, (r + 1) * V);
      reclaimWebGpuGarbage();
    }
  } finally {
    disposeState(state);
  }
}
