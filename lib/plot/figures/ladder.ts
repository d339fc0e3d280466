/**
 * The budget ladder and the learning-rate sweep (lib/results/ladder.ts): test bits-per-byte against
 * training FLOPs at each budget, one curve per plan entry (the paper's Figure 1, with seeds' error bars),
 * and each family's sweep as a table.
 */
import { ladderPoints, sweepResults } from "../../results/ladder.ts";
import { documentRows } from "../../results/subsets.ts";
import type { PlotlyFigure } from "../export.ts";
import type { RunRecord, UnigramRecord } from "../../results/records.ts";
import { type Records, registerFigure } from "./registry.ts";
import { chooseScale, colorOf, fmt, sig } from "./common.ts";

const DASHES = ["solid", "dash", "dot", "dashdot"], SYMBOLS = ["circle", "diamond", "square", "triangle-up"];

const runsOf = (records: Records) => (records.runs ?? []) as unknown as RunRecord[];
const unigramOf = (records: Records) => (records.unigram ?? []) as unknown as UnigramRecord[];

/** The scale shown: the one asked for, else the largest with ladder records. */
function ladderScale(runs: RunRecord[], wanted?: string): string | undefined {
  const laddered = runs.filter((r) => typeof r.labels?.budget === "number" || r.labels?.sweep !== undefined);
  return chooseScale(laddered, wanted);
}

/**
 * Test bits-per-byte against training FLOPs on one domain: each entry's runs at every budget joined by a
 * line, a marker per budget (the mean over the seeds recorded there, with ± one sample standard deviation
 * as an error bar where there are two or more). One colour per family (common.ts); a family's second entry
 * dashed, with another marker. Compute-matched entries share their FLOPs, so each curve is shifted by 2%
 * steps along the axis (said in its title) and their markers and bars do not hide each other; the y range
 * leaves the lower part of the plot to the legend, which sits there.
 */
export function ladderFigure(
  runs: RunRecord[],
  scale: string,
  domain: string,
  unigram: UnigramRecord[] = [],
): PlotlyFigure | undefined {
  const curves = ladderPoints(runs, scale, domain, "compute-matched", unigram)
    .sort((a, b) => a[0].label.localeCompare(b[0].label));
  if (!curves.length) return undefined;
  const seen = new Map<string, number>();
  const shift = (j: number) => 1.02 ** (j - (curves.length - 1) / 2);
  const data = curves.map((ps, j) => {
    const k = seen.get(ps[0].model) ?? 0;
    seen.set(ps[0].model, k + 1);
    const top = ps.at(-1)!;
    const color = colorOf(ps[0].model);
    return {
      type: "scatter",
      mode: "lines+markers",
      // an entry whose top budget is not recorded yet says at which budget its value is
      name: `${ps[0].label}: ${fmt(top.bits_per_byte)}${top.sd !== undefined ? ` ± ${fmt(top.sd)}` : ""}${
        top.budget < 1 ? ` (at ${top.budget}x)` : ""
      }${ps.some((p) => p.near_unigram) ? " †" : ""}`,
      x: ps.map((p) => p.flops * shift(j)),
      y: ps.map((p) => p.bits_per_byte),
      error_y: {
        type: "data",
        array: ps.map((p) => p.sd ?? 0),
        visible: true,
        color,
        thickness: 1.5,
        width: 5,
      },
      customdata: ps.map((p) => [p.budget, p.seeds, p.flops]),
      hovertemplate:
        "%{customdata[2]:.3s} FLOPs (budget %{customdata[0]}), %{y:.3f} bits/byte over %{customdata[1]} seed(s)",
      line: { color, width: 2, dash: DASHES[k % DASHES.length] },
      marker: { color, size: 9, symbol: SYMBOLS[k % SYMBOLS.length], line: { color: "#000", width: 1 } },
    };
  });
  const ys = curves.flat().flatMap((p) => [p.bits_per_byte - (p.sd ?? 0), p.bits_per_byte + (p.sd ?? 0)]);
  // the legend's rows (about 5.2% of the plot's height each, with its title: measured on the PNG at 900 x
  // 560) fit below the lowest point
  const lo = Math.min(...ys), hi = Math.max(...ys), span = hi - lo || 1;
  const rows = 0.052 * (curves.length + 1);
  const below = span * (0.06 + rows) / (1 - rows);
  return {
    data,
    layout: {
      title: { text: `Test bits per byte against training FLOPs — ${domain} (${scale} scale)` },
      xaxis: {
        title: {
          text: "training FLOPs (forward + backward; curves shifted by 2% steps to keep markers apart)",
        },
        type: "log",
        exponentformat: "power",
      },
      yaxis: {
        title: { text: "test bits per byte (mean over seeds; bars: ± 1 s.d.)" },
        range: [lo - below, hi + 0.06 * span],
      },
      legend: {
        title: {
          text: data.some((d) => d.name.endsWith(" †"))
            ? "model: top budget (†: within 1 bit of unigram)"
            : "model: test bpb at the top budget (or the budget said)",
        },
        x: 0.01,
        xanchor: "left",
        y: 0.01,
        yanchor: "bottom",
        bgcolor: "rgba(255,255,255,0.8)",
      },
      width: 900,
      height: 560,
    },
  };
}

