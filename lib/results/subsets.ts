/**
 * How much a comparison of two models depends on which test documents were scored: the standard deviation
 * of their gap in bits per byte over bootstrap resamples of the documents (drawn with replacement, the
 * same draw for both models, each document weighted by its bytes), from the per-document scores a run
 * record keeps (`eval.documents`). A gap smaller than about twice this could flip on another test set of
 * the same size, however many seeds agree; the README's verdicts count a gap only beyond it.
 */
import { Rng } from "../util/rng.ts";
import type { RunRecord } from "./records.ts";
import { budgetOf } from "./compute_matched.ts";

/** Each document's bits per byte, averaged over `runs` (seeds), and its bytes; only documents all have. */
export function documentScores(runs: RunRecord[]): Map<string, { bytes: number; bits_per_byte: number }> {
  const out = new Map<string, { bytes: number; bits_per_byte: number }>();
  const lists = runs.map((r) => r.eval.documents);
  if (!lists.length || lists.some((l) => !l?.length)) return out;
  for (const d of lists[0]!) {
    const same = lists.map((l) => l!.find((x) => x.name === d.name));
    if (same.some((x) => x === undefined)) continue;
    out.set(d.name, {
      bytes: same.reduce((s, x) => s + x!.bytes, 0) / same.length,
      bits_per_byte: same.reduce((s, x) => s + x!.bits_per_byte, 0) / same.length,
    });
  }
  return out;
}

/**
 * The bootstrap standard deviation of bpb(b) - bpb(a) over resamples of the documents both were scored on
 * (`draws` resamples, seeded), or undefined below two shared documents (records older than per-document
 * scores have none).
 */
export function gapSubsetSd(a: RunRecord[], b: RunRecord[], draws = 4000, seed = 0): number | undefined {
  const da = documentScores(a), db = documentScores(b);
  const shared = [...da.keys()].filter((k) => db.has(k));
  if (shared.length < 2) return undefined;
  const bytes = shared.map((k) => (da.get(k)!.bytes + db.get(k)!.bytes) / 2);
  const gap = shared.map((k) => db.get(k)!.bits_per_byte - da.get(k)!.bits_per_byte);
  const rng = new Rng(seed);
  const xs = new Float64Array(draws);
  for (let t = 0; t < draws; t++) {
    let w = 0, g = 0;
    for (let i = 0; i < shared.length; i++) {
      const k = rng.int(shared.length);
      w += bytes[k];
      g += bytes[k] * gap[k];
    }
    xs[t] = g / w;
  }
  const m = xs.reduce((s, x) => s + x, 0) / draws;
  return Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / draws);
}

/** One row of `documentRows`: an entry's run and its bits per byte on each document (undefined: not scored). */
export interface DocumentRow {
  entry: string;
  label: string;
  /** The run's budget (labels.budget; 1 at the top). */
  budget: number;
  bits_per_byte: (number | undefined)[];
  whole: number;
}

/**
 * Each plan entry's per-document test scores on one domain at a scale: the run of its highest budget that
 * kept them (seed 0's, the latest record), with the documents' names and bytes, the best whole-split score
 * first. Sweeps, extra seeds and records older than per-document scores are left out.
 */
export function documentRows(
  runs: RunRecord[],
  scale: string,
  domain: string,
  plan = "compute-matched",
): { documents: { name: string; bytes: number }[]; rows: DocumentRow[] } {
  const latest = new Map<string, RunRecord>();
  for (const r of runs) {
    if (r.scale !== scale || r.domain !== domain || (r.labels?.plan ?? "") !== plan) continue;
    if (r.labels?.sweep !== undefined || r.labels?.seed !== undefined || !r.eval.documents?.length) continue;
    if (r.eval.split !== "test") continue;
    latest.set(r.run, r);
  }
  const best = new Map<string, RunRecord>();
  for (const r of latest.values()) {
    const entry = String(r.labels?.entry ?? r.model);
    const had = best.get(entry);
    if (!had || budgetOf(r) > budgetOf(had)) best.set(entry, r);
  }
  const documents: { name: string; bytes: number }[] = [];
  for (const r of best.values()) {
    for (const d of r.eval.documents!) {
      if (!documents.some((x) => x.name === d.name)) documents.push({ name: d.name, bytes: d.bytes });
    }
  }
  documents.sort((a, b) => a.name.localeCompare(b.name));
  const rows = [...best.entries()].map(([entry, r]) => ({
    entry,
    label: String(r.labels?.label ?? entry),
    budget: budgetOf(r),
    bits_per_byte: documents.map((d) => r.eval.documents!.find((x) => x.name === d.name)?.bits_per_byte),
    whole: r.eval.bits_per_byte,
  })).sort((a, b) => a.whole - b.whole);
  return { documents, rows };
}
