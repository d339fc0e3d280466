/**
 * The one interface every language model here implements, so that a single trainer, evaluator,
 * FLOP counter and checkpoint format serve MambaByte and all the baselines (byte Transformer, MegaByte,
 * PerceiverAR, and the subword Transformer / Mamba).
 *
 * A model is a config (plain JSON, saved as config.json), a Map of named trainable variables (saved as
 * model.safetensors under those names), and plain functions of (model, inputs), nanoGPT-style.
 * Token ids are int32 tensors; for byte models a token is a byte (vocab 256), for subword models a BPE id.
 */
import * as tf from "@tensorflow/tfjs";
import type { ByteBPE } from "../data/bpe.ts";
import { crossEntropy } from "../nn/layers.ts";

/** Every model family the trainer knows. */
export const MODEL_KINDS = [
  "mambabyte",
  "transformer",
  "megabyte",
  "perceiver_ar",
  "transformer_subword",
  "mamba_subword",
] as const;
export type ModelKind = typeof MODEL_KINDS[number];

/** Whether a family is a Mamba (MambaByte or the subword Mamba): recurrent, linear in length, on the engine. */
export function isMambaKind(kind: string): boolean {
  return kind === "mambabyte" || kind === "mamba_subword";
}

/** Whether a model family reads bytes or BPE subword tokens. */
export const TOKEN_UNIT: Record<ModelKind, "byte" | "subword"> = {
  mambabyte: "byte",
  transformer: "byte",
  megabyte: "byte",
  perceiver_ar: "byte",
  transformer_subword: "subword",
  mamba_subword: "subword",
};

export interface LanguageModel {
  kind: ModelKind;
  /** The model's hyper-parameters as written to config.json (always has vocab_size). */
  config: { vocab_size: number } & Record<string, unknown>;
  /** Parameter name -> trainable variable (the safetensors keys). */
  params: Map<string, tf.Variable>;
  /**
   * ids (b, l) int32 -> logits (b, l, V') where position t predicts token t+1 and V' >= vocab_size
   * (padding columns beyond vocab_size are ignored by the loss). Must be differentiable.
   * Models with a patch size (MegaByte) may require l to be a multiple of it (see `lengthMultiple`).
   */
  logits(ids: tf.Tensor): tf.Tensor;
  /** Parameters AdamW must not decay (norms, biases, embeddings' positions, Mamba's A_log and D). */
  noWeightDecay(name: string): boolean;
  /**
   * Training FLOPs (forward + backward, multiply-add = 2 FLOPs) per token when trained on sequences of
   * `length` tokens; includes the attention / scan terms, not just 6N.
   */
  trainFlopsPerToken(length: number): number;
  /** Inputs to `logits` must have a length that is a multiple of this (1 for most models). */
  lengthMultiple?: number;
  /**
   * Optional: the training loss (mean nats per predicted token) of ids (b, l+1), for models that do not
   * predict every position (PerceiverAR predicts only from its latents). Default: `nextTokenLoss`.
   */
  trainLoss?(ids: tf.Tensor): tf.Scalar;
  /**
   * The BPE tokenizer of a subword model, attached by `loadModel` when tokenizer.json lies next to
   * config.json (scoring and generation then need no separate tokenizer argument).
   */
  tokenizer?: ByteBPE;
}

/** Anything holding named trainable variables: every LanguageModel, and a MambaLM. */
export type HasParameters = { params: Map<string, tf.Variable> };

/** Total number of scalar parameters. */
export function countParameters(model: HasParameters): number {
  let n = 0;
  for (const v of model.params.values()) n += v.size;
  return n;
}

export function disposeModel(model: LanguageModel): void {
  for (const v of model.params.values()) v.dispose();
}

/** Reads all parameters back to the host (for saving). */
export async function readParameters(model: HasParameters): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [name, v] of model.params) out.set(name, (await v.data()) as Float32Array);
  return out;
}

/**
 * Mean next-token cross-entropy (nats) of ids (b, l+1): inputs ids[:, :l] predict targets ids[:, 1:].
 * Uses the model's own `trainLoss` when it has one. One-hot targets, so it is differentiable everywhere.
 */
export function nextTokenLoss(model: LanguageModel, ids: tf.Tensor): tf.Scalar {
  if (model.trainLoss) return model.trainLoss(ids);
  return tf.tidy(() => {
    const [b, l1] = ids.shape;
    const l = l1 - 1;
    const logits = model.logits(tf.slice(ids, [0, 0], [b, l])); // (b, l, V')
    return crossEntropy(logits, tf.slice(ids, [0, 1], [b, l])) as tf.Scalar;
  });
}
