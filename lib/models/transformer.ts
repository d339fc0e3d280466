/**
 * The Transformer baselines: a causal, pre-norm, GPT-style decoder over bytes (`transformer`, vocab 256)
 * or BPE subwords (`transformer_subword`, vocab from the config), with KV-cache decoding. Also the
 * building blocks MegaByte and PerceiverAR reuse: config parsing, the attention block stack and its cache.
 *
 * Model: token embedding (V, d) -> n_layer x [h = h + attn(LN(h)); h = h + mlp(LN(h))] -> LN -> logits
 * with the head tied to the embedding. Attention is multi-head, causal, without biases (nanoGPT's
 * bias=False); the MLP is d -> mlp_ratio*d -> d with GELU (tanh form, as GPT-2).
 *
 * Positions: rotary embeddings (RoPE, Su et al. 2021, GPT-NeoX "rotate half" layout) on queries and keys.
 * They have no parameters and are defined at every position, so a model trained on length l can be run
 * "as it is" on 64 l (the extrapolation experiment) — nothing to pad or truncate — and the score depends
 * only on the distance between query and key, so a bounded (sliding-window) KV cache that drops the
 * oldest keys gives exactly sliding-window attention. Defined is not the same as trained: distances
 * beyond the training length were never seen, and the quality of such predictions is what the
 * extrapolation experiment measures.
 *
 * Shapes: b batch, l length, d d_model, h heads, k head dim (d / h), f MLP width, V vocabulary.
 */
import * as tf from "@tensorflow/tfjs";
import { ConfigError } from "../io/errors.ts";
import { Rng } from "../util/rng.ts";
import type { LanguageModel, ModelKind } from "./lm.ts";

import { registerFamily } from "./registry.ts";
import { embed, gelu, layerNorm, linear } from "../nn/layers.ts";
import { causalAttention, rope } from "../nn/attention.ts";
import {
  blockKey,
  stackShapes,
  type StackSpec,
  type TransformerConfig,
  transformerNoWeightDecay,
  transformerShapes,
  transformerStack,
} from "./transformer_config.ts";
export {
  blockKey,
  stackShapes,
  type StackSpec,
  type TransformerConfig,
  transformerNoWeightDecay,
  transformerShapes,
  transformerStack,
} from "./transformer_config.ts";

// ---------------------------------------------------------------------------------------------------
// Config parsing shared by the baselines

type Json = Record<string, unknown>;

const show = (v: unknown) => (v === undefined ? "nothing" : JSON.stringify(v) ?? String(v));

/**
 * Reads the fields of one config object, filling defaults; every error names `where` and the field.
 * `done()` rejects fields that were never read (a misspelt field would otherwise be silently ignored).
 */
export class ConfigFields {
  private readonly seen = new Set<string>();
  constructor(readonly raw: Json, readonly where: string, readonly kind: string) {
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
      throw new ConfigError(
        where,
        undefined,
        `${where}: a ${kind} config must be a JSON object, got ${show(raw)}`,
      );
    }
  }

  fail(field: string, msg: string): never {
    throw new ConfigError(this.where, field, `${this.where}: field "${field}" ${msg}`);
  }

  /** An integer >= min (default 1); required when `dflt` is undefined. */
  int(field: string, dflt?: number, min = 1): number {
    this.seen.add(field);
    const v = this.raw[field] ?? dflt;
    if (v === undefined) this.fail(field, `is required for ${this.kind} (an integer >= ${min})`);
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min) {
      this.fail(field, `must be an integer >= ${min}, got ${show(v)}`);
    }
    return v as number;
  }

  /** A finite number > 0. */
  positive(field: string, dflt: number): number {
    this.seen.add(field);
    const v = this.raw[field] ?? dflt;
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) {
      this.fail(field, `must be a positive number, got ${show(v)}`);
    }
    return v as number;
  }

  /** Fails on any field not read so far, naming it (and the fields this family knows). */
  done(): void {
    for (const field of Object.keys(this.raw)) {
      if (!this.seen.has(field)) {
        throw new ConfigError(
          this.where,
          field,
          `${this.where}: unknown field "${field}" for ${this.kind} (known: ${[...this.seen].join(", ")})`,
        );
      }
    }
  }
}

