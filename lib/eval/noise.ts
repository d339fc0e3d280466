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
 *   deno run -A lib/eval/noise.ts --scale smoke      # the recorded runs of that scale -> data/results/noise.jsonl
 */
import type { ByteBPE } from "../data/bpe.ts";
import { countWords } from "../data/bytes.ts";
import { addNoise, NOISE_DEFAULT_P, NOISE_DEFINITIONS, NOISE_KINDS, type NoiseKind } from "../data/noise.ts";
import { disposeModel, type LanguageModel, TOKEN_UNIT } from "../models/lm.ts";
import { PAPER_NOISE } from "../paper.ts";
import { appendRecord, RESULTS_DIR } from "../results/store.ts";
import { evaluatedRuns, pickRuns, type RunLike } from "./extrapolation.ts";
import { evalBatch, scoreText } from "./score.ts";

export interface NoiseSetting {
  kind: NoiseKind;
  p: number;
}

/** The paper's settings, from its table (lib/paper.ts): p = 0.05 and 0.3, or the transform's own p when it lists none. */
export const NOISE_SETTINGS: NoiseSetting[] = PAPER_NOISE.map((r) => {
  const kind = r.noise as NoiseKind;
  if (!NOISE_KINDS.includes(kind)) throw new Error(`lib/paper.ts PAPER_NOISE: unknown noise "${r.noise}"`);
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
  for (const { kind, p } of opts.settings ?? NOISE_SETTINGS) {
    const noisy = addNoise(clean, kind, p, seed);
    const { wall_s, ...s } = await score(noisy);
    const r = result(kind, p, noisy, s, wall_s);
    say(
      `${kind} p=${p}: ${r.bits_per_byte.toFixed(4)} bits/byte (+${r.delta_bits_per_byte.toFixed(4)}), ` +
        `word perplexity ${r.word_perplexity.toPrecision(5)} (x${r.ratio_word_perplexity.toPrecision(4)})`,
    );
    out.push(r);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Records (data/results/noise.jsonl)

export interface NoiseRecord extends NoiseResult {
  experiment: "noise";
  scale: string;
  run?: string;
  /** The run record's time (identifies the training run). */
  run_time?: string;
  model_dir: string;
  model_kind: string;
  label: string;
  unit: "byte" | "subword";
  domain: string;
  data: string;
  parameters?: number;
}

/** Clean bytes scored per model and setting (a prefix of the test split). */
export const NOISE_SCALES: Record<string, { maxBytes?: number }> = {
  smoke: { maxBytes: 4096 },
  small: { maxBytes: 32768 },
  gpu: { maxBytes: 262144 },
};

/** MambaByte against subword Mamba (the paper's pair), plus the byte Transformer. */
export const NOISE_KINDS_COMPARED = ["mambabyte", "mamba_subword", "transformer"];

export interface NoiseStageOptions {
  scale: string;
  resultsDir?: string;
  runsDir?: string;
  domain?: string;
  kinds?: string[];
  maxBytes?: number;
  seed?: number;
  /** Evaluate runs that already have records too (default: skip them). */
  force?: boolean;
  quiet?: boolean;
}

/**
 * Evaluates the recorded runs of a scale (one per model family, extrapolation.ts pickRuns) and appends one
 * record per (model, setting). Usable as a `reproduce` evaluation stage.
 */
export async function noiseStage(
  runs: (RunLike & { eval?: { window?: number } })[],
  opts: NoiseStageOptions,
): Promise<NoiseRecord[]> {
  const { domainText, loadTrained, REPO_ROOT } = await import("../train/experiment.ts");
  const { countParameters } = await import("../models/lm.ts");
  await import("../models/mod.ts");
  const say = (s: string) => opts.quiet || console.error(s);
  const runsDir = opts.runsDir ?? `${REPO_ROOT}data/checkpoints/runs`;
  // the latest record of each run (a re-trained run is recorded again)
  const latest = [...new Map(runs.filter((r) => r.scale === opts.scale).map((r) => [r.run, r])).values()];
  const chosen = pickRuns(latest, opts.kinds ?? NOISE_KINDS_COMPARED, opts.domain);
  if (!chosen.length) {
    say(
      `noise: no runs of ${(opts.kinds ?? NOISE_KINDS_COMPARED).join(", ")} recorded at scale ${opts.scale}`,
    );
  }
  const maxBytes = opts.maxBytes ?? NOISE_SCALES[opts.scale]?.maxBytes;
  const resultsDir = opts.resultsDir ?? RESULTS_DIR;
  const done = opts.force ? new Set<string>() : await evaluatedRuns("noise", resultsDir);
  const out: NoiseRecord[] = [];
  for (const run of chosen) {
    if (done.has(`${run.run}|${run.provenance?.time ?? ""}`)) {
      say(`noise: ${run.run} already evaluated (records in ${resultsDir}/noise.jsonl)`);
      continue;
    }
    const dir = `${runsDir}/${run.run}/model`;
    const { model, tokenizer } = await loadTrained(dir);
    try {
      const text = await domainText(run.domain as Parameters<typeof domainText>[0], run.scale);
      const clean = maxBytes ? text.test.subarray(0, maxBytes) : text.test;
      const window = run.eval?.window ?? run.length;
      say(
        `noise: ${run.run} (${model.kind}) on ${clean.length} bytes of ${run.domain}/${text.evalSplit}, window ${window}`,
      );
      const batch = run.batch ? evalBatch(run.batch, run.length, window) : 1;
      const results = await evaluateNoise(model, clean, {
        window,
        batch,
        tokenizer,
        seed: opts.seed,
        onProgress: (l) => say(`  ${l}`),
      });
      for (const r of results) {
        const rec: NoiseRecord = {
          experiment: "noise",
          scale: opts.scale,
          run: run.run,
          run_time: run.provenance?.time,
          model_dir: dir.replace(REPO_ROOT, ""),
          model_kind: model.kind,
          label: String(run.labels?.label ?? run.model),
          unit: TOKEN_UNIT[model.kind],
          domain: run.domain,
          data: `${text.source}/${run.domain}/${text.evalSplit}`,
          parameters: countParameters(model),
          ...r,
        };
        await appendRecord("noise", rec as unknown as Record<string, unknown>, resultsDir);
        out.push(rec);
      }
    } finally {
      disposeModel(model);
    }
  }
  return out;
}

if (import.meta.main) {
  const { runStageCli } = await import("./stage_cli.ts");
  await runStageCli(
    "noise",
    " [--max-bytes N]",
    (runs, opts, flag) =>
      noiseStage(runs, { ...opts, maxBytes: flag("max-bytes") ? Number(flag("max-bytes")) : undefined }),
  );
}
