/** Figures and tables of the compute-matched comparison (runs.jsonl; the paper's Table 1 and Figure 1). */

import {
  budgetOf,
  computeMatchedTable,
  isTopBudget,
  latestRuns,
  matchedRows,
  nearUnigram,
  unigramOf,
} from "../../results/compute_matched.ts";
import type { PlotlyFigure } from "../export.ts";
import type { RunRecord, UnigramRecord } from "../../results/records.ts";
import { type Rec, type Records, registerFigure } from "./registry.ts";
import { chooseScale, colorOf } from "./common.ts";
import { legendInside } from "../legend.ts";

// ---------------------------------------------------------------------------------------------------
// Compute-matched comparison (the paper's Table 1 and Figure 1), from lib/results/compute_matched.ts

const unigramRecords = (records: Records) => (records.unigram ?? []) as unknown as UnigramRecord[];

/**
 * The scale a domain's compute-matched figures show: the largest where that domain's top-budget runs
 * compare two models or more, so that a domain's first large-scale run (they come back a few a session)
 * does not hide the smaller scale's comparison; the largest with any run where none compares. The README
 * places the figures under this scale's heading (plot/readme.ts).
 */
export function domainFigureScale(all: RunRecord[], domain: string, wanted?: string): string | undefined {
  const top = all.filter((r) =>
    r.labels?.plan === "compute-matched" && isTopBudget(r) && r.domain === domain
  );
  const comparing = top.filter((r) =>
    new Set(top.filter((o) => o.scale === r.scale).map((o) => o.model)).size >= 2
  );
  return chooseScale((comparing.length ? comparing : top) as unknown as Rec[], wanted);
}

function matchedRuns(
  records: Records,
  wanted?: string,
  domain?: string,
): { scale: string; runs: RunRecord[] } | undefined {
  const all = (records.runs ?? []) as unknown as RunRecord[];
  // a scale counts once it has top-budget runs (a sweep or a lower rung alone is not a comparison)
  const scale = domain ? domainFigureScale(all, domain, wanted) : chooseScale(
    all.filter((r) => r.labels?.plan === "compute-matched" && isTopBudget(r)) as unknown as Rec[],
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
  reads: ["runs", "unigram"],
  build(records, ctx) {
    const sel = matchedRuns(records, ctx.scale);
    if (!sel) return undefined;
    // every seed's run: a cell with several seeds shows their mean and spread
    const seeded = latestRuns((records.runs ?? []) as unknown as RunRecord[], sel.scale, undefined, true);
    return { table: computeMatchedTable(matchedRows(seeded, unigramRecords(records)), sel.scale) };
  },
});

/**
 * A domain's runs in two figures where its scale has a budget ladder, so that neither legend passes 8
 * entries: the entries with lower-budget runs (the paper's comparison, one curve each), and the
 * single-budget variants (the equal-bytes subword Mamba, the context-8192 pair), each beside its family's
 * principal entry for reference. Without a ladder (small scales), or before any laddered entry has its top
 * budget, every run is in the first. An entry counts as laddered when it has lower-budget runs recorded.
 */
export function splitByLadder(
  all: RunRecord[],
  top: RunRecord[],
  scale: string,
  domain: string,
): { ladder: RunRecord[]; variants: RunRecord[] } {
  const mine = top.filter((r) => r.domain === domain);
  const entry = (r: RunRecord) => String(r.labels?.entry ?? r.model);
  const laddered = new Set(
    all.filter((r) =>
      r.scale === scale && r.domain === domain && r.labels?.plan === "compute-matched" &&
      r.labels?.sweep === undefined && budgetOf(r) < 1
    ).map(entry),
  );
  const ladder = mine.filter((r) => laddered.has(entry(r)));
  // no laddered entry at the top budget yet (lower rungs only): nothing to set the variants beside
  if (!ladder.length) return { ladder: mine, variants: [] };
  const variants = mine.filter((r) => !laddered.has(entry(r)));
  // each variant's family, by its principal entry (the entry named as the family), for reference
  const principals = mine.filter((r) =>
    laddered.has(entry(r)) && entry(r) === r.model && variants.some((v) => v.model === r.model)
  );
  return { ladder, variants: variants.length ? [...principals, ...variants] : [] };
}

/** The domains with compute-matched figures, in the README's order (books, the PG19 stand-in, first). */
export const FIGURE_DOMAINS = ["books", "code", "stories", "prose", "latex"];

for (const domain of FIGURE_DOMAINS) {
  const split = (records: Records, wanted?: string) => {
    const sel = matchedRuns(records, wanted, domain);
    if (!sel || !sel.runs.some((r) => r.domain === domain)) return undefined;
    const all = (records.runs ?? []) as unknown as RunRecord[];
    return { scale: sel.scale, ...splitByLadder(all, sel.runs, sel.scale, domain) };
  };
  registerFigure({
    name: `compute_matched_${domain}`,
    description: `Bits-per-byte against training FLOPs on ${domain} (the paper's Figure 1 analogue)`,
    reads: ["runs", "unigram"],
    build(records, ctx) {
      const s = split(records, ctx.scale);
      if (!s) return undefined;
      return { figure: computeMatchedFigure(s.ladder, domain, s.scale, unigramRecords(records)) };
    },
  });
  registerFigure({
    name: `compute_matched_${domain}_variants`,
    description:
      `Bits-per-byte against training FLOPs on ${domain}: the single-budget variants (equal bytes, context 8192) beside their families`,
    reads: ["runs", "unigram"],
    build(records, ctx) {
      const s = split(records, ctx.scale);
      if (!s?.variants.length) return undefined;
      return {
        figure: computeMatchedFigure(s.variants, domain, s.scale, unigramRecords(records), "variants"),
      };
    },
  });
}

