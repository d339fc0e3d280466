/**
 * Length extrapolation (PAPER.md, result 3): a model trained on sequences of C tokens is evaluated on test
 * sequences of 1x, 2x, 4x ... 64x C, and its loss is recorded against the evaluation length and against
 * the byte position inside the sequence. The paper's finding [S]: MambaByte trained at 8,192 bytes shows no
 * significant degradation at 4x and more, while a Transformer, limited by its position embeddings, does not
 * extrapolate beyond its training length.
 *
 * Modes:
 * - whole: the model reads each test sequence at once. Mamba (bytes or subwords) reads it as the recurrence
 *   it is: chunk by chunk, each layer's state (conv window and SSM state) carried from one chunk into the
 *   next, which gives the numbers of one pass over the whole sequence (tested) with memory bounded by the
 *   chunk. Any other model (the Transformer) gets the whole sequence in one call: full attention, and
 *   positions beyond those it was trained on.
 * - sliding: the model never sees more than C tokens. Windows of C inputs; every window after the first
 *   starts with `slidingContext` tokens that only give context (lib/data/bytes.ts `slidingWindows`), so
 *   every byte is scored exactly once, with at least that much context.
 *
 * Positions: a predicted token's loss is put at its byte position, the number of bytes of the sequence
 * before it (byte models: t for the t-th byte, t = 1 .. L; subword models: the offset of the token's first
 * byte), and summed into log-spaced bins (`binsPerOctave` per doubling). Every evaluation length scores the
 * SAME tokens of the test split (the first `span` tokens after the first, `span` a multiple of the longest
 * length that fits), so the lengths differ only in how much context the model has.
 *
 *   deno run -A lib/runs/stages.ts extrapolation --scale smoke   # the recorded runs of that scale -> records
 */
import * as tf from "@tensorflow/tfjs";
import { releasePooledGpuBuffers } from "../backend.ts";
import { slidingWindows } from "../data/bytes.ts";
import type { ByteBPE } from "../data/bpe.ts";
import { type LanguageModel, TOKEN_UNIT } from "../models/lm.ts";
import { recurrentCore } from "../models/registry.ts";
import { type MambaLM, type MambaState, prefill } from "../models/mamba.ts";

import { logitsNats, type ScoreProgress, tokenNats } from "./score.ts";
import type { RowScorer } from "./engine_scorer.ts";

import {
  EvaluatedModel,
  ExtrapolationMode,
  ExtrapolationRecord,
  ExtrapolationResult,
  PositionBin,
} from "../results/records.ts";

export const EXTRAPOLATION_MULTIPLES = [1, 2, 4, 8, 16, 32, 64] as const;

// ---------------------------------------------------------------------------------------------------
// Mamba from a given state: the recurrence over a long sequence, one chunk at a time

/**
 * Per-token nats of equal-length rows (each n+1 tokens) read by Mamba as a recurrence, `chunk` inputs at a
 * time with the state carried over: (b, n) values, row-major. chunk >= n is one pass.
 */
export async function recurrentNats(
  model: MambaLM,
  rows: Int32Array[],
  chunk: number,
): Promise<Float32Array> {
  const b = rows.length, n = rows[0].length - 1;
  if (!(chunk >= 1)) throw new Error(`chunk must be >= 1 (got ${chunk})`);
  const out = new Float32Array(b * n);
  let state: MambaState | undefined;
  try {
    for (let s = 0; s < n; s += chunk) {
      const l = Math.min(chunk, n - s);
      const input = new Int32Array(b * l), targets = new Int32Array(b * l);
      rows.forEach((row, i) => {
        input.set(row.subarray(s, s + l), i * l);
        targets.set(row.subarray(s + 1, s + l + 1), i * l);
      });
      const ids = tf.tensor(input, [b, l], "int32");
      const { logits, state: next } = prefill(model, ids, state);
      ids.dispose();
      const nats = logitsNats(logits, targets); // (b*l)
      logits.dispose();
      const values = (await nats.data()) as Float32Array;
      nats.dispose();
      for (let i = 0; i < b; i++) out.set(values.subarray(i * l, (i + 1) * l), i * n + s);
      if (state) disposeStateTensors(state);
      state = next;
    }
  } finally {
    if (state) disposeStateTensors(state);
  }
  return out;
}

