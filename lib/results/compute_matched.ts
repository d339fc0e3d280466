/**
 * The compute-matched experiment's table and figure, computed from data/results/runs.jsonl only:
 * test bits-per-byte per model and domain beside the paper's Table 1, and bits-per-byte against
 * training FLOPs (the paper's Figure 1 analogue).
 */
import * as aq from "arquero";
import { deviation, group, mean } from "d3-array";
import { PAPER_COMPUTE_MATCHED, PAPER_DOMAIN_OF } from "./paper.ts";

import type { RunRecord, UnigramRecord } from "./records.ts";
import { UNIGRAM_MARGIN } from "../data/unigram.ts";

/**
 * Whether a record is a plan's run at its top budget: not a learning-rate sweep's run (labels.sweep, scored
 * on the validation split) nor a lower rung of a budget ladder (labels.budget < 1; plan.ts). Tables compare
 * these; the FLOPs curves read the ladder.
 */
export function isTopBudget(r: { labels?: Record<string, unknown> }): boolean {
  return isBudget(r, 1);
}

/** A run's budget: its fraction of the scale's top budget (labels.budget; 1 where a plan has no ladder). */
export function budgetOf(r: { labels?: Record<string, unknown> }): number {
  return (r.labels?.budget as number | undefined) ?? 1;
}

/** A run of the plan at `budget`, not a learning-rate sweep's. */
export function isBudget(r: { labels?: Record<string, unknown> }, budget: number): boolean {
  return r.labels?.sweep === undefined && budgetOf(r) === budget;
}

/**
 * The latest record of each run at a scale (a re-run replaces an earlier one). Runs of extra seeds
 * (`labels.seed`, plan.ts) are left out unless `allSeeds`: tables show the plan's own seed, and the seed
 * spread is computed apart (compare.ts). Only the runs of one budget: the top one (isTopBudget) unless
 * `budget` names another fraction of it (labels.budget); never a learning-rate sweep's.
 */
export function latestRuns(
  records: RunRecord[],
  scale: string,
  plan = "compute-matched",
  allSeeds = false,
  budget = 1,
): RunRecord[] {
  const byRun = new Map<string, RunRecord>();
  for (const r of records) {
    if (r.scale !== scale || (r.labels?.plan ?? "") !== plan) continue;
    if (!isBudget(r, budget) || (!allSeeds && r.labels?.seed !== undefined)) continue;
    byRun.set(r.run, r); // records are in append order
  }
  return [...byRun.values()];
}

export interface MatchedRow {
  model: string;
  kind: string;
  domain: string;
  parameters: number;
  bytes_seen: number;
  train_flops: number;
  train_bytes_per_s: number;
  bits_per_byte: number;
  word_perplexity: number;
  eval_bytes: number;
  /** the scored bytes' unigram entropy, when known (the run's record, else data/results/unigram.jsonl) */
  unigram_bpb?: number;
}

/** The unigram entropy of the bytes a run scored: its record's, else the matching unigram record's. */
export function unigramOf(r: RunRecord, unigram: UnigramRecord[] = []): number | undefined {
  return r.eval.unigram_bpb ??
    unigram.find((u) =>
      u.scale === r.scale && u.domain === r.domain && u.split === r.eval.split && u.bytes === r.eval.bytes
    )?.unigram_bpb;
}

/** Whether a run's test bits per byte is within UNIGRAM_MARGIN of its bytes' unigram entropy. */
export function nearUnigram(bpb: number, unigram?: number): boolean {
  return unigram !== undefined && bpb > unigram - UNIGRAM_MARGIN;
}

export function matchedRows(runs: RunRecord[], unigram: UnigramRecord[] = []): MatchedRow[] {
  return runs.map((r) => ({
    unigram_bpb: unigramOf(r, unigram),
    model: String(r.labels?.label ?? r.model),
    kind: r.model,
    domain: r.domain,
    parameters: r.parameters,
    bytes_seen: r.bytes_seen,
    train_flops: r.train_flops,
    train_bytes_per_s: r.train_bytes_per_s,
    bits_per_byte: r.eval.bits_per_byte,
    word_perplexity: r.eval.word_perplexity,
    eval_bytes: r.eval.bytes,
  }));
}

/** The sanity check's sentence: the domains' unigram entropies and how many cells it flags. */
function unigramNote(rows: MatchedRow[], flagged: number, cells: number): string {
  const byDomain = new Map<string, number>();
  for (const r of rows) if (r.unigram_bpb !== undefined) byDomain.set(r.domain, r.unigram_bpb);
  if (!byDomain.size) return "";
  const values = [...byDomain].map(([d, u]) => `${d} ${u.toFixed(2)}`).join(", ");
  return ` † (${flagged} of ${cells}): within ${UNIGRAM_MARGIN} bit per byte of the test bytes' unigram ` +
    `entropy (${values}): that model has learned little beyond byte frequencies, and its comparison with ` +
    `the others says little.`;
}

const fmt = (x: number, d = 3) => (Number.isFinite(x) ? x.toFixed(d) : "—");
const si = (x: number) => {
  if (!Number.isFinite(x)) return "—";
  const units: [number, string][] = [[1e15, "P"], [1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "K"]];
  for (const [v, u] of units) if (Math.abs(x) >= v) return `${(x / v).toPrecision(3)}${u}`;
  return x.toPrecision(3);
};

