/**
 * Byte-level data: reading a split into one byte array (documents joined) or document by document,
 * seeded resumable random training windows, contiguous evaluation windows (optionally with a sliding
 * context), and word counts for word-level perplexity.
 */
import { InputError } from "../io/errors.ts";
import { Rng } from "../util/rng.ts";

/**
 * File names in the order documents are concatenated: ICU's en-US collation (what `localeCompare` gave
 * on the machines that recorded the results), pinned so that the system locale cannot reorder a split's
 * byte stream (and with it the training windows of a resumed run).
 */
const byName = new Intl.Collator("en-US").compare;

/**
 * The files of a split: every file below a directory (recursively, sorted by name at each level, hidden
 * entries skipped), or the single file given. The corpus writes one file per document, so these are the
 * split's documents.
 */
export async function listSplitFiles(path: string): Promise<string[]> {
  let stat: Deno.FileInfo;
  try {
    stat = await Deno.stat(path);
  } catch {
    throw new InputError(
      path,
      undefined,
      `${path}: no such file or directory (expected a text file or a directory of them)`,
    );
  }
  const files: string[] = [];
  const walk = async (dir: string) => {
    const entries = [];
    for await (const e of Deno.readDir(dir)) entries.push(e);
    entries.sort((a, b) => byName(a.name, b.name));
    for (const e of entries) {
      if (e.name.startsWith(".")) continue;
      if (e.isDirectory) await walk(`${dir}/${e.name}`);
      else if (e.isFile) files.push(`${dir}/${e.name}`);
    }
  };
  if (stat.isDirectory) await walk(path);
  else files.push(path);
  if (files.length === 0) {
    throw new InputError(path, undefined, `${path}: no files found (the split is empty)`);
  }
  return files;
}

/** The documents of a split, each as its own byte array (in `listSplitFiles` order). */
export async function readDocuments(path: string): Promise<{ path: string; bytes: Uint8Array }[]> {
  const files = await listSplitFiles(path);
  const parts = await Promise.all(files.map((f) => Deno.readFile(f)));
  return files.map((f, i) => ({ path: f, bytes: parts[i] }));
}

/** Reads every file of a directory (sorted, recursively) or a single file; documents joined by "\n\n". */
export async function readSplit(path: string): Promise<Uint8Array> {
  return joinDocuments((await readDocuments(path)).map((d) => d.bytes));
}

/**
 * The lengths of documents' parts of their join (`joinDocuments`): each document with the separator after
 * it (the last has none), so the parts tile the joined text in order.
 */
export function documentSpans(lengths: number[]): number[] {
  return lengths.map((n, i) => n + (i < lengths.length - 1 ? DOCUMENT_SEPARATOR.length : 0));
}

const DOCUMENT_SEPARATOR = new TextEncoder().encode("\n\n");

/** Documents joined by "\n\n" into one byte array (what `readSplit` returns). */
export function joinDocuments(parts: Uint8Array[]): Uint8Array {
  const sep = DOCUMENT_SEPARATOR;
  const total = parts.reduce((s, p) => s + p.length, 0) + sep.length * Math.max(0, parts.length - 1);
  const out = new Uint8Array(total);
  let at = 0;
  parts.forEach((p, i) => {
    if (i > 0) {
      out.set(sep, at);
      at += sep.length;
    }
    out.set(p, at);
    at += p.length;
  });
  return out;
}

/**
 * Random training windows: each batch is `batch` windows of `length + 1` bytes at uniformly random
 * offsets (inputs and next-byte targets). Seeded and resumable: the stream of batches is a function of
 * (data, batch, length, seed) only, `position` counts the batches drawn, and `seek(n)` (or the
 * constructor's `position`) continues exactly where batch n would come; `state()`/`restore()` save and
 * restore the generator itself.
 */
export class ByteBatcher {
  private rng: Rng;
  private drawn = 0;
  constructor(
    readonly data: Uint8Array,
    readonly batch: number,
    readonly length: number,
    readonly seed = 0,
    position = 0,
  ) {
    if (data.length < length + 1) {
      throw new Error(`the training text has ${data.length} bytes, fewer than one window of ${length + 1}`);
    }
    this.rng = new Rng(seed);
    this.seek(position);
  }

