/**
 * Every figure and table of the project, built from data/results alone (no training), by name.
 *
 *   deno task figures [--results DIR] [--out DIR] [--scale S] [--only a,b] [--list]
 *       -> OUT/NAME.svg + OUT/NAME.png for figures, OUT/NAME.md for tables, OUT/index.md   (OUT: figures/)
 *   await showRegistered("extrapolation_length", { resultsDir: "../data/results", scale: SCALE })   // notebooks
 *
 * A builder is a plain function (records of the tables it reads) -> a plotly figure or a table. Notebooks
 * and the exporter call the same builder, so what a notebook shows is the exported file. To add a figure,
 * `registerFigure({ name, description, reads, build })`; `reads` names result tables (paths under the
 * results directory without .jsonl, e.g. "extrapolation" or "bench/sweep/scan"). A builder returns
 * undefined when there is nothing recorded for it, and the exporter then says so and writes nothing.
 *
 * Scale: records of experiments carry `scale`; a builder shows one scale: the one asked for, else the
 * largest one recorded (gpu > small > smoke). The scale is in every title.
 *
 * Tables are reshaped with arquero and written as markdown; statistics (means, deviations, extents) use
 * d3-array.
 */
import * as aq from "arquero";
import { deviation, extent, group, mean } from "d3-array";
import { atomicWriteFile } from "../io/atomic.ts";
import { PAPER_NOISE, PAPER_PG19_WORD_PPL } from "../paper.ts";
import { readRecords, RESULTS_DIR } from "../results/store.ts";
import { speculativeBounds } from "../results/speculative.ts";
import { SCALES_LARGEST_FIRST } from "../scales.ts";
import { layout, showFigure, showTable } from "./display.ts";
import {
  computeMatchedFigure,
  computeMatchedTable,
  latestRuns,
  matchedRows,
} from "../results/compute_matched.ts";
import type { RunRecord } from "../train/experiment.ts";
import { closeRenderer, type PlotlyFigure, renderFigure } from "./export.ts";

// deno-lint-ignore no-explicit-any
type Rec = Record<string, any>;
/** Result table name -> its records (append order). */
export type Records = Record<string, Rec[]>;

export interface MarkdownTable {
  columns: string[];
  rows: string[][];
  /** Shown under the table (scale, units, caveats). */
  note?: string;
}

export type Built = { figure: PlotlyFigure } | { table: MarkdownTable };

export interface BuildContext {
  /** The scale asked for (default: the largest recorded). */
  scale?: string;
  /** data/anchors (peer measurements shown beside ours). */
  anchorsDir: string;
}

export interface FigureBuilder {
  /** File stem: figures/NAME.svg|png|md. */
  name: string;
  description: string;
  /** Result tables read, relative to the results directory, without .jsonl. */
  reads: string[];
  build(records: Records, ctx: BuildContext): Built | undefined | Promise<Built | undefined>;
}

const REGISTRY = new Map<string, FigureBuilder>();

export function registerFigure(b: FigureBuilder): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(b.name)) {
    throw new Error(`figure name "${b.name}" must be a plain file stem`);
  }
  REGISTRY.set(b.name, b);
}

export function figureBuilders(): FigureBuilder[] {
  return [...REGISTRY.values()];
}

export function figureBuilder(name: string): FigureBuilder {
  const b = REGISTRY.get(name);
  if (!b) throw new Error(`no figure "${name}" (known: ${[...REGISTRY.keys()].join(", ")})`);
  return b;
}

const REPO_ROOT = new URL("../../", import.meta.url).pathname;
export const FIGURES_DIR = `${REPO_ROOT}figures`;
export const ANCHORS_DIR = `${REPO_ROOT}data/anchors`;

/** Reads result tables (missing tables give empty lists). */
export async function loadRecords(resultsDir: string, tables: string[]): Promise<Records> {
  const out: Records = {};
  for (const t of tables) out[t] = await readRecords<Rec>(t, resultsDir);
  return out;
}

export interface BuildOptions {
  resultsDir?: string;
  scale?: string;
  anchorsDir?: string;
}

/** Builds one registered figure or table from the records in `resultsDir`. */
export async function buildFigure(name: string, opts: BuildOptions = {}): Promise<Built | undefined> {
  const b = figureBuilder(name);
  const records = await loadRecords(opts.resultsDir ?? RESULTS_DIR, b.reads);
  return await b.build(records, { scale: opts.scale, anchorsDir: opts.anchorsDir ?? ANCHORS_DIR });
}

/**
 * Notebook helper: builds and displays a registered figure or table (or says that nothing is recorded).
 * Returns nothing, so that a cell ending with it shows no value (use buildFigure for the object).
 */
export async function showRegistered(name: string, opts: BuildOptions = {}): Promise<void> {
  const built = await buildFigure(name, opts);
  if (!built) {
    console.log(
      `${name}: nothing recorded in ${opts.resultsDir ?? RESULTS_DIR}${
        opts.scale ? ` at scale ${opts.scale}` : ""
      }`,
    );
  } else if ("figure" in built) await showFigure(built.figure);
  else await showTable(tableObjects(built.table), { caption: built.table.note, maxRows: 200 });
}

/** A markdown table as row objects (for showTable). */
export function tableObjects(t: MarkdownTable): Record<string, string>[] {
  return t.rows.map((r) => Object.fromEntries(t.columns.map((c, i) => [c, r[i]])));
}

export function tableMarkdown(t: MarkdownTable): string {
  const esc = (s: string) => s.replace(/\|/g, "\\|");
  const line = (cells: string[]) => `| ${cells.map(esc).join(" | ")} |`;
  return [
    line(t.columns),
    line(t.columns.map(() => "---")),
    ...t.rows.map(line),
    ...(t.note ? ["", t.note] : []),
  ].join("\n") + "\n";
}

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

/** Colours by model family, so a model has one colour in every figure. */
const KIND_COLOR: Record<string, string> = {
  mambabyte: "#1f77b4",
  mamba_subword: "#d62728",
  transformer: "#2ca02c",
  megabyte: "#9467bd",
  perceiver_ar: "#ff7f0e",
  transformer_subword: "#8c564b",
};
const colorOf = (kind: string, i = 0) =>
  KIND_COLOR[kind] ?? ["#7f7f7f", "#e377c2", "#17becf", "#bcbd22"][i % 4];

const fmt = (
  x: number | undefined | null,
  d = 3,
) => (x === undefined || x === null || !Number.isFinite(x) ? "—" : x.toFixed(d));
const signed = (
  x: number,
  d = 3,
) => (Number.isFinite(x) ? `${x >= 0 ? "+" : "−"}${Math.abs(x).toFixed(d)}` : "—");
/** 3 significant digits, scientific beyond 1e5 (perplexities here span 1 to 1e20). */
const sig = (x: number) => {
  if (!Number.isFinite(x)) return "—";
  const a = Math.abs(x);
  return a >= 1e5 || (a > 0 && a < 1e-2)
    ? x.toExponential(2).replace("e+", "e")
    : String(Number(x.toPrecision(3)));
};

const scaleNote = (scale: string) =>
  `Scale "${scale}": this project's models (parameters in the records), far smaller than the paper's; compare trends, not values.`;