/**
 * Wide table: one row per model, a bits-per-byte column per domain (ours, with the paper's value for
 * the matching paper domain beside it), parameters, bytes and FLOPs per run (the first domain's, as
 * every domain gets the same budget).
 */
export function computeMatchedTable(
  rows: MatchedRow[],
  scale: string,
): { columns: string[]; rows: string[][]; note: string } {
  if (!rows.length) {
    return { columns: ["model"], rows: [], note: `no compute-matched runs recorded at the ${scale} scale` };
  }
  const domains = [...new Set(rows.map((r) => r.domain))];
  // a model's runs on a domain: one per seed where extra seeds ran (rows of latestRuns(..., allSeeds))
  const cells = group(rows, (r: MatchedRow) => `${r.model}|${r.domain}`) as Map<string, MatchedRow[]>;
  const finite = (rs: MatchedRow[]) => rs.map((r) => r.bits_per_byte).filter(Number.isFinite);
  const avg = (xs: number[]) => mean(xs) ?? NaN;
  // each cell the mean over its seeds first, so that a domain with three seeds counts once in a model's
  // order and in its bytes, FLOPs and speed (the mean over domains), as the seedless domains do
  const perDomain = [...cells.values()].map((rs) => ({
    ...rs[0],
    parameters: Math.max(...rs.map((r) => r.parameters)),
    bytes_seen: avg(rs.map((r) => r.bytes_seen)),
    train_flops: avg(rs.map((r) => r.train_flops)),
    train_bytes_per_s: avg(rs.map((r) => r.train_bytes_per_s)),
    bits_per_byte: avg(finite(rs)),
  }));
  const t = aq.from(perDomain);
  const models = t.groupby("model").rollup({
    kind: aq.op.any("kind"),
    parameters: aq.op.max("parameters"),
    bytes_seen: aq.op.mean("bytes_seen"),
    train_flops: aq.op.mean("train_flops"),
    bytes_per_s: aq.op.mean("train_bytes_per_s"),
    mean_bpb: aq.op.mean("bits_per_byte"),
    domains: aq.op.count(),
  }).orderby(aq.desc("domains"), "mean_bpb").objects() as {
    model: string;
    kind: string;
    parameters: number;
    bytes_seen: number;
    train_flops: number;
    bytes_per_s: number;
  }[];
  const bpb = new Map(perDomain.map((r) => [`${r.model}|${r.domain}`, r.bits_per_byte]));
  const spread = (key: string) => {
    const v = finite(cells.get(key) ?? []);
    const sd = deviation(v); // sample s.d. (n - 1), undefined below two values
    return sd === undefined ? "" : ` ± ${fmt(sd)}, ${v.length} seeds`;
  };
  const uni = new Map(rows.map((r) => [`${r.model}|${r.domain}`, r.unigram_bpb]));
  const multiSeed = [...cells.values()].some((v) => finite(v).length > 1);
  let flagged = 0;
  const columns = [
    "model",
    "params",
    "bytes seen",
    "train FLOPs",
    "train bytes/s",
    ...domains.map((d) => `${d} bpb (paper ${PAPER_DOMAIN_OF[d] ?? "—"})`),
  ];
  const out: string[][] = models.map((m) => {
    const paper = PAPER_COMPUTE_MATCHED.find((p) => p.kind === m.kind);
    return [
      m.model,
      si(m.parameters),
      si(m.bytes_seen),
      si(m.train_flops),
      si(m.bytes_per_s),
      ...domains.map((d) => {
        const v = bpb.get(`${m.model}|${d}`) ?? NaN;
        const near = nearUnigram(v, uni.get(`${m.model}|${d}`));
        if (near) flagged++;
        const ours = fmt(v) + spread(`${m.model}|${d}`) + (near ? " †" : "");
        const pd = PAPER_DOMAIN_OF[d];
        return paper && pd ? `${ours} (${fmt(paper.bpb[pd])})` : ours;
      }),
    ];
  });
  const note =
    `Test bits-per-byte at the ${scale} scale (ours; lower is better), with the paper's Table 1 value in ` +
    `parentheses (MambaByte-353M, Transformer-320M, PerceiverAR-248M, MegaByte-758M+262M, trained on 30-80B bytes). ` +
    `Our models are ${si(Math.min(...models.map((m) => m.parameters)))}-${
      si(Math.max(...models.map((m) => m.parameters)))
    } ` +
    `parameters trained on ${si(Math.min(...models.map((m) => m.bytes_seen)))}-${
      si(Math.max(...models.map((m) => m.bytes_seen)))
    } bytes: ` +
    `compare the ordering of models, not the values. Rows in order of the mean over the domains a model ` +
    `ran, those on fewer domains (the plan's variants) after those on all. ` +
    `Bytes seen, train FLOPs and train bytes/s: the mean ` +
    `over a model's runs on these domains.` +
    (multiSeed ? " Where a model ran several seeds, its cell is their mean ± sample s.d." : "") +
    (scale === "gpu" || scale === "large"
      ? " Train bytes/s: mostly measured while several runs (one process each) shared the GPU, which understates one run alone; a mean over runs may mix the two (the logs say which: data/results/gpu-logs)."
      : "") +
    unigramNote(rows, flagged, cells.size);
  return { columns, rows: out, note };
}
