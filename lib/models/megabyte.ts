/**
 * MegaByte (Yu et al. 2023, "MEGABYTE: Predicting Million-byte Sequences with Multiscale Transformers"),
 * the byte-level baseline PAPER.md describes: bytes are cut into patches of P; a large global Transformer
 * runs over the patches, a small local Transformer inside each patch predicts its bytes. Attention costs
 * O((l/P)^2 + l P) instead of O(l^2), and the big model runs once per P bytes.
 *
 * For ids (b, l), l = K P, input patch k being ids[kP .. kP+P-1]; position t predicts byte t+1:
 *   global input  g_in[k] = W_patch concat_p(E_g[ids[(k-1)P + p]])    (k >= 1),  g_in[0] = start patch
 *                 i.e. the patch embeddings shifted by one patch, a learned start patch in front;
 *   global out    G = LN(global_stack(g_in))                                             (b, K, d_g)
 *   local input   x[k, p] = E_l[ids[kP + p]] + (W_gl G[k])[p]   (W_gl: d_g -> P d_l, one slice per p)
 *   local out     logits[kP + p] = E_l^T LN(local_stack(x[k]))[p]   (the local stack is causal in p)
 * so the prediction at position t = kP+p sees bytes < kP through the global model and kP..t through the
 * local one: every byte <= t, nothing later.
 *
 * Relation to the paper's indexing: MegaByte feeds the local model the target sequence shifted by one
 * byte (E_l[x_{kP+p-1}]) with a pad byte at the very start, and the global model the target patches
 * shifted by one patch. Here the local model reads the model's inputs ids[t] directly — these ARE the
 * targets shifted by one byte, with ids[0] in the role of the pad byte — and the patch boundaries are
 * aligned with the inputs, so `logits` keeps the LanguageModel contract (position t predicts t+1, all l
 * positions predicted) with l a multiple of P. Each patch's global context then ends one byte earlier
 * than the paper's; that byte reaches the local model at p = 0, so no information is lost.
 *
 * Positions: the position of a byte inside its patch is its slot in the concatenation (and in W_gl's
 * slices); patches get rotary embeddings in the global stack, bytes rotary embeddings in the local one,
 * so the model is defined at any length (the paper used learned absolute positions).
 *
 * Departures from the paper's definition (parameter counts at its 758M+262M shape: global width
 * d_g = 1536 = P D_G x 24 layers, local d_l = 1024 x 18 layers, P = 8, so D_G = 192; context 8192):
 * - Patch embedder: the paper's global model reads the concatenation of the P byte embeddings
 *   (P x D_G = d_g wide) directly; here a learned `global.patch_proj` (d_g x P e, e = d_byte_global)
 *   maps the concatenation to d_g, so the byte embedding width e is free of d_g / P (tiny models, sweeps)
 *   and the patch gets one learned mixing before the global stack. Cost: d_g P e = 1536 x 1536 =
 *   2,359,296 parameters (e = 192, the default).
 * - Global to local: the paper cuts each global output into P slices of D_G and applies ONE map
 *   w_GL (D_G x d_l) shared by the slots; here `global_to_local` is a full d_g x (P d_l) matrix, one
 *   d_g x d_l block per slot, each reading the whole global output: with patch_proj mixing the slots (and
 *   d_g not necessarily a multiple of P) the global output has no per-slot slices to cut.
 *   Cost: 1536 x 8192 = 12,582,912 parameters instead of 192 x 1024 = 196,608 (P^2 = 64x; +12,386,304).
 * - Positions: rotary (no parameters) instead of the paper's learned byte positions added in the patch
 *   embedder (T x D_G = 8192 x 192 = 1,572,864 parameters): defined at any length (the extrapolation
 *   experiment), and the same positional scheme as the other baselines here.
 * - The global input before the first patch is a learned `global.start_patch` (d_g = 1536 parameters)
 *   in place of the paper's padding patch; the local model reads ids[t] instead of the shifted targets
 *   (see above). Net at this shape: +13,174,272 parameters (+1.3% of 758M+262M).
 *
 * Shapes: b batch, l bytes, P patch size, K = l/P patches, d_g / d_l global / local widths, e byte
 * embedding width of the patch embedder.
 */