/** Wraps text into lines of at most `width` characters (plotly does not wrap annotations). */
function wrap(text: string, width = 150): string[] {
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
function footnote(
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
function topTitle(
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

// ---------------------------------------------------------------------------------------------------
// Extrapolation (lib/eval/extrapolation.ts -> extrapolation.jsonl)

const MODE_TEXT: Record<string, string> = { whole: "whole sequence", sliding: "sliding window of C" };

function extrapolationRecords(records: Records, wanted?: string): { scale: string; recs: Rec[] } | undefined {
  const all = records.extrapolation ?? [];
  const scale = chooseScale(all, wanted);
  if (!scale) return undefined;
  const recs = latestBy(
    all.filter((r) => r.scale === scale),
    (r) => `${r.model_dir}|${r.trained_context}|${r.multiple}|${r.mode}`,
  );
  return recs.length ? { scale, recs } : undefined;
}

/** One series per (model, mode): its label, colour, dash, and records sorted by multiple. */
function extrapolationSeries(recs: Rec[]) {
  const models = [...new Set(recs.map((r) => r.model_dir))];
  const byModelMode = group(recs, (r: Rec) => r.model_dir, (r: Rec) => r.mode) as Map<
    string,
    Map<string, Rec[]>
  >;
  return [...byModelMode].flatMap(([dir, byMode]) =>
    [...byMode].map(([mode, rs]) => {
      const r0 = rs[0];
      const recurrent = r0.model_kind === "mambabyte" || r0.model_kind === "mamba_subword";
      const how = mode === "whole"
        ? (recurrent ? "whole sequence, recurrent" : "whole sequence, full attention")
        : MODE_TEXT[mode] ?? mode;
      return {
        name: `${r0.label}: ${how}`,
        label: String(r0.label),
        kind: r0.model_kind as string,
        color: colorOf(r0.model_kind, models.indexOf(dir)),
        dash: mode === "sliding" ? "dot" : "solid",
        trainedBytes: r0.trained_context_bytes as number,
        recs: [...rs].sort((a, b) => a.multiple - b.multiple),
      };
    })
  ).sort((a, b) => a.name.localeCompare(b.name));
}

/** The families the extrapolation experiment compares (lib/eval/extrapolation.ts EXTRAPOLATION_KINDS). */
const EXTRAPOLATION_FAMILIES: Record<string, string> = {
  mambabyte: "MambaByte",
  mamba_subword: "subword Mamba",
  transformer: "byte Transformer",
};

function skippedNote(recs: Rec[]): string {
  const kinds = new Set(recs.map((r) => r.model_kind));
  const absent = Object.keys(EXTRAPOLATION_FAMILIES).filter((k) => !kinds.has(k)).map((k) =>
    EXTRAPOLATION_FAMILIES[k]
  );
  const missing = absent.length
    ? `No record at this scale for: ${absent.join(", ")} (see the smaller scale).`
    : "";
  const skipped = recs.filter((r) => r.status !== "ok");
  if (!skipped.length) return missing;
  const byWhy = group(skipped, (r: Rec) => `${r.label} (${r.mode})`) as Map<string, Rec[]>;
  return "Not evaluated: " +
    [...byWhy].map(([who, rs]) =>
      `${who} at ${rs.map((r) => `${r.multiple}x`).join(", ")}: ${
        rs[0].status === "failed" ? "failed, " : ""
      }${String(rs[0].reason).replace(/; the longest.*$/, "")}`
    ).join("; ") + "." + (missing ? " " + missing : "");
}

/** Test bytes scored at each length, per model ("MambaByte 8,192, ..."). */
function bytesNote(recs: Rec[]): string {
  const per = latestBy(recs.filter((r) => r.status === "ok"), (r) => r.model_dir);
  return per.map((r) => `${r.label} ${Number(r.bytes).toLocaleString("en")}`).join(", ");
}

registerFigure({
  name: "extrapolation_length",
  description:
    "Test bits per byte against evaluation length (multiples of the training context), and its change from 1x, per model and mode",
  reads: ["extrapolation"],
  build(records, ctx) {
    const sel = extrapolationRecords(records, ctx.scale);
    if (!sel) return undefined;
    const { scale, recs } = sel;
    const series = extrapolationSeries(recs);
    const data: Rec[] = [];
    for (const s of series) {
      const ok = s.recs.filter((r) => r.status === "ok");
      const base = ok.find((r) => r.multiple === 1)?.bits_per_byte;
      const common = {
        type: "scatter",
        mode: "lines+markers",
        legendgroup: s.name,
        line: { color: s.color, dash: s.dash, width: 2 },
        marker: { size: 7 },
      };
      data.push({
        ...common,
        name: `${s.name} (C = ${s.trainedBytes.toLocaleString("en")} bytes)`,
        x: ok.map((r) => r.multiple),
        y: ok.map((r) => r.bits_per_byte),
        // hover: how many sequences, and the spread of their bits per byte (the text varies; the lengths do not)
        customdata: ok.map((
          r,
        ) => [r.sequences, r.sequence_bpb?.length > 1 ? deviation(r.sequence_bpb as number[]) : 0]),
        hovertemplate:
          "%{x}x: %{y:.4f} bits/byte over %{customdata[0]} sequences (s.d. %{customdata[1]:.3f})",
      });
      if (base !== undefined) {
        data.push({
          ...common,
          showlegend: false,
          xaxis: "x",
          yaxis: "y2",
          x: ok.map((r) => r.multiple),
          y: ok.map((r) => r.bits_per_byte - base),
        });
      }
    }
    const multiples = [...new Set(recs.map((r) => r.multiple as number))].sort((a, b) => a - b);
    const top = topTitle(
      `Length extrapolation: test bits per byte against evaluation length (${
        recs[0].domain
      }, ${scale} scale)`,
      data,
    );
    const foot = footnote(
      `Every length scores the same test bytes (${
        bytesNote(recs)
      }); at k x C a sequence holds k x C tokens, read from its start. ` +
        `Bottom: change from 1x (same bytes, so differences are paired). ` +
        `Paper [S]: MambaByte trained at 8,192 bytes shows no significant degradation at 4x and longer; Transformers do not extrapolate beyond their training length. ` +
        `${scaleNote(scale)}${skippedNote(recs) ? "\n" + skippedNote(recs) : ""}`,
      70,
    );
    const axisStyle = {
      showgrid: true,
      gridcolor: "#e6e6e6",
      zeroline: false,
      showline: true,
      linecolor: "#444",
      ticks: "outside",
      automargin: true,
    };
    return {
      figure: {
        data,
        layout: layout({
          xTitle: "Evaluation length (multiple of the training context C)",
          xType: "log",
          yTitle: "Test bits per byte",
          legend: "top",
          width: 1000,
          height: 640 + foot.margin - 120,
          extra: {
            title: top.title,
            showlegend: true,
            xaxis: { tickvals: multiples, ticktext: multiples.map((m) => `${m}x`), anchor: "y2" },
            yaxis: {
              domain: [0.42, 1],
              title: { text: "Test bits per byte (bits/byte)", font: { size: 14 } },
            },
            yaxis2: {
              ...axisStyle,
              domain: [0, 0.34],
              title: { text: "Change from 1x (bits/byte)", font: { size: 14 } },
              zeroline: true,
              zerolinecolor: "#888",
            },
            margin: { l: 80, r: 30, t: top.margin, b: foot.margin },
            shapes: [{
              type: "line",
              xref: "x",
              yref: "paper",
              x0: 1,
              x1: 1,
              y0: 0,
              y1: 1,
              line: { color: "#999", dash: "dash", width: 1 },
            }],
            annotations: [foot.annotation],
          },
        }),
      },
    };
  },
});

/**
 * Position bins of one (model, mode) pooled over every evaluation length: in both modes the prediction at
 * position p of a sequence depends only on the bytes before it (and on where the windows start, which is the
 * sequence start), not on the sequence's length, so every length contributes samples of the same quantity.
 */
function pooledBins(recs: Rec[]): { lo: number; hi: number; bytes: number; bits_per_byte: number }[] {
  const bins = new Map<number, { lo: number; hi: number; bytes: number; nats: number }>();
  for (const r of recs.filter((r) => r.status === "ok")) {
    for (const b of r.position_bins as Rec[]) {
      const have = bins.get(b.bin);
      if (have) {
        Object.assign(have, {
          lo: Math.min(have.lo, b.lo),
          hi: Math.max(have.hi, b.hi),
          bytes: have.bytes + b.bytes,
          nats: have.nats + b.nats,
        });
      } else bins.set(b.bin, { lo: b.lo, hi: b.hi, bytes: b.bytes, nats: b.nats });
    }
  }
  return [...bins.entries()].sort((a, b) => a[0] - b[0]).map(([, b]) => ({
    ...b,
    bits_per_byte: b.nats / b.bytes / Math.LN2,
  }));
}

registerFigure({
  name: "extrapolation_position",
  description:
    "Test bits per byte against byte position (pooled over evaluation lengths), per model and mode",
  reads: ["extrapolation"],
  build(records, ctx) {
    const sel = extrapolationRecords(records, ctx.scale);
    if (!sel) return undefined;
    const { scale, recs } = sel;
    const series = extrapolationSeries(recs).filter((s) => s.recs.some((r) => r.status === "ok"));
    if (!series.length) return undefined;
    const data = series.map((s) => {
      const bins = pooledBins(s.recs);
      const longest = s.recs.filter((r) => r.status === "ok").at(-1)!;
      return {
        type: "scatter",
        mode: "lines+markers",
        name: `${s.name}, to ${longest.multiple}x C (C = ${s.trainedBytes.toLocaleString("en")} bytes)`,
        x: bins.map((b) => Math.sqrt(b.lo * b.hi)),
        y: bins.map((b) => b.bits_per_byte),
        customdata: bins.map((b) => [b.lo, b.hi, b.bytes]),
        hovertemplate: "bytes %{customdata[0]}-%{customdata[1]}: %{y:.3f} bits/byte (%{customdata[2]} bytes)",
        line: { color: s.color, dash: s.dash, width: 2 },
        marker: { size: 5 },
      };
    });
    // each model's training context, a vertical line in its colour, labelled once per distinct context
    const contexts = latestBy(
      series.map((s) => ({ x: s.trainedBytes, color: s.color, label: s.label })),
      (c) => `${c.x}|${c.label}`,
    );
    const top = topTitle(`Loss against byte position (${recs[0].domain}, ${scale} scale)`, data);
    const foot = footnote(
      `Each point: bits per byte of the predictions at byte positions in one bin (two bins per doubling), pooled over all evaluation lengths ` +
        `(the prediction at a position does not depend on how long the sequence is). Dashed lines: each model's training context C; ` +
        `right of its line a model predicts from more context than it was trained on. Points at the largest positions come from the longest sequences only, so from few bytes. ` +
        `Paper [S]: no significant degradation for MambaByte past its training length; Transformers do not extrapolate. ${
          scaleNote(scale)
        }`,
      70,
    );
    const [yMin, yMax] = extent(data.flatMap((d) => d.y).filter(Number.isFinite) as number[]) as [
      number,
      number,
    ];
    const yMean = mean(data.flatMap((d) => d.y).filter(Number.isFinite) as number[]) ?? yMax;
    return {
      figure: {
        data,
        layout: layout({
          xTitle: "Byte position in the test sequence (bytes of context before the predicted byte)",
          xType: "log",
          yTitle: "Test bits per byte",
          yUnit: "bits/byte",
          legend: "top",
          width: 1000,
          height: 560 + foot.margin - 100,
          extra: {
            title: top.title,
            showlegend: true,
            margin: { l: 80, r: 30, t: top.margin, b: foot.margin },
            xaxis: { exponentformat: "none" },
            // the first positions (almost no context) can sit far above the rest: keep the bulk readable
            yaxis: { range: [Math.max(0, yMin - 0.3), Math.min(yMax, yMean * 2) + 0.3] },
            shapes: contexts.map((c) => ({
              type: "line",
              xref: "x",
              yref: "paper",
              x0: c.x,
              x1: c.x,
              y0: 0,
              y1: 1,
              line: { color: c.color, dash: "dash", width: 1 },
            })),
            annotations: [
              ...contexts.map((c, i) => ({
                x: Math.log10(c.x),
                y: 1 - 0.06 * i,
                xref: "x",
                yref: "paper",
                text: `C = ${c.x} (${c.label})`,
                showarrow: false,
                xanchor: "left",
                xshift: 4,
                yanchor: "top",
                font: { size: 11, color: c.color },
                bgcolor: "rgba(255,255,255,0.8)",
              })),
              foot.annotation,
            ],
          },
        }),
      },
    };
  },
});

registerFigure({
  name: "extrapolation",
  description: "Table: test bits per byte per evaluation length (multiples of C), per model and mode",
  reads: ["extrapolation"],
  build(records, ctx) {
    const sel = extrapolationRecords(records, ctx.scale);
    if (!sel) return undefined;
    const { scale, recs } = sel;
    const multiples = [...new Set(recs.map((r) => r.multiple as number))].sort((a, b) => a - b);
    const t = aq.from(recs.map((r) => ({
      model: r.label,
      kind: r.model_kind,
      mode: MODE_TEXT[r.mode] ?? r.mode,
      C: r.trained_context_bytes,
      multiple: `${r.multiple}x`,
      bpb: r.status === "ok" ? r.bits_per_byte : null,
    })));
    const wide = t.groupby("model", "kind", "mode", "C").pivot("multiple", {
      bpb: (d: Rec) => aq.op.any(d.bpb),
    })
      .orderby("model", "mode").objects() as Rec[];
    const cols = multiples.map((m) => `${m}x`);
    const rows = wide.map((w) => {
      const vals = cols.map((c) => w[c] as number | null);
      const ok = vals.map((v, i) => [v, multiples[i]] as const).filter(([v]) =>
        v !== null && v !== undefined
      );
      const change = ok.length > 1 ? ok.at(-1)![0]! - ok[0][0]! : NaN;
      return [
        String(w.model),
        String(w.mode),
        String(w.C),
        ...vals.map((v) => fmt(v)),
        ok.length > 1 ? `${signed(change)} (${ok.at(-1)![1]}x)` : "—",
      ];
    });
    return {
      table: {
        columns: ["model", "mode", "C (bytes)", ...cols.map((c) => `${c} bpb`), "longest − 1x"],
        rows,
        note:
          `Test bits per byte at evaluation lengths that are multiples of the training context C (${
            recs[0].domain
          }, ${scale} scale); ` +
          `every length scores the same test bytes (${bytesNote(recs)}). — = not evaluated. ${
            skippedNote(recs)
          } ${scaleNote(scale)}`,
      },
    };
  },
});

// ---------------------------------------------------------------------------------------------------
// Noise (lib/eval/noise.ts -> noise.jsonl)

const settingName = (r: Rec) => (r.noise === "none" ? "clean" : `${r.noise.replace("_", " ")} p=${r.p}`);

function noiseRecords(
  records: Records,
  wanted?: string,
): { scale: string; recs: Rec[]; models: Rec[] } | undefined {
  const all = records.noise ?? [];
  const scale = chooseScale(all, wanted);
  if (!scale) return undefined;
  const recs = latestBy(all.filter((r) => r.scale === scale), (r) => `${r.model_dir}|${r.noise}|${r.p}`);
  if (!recs.length) return undefined;
  // one entry per model, in the order MambaByte, subword Mamba, others
  const order = (k: string) => (k === "mambabyte" ? 0 : k === "mamba_subword" ? 1 : 2);
  const models = latestBy(recs, (r) => r.model_dir).sort((a, b) =>
    order(a.model_kind) - order(b.model_kind) || String(a.label).localeCompare(b.label)
  );
  return { scale, recs, models };
}

/** Settings in the paper's order (clean first), as recorded. */
function noiseSettings(recs: Rec[]): { noise: string; p: number }[] {
  const keys = latestBy(recs, (r) => `${r.noise}|${r.p}`).map((r) => ({
    noise: r.noise as string,
    p: r.p as number,
  }));
  const rank = (s: { noise: string; p: number }) => {
    if (s.noise === "none") return -1;
    const i = PAPER_NOISE.findIndex((q) => q.noise === s.noise && (q.p === null || q.p === s.p));
    return i >= 0 ? i : 100;
  };
  return keys.sort((a, b) => rank(a) - rank(b) || a.p - b.p);
}

const paperNoise = (s: { noise: string; p: number }) =>
  PAPER_NOISE.find((q) => q.noise === s.noise && (q.p === null || q.p === s.p));

registerFigure({
  name: "noise",
  description:
    "Table: increase of bits per byte and word perplexity under each noise, per model, beside the paper's",
  reads: ["noise"],
  build(records, ctx) {
    const sel = noiseRecords(records, ctx.scale);
    if (!sel) return undefined;
    const { scale, recs, models } = sel;
    const settings = noiseSettings(recs);
    // long form (setting, column, cell), pivoted by arquero into one column per (model, quantity)
    const long = recs.flatMap((r) => {
      const setting = settingName(r);
      const bpb = r.noise === "none"
        ? fmt(r.bits_per_byte)
        : `${fmt(r.bits_per_byte)} (${signed(r.delta_bits_per_byte)})`;
      const ppl = r.noise === "none"
        ? sig(r.word_perplexity)
        : `${sig(r.word_perplexity)} (${r.delta_word_perplexity >= 0 ? "+" : ""}${
          sig(r.delta_word_perplexity)
        }, ×${sig(r.ratio_word_perplexity)})`;
      return [{ setting, col: `${r.label} bpb (Δ)`, cell: bpb }, {
        setting,
        col: `${r.label} word PPL (Δ, ×)`,
        cell: ppl,
      }];
    });
    const wide = new Map(
      (aq.from(long).groupby("setting").pivot("col", { cell: (d: Rec) => aq.op.any(d.cell) })
        .objects() as Rec[])
        .map((o) => [o.setting as string, o]),
    );
    const modelCols = models.flatMap((m) => [`${m.label} bpb (Δ)`, `${m.label} word PPL (Δ, ×)`]);
    const columns = ["noise", ...modelCols, "paper ΔPPL subword Mamba-1.03B", "paper ΔPPL MambaByte-972M"];
    const rows = settings.map((s) => {
      const name = settingName(s);
      const paper = paperNoise(s);
      return [
        name,
        ...modelCols.map((c) => (wide.get(name)?.[c] as string | undefined) ?? "—"),
        paper
          ? `+${paper.subword.toLocaleString("en")}`
          : s.noise === "none"
          ? `${PAPER_PG19_WORD_PPL.subword.test} (test)`
          : "—",
        paper
          ? `+${paper.mambabyte.toLocaleString("en")}`
          : s.noise === "none"
          ? `${PAPER_PG19_WORD_PPL.mambabyte.test} (test)`
          : "—",
      ];
    });
    const m0 = models[0];
    return {
      table: {
        columns,
        rows,
        note: `Noise robustness on ${m0.domain} (${scale} scale; ${
          fmt(mean(models.map((m) => m.words)), 0)
        } clean words, ${m0.clean?.bytes ?? "?"} bytes scored, noise seed ${m0.seed}). ` +
          `bpb: bits per byte of the noisy text; word PPL: exp(nats of the noisy text / words of the CLEAN text); Δ: noisy − clean, ×: noisy / clean. ` +
          `Paper columns: PG19 word-perplexity increase [S] (clean row: the paper's test perplexity). ${
            scaleNote(scale)
          }`,
      },
    };
  },
});

registerFigure({
  name: "noise_bpb",
  description: "Increase of test bits per byte under each noise, per model",
  reads: ["noise"],
  build(records, ctx) {
    const sel = noiseRecords(records, ctx.scale);
    if (!sel) return undefined;
    const { scale, recs, models } = sel;
    const settings = noiseSettings(recs).filter((s) => s.noise !== "none");
    const data = models.map((m, i) => {
      const mine = new Map(recs.filter((r) => r.model_dir === m.model_dir).map((r) => [settingName(r), r]));
      return {
        type: "bar",
        name: `${m.label} (clean: ${fmt(m.clean?.bits_per_byte)} bits/byte)`,
        marker: { color: colorOf(m.model_kind, i) },
        x: settings.map(settingName),
        y: settings.map((s) => mine.get(settingName(s))?.delta_bits_per_byte ?? null),
      };
    });
    const top = topTitle(
      `Increase of test bits per byte under synthetic noise (${models[0].domain}, ${scale} scale)`,
      data,
    );
    const foot = footnote(
      `Bits per byte of the noisy text (per byte of that text) minus that of the clean text; ${
        m0Bytes(models)
      } clean test bytes, the same noisy texts for every model. ` +
        `The paper reports word perplexity only (noise_word_ppl). ${scaleNote(scale)}`,
      130,
    );
    return {
      figure: {
        data,
        layout: layout({
          xTitle: "Noise and probability p",
          yTitle: "Bits per byte, noisy − clean",
          yUnit: "bits/byte",
          legend: "top",
          width: 1000,
          height: 520 + foot.margin - 100,
          extra: {
            title: top.title,
            showlegend: true,
            barmode: "group",
            margin: { l: 80, r: 30, t: top.margin, b: foot.margin },
            annotations: [foot.annotation],
          },
        }),
      },
    };
  },
});

const m0Bytes = (models: Rec[]) => (models[0].clean?.bytes ?? 0).toLocaleString("en");

registerFigure({
  name: "noise_word_ppl",
  description:
    "Increase of log word perplexity (extra nats per clean word) under each noise, per model, beside the paper's",
  reads: ["noise"],
  build(records, ctx) {
    const sel = noiseRecords(records, ctx.scale);
    if (!sel) return undefined;
    const { scale, recs, models } = sel;
    const settings = noiseSettings(recs).filter((s) => s.noise !== "none");
    const x = settings.map(settingName);
    // ln(noisy PPL / clean PPL) = (noisy nats - clean nats) / clean words: linear, and defined below 1x too
    const ours = (m: Rec, i: number) => {
      const mine = new Map(recs.filter((r) => r.model_dir === m.model_dir).map((r) => [settingName(r), r]));
      return {
        type: "bar",
        name: `${m.label} (ours; clean PPL ${sig(m.clean?.word_perplexity)})`,
        marker: { color: colorOf(m.model_kind, i) },
        x,
        y: settings.map((s) => {
          const r = mine.get(settingName(s));
          return r ? Math.log(r.ratio_word_perplexity) : null;
        }),
      };
    };
    // the paper's increases on the same scale: ln(1 + increase / clean test perplexity) (the split is not stated [U])
    const paper = (key: "subword" | "mambabyte", kind: string) => {
      const ref = PAPER_PG19_WORD_PPL[key];
      return {
        type: "bar",
        name: `paper: ${ref.model}, PG19 (clean PPL ${ref.test}, test)`,
        marker: {
          color: "white",
          line: { color: colorOf(kind), width: 2 },
          pattern: { shape: "/", fgcolor: colorOf(kind), solidity: 0.35 },
        },
        x,
        y: settings.map((s) => {
          const p = paperNoise(s);
          return p ? Math.log(1 + p[key] / ref.test) : null;
        }),
      };
    };
    // each model beside the paper's model of the same kind
    const data: Rec[] = [];
    models.forEach((m, i) => {
      data.push(ours(m, i));
      if (
        m.model_kind === "mambabyte" &&
        !data.some((d) => d.name.includes(PAPER_PG19_WORD_PPL.mambabyte.model))
      ) data.push(paper("mambabyte", "mambabyte"));
      if (
        m.model_kind === "mamba_subword" &&
        !data.some((d) => d.name.includes(PAPER_PG19_WORD_PPL.subword.model))
      ) data.push(paper("subword", "mamba_subword"));
    });
    const top = topTitle(
      `Word perplexity under synthetic noise: ln(noisy / clean) (${models[0].domain}, ${scale} scale)`,
      data,
    );
    const foot = footnote(
      `Word perplexity = exp(nats of the noisy text / words of the CLEAN text), so ln(noisy / clean) = extra nats per original word; below 0: the noisy text is cheaper ` +
        `to encode in total (dropping characters removes bytes to predict). Hatched: the paper's PG19 increases [S] on the same scale, ln(1 + increase / clean), ` +
        `taking the paper's clean test perplexity (which split its noise table used is not stated). ${
          scaleNote(scale)
        }`,
      130,
    );
    return {
      figure: {
        data,
        layout: layout({
          xTitle: "Noise and probability p",
          yTitle: "ln(word PPL noisy / clean)",
          yUnit: "nats per clean word",
          legend: "top",
          width: 1000,
          height: 560 + foot.margin - 100,
          extra: {
            title: top.title,
            showlegend: true,
            barmode: "group",
            margin: { l: 80, r: 30, t: top.margin, b: foot.margin },
            yaxis: { zeroline: true, zerolinecolor: "#444" },
            annotations: [foot.annotation],
          },
        }),
      },
    };
  },
});

// ---------------------------------------------------------------------------------------------------
// Scan benchmarks (notebook 02; lib/bench -> bench/scan.jsonl, bench/sweep/scan.jsonl, bench/gpu.jsonl)

const okBench = (r: Rec) => r.status === "ok" && typeof r.median_ms === "number";
const SCAN_COLORS: Record<string, string> = {
  fused: "#1f77b4",
  chunked: "#2ca02c",
  sequential: "#7f7f7f",
  parallel: "#ff7f0e",
};

async function readAnchor(dir: string, file: string): Promise<Rec | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(`${dir}/${file}`));
  } catch {
    return undefined;
  }
}

