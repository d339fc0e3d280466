/**
 * Byte-level data: reading a split into one byte array (documents joined), random training windows,
 * and contiguous evaluation windows.
 */
import { Rng } from "../util/rng.ts";

/** Reads every file of a directory (sorted, recursively) or a single file; documents joined by "\n\n". */
export async function readSplit(path: string): Promise<Uint8Array> {
  let stat: Deno.FileInfo;
  try {
    stat = await Deno.stat(path);
  } catch {
    throw new Error(`${path}: no such file or directory (expected a text file or a directory of them)`);
  }
  const files: string[] = [];
  const walk = async (dir: string) => {
    const entries = [];
    for await (const e of Deno.readDir(dir)) entries.push(e);
    entries.sort((a, b) => a.name.localeCompare(b.name));
    for (const e of entries) {
      if (e.name.startsWith(".")) continue;
      if (e.isDirectory) await walk(`${dir}/${e.name}`);
      else if (e.isFile) files.push(`${dir}/${e.name}`);
    }
  };
  if (stat.isDirectory) await walk(path);
  else files.push(path);
  if (files.length === 0) throw new Error(`${path}: no files found`);
  const parts = await Promise.all(files.map((f) => Deno.readFile(f)));
  const sep = new TextEncoder().encode("\n\n");
  const total = parts.reduce((s, p) => s + p.length, 0) + sep.length * (parts.length - 1);
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
 * offsets (inputs and next-byte targets). Seeded; `state()`/`restore()` make it resumable.
 */
export class ByteBatcher {
  private rng: Rng;
  constructor(readonly data: Uint8Array, readonly batch: number, readonly length: number, seed = 0) {
    if (data.length < length + 1) {
      throw new Error(`the training text has ${data.length} bytes, fewer than one window of ${length + 1}`);
    }
    this.rng = new Rng(seed);
  }

  /** (batch, length + 1) bytes as int32, row-major. */
  next(): Int32Array {
    const w = this.length + 1;
    const out = new Int32Array(this.batch * w);
    for (let i = 0; i < this.batch; i++) {
      const start = this.rng.int(this.data.length - w + 1);
      for (let j = 0; j < w; j++) out[i * w + j] = this.data[start + j];
    }
    return out;
  }

  state(): number[] {
    return this.rng.getState();
  }

  restore(state: readonly number[]): void {
    this.rng = Rng.fromState(state);
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