/** Default number of heads: head dim 64 where d allows it, else one head (tiny test models). */
export function defaultHeads(d: number): number {
  return d % 64 === 0 ? d / 64 : 1;
}

/** Checks that `heads` divides `width` into even head dims (RoPE rotates pairs). */
export function checkHeads(
  f: ConfigFields,
  headsField: string,
  heads: number,
  widthField: string,
  width: number,
): void {
  if (width % heads !== 0 || (width / heads) % 2 !== 0) {
    f.fail(headsField, `(${heads}) must divide ${widthField} (${width}) into heads of even size`);
  }
}

// ---------------------------------------------------------------------------------------------------
// The block stack (shared by Transformer, MegaByte's global and local models, PerceiverAR)

/**
 * GPT-2 / nanoGPT initialisation of a stack: weights N(0, 0.02), the two projections into the residual
 * stream N(0, 0.02 / sqrt(2 n_layer)) so the residual's variance does not grow with depth; LN 1 and 0.
 */
export function initStack(
  s: StackSpec,
  rng: Rng,
  out: Map<string, Float32Array>,
  depthForScale = s.nLayer,
): void {
  const resid = 0.02 / Math.sqrt(2 * depthForScale);
  for (const [name, shape] of stackShapes(s)) {
    const size = shape.reduce((a, b) => a * b, 1);
    if (/ln_\w+\.weight$/.test(name)) out.set(name, new Float32Array(size).fill(1));
    else if (/\.bias$/.test(name)) out.set(name, new Float32Array(size));
    else if (/c_proj\.weight$/.test(name)) out.set(name, rng.normalArray(size, resid));
    else out.set(name, rng.normalArray(size, 0.02));
  }
}

/** Parameters as variables, checking that every expected one is there with the right size. */
export function makeVariables(
  shapes: [string, number[]][],
  values: Map<string, Float32Array>,
  kind: string,
): Map<string, tf.Variable> {
  const params = new Map<string, tf.Variable>();
  for (const [name, shape] of shapes) {
    const v = values.get(name);
    if (!v) throw new ConfigError(`<${kind} weights>`, name, `${kind}: missing parameter "${name}"`);
    const size = shape.reduce((a, b) => a * b, 1);
    if (v.length !== size) {
      throw new ConfigError(
        `<${kind} weights>`,
        name,
        `${kind}: parameter "${name}" has ${v.length} values, expected [${shape}] = ${size}`,
      );
    }
    params.set(name, tf.variable(tf.tensor(v, shape, "float32"), true));
  }
  for (const name of values.keys()) {
    if (!shapes.some(([n]) => n === name)) {
      throw new ConfigError(
        `<${kind} weights>`,
        name,
        `${kind}: unexpected parameter "${name}" (does the config match the weights?)`,
      );
    }
  }
  return params;
}

/** tf.tidy for results that nest tensors in typed objects (caches): tidy keeps every tensor it finds. */
export function tidyKeep<T>(fn: () => T): T {
  return tf.tidy(fn as unknown as () => tf.TensorContainer) as unknown as T;
}

export function getParam(params: Map<string, tf.Variable>, name: string): tf.Tensor {
  const p = params.get(name);
  if (!p) throw new Error(`model has no parameter "${name}"`);
  return p;
}

/** Cached keys (rotated) and values of one attention layer: (b, h, t, k) each. */
export interface LayerKV {
  k: tf.Tensor;
  v: tf.Tensor;
}

/**
 * A KV cache for a stack: per layer the keys and values of the `length` most recent positions, which
 * are the absolute positions position-length .. position-1. With `window` the cache keeps at most that
 * many positions (sliding-window attention, memory O(window)); without, it grows by one position per
 * step (memory O(t); appending copies the cache, O(t) per step like the attention itself).
 */
export interface KVCache {
  layers: LayerKV[];
  position: number;
  length: number;
  window?: number;
}

export function disposeCache(cache: KVCache): void {
  for (const l of cache.layers) tf.dispose([l.k, l.v]);
}