import * as tf from "@tensorflow/tfjs";
import { Rng } from "../util/rng.ts";
import type { LanguageModel } from "./lm.ts";
import { registerFamily } from "./registry.ts";
import {
  checkHeads,
  ConfigFields,
  defaultHeads,
  getParam,
  initStack,
  type KVCache,
  makeVariables,
  runStack,
  stackForwardFlopsPerRow,
  type StackSpec,
  tidyKeep,
  transformerNoWeightDecay,
} from "./transformer.ts";
import { embed, linear } from "../nn/layers.ts";
import { type MegaByteConfig, megabyteShapes, stacks } from "./megabyte_config.ts";
export { type MegaByteConfig, megabyteShapes } from "./megabyte_config.ts";

type Json = Record<string, unknown>;

export interface MegaByteLM extends LanguageModel {
  kind: "megabyte";
  config: MegaByteConfig & Json;
  global: StackSpec;
  local: StackSpec;
}

export function parseMegaByteConfig(raw: Json, where: string): MegaByteConfig {
  const f = new ConfigFields(raw, where, "megabyte");
  const vocab = f.int("vocab_size", 256);
  if (vocab !== 256) f.fail("vocab_size", `must be 256 (MegaByte reads bytes), got ${vocab}`);
  const P = f.int("patch_size", 8);
  const dg = f.int("d_global", 256);
  const dl = f.int("d_local", 128);
  const cfg: MegaByteConfig = {
    vocab_size: 256,
    patch_size: P,
    d_global: dg,
    n_layer_global: f.int("n_layer_global", 4),
    n_head_global: f.int("n_head_global", defaultHeads(dg)),
    d_local: dl,
    n_layer_local: f.int("n_layer_local", 2),
    n_head_local: f.int("n_head_local", defaultHeads(dl)),
    // default: the concatenated patch is about as wide as the global model (MegaByte's P * D_G layout)
    d_byte_global: f.int("d_byte_global", Math.ceil(dg / P)),
    mlp_ratio: f.int("mlp_ratio", 4),
    rope_theta: f.positive("rope_theta", 10000),
    norm_eps: f.positive("norm_eps", 1e-5),
  };
  checkHeads(f, "n_head_global", cfg.n_head_global, "d_global", dg);
  checkHeads(f, "n_head_local", cfg.n_head_local, "d_local", dl);
  f.done();
  return cfg;
}

/** GPT-2 initialisation (N(0, 0.02), residual projections scaled by depth) for both stacks. */
export function initMegaByte(cfg: MegaByteConfig, seed = 0): Map<string, Float32Array> {
  const rng = new Rng(seed);
  const { global, local } = stacks(cfg);
  const P = cfg.patch_size;
  const out = new Map<string, Float32Array>();
  out.set("global.wte.weight", rng.normalArray(256 * cfg.d_byte_global, 0.02));
  out.set("global.patch_proj.weight", rng.normalArray(cfg.d_global * P * cfg.d_byte_global, 0.02));
  out.set("global.start_patch", rng.normalArray(cfg.d_global, 0.02));
  initStack(global, rng, out);
  out.set("global_to_local.weight", rng.normalArray(P * cfg.d_local * cfg.d_global, 0.02));
  out.set("local.wte.weight", rng.normalArray(256 * cfg.d_local, 0.02));
  initStack(local, rng, out);
  return out;
}

/**
 * Training FLOPs per byte at training length l (K = l/P patches), weights counted as 2 FLOPs each use:
 *   global, per patch = 2 P e d_g                               patch embedder (concat -> d_g)
 *                     + n_g (2 (4 d_g^2 + 2 d_g f_g) + 4 K d_g)  global stack, attention over K patches
 *                     + 2 d_g P d_l                             global -> local projection
 *   local, per byte   = n_l (2 (4 d_l^2 + 2 d_l f_l) + 4 P d_l)  local stack, attention over P bytes
 *                     + 2 x 256 d_l                             tied byte head
 *   forward per byte  = global / P + local;   train = 3 x forward   (backward = 2 x forward)
 * Attention counts the full context (K, P) without causal halving, as for every family here.
 */
export function megabyteTrainFlopsPerToken(cfg: MegaByteConfig, length: number): number {
  const { global, local } = stacks(cfg);
  const P = cfg.patch_size;
  const K = length / P;
  const perPatch = 2 * P * cfg.d_byte_global * cfg.d_global + stackForwardFlopsPerRow(global, K) +
    2 * cfg.d_global * P * cfg.d_local;
  const perByte = stackForwardFlopsPerRow(local, P) + 2 * 256 * cfg.d_local;
  return 3 * (perPatch / P + perByte);
}

