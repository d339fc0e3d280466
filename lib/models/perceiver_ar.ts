/**
 * PerceiverAR (Hawthorne et al. 2022, "General-purpose, long-context autoregressive modeling with
 * Perceiver AR"): a long input is read by ONE causal cross-attention whose queries are only the last N
 * positions (the latents); a stack of causal self-attention blocks then runs over those N latents alone,
 * and only they produce predictions. Cost: O(l N) for the cross-attention plus O(N^2) per latent layer,
 * so the context l can be much longer than N.
 *
 * Layer 0 (the cross-attention) is a pre-norm Transformer block whose queries and residual rows are the
 * last n = min(N, l) positions and whose keys/values are all l positions, with the causal mask by
 * absolute position (latent i, at position l-n+i, sees inputs 0 .. l-n+i). Layers 1 .. n_layer-1 are
 * ordinary causal blocks over the latents. So `n_layer` counts the cross-attention layer, the model has
 * exactly the parameters of a `transformer` of the same d_model / n_layer / mlp_ratio, and with N >= l
 * it IS that transformer (tested). Positions: rotary embeddings, as the paper uses, but in our
 * transformer's form (see the departures below), not the published code's.
 *
 * Departures from the published model (google-research/perceiver-ar), all so that the model is exactly
 * the project's transformer when N >= l and shares its code; parameter costs with d = d_model (1,024 at
 * the published default width):
 * - One LayerNorm (h.0.ln_1) normalises both the cross-attention's queries and its keys/values; the
 *   published cross-attention has separate LayerNorms for the query and key/value inputs: -2d (-2,048).
 * - No query-embedding projection: the latents (queries and residual rows) ARE the last n input
 *   embeddings; the published code first maps them through a learned linear layer (z_linear, d x d +
 *   bias): -(d^2 + d) (-1,049,600). (The cross-attention's own query projection is there: the first d
 *   rows of h.0.attn.c_attn.weight.)
 * - Rotary on all channels of every head, "rotate half" pairs (i, i + k/2), positions counted from the
 *   start of the input, base rope_theta; the published code rotates a fraction of each head's channels
 *   (fraction_to_rotate), pairs interleaved channels (2i, 2i+1), counts positions from the end of the
 *   sequence (the last input is position 0) and uses a maximum wavelength of 8192. No parameters either way.
 * - The cross-attention uses the latent layers' head count (n_head) and MLP width (mlp_ratio d); the
 *   published model has its own num_cross_attend_heads (1 by default) and cross_attend_widening_factor
 *   (1 by default). Heads cost nothing; the MLP costs 2 (mlp_ratio - 1) d^2 more than a widening of 1
 *   (mlp_ratio 4: +6d^2 = +6,291,456).
 * - Also, as everywhere here: no biases in the Linear layers (the published ones have biases), GELU
 *   (published default: squared ReLU), and the output head tied to the embedding (published: a separate
 *   logits layer, -(V d + V) = -262,400).
 *
 * THE CONTRACT FOR TRAINERS AND EVALUATORS (LanguageModel terms):
 * - `trainLoss(ids (b, l+1))` — the paper's training objective — runs one pass over the input ids[:, :l]
 *   and averages the cross-entropy over the n = min(N, l) latent positions only, targets
 *   ids[:, l-n+1 .. l]. `nextTokenLoss` calls it, so the shared trainer needs nothing special.
 *   `trainFlopsPerToken(l)` is the cost of that pass (+ backward) divided by the l input tokens, so
 *   FLOPs = trainFlopsPerToken(l) x tokens_seen stays right; the loss, however, covers only n of every l
 *   tokens (the trainer's logged loss is the latents' loss).
 * - `logits(ids (b, l))` returns (b, l, V) with a real causal prediction at EVERY position, so scoring
 *   works unchanged (lib/eval/score.ts): the last n positions come from one pass over ids; positions
 *   l-2n .. l-n-1 from a pass over the prefix ids[:, :l-n] (whose latents they are), and so on down to
 *   position 0 — ceil(l/N) passes over nested prefixes, each position predicted as a latent with all of
 *   its window's earlier tokens as context, exactly what the model was trained to do. Differentiable.
 * - `perceiverLatentLogits(model, ids)` gives the single pass: { logits (b, n, V), predictsFrom: l-n }
 *   (logits[:, i] predicts ids[:, predictsFrom+i+1]).
 *
 * Shapes: b batch, l input length, N num_latents, n = min(N, l), d d_model, V vocabulary (256).
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
  makeVariables,
  runStack,
  stackForwardFlopsPerRow,
  stackShapes,
  type StackSpec,
  transformerNoWeightDecay,
  transformerStack,
} from "./transformer.ts";
import { crossEntropy, embed, linear } from "../nn/layers.ts";

type Json = Record<string, unknown>;

export interface PerceiverARConfig {
  vocab_size: 256;
  d_model: number;
  /** Layers including the cross-attention (layer 0). */
  n_layer: number;
  n_head: number;
  /** N: the latents are the last N positions of the input. */
  num_latents: number;
  mlp_ratio: number;
  rope_theta: number;
  norm_eps: number;
}

export interface PerceiverARLM extends LanguageModel {
  kind: "perceiver_ar";
  config: PerceiverARConfig & Json;
  stack: StackSpec;
}

