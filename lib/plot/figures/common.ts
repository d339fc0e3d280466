/** Helpers every figure builder shares: the scale shown, one colour per model, number formats, titles and notes. */
import { SCALES_LARGEST_FIRST } from "../../scales.ts";
import type { Rec } from "./registry.ts";
// ---------------------------------------------------------------------------------------------------
// Shared helpers

/** The scale to show: the one asked for, else the largest present in the records. */
export function chooseScale(recs: Rec[], wanted?: string): string | undefined {
  if (wanted) return wanted;
  const have = new Set(recs.map((r) => r.scale).filter(Boolean));
  return SCALES_LARGEST_FIRST.find((s) => have.has(s)) ?? [...have][0];
}

/** The last record for each key (a re-run replaces an earlier record). */
export function latestBy(recs: Rec[], key: (r: Rec) => string): Rec[] {
  const m = new Map<string, Rec>();
  for (const r of recs) m.set(key(r), r);
  return [...m.values()];
}

/** A GPU record's card, short ("NVIDIA H100 80GB HBM3" -> "H100"): numbers of different cards differ. */
export function gpuName(r: Rec): string {
  const d = String(r.provenance?.device ?? r.device ?? "?");
  return d.match(/\b([A-Z]\d{2,4}[A-Za-z]*)\b/)?.[1] ?? d;
}

/** Colours by model family, so a model has one colour in every figure. */
export const KIND_COLOR: Record<string, string> = {
  mambabyte: "#1f77b4",
  mamba_subword: "#d62728",
  transformer: "#2ca02c",
  megabyte: "#9467bd",
  perceiver_ar: "#ff7f0e",
  transformer_subword: "#8c564b",
};
export const colorOf = (kind: string, i = 0) =>
  KIND_COLOR[kind] ?? ["#7f7f7f", "#e377c2", "#17becf", "#bcbd22"][i % 4];

export const fmt = (
  x: number | undefined | null,
  d = 3,
) => (x === undefined || x === null || !Number.isFinite(x) ? "—" : x.toFixed(d));
export const signed = (
  x: number,
  d = 3,
) => (Number.isFinite(x) ? `${x >= 0 ? "+" : "−"}${Math.abs(x).toFixed(d)}` : "—");
/** 3 significant digits, scientific beyond 1e5 (perplexities here span 1 to 1e20). */
export const sig = (x: number) => {
  if (!Number.isFinite(x)) return "—";
  const a = Math.abs(x);
  return a >= 1e5 || (a > 0 && a < 1e-2)
    ? x.toExponential(2).replace("e+", "e")
    : String(Number(x.toPrecision(3)));
};

export const scaleNote = (scale: string) =>
  `Scale "${scale}": this project's models (parameters in the records), far smaller than the paper's; compare trends, not values.`;

/**
 * The models of these evaluation records that were float16 copies (records' `weights`, lib/runs/stages.ts):
 * a sentence for a table's note, empty when every model was evaluated with its own float32 weights.
 */
export function halfNote(recs: Rec[]): string {
  const labels = [...new Set(recs.filter((r) => r.weights === "float16 copy").map((r) => String(r.label)))];
  return labels.length
    ? ` Evaluated from float16 copies of the trained weights (export --format f16; the run's own checkpoint stayed on the GPU machine): ${
      labels.join(", ")
    }.`
    : "";
}

/**
 * A note naming the models evaluated from another seed's run (lib/runs/stages.ts standIn: the entry's seed-0
 * model was not on the machine that evaluated it), or "".
 */
export function seedNote(recs: Rec[]): string {
  const seeds = new Map<string, string>();
  for (const r of recs) {
    const m = /_seed(\d+)$/.exec(String(r.run ?? ""));
    if (m) seeds.set(String(r.label), m[1]);
  }
  return seeds.size
    ? ` Another seed's model stands in where seed 0's was not on the machine that evaluated it: ${
      [...seeds].map(([label, seed]) => `${label} is seed ${seed}`).join(", ")
    }.`
    : "";
}

/** Wraps text into lines of at most `width` characters (plotly does not wrap annotations). */
export function wrap(text: string, width = 150): string[] {
  const lines: string[] = [];
  for (const para of text.split("\n")) {
    let line = "";
    for (const word of para.split(" ")) {
      if (line && line.length + 1 + word.length > width) {
        lines.push(line);
        line = word;
      } else line = line ? `${line} ${word}` : word;
    }
    lines.push(line);
  }
  return lines;
}

/**
 * A footnote under the plot area, `below` pixels under the x axis (room for tick labels and the axis
 * title), and the bottom margin it needs.
 */
export function footnote(
  text: string,
  below = 75,
  width = 175,
): { annotation: Record<string, unknown>; margin: number } {
  const lines = wrap(text, width);
  return {
    annotation: {
      text: lines.join("<br>"),
      xref: "paper",
      yref: "paper",
      x: 0,
      y: 0,
      yshift: -below,
      xanchor: "left",
      yanchor: "top",
      showarrow: false,
      align: "left",
      font: { size: 11, color: "#555" },
    },
    margin: below + 15 * lines.length + 15,
  };
}

/**
 * Title at the very top and a top margin that holds it and a horizontal legend of the traces shown in it
 * (as many entries per row as fit the width: plotly wraps a horizontal legend by the entries' widths).
 */
export function topTitle(
  text: string,
  data: Rec[],
  width = 1000,
): { title: Record<string, unknown>; margin: number } {
  const names = data.filter((d) => d.showlegend !== false).map((d) => String(d.name ?? ""));
  const entry = 40 + 6.4 * Math.max(0, ...names.map((n) => n.length)); // px: symbol + text at 13 px
  const perRow = Math.max(1, Math.floor((width - 80) / entry));
  return {
    title: {
      text,
      x: 0.5,
      xanchor: "center",
      y: 1,
      yanchor: "top",
      yref: "container",
      pad: { t: 14 },
      font: { size: 18 },
    },
    margin: 60 + 26 * Math.ceil(names.length / perRow),
  };
}