/** Ticks at the benchmarked lengths (powers of two) instead of plotly's 2-3-5 log ticks. */
const lengthTicks = (lengths: number[]) => {
  const v = [...new Set(lengths)].sort((a, b) => a - b);
  return { tickvals: v, ticktext: v.map((x) => x.toLocaleString("en")) };
};

registerFigure({
  name: "scan_time_vs_length",
  description:
    "Selective-scan time against sequence length, per implementation and pass (wasm), with the PyTorch peer",
  reads: ["bench/sweep/scan"],
  async build(records, ctx) {
    const byLength = (records["bench/sweep/scan"] ?? []).filter((r) =>
      okBench(r) && r.backend === "wasm" && r.shape.B === 1
    );
    if (!byLength.length) return undefined;
    const data: Rec[] = [];
    for (const impl of ["fused", "chunked", "sequential", "parallel"]) {
      for (const pass of ["fwd", "fwd+bwd"]) {
        const pts = byLength.filter((r) => r.impl === impl && r.pass === pass).sort((a, b) =>
          a.shape.L - b.shape.L
        );
        if (pts.length) {
          data.push({
            x: pts.map((r) => r.shape.L),
            y: pts.map((r) => r.median_ms),
            name: `${impl} ${pass}`,
            mode: "lines+markers",
            line: { color: SCAN_COLORS[impl], dash: pass === "fwd" ? "dot" : "solid" },
          });
        }
      }
    }
    const anchor = await readAnchor(ctx.anchorsDir, "cpu-pytorch-2026-11-28.json");
    const peers = (anchor?.scan ?? []).filter((a: Rec) => a.b === 1 && a.d_inner === 512 && a.pscan_fwdbwd_s);
    if (peers.length) {
      data.push({
        x: peers.map((a: Rec) => a.length),
        y: peers.map((a: Rec) => a.pscan_fwdbwd_s * 1000),
        name: "PyTorch pscan fwd+bwd (peer, same CPU)",
        mode: "markers",
        marker: { symbol: "x", size: 11, color: "black" },
      });
    }
    const d = byLength[0].shape;
    return {
      figure: {
        data,
        layout: layout({
          title: `Scan time against length (batch 1, d_inner ${d.D}, d_state ${d.N}, wasm)`,
          xTitle: "Sequence length",
          xUnit: "bytes",
          yTitle: "Median time",
          yUnit: "ms",
          xType: "log",
          yType: "log",
          width: 900,
          height: 540,
          extra: { xaxis: lengthTicks(byLength.map((r) => r.shape.L)) },
        }),
      },
    };
  },
});

