/**
 * Mamba (mamba_ssm `Mamba`, the selective SSM block) and the Mamba language model (`MambaLMHeadModel`),
 * which over the 256 byte values is MambaByte. Parameter names, shapes, initialisation and arithmetic
 * follow mamba_ssm, so its checkpoints load unchanged and ours load in PyTorch.
 *
 * Shapes: b batch, l length, d d_model, e d_inner = expand * d, n d_state, r dt_rank, k d_conv, V vocab.
 * Parameters live in a Map keyed by mamba_ssm's state-dict names; every function here is a plain function
 * of (model, inputs), nanoGPT-style, so gradients with respect to the parameters are just tf.grads.
 */
import type { WeightFormat } from "../kernels/wasm/decode.ts";
import * as tf from "@tensorflow/tfjs";
import { dims, type MambaConfig, noWeightDecay, parameterShapes } from "./mamba_config.ts";
import { ConfigError } from "../io/errors.ts";
import { defaultScanImpl, selectiveScan } from "../ssm/mod.ts";

import {
  channelsLastScanAvailable,
  fusedCausalConvSilu,
  fusedConvAvailable,
  fusedSelectiveScanChannelsLast,
} from "../kernels/mod.ts";
import type { ScanImpl } from "../ssm/types.ts";
import { Rng } from "../util/rng.ts";
import { causalConv, embed, linear, rmsNorm, silu } from "../nn/layers.ts";

/** Derived sizes and the parameter list live with the config (the native engine reads them there). */
export { dims, noWeightDecay, parameterShapes };

export interface MambaLM {
  config: MambaConfig;
  /** mamba_ssm state-dict name -> trainable variable. The tied lm_head is not stored separately. */
  params: Map<string, tf.Variable>;
  /**
   * The weight format the CPU stepper decodes this model with (lib/decode/stepper.ts; loadModel's `weights`
   * option sets it); undefined: float32.
   */
  decodeWeights?: WeightFormat;
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
  /** Continue from this state (the state after earlier ids); default: the start of a sequence. */
  state?: MambaState;
  /** Also return each layer's state after the last position (for prefill). */
  returnState?: boolean;
}

const layerKey = (i: number, name: string) => `backbone.layers.${i}.${name}`;

/** mamba_ssm's LayerNorm variant (rms_norm false) is not implemented here: every MambaByte uses RMSNorm. */
function requireRmsNorm(cfg: MambaConfig): void {
  if (!cfg.rms_norm) {
    throw new ConfigError(
      "config",
      "rms_norm",
      "rms_norm is false (LayerNorm): only RMSNorm Mamba models (every MambaByte checkpoint) are supported",
    );
  }
}

/**
 * Fresh parameters, initialised as mamba_ssm does (seeded, identical on every backend):
 * Linear / Conv1d: PyTorch's default U(+-1/sqrt(fan_in)); embedding N(0, 0.02); dt_proj.weight
 * U(+-r^-0.5 * dt_scale); dt_proj.bias = softplus^-1(dt), dt log-uniform in [dt_min, dt_max] floored at
 * dt_init_floor; A_log[e, n] = log(n + 1) (S4D-real); D = 1; norms 1; out_proj rescaled by 1/sqrt(n_layer).
 */