function disposeStateTensors(state: MambaState): void {
  for (const s of state) tf.dispose([s.conv, s.ssm]);
}

// ---------------------------------------------------------------------------------------------------
// Loss against byte position

/** Sums of nats and bytes in log-spaced position bins: bin floor(log2(pos) * binsPerOctave), pos >= 1. */
export class PositionLoss {
  private bins = new Map<number, { lo: number; hi: number; bytes: number; nats: number }>();
  constructor(readonly binsPerOctave = 2) {}

  /** Adds one predicted token: its byte position (>= 1), its nats and its bytes. */
  add(position: number, nats: number, bytes: number): void {
    const k = Math.floor(Math.log2(Math.max(1, position)) * this.binsPerOctave + 1e-9);
    const b = this.bins.get(k);
    if (b) {
      b.lo = Math.min(b.lo, position);
      b.hi = Math.max(b.hi, position);
      b.bytes += bytes;
      b.nats += nats;
    } else this.bins.set(k, { lo: position, hi: position, bytes, nats });
  }

  result(): PositionBin[] {
    return [...this.bins.entries()].sort((a, b) => a[0] - b[0]).map(([bin, b]) => ({
      bin,
      ...b,
      nats: Number(b.nats.toFixed(4)),
      bits_per_byte: b.nats / b.bytes / Math.LN2,
    }));
  }
}

// ---------------------------------------------------------------------------------------------------
// The evaluation

export interface ExtrapolationOptions {
  /** Training context C, in the model's tokens. */
  trainedContext: number;
  /** Evaluation lengths as multiples of C (default 1, 2, 4, ..., 64). */
  multiples?: readonly number[];
  /** Default: recurrent models ["whole"], others ["whole", "sliding"]. */
  modes?: ExtrapolationMode[];
  /** Context tokens at the start of each sliding window (default C / 2). */
  slidingContext?: number;
  /** Tokens per chunk of the recurrent whole-sequence pass (default 4096). */
  chunk?: number;
  /** Score at most this many tokens per evaluation length (default: the whole test split). */
  maxTokens?: number;
  /**
   * Non-recurrent models read whole sequences of at most this many tokens through TF.js (its attention
   * stores every score; default 4096). With a `scorer` there is no cap: the engine's attention never stores
   * them, and a length that does not fit the device's memory is recorded as failed, saying why.
   */
  maxAttentionLength?: number;
  /**
   * Scores the rows of non-recurrent models (whole and sliding) instead of TF.js: lib/eval/engine_scorer.ts
   * (the byte Transformer and MegaByte on the native engine). The caller destroys it.
   */
  scorer?: RowScorer;
  /** Tokens per batch (rows of one length are batched up to this; default 16384). */
  batchTokens?: number;
  binsPerOctave?: number;
  /** The tokenizer of a subword model. */
  tokenizer?: ByteBPE;
  onProgress?: (line: string) => void;
  /**
   * Progress as it goes, awaited (a live view draws here): evaluations (length x mode) finished of all,
   * and predictions scored of all (every evaluated length scores the same span of tokens), after each batch.
   */
  onScored?: (p: ScoreProgress) => unknown;
  /** Called with each result as soon as it is known (the stage records it at once, so a cut run keeps them). */
  onResult?: (r: ExtrapolationResult) => Promise<void> | void;
  /**
   * Lengths and modes already evaluated (an earlier pass cut short by a time limit, lib/runs/stages.ts):
   * neither scored nor handed to onResult again.
   */
  skip?: (multiple: number, mode: ExtrapolationMode, span: number) => boolean;
}

/**
 * The modes a model is evaluated in unless `modes` says: whole sequences, and sliding windows of C too unless
 * the model is recurrent (a Mamba's state carries any length in one pass).
 */
export function extrapolationModes(recurrent: boolean, modes?: ExtrapolationMode[]): ExtrapolationMode[] {
  return modes ?? (recurrent ? ["whole"] : ["whole", "sliding"]);
}

