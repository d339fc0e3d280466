/**
 * The one interface every language model here implements, so that a single trainer, evaluator,
 * FLOP counter and checkpoint format serve MambaByte and all the baselines (byte Transformer, MegaByte,
 * PerceiverAR, and the subword Transformer / Mamba).
 *
 * A model is a config (plain JSON, saved as config.json), a Map of named trainable variables (saved as
 * model.safetensors under those names), and plain functions of (model, inputs), nanoGPT-style.
 * Token ids are int32 tensors; for byte models a token is a byte (vocab 256), for subword models a BPE id.
 */
import type * as tf from "@tensorflow/tfjs";

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
}

/** Total number of scalar parameters. */
export function countParams(model: LanguageModel): number {
  let n = 0;
  for (const v of model.params.values()) n += v.size;
  return n;
}

export function disposeModel(model: LanguageModel): void {
  for (const v of model.params.values()) v.dispose();
}

/** Reads all parameters back to the host (for saving). */
export async function readParams(model: LanguageModel): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [name, v] of model.params) out.set(name, (await v.data()) as Float32Array);
  return out;
}
