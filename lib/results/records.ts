/**
 * The schema of the published records (data/results/*.jsonl): what a training run, an extrapolation
 * evaluation and a noise evaluation write, and what figures, tables and notebooks read. Types only, kept
 * at the bottom of the house so that every floor can name them.
 */
import type { NoiseKind } from "../data/noise.ts";

export interface RunRecord {
  run: string;
  model: string;
  domain: string;
  scale: string;
  data: string;
  config: Record<string, unknown>;
  parameters: number;
  train_flops_per_token: number;
  train_flops: number;
  steps: number;
  batch: number;
  length: number;
  /** Peak learning rate and warm-up steps (absent in records older than the budget ladder). */
  lr?: number;
  warmup?: number;
  seed: number;
  tokens_seen: number;
  bytes_seen: number;
  bytes_per_token: number;
  train_wall_s: number;
  train_bytes_per_s: number;
  /**
   * What ran the training steps: "tfjs", or "native (webgpu: DEVICE)" (lib/train/steps.ts); absent in
   * records older than the engine (all TF.js).
   */
  engine?: string;
  final_train_bpb: number;
  /** The training curve, about 50 points: [step, training FLOPs so far, train bits-per-byte (mean of the steps since the previous point)]. */
  curve: [number, number, number][];
  /**
   * Held-out bits per byte measured while training (the plan scale's `eval.valPoints`): [step, training FLOPs so
   * far, bits per byte of the first `eval.valBytes` of the validation split], the last at the final step;
   * absent where the scale asks for none or the domain has no validation split. A curve that turns up while
   * the training curve keeps falling is a model memorising its training split.
   */
  val_curve?: [number, number, number][];
  /** Bytes of the validation split each point of `val_curve` scores. */
  val_curve_bytes?: number;
  eval: {
    split: string;
    bytes: number;
    tokens: number;
    bits_per_byte: number;
    word_perplexity: number;
    words: number;
    window: number;
    /** Windows per forward pass (absent in records older than batched scoring: 1). */
    batch?: number;
    wall_s: number;
    /**
     * What computed the score: "native engine (BACKEND: DEVICE)" (an engine on the backend that trained the
     * run, for the attention models) or "TF.js (BACKEND)"; absent in records older than engine scoring
     * (TF.js).
     */
    scored_by?: string;
    /**
     * The unigram entropy of the scored bytes (lib/data/unigram.ts), bits per byte; absent in records older
     * than the sanity check (data/results/unigram.jsonl holds theirs).
     */
    unigram_bpb?: number;
    /**
     * Each document of the scored split that the score reached: its file under the split's folder, the bytes
     * scored in it and their bits per byte (lib/eval/score.ts `documents`); absent in records older than it.
     * The spread of the score over subsets of documents follows from these.
     */
    documents?: { name: string; bytes: number; bits_per_byte: number }[];
  };
  labels?: Record<string, unknown>;
}

/**
 * A run whose loss or gradients became non-finite (diverged.jsonl): no model to score, but an outcome a
 * learning-rate sweep counts (a rate too high), so it is not retried forever.
 */
export interface DivergedRecord {
  run: string;
  scale: string;
  model: string;
  lr: number;
  step: number;
  what: string;
  labels?: Record<string, unknown>;
}

export type ExtrapolationMode = "whole" | "sliding";

export interface PositionBin {
  /** Bin index floor(log2(position) * binsPerOctave): the same bin in every record of equal binsPerOctave. */
  bin: number;
  /** Smallest and largest byte position (bytes of context before the token) that fell in this bin. */
  lo: number;
  hi: number;
  bytes: number;
  nats: number;
  bits_per_byte: number;
}

export interface ExtrapolationResult {
  multiple: number;
  mode: ExtrapolationMode;
  /** Tokens per evaluation sequence (inputs; each sequence holds eval_length + 1 tokens). */
  eval_length: number;
  /** Mean bytes per evaluation sequence. */
  eval_length_bytes: number;
  status: "ok" | "skipped" | "failed";
  reason?: string;
  /** What computed a non-recurrent model's nats: the engine scorer (lib/eval/engine_scorer.ts); absent: TF.js. */
  scored_by?: string;
  sequences: number;
  tokens: number;
  bytes: number;
  nats: number;
  bits_per_byte: number;
  /** Bits per byte of each sequence (4 decimals), for error bars. */
  sequence_bpb: number[];
  position_bins: PositionBin[];
  bins_per_octave: number;
  sliding_context?: number;
  chunk?: number;
  wall_s: number;
}

/** What every evaluation record (extrapolation.jsonl, noise.jsonl) says of the model it evaluated. */
export interface EvaluatedModel {
  scale: string;
  /** The training run (runs.jsonl `run`) when the model came from one, and its record's time. */
  run?: string;
  run_time?: string;
  model_dir: string;
  model_kind: string;
  /** Shown in figures (the run's label). */
  label: string;
  unit: "byte" | "subword";
  domain: string;
  /** Where the test text came from. */
  data: string;
  parameters?: number;
  /** "float16 copy" where the evaluated model is one (`export --format f16`: its weights rounded). */
  weights?: string;
}

export interface ExtrapolationRecord extends ExtrapolationResult, EvaluatedModel {
  experiment: "extrapolation";
  /** Tokens of the test text. */
  test_tokens: number;
  trained_context: number;
  /** The trained context in bytes (tokens x the test text's bytes per token). */
  trained_context_bytes: number;
  bytes_per_token: number;
}

/** Minimal view of a runs.jsonl record (RunRecord above). */
export interface RunLike {
  run: string;
  model: string;
  domain: string;
  scale: string;
  length: number;
  /** Training batch (sequences per step). */
  batch?: number;
  parameters?: number;
  train_flops?: number;
  labels?: Record<string, unknown>;
  /** The run record's provenance (its time identifies the training run). */
  provenance?: { time?: string };
}

export interface NoiseScore {
  bytes: number;
  tokens: number;
  nats: number;
  bits_per_byte: number;
  /** exp(nats / clean words). */
  word_perplexity: number;
}

export interface NoiseResult extends NoiseScore {
  /** "none" for the clean text. */
  noise: NoiseKind | "none";
  p: number;
  seed: number;
  definition: string;
  /** Bytes of the noisy text (before scoring). */
  text_bytes: number;
  /** Words of the clean text (the perplexity's denominator) and of the noisy text. */
  words: number;
  words_noisy: number;
  clean: NoiseScore;
  delta_bits_per_byte: number;
  delta_word_perplexity: number;
  /** word_perplexity / clean word_perplexity. */
  ratio_word_perplexity: number;
  window: number;
  wall_s: number;
}

export interface NoiseRecord extends NoiseResult, EvaluatedModel {
  experiment: "noise";
}

/**
 * The unigram entropy of the bytes a run scored (data/results/unigram.jsonl, lib/runs/unigram.ts), for runs
 * recorded before their records carried it: the first `bytes` bytes of a domain's split at a scale.
 */
export interface UnigramRecord {
  scale: string;
  domain: string;
  split: string;
  data: string;
  bytes: number;
  unigram_bpb: number;
}