/** Groups equal-length rows into batches of at most `batchTokens` tokens. */
function batches<T extends { length: number }>(rows: T[], batchTokens: number): T[][] {
  const byLength = new Map<number, T[]>();
  for (const r of rows) byLength.set(r.length, [...(byLength.get(r.length) ?? []), r]);
  const out: T[][] = [];
  for (const [len, group] of byLength) {
    const per = Math.max(1, Math.floor(batchTokens / len));
    for (let i = 0; i < group.length; i += per) out.push(group.slice(i, i + per));
  }
  return out;
}

/** Per-token nats of equal-length rows through the model's ordinary forward pass: (b, n) row-major. */
async function forwardNats(
  model: LanguageModel,
  rows: Int32Array[],
  scorer?: RowScorer,
): Promise<Float32Array> {
  if (scorer) return await scorer.nats(rows);
  const t = tokenNats(model, rows);
  const v = (await t.data()) as Float32Array;
  t.dispose();
  return v;
}

/**
 * Per-token nats of each sequence (each L+1 tokens -> L values) in one mode. whole: recurrent models chunk by
 * chunk with the state carried, others in one call; sliding: windows of C inputs over each byte sequence.
 */
export async function sequenceNats(
  model: LanguageModel,
  seqs: Int32Array[],
  mode: ExtrapolationMode,
  opts: {
    trainedContext: number;
    slidingContext?: number;
    chunk?: number;
    batchTokens?: number;
    /** scores non-recurrent models' rows instead of TF.js (ExtrapolationOptions.scorer) */
    scorer?: RowScorer;
    /** after each batch: the predictions it scored (awaited) */
    onBatch?: (predictions: number) => void | Promise<void>;
  },
): Promise<Float32Array[]> {
  // TF.js's attention materialises (b, heads, l, l) scores: smaller batches keep them inside wasm's 4 GiB
  // heap; the engine's never stores them, and larger batches make fewer submissions
  const batchTokens = opts.batchTokens ?? (recurrentCore(model) ? 16384 : opts.scorer ? 65536 : 4096);
  const out = new Map<Int32Array, Float32Array>();
  if (mode === "whole") {
    const core = recurrentCore(model);
    for (const group of batches(seqs, batchTokens)) {
      const n = group[0].length - 1;
      const v = core
        ? await recurrentNats(core, group, opts.chunk ?? 4096)
        : await forwardNats(model, group, opts.scorer);
      group.forEach((s, i) => out.set(s, v.slice(i * n, (i + 1) * n)));
      await opts.onBatch?.(group.length * n);
    }
    return seqs.map((s) => out.get(s)!);
  }
  if (TOKEN_UNIT[model.kind] !== "byte") {
    throw new Error(`sliding-window evaluation is for byte models (got ${model.kind})`);
  }
  const C = opts.trainedContext;
  const context = opts.slidingContext ?? Math.floor(C / 2);
  // every window of every sequence, remembering where its scored predictions go
  const windows: { bytes: Int32Array; seq: number; skip: number; start: number; length: number }[] = [];
  seqs.forEach((s, seq) => {
    for (const w of slidingWindows(Uint8Array.from(s), C, context)) {
      windows.push({ bytes: w.bytes, seq, skip: w.skip, start: w.start, length: w.bytes.length });
    }
  });
  const result = seqs.map((s) => new Float32Array(s.length - 1).fill(NaN));
  for (const group of batches(windows, batchTokens)) {
    const n = group[0].length - 1;
    const v = await forwardNats(model, group.map((w) => w.bytes), opts.scorer);
    group.forEach((w, i) => {
      // prediction j of the window is target start + j + 1, i.e. entry start + j of the sequence's values
      for (let j = w.skip; j < n; j++) result[w.seq][w.start + j] = v[i * n + j];
    });
    await opts.onBatch?.(group.reduce((a, w) => a + w.length - 1 - w.skip, 0));
  }
  for (const r of result) {
    if (r.some(Number.isNaN)) throw new Error("sliding windows left a byte unscored (a bug)");
  }
  return result;
}

/**
 * Evaluates `model` on `test` (bytes) at every multiple of the trained context, in every mode. Lengths whose
 * sequence does not fit in the test split (or its `maxTokens` budget) are returned as skipped, saying so.
 */
