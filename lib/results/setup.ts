/**
 * What each run of a scale was trained with, per plan entry (parameters, steps, warm-up, learning rate,
 * seeds, bytes, FLOPs), and the paper's MambaByte-353M setup beside this scale's MambaByte: the README's
 * "how these numbers were made" tables, read from runs.jsonl.
 */
import { latestRuns } from "./compute_matched.ts";
import type { RunRecord } from "./records.ts";
import type { MarkdownTable } from "./tables.ts";

/** The optimizer facts the trainer uses (lib/train/adamw.ts; passed in: results/ sits below train/). */
export interface OptimizerFacts {
  beta1: number;
  beta2: number;
  clipNorm: number;
  minLrRatio: number;
}

const si = (x: number) => x.toExponential(2).replace("e+", "e");
/** "a" when every value is a, else "a-b" (min-max). */
function span(xs: number[], f: (x: number) => string = String): string {
  const lo = Math.min(...xs), hi = Math.max(...xs);
  return lo === hi ? f(lo) : `${f(lo)}-${f(hi)}`;
}

/** Per plan entry at a scale (top budget; every seed and domain): the settings its runs trained with. */
export function setupTable(runs: RunRecord[], scale: string): MarkdownTable {
  const all = latestRuns(runs, scale, "compute-matched", true);
  const entries = [...new Set(all.map((r) => String(r.labels?.entry ?? r.model)))];
  return {
    columns: [
      "entry",
      "parameters",
      "runs",
      "seeds",
      "steps",
      "warm-up",
      "learning rate",
      "batch x length",
      "bytes seen",
      "training FLOPs",
    ],
    rows: entries.map((e) => {
      const rs = all.filter((r) => String(r.labels?.entry ?? r.model) === e);
      const lrs = rs.map((r) => r.lr).filter((x) => x !== undefined) as number[];
      const warm = rs.map((r) => r.warmup).filter((x) => x !== undefined) as number[];
      return [
        String(rs[0].labels?.label ?? e),
        span(rs.map((r) => r.parameters), (x) => x.toLocaleString("en")),
        String(rs.length),
        String(new Set(rs.map((r) => r.seed)).size),
        span(rs.map((r) => r.steps)),
        warm.length ? span(warm) : "(not recorded)",
        lrs.length ? span(lrs) : "(not recorded)",
        [...new Set(rs.map((r) => `${r.batch} x ${r.length}`))].join(", "),
        span(rs.map((r) => r.bytes_seen), si),
        span(rs.map((r) => r.train_flops), si),
      ];
    }),
    note:
      `Scale ${scale}, top-budget runs of every domain and seed (ranges where runs differ). Runs older than the budget ladder did not record their learning rate and warm-up.`,
  };
}

/** The paper's MambaByte-353M recipe (docs: PAPER.md, "one source" where marked there). */
const PAPER = {
  parameters: "353M (d 1024 x 53 layers)",
  bytes: "30B (PG19)",
  context: "8,192 bytes",
  batch: "48 x 8,192 bytes",
  steps: "80K",
  schedule: "AdamW (0.9, 0.95), peak lr 4e-4, 500 warm-up steps, cosine",
  clip: "0.1",
  precision: "bf16 compute, fp32 parameters",
  seeds: "1 (not reported)",
};

/** The paper's MambaByte-353M setup beside this scale's MambaByte entry (its runs' records). */
export function paperSetupTable(
  runs: RunRecord[],
  scale: string,
  optimizer: OptimizerFacts,
): MarkdownTable | undefined {
  const rs = latestRuns(runs, scale, "compute-matched", true).filter((r) =>
    (r.labels?.entry ?? r.model) === "mambabyte"
  );
  if (!rs.length) return undefined;
  const r = rs[0], c = r.config as { d_model?: number; n_layer?: number };
  const lrs = rs.map((x) => x.lr).filter((x) => x !== undefined) as number[];
  const warm = rs.map((x) => x.warmup).filter((x) => x !== undefined) as number[];
  const ours = {
    parameters: `${r.parameters.toLocaleString("en")} (d ${c.d_model} x ${c.n_layer} layers)`,
    bytes: `${span(rs.map((x) => x.bytes_seen), si)} (${[...new Set(rs.map((x) => x.domain))].join(", ")})`,
    context: `${r.length.toLocaleString("en")} bytes`,
    batch: `${r.batch} x ${r.length.toLocaleString("en")} bytes`,
    steps: span(rs.map((x) => x.steps)),
    schedule: `AdamW (${optimizer.beta1}, ${optimizer.beta2}), peak lr ${
      lrs.length ? span(lrs) : "(not recorded)"
    }, ${warm.length ? span(warm) : "(not recorded)"} warm-up steps, cosine to ${optimizer.minLrRatio}x`,
    clip: String(optimizer.clipNorm),
    precision: "fp32",
    seeds: String(new Set(rs.filter((x) => x.domain === "books").map((x) => x.seed)).size) + " on books",
  };
  const rows: [keyof typeof PAPER, string][] = [
    ["parameters", "parameters"],
    ["bytes", "training bytes"],
    ["context", "context"],
    ["batch", "batch"],
    ["steps", "steps"],
    ["schedule", "optimizer and schedule"],
    ["clip", "gradient clipping (global norm)"],
    ["precision", "precision"],
    ["seeds", "seeds"],
  ];
  return {
    columns: ["", "paper: MambaByte-353M", `here: MambaByte, ${scale} scale`],
    rows: rows.map(([k, name]) => [name, PAPER[k], ours[k]]),
    note: "The paper's column is its recipe (docs/PAPER.md); ours is read from the runs' records.",
  };
}
