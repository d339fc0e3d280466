/** Figures and tables of the compute-matched comparison (runs.jsonl; the paper's Table 1 and Figure 1). */

import { computeMatchedTable, latestRuns, matchedRows } from "../../results/compute_matched.ts";
import type { PlotlyFigure } from "../export.ts";
import type { RunRecord } from "../../results/records.ts";
import { type Rec, type Records, registerFigure } from "./registry.ts";
import { chooseScale } from "./common.ts";

// ---------------------------------------------------------------------------------------------------
// Compute-matched comparison (the paper's Table 1 and Figure 1), from lib/results/compute_matched.ts

function matchedRuns(records: Records, wanted?: string): { scale: string; runs: RunRecord[] } | undefined {
  const all = (records.runs ?? []) as unknown as RunRecord[];
  const scale = chooseScale(
    all.filter((r) => r.labels?.plan === "compute-matched") as unknown as Rec[],
    wanted,
  );
  if (!scale) return undefined;
  const runs = latestRuns(all, scale);
  return runs.length ? { scale, runs } : undefined;
}

registerFigure({
  name: "compute_matched",
  description:
    "Test bits-per-byte per model and domain at matched training FLOPs, beside the paper's Table 1",
  reads: ["runs"],
  build(records, ctx) {
    const sel = matchedRuns(records, ctx.scale);
    return sel && { table: computeMatchedTable(matchedRows(sel.runs), sel.scale) };
  },
});

for (const domain of ["books", "code", "stories", "prose", "latex"]) {
  registerFigure({
    name: `compute_matched_${domain}`,
    description: `Bits-per-byte against training FLOPs on ${domain} (the paper's Figure 1 analogue)`,
    reads: ["runs"],
    build(records, ctx) {
      const sel = matchedRuns(records, ctx.scale);
      if (!sel || !sel.runs.some((r) => r.domain === domain)) return undefined;
      return { figure: computeMatchedFigure(sel.runs, domain, sel.scale) };
    },
  });
}

const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"];

/**
 * Bits-per-byte against training FLOPs for one domain: each model's training curve (train bpb, from the
 * record's curve) and its final test bpb as a marker at its total FLOPs.
 */
export function computeMatchedFigure(runs: RunRecord[], domain: string, scale: string): PlotlyFigure {
  const mine = runs.filter((r) => r.domain === domain).sort((a, b) =>
    String(a.labels?.label ?? a.model).localeCompare(String(b.labels?.label ?? b.model))
  );
  const data: Record<string, unknown>[] = [];
  mine.forEach((r, i) => {
    const name = String(r.labels?.label ?? r.model);
    const color = PALETTE[i % PALETTE.length];
    data.push({
      type: "scatter",
      mode: "lines",
      name: `${name} (train)`,
      legendgroup: name,
      showlegend: false,
      x: r.curve.map((c) => c[1]),
      y: r.curve.map((c) => c[2]),
      line: { color, width: 1.5 },
      opacity: 0.6,
    });
    data.push({
      type: "scatter",
      mode: "markers",
      name: `${name}: ${r.eval.bits_per_byte.toFixed(3)}`,
      legendgroup: name,
      x: [r.train_flops],
      y: [r.eval.bits_per_byte],
      marker: { color, size: 11, symbol: "diamond", line: { color: "#000", width: 1 } },
    });
  });
  return {
    data,
    layout: {
      title: { text: `Bits per byte against training FLOPs — ${domain} (${scale} scale)` },
      xaxis: { title: { text: "training FLOPs (forward + backward)" }, type: "log", exponentformat: "power" },
      yaxis: { title: { text: "bits per byte (lines: training batches; ◆: test split)" } },
      legend: { title: { text: "model: test bpb" } },
      width: 900,
      height: 520,
    },
  };
}