interface StackRun {
  /** Absolute position of the first new row (default 0, or the cache's position). */
  pos0?: number;
  /** Keys and values of earlier positions (not disposed). */
  cache?: KVCache;
  /** Return the cache after these positions. */
  returnCache?: boolean;
  /** Sliding-window attention over this many positions (also bounds the returned cache). */
  window?: number;
  /**
   * Only the last `queries` rows are carried through the first block (PerceiverAR's cross-attention:
   * those rows attend to all rows); the output then has `queries` rows. Needs no cache.
   */
  queries?: number;
}

/**
 * One pre-norm block: x (b, l, d) -> (b, lq, d) with lq = `queries` or l. Keys/values come from all l
 * rows (plus `past`); queries from the last lq rows.
 */
function block(
  params: Map<string, tf.Variable>,
  s: StackSpec,
  i: number,
  x: tf.Tensor,
  pos0: number,
  past: LayerKV | undefined,
  queries: number,
  window: number | undefined,
): { out: tf.Tensor; kv: LayerKV } {
  const p = (name: string) => getParam(params, blockKey(s, i, name));
  const [b, l, d] = x.shape;
  const h = s.nHead, hd = d / h;
  const heads = (t: tf.Tensor, rows: number) => tf.transpose(t.reshape([b, rows, h, hd]), [0, 2, 1, 3]); // (b, h, rows, k)
  const normed = layerNorm(x, p("ln_1.weight"), p("ln_1.bias"), s.eps); // (b, l, d)
  const [Wq, Wkv] = tf.split(p("attn.c_attn.weight"), [d, 2 * d], 0); // (d, d), (2d, d)
  const xq = queries === l ? normed : tf.slice(normed, [0, l - queries, 0], [b, queries, d]); // (b, lq, d)
  const qPos0 = pos0 + l - queries;
  const q = rope(heads(linear(xq, Wq), queries), qPos0, s.ropeTheta); // (b, h, lq, k)
  const [kNew, vNew] = tf.split(linear(normed, Wkv), 2, 2); // (b, l, d) each
  let k = rope(heads(kNew, l), pos0, s.ropeTheta); // (b, h, l, k)
  let v = heads(vNew, l);
  if (past) {
    k = tf.concat([past.k, k], 2); // (b, h, t + l, k)
    v = tf.concat([past.v, v], 2);
  }
  const kPos0 = pos0 - (k.shape[2]! - l);
  const y = causalAttention(q, k, v, qPos0, kPos0, window); // (b, h, lq, k)
  const merged = tf.transpose(y, [0, 2, 1, 3]).reshape([b, queries, d]); // (b, lq, d)
  const resid = queries === l ? x : tf.slice(x, [0, l - queries, 0], [b, queries, d]);
  const hAttn = tf.add(resid, linear(merged, p("attn.c_proj.weight"))); // h + attn(LN(h))
  const mlp = linear(
    gelu(linear(layerNorm(hAttn, p("ln_2.weight"), p("ln_2.bias"), s.eps), p("mlp.c_fc.weight"))),
    p("mlp.c_proj.weight"),
  );
  return { out: tf.add(hAttn, mlp), kv: { k, v } }; // (b, lq, d)
}

/**
 * Runs x (b, l, d) through the stack and its final LayerNorm -> (b, l', d) (l' = opts.queries or l),
 * optionally continuing from / returning a KV cache.
 */
