/**
 * Bits-per-byte and word-level perplexity of a MambaLM on a text: the MambaLM forms of the scorer in
 * score.ts (which serves every model family).
 */
import * as tf from "@tensorflow/tfjs";
import type { MambaLM } from "../models/mamba.ts";
import { mambaAsLanguageModel } from "../models/registry.ts";
import { scoreText, tokenNats } from "./score.ts";

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
  const s = await scoreText(mambaAsLanguageModel(model), data, { window });
  return {
    bytes: s.bytes,
    ce_nats: s.ce_nats,
    bits_per_byte: s.bits_per_byte,
    words: s.words,
    word_perplexity: s.word_perplexity,
  };
}

/** -log2 p(byte_t | bytes < t) for t = 1..n-1 of one text (one window; for plots of a sentence). */
export async function perByteBits(model: MambaLM, text: Uint8Array): Promise<Float32Array> {
  if (text.length < 2) throw new Error("perByteBits: need at least 2 bytes");
  const bits = tf.tidy(() =>
    tf.div(tokenNats(mambaAsLanguageModel(model), [Int32Array.from(text)]), Math.LN2).reshape([-1])
  );
  const out = (await bits.data()) as Float32Array;
  bits.dispose();
  return out;
}
