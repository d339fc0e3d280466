/**
 * A plan's budget ladder and learning-rate sweep read back from runs.jsonl (the runs lib/runs/plan.ts
 * names): test bits-per-byte of each entry at each budget, with its spread over seeds, and each family's
 * sweep with the multiple its runs took. Figures (plot/figures/ladder.ts), the README and the planner
 * (pickSweptLr) read them from here.
 */
import { nearUnigram, unigramOf } from "./compute_matched.ts";
import type { RunRecord, UnigramRecord } from "./records.ts";

/** One entry at one budget: the mean over the seeds recorded, and their sample standard deviation. */
export interface LadderPoint {
  entry: string;
  label: string;
  model: string;
  /** The fraction of the scale's top budget (labels.budget). */
  budget: number;
  /** Mean training FLOPs of the seeds' runs. */
  flops: number;
  bits_per_byte: number;
  /** Sample standard deviation over seeds (undefined with one seed). */
  sd?: number;
  seeds: number;
  /** Any seed within UNIGRAM_MARGIN of its test bytes' unigram entropy (the sanity flag). */
  near_unigram: boolean;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
/** Sample standard deviation (n - 1), undefined below two values. */
export function sampleSd(xs: number[]): number | undefined {
  if (xs.length < 2) return undefined;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
}

/** The latest record of each run name (a re-run replaces an earlier one). */
function latest(records: RunRecord[]): RunRecord[] {
  return [...new Map(records.map((r) => [r.run, r])).values()];
}

/**
 * Each entry's points along the ladder on one domain, budgets ascending; only entries recorded at two
 * budgets or more (a curve). Sweep runs are left out; seeds (labels.seed) are pooled per budget.
 */
export function ladderPoints(
  records: RunRecord[],
  scale: string,
  domain: string,
  plan = "compute-matched",
  unigram: UnigramRecord[] = [],
): LadderPoint[][] {
  const runs = latest(records).filter((r) =>
    r.scale === scale && r.domain === domain && r.labels?.plan === plan && r.labels?.sweep === undefined &&
    typeof r.labels?.budget === "number"
  );
  // one record per seed (the latest): an import of the same run (another engine, a partial state) is not
  // another seed
  const groups = new Map<string, Map<number, RunRecord>>();
  for (const r of runs) {
    if (r.labels?.partial || String(r.engine ?? "").startsWith("torch")) continue;
    const key = `${r.labels!.entry}\u0000${r.labels!.budget}`;
    groups.set(key, (groups.get(key) ?? new Map()).set(r.seed, r));
  }
  const byEntry = new Map<string, LadderPoint[]>();
  for (const bySeed of groups.values()) {
    const rs = [...bySeed.values()], r0 = rs[0];
    const bpb = rs.map((r) => r.eval.bits_per_byte);
    const point: LadderPoint = {
      entry: String(r0.labels!.entry),
      label: String(r0.labels!.label ?? r0.labels!.entry),
      model: r0.model,
      budget: r0.labels!.budget as number,
      flops: mean(rs.map((r) => r.train_flops)),
      bits_per_byte: mean(bpb),
      sd: sampleSd(bpb),
      seeds: rs.length,
      near_unigram: rs.some((r) => nearUnigram(r.eval.bits_per_byte, unigramOf(r, unigram))),
    };
    byEntry.set(point.entry, [...(byEntry.get(point.entry) ?? []), point]);
  }
  return [...byEntry.values()].filter((ps) => ps.length >= 2).map((ps) =>
    ps.sort((a, b) => a.budget - b.budget)
  );
}

/** A family's sweep: validation bits-per-byte at each multiple tried, and the one its runs take. */
export interface SweepResult {
  family: string;
  tried: { multiple: number; lr: number; bits_per_byte: number; near_unigram: boolean }[];
  /** The multiple of lowest bits-per-byte (the smaller one on a tie). */
  best: number;
  /** The best is the smallest or the largest multiple tried: the optimum may lie outside the sweep. */
  edge: boolean;
}

/** The best multiple of a family's sweep runs (latest record per multiple), or undefined when none. */
export function bestMultiple(
  tried: { multiple: number; bits_per_byte: number }[],
): { best: number; edge: boolean } | undefined {
  if (!tried.length) return undefined;
  // a NaN or a null (JSON's NaN) score loses to every number
  const score = (x: number) => Number.isFinite(x) ? x : Infinity;
  const best =
    tried.map((t) => ({ multiple: t.multiple, bits_per_byte: score(t.bits_per_byte) })).reduce((a, b) =>
      b.bits_per_byte < a.bits_per_byte || (b.bits_per_byte === a.bits_per_byte && b.multiple < a.multiple)
        ? b
        : a
    ).multiple;
  const ms = tried.map((t) => t.multiple);
  return { best, edge: tried.length > 1 && (best === Math.min(...ms) || best === Math.max(...ms)) };
}

/** Every family's sweep recorded at a scale (labels.sweep), multiples ascending. */
export function sweepResults(records: RunRecord[], scale: string, plan = "compute-matched"): SweepResult[] {
  // the lab's own sweep runs (a torch import or a partial state of one is not another value tried)
  const runs = latest(records).filter((r) =>
    r.scale === scale && r.labels?.plan === plan && typeof r.labels?.sweep === "string" &&
    !r.labels?.partial && !String(r.engine ?? "").startsWith("torch")
  );
  const families = [...new Set(runs.map((r) => String(r.labels!.sweep)))];
  return families.map((family) => {
    const tried = runs.filter((r) => r.labels!.sweep === family).map((r) => ({
      multiple: r.labels!.lr_multiple as number,
      lr: r.lr ?? NaN,
      bits_per_byte: r.eval.bits_per_byte,
      near_unigram: nearUnigram(r.eval.bits_per_byte, unigramOf(r)),
    })).sort((a, b) => a.multiple - b.multiple);
    return { family, tried, ...bestMultiple(tried)! };
  });
}