/** A byte count as the subtitle says it: "64 KB", "300 bytes". */
const sizeText = (n: number) =>
  n >= 1024 && n % 1024 === 0 ? `${n / 1024} KB` : `${n.toLocaleString("en")} bytes`;

/** The figure's size and margins (the legend's placement reckons with them). */
const FRAME = { width: 900, height: 520, margin: { l: 80, r: 30, t: 80, b: 80 } };

/** Runs of one family after the first: their lines dashed and their markers other shapes, the colour kept. */
const DASHES = ["solid", "dash", "dot", "dashdot"], SYMBOLS = ["diamond", "square", "circle", "triangle-up"];

/**
 * Bits-per-byte against training FLOPs for one domain: each model's training curve (train bpb, from the
 * record's curve) and its final test bpb as a marker at its total FLOPs. Colours are the families' (one
 * colour per model in every figure); compute-matched runs share their FLOPs, so the markers of runs within
 * 10% of each other's FLOPs are spread over a few percent of the axis (said in the axis title) instead of
 * hiding each other.
 */
export function computeMatchedFigure(
  runs: RunRecord[],
  domain: string,
  scale: string,
  unigram: UnigramRecord[] = [],
  part: "ladder" | "variants" = "ladder",
): PlotlyFigure {
  const mine = runs.filter((r) => r.domain === domain).sort((a, b) =>
    String(a.labels?.label ?? a.model).localeCompare(String(b.labels?.label ?? b.model))
  );
  const data: Record<string, unknown>[] = [];
  const seen = new Map<string, number>(); // runs of each family so far
  // the markers' x: spread by 3% steps among runs whose FLOPs are within 10%, in the legend's order
  const markerX = (r: RunRecord) => {
    const near = mine.filter((o) => Math.abs(o.train_flops / r.train_flops - 1) < 0.1);
    const j = near.indexOf(r);
    return r.train_flops * 1.03 ** (j - (near.length - 1) / 2);
  };
  mine.forEach((r) => {
    const name = String(r.labels?.label ?? r.model);
    const color = colorOf(r.model);
    const k = seen.get(r.model) ?? 0;
    seen.set(r.model, k + 1);
    data.push({
      type: "scatter",
      mode: "lines",
      name: `${name} (train)`,
      legendgroup: name,
      showlegend: false,
      x: r.curve.map((c) => c[1]),
      y: r.curve.map((c) => c[2]),
      line: { color, width: 1.5, dash: DASHES[k % DASHES.length] },
      opacity: 0.6,
    });
    if (r.val_curve?.length) {
      // held-out bits per byte along the run (the scale's eval.valPoints): a curve turning up while the training
      // curve falls is the model memorising its training split
      data.push({
        type: "scatter",
        mode: "lines+markers",
        name: `${name} (validation)`,
        legendgroup: name,
        showlegend: false,
        x: r.val_curve.map((c) => c[1]),
        y: r.val_curve.map((c) => c[2]),
        // long dashes with small open markers: no training curve (DASHES) is drawn so
        line: { color, width: 1, dash: "longdash" },
        marker: { color, size: 6, symbol: "circle-open" },
      });
    }
    data.push({
      type: "scatter",
      mode: "markers",
      // † : within a bit per byte of the test bytes' unigram entropy (the tables' sanity flag)
      name: `${name}: ${r.eval.bits_per_byte.toFixed(3)}${
        nearUnigram(r.eval.bits_per_byte, unigramOf(r, unigram)) ? " †" : ""
      }`,
      legendgroup: name,
      x: [markerX(r)],
      y: [r.eval.bits_per_byte],
      customdata: [r.train_flops], // the run's own FLOPs (x is spread), shown on hover
      hovertemplate: "%{customdata:.3s} FLOPs, %{y:.3f} bits/byte",
      marker: { color, size: 11, symbol: SYMBOLS[k % SYMBOLS.length], line: { color: "#000", width: 1 } },
    });
  });
  // a model's curve and marker share a legend group; no gap between groups (plotly's 10 px each would
  // make 8 entries too tall for the panel, and the y range grow to make room)
  const inside = legendInside(data, { ...FRAME, xType: "log", groupGap: 0 });
  // the plan's one setting (every run of a scale scores the same bytes)
  const valBytes = mine.find((r) => r.val_curve?.length)?.val_curve_bytes;
  return {
    data,
    layout: {
      // what the legend's values are: a subtitle (a horizontal legend's own title would widen it past the plot)
      title: {
        text: `Bits per byte against training FLOPs — ${domain} (${scale} scale)${
          part === "variants" ? ": equal bytes and longer context" : ""
        }`,
        subtitle: {
          text:
            (data.some((d) => String(d.name).endsWith(" †"))
              ? "legend: model: test bits per byte (†: within 1 bit of the test bytes' unigram entropy)"
              : "legend: model: test bits per byte") +
            (valBytes ? `; open circles: validation (its first ${sizeText(valBytes)})` : ""),
        },
      },
      xaxis: {
        title: {
          text: "training FLOPs (forward + backward; test markers of equal-FLOPs runs spread by 3% steps)",
        },
        type: "log",
        exponentformat: "power",
      },
      yaxis: {
        title: { text: "bits per byte (lines: training batches; markers: test split)" },
        ...(inside.yRange ? { range: inside.yRange, autorange: false } : {}),
      },
      ...FRAME,
      // inside the plot, where no curve or marker is
      legend: inside.legend,
    },
  };
}
