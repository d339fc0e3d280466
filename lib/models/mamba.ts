/**
 * Mamba (mamba_ssm `Mamba`, the selective SSM block) and the Mamba language model (`MambaLMHeadModel`),
 * which over the 256 byte values is MambaByte. Parameter names, shapes, initialisation and arithmetic
 * follow mamba_ssm, so its checkpoints load unchanged and ours load in PyTorch.
 *
 * Shapes: b batch, l length, d d_model, e d_inner = expand * d, n d_state, r dt_rank, k d_conv, V vocab.
 * Parameters live in a Map keyed by mamba_ssm's state-dict names; every function here is a plain function
 * of (model, inputs), nanoGPT-style, so gradients with respect to the parameters are just tf.grads.
 */
import * as tf from "@tensorflow/tfjs";
import { dInner, dtRank, type MambaConfig, paddedVocab } from "../io/config.ts";
import { defaultScanImpl, selectiveScan } from "../ssm/mod.ts";
import { fastMatMul } from "../ssm/kernels/matmul_op.ts";
import { channelsLastScanAvailable, fusedSelectiveScanChannelsLast } from "../ssm/kernels/op.ts";
import { fusedCausalConvSilu, fusedConvAvailable } from "../ssm/kernels/conv_op.ts";
import type { ScanImpl } from "../ssm/types.ts";
import { Rng } from "../util/rng.ts";

export interface MambaLM {
  config: MambaConfig;
  /** mamba_ssm state-dict name -> trainable variable. The tied lm_head is not stored separately. */
  params: Map<string, tf.Variable>;
}

/** Per-layer recurrent state for decoding: O(1) in the sequence length. */
export type LayerState = {
  /** The last k inputs of the causal conv, (b, e, k), oldest first (mamba_ssm's conv_state). */
  conv: tf.Tensor;
  /** The SSM state h, (b, e, n). */
  ssm: tf.Tensor;
};
export type MambaState = LayerState[];

export interface ForwardOptions {
  impl?: ScanImpl;
  /** Also return each layer's state after the last position (for prefill). */
  returnState?: boolean;
}

const layerKey = (i: number, name: string) => `backbone.layers.${i}.${name}`;

/** Dimensions derived from the config, named as in the shape comments. */
export function dims(cfg: MambaConfig) {
  return {
    d: cfg.d_model,
    e: dInner(cfg),
    n: cfg.ssm_cfg.d_state,
    r: dtRank(cfg),
    k: cfg.ssm_cfg.d_conv,
    V: paddedVocab(cfg),
    L: cfg.n_layer,
  };
}

/** Every parameter's mamba_ssm name and shape, in state-dict order. */
export function parameterShapes(cfg: MambaConfig): [string, number[]][] {
  const { d, e, n, r, k, V, L } = dims(cfg);
  const out: [string, number[]][] = [["backbone.embedding.weight", [V, d]]];
  for (let i = 0; i < L; i++) {
    out.push(
      [layerKey(i, "mixer.in_proj.weight"), [2 * e, d]],
      ...(cfg.ssm_cfg.bias ? [[layerKey(i, "mixer.in_proj.bias"), [2 * e]] as [string, number[]]] : []),
      [layerKey(i, "mixer.conv1d.weight"), [e, 1, k]],
      ...(cfg.ssm_cfg.conv_bias ? [[layerKey(i, "mixer.conv1d.bias"), [e]] as [string, number[]]] : []),
      [layerKey(i, "mixer.x_proj.weight"), [r + 2 * n, e]],
      [layerKey(i, "mixer.dt_proj.weight"), [e, r]],
      [layerKey(i, "mixer.dt_proj.bias"), [e]],
      [layerKey(i, "mixer.A_log"), [e, n]],
      [layerKey(i, "mixer.D"), [e]],
      [layerKey(i, "mixer.out_proj.weight"), [d, e]],
      ...(cfg.ssm_cfg.bias ? [[layerKey(i, "mixer.out_proj.bias"), [d]] as [string, number[]]] : []),
      [layerKey(i, "norm.weight"), [d]],
    );
  }
  out.push(["backbone.norm_f.weight", [d]]);
  if (!cfg.tie_embeddings) out.push(["lm_head.weight", [V, d]]);
  return out;
}