registerFigure({
  name: "scan_time_vs_batch",
  description: "Fused scan time against batch size (length 1,024, wasm)",
  reads: ["bench/sweep/scan"],
  build(records) {
    const byBatch = (records["bench/sweep/scan"] ?? []).filter((r) =>
      okBench(r) && r.backend === "wasm" && r.impl === "fused" && r.shape.L === 1024
    )
      .sort((a, b) => a.shape.B - b.shape.B);
    if (!byBatch.length) return undefined;
    return {
      figure: {
        data: ["fwd", "fwd+bwd"].map((pass) => {
          const pts = byBatch.filter((r) => r.pass === pass);
          return {
            x: pts.map((r) => r.shape.B),
            y: pts.map((r) => r.median_ms),
            name: `fused ${pass}`,
            mode: "lines+markers",
            line: { color: SCAN_COLORS.fused, dash: pass === "fwd" ? "dot" : "solid" },
          };
        }),
        layout: layout({
          title: "Fused scan time against batch (length 1,024, wasm)",
          xTitle: "Batch",
          yTitle: "Median time",
          yUnit: "ms",
          width: 900,
          height: 540,
        }),
      },
    };
  },
});

registerFigure({
  name: "scan_memory",
  description: "Peak tensor memory of scan forward + backward against length (wasm)",
  reads: ["bench/sweep/scan"],
  build(records) {
    const mem = (records["bench/sweep/scan"] ?? []).filter((r) =>
      okBench(r) && r.backend === "wasm" && r.shape.B === 1 && r.pass === "fwd+bwd" && r.peak_tensor_bytes
    );
    if (!mem.length) return undefined;
    return {
      figure: {
        data: ["fused", "chunked", "sequential", "parallel"].flatMap((impl) => {
          const pts = mem.filter((r) => r.impl === impl).sort((a, b) => a.shape.L - b.shape.L);
          return pts.length
            ? [{
              x: pts.map((r) => r.shape.L),
              y: pts.map((r) => r.peak_tensor_bytes / 2 ** 20),
              name: impl,
              mode: "lines+markers",
              line: { color: SCAN_COLORS[impl] },
            }]
            : [];
        }),
        layout: layout({
          title: "Peak tensor memory of scan forward + backward (batch 1, wasm)",
          xTitle: "Sequence length",
          xUnit: "bytes",
          yTitle: "Peak tensor memory",
          yUnit: "MiB",
          xType: "log",
          yType: "log",
          width: 900,
          height: 540,
          extra: { xaxis: lengthTicks(mem.map((r) => r.shape.L)) },
        }),
      },
    };
  },
});

