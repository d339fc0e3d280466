/**
 * Bits-per-byte and word-level perplexity of ANY language model on a text, so byte and subword models are
 * compared on the same footing: the model's total negative log-likelihood of the text (nats), divided by
 * the number of bytes it predicted. A subword model predicts tokens; the nats of a token are the nats of
 * its bytes, so its loss per byte is sum(token nats) / bytes(predicted tokens) (PAPER.md's conversion).
 * Word-level perplexity is exp(total nats / words) over whitespace-separated words (PAPER.md).
 */
import * as tf from "@tensorflow/tfjs";
import { countWords } from "../data/bytes.ts";
import type { ByteBPE } from "../data/bpe.ts";
import { type LanguageModel, TOKEN_UNIT } from "../models/lm.ts";

export interface TextScore {
  /** Bytes whose likelihood was scored (all bytes after the first window's first token). */
  bytes: number;
  /** Tokens predicted (bytes for byte models). */
  tokens: number;
  /** Total negative log-likelihood, nats. */
  nats: number;
  /** Mean nats per predicted byte. */
  ce_nats: number;
  bits_per_byte: number;
  words: number;
  word_perplexity: number;
}

export interface ScoreOptions {
  /** Tokens per evaluation window (default 2048). */
  window?: number;
  /** The tokenizer of a subword model (required for subword models, rejected for byte models). */
  tokenizer?: ByteBPE;
  /**
   * Windows read in one forward pass (default 1). Larger batches fill a GPU (each pass costs about the
   * same host time whatever its batch) at the price of batch x window activations in memory; the score
   * is the same sum either way.
   */
  batch?: number;
  /** Called after each batch of windows with (tokens done, tokens in all). */
  onProgress?: (done: number, total: number) => void;
}

/**
 * Sum of -log p(token_{t+1} | tokens <= t) over windows of ids (each n+1 tokens, all of one length), read as
 * one batch: a scalar, nats. Models whose inputs must be a multiple of `lengthMultiple` get zeros appended
 * after the real inputs (causal models never look right, so the padding changes no scored prediction) and
 * those positions are not scored.
 */
export function windowNats(model: LanguageModel, windows: Int32Array[]): tf.Scalar {
  return tf.tidy(() => tf.sum(tokenNats(model, windows)) as tf.Scalar);
}

/**
 * Windows per evaluation pass for a model trained at `batch` sequences of `length` tokens: as many tokens
 * as a training batch held (that fitted in memory with gradients; a larger batch of attention scores can
 * exhaust the wasm heap).
 */
export function evalBatch(batch: number, length: number, window: number): number {
  return Math.max(1, Math.floor(batch * length / window));
}

/**
 * Per-position -log p(token_{t+1} | tokens <= t) of windows of ids, each n+1 tokens, read as one batch:
 * (b, n) nats, for loss against position (extrapolation). Same conventions as `windowNats` (zeros appended
 * for `lengthMultiple`, never scored).
 */
export function tokenNats(model: LanguageModel, windows: Int32Array[]): tf.Tensor2D {
  return tf.tidy(() => {
    const b = windows.length, n = (windows[0]?.length ?? 0) - 1;
    if (n < 1) throw new Error(`tokenNats: a window needs at least 2 tokens (got ${n + 1})`);
    if (windows.some((w) => w.length !== n + 1)) {
      throw new Error("tokenNats: the windows of one batch must have equal lengths");
    }
    const m = model.lengthMultiple ?? 1;
    const padded = Math.ceil(n / m) * m;
    const input = new Int32Array(b * padded), targets = new Int32Array(b * n);
    windows.forEach((w, i) => {
      input.set(w.subarray(0, n), i * padded);
      targets.set(w.subarray(1), i * n);
    });
    const logits = model.logits(tf.tensor(input, [b, padded], "int32")); // (b, padded, V')
    const V = logits.shape[2]!;
    return logitsNats(tf.slice(logits, [0, 0, 0], [b, n, V]), targets).reshape([b, n]) as tf.Tensor2D;
  });
}

/**
 * logits (..., V') and one target per row (row-major, as many as the leading dims hold) -> (rows) nats,
 * -log softmax(logits)[target]. One-hot, so it runs on any backend.
 */