registerFigure({
  name: "compute_matched_ladder_books",
  description:
    "Test bits-per-byte against training FLOPs at the budget ladder's rungs on books, seeds' error bars (the paper's Figure 1)",
  reads: ["runs", "unigram"],
  build(records, ctx) {
    const runs = runsOf(records);
    const scale = ladderScale(runs, ctx.scale);
    const figure = scale && ladderFigure(runs, scale, "books", unigramOf(records));
    return figure ? { figure } : undefined;
  },
});

registerFigure({
  name: "lr_sweep",
  description:
    "Each family's learning-rate sweep at the lowest budget (validation bits-per-byte) and the rate its runs took",
  reads: ["runs"],
  build(records, ctx) {
    const runs = runsOf(records);
    const scale = ladderScale(runs, ctx.scale);
    const sweeps = scale ? sweepResults(runs, scale) : [];
    if (!sweeps.length) return undefined;
    return {
      table: {
        columns: ["family", "learning rate: validation bits per byte", "taken"],
        rows: sweeps.map((s) => [
          s.family,
          s.tried.map((t) =>
            `${sig(t.lr)} (x${t.multiple}): ${fmt(t.bits_per_byte)}${t.near_unigram ? " †" : ""}`
          )
            .join("; "),
          `x${s.best}${s.edge ? " (at the edge of the sweep)" : ""}`,
        ]),
        note:
          `Scale ${scale}: each family trained at the lowest budget with its base learning rate times each multiple, scored on the validation split; its other runs take the multiple of lowest bits per byte once the sweep is settled (a best at the edge extends it). †: within 1 bit per byte of the scored bytes' unigram entropy (the model did not learn at that rate).`,
      },
    };
  },
});

registerFigure({
  name: "test_documents_books",
  description:
    "Each entry's test bits-per-byte on each books test document (its highest budget that kept them): how much of a gap one document carries",
  reads: ["runs"],
  build(records, ctx) {
    const runs = runsOf(records);
    const scale = ladderScale(runs, ctx.scale);
    const t = scale ? documentRows(runs, scale, "books") : undefined;
    if (!t?.rows.length) return undefined;
    const short = (name: string) => name.split("/").pop()!.replace(/\.txt$/, "");
    return {
      table: {
        columns: [
          "model (budget)",
          ...t.documents.map((d) => `${short(d.name)} (${Math.round(d.bytes / 1000)} KB)`),
          "whole split",
        ],
        rows: t.rows.map((r) => [
          `${r.label} (${r.budget}x)`,
          ...r.bits_per_byte.map((x) => x === undefined ? "—" : fmt(x)),
          fmt(r.whole),
        ]),
        note:
          `Scale ${scale}, books test split: bits per byte of each document (a token counted in the document of its first byte), each entry at the highest budget whose run kept per-document scores (its fraction of the top budget in parentheses). The README's verdicts count a gap only beyond twice its spread over resamples of these documents.`,
      },
    };
  },
});