registerFigure({
  name: "scan_cpu",
  description: "Table: scan implementations at the benchmark shape on CPU, beside PyTorch's pscan",
  reads: ["bench/scan"],
  build(records) {
    const cpu = records["bench/scan"] ?? [];
    if (!cpu.length) return undefined;
    const rows = latestBy(cpu, (r) => `${r.backend}|${r.impl}|${r.pass}|${JSON.stringify(r.shape)}`).map((
      r,
    ) => [
      r.backend,
      r.impl,
      r.pass,
      `(${r.shape.B}, ${r.shape.D}, ${r.shape.N}, ${r.shape.L})`,
      okBench(r) ? fmt(r.median_ms, 1) : "—",
      okBench(r) && r.peer?.ms ? fmt(r.peer.ms / r.median_ms, 2) : "—",
      r.peak_tensor_bytes ? fmt(r.peak_tensor_bytes / 2 ** 20, 1) : "—",
      okBench(r) ? "ok" : `${r.status}: ${String(r.reason ?? "").slice(0, 80)}`,
    ]);
    return {
      table: {
        columns: [
          "backend",
          "impl",
          "pass",
          "shape (B, D, N, L)",
          "median ms",
          "speed-up vs PyTorch pscan",
          "peak tensors MiB",
          "status",
        ],
        rows,
        note:
          "deno task bench (data/results/bench/scan.jsonl) on a 2-core CPU; the peer is PyTorch 1.13 with mamba.py's pscan on the same machine (data/anchors). > 1: faster than the peer.",
      },
    };
  },
});

registerFigure({
  name: "scan_gpu",
  description: "Table: fused WGSL scan on the H200 beside mamba_ssm's CUDA kernel",
  reads: ["bench/gpu"],
  build(records) {
    const gpu = (records["bench/gpu"] ?? []).filter((r) => r.bench === "scan");
    if (!gpu.length) return undefined;
    // per shape: every run of the latest record's commit and kernel settings (repeats in one process, or
    // calls in one session), as the median and the range, so one lucky or unlucky run does not decide
    const settings = (r: Rec) => JSON.stringify({ ...r.kernel_config, fwd_chunk: undefined });
    const median = (xs: number[]) => {
      const v = [...xs].sort((a, b) => a - b), m = v.length >> 1;
      return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
    };
    const cell = (xs: number[], peer: number | undefined) => {
      const ratio = peer ? fmt(median(xs) / peer, 2) : "—";
      return xs.length > 1 && peer
        ? `${ratio} (${fmt(Math.min(...xs) / peer, 2)}–${fmt(Math.max(...xs) / peer, 2)})`
        : ratio;
    };
    const rows = latestBy(gpu, (r) => JSON.stringify(r.shape)).map((last) => {
      const runs = gpu.filter((r) =>
        JSON.stringify(r.shape) === JSON.stringify(last.shape) &&
        r.provenance?.commit === last.provenance?.commit &&
        settings(r) === settings(last)
      );
      const fwd = runs.map((r) => r.fwd_ms as number), both = runs.map((r) => r.fwdbwd_ms as number);
      return [
        `(${last.shape.B}, ${last.shape.D}, ${last.shape.N}, ${last.shape.L})`,
        fmt(median(fwd), 2),
        fmt(last.peer?.cuda_fwd_ms, 2),
        cell(fwd, last.peer?.cuda_fwd_ms),
        fmt(median(both), 2),
        fmt(last.peer?.cuda_fwdbwd_ms, 2),
        cell(both, last.peer?.cuda_fwdbwd_ms),
        String(runs.length),
        String(last.provenance?.device ?? "?"),
      ];
    });
    return {
      table: {
        columns: [
          "shape (B, D, N, L)",
          "fwd ms",
          "CUDA fwd ms",
          "fwd / CUDA",
          "fwd+bwd ms",
          "CUDA fwd+bwd ms",
          "fwd+bwd / CUDA",
          "runs",
          "device",
        ],
        rows,
        note:
          "lib/bench/gpu.ts (data/results/bench/gpu.jsonl): WGSL kernels through Deno's WebGPU; the peer is mamba_ssm's CUDA kernel on the same GPU (data/anchors). Times: the median of the runs of the latest commit and kernel settings; ratios: median (range). Ratio > 1: slower than CUDA.",
      },
    };
  },
});

