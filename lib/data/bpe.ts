/**
 * A byte-level BPE subword tokenizer (GPT-2 style), for the subword baselines and the speculative drafter.
 *
 * - Base vocabulary: the 256 byte values (ids 0-255), so EVERY byte sequence, including invalid UTF-8,
 *   encodes, and decode(encode(x)) === x exactly. Merged tokens are ids 256.. in merge order; `tokenBytes`
 *   gives the exact bytes of every id (never go through decoded strings: a token may be half a character).
 * - Pre-split: GPT-2's pattern  's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *   applied to bytes: UTF-8 sequences are decoded to classify characters, and each byte that is not part of
 *   a valid UTF-8 character counts as one "other" character. On valid UTF-8 the pieces are those of the
 *   pattern run by JavaScript's Unicode regular expressions (tests/data_test.ts compares them), i.e. GPT-2's
 *   split up to the Unicode tables behind \p{L}, \p{N} and \s. Merges never cross piece boundaries. One
 *   difference from GPT-2: a piece longer than MAX_PIECE_BYTES bytes (a run of 1,000 "=", a base64 blob,
 *   a long indentation run) is cut into pieces of that length, which bounds the quadratic cost of applying
 *   merges to a piece; prose and code rarely have pieces that long.
 * - Training: count the pieces of the training text (evenly spaced slices of `maxTrainBytes` in all when the
 *   text is longer), then repeatedly merge the most frequent adjacent pair (ties: the smaller pair id), with
 *   incremental pair counts and a lazy max-heap. Stops early when no pair occurs `minFrequency` times.
 * - Saved as JSON: the merge list is the whole model.
 */

import { charLength, codePointAt } from "./utf8.ts";

export const MAX_PIECE_BYTES = 256;
export const BPE_FORMAT = "mambabyte-byte-bpe";

// ---------------------------------------------------------------------------------------------------------
// GPT-2 pre-split on bytes

const L = 1, N = 2, S = 3, O = 4;

const ASCII_CLASS = new Uint8Array(128).map((_, c) => {
  if ((c >= 65 && c <= 90) || (c >= 97 && c <= 122)) return L;
  if (c >= 48 && c <= 57) return N;
  if (c === 32 || (c >= 9 && c <= 13)) return S;
  return O;
});

const classCache = new Map<number, number>();
function classOfCodePoint(cp: number): number {
  if (cp < 128) return ASCII_CLASS[cp];
  let c = classCache.get(cp);
  if (c === undefined) {
    const ch = String.fromCodePoint(cp);
    c = /\p{L}/u.test(ch) ? L : /\p{N}/u.test(ch) ? N : /\s/u.test(ch) ? S : O;
    classCache.set(cp, c);
  }
  return c;
}

/** Length in bytes of the character at i and its class (a byte outside valid UTF-8 is one "other"). */
function charAt(b: Uint8Array, i: number): [number, number] {
  const x = b[i];
  if (x < 0x80) return [1, ASCII_CLASS[x]];
  const len = charLength(b, i);
  return len === 1 ? [1, O] : [len, classOfCodePoint(codePointAt(b, i, len))];
}

/** End of the run of characters of class `cls` starting at i. */
function runEnd(b: Uint8Array, i: number, cls: number): number {
  while (i < b.length) {
    const [len, c] = charAt(b, i);
    if (c !== cls) break;
    i += len;
  }
  return i;
}

/**
 * Calls `piece(start, end)` for each pre-split piece of `b`, in order; the pieces tile `b` exactly.
 */
export function preSplit(b: Uint8Array, piece: (start: number, end: number) => void): void {
  const emit = (s: number, e: number) => {
    for (; e - s > MAX_PIECE_BYTES; s += MAX_PIECE_BYTES) piece(s, s + MAX_PIECE_BYTES);
    piece(s, e);
  };
  const n = b.length;
  let i = 0;
  while (i < n) {
    const x = b[i];
    // 's 't 'm 'd 're 've 'll (GPT-2's contractions are lower-case ASCII only)
    if (x === 0x27 && i + 1 < n) {
      const y = b[i + 1], z = i + 2 < n ? b[i + 2] : -1;
      if (y === 0x73 || y === 0x74 || y === 0x6d || y === 0x64) {
        emit(i, i + 2);
        i += 2;
        continue;
      }
      if ((y === 0x72 && z === 0x65) || (y === 0x76 && z === 0x65) || (y === 0x6c && z === 0x6c)) {
        emit(i, i + 3);
        i += 3;
        continue;
      }
    }
    const [len, cls] = charAt(b, i);
    if (cls !== S) {
      // \p{L}+ | \p{N}+ | [^\s\p{L}\p{N}]+
      const e = runEnd(b, i + len, cls);
      emit(i, e);
      i = e;
      continue;
    }
    if (x === 0x20 && i + 1 < n) {
      // " ?X+": a single space joins the run that follows it
      const [, next] = charAt(b, i + 1);
      if (next !== S) {
        const e = runEnd(b, i + 1, next);
        emit(i, e);
        i = e;
        continue;
      }
    }
    // \s+(?!\S) | \s+ : a whitespace run, leaving its last character to the word that follows
    let e = i, last = i;
    while (e < n) {
      const [l, c] = charAt(b, e);
      if (c !== S) break;
      last = e;
      e += l;
    }
    const end = e < n && last > i ? last : e;
    emit(i, end);
    i = end;
  }
}