  /** Batches drawn so far (the index of the next batch). */
  get position(): number {
    return this.drawn;
  }

  /** Moves to batch `position` by replaying the generator from the seed (one draw per window). */
  seek(position: number): void {
    if (!(Number.isInteger(position) && position >= 0)) {
      throw new Error(`batch position must be a whole number >= 0 (got ${position})`);
    }
    if (position < this.drawn) {
      this.rng = new Rng(this.seed);
      this.drawn = 0;
    }
    const span = this.data.length - this.length;
    for (; this.drawn < position; this.drawn++) for (let i = 0; i < this.batch; i++) this.rng.int(span);
  }

  /** (batch, length + 1) bytes as int32, row-major. */
  next(): Int32Array {
    const w = this.length + 1;
    const out = new Int32Array(this.batch * w);
    this.nextStarts().forEach((start, i) => {
      for (let j = 0; j < w; j++) out[i * w + j] = this.data[start + j];
    });
    return out;
  }

  /** The next batch's window starts (one per row; row i is data[start, start + length + 1)). */
  nextStarts(): number[] {
    const starts = Array.from({ length: this.batch }, () => this.rng.int(this.data.length - this.length));
    this.drawn++;
    return starts;
  }

  state(): number[] {
    return this.rng.getState();
  }

  /** Restores a generator state from `state()`; pass the position it was taken at to keep `position` right. */
  restore(state: readonly number[], position?: number): void {
    this.rng = Rng.fromState(state);
    if (position !== undefined) this.drawn = position;
  }
}

/**
 * Contiguous windows covering `data` for evaluation: window i predicts bytes [i*length+1, (i+1)*length]
 * from the bytes before them inside the window; every byte after the first is predicted exactly once.
 */
export function* evalWindows(data: Uint8Array, length: number): Generator<Int32Array> {
  for (let start = 0; start + 1 < data.length; start += length) {
    const end = Math.min(data.length, start + length + 1);
    yield Int32Array.from(data.subarray(start, end));
  }
}

/** A window for sliding-context evaluation: score predictions of `bytes[skip + 1 ..]` only. */
export interface SlidingWindow {
  /** Up to `length + 1` bytes: the model reads bytes[0..n-2] and predicts bytes[1..n-1]. */
  bytes: Int32Array;
  /** Predictions to ignore at the start (they were scored by an earlier window; they serve as context). */
  skip: number;
  /** Offset of bytes[0] in the data. */
  start: number;
}

/**
 * Evaluation windows with a sliding context: each window holds `length` inputs, of which the first
 * `context` only give context to the bytes that follow (their predictions were scored by the previous
 * window), so every byte after the first is scored exactly once and, except in the first window, with at
 * least `context` bytes before it. context = 0 is `evalWindows`; a larger context costs length/(length -
 * context) times the compute and measures the model with a warm state, as in the paper's extrapolation
 * plots. Sum the per-byte losses of predictions `skip ..` of each window.
 */
export function* slidingWindows(data: Uint8Array, length: number, context: number): Generator<SlidingWindow> {
  if (!(length >= 1 && context >= 0 && context < length)) {
    throw new Error(`sliding windows need 0 <= context < length (got context ${context}, length ${length})`);
  }
  let next = 1; // the first byte not yet scored (a target position)
  while (next < data.length) {
    const start = Math.max(0, next - 1 - context);
    const end = Math.min(data.length, start + length + 1);
    yield { bytes: Int32Array.from(data.subarray(start, end)), skip: next - 1 - start, start };
    next = end;
  }
}

/** Whitespace-separated words, for word-level perplexity (PAPER.md). */
export function countWords(data: Uint8Array): number {
  let words = 0, inWord = false;
  for (const b of data) {
    const space = b === 32 || b === 9 || b === 10 || b === 13 || b === 11 || b === 12;
    if (!space && !inWord) words++;
    inWord = !space;
  }
  return words;
}
