/**
 * Robustness to synthetic noise (PAPER.md, result 4): the six noise transforms of lib/data/noise.ts, at the
 * probabilities of the paper's table, applied to the test split; each model scores the clean and every
 * noisy text, and we record the increase in bits per byte and in word-level perplexity.
 *
 * Word-level perplexity of a noisy text is exp(total nats of the noisy text / words of the CLEAN text).
 * The denominator is the clean text's word count for the clean and every noisy version, so an increase
 * measures the extra information the model needs to encode the corrupted document, per original word.
 * Dividing by the noisy text's own word count would reward noise that splits words: antspeak puts a space
 * between all characters, multiplying the word count by ~5, and would make perplexity fall. The paper's
 * antspeak row (+28.3 for MambaByte, +58,300 for subword Mamba) only makes sense with a fixed denominator,
 * and PG19's word-level perplexity is defined per word of the original text [U: the paper does not spell
 * this out]. The noisy text's own count is recorded too (`words_noisy`).
 *
 * Bits per byte of a noisy text are per byte of that text (the quantity a byte model is trained on).
 *
 *   deno run -A lib/runs/stages.ts noise --scale smoke   # the recorded runs of that scale -> data/results/noise.jsonl
 */
import type { ByteBPE } from "../data/bpe.ts";
import { countWords } from "../data/bytes.ts";
import { addNoise, NOISE_DEFAULT_P, NOISE_DEFINITIONS, NOISE_KINDS, type NoiseKind } from "../data/noise.ts";
import { type LanguageModel } from "../models/lm.ts";
import { PAPER_NOISE } from "../results/paper.ts";

import { scoreText } from "./score.ts";

import type { NoiseResult, NoiseScore } from "../results/records.ts";

export interface NoiseSetting {
  kind: NoiseKind;
  p: number;
}

/** The paper's settings, from its table (lib/results/paper.ts): p = 0.05 and 0.3, or the transform's own p when it lists none. */
export const NOISE_SETTINGS: NoiseSetting[] = PAPER_NOISE.map((r) => {
  const kind = r.noise as NoiseKind;
  if (!NOISE_KINDS.includes(kind)) {
    throw new Error(`lib/results/paper.ts PAPER_NOISE: unknown noise "${r.noise}"`);
  }
  return { kind, p: r.p ?? NOISE_DEFAULT_P[kind] };
});

export interface NoiseOptions {
  /** Tokens per scoring window (the model's training length). */
  window: number;
  /** Windows per forward pass (default 1; the stage uses the run's training batch, which fitted in memory). */
  batch?: number;
  tokenizer?: ByteBPE;
  settings?: NoiseSetting[];
  /** Seed of the noise (the same for every model, so every model reads the same noisy texts). */
  seed?: number;
  onProgress?: (line: string) => void;
  /** Each result as soon as it is known (the clean text's first), awaited (a live table draws here). */
  onResult?: (r: NoiseResult) => unknown;
}

/** Scores the clean text and each noisy version: one result per setting, the clean one first (noise "none"). */
export async function evaluateNoise(
  model: LanguageModel,
  clean: Uint8Array,
  opts: NoiseOptions,
): Promise<NoiseResult[]> {
  const seed = opts.seed ?? 0;
  const words = countWords(clean);
  if (words === 0) throw new Error("the clean text has no words (word perplexity is undefined)");
  const score = async (text: Uint8Array): Promise<NoiseScore & { wall_s: number }> => {
    const t0 = performance.now();
    const s = await scoreText(model, text, {
      window: opts.window,
      tokenizer: opts.tokenizer,
      batch: opts.batch,
    });
    return {
      bytes: s.bytes,
      tokens: s.tokens,
      nats: s.nats,
      bits_per_byte: s.bits_per_byte,
      word_perplexity: Math.exp(s.nats / words),
      wall_s: (performance.now() - t0) / 1000,
    };
  };
  const say = opts.onProgress ?? (() => {});
  const { wall_s: cleanWall, ...cleanScore } = await score(clean);
  say(
    `clean: ${cleanScore.bits_per_byte.toFixed(4)} bits/byte, word perplexity ${
      cleanScore.word_perplexity.toPrecision(5)
    }`,
  );
  const result = (
    noise: NoiseKind | "none",
    p: number,
    text: Uint8Array,
    s: NoiseScore,
    wall_s: number,
  ): NoiseResult => ({
    noise,
    p,
    seed,
    definition: noise === "none" ? "the clean test text" : NOISE_DEFINITIONS[noise],
    text_bytes: text.length,
    words,
    words_noisy: countWords(text),
    ...s,
    clean: cleanScore,
    delta_bits_per_byte: s.bits_per_byte - cleanScore.bits_per_byte,
    delta_word_perplexity: s.word_perplexity - cleanScore.word_perplexity,
    ratio_word_perplexity: s.word_perplexity / cleanScore.word_perplexity,
    window: opts.window,
    wall_s,
  });
  const out = [result("none", 0, clean, cleanScore, cleanWall)];
  await opts.onResult?.(out[0]);
  for (const { kind, p } of opts.settings ?? NOISE_SETTINGS) {
    const noisy = addNoise(clean, kind, p, seed);
    const { wall_s, ...s } = await score(noisy);
    const r = result(kind, p, noisy, s, wall_s);
    say(
      `${kind} p=${p}: ${r.bits_per_byte.toFixed(4)} bits/byte (+${r.delta_bits_per_byte.toFixed(4)}), ` +
        `word perplexity ${r.word_perplexity.toPrecision(5)} (x${r.ratio_word_perplexity.toPrecision(4)})`,
    );
    out.push(r);
    await opts.onResult?.(r);
  }
  return out;
}