export function countParameters(cfg: MambaConfig): number {
  return parameterShapes(cfg).reduce((s, [, shape]) => s + shape.reduce((a, b) => a * b, 1), 0);
}

/** Parameters that AdamW must not decay (mamba_ssm marks A_log and D `_no_weight_decay`; norms, biases). */
export function noWeightDecay(name: string): boolean {
  return /(A_log|\.D|norm(_f)?\.weight|\.bias)$/.test(name);
}

/**
 * Fresh parameters, initialised as mamba_ssm does (seeded, identical on every backend):
 * Linear / Conv1d: PyTorch's default U(+-1/sqrt(fan_in)); embedding N(0, 0.02); dt_proj.weight
 * U(+-r^-0.5 * dt_scale); dt_proj.bias = softplus^-1(dt), dt log-uniform in [dt_min, dt_max] floored at
 * dt_init_floor; A_log[e, n] = log(n + 1) (S4D-real); D = 1; norms 1; out_proj rescaled by 1/sqrt(n_layer).
 */
export function initParameters(cfg: MambaConfig, seed = 0): Map<string, Float32Array> {
  const rng = new Rng(seed);
  const { d, e, n, r, k, V, L } = dims(cfg);
  const s = cfg.ssm_cfg;
  const uniform = (count: number, bound: number) => rng.uniformArray(count, -bound, bound);
  const out = new Map<string, Float32Array>();
  out.set("backbone.embedding.weight", rng.normalArray(V * d, 0.02));
  for (let i = 0; i < L; i++) {
    out.set(layerKey(i, "mixer.in_proj.weight"), uniform(2 * e * d, 1 / Math.sqrt(d)));
    if (s.bias) out.set(layerKey(i, "mixer.in_proj.bias"), new Float32Array(2 * e));
    out.set(layerKey(i, "mixer.conv1d.weight"), uniform(e * k, 1 / Math.sqrt(k)));
    if (s.conv_bias) out.set(layerKey(i, "mixer.conv1d.bias"), uniform(e, 1 / Math.sqrt(k)));
    out.set(layerKey(i, "mixer.x_proj.weight"), uniform((r + 2 * n) * e, 1 / Math.sqrt(e)));
    out.set(layerKey(i, "mixer.dt_proj.weight"), uniform(e * r, s.dt_scale * r ** -0.5));
    const dtBias = new Float32Array(e);
    for (let j = 0; j < e; j++) {
      const logDt = Math.log(s.dt_min) + rng.uniform() * (Math.log(s.dt_max) - Math.log(s.dt_min));
      const dt = Math.max(Math.exp(logDt), s.dt_init_floor);
      dtBias[j] = dt + Math.log(-Math.expm1(-dt)); // inverse of softplus
    }
    out.set(layerKey(i, "mixer.dt_proj.bias"), dtBias);
    const aLog = new Float32Array(e * n);
    for (let j = 0; j < e; j++) for (let m = 0; m < n; m++) aLog[j * n + m] = Math.log(m + 1);
    out.set(layerKey(i, "mixer.A_log"), aLog);
    out.set(layerKey(i, "mixer.D"), new Float32Array(e).fill(1));
    out.set(layerKey(i, "mixer.out_proj.weight"), uniform(d * e, 1 / Math.sqrt(e) / Math.sqrt(L)));
    if (s.bias) out.set(layerKey(i, "mixer.out_proj.bias"), new Float32Array(d));
    out.set(layerKey(i, "norm.weight"), new Float32Array(d).fill(1));
  }
  out.set("backbone.norm_f.weight", new Float32Array(d).fill(1));
  if (!cfg.tie_embeddings) out.set("lm_head.weight", rng.normalArray(V * d, 0.02));
  return out;
}

/** Wraps host arrays (from `initParameters` or a checkpoint) as trainable variables. */
export function createMambaLM(cfg: MambaConfig, values: Map<string, Float32Array>): MambaLM {
  const params = new Map<string, tf.Variable>();
  for (const [name, shape] of parameterShapes(cfg)) {
    const v = values.get(name);
    if (!v) throw new Error(`createMambaLM: missing parameter "${name}"`);
    const size = shape.reduce((a, b) => a * b, 1);
    if (v.length !== size) {
      throw new Error(
        `createMambaLM: parameter "${name}" has ${v.length} values, expected [${shape}] = ${size}`,
      );
    }
    params.set(name, tf.variable(tf.tensor(v, shape, "float32"), true));
  }
  return { config: cfg, params };
}

