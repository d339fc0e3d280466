/**
 * Train / validation / test split BY DOCUMENT, never by byte offset inside a document.
 *
 * Units are documents, or groups of documents that must stay together (two translations of the Bible).
 * Units are visited in the order of a seeded hash of their key (stable when other documents come and go),
 * and a unit goes to `test` if it still fits in the test budget (fraction x domain bytes), else to
 * `validation` if it fits there, else to `train`. A unit bigger than a budget therefore always trains,
 * which keeps one huge document (the King James Bible) from becoming most of a test split. If a budget is
 * too small for any unit, the smallest unit that is not pinned is moved there, so each split of a domain
 * with at least three units is non-empty. Pins (document id -> split) place units first: they keep the
 * tracked sample's documents in the same split in the full corpus.
 */
import type { Split } from "./types.ts";

export interface SplitItem {
  id: string;
  bytes: number;
  group?: string;
}

export interface SplitOptions {
  seed: number;
  fractions: { validation: number; test: number };
  pins?: Record<string, Split>;
}

/** 32-bit FNV-1a of a string then a murmur finaliser: a cheap, platform-independent order. */
export function seededHash(seed: number, key: string): number {
  let h = 0x811c9dc5 ^ seed;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

interface Unit {
  key: string;
  ids: string[];
  bytes: number;
  pin?: Split;
}

/** The split of every document. */
export function assignSplits(items: SplitItem[], opts: SplitOptions): Map<string, Split> {
  const units = new Map<string, Unit>();
  for (const it of items) {
    const key = it.group ? `group:${it.group}` : `doc:${it.id}`;
    const u = units.get(key) ?? { key, ids: [], bytes: 0 };
    u.ids.push(it.id);
    u.bytes += it.bytes;
    const pin = opts.pins?.[it.id];
    if (pin) {
      if (u.pin && u.pin !== pin) {
        throw new Error(`split pins disagree inside group ${it.group}: ${u.pin} vs ${pin}`);
      }
      u.pin = pin;
    }
    units.set(key, u);
  }
  const total = items.reduce((s, it) => s + it.bytes, 0);
  const budget = { test: opts.fractions.test * total, validation: opts.fractions.validation * total };
  const used = { test: 0, validation: 0 };
  const where = new Map<Unit, Split>();

  const list = [...units.values()];
  for (const u of list) {
    if (!u.pin) continue;
    where.set(u, u.pin);
    if (u.pin !== "train") used[u.pin] += u.bytes;
  }
  const free = list.filter((u) => !u.pin).sort((a, b) =>
    seededHash(opts.seed, a.key) - seededHash(opts.seed, b.key) || (a.key < b.key ? -1 : 1)
  );
  for (const u of free) {
    let s: Split = "train";
    if (used.test + u.bytes <= budget.test) s = "test";
    else if (used.validation + u.bytes <= budget.validation) s = "validation";
    where.set(u, s);
    if (s !== "train") used[s] += u.bytes;
  }
  // Never leave an evaluation split empty when there is enough to go round.
  if (list.length >= 3) {
    for (const s of ["test", "validation"] as const) {
      if (opts.fractions[s] <= 0 || list.some((u) => where.get(u) === s)) continue;
      const candidates = free.filter((u) => where.get(u) === "train").sort((a, b) => a.bytes - b.bytes);
      if (candidates.length > 1) where.set(candidates[0], s);
    }
  }
  const out = new Map<string, Split>();
  for (const [u, s] of where) for (const id of u.ids) out.set(id, s);
  return out;
}