// ---------------------------------------------------------------------------------------------------------
// The tokenizer

/** Pair key: both ids fit in 16 bits for vocabularies up to 65,536. */
const pairKey = (a: number, b: number) => a * 65536 + b;

function latin1Key(b: Uint8Array, s: number, e: number): string {
  return String.fromCharCode.apply(null, b.subarray(s, e) as unknown as number[]);
}

export interface BpeJson {
  format: typeof BPE_FORMAT;
  version: 1;
  vocab_size: number;
  pretokenizer: "gpt2-bytes";
  max_piece_bytes: number;
  /** merges[i] = [left id, right id] makes token 256 + i. */
  merges: [number, number][];
  /** What it was trained on (free-form provenance). */
  trained_on?: Record<string, unknown>;
}

export class ByteBPE {
  /** Exact bytes of every token id. */
  readonly tokens: Uint8Array[];
  private ranks = new Map<number, number>();
  private cache = new Map<string, Int32Array>();

  constructor(readonly merges: readonly [number, number][], readonly trainedOn?: Record<string, unknown>) {
    this.tokens = Array.from({ length: 256 }, (_, i) => Uint8Array.of(i));
    merges.forEach(([a, b], i) => {
      const id = 256 + i;
      if (!(a >= 0 && a < id && b >= 0 && b < id)) {
        throw new Error(`BPE merge ${i}: [${a}, ${b}] refers to an unknown token`);
      }
      const t = new Uint8Array(this.tokens[a].length + this.tokens[b].length);
      t.set(this.tokens[a]);
      t.set(this.tokens[b], this.tokens[a].length);
      this.tokens.push(t);
      this.ranks.set(pairKey(a, b), i);
    });
    if (this.tokens.length > 65536) throw new Error("BPE vocabularies above 65,536 tokens are not supported");
  }

  get vocabSize(): number {
    return this.tokens.length;
  }

  /** The bytes of token `id`. */
  tokenBytes(id: number): Uint8Array {
    const t = this.tokens[id];
    if (!t) throw new Error(`token id ${id} is outside the vocabulary (0..${this.tokens.length - 1})`);
    return t;
  }

  /** Applies the merges to one piece (lowest rank first, all its occurrences at once, like GPT-2). */
  private encodePiece(b: Uint8Array, s: number, e: number): Int32Array {
    const sym: number[] = Array.from(b.subarray(s, e));
    while (sym.length > 1) {
      let best = Infinity, bestPair = -1;
      for (let k = 0; k + 1 < sym.length; k++) {
        const r = this.ranks.get(pairKey(sym[k], sym[k + 1]));
        if (r !== undefined && r < best) {
          best = r;
          bestPair = pairKey(sym[k], sym[k + 1]);
        }
      }
      if (bestPair < 0) break;
      const a = Math.floor(bestPair / 65536), c = bestPair % 65536, z = 256 + best;
      let w = 0;
      for (let k = 0; k < sym.length; k++) {
        if (k + 1 < sym.length && sym[k] === a && sym[k + 1] === c) {
          sym[w++] = z;
          k++;
        } else sym[w++] = sym[k];
      }
      sym.length = w;
    }
    return Int32Array.from(sym);
  }

  /** Token ids of any byte sequence. */
  encode(bytes: Uint8Array): Int32Array {
    let out = new Int32Array(Math.max(16, bytes.length >> 1));
    let n = 0;
    preSplit(bytes, (s, e) => {
      const key = latin1Key(bytes, s, e);
      let ids = this.cache.get(key);
      if (!ids) {
        ids = this.encodePiece(bytes, s, e);
        if (this.cache.size > 200_000) this.cache.clear(); // bounded memory on long, diverse inputs
        this.cache.set(key, ids);
      }
      if (n + ids.length > out.length) {
        const grown = new Int32Array(Math.max(out.length * 2, n + ids.length));
        grown.set(out.subarray(0, n));
        out = grown;
      }
      out.set(ids, n);
      n += ids.length;
    });
    return out.slice(0, n);
  }

