/**
 * A reproduction against the published records: each run's test bits per byte beside the published one,
 * and whether the difference exceeds the seed noise. The seed noise of a plan entry is the standard
 * deviation of its published test bits per byte over the seeds recorded for it (the plan's own seed and
 * any `_seedN` runs, plan.ts); an entry with fewer than two seeds recorded has no measured noise, and the
 * comparison says so instead of guessing.
 */
import { deviation, mean } from "d3-array";
import { latestRuns } from "./compute_matched.ts";
import type { RunRecord } from "./records.ts";
import type { MarkdownTable } from "./tables.ts";

/** The run name without a seed suffix: the plan entry on a domain that several seeds share. */
export function entryOf(run: string): string {
  return run.replace(/_seed\d+$/, "");
}

export interface ComparedRun {
  run: string;
  label: string;
  domain: string;
  local: number;
  published?: number;
  delta?: number;
  /** Standard deviation over the published seeds of this entry, and how many there are. */
  seedSd?: number;
  seeds: number;
  verdict: "within seed noise" | "differs" | "no seed spread" | "not published";
}

/** Differences beyond this many seed standard deviations are reported as differing. */
export const NOISE_MULTIPLE = 2;

/** Compares every local run of `scale` with the published record of the same run. */
export function compareWithPublished(
  local: RunRecord[],
  published: RunRecord[],
  scale: string,
  plan = "compute-matched",
): ComparedRun[] {
  const mine = latestRuns(local, scale, plan, true);
  const theirs = latestRuns(published, scale, plan, true);
  const byRun = new Map(theirs.map((r) => [r.run, r]));
  return mine.map((r) => {
    const pub = byRun.get(r.run);
    const seeds = theirs.filter((p) => entryOf(p.run) === entryOf(r.run)).map((p) => p.eval.bits_per_byte);
    const sd = seeds.length >= 2 ? deviation(seeds) : undefined;
    const base = {
      run: r.run,
      label: String(r.labels?.label ?? r.model),
      domain: r.domain,
      local: r.eval.bits_per_byte,
      seeds: seeds.length,
      seedSd: sd,
    };
    if (!pub) return { ...base, verdict: "not published" as const };
    const delta = r.eval.bits_per_byte - pub.eval.bits_per_byte;
    const verdict = sd === undefined
      ? "no seed spread" as const
      : Math.abs(delta) <= NOISE_MULTIPLE * sd
      ? "within seed noise" as const
      : "differs" as const;
    return { ...base, published: pub.eval.bits_per_byte, delta, verdict };
  });
}

/** The comparison as a table, with a note that counts the verdicts. */
export function comparisonTable(rows: ComparedRun[], scale: string, publishedDir: string): MarkdownTable {
  const f = (x: number | undefined, d = 4) => (x === undefined || !Number.isFinite(x) ? "—" : x.toFixed(d));
  const signed = (
    x: number | undefined,
  ) => (x === undefined ? "—" : `${x >= 0 ? "+" : "−"}${Math.abs(x).toFixed(4)}`);
  const count = (v: ComparedRun["verdict"]) => rows.filter((r) => r.verdict === v).length;
  const meanSd = mean(rows.map((r) => r.seedSd).filter((x): x is number => x !== undefined));
  return {
    columns: [
      "model",
      "domain",
      "this run (bpb)",
      "published (bpb)",
      "difference",
      "seed s.d. (seeds)",
      "verdict",
    ],
    rows: rows.map((r) => [
      r.label,
      r.domain,
      f(r.local),
      f(r.published),
      signed(r.delta),
      r.seedSd === undefined ? `— (${r.seeds})` : `${f(r.seedSd)} (${r.seeds})`,
      r.verdict,
    ]),
    note:
      `${scale} scale, test bits per byte: this reproduction against the published records (${publishedDir}). ` +
      `"differs": the difference exceeds ${NOISE_MULTIPLE}x the standard deviation over the published seeds of ` +
      `that run. ${count("within seed noise")} within seed noise, ${count("differs")} differ, ` +
      `${count("no seed spread")} without a published seed spread (fewer than two seeds recorded), ` +
      `${count("not published")} not published.` +
      (meanSd === undefined ? "" : ` Mean seed standard deviation: ${meanSd.toFixed(4)} bits per byte.`),
  };
}