export function parsePerceiverARConfig(raw: Json, where: string): PerceiverARConfig {
  const f = new ConfigFields(raw, where, "perceiver_ar");
  const vocab = f.int("vocab_size", 256);
  if (vocab !== 256) f.fail("vocab_size", `must be 256 (this PerceiverAR reads bytes), got ${vocab}`);
  const d = f.int("d_model", 256);
  const cfg: PerceiverARConfig = {
    vocab_size: 256,
    d_model: d,
    n_layer: f.int("n_layer", 4),
    n_head: f.int("n_head", defaultHeads(d)),
    num_latents: f.int("num_latents", 256),
    mlp_ratio: f.int("mlp_ratio", 4),
    rope_theta: f.positive("rope_theta", 10000),
    norm_eps: f.positive("norm_eps", 1e-5),
  };
  checkHeads(f, "n_head", cfg.n_head, "d_model", d);
  f.done();
  return cfg;
}

/** Same names as the transformer's; h.0 is the cross-attention. */
export function perceiverShapes(cfg: PerceiverARConfig): [string, number[]][] {
  return [["wte.weight", [256, cfg.d_model]], ...stackShapes(transformerStack(cfg))];
}

export function initPerceiverAR(cfg: PerceiverARConfig, seed = 0): Map<string, Float32Array> {
  const rng = new Rng(seed);
  const out = new Map<string, Float32Array>();
  out.set("wte.weight", rng.normalArray(256 * cfg.d_model, 0.02));
  initStack(transformerStack(cfg), rng, out);
  return out;
}

/**
 * Training FLOPs per input token at training length l, n = min(N, l), f = mlp_ratio d:
 *   cross layer  = 2 x 2 d^2 x l                 k, v projections of all l inputs
 *                + n x (2 (2 d^2 + 2 d f) + 4 l d)  q, out and MLP of the n latents; QK^T, AV over l keys
 *   latent stack = (n_layer - 1) x n x (2 (4 d^2 + 2 d f) + 4 n d)
 *   head         = n x 2 V d                     (logits only for the latents)
 *   per token    = 3 x (sum) / l                 backward = 2 x forward; divided by the l tokens read
 * (full attention context counted, no causal halving, as for every family here). With n = l this is
 * exactly the transformer's count.
 */
export function perceiverTrainFlopsPerToken(cfg: PerceiverARConfig, length: number): number {
  const l = length, n = Math.min(cfg.num_latents, length), d = cfg.d_model, f = cfg.mlp_ratio * d;
  const cross = 2 * 2 * d * d * l + n * (2 * (2 * d * d + 2 * d * f) + 4 * l * d);
  const latent = n * stackForwardFlopsPerRow({ ...transformerStack(cfg), nLayer: cfg.n_layer - 1 }, n);
  const head = n * 2 * cfg.vocab_size * d;
  return 3 * (cross + latent + head) / l;
}

/**
 * One PerceiverAR pass: ids (b, l) -> logits (b, n, V) of the last n = min(N, l) positions;
 * logits[:, i] predicts ids[:, predictsFrom + i + 1], predictsFrom = l - n.
 */
export function perceiverLatentLogits(
  model: PerceiverARLM,
  ids: tf.Tensor,
): { logits: tf.Tensor; predictsFrom: number } {
  const l = ids.shape[1]!;
  const n = Math.min(model.config.num_latents, l);
  const logits = tf.tidy(() => {
    const E = getParam(model.params, "wte.weight"); // (V, d)
    const x = embed(E, ids); // (b, l, d)
    const { out } = runStack(model.params, model.stack, x, { queries: n }); // (b, n, d): cross-attn, then latents
    return linear(out, E); // (b, n, V)
  });
  return { logits, predictsFrom: l - n };
}

/** ids (b, l) -> logits (b, l, V) at every position, by passes over nested prefixes (see the header). */
export function perceiverLogits(model: PerceiverARLM, ids: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const [b, l] = ids.shape;
    const parts: tf.Tensor[] = [];
    for (let end = l; end > 0; end -= model.config.num_latents) {
      parts.unshift(perceiverLatentLogits(model, end === l ? ids : tf.slice(ids, [0, 0], [b, end])).logits);
    }
    return parts.length === 1 ? parts[0] : tf.concat(parts, 1);
  });
}

/** The paper's objective: mean next-token nats over the latent positions of ids (b, l+1) (see header). */
export function perceiverTrainLoss(model: PerceiverARLM, ids: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const [b, l1] = ids.shape;
    const { logits, predictsFrom } = perceiverLatentLogits(model, tf.slice(ids, [0, 0], [b, l1 - 1])); // (b, n, V)
    const targets = tf.slice(ids, [0, predictsFrom + 1], [b, l1 - 1 - predictsFrom]); // (b, n)
    return crossEntropy(logits, targets) as tf.Scalar;
  });
}

export function buildPerceiverAR(cfg: PerceiverARConfig, values: Map<string, Float32Array>): PerceiverARLM {
  const model: PerceiverARLM = {
    kind: "perceiver_ar",
    config: { ...cfg },
    params: makeVariables(perceiverShapes(cfg), values, "perceiver_ar"),
    stack: transformerStack(cfg),
    logits: (ids) => perceiverLogits(model, ids),
    trainLoss: (ids) => perceiverTrainLoss(model, ids),
    noWeightDecay: transformerNoWeightDecay,
    trainFlopsPerToken: (length) => perceiverTrainFlopsPerToken(cfg, length),
  };
  return model;
}

export function asPerceiverAR(model: LanguageModel): PerceiverARLM {
  if (model.kind !== "perceiver_ar") throw new Error(`this needs a perceiver_ar model, got "${model.kind}"`);
  return model as PerceiverARLM;
}

registerFamily({
  kind: "perceiver_ar",
  parseConfig: (raw, where) => parsePerceiverARConfig(raw, where) as unknown as LanguageModel["config"],
  init: (cfg, seed) => initPerceiverAR(cfg as unknown as PerceiverARConfig, seed),
  build: (cfg, values) => buildPerceiverAR(cfg as unknown as PerceiverARConfig, values),
});