export function runStack(
  params: Map<string, tf.Variable>,
  s: StackSpec,
  x: tf.Tensor,
  opts: StackRun = {},
): { out: tf.Tensor; cache?: KVCache } {
  const l = x.shape[1]!;
  const pos0 = opts.pos0 ?? opts.cache?.position ?? 0;
  if (opts.cache && opts.cache.position !== pos0) {
    throw new Error(`runStack: cache ends at ${opts.cache.position}, input starts at ${pos0}`);
  }
  if (opts.queries !== undefined && opts.cache) {
    throw new Error("runStack: queries and cache cannot be combined");
  }
  const window = opts.window ?? opts.cache?.window;
  let h = x;
  const layers: LayerKV[] = [];
  for (let i = 0; i < s.nLayer; i++) {
    const queries = i === 0 ? Math.min(opts.queries ?? l, l) : h.shape[1]!;
    const rowPos0 = i === 0 ? pos0 : pos0 + l - h.shape[1]!; // rows after the first block are the queries
    const { out, kv } = block(params, s, i, h, rowPos0, opts.cache?.layers[i], queries, window);
    h = out;
    if (opts.returnCache) {
      const t = kv.k.shape[2]!;
      const keep = window ? Math.min(window, t) : t; // a bounded cache keeps the newest positions only
      const trim = (z: tf.Tensor) => (keep === t ? z : tf.slice(z, [0, 0, t - keep, 0], [-1, -1, keep, -1]));
      layers.push({ k: trim(kv.k), v: trim(kv.v) });
    }
  }
  const out = layerNorm(
    h,
    getParam(params, `${s.prefix}ln_f.weight`),
    getParam(params, `${s.prefix}ln_f.bias`),
    s.eps,
  );
  if (!opts.returnCache) return { out };
  return { out, cache: { layers, position: pos0 + l, length: layers[0]?.k.shape[2] ?? 0, window } };
}

/**
 * Forward FLOPs per row of a stack whose queries see `context` keys: 2 x the matmul weights
 * (q, k, v, out: 4d^2; MLP: 2df) + attention 2 x 2 x context x d (QK^T and AV).
 * Convention used for every family here: the full context is counted, with no causal halving, which is
 * what the dense masked attention here computes at training lengths (and Kaplan et al.'s / the brief's
 * count). Elementwise work (norms, softmax, GELU, RoPE) is not counted.
 */
export function stackForwardFlopsPerRow(s: StackSpec, context: number): number {
  return s.nLayer * (2 * (4 * s.d * s.d + 2 * s.d * s.f) + 4 * context * s.d);
}

// ---------------------------------------------------------------------------------------------------
// The Transformer language model

export interface TransformerLM extends LanguageModel {
  kind: "transformer" | "transformer_subword";
  config: TransformerConfig & Json;
  stack: StackSpec;
}

/** Validates a transformer config and fills defaults. */
export function parseTransformerConfig(
  raw: Json,
  where: string,
  kind: "transformer" | "transformer_subword",
): TransformerConfig {
  const f = new ConfigFields(raw, where, kind);
  const vocab = kind === "transformer" ? f.int("vocab_size", 256) : f.int("vocab_size", undefined, 2);
  if (kind === "transformer" && vocab !== 256) {
    f.fail("vocab_size", `must be 256 for the byte-level transformer (got ${vocab})`);
  }
  const d = f.int("d_model", 256);
  const cfg: TransformerConfig = {
    vocab_size: vocab,
    d_model: d,
    n_layer: f.int("n_layer", 4),
    n_head: f.int("n_head", defaultHeads(d)),
    mlp_ratio: f.int("mlp_ratio", 4),
    rope_theta: f.positive("rope_theta", 10000),
    norm_eps: f.positive("norm_eps", 1e-5),
  };
  checkHeads(f, "n_head", cfg.n_head, "d_model", d);
  f.done();
  return cfg;
}

export function initTransformer(cfg: TransformerConfig, seed = 0): Map<string, Float32Array> {
  const rng = new Rng(seed);
  const out = new Map<string, Float32Array>();
  out.set("wte.weight", rng.normalArray(cfg.vocab_size * cfg.d_model, 0.02));
  initStack(transformerStack(cfg), rng, out);
  return out;
}

/**
 * Training FLOPs per token at training length l:
 *   forward = 2 x (n_layer x (4 d^2 + 2 d f)  +  V d)      weights: attention, MLP, tied head
 *           + n_layer x 2 x 2 x l x d                        attention QK^T and AV, full l (no halving)
 *   train   = 3 x forward                                   backward = 2 x forward
 */
export function transformerTrainFlopsPerToken(cfg: TransformerConfig, length: number): number {
  const s = transformerStack(cfg);
  return 3 * (stackForwardFlopsPerRow(s, length) + 2 * cfg.vocab_size * cfg.d_model);
}

