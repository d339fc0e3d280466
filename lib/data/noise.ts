/**
 * The six synthetic noise transforms of the paper's robustness experiment (PAPER.md, result 4), on bytes.
 *
 * Unit: a CHARACTER = one UTF-8 encoded code point (1-4 bytes); a byte that is not part of a valid UTF-8
 * character counts as a character of its own. Working on characters, not bytes, means that noise never
 * splits a multi-byte character, so valid UTF-8 stays valid UTF-8 (and the subword baseline sees the same
 * kind of corruption a reader would). Case changes apply to ASCII letters only (a-z, A-Z): every other
 * character keeps its bytes, so case changes never change the length.
 *
 * Each transform takes a probability `p` and a `seed`; the same (input, p, seed) always gives the same
 * output, and p = 0 returns the input unchanged. Whether a character is hit is one uniform draw per
 * character (swap: per position it visits) from the project's seeded PRNG; random_case draws once more
 * for the case of a hit character.
 *
 * | kind        | what it does                                                                          |
 * |-------------|---------------------------------------------------------------------------------------|
 * | drop        | each character is deleted with probability p                                          |
 * | repeat      | each character is written twice with probability p                                    |
 * | antspeak    | each character, with probability p, is upper-cased and followed by a space (no space  |
 * |             | after the last character); p = 1 (the paper's setting) gives "T H E   C A T"          |
 * | uppercase   | each character is upper-cased with probability p                                      |
 * | random_case | each character, with probability p, gets a random case: upper or lower with 1/2 each  |
 * |             | (so about half of the chosen letters actually change); p = 1 is the paper's setting    |
 * | swap        | left to right, each character is swapped with the next one with probability p; a     |
 * |             | swapped pair is then skipped, so a character moves at most one place                   |
 *
 * PAPER.md (result 4) gives the paper's definitions, marked unconfirmed: "drop = delete each character with
 * prob p; repeat = repeat a character (prob p); antspeak = upper-case everything and put a space between
 * characters; uppercase = upper-case each character with prob p; random case = each character's case random;
 * swap = swap adjacent characters with prob p", with p = 0.05 and 0.3 for drop, repeat, uppercase and swap,
 * and no p for antspeak and random case (here p = 1). Where the paper is silent this module chooses: a
 * repeated character appears twice (one extra copy); antspeak's spaces go between ALL characters, spaces
 * included ("E" + " " + " " + " " + "C" in the example above); swaps are of disjoint pairs.
 */
import { Rng } from "../util/rng.ts";
import { charLength } from "./utf8.ts";

export const NOISE_KINDS = ["drop", "repeat", "antspeak", "uppercase", "random_case", "swap"] as const;
export type NoiseKind = typeof NOISE_KINDS[number];

/** One-line definitions, for tables in notebooks and records. */
export const NOISE_DEFINITIONS: Record<NoiseKind, string> = {
  drop: "each character deleted with probability p",
  repeat: "each character written twice with probability p",
  antspeak: "each character (p = 1: all) upper-cased and followed by a space, none after the last",
  uppercase: "each character upper-cased with probability p (ASCII letters)",
  random_case:
    "each character (p = 1: all) given a random case, upper or lower with 1/2 each (ASCII letters)",
  swap: "each character swapped with the next with probability p (a swapped pair is skipped)",
};

/** The p the paper uses for transforms it lists without a probability. */
export const NOISE_DEFAULT_P: Record<NoiseKind, number> = {
  drop: 0.05,
  repeat: 0.05,
  antspeak: 1,
  uppercase: 0.05,
  random_case: 1,
  swap: 0.05,
};

/** Start offsets of the characters of `b`, plus b.length at the end. */
export function charBoundaries(b: Uint8Array): Int32Array {
  const out = new Int32Array(b.length + 1);
  let n = 0;
  for (let i = 0; i < b.length; i += charLength(b, i)) out[n++] = i;
  out[n++] = b.length;
  return out.subarray(0, n);
}

const upper = (x: number) => (x >= 97 && x <= 122 ? x - 32 : x);
const lower = (x: number) => (x >= 65 && x <= 90 ? x + 32 : x);

/** Applies one noise transform (see the module comment). */
export function addNoise(bytes: Uint8Array, kind: NoiseKind, p: number, seed: number): Uint8Array {
  if (!(p >= 0 && p <= 1)) throw new Error(`noise probability must be in [0, 1] (got ${p})`);
  if (!NOISE_KINDS.includes(kind)) {
    throw new Error(`unknown noise kind ${kind} (one of ${NOISE_KINDS.join(", ")})`);
  }
  if (p === 0) return bytes.slice();
  const rng = new Rng(seed);
  const cb = charBoundaries(bytes);
  const chars = cb.length - 1;
  const out = new Uint8Array(bytes.length * 2 + 1);
  let n = 0;
  const put = (s: number, e: number, map?: (x: number) => number) => {
    for (let i = s; i < e; i++) out[n++] = map ? map(bytes[i]) : bytes[i];
  };
  for (let c = 0; c < chars; c++) {
    const s = cb[c], e = cb[c + 1];
    const hit = rng.uniform() < p;
    switch (kind) {
      case "drop":
        if (!hit) put(s, e);
        break;
      case "repeat":
        put(s, e);
        if (hit) put(s, e);
        break;
      case "antspeak":
        if (hit) {
          put(s, e, upper);
          if (c + 1 < chars) out[n++] = 32;
        } else put(s, e);
        break;
      case "uppercase":
        put(s, e, hit ? upper : undefined);
        break;
      case "random_case":
        if (hit) put(s, e, rng.uniform() < 0.5 ? upper : lower);
        else put(s, e);
        break;
      case "swap":
        if (hit && c + 1 < chars) {
          put(cb[c + 1], cb[c + 2]);
          put(s, e);
          c++;
        } else put(s, e);
        break;
    }
  }
  return out.slice(0, n);
}

/** addNoise on text, for examples. */
export function addNoiseText(text: string, kind: NoiseKind, p: number, seed: number): string {
  return new TextDecoder().decode(addNoise(new TextEncoder().encode(text), kind, p, seed));
}

/**
 * Levenshtein distance between two byte strings (insertions, deletions and substitutions of one byte),
 * to measure how much a transform corrupts a text. O(a.length * b.length): meant for excerpts.
 */
export function editDistance(a: Uint8Array, b: Uint8Array): number {
  let prev = Int32Array.from({ length: b.length + 1 }, (_, j) => j);
  let cur = new Int32Array(b.length + 1);
  for (let i = 1; i <= a.length; i++) {
    cur[0] = i;
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    [prev, cur] = [cur, prev];
  }
  return prev[b.length];
}