/** Patch embeddings of complete patches: ids (b, k P) -> (b, k, d_g). */
function patchEmbed(model: MegaByteLM, ids: tf.Tensor): tf.Tensor {
  const [b, n] = ids.shape;
  const P = model.config.patch_size;
  const bytes = embed(getParam(model.params, "global.wte.weight"), ids); // (b, kP, e)
  const concat = bytes.reshape([b, n / P, P * model.config.d_byte_global]); // (b, k, P e): slot p = byte p
  return linear(concat, getParam(model.params, "global.patch_proj.weight")); // (b, k, d_g)
}

/** The learned start patch for a batch: (b, 1, d_g). */
function startPatch(model: MegaByteLM, b: number): tf.Tensor {
  return tf.tile(getParam(model.params, "global.start_patch").reshape([1, 1, model.config.d_global]), [
    b,
    1,
    1,
  ]);
}

/** Global outputs (b, k, d_g) -> per-byte conditioning of each patch (b, k, P, d_l). */
function conditioning(model: MegaByteLM, g: tf.Tensor): tf.Tensor {
  const [b, k] = g.shape;
  const c = linear(g, getParam(model.params, "global_to_local.weight")); // (b, k, P d_l)
  return c.reshape([b, k, model.config.patch_size, model.config.d_local]);
}

/** ids (b, l), l a multiple of P -> logits (b, l, 256): position t predicts byte t+1. */
export function megabyteForward(model: MegaByteLM, ids: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const [b, l] = ids.shape;
    const P = model.config.patch_size, dl = model.config.d_local;
    if (l % P !== 0) {
      throw new Error(`megabyte: the input length (${l}) must be a multiple of patch_size ${P}`);
    }
    const K = l / P;
    // global model over patches shifted by one: [start, patch 0, ..., patch K-2]
    const shifted = K > 1
      ? tf.concat([startPatch(model, b), patchEmbed(model, tf.slice(ids, [0, 0], [b, l - P]))], 1)
      : startPatch(model, b); // (b, K, d_g)
    const g = runStack(model.params, model.global, shifted).out; // (b, K, d_g)
    const cond = conditioning(model, g).reshape([b * K, P, dl]); // (b K, P, d_l)
    // local model inside every patch, all patches as one batch
    const El = getParam(model.params, "local.wte.weight"); // (256, d_l)
    const x = tf.add(embed(El, ids).reshape([b * K, P, dl]), cond); // (b K, P, d_l)
    const y = runStack(model.params, model.local, x).out; // (b K, P, d_l)
    return linear(y, El).reshape([b, l, 256]); // tied head
  });
}

export function buildMegaByte(cfg: MegaByteConfig, values: Map<string, Float32Array>): MegaByteLM {
  const { global, local } = stacks(cfg);
  const model: MegaByteLM = {
    kind: "megabyte",
    config: { ...cfg },
    params: makeVariables(megabyteShapes(cfg), values, "megabyte"),
    global,
    local,
    logits: (ids) => megabyteForward(model, ids),
    noWeightDecay: transformerNoWeightDecay,
    trainFlopsPerToken: (length) => megabyteTrainFlopsPerToken(cfg, length),
    lengthMultiple: cfg.patch_size,
  };
  return model;
}

export function asMegaByte(model: LanguageModel): MegaByteLM {
  if (model.kind !== "megabyte") throw new Error(`this needs a megabyte model, got "${model.kind}"`);
  return model as MegaByteLM;
}

// ---------------------------------------------------------------------------------------------------
// Decoding: the global model runs once per patch, the local model once per byte

/** Decoding state after `position` bytes (in patch k = floor((position-1)/P), the current one). */
export interface MegaByteState {
  /** Global KV cache over the patches begun (k + 1 positions). */
  global: KVCache;
  /** Conditioning of the current patch's P byte slots: (b, P, d_l). */
  cond: tf.Tensor;
  /** Local KV cache over the current patch's bytes so far. */
  local: KVCache;
  /** The current patch's input bytes so far: (b, p) int32, 1 <= p <= P. */
  patch: tf.Tensor;
  /** Bytes consumed. */
  position: number;
}

export function disposeMegaByteState(s: MegaByteState): void {
  for (const c of [s.global, s.local]) for (const l of c.layers) tf.dispose([l.k, l.v]);
  tf.dispose([s.cond, s.patch]);
}

/**
 * Runs a prompt ids (b, l), l >= 1 and any length, -> logits (b, l, 256) (same as the full forward) and
 * the decoding state. Nothing given is disposed.
 */