export function initMambaLM(cfg: MambaConfig, seed = 0): MambaLM {
  return createMambaLM(cfg, initParameters(cfg, seed));
}

export function disposeMambaLM(model: MambaLM): void {
  for (const v of model.params.values()) v.dispose();
}

/** Reads all parameters back to the host (for saving). */
export async function parameterValues(model: MambaLM): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [name, v] of model.params) out.set(name, (await v.data()) as Float32Array);
  return out;
}

function param(model: MambaLM, name: string): tf.Tensor {
  const p = model.params.get(name);
  if (!p) throw new Error(`model has no parameter "${name}"`);
  return p;
}

// ---------------------------------------------------------------------------------------------------
// Building blocks

/** x (..., in) @ W^T (+ bias), W (out, in) as PyTorch stores it -> (..., out). */
export function linear(x: tf.Tensor, W: tf.Tensor, bias?: tf.Tensor): tf.Tensor {
  const inDim = x.shape[x.rank - 1];
  const y = fastMatMul(x.reshape([-1, inDim]), W, false, true);
  const out = bias ? tf.add(y, bias) : y;
  return out.reshape([...x.shape.slice(0, -1), W.shape[0]]);
}

/** RMSNorm over the last axis: x / sqrt(mean(x^2) + eps) * w. */
export function rmsNorm(x: tf.Tensor, w: tf.Tensor, eps = 1e-5): tf.Tensor {
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps))), w);
}

export const silu = (x: tf.Tensor) => tf.mul(x, tf.sigmoid(x));

/**
 * Embedding lookup E[ids]: (V, d), (b, l) -> (b, l, d). tf.gather's gradient needs UnsortedSegmentSum,
 * which the wasm backend lacks; the gradient here is written as onehot(ids)^T @ dy, a matmul every
 * backend has (it costs what the tied output head costs, b*l*V*d).
 */
export function embed(E: tf.Tensor, ids: tf.Tensor): tf.Tensor {
  const [V, d] = E.shape;
  const flat = ids.reshape([-1]).toInt();
  // deno-lint-ignore no-explicit-any
  const lookup = tf.customGrad(
    ((table: tf.Tensor, save: tf.GradSaveFunc) => {
      save([flat]);
      return {
        value: tf.gather(table, flat), // (b*l, d)
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
          fastMatMul(tf.oneHot(saved[0], V).toFloat(), dy, true, false), // (V, d)
      };
    }) as any,
  );
  return (lookup(E) as tf.Tensor).reshape([...ids.shape, d]);
}

/**
 * Causal depthwise conv1d along l with bias: x (b, l, e), w (e, 1, k) -> (b, l, e).
 * y_t = bias + sum_j w[j] x_{t-k+1+j}: written as k shifted multiply-adds because tfjs has no causal
 * padding and wasm has no depthwise-conv gradient; for k = 4 this is also cheap.
 */
export function causalConv(x: tf.Tensor, w: tf.Tensor, bias?: tf.Tensor): tf.Tensor {
  const [b, l, e] = x.shape;
  const k = w.shape[2]!;
  const xp = tf.pad(x, [[0, 0], [k - 1, 0], [0, 0]]); // (b, l+k-1, e)
  const taps = tf.unstack(w.reshape([e, k]), 1); // k x (e)
  let y: tf.Tensor = bias ? bias.reshape([1, 1, e]) : tf.zeros([1, 1, e]);
  for (let j = 0; j < k; j++) y = tf.add(y, tf.mul(tf.slice(xp, [0, j, 0], [b, l, e]), taps[j]));
  return y;
}

// ---------------------------------------------------------------------------------------------------
// The Mamba mixer (one block's sequence transformation)