export interface TransformerForwardOptions {
  /** Sliding-window attention: each position sees itself and the window-1 before it, in every layer. */
  window?: number;
}

/** ids (b, l) -> logits (b, l, V): position t predicts token t+1. */
export function transformerForward(
  model: TransformerLM,
  ids: tf.Tensor,
  opts: TransformerForwardOptions = {},
): tf.Tensor {
  return tf.tidy(() => {
    const E = getParam(model.params, "wte.weight"); // (V, d)
    const x = embed(E, ids); // (b, l, d)
    const { out } = runStack(model.params, model.stack, x, { window: opts.window });
    return linear(out, E); // (b, l, V): the head is the embedding (tied)
  });
}

export function buildTransformer(
  kind: "transformer" | "transformer_subword",
  cfg: TransformerConfig,
  values: Map<string, Float32Array>,
): TransformerLM {
  const model: TransformerLM = {
    kind,
    config: { ...cfg },
    params: makeVariables(transformerShapes(cfg), values, kind),
    stack: transformerStack(cfg),
    logits: (ids) => transformerForward(model, ids),
    noWeightDecay: transformerNoWeightDecay,
    trainFlopsPerToken: (length) => transformerTrainFlopsPerToken(cfg, length),
  };
  return model;
}

export function asTransformer(model: LanguageModel): TransformerLM {
  if (model.kind !== "transformer" && model.kind !== "transformer_subword") {
    throw new Error(`this needs a transformer model, got "${model.kind}"`);
  }
  return model as TransformerLM;
}

// ---------------------------------------------------------------------------------------------------
// KV-cache decoding

/**
 * Runs a prompt ids (b, l) -> logits (b, l, V) at every position and the cache after it. With `window`,
 * attention is sliding-window (each position sees the last `window` positions) and the cache is bounded
 * to `window` positions; without it the cache holds every position. Nothing given is disposed.
 */
export function transformerPrefill(
  model: TransformerLM,
  ids: tf.Tensor,
  opts: TransformerForwardOptions = {},
): { logits: tf.Tensor; cache: KVCache } {
  return tidyKeep(() => {
    const E = getParam(model.params, "wte.weight");
    const { out, cache } = runStack(model.params, model.stack, embed(E, ids), {
      returnCache: true,
      window: opts.window,
    });
    return { logits: linear(out, E), cache: cache! };
  });
}

/** An empty cache (decoding from nothing). */
export function emptyCache(window?: number): KVCache {
  return { layers: [], position: 0, length: 0, window };
}

/**
 * One decoding step: ids (b) int32 (or one token id) -> logits (b, V) for the next token, and the cache
 * one position longer (or, when bounded, shifted by one). The given cache is not disposed: the caller
 * owns it (dispose it once the new one is in use; they share no tensors).
 */
export function transformerStep(
  model: TransformerLM,
  ids: tf.Tensor | number,
  cache: KVCache,
): { logits: tf.Tensor; cache: KVCache } {
  return tidyKeep(() => {
    const idsT = typeof ids === "number" ? tf.tensor([ids], [1], "int32") : ids;
    const b = idsT.shape[0];
    const E = getParam(model.params, "wte.weight");
    const x = tf.gather(E, idsT.toInt()).reshape([b, 1, model.stack.d]); // (b, 1, d)
    const past = cache.layers.length ? cache : undefined;
    const { out, cache: next } = runStack(model.params, model.stack, x, {
      pos0: cache.position,
      cache: past,
      returnCache: true,
      window: cache.window,
    });
    return { logits: linear(out, E).reshape([b, -1]), cache: next! }; // (b, V)
  });
}

for (const kind of ["transformer", "transformer_subword"] as const) {
  registerFamily({
    kind: kind as ModelKind,
    parseConfig: (raw, where) =>
      parseTransformerConfig(raw, where, kind) as unknown as LanguageModel["config"],
    init: (cfg, seed) => initTransformer(cfg as unknown as TransformerConfig, seed),
    build: (cfg, values) => buildTransformer(kind, cfg as unknown as TransformerConfig, values),
  });
}