  /** The bytes of a token sequence (exact inverse of `encode`). */
  decode(ids: ArrayLike<number>): Uint8Array {
    let total = 0;
    for (let i = 0; i < ids.length; i++) total += this.tokenBytes(ids[i]).length;
    const out = new Uint8Array(total);
    let at = 0;
    for (let i = 0; i < ids.length; i++) {
      const t = this.tokens[ids[i]];
      out.set(t, at);
      at += t.length;
    }
    return out;
  }

  /** Mean bytes per token of a text (higher = better compression). */
  bytesPerToken(bytes: Uint8Array): number {
    return bytes.length / Math.max(1, this.encode(bytes).length);
  }

  toJSON(): BpeJson {
    return {
      format: BPE_FORMAT,
      version: 1,
      vocab_size: this.vocabSize,
      pretokenizer: "gpt2-bytes",
      max_piece_bytes: MAX_PIECE_BYTES,
      merges: this.merges.map(([a, b]) => [a, b]),
      ...(this.trainedOn ? { trained_on: this.trainedOn } : {}),
    };
  }

  static fromJSON(j: BpeJson, where = "<json>"): ByteBPE {
    if (j?.format !== BPE_FORMAT || j.version !== 1) {
      throw new Error(`${where}: not a ${BPE_FORMAT} version 1 tokenizer`);
    }
    if (j.pretokenizer !== "gpt2-bytes" || j.max_piece_bytes !== MAX_PIECE_BYTES) {
      throw new Error(`${where}: pre-tokenizer ${j.pretokenizer}/${j.max_piece_bytes} is not supported`);
    }
    const bpe = new ByteBPE(j.merges, j.trained_on);
    if (bpe.vocabSize !== j.vocab_size) {
      throw new Error(`${where}: vocab_size ${j.vocab_size} but ${bpe.vocabSize} tokens`);
    }
    return bpe;
  }

  async save(path: string): Promise<void> {
    await Deno.writeTextFile(path, JSON.stringify(this.toJSON()) + "\n");
  }