registerFigure({
  name: "train_speed",
  description:
    "Table: MambaByte training throughput (whole steps, AdamW included) on the CPU and the H200, beside PyTorch",
  reads: ["bench/train", "bench/gpu"],
  build(records) {
    const cpu = (records["bench/train"] ?? []).filter((r) => r.bench === "train");
    const gpu = (records["bench/gpu"] ?? []).filter((r) => r.bench === "train");
    // the matrix products' implementation on webgpu: records before the WGSL GEMM have no `matmul` (tf.matMul);
    // "wgsl-gemm" marks its first version (arrays indexed in loops, kept in local memory: slow)
    const IMPL: Record<string, string> = {
      wgsl: "WGSL GEMM",
      "tfjs-b": "tfjs BatchMatMul, B transposed first",
      "tfjs-ab": "tfjs BatchMatMul, A and B transposed first",
    };
    const matmul = (r: Rec) =>
      r.provenance?.backend !== "webgpu"
        ? "WebAssembly GEMM"
        : r.matmul === undefined || r.matmul === "tf.matMul"
        ? "tf.matMul"
        : r.matmul === "wgsl-gemm"
        ? "WGSL GEMM, first version"
        : IMPL[r.matmul.impl] ?? String(r.matmul.impl);
    const recs = latestBy(
      [...cpu, ...gpu],
      (r) => `${r.provenance?.device}|${r.d_model}|${r.n_layer}|${r.batch}|${r.length}|${matmul(r)}`,
    )
      .sort((a, b) =>
        String(a.provenance?.backend).localeCompare(String(b.provenance?.backend)) || a.d_model - b.d_model ||
        b.bytes_per_s - a.bytes_per_s
      );
    if (!recs.length) return undefined;
    const rows = recs.map((r) => {
      const peer = r.peer?.bytes_per_s ?? r.peer?.pytorch_pscan_bytes_per_s;
      const peerText = r.peer?.bytes_per_s
        ? "PyTorch + CUDA scan, H200"
        : r.peer?.pytorch_pscan_bytes_per_s
        ? "PyTorch + pscan, this CPU"
        : "—";
      return [
        `d ${r.d_model} x ${r.n_layer}, batch ${r.batch}, length ${r.length}`,
        `${r.provenance?.backend}, ${r.provenance?.device}`,
        matmul(r),
        sig(r.bytes_per_s),
        peer ? sig(peer) : "—",
        peerText,
        peer ? fmt(r.bytes_per_s / peer, 2) : "—",
      ];
    });
    return {
      table: {
        columns: ["model and batch", "where", "matrix products", "bytes/s", "peer bytes/s", "peer", "ratio"],
        rows,
        note:
          "deno task bench --suite train (CPU, data/results/bench/train.jsonl) and lib/bench/gpu.ts (H200, " +
          "data/results/bench/gpu.jsonl): whole training steps on synthetic bytes, the latest record per setting. " +
          "Peers from ../shared/anchors (data/anchors).",
      },
    };
  },
});

// ---------------------------------------------------------------------------------------------------
// Decoding (lib/bench/decode.ts -> bench/decode.jsonl)

/** Where a decoding record ran: "wasm, 2-core Xeon" / "webgpu, NVIDIA H200". */
const decodeWhere = (r: Rec) =>
  `${r.backend}, ${
    String(r.provenance?.device ?? r.device ?? "?").replace(
      /^Intel\(R\) Xeon\(R\) Processor \((\d+) cores\)$/,
      "$1-core Xeon",
    )
  }`;
/** "js": the fused stepper on the host CPU; "tf": tfjs ops on the backend. */
const STEPPER_TEXT: Record<string, string> = { js: "fused JS stepper (host CPU)", tf: "tfjs ops" };
const decodeSeriesName = (r: Rec) =>
  `${r.model}${r.stepper ? ` (${STEPPER_TEXT[r.stepper] ?? r.stepper})` : ""} on ${decodeWhere(r)}`;

/** The latest context-sweep record per (device, backend, model, stepper, context). */
function contextRecords(records: Records): Rec[] {
  const recs = (records["bench/decode"] ?? []).filter((r) => r.context && r.model);
  const place = (r: Rec) => `${r.provenance?.device}|${r.backend}|${r.model}|${r.context}`;
  // a failure recorded without its stepper is superseded by any later measurement at the same place
  const lastMeasured = new Map<string, string>();
  for (const r of recs) {
    if (!r.skipped && (lastMeasured.get(place(r)) ?? "") < r.provenance?.time) {
      lastMeasured.set(place(r), r.provenance?.time);
    }
  }
  const superseded = (r: Rec) =>
    r.skipped && !r.stepper && (lastMeasured.get(place(r)) ?? "") > r.provenance?.time;
  return latestBy(recs.filter((r) => !superseded(r)), (r) => `${place(r)}|${r.stepper ?? ""}`)
    .sort((a, b) => decodeSeriesName(a).localeCompare(decodeSeriesName(b)) || a.context - b.context);
}

registerFigure({
  name: "decode",
  description:
    "Table: batch-1 decoding latency against context length (MambaByte, byte Transformer with KV cache, MegaByte), beside the PyTorch anchor",
  reads: ["bench/decode"],
  build(records) {
    const recs = contextRecords(records);
    if (!recs.length) return undefined;
    const anchor = recs.find((r) => r.anchor_bytes_per_s)?.anchor_bytes_per_s as number | undefined;
    const rows = recs.map((r) => [
      r.model,
      r.stepper ? STEPPER_TEXT[r.stepper] ?? r.stepper : r.model === "mambabyte" ? "—" : "tfjs ops",
      decodeWhere(r),
      r.context.toLocaleString("en"),
      r.skipped ? "—" : fmt(r.msPerByte, 2),
      r.skipped ? "—" : sig(r.bytesPerS),
      r.skipped || !anchor ? "—" : fmt(r.bytesPerS / anchor, 2),
      r.skipped ? String(r.skipped).slice(0, 90) : "",
    ]);
    return {
      table: {
        columns: [
          "model",
          "stepper",
          "backend, device",
          "context (bytes)",
          "ms / byte",
          "bytes/s",
          "x anchor",
          "note",
        ],
        rows,
        note:
          `lib/bench/decode.ts (data/results/bench/decode.jsonl): batch 1, d_model ${recs[0].d_model} x ${
            recs[0].n_layer
          } layers, random weights ` +
          `(speed does not depend on them); MambaByte reads the whole context, the attention models' caches hold random keys and values of that length. ` +
          `x anchor: bytes/s over PyTorch eager decoding of MambaByte of the same size on an H200 (${
            anchor ? sig(anchor) : "?"
          } bytes/s, data/anchors).`,
      },
    };
  },
});