/** hidden (b, l, d) -> (b, l, d); optionally the layer's final recurrent state. */
export function mixerForward(
  model: MambaLM,
  layer: number,
  hidden: tf.Tensor,
  opts: ForwardOptions = {},
): { out: tf.Tensor; state?: LayerState } {
  const p = (name: string) => param(model, layerKey(layer, `mixer.${name}`));
  const { e, n, r, k } = dims(model.config);
  const [b, l] = hidden.shape;
  const bias = model.config.ssm_cfg.bias;
  const xz = linear(hidden, p("in_proj.weight"), bias ? p("in_proj.bias") : undefined); // (b, l, 2e)
  const [xIn, z] = tf.split(xz, 2, 2); // (b, l, e) each
  const convBias = model.config.ssm_cfg.conv_bias ? p("conv1d.bias") : undefined;
  const x = fusedConvAvailable() // cpu/wasm: one op, forward and backward (same math)
    ? fusedCausalConvSilu(xIn, p("conv1d.weight"), convBias)
    : silu(causalConv(xIn, p("conv1d.weight"), convBias)); // (b, l, e)
  const xDbl = linear(x, p("x_proj.weight")); // (b, l, r + 2n)
  const [dtLow, Bm, Cm] = tf.split(xDbl, [r, n, n], 2); // (b, l, r), (b, l, n), (b, l, n)
  const dt = linear(dtLow, p("dt_proj.weight")); // (b, l, e); bias goes into the scan, as in mamba_ssm
  const A = tf.neg(tf.exp(p("A_log"))); // (e, n)
  const toChannels = (t: tf.Tensor) => tf.transpose(t, [0, 2, 1]); // (b, l, c) <-> (b, c, l)
  let y: tf.Tensor, lastState: tf.Tensor | undefined; // y (b, l, e)
  if ((opts.impl ?? defaultScanImpl()) === "fused" && channelsLastScanAvailable()) {
    // cpu/wasm: the same fused scan on the (b, l, c) tensors as they are, without the transposes
    ({ y, lastState } = fusedSelectiveScanChannelsLast(
      { u: x, delta: dt, A, B: Bm, C: Cm, D: p("D"), z, deltaBias: p("dt_proj.bias") },
      { deltaSoftplus: true, returnLastState: opts.returnState },
    ));
  } else {
    const r = selectiveScan(
      toChannels(x),
      toChannels(dt),
      A,
      toChannels(Bm),
      toChannels(Cm),
      p("D"),
      toChannels(z),
      p("dt_proj.bias"),
      { deltaSoftplus: true, returnLastState: opts.returnState, impl: opts.impl },
    ); // y (b, e, l)
    y = toChannels(r.y);
    lastState = r.lastState;
  }
  const out = linear(y, p("out_proj.weight"), bias ? p("out_proj.bias") : undefined); // (b, l, d)
  if (!opts.returnState) return { out };
  // conv state: the last k conv inputs, zero-padded on the left for prompts shorter than k
  const padded = tf.pad(xIn, [[0, 0], [Math.max(0, k - l), 0], [0, 0]]);
  const conv = toChannels(tf.slice(padded, [0, padded.shape[1]! - k, 0], [b, k, e])); // (b, e, k)
  return { out, state: { conv, ssm: lastState! } };
}

// ---------------------------------------------------------------------------------------------------
// The language model

/** ids (b, l) int32 -> logits (b, l, V_padded); with returnState also the per-layer final state. */
export function forward(
  model: MambaLM,
  ids: tf.Tensor,
  opts: ForwardOptions = {},
): { logits: tf.Tensor; state?: MambaState } {
  const cfg = model.config;
  const E = param(model, "backbone.embedding.weight");
  let h = embed(E, ids); // (b, l, d): the residual stream, fp32 throughout
  const state: MambaState = [];
  for (let i = 0; i < cfg.n_layer; i++) {
    const normed = rmsNorm(h, param(model, layerKey(i, "norm.weight"))); // pre-norm
    const { out, state: s } = mixerForward(model, i, normed, opts);
    h = tf.add(h, out); // h = h + mixer(norm(h))
    if (s) state.push(s);
  }
  const final = rmsNorm(h, param(model, "backbone.norm_f.weight"));
  const head = cfg.tie_embeddings ? E : param(model, "lm_head.weight");
  const logits = linear(final, head); // (b, l, V)
  return opts.returnState ? { logits, state } : { logits };
}

/**
 * Mean cross-entropy (nats) of predicting byte t+1 from bytes <= t, over all l-1 positions of each row.
 * Works with one-hot targets (no gather), so it is differentiable on every backend.
 */
export function crossEntropy(logits: tf.Tensor, targets: tf.Tensor): tf.Tensor {
  const V = logits.shape[logits.rank - 1];
  const logp = tf.logSoftmax(logits.reshape([-1, V])); // (b*l, V)
  const onehot = tf.oneHot(targets.reshape([-1]).toInt(), V).toFloat();
  return tf.neg(tf.mean(tf.sum(tf.mul(onehot, logp), 1)));
}