export function megabytePrefill(
  model: MegaByteLM,
  ids: tf.Tensor,
): { logits: tf.Tensor; state: MegaByteState } {
  return tidyKeep(() => {
    const [b, l] = ids.shape;
    if (!(l >= 1)) throw new Error("megabytePrefill: the prompt must hold at least one byte");
    const P = model.config.patch_size, dl = model.config.d_local;
    const K = Math.ceil(l / P); // patches begun
    const done = (K - 1) * P; // bytes in complete patches before the current one
    const r = l - done; // bytes of the current patch, 1..P
    const gin = K > 1
      ? tf.concat([startPatch(model, b), patchEmbed(model, tf.slice(ids, [0, 0], [b, done]))], 1)
      : startPatch(model, b);
    const { out: g, cache: global } = runStack(model.params, model.global, gin, { returnCache: true }); // (b, K, d_g)
    const cond = conditioning(model, g); // (b, K, P, d_l)
    const El = getParam(model.params, "local.wte.weight");
    const parts: tf.Tensor[] = [];
    if (K > 1) { // the complete patches, batched
      const x = tf.add(
        embed(El, tf.slice(ids, [0, 0], [b, done])).reshape([b * (K - 1), P, dl]),
        tf.slice(cond, [0, 0, 0, 0], [b, K - 1, P, dl]).reshape([b * (K - 1), P, dl]),
      );
      parts.push(linear(runStack(model.params, model.local, x).out, El).reshape([b, done, 256]));
    }
    const current = tf.slice(cond, [0, K - 1, 0, 0], [b, 1, P, dl]).reshape([b, P, dl]); // (b, P, d_l)
    const patch = tf.slice(ids, [0, done], [b, r]).toInt(); // (b, r)
    const x = tf.add(embed(El, patch), tf.slice(current, [0, 0, 0], [b, r, dl])); // (b, r, d_l)
    const { out: y, cache: local } = runStack(model.params, model.local, x, { returnCache: true });
    parts.push(linear(y, El)); // (b, r, 256)
    const logits = parts.length === 1 ? parts[0] : tf.concat(parts, 1);
    return { logits, state: { global: global!, cond: current, local: local!, patch, position: l } };
  });
}

/**
 * One byte: ids (b) int32 (or one byte value) -> logits (b, 256) for the next byte and the next state.
 * When the byte begins a new patch, the previous patch (complete now) goes through the global model:
 * one global step per P bytes. The given state is not disposed (caller owns it; the states share no
 * tensors, so dispose the old one once the new one is in use).
 */
export function megabyteStep(
  model: MegaByteLM,
  ids: tf.Tensor | number,
  state: MegaByteState,
): { logits: tf.Tensor; state: MegaByteState } {
  return tidyKeep(() => {
    const idsT = (typeof ids === "number" ? tf.tensor([ids], [1], "int32") : ids).toInt();
    const b = idsT.shape[0];
    const P = model.config.patch_size, dl = model.config.d_local;
    const p = state.position % P; // slot of this byte in its patch
    let global: KVCache, cond: tf.Tensor, local: KVCache | undefined, patchSoFar: tf.Tensor | undefined;
    if (p === 0) { // a new patch: the global model reads the completed one
      const gin = patchEmbed(model, state.patch); // (b, 1, d_g)
      const r = runStack(model.params, model.global, gin, { cache: state.global, returnCache: true });
      global = r.cache!;
      cond = conditioning(model, r.out).reshape([b, P, dl]); // (b, P, d_l)
    } else {
      global = {
        ...state.global,
        layers: state.global.layers.map((l) => ({ k: tf.clone(l.k), v: tf.clone(l.v) })),
      };
      cond = tf.clone(state.cond);
      local = state.local;
      patchSoFar = state.patch;
    }
    const El = getParam(model.params, "local.wte.weight");
    const x = tf.add(tf.gather(El, idsT).reshape([b, 1, dl]), tf.slice(cond, [0, p, 0], [b, 1, dl])); // (b, 1, d_l)
    const r = runStack(model.params, model.local, x, { pos0: p, cache: local, returnCache: true });
    const patch = patchSoFar ? tf.concat([patchSoFar, idsT.reshape([b, 1])], 1) : idsT.reshape([b, 1]); // (b, p+1)
    return {
      logits: linear(r.out, El).reshape([b, 256]),
      state: { global, cond, local: r.cache!, patch, position: state.position + 1 },
    };
  });
}

registerFamily({
  kind: "megabyte",
  parseConfig: (raw, where) => parseMegaByteConfig(raw, where) as unknown as LanguageModel["config"],
  init: (cfg, seed) => initMegaByte(cfg as unknown as MegaByteConfig, seed),
  build: (cfg, values) => buildMegaByte(cfg as unknown as MegaByteConfig, values),
});