registerFigure({
  name: "decode_context",
  description: "Bytes per second of batch-1 decoding against context length, per model, stepper and device",
  reads: ["bench/decode"],
  build(records) {
    const recs = contextRecords(records).filter((r) => !r.skipped);
    if (!recs.length) return undefined;
    const anchor = recs.find((r) => r.anchor_bytes_per_s)?.anchor_bytes_per_s as number | undefined;
    const series = group(recs, decodeSeriesName) as Map<string, Rec[]>;
    const data: Rec[] = [...series].map(([name, rs], i) => ({
      type: "scatter",
      mode: "lines+markers",
      name,
      x: rs.map((r) => r.context),
      y: rs.map((r) => r.bytesPerS),
      line: { color: colorOf(rs[0].model, i), dash: rs[0].stepper === "js" ? "solid" : "dot" },
      marker: { size: 7, symbol: rs[0].backend === "webgpu" ? "square" : "circle" },
    }));
    const contexts = [...new Set(recs.map((r) => r.context as number))].sort((a, b) => a - b);
    if (anchor) {
      data.push({
        type: "scatter",
        mode: "lines",
        name: `anchor: PyTorch eager MambaByte, H200 (${sig(anchor)} bytes/s)`,
        x: [contexts[0], contexts.at(-1)],
        y: [anchor, anchor],
        line: { dash: "dash", color: "#888" },
      });
    }
    const top = topTitle(
      `Batch-1 decoding speed against context (d_model ${recs[0].d_model} x ${recs[0].n_layer} layers)`,
      data,
    );
    const foot = footnote(
      "MambaByte's state has a fixed size, so its cost per byte does not grow with the context; the Transformer's KV cache and MegaByte's global cache grow by " +
        "one position per byte (per patch). Solid: MambaByte's fused JS stepper, which runs on the host CPU whatever the backend; dotted: tfjs ops on the " +
        "backend (on the H200 through WebGPU each op is a kernel launch, which is what bounds them). Circles: this 2-core Xeon; squares: the H200 machine. " +
        "Random weights: speed does not depend on them. A missing point: the run failed or did not fit its time budget (see the table).",
    );
    return {
      figure: {
        data,
        layout: layout({
          xTitle: "Context",
          xUnit: "bytes",
          xType: "log",
          yTitle: "Bytes per second",
          yType: "log",
          legend: "top",
          width: 1000,
          height: 560 + foot.margin - 60,
          extra: {
            title: top.title,
            margin: { l: 80, r: 30, t: top.margin, b: foot.margin },
            annotations: [foot.annotation],
            xaxis: {
              tickvals: contexts,
              ticktext: contexts.map((c) => c >= 1024 ? `${c / 1024}K` : String(c)),
            },
          },
        }),
      },
    };
  },
});

/** The latest speculative-benchmark record per setting, and the plain greedy baseline of each. */
function speculativeRecords(records: Records): { latest: Rec[]; plainOf: (r: Rec) => Rec | undefined } {
  const latest = latestBy(
    (records["bench/decode"] ?? []).filter((r) => ["plain", "speculative", "subword"].includes(r.mode)),
    (r) =>
      `${r.provenance?.device}|${r.backend}|${r.verifier}|${r.mode}|${r.stepper}|${r.verify ?? ""}|${
        r.beta ?? ""
      }|${r.bytes}`,
  );
  // the plain baseline of each (device, verifier): the one over the most bytes
  const plainOf = (r: Rec) =>
    latest.filter((p) =>
      p.mode === "plain" && p.provenance?.device === r.provenance?.device && p.verifier === r.verifier
    )
      .sort((a, b) => b.bytes - a.bytes)[0];
  return { latest, plainOf };
}