export async function evaluateExtrapolation(
  model: LanguageModel,
  test: Uint8Array,
  opts: ExtrapolationOptions,
): Promise<ExtrapolationResult[]> {
  const C = opts.trainedContext;
  if (!(Number.isInteger(C) && C >= 2)) throw new Error(`trainedContext must be an integer >= 2 (got ${C})`);
  const subword = TOKEN_UNIT[model.kind] === "subword";
  if (subword && !opts.tokenizer) {
    throw new Error(`extrapolation of a ${model.kind} model needs its tokenizer`);
  }
  const ids = subword ? opts.tokenizer!.encode(test) : Int32Array.from(test);
  const tokenBytes = (id: number) => (subword ? opts.tokenizer!.tokenBytes(id).length : 1);
  const recurrent = !!recurrentCore(model);
  const modes = extrapolationModes(recurrent, opts.modes);
  const multiples = [...(opts.multiples ?? EXTRAPOLATION_MULTIPLES)].sort((a, b) => a - b);
  const budget = Math.min(ids.length - 1, opts.maxTokens ?? Infinity);
  const fits = multiples.filter((m) => m * C <= budget);
  const say = opts.onProgress ?? (() => {});
  const results: ExtrapolationResult[] = [];
  // progress: evaluations finished, and predictions scored (an evaluation not run counts its span at once)
  const evaluations = multiples.length * modes.length;
  let scored = 0, spanOfOne = 0, totalScored = 0, skipped = 0;
  const progress = () =>
    opts.onScored?.({
      windows: results.length + skipped,
      totalWindows: evaluations,
      tokens: scored,
      totalTokens: totalScored,
    });
  // each result is kept and handed to onResult as soon as it is known
  const emit = async (r: ExtrapolationResult, unscored = 0) => {
    results.push(r);
    scored += unscored;
    await opts.onResult?.(r);
    await progress();
  };
  const binsPerOctave = opts.binsPerOctave ?? 2;
  const empty = {
    sequences: 0,
    tokens: 0,
    bytes: 0,
    nats: 0,
    bits_per_byte: NaN,
    sequence_bpb: [],
    position_bins: [],
    bins_per_octave: binsPerOctave,
    wall_s: 0,
  };
  if (!fits.length) {
    throw new Error(
      `the test text has ${ids.length} tokens (budget ${budget}): not even one sequence of ${
        C + 1
      } tokens fits`,
    );
  }
  const longest = fits.at(-1)! * C;
  // the same tokens for every length: the first `span` predictions, a multiple of the longest length
  const span = Math.floor(budget / longest) * longest;
  spanOfOne = span;
  totalScored = fits.length * modes.length * span;
  for (const m of multiples.filter((m) => !fits.includes(m))) {
    const reason = `capped: the ${
      opts.maxTokens !== undefined && opts.maxTokens < ids.length - 1
        ? `token budget (${budget})`
        : `test split (${ids.length} tokens)`
    } ` +
      `holds no sequence of ${m * C + 1} tokens; the longest evaluated is ${fits.at(-1)}x`;
    say(`${m}x: ${reason}`);
    for (const mode of modes) {
      if (opts.skip?.(m, mode, span)) {
        skipped++;
        continue;
      }
      await emit({
        multiple: m,
        mode,
        eval_length: m * C,
        eval_length_bytes: NaN,
        status: "skipped",
        reason,
        ...empty,
      });
    }
  }
  for (const m of fits) {
    const L = m * C;
    const seqs: Int32Array[] = [];
    for (let s = 0; s + L <= span; s += L) seqs.push(ids.slice(s, s + L + 1));
    for (const mode of modes) {
      if (opts.skip?.(m, mode, span)) {
        scored += spanOfOne; // counted as done for the progress
        skipped++;
        continue;
      }
      const base = { multiple: m, mode, eval_length: L };
      if (mode === "whole" && !recurrent && !opts.scorer && L > (opts.maxAttentionLength ?? 4096)) {
        const reason = `full attention over ${L} tokens exceeds maxAttentionLength ${
          opts.maxAttentionLength ?? 4096
        } (memory)`;
        say(`${m}x ${mode}: skipped, ${reason}`);
        await emit({ ...base, eval_length_bytes: NaN, status: "skipped", reason, ...empty }, spanOfOne);
        continue;
      }
      const t0 = performance.now();
      let nats: Float32Array[];
      const before = scored;
      try {
        nats = await sequenceNats(model, seqs, mode, {
          trainedContext: C,
          slidingContext: opts.slidingContext,
          chunk: opts.chunk,
          batchTokens: opts.batchTokens,
          scorer: opts.scorer,
          onBatch: async (n) => {
            scored += n;
            await progress();
          },
        });
      } catch (e) {
        const reason = (e as Error).message;
        say(`${m}x ${mode}: failed: ${reason}`);
        await emit(
          { ...base, eval_length_bytes: NaN, status: "failed", reason, ...empty },
          before + span - scored,
        );
        continue;
      }
      const pos = new PositionLoss(binsPerOctave);
      let totalNats = 0, totalBytes = 0, seqBytes = 0;
      const perSeq: number[] = [];
      seqs.forEach((s, i) => {
        let offset = tokenBytes(s[0]); // bytes before target 1
        let sn = 0, sb = 0;
        for (let t = 1; t < s.length; t++) {
          const nb = tokenBytes(s[t]), v = nats[i][t - 1];
          pos.add(offset, v, nb);
          sn += v;
          sb += nb;
          offset += nb;
        }
        seqBytes += offset;
        totalNats += sn;
        totalBytes += sb;
        perSeq.push(Number((sn / sb / Math.LN2).toFixed(4)));
      });
      const r: ExtrapolationResult = {
        ...base,
        eval_length_bytes: seqBytes / seqs.length,
        status: "ok",
        sequences: seqs.length,
        tokens: seqs.length * L,
        bytes: totalBytes,
        nats: totalNats,
        bits_per_byte: totalNats / totalBytes / Math.LN2,
        sequence_bpb: perSeq,
        position_bins: pos.result(),
        bins_per_octave: binsPerOctave,
        ...(mode === "sliding" ? { sliding_context: opts.slidingContext ?? Math.floor(C / 2) } : {}),
        ...(mode === "whole" && recurrent ? { chunk: opts.chunk ?? 4096 } : {}),
        ...(!recurrent && opts.scorer ? { scored_by: opts.scorer.name } : {}),
        wall_s: (performance.now() - t0) / 1000,
      };
      say(
        `${m}x (${L} tokens) ${mode}: ${
          r.bits_per_byte.toFixed(4)
        } bits/byte over ${r.bytes} bytes, ${r.sequences} sequences, ${r.wall_s.toFixed(1)} s`,
      );
      await emit(r);
    }
    // what this length built for its shapes, which the next lengths' whole sequences do not use: the engine
    // scorer's engines (EngineScorer.release), and the buffers TF.js pooled on webgpu (a subword Mamba's 1x
    // over 64K tokens left 18 GB pooled on Mesa's WebGPU and 2x then ran the workstation out of memory)
    opts.scorer?.release();
    releasePooledGpuBuffers();
  }
  return results.sort((a, b) => a.multiple - b.multiple || a.mode.localeCompare(b.mode));
}

