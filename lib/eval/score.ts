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
import { isMambaKind, type LanguageModel, TOKEN_UNIT } from "../models/lm.ts";
import { NonFiniteError } from "../io/errors.ts";
import { reclaimWebGpuGarbage } from "../backend.ts";
import { MambaStepper } from "../decode/stepper.ts";
import type { WeightFormat } from "../kernels/wasm/decode.ts";
import { recurrentCore } from "../models/registry.ts";
import type { RowScorer } from "./engine_scorer.ts";

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
  /**
   * With `ScoreOptions.documents`: per part of the text, the bytes scored in it and their nats (a token
   * counts in the part holding its first byte; a window may cross parts). Sums to `bytes` and, up to
   * float rounding, to `nats`.
   */
  documents?: { bytes: number; nats: number }[];
}

export interface ScoreOptions {
  /** Tokens per evaluation window (default 2048). */
  window?: number;
  /** The tokenizer of a subword model (required for subword models, rejected for byte models). */
  tokenizer?: ByteBPE;
  /**
   * Windows read in one forward pass (default 1). Larger batches fill a GPU (each pass costs about the
   * same host time whatever its batch) at the price of batch x window activations in memory; the score
   * is the same sum either way. `scoreBatch` is a default that keeps a pass's memory bounded.
   */
  batch?: number;
  /** Called after each batch of windows, and awaited (a live view draws here). */
  onProgress?: (p: ScoreProgress) => unknown;
  /**
   * Mamba models: score with the CPU stepper (lib/decode/stepper.ts, one window at a time from an empty
   * state) with its weight matrices in this format, as decoding would use them (default: the model's
   * `decodeWeights`; neither: the model's own forward pass in float32).
   */
  weights?: WeightFormat;
  /**
   * Lengths in bytes of consecutive parts of the text (its documents: `documentSpans`), summing to its
   * length: the score then also says how each part scored (`TextScore.documents`), from which the spread
   * of a score over subsets of documents follows.
   */
  documents?: number[];
  /**
   * Per-token nats of each batch's windows from this scorer instead of the model's TF.js forward pass
   * (lib/eval/engine_scorer.ts: the native engine, for the attention models; tests/engine_scorer_test.ts
   * holds it equal to TF.js). Not with `weights`.
   */
  scorer?: RowScorer;
}

/** How far a `scoreText` has got (after a batch of windows). */
export interface ScoreProgress {
  windows: number;
  totalWindows: number;
  /** Tokens predicted so far, and in all. */
  tokens: number;
  totalTokens: number;
}

/** A window of token ids: byte models read the text's own bytes (no copy), subword models token ids. */
export type TokenWindow = Int32Array | Uint8Array;

/**
 * Sum of -log p(token_{t+1} | tokens <= t) over windows of ids (each n+1 tokens, all of one length), read as
 * one batch: a scalar, nats. Models whose inputs must be a multiple of `lengthMultiple` get zeros appended
 * after the real inputs (causal models never look right, so the padding changes no scored prediction) and
 * those positions are not scored.
 */
export function windowNats(model: LanguageModel, windows: TokenWindow[]): tf.Scalar {
  return tf.tidy(() => tf.sum(tokenNats(model, windows)) as tf.Scalar);
}

/**
 * `tokenNats` on the CPU stepper: each window read in one pass from an empty state (MambaStepper.read),
 * -log softmax over the real vocabulary of each position's logits at the next token, in doubles: (windows x
 * n) nats, row-major.
 */