/** "gpu/books" from a verifier path data/checkpoints/runs/compute-matched/gpu/books/mambabyte/model. */
const verifierModels = (r: Rec) =>
  String(r.verifier).replace(/^.*compute-matched\//, "").replace(/\/mambabyte\/model$/, "");

registerFigure({
  name: "speculative",
  description:
    "Table: speculative decoding (subword Mamba drafter, MambaByte verifier) against plain MambaByte and the drafter alone",
  reads: ["bench/decode"],
  build(records) {
    const { latest, plainOf } = speculativeRecords(records);
    if (!latest.length) return undefined;
    const rows = latest.map((r) => {
      const plain = plainOf(r);
      return [
        verifierModels(r),
        decodeWhere(r),
        r.mode,
        r.mode === "speculative"
          ? `${r.verify === "pass" ? "one pass" : "per-byte steps"}, m ${r.draftTokens}, β ${r.beta}`
          : STEPPER_TEXT[r.stepper] ?? r.stepper,
        String(r.bytes),
        r.mode === "speculative" ? `${fmt(r.acceptanceRate, 2)} (${r.accepted}/${r.drafted})` : "—",
        r.mode === "speculative" ? `${r.verifierPasses} / ${r.verifierSteps}` : "—",
        sig(r.bytesPerS),
        plain && r !== plain ? fmt(r.bytesPerS / plain.bytesPerS, 2) : "—",
        r.identicalToGreedy === undefined ? "—" : r.identicalToGreedy ? "yes" : "NO",
      ];
    });
    return {
      table: {
        columns: [
          "models (scale/domain)",
          "backend, device",
          "mode",
          "how",
          "bytes",
          "acceptance",
          "verifier passes / steps",
          "bytes/s",
          "x plain",
          "= greedy",
        ],
        rows,
        note:
          "lib/bench/decode.ts --verifier --drafter (data/results/bench/decode.jsonl), greedy decoding after the same prompt, on trained MambaByte and subword " +
          "Mamba models of this project. Acceptance: drafted bytes accepted (within the verifier's top β). x plain: bytes/s over plain greedy MambaByte on " +
          "the same device. = greedy: β = 1 output byte-identical to plain greedy decoding. The paper reports 2.6x for speculative over plain MambaByte " +
          "decoding with a parallel verification pass as cheap as a step (CUDA); here the fused verification pass still costs most of the bytes' steps " +
          "on the CPU (see the bound below), and each tfjs op on the H200 is a kernel launch.",
      },
    };
  },
});

registerFigure({
  name: "speculative_bound",
  description:
    "Table: what bounds speculative decoding with the fused JS stepper: verifier step and pass costs per byte, drafter step cost, best speed-up at full acceptance",
  reads: ["bench/decode"],
  build(records) {
    const bounds = speculativeBounds(records["bench/decode"] ?? []);
    if (!bounds.length) return undefined;
    const costs = bounds.map((b) => b.cost);
    const rows = bounds.map(({ cost: r, bytesPerToken, bound }) => [
      verifierModels(r),
      decodeWhere(r),
      fmt(r.verifier_step_ms_per_byte * 1000, 0),
      fmt(r.verifier_pass_ms_per_byte * 1000, 0),
      fmt(r.pass_over_step, 2),
      fmt(r.drafter_step_ms * 1000, 0),
      fmt(bytesPerToken, 2),
      fmt(bound, 2),
    ]);
    return {
      table: {
        columns: [
          "models (scale/domain)",
          "backend, device",
          "verifier step µs/byte",
          `fused pass µs/byte (${costs[0].draft_bytes} bytes)`,
          "pass / step",
          "drafter µs/token",
          "bytes/token",
          "best speed-up (all accepted)",
        ],
        rows,
        note:
          "lib/bench/decode.ts (mode verify_cost, data/results/bench/decode.jsonl): the JS stepper's kernels timed alone, without the decoding " +
          "loop's bookkeeping. Best speed-up = step x b / (drafter + pass x b), b bytes per token: a round in which every drafted byte is accepted, " +
          "against stepping the same bytes. On a CPU the matrix-vector products are compute-bound, so a pass saves only the repeated weight " +
          "reads; the paper's 2.6x needs a pass that costs about one step (a GPU) and a drafter much cheaper than the verifier.",
      },
    };
  },
});

registerFigure({
  name: "speculative_speedup",
  description:
    "Speculative decoding: bytes/s over plain greedy MambaByte per setting and device, with the acceptance rate",
  reads: ["bench/decode"],
  build(records) {
    const { latest, plainOf } = speculativeRecords(records);
    const shown = latest.filter((r) => r.mode !== "plain" && plainOf(r));
    if (!shown.length) return undefined;
    const setting = (r: Rec) =>
      r.mode === "speculative"
        ? `speculative, ${r.verify === "pass" ? "one pass" : "steps"}, β ${r.beta}`
        : "subword Mamba alone";
    const series = (r: Rec) => `${decodeWhere(r)}; ${verifierModels(r)} models`;
    const data: Rec[] = [...(group(shown, series) as Map<string, Rec[]>)].map(([where, rs], i) => ({
      type: "bar",
      name: where,
      x: rs.map(setting),
      y: rs.map((r) => r.bytesPerS / plainOf(r)!.bytesPerS),
      text: rs.map((r) => r.mode === "speculative" ? `${Math.round(r.acceptanceRate * 100)}% accepted` : ""),
      textposition: "outside",
      marker: { color: ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd"][i % 4] },
    }));
    const top = topTitle("Speculative decoding: speed over plain greedy MambaByte", data);
    const foot = footnote(
      "Bars: bytes/s over plain greedy MambaByte decoding with the same verifier on the same device (1 = no gain; dotted line: the paper's 2.6x). Labels: " +
        "drafted bytes accepted. Drafter: this project's subword Mamba, 3 tokens per round; β: top-β acceptance (β = 1 equals greedy decoding byte for byte). " +
        "A gain needs a verification pass that costs far less than the bytes' steps: true of mamba_ssm's CUDA kernels, not of the fused CPU stepper " +
        "(a pass costs about as much) nor of tfjs on WebGPU (each op a kernel launch).",
    );
    return {
      figure: {
        data,
        layout: layout({
          yTitle: "Speed-up over plain MambaByte (x)",
          legend: "top",
          width: 1000,
          height: 520 + foot.margin - 60,
          extra: {
            title: top.title,
            barmode: "group",
            margin: { l: 80, r: 30, t: top.margin, b: foot.margin },
            annotations: [foot.annotation],
            shapes: [
              { type: "line", xref: "paper", x0: 0, x1: 1, y0: 1, y1: 1, line: { color: "#444", width: 1 } },
              {
                type: "line",
                xref: "paper",
                x0: 0,
                x1: 1,
                y0: 2.6,
                y1: 2.6,
                line: { color: "#888", dash: "dot", width: 1 },
              },
            ],
          },
        }),
      },
    };
  },
});

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

// ---------------------------------------------------------------------------------------------------
// Export

export interface ExportAllOptions extends BuildOptions {
  /** Output folder (default figures/). */
  outDir?: string;
  /** Only these names (default all registered). */
  only?: string[];
  /** Write OUT/index.md listing what was written (default: when every figure is exported, not with `only`). */
  index?: boolean;
  quiet?: boolean;
}

export interface ExportReport {
  written: { name: string; files: string[] }[];
  /** Name -> why nothing was written. */
  skipped: { name: string; reason: string }[];
}

/** Builds every registered figure and table and writes them (one browser for all figures). */
export async function exportFigures(opts: ExportAllOptions = {}): Promise<ExportReport> {
  const outDir = (opts.outDir ?? FIGURES_DIR).replace(/\/+$/, "");
  const resultsDir = opts.resultsDir ?? RESULTS_DIR;
  const say = (s: string) => opts.quiet || console.error(s);
  const builders = opts.only ? opts.only.map(figureBuilder) : figureBuilders();
  const report: ExportReport = { written: [], skipped: [] };
  await Deno.mkdir(outDir, { recursive: true });
  try {
    for (const b of builders) {
      const t0 = performance.now();
      const built = await b.build(await loadRecords(resultsDir, b.reads), {
        scale: opts.scale,
        anchorsDir: opts.anchorsDir ?? ANCHORS_DIR,
      });
      if (!built) {
        const reason = `no records in ${b.reads.map((t) => `${t}.jsonl`).join(", ")}${
          opts.scale ? ` at scale ${opts.scale}` : ""
        }`;
        report.skipped.push({ name: b.name, reason });
        say(`${b.name}: skipped (${reason})`);
        continue;
      }
      let files: string[];
      if ("figure" in built) {
        files = await writeFigure(built.figure, b.name, outDir);
      } else {
        const path = `${outDir}/${b.name}.md`;
        await atomicWriteFile(path, tableMarkdown(built.table));
        files = [path];
      }
      report.written.push({ name: b.name, files });
      say(
        `${b.name}: ${files.map((f) => f.slice(f.lastIndexOf("/") + 1)).join(", ")} (${
          ((performance.now() - t0) / 1000).toFixed(1)
        } s)`,
      );
    }
  } finally {
    await closeRenderer();
  }
  if (opts.index ?? !opts.only) await atomicWriteFile(`${outDir}/index.md`, indexMarkdown(report, builders));
  return report;
}

/**
 * Writes OUT/NAME.svg and .png with stable ids, so that regenerating an unchanged figure changes no file
 * (plotly gives every plot and trace a random id, which lands in the SVG): traces get uids from their
 * index, and the plot's id is replaced by one derived from the name (unique per figure, for pages that
 * inline several SVGs).
 */
async function writeFigure(fig: PlotlyFigure, name: string, outDir: string): Promise<string[]> {
  const stable = { ...fig, data: fig.data.map((t, i) => ({ uid: `${name}-${i}`, ...(t as Rec) })) };
  let svg = await renderFigure(stable, { format: "svg" });
  const png = await renderFigure(stable, { format: "png" });
  const uid = svg.match(/defs-([0-9a-f]{6})\b/)?.[1];
  if (uid) {
    let h = 0;
    for (const c of name) h = (h * 31 + c.charCodeAt(0)) >>> 0;
    svg = svg.replaceAll(uid, (h & 0xffffff).toString(16).padStart(6, "0"));
  }
  const paths = [`${outDir}/${name}.svg`, `${outDir}/${name}.png`];
  await atomicWriteFile(paths[0], svg);
  await atomicWriteFile(paths[1], png);
  return paths;
}

/** figures/index.md: every figure and table with its description (generated; links are relative). */
function indexMarkdown(report: ExportReport, builders: FigureBuilder[]): string {
  const lines = [
    "# Figures and tables",
    "",
    "Generated by `deno task figures` from data/results (do not edit).",
    "",
  ];
  for (const b of builders) {
    const w = report.written.find((x) => x.name === b.name);
    if (!w) {
      lines.push(
        `- **${b.name}**: ${b.description}. Not generated: ${
          report.skipped.find((s) => s.name === b.name)?.reason ?? "?"
        }.`,
      );
      continue;
    }
    const files = w.files.map((f) => f.slice(f.lastIndexOf("/") + 1));
    lines.push(
      `- **${b.name}**: ${b.description}. ${
        files.map((f) => `[${f.slice(f.lastIndexOf(".") + 1)}](${f})`).join(", ")
      }`,
    );
  }
  return lines.join("\n") + "\n";
}

if (import.meta.main) {
  const args = Deno.args;
  const flag = (name: string) => {
    const i = args.indexOf(`--${name}`);
    if (i >= 0 && (i + 1 >= args.length || args[i + 1].startsWith("--"))) {
      console.error(`--${name} needs a value`);
      Deno.exit(2);
    }
    return i >= 0 ? args[i + 1] : undefined;
  };
  if (args.includes("--help")) {
    console.log(
      "deno task figures [--results DIR] [--out DIR] [--scale smoke|small|gpu] [--only a,b] [--list] [--no-readme]",
    );
    Deno.exit(0);
  }
  if (args.includes("--list")) {
    for (const b of figureBuilders()) {
      console.log(`${b.name.padEnd(24)} ${b.description} [${b.reads.join(", ")}]`);
    }
    Deno.exit(0);
  }
  const t0 = performance.now();
  const report = await exportFigures({
    resultsDir: flag("results"),
    outDir: flag("out"),
    scale: flag("scale"),
    only: flag("only")?.split(","),
  });
  console.log(
    `${report.written.length} figures/tables written, ${report.skipped.length} skipped (no records), ` +
      `${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  if (!flag("out") && !flag("only") && !args.includes("--no-readme")) {
    // the README's results section is regenerated from the same records
    const { updateReadme } = await import("../results/readme.ts");
    await updateReadme(
      { buildFigure, tableMarkdown },
      `${REPO_ROOT}README.md`,
      flag("results") ?? RESULTS_DIR,
    );
    console.log("README.md results section regenerated");
  }
}