// ---------------------------------------------------------------------------------------------------
// Records (data/results/extrapolation.jsonl)

/** evaluateExtrapolation, with each result completed into a record (not yet written). */
export async function extrapolationRecords(
  model: LanguageModel,
  test: Uint8Array,
  opts: ExtrapolationOptions,
  about: Omit<EvaluatedModel, "model_kind" | "unit" | "label"> & { label?: string },
  onRecord?: (r: ExtrapolationRecord) => Promise<void> | void,
): Promise<ExtrapolationRecord[]> {
  const unit = TOKEN_UNIT[model.kind];
  const testTokens = unit === "subword" ? opts.tokenizer!.encode(test).length : test.length;
  const bytesPerToken = test.length / testTokens;
  const complete = (r: ExtrapolationResult): ExtrapolationRecord => ({
    experiment: "extrapolation",
    ...about,
    label: about.label ?? model.kind,
    model_kind: model.kind,
    unit,
    test_tokens: testTokens,
    trained_context: opts.trainedContext,
    trained_context_bytes: Math.round(opts.trainedContext * bytesPerToken),
    bytes_per_token: bytesPerToken,
    ...r,
  });
  const results = await evaluateExtrapolation(model, test, {
    ...opts,
    onResult: onRecord && ((r) => onRecord(complete(r))),
  });
  return results.map(complete);
}