export function logitsNats(logits: tf.Tensor, targets: Int32Array): tf.Tensor1D {
  return tf.tidy(() => {
    const n = targets.length, V = logits.shape[logits.rank - 1];
    if (logits.size !== n * V) {
      throw new Error(`logitsNats: ${n} targets for logits of shape [${logits.shape}]`);
    }
    const logp = tf.logSoftmax(logits.reshape([n, V])); // (n, V')
    const onehot = tf.oneHot(tf.tensor(targets, [n], "int32"), V).toFloat(); // (n, V')
    return tf.neg(tf.sum(tf.mul(onehot, logp), 1)) as tf.Tensor1D; // (n)
  });
}

/**
 * -log2 p(token_t | tokens < t) for t = 1..n-1 of one short text read as one window (for plots of a
 * sentence): bits per byte of each predicted byte for byte models; bits of each token for subword models
 * (their tokenizer encodes the text).
 */
export async function perTokenBits(model: LanguageModel, text: Uint8Array): Promise<Float32Array> {
  const ids = TOKEN_UNIT[model.kind] === "subword"
    ? requireTokenizer(model).encode(text)
    : Int32Array.from(text);
  if (ids.length < 2) throw new Error(`perTokenBits: need at least 2 tokens (got ${ids.length})`);
  const bits = tf.tidy(() => tf.div(tokenNats(model, [ids]), Math.LN2).reshape([-1]));
  const out = (await bits.data()) as Float32Array;
  bits.dispose();
  return out;
}

function requireTokenizer(model: LanguageModel): ByteBPE {
  if (!model.tokenizer) throw new Error(`a ${model.kind} model needs its tokenizer (tokenizer.json)`);
  return model.tokenizer;
}

/** Scores `text` with `model` in contiguous windows (each token after the first predicted once). */
export async function scoreText(
  model: LanguageModel,
  text: Uint8Array,
  opts: ScoreOptions = {},
): Promise<TextScore> {
  const window = opts.window ?? 2048;
  const subword = TOKEN_UNIT[model.kind] === "subword";
  if (subword) opts = { ...opts, tokenizer: opts.tokenizer ?? model.tokenizer };
  if (subword && !opts.tokenizer) {
    throw new Error(`scoring a ${model.kind} model needs its tokenizer (tokenizer.json)`);
  }
  if (!subword && opts.tokenizer) throw new Error(`${model.kind} reads bytes; do not pass a tokenizer`);
  const ids = subword ? opts.tokenizer!.encode(text) : Int32Array.from(text);
  if (ids.length < 2) throw new Error(`the text is too short to score (${text.length} bytes)`);
  const batch = opts.batch ?? 1;
  if (!Number.isInteger(batch) || batch < 1) {
    throw new Error(`scoreText: batch must be a positive integer (got ${batch})`);
  }
  // contiguous windows of window+1 tokens, overlapping by one token; only the last may be shorter
  const windows: Int32Array[] = [];
  for (let start = 0; start + 1 < ids.length; start += window) {
    windows.push(ids.subarray(start, Math.min(ids.length, start + window + 1)));
  }
  let nats = 0, tokens = 0;
  for (let i = 0; i < windows.length;) {
    let j = i + 1; // a batch holds windows of one length: full ones, or the short last one alone
    while (j < windows.length && j - i < batch && windows[j].length === windows[i].length) j++;
    const group = windows.slice(i, j);
    const t = windowNats(model, group);
    nats += (await t.data())[0];
    t.dispose();
    for (const w of group) tokens += w.length - 1;
    opts.onProgress?.(tokens, ids.length - 1);
    i = j;
  }
  // bytes predicted: every byte except those of the very first token
  const first = subword ? opts.tokenizer!.tokenBytes(ids[0]).length : 1;
  const bytes = text.length - first;
  const words = countWords(text);
  return {
    bytes,
    tokens,
    nats,
    ce_nats: nats / bytes,
    bits_per_byte: nats / bytes / Math.LN2,
    words,
    word_perplexity: Math.exp(nats / Math.max(1, words)),
  };
}