export function stepperTokenNats(stepper: MambaStepper, V: number, windows: TokenWindow[]): Float64Array {
  const n0 = (windows[0]?.length ?? 1) - 1;
  if (windows.some((w) => w.length !== n0 + 1)) {
    throw new Error("stepperTokenNats: the windows of one batch must have equal lengths");
  }
  const out = new Float64Array(windows.length * n0);
  windows.forEach((w, i) => {
    const n = w.length - 1;
    const { logits } = stepper.read(stepper.emptyState(), w.subarray(0, n), "last");
    const Vp = logits.length / n;
    for (let t = 0; t < n; t++) {
      const row = logits.subarray(t * Vp, t * Vp + V);
      let max = -Infinity, sum = 0;
      for (let v = 0; v < V; v++) max = Math.max(max, row[v]);
      for (let v = 0; v < V; v++) sum += Math.exp(row[v] - max);
      out[i * n0 + t] = Math.log(sum) + max - row[w[t + 1]];
    }
  });
  return out;
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
 * Tokens per forward pass that `scoreBatch` allows: the Mamba families' memory is linear in the tokens of
 * a pass; the attention families hold (window x window) scores per head, and 16K-token passes of those
 * aborted the wasm heap on the small Transformer, so they get a training batch's worth (8 x 256).
 */
const PASS_TOKENS = { linear: 8192, attention: 2048 };

/**
 * The default windows per pass for a model with no training record at hand (`deno task mambabyte
 * score/eval`): as many as PASS_TOKENS allows, at least one.
 */
export function scoreBatch(kind: LanguageModel["kind"], window: number): number {
  const linear = isMambaKind(kind);
  return Math.max(1, Math.floor((linear ? PASS_TOKENS.linear : PASS_TOKENS.attention) / window));
}

/**
 * Per-position -log p(token_{t+1} | tokens <= t) of windows of ids, each n+1 tokens, read as one batch:
 * (b, n) nats, for loss against position (extrapolation). Same conventions as `windowNats` (zeros appended
 * for `lengthMultiple`, never scored).
 */
export function tokenNats(model: LanguageModel, windows: TokenWindow[]): tf.Tensor2D {
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

/**
 * Scores `text` with `model` in contiguous windows (each token after the first predicted once). A window
 * whose loss comes out NaN or infinite is an error (NonFiniteError) naming the windows and bytes, never a
 * NaN score. Memory: byte models read windows straight from `text`; one batch of windows is in flight.
 */
export async function scoreText(
  model: LanguageModel,
  text: Uint8Array,
  opts: ScoreOptions = {},
): Promise<TextScore> {
  const window = opts.window ?? 2048;
  if (!Number.isInteger(window) || window < 1) {
    throw new Error(`scoreText: window must be a positive integer (got ${window})`);
  }
  const subword = TOKEN_UNIT[model.kind] === "subword";
  if (subword) opts = { ...opts, tokenizer: opts.tokenizer ?? model.tokenizer };
  if (subword && !opts.tokenizer) {
    throw new Error(`scoring a ${model.kind} model needs its tokenizer (tokenizer.json)`);
  }
  if (!subword && opts.tokenizer) throw new Error(`${model.kind} reads bytes; do not pass a tokenizer`);
  const ids: TokenWindow = subword ? opts.tokenizer!.encode(text) : text;
  if (ids.length < 2) throw new Error(`the text is too short to score (${text.length} bytes)`);
  const batch = opts.batch ?? 1;
  if (!Number.isInteger(batch) || batch < 1) {
    throw new Error(`scoreText: batch must be a positive integer (got ${batch})`);
  }
  // contiguous windows of window+1 tokens, overlapping by one token; only the last may be shorter
  const totalWindows = Math.ceil((ids.length - 1) / window);
  const windowAt = (k: number) => ids.subarray(k * window, Math.min(ids.length, k * window + window + 1));
  let nats = 0, tokens = 0;
  const parts = opts.documents ? documentBins(opts.documents, text.length, ids, opts.tokenizer) : undefined;
  const mamba = recurrentCore(model);
  const weights = opts.weights ?? mamba?.decodeWeights;
  if (weights && !mamba) throw new Error(`weights "${weights}" score Mamba models only (the CPU stepper)`);
  if (weights && opts.scorer) throw new Error("scoreText: a scorer or weights, not both");
  const stepper = weights ? await MambaStepper.create(mamba!, { weights }) : undefined;
  try {
    for (let i = 0; i < totalWindows;) {
      let j = i + 1; // a batch holds windows of one length: full ones, or the short last one alone
      while (j < totalWindows && j - i < batch && windowAt(j).length === windowAt(i).length) j++;
      const group: TokenWindow[] = [];
      for (let k = i; k < j; k++) group.push(windowAt(k));
      let v: number;
      if (stepper || opts.scorer) {
        // per-token nats from the CPU stepper or the scorer, summed here
        const perToken = stepper
          ? stepperTokenNats(stepper, model.config.vocab_size, group)
          : await opts.scorer!.nats(group.map((w) => Int32Array.from(w)));
        v = 0;
        for (const x of perToken) v += x; // in doubles, in order
        parts?.add(i * window, perToken);
      } else if (parts) {
        // the sum as windowNats takes it (so the score is the same with or without parts), and each token's
        const [sum, perToken] = tf.tidy(() => {
          const t = tokenNats(model, group);
          return [tf.sum(t), t];
        });
        v = (await sum.data())[0];
        parts.add(i * window, await perToken.data());
        tf.dispose([sum, perToken]);
        reclaimWebGpuGarbage();
      } else {
        const t = windowNats(model, group);
        v = (await t.data())[0];
        t.dispose();
        reclaimWebGpuGarbage();
      }
      if (!Number.isFinite(v)) {
        const unit = subword ? "tokens" : "bytes";
        throw new NonFiniteError(
          `the ${model.kind} model's loss is ${v} on window${
            j - i > 1 ? `s ${i + 1}-${j}` : ` ${i + 1}`
          } of ` +
            `${totalWindows} (${unit} ${i * window}-${
              Math.min(ids.length, j * window + 1)
            }); its weights or ` +
            `activations overflow, so no score is reported`,
        );
      }
      nats += v;
      for (const w of group) tokens += w.length - 1;
      await opts.onProgress?.({ windows: j, totalWindows, tokens, totalTokens: ids.length - 1 });
      i = j;
    }
  } finally {
    stepper?.dispose();
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
    ...(parts ? { documents: parts.result() } : {}),
  };
}

/**
 * Bins per-token nats into the text's parts (lengths `spans`, summing to `textBytes`): token k (of `ids`,
 * k >= 1 predicted) goes to the part holding its first byte, with its byte count. `add(k0, nats)` takes the
 * row-major nats of consecutive equal windows, the first starting at token k0: windows overlap by one
 * token (each is n + 1 tokens, n apart), so value j predicts token k0 + j + 1.
 */
function documentBins(spans: number[], textBytes: number, ids: TokenWindow, tokenizer?: ByteBPE) {
  if (spans.some((n) => !Number.isInteger(n) || n < 0) || spans.reduce((s, n) => s + n, 0) !== textBytes) {
    throw new Error(
      `scoreText: documents must be byte lengths summing to the text's ${textBytes} bytes (got ${spans.length} summing to ${
        spans.reduce((s, n) => s + n, 0)
      })`,
    );
  }
  // part and bytes of each token: bytes are tokens for byte models
  const part = new Int32Array(ids.length), size = new Int32Array(ids.length);
  let p = 0, end = spans[0] ?? 0, at = 0;
  for (let k = 0; k < ids.length; k++) {
    while (at >= end && p < spans.length - 1) end += spans[++p];
    part[k] = p;
    size[k] = tokenizer ? tokenizer.tokenBytes(ids[k]).length : 1;
    at += size[k];
  }
  const bytes = new Float64Array(spans.length), nats = new Float64Array(spans.length);
  return {
    add(k0: number, values: ArrayLike<number>) {
      for (let j = 0; j < values.length; j++) {
        const k = k0 + j + 1;
        bytes[part[k]] += size[k];
        nats[part[k]] += values[j];
      }
    },
    result: () => Array.from(bytes, (b, i) => ({ bytes: b, nats: nats[i] })),
  };
}