  static async load(path: string): Promise<ByteBPE> {
    return ByteBPE.fromJSON(JSON.parse(await Deno.readTextFile(path)), path);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Training

export interface TrainBpeOptions {
  /** Final vocabulary size including the 256 bytes (at most 65,536). */
  vocabSize: number;
  /** Train on at most this many bytes: evenly spaced 64 KiB slices of the text (default 16 MiB). */
  maxTrainBytes?: number;
  /** Stop when the best pair occurs fewer times (default 2). */
  minFrequency?: number;
  /** Called every 256 merges. */
  onProgress?: (merges: number, total: number) => void;
  /** Stored in the JSON as provenance. */
  trainedOn?: Record<string, unknown>;
}

/**
 * Evenly spaced slices of `slice` bytes, `max` bytes in all (deterministic), over one text or over several
 * documents taken end to end; a slice that reaches the end of a document goes on in the next one, as a
 * separate part (pieces, and so merges, never join two documents). Everything when the text is no longer
 * than `max`.
 */
export function subsample(data: Uint8Array | Uint8Array[], max: number, slice = 65536): Uint8Array[] {
  const docs = Array.isArray(data) ? data : [data];
  const total = docs.reduce((n, d) => n + d.length, 0);
  if (total <= max) return docs;
  const count = Math.max(1, Math.floor(max / slice));
  // The first slice starts at 0 and the last ends at the end of the text; total > count * slice, so the
  // stride exceeds the slice length and slices never overlap.
  const stride = (total - slice) / Math.max(1, count - 1);
  const out: Uint8Array[] = [];
  let doc = 0, docStart = 0; // the document holding the current offset, and where it starts in the whole
  for (let k = 0; k < count; k++) {
    let at = Math.round(k * stride), need = Math.min(slice, total - at);
    while (need > 0) {
      while (at >= docStart + docs[doc].length) docStart += docs[doc++].length;
      const s = at - docStart, e = Math.min(docs[doc].length, s + need);
      out.push(docs[doc].subarray(s, e));
      need -= e - s;
      at += e - s;
    }
  }
  return out;
}

/** Max-heap of (count, pair) with lazy deletion; ties go to the smaller pair key. */
class PairHeap {
  private c: number[] = [];
  private k: number[] = [];
  get size() {
    return this.c.length;
  }
  private above(i: number, j: number) {
    return this.c[i] > this.c[j] || (this.c[i] === this.c[j] && this.k[i] < this.k[j]);
  }
  private swap(i: number, j: number) {
    [this.c[i], this.c[j]] = [this.c[j], this.c[i]];
    [this.k[i], this.k[j]] = [this.k[j], this.k[i]];
  }
  push(count: number, key: number) {
    this.c.push(count);
    this.k.push(key);
    let i = this.c.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.above(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }
  peek(): [number, number] {
    return [this.c[0], this.k[0]];
  }
  pop() {
    const last = this.c.length - 1;
    this.swap(0, last);
    this.c.pop();
    this.k.pop();
    let i = 0;
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < this.c.length && this.above(l, m)) m = l;
      if (r < this.c.length && this.above(r, m)) m = r;
      if (m === i) break;
      this.swap(i, m);
      i = m;
    }
  }
}

/** Trains a byte-level BPE on `data` (one text, or several documents). */
export function trainBpe(data: Uint8Array | Uint8Array[], opts: TrainBpeOptions): ByteBPE {
  const target = opts.vocabSize;
  if (!(target >= 256 && target <= 65536)) throw new Error(`vocabSize must be in 256..65536 (got ${target})`);
  const minFreq = opts.minFrequency ?? 2;
  const parts = subsample(data, opts.maxTrainBytes ?? 16 * 1024 * 1024);
  const total = Array.isArray(data) ? data.reduce((s, d) => s + d.length, 0) : data.length;

  // 1. Piece counts.
  const counts = new Map<string, number>();
  for (const p of parts) {
    preSplit(p, (s, e) => {
      const key = latin1Key(p, s, e);
      counts.set(key, (counts.get(key) ?? 0) + 1);
    });
  }
  const words: Int32Array[] = [];
  const freq: number[] = [];
  for (const [key, f] of counts) {
    if (key.length < 2) continue; // single bytes never merge
    const w = new Int32Array(key.length);
    for (let i = 0; i < key.length; i++) w[i] = key.charCodeAt(i);
    words.push(w);
    freq.push(f);
  }
  counts.clear();

  // 2. Pair counts and where each pair occurs.
  const pairCount = new Map<number, number>();
  const where = new Map<number, number[]>();
  words.forEach((w, wi) => {
    for (let k = 0; k + 1 < w.length; k++) {
      const p = pairKey(w[k], w[k + 1]);
      pairCount.set(p, (pairCount.get(p) ?? 0) + freq[wi]);
      const list = where.get(p);
      if (!list) where.set(p, [wi]);
      else if (list[list.length - 1] !== wi) list.push(wi);
    }
  });
  const heap = new PairHeap();
  for (const [p, c] of pairCount) heap.push(c, p);

  // 3. Merges.
  const merges: [number, number][] = [];
  const seen = new Int32Array(words.length).fill(-1);
  const wanted = target - 256;
  while (merges.length < wanted && heap.size) {
    const [c, p] = heap.peek();
    if (pairCount.get(p) !== c) {
      heap.pop(); // stale entry
      continue;
    }
    if (c < minFreq) break;
    heap.pop();
    const a = Math.floor(p / 65536), b = p % 65536, z = 256 + merges.length;
    merges.push([a, b]);
    const changed = new Set<number>();
    const add = (q: number, delta: number) => {
      const v = (pairCount.get(q) ?? 0) + delta;
      if (v > 0) pairCount.set(q, v);
      else pairCount.delete(q);
      changed.add(q);
    };
    const iter = merges.length;
    for (const wi of where.get(p) ?? []) {
      if (seen[wi] === iter) continue;
      seen[wi] = iter;
      const w = words[wi];
      let has = false;
      for (let k = 0; k + 1 < w.length; k++) if (w[k] === a && w[k + 1] === b) has = true;
      if (!has) continue; // the pair left this word in an earlier merge
      const f = freq[wi];
      for (let k = 0; k + 1 < w.length; k++) add(pairKey(w[k], w[k + 1]), -f);
      const nw: number[] = [];
      for (let k = 0; k < w.length; k++) {
        if (k + 1 < w.length && w[k] === a && w[k + 1] === b) {
          nw.push(z);
          k++;
        } else nw.push(w[k]);
      }
      const merged = Int32Array.from(nw);
      words[wi] = merged;
      for (let k = 0; k + 1 < merged.length; k++) {
        const q = pairKey(merged[k], merged[k + 1]);
        add(q, f);
        if (merged[k] === z || merged[k + 1] === z) {
          const list = where.get(q);
          if (!list) where.set(q, [wi]);
          else if (list[list.length - 1] !== wi) list.push(wi);
        }
      }
    }
    where.delete(p);
    for (const q of changed) {
      const v = pairCount.get(q);
      if (v !== undefined) heap.push(v, q);
    }
    if (opts.onProgress && merges.length % 256 === 0) opts.onProgress(merges.length, wanted);
  }
  return new ByteBPE(merges, {
    bytes: total,
    sampled_bytes: parts.reduce((s, d) => s + d.length, 0),
    ...opts.trainedOn,
  });
}