/** Mean next-byte cross-entropy (nats) of ids (b, l): positions 0..l-2 predict 1..l-1. */
export function nextByteLoss(model: MambaLM, ids: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor {
  return tf.tidy(() => {
    const [b, l] = ids.shape;
    const { logits } = forward(model, tf.slice(ids, [0, 0], [b, l - 1]), opts);
    return crossEntropy(logits, tf.slice(ids, [0, 1], [b, l - 1]));
  });
}

/** Runs a prompt (b, l) through the model; returns the logits at every position and the final state. */
export function prefill(model: MambaLM, ids: tf.Tensor, opts: ForwardOptions = {}) {
  return tf.tidy(() => forward(model, ids, { ...opts, returnState: true })) as {
    logits: tf.Tensor;
    state: MambaState;
  };
}

/** An all-zero state, as before any input. */
export function emptyState(model: MambaLM, batch: number): MambaState {
  const { e, n, k } = dims(model.config);
  return Array.from({ length: model.config.n_layer }, () => ({
    conv: tf.zeros([batch, e, k]),
    ssm: tf.zeros([batch, e, n]),
  }));
}

export function disposeState(state: MambaState): void {
  for (const s of state) {
    s.conv.dispose();
    s.ssm.dispose();
  }
}

/**
 * One recurrent step: ids (b) -> logits (b, V) and the next state, O(1) in the context length. The
 * given state is not disposed (the caller owns it, e.g. to roll back).
 */
export function step(
  model: MambaLM,
  ids: tf.Tensor,
  state: MambaState,
): { logits: tf.Tensor; state: MambaState } {
  return tf.tidy(() => {
    const cfg = model.config;
    const { e, n, r, k } = dims(cfg);
    const bias = cfg.ssm_cfg.bias;
    const E = param(model, "backbone.embedding.weight");
    let h = tf.gather(E, ids.toInt()); // (b, d)
    const next: MambaState = [];
    for (let i = 0; i < cfg.n_layer; i++) {
      const p = (name: string) => param(model, layerKey(i, `mixer.${name}`));
      const normed = rmsNorm(h, param(model, layerKey(i, "norm.weight")));
      const xz = linear(normed, p("in_proj.weight"), bias ? p("in_proj.bias") : undefined); // (b, 2e)
      const [xIn, z] = tf.split(xz, 2, 1); // (b, e)
      const b = xIn.shape[0];
      // shift the conv window left by one and append the new input
      const conv = tf.concat([tf.slice(state[i].conv, [0, 0, 1], [b, e, k - 1]), xIn.reshape([b, e, 1])], 2);
      let x = tf.sum(tf.mul(conv, p("conv1d.weight").reshape([1, e, k])), 2); // (b, e)
      if (cfg.ssm_cfg.conv_bias) x = tf.add(x, p("conv1d.bias"));
      x = silu(x);
      const [dtLow, Bm, Cm] = tf.split(linear(x, p("x_proj.weight")), [r, n, n], 1); // (b, r), (b, n), (b, n)
      const dt = tf.softplus(linear(dtLow, p("dt_proj.weight"), p("dt_proj.bias"))).reshape([b, e, 1]);
      const A = tf.neg(tf.exp(p("A_log"))); // (e, n)
      const ssm = tf.add(
        tf.mul(state[i].ssm, tf.exp(tf.mul(dt, A))), // exp(dt A) h
        tf.mul(tf.mul(dt, x.reshape([b, e, 1])), Bm.reshape([b, 1, n])), // + dt B x
      ); // (b, e, n)
      let y = tf.add(tf.sum(tf.mul(ssm, Cm.reshape([b, 1, n])), 2), tf.mul(x, p("D"))); // <h, C> + D x
      y = tf.mul(y, silu(z));
      h = tf.add(h, linear(y, p("out_proj.weight"), bias ? p("out_proj.bias") : undefined));
      next.push({ conv, ssm });
    }
    const final = rmsNorm(h, param(model, "backbone.norm_f.weight"));
    const logits = linear(final, cfg.tie_embeddings ? E : param(model, "lm_head.weight")); // (b, V)
    return { logits, state: next };
  }) as { logits: tf.Tensor; state: MambaState };
}
