/** Bits-per-byte and word-level perplexity of a byte model on a text. */
import * as tf from "@tensorflow/tfjs";
import { evalWindows, countWords } from "../data/bytes.ts";
import { forward, type MambaLM } from "../models/mamba.ts";

export interface ByteScore {
  /** Bytes predicted (all but the first of each window). */
  bytes: number;
  /** Mean next-byte cross-entropy, nats. */
  ce_nats: number;
  bits_per_byte: number;
  words: number;
  /** exp(total nats / words) (PAPER.md). */
  word_perplexity: number;
}

/** Sums -log p(byte) over the text in contiguous windows of `window` bytes. */
export async function scoreBytes(model: MambaLM, data: Uint8Array, window = 2048): Promise<ByteScore> {
  let totalNats = 0, bytes = 0;
  for (const w of evalWindows(data, window)) {
    const n = w.length - 1;
    const nats = tf.tidy(() => {
      const ids = tf.tensor(w.subarray(0, n), [1, n], "int32");
      const { logits } = forward(model, ids);
      const V = logits.shape[2]!;
      const logp = tf.logSoftmax(logits.reshape([n, V]));
      const onehot = tf.oneHot(tf.tensor(w.subarray(1), [n], "int32"), V).toFloat();
      return tf.neg(tf.sum(tf.mul(onehot, logp)));
    });
    totalNats += (await nats.data())[0];
    nats.dispose();
    bytes += n;
  }
  const ce = totalNats / bytes;
  const words = countWords(data);
  return {
    bytes,
    ce_nats: ce,
    bits_per_byte: ce / Math.LN2,
    words,
    word_perplexity: Math.exp(totalNats / Math.max(1, words)),
  };
}

/** -log2 p(byte_t | bytes < t) for t = 1..n-1 of one text (one window; for plots of a sentence). */
export async function perByteBits(model: MambaLM, text: Uint8Array): Promise<Float32Array> {
  const n = text.length - 1;
  if (n < 1) throw new Error("perByteBits: need at least 2 bytes");
  const bits = tf.tidy(() => {
    const { logits } = forward(model, tf.tensor(Int32Array.from(text.subarray(0, n)), [1, n], "int32"));
    const V = logits.shape[2]!;
    const logp = tf.logSoftmax(logits.reshape([n, V]));
    const onehot = tf.oneHot(tf.tensor(Int32Array.from(text.subarray(1)), [n], "int32"), V).toFloat();
    return tf.div(tf.neg(tf.sum(tf.mul(onehot, logp), 1)), Math.LN2);
  });
  const out = (await bits.data()) as Float32Array;
  bits.dispose();
  return out;
}