export function initParameters(cfg: MambaConfig, seed = 0): Map<string, Float32Array> {
  requireRmsNorm(cfg);
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
  requireRmsNorm(cfg);
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

function param(model: MambaLM, name: string): tf.Tensor {
  const p = model.params.get(name);
  if (!p) throw new Error(`model has no parameter "${name}"`);
  return p;
}

// ---------------------------------------------------------------------------------------------------
// The Mamba mixer (one block's sequence transformation): the one place its math is written. The whole
// sequence, a chunk continuing from a state (long evaluations, speculative verification) and one
// recurrent step (decoding) all run through `mixer`.

/** hidden (b, l, d), optionally continuing from the layer's `state` -> out (b, l, d) [and its new state]. */
export function mixer(
  model: MambaLM,
  layer: number,
  hidden: tf.Tensor,
  opts: ForwardOptions = {},
): { out: tf.Tensor; state?: LayerState } {
  const p = (name: string) => param(model, layerKey(layer, `mixer.${name}`));
  const { e, n, r, k } = dims(model.config);
  const [b, l] = hidden.shape;
  const bias = model.config.ssm_cfg.bias;
  const state = opts.state?.[layer];
  const xz = linear(hidden, p("in_proj.weight"), bias ? p("in_proj.bias") : undefined); // (b, l, 2e)
  const [xIn, z] = tf.split(xz, 2, 2); // (b, l, e) each
  // The causal conv reads the k-1 inputs before this sequence: the state's (its conv window holds the
  // last k inputs, oldest first), or zeros at the start, which is the conv's own left padding.
  const convIn = state // (b, k-1+l, e) with a state, else (b, l, e)
    ? tf.concat([toLength(tf.slice(state.conv, [0, 0, 1], [b, e, k - 1])), xIn], 1)
    : xIn;
  const convBias = model.config.ssm_cfg.conv_bias ? p("conv1d.bias") : undefined;
  const convOut = fusedConvAvailable() // cpu/wasm: one op, forward and backward (same math)
    ? fusedCausalConvSilu(convIn, p("conv1d.weight"), convBias)
    : silu(causalConv(convIn, p("conv1d.weight"), convBias));
  const x = state ? tf.slice(convOut, [0, k - 1, 0], [b, l, e]) : convOut; // (b, l, e)
  const xDbl = linear(x, p("x_proj.weight")); // (b, l, r + 2n)
  const [dtLow, Bm, Cm] = tf.split(xDbl, [r, n, n], 2); // (b, l, r), (b, l, n), (b, l, n)
  const dt = linear(dtLow, p("dt_proj.weight")); // (b, l, e); bias goes into the scan, as in mamba_ssm
  const A = tf.neg(tf.exp(p("A_log"))); // (e, n)
  const returnLastState = !!opts.returnState;
  const scanOpts = { deltaSoftplus: true, initialState: state?.ssm, returnLastState };
  let y: tf.Tensor, lastState: tf.Tensor | undefined; // y (b, l, e)
  if ((opts.impl ?? defaultScanImpl()) === "fused" && channelsLastScanAvailable()) {
    // cpu/wasm: the same fused scan on the (b, l, c) tensors as they are, without the transposes
    ({ y, lastState } = fusedSelectiveScanChannelsLast(
      { u: x, delta: dt, A, B: Bm, C: Cm, D: p("D"), z, deltaBias: p("dt_proj.bias") },
      scanOpts,
    ));
  } else {
    const s = selectiveScan(
      toChannels(x),
      toChannels(dt),
      A,
      toChannels(Bm),
      toChannels(Cm),
      p("D"),
      toChannels(z),
      p("dt_proj.bias"),
      { ...scanOpts, impl: opts.impl },
    ); // y (b, e, l)
    y = toLength(s.y);
    lastState = s.lastState;
  }
  const out = linear(y, p("out_proj.weight"), bias ? p("out_proj.bias") : undefined); // (b, l, d)
  if (!returnLastState) return { out };
  // the new conv window: the last k conv inputs (zeros before the first input)
  const padded = convIn.shape[1]! < k ? tf.pad(convIn, [[0, 0], [k - convIn.shape[1]!, 0], [0, 0]]) : convIn;
  const conv = toChannels(tf.slice(padded, [0, padded.shape[1]! - k, 0], [b, k, e])); // (b, e, k)
  return { out, state: { conv, ssm: lastState! } };
}

/** (b, l, c) -> (b, c, l): mamba_ssm's channels-first layout of the scan and the conv state. */
const toChannels = (t: tf.Tensor) => tf.transpose(t, [0, 2, 1]);
/** (b, c, l) -> (b, l, c). */
const toLength = (t: tf.Tensor) => tf.transpose(t, [0, 2, 1]);

// ---------------------------------------------------------------------------------------------------
// The language model

/**
 * ids (b, l) int32 -> logits (b, l, V_padded). With `state`, the sequence continues from it (the state
 * after earlier ids: forward(ids[:, :a]) then forward(ids[:, a:], {state}) gives the logits of one pass
 * over ids); with `returnState`, also every layer's state after the last position. A given state is
 * never disposed (the caller owns it, e.g. to roll back).
 */
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
    const { out, state: s } = mixer(model, i, normed, opts);
    h = tf.add(h, out); // h = h + mixer(norm(h))
    if (s) state.push(s);
  }
  const final = rmsNorm(h, param(model, "backbone.norm_f.weight"));
  const head = cfg.tie_embeddings ? E : param(model, "lm_head.weight");
  const logits = linear(final, head); // (b, l, V)
  return opts.returnState ? { logits, state } : { logits };
}

/**
 * Reads ids (b, l) from `state` (none: the start of a sequence) in one pass -> the logits at every
 * position and the state after the last one. `state` is not disposed.
 */
export function prefill(model: MambaLM, ids: tf.Tensor, state?: MambaState, opts: ForwardOptions = {}) {
  return tf.tidy(() => forward(model, ids, { ...opts, state, returnState: true })) as {
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
 * One recurrent step: ids (b) -> logits (b, V) and the next state, O(1) in the context length: a
 * one-position `prefill` from `state` (which is not disposed: the caller owns it, e.g. to roll back).
 */
export function step(
  model: MambaLM,
  ids: tf.Tensor,
  state: MambaState,
): { logits: tf.Tensor; state: MambaState } {
  return tf.tidy(() => {
    const b = ids.shape[0];
    const r = forward(model, ids.reshape([b, 1]), { state, returnState: true });
    return { logits: r.logits.reshape([b, -1]), state: r.state! };
  }) as { logits: tf.Tensor; state: MambaState };
}
