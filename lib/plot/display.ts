/**
 * Figures and tables in notebooks (Deno's Jupyter kernel).
 *
 *   await showFigure({ data: [...], layout: layout({ title: "Loss", xTitle: "Step", yTitle: "Loss", yUnit: "bits/byte" }) });
 *   await showTable(rows);            // array of objects, or an arquero table
 *
 * A figure is displayed as ONE output holding the plotly JSON (interactive in JupyterLab) and an SVG
 * rendered by headless Chromium, both as image/svg+xml and as an <img> in text/html (nbconvert's static HTML
 * cannot draw plotly JSON, and its sanitizer empties inline SVG; see svgImgTag).
 * Without Chromium the output holds the plotly JSON and a text/plain note saying why there is no image;
 * it never throws for that. Outside Jupyter (a plain `deno run`) both functions print a text summary.
 */

import { chromiumAvailable, plainFigure, type PlotlyFigure, renderFigure } from "./export.ts";
import { flushDisplays } from "./jupyter_flush.ts";
import { type LegendFrame, legendInside } from "./legend.ts";

/** The MIME type JupyterLab's plotly renderer reads. */
export const PLOTLY_MIME = "application/vnd.plotly.v1+json";

export type Bundle = Record<string, unknown>;

export type Kernel = {
  display(obj: unknown, opts?: { raw?: boolean; display_id?: string }): Promise<void>;
  broadcast(type: string, content: unknown, extra?: { metadata?: unknown }): Promise<void> | void;
};

/** Deno.jupyter exists only inside the kernel; typed loosely so this module also runs under `deno run`. */
export function jupyter(): Kernel | undefined {
  try {
    return (Deno as unknown as { jupyter?: Kernel }).jupyter;
  } catch {
    return undefined; // some Deno subcommands (deno test) throw on the property instead of leaving it undefined
  }
}

/**
 * Displays a bundle and waits until it has left the kernel: Deno's kernel may otherwise end the cell
 * (status idle) before publishing it, and the frontend then drops it (see jupyter_flush.ts).
 */
async function display(j: Kernel, bundle: Bundle): Promise<void> {
  await j.display(bundle, { raw: true });
  await flushDisplays(j);
}

/** A figure's title as text, for text/plain fallbacks. */
function titleOf(fig: PlotlyFigure): string {
  const t = fig.layout?.title;
  const text = typeof t === "string" ? t : (t as { text?: unknown } | undefined)?.text;
  return typeof text === "string" && text ? text : "untitled";
}

export interface ShowFigureOptions {
  /** SVG size in CSS pixels (defaults: layout.width/height, else 800 x 500). */
  width?: number;
  height?: number;
}

/**
 * The SVG as an <img> with a data URL. Needed for static HTML: nbconvert 6.5 (Debian 12) passes inline
 * image/svg+xml outputs through its HTML sanitizer, which strips every SVG element and leaves bare text,
 * while text/html (ranked above SVG) is kept as is. As an <img>, the SVG is also isolated from the page's CSS.
 */
function svgImgTag(svg: string, title: string): string {
  const bytes = new TextEncoder().encode(svg);
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  const alt = title.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;");
  return `<img src="data:image/svg+xml;base64,${btoa(bin)}" alt="${alt}" style="max-width:100%;height:auto">`;
}

/**
 * Build the display bundle of a figure: plotly JSON + SVG (+ text/plain), or plotly JSON + a note. Exported
 * for tests and for callers that want the bundle without displaying it.
 */
export async function figureBundle(fig: PlotlyFigure, opts: ShowFigureOptions = {}): Promise<Bundle> {
  const plain = plainFigure({ data: fig.data, layout: fig.layout ?? {} });
  const title = titleOf(fig);
  const avail = await chromiumAvailable();
  let why = avail.reason;
  if (avail.ok) {
    try {
      const svg = await renderFigure(fig, { format: "svg", width: opts.width, height: opts.height });
      return {
        [PLOTLY_MIME]: plain,
        "image/svg+xml": svg,
        "text/html": svgImgTag(svg, title),
        "text/plain": `<Figure: ${title}>`,
      };
    } catch (e) {
      why = `rendering through Chromium failed: ${e instanceof Error ? e.message : e}`;
    }
  }
  return {
    [PLOTLY_MIME]: plain,
    "text/plain": `<Figure: ${title}> (no static image: ${why}; JupyterLab still draws the plotly JSON)`,
  };
}

/** Display a plotly figure in the notebook (see the module comment). */
export async function showFigure(fig: PlotlyFigure, opts: ShowFigureOptions = {}): Promise<void> {
  const bundle = await figureBundle(fig, opts);
  const j = jupyter();
  if (j) await display(j, bundle);
  else console.log(bundle["text/plain"]);
}

// ---------------------------------------------------------------------------------------------------------
// Layout

export interface LayoutOptions {
  title?: string;
  /** Axis titles; a unit, when given, is appended in parentheses: "Training bytes (GB)". */
  xTitle?: string;
  xUnit?: string;
  yTitle?: string;
  yUnit?: string;
  xType?: "linear" | "log" | "date" | "category";
  yType?: "linear" | "log" | "date" | "category";
  width?: number;
  height?: number;
  /**
   * Legend placement: "right" (default, outside the plot), "top" (horizontal, above), "none", or "inside":
   * inside the plot where it covers none of `inside.data` (lib/plot/legend.ts; needs width and height).
   */
  legend?: "right" | "top" | "none" | "inside";
  /** For legend "inside": the figure's traces, and what else the legend must keep clear of. */
  inside?:
    & { data: Record<string, unknown>[] }
    & Pick<LegendFrame, "hlines" | "yRange" | "labels" | "yDomain">;
  /** Anything else plotly accepts; merged last (shallowly) so it wins. */
  extra?: Record<string, unknown>;
}

/** Fonts present on Debian (fonts-liberation: Arial metrics) and on readers' machines alike. */
export const FONT_FAMILY = 'Arial, "Liberation Sans", "DejaVu Sans", sans-serif';

function axisTitle(title?: string, unit?: string): string | undefined {
  if (!title) return unit ? `(${unit})` : undefined;
  return unit ? `${title} (${unit})` : title;
}

function axis(title: string | undefined, type: string | undefined): Record<string, unknown> {
  return {
    title: { text: title, font: { size: 15 }, standoff: 10 },
    type,
    showgrid: true,
    gridcolor: "#e6e6e6",
    zeroline: false,
    showline: true,
    linecolor: "#444",
    ticks: "outside",
    tickcolor: "#444",
    automargin: true,
  };
}

/**
 * A consistent plotly layout: white background, light grid, readable fonts (13 px ticks, 15 px axis
 * titles, 18 px title), axis titles with units, legend outside the data.
 */
export function layout(opts: LayoutOptions = {}): Record<string, unknown> {
  const legend = opts.legend ?? "right";
  const out: Record<string, unknown> = {
    title: opts.title ? { text: opts.title, x: 0.5, xanchor: "center", font: { size: 18 } } : undefined,
    font: { family: FONT_FAMILY, size: 13, color: "#222" },
    paper_bgcolor: "white",
    plot_bgcolor: "white",
    colorway: ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"],
    xaxis: axis(axisTitle(opts.xTitle, opts.xUnit), opts.xType),
    yaxis: axis(axisTitle(opts.yTitle, opts.yUnit), opts.yType),
    // Plotly's own rule otherwise: a legend once there are two traces.
    showlegend: legend === "none" ? false : undefined,
    legend: legend === "top"
      ? { orientation: "h", x: 0, y: 1.02, xanchor: "left", yanchor: "bottom" }
      : { bgcolor: "rgba(255,255,255,0.8)" },
    margin: { l: 70, r: 30, t: opts.title ? 60 : 30, b: 60 },
    width: opts.width,
    height: opts.height,
  };
  for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
  // `extra` overrides, but axis objects merge one level deep so that e.g. custom ticks keep the axis title
  const merged: Record<string, unknown> = { ...out };
  for (const [k, v] of Object.entries(opts.extra ?? {})) {
    const base = merged[k];
    const isObj = (x: unknown) => !!x && typeof x === "object" && !Array.isArray(x);
    merged[k] = /^[xy]axis\d*$/.test(k) && isObj(base) && isObj(v)
      ? { ...(base as object), ...(v as object) }
      : v;
  }
  if (legend === "inside") placeInside(merged, opts);
  return merged;
}

/**
 * A legend inside the plot (lib/plot/legend.ts) in a merged layout: its frame is the layout's own size and
 * margins, and a y range grown to make room goes onto the axis of the legend's panel (over `extra`'s).
 */
function placeInside(merged: Record<string, unknown>, opts: LayoutOptions): void {
  if (!opts.inside || !opts.width || !opts.height) {
    throw new Error('layout: legend "inside" needs `inside.data`, width and height');
  }
  const { data, ...avoid } = opts.inside;
  const p = legendInside(data, {
    width: opts.width,
    height: opts.height,
    margin: merged.margin as LegendFrame["margin"],
    xType: opts.xType === "log" ? "log" : "linear",
    yType: opts.yType === "log" ? "log" : "linear",
    ...avoid,
  });
  merged.legend = p.legend;
  if (p.yRange) merged.yaxis = { ...(merged.yaxis as object), range: p.yRange, autorange: false };
}

// ---------------------------------------------------------------------------------------------------------
// Tables

/** The part of an arquero table we use (duck-typed so this module does not load arquero). */
interface TableLike {
  columnNames(): string[];
  objects(opts?: { limit?: number }): Record<string, unknown>[];
  numRows(): number;
}

function isTableLike(x: unknown): x is TableLike {
  const t = x as TableLike;
  return !!t && typeof t.columnNames === "function" && typeof t.objects === "function" &&
    typeof t.numRows === "function";
}

export interface TableOptions {
  /** Rows shown at most (default 50); the rest is counted in a footer. */
  maxRows?: number;
  /** Significant digits of non-integer numbers (default 4). */
  digits?: number;
  /** Caption above the table. */
  caption?: string;
}

function formatCell(v: unknown, digits: number): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "number") {
    if (Number.isInteger(v)) return String(v);
    if (!Number.isFinite(v)) return String(v);
    return String(Number(v.toPrecision(digits)));
  }
  if (typeof v === "bigint") return String(v);
  if (v instanceof Date) return v.toISOString();
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

export function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** Build the text/html + text/plain bundle of a table. */
export function tableBundle(
  data: Record<string, unknown>[] | TableLike,
  opts: TableOptions = {},
): { "text/html": string; "text/plain": string } {
  const maxRows = opts.maxRows ?? 50, digits = opts.digits ?? 4;
  let columns: string[], rows: Record<string, unknown>[], total: number;
  if (isTableLike(data)) {
    columns = data.columnNames();
    rows = data.objects({ limit: maxRows });
    total = data.numRows();
  } else {
    total = data.length;
    rows = data.slice(0, maxRows);
    // Union of keys in first-seen order: rows need not all have every field.
    const seen = new Set<string>();
    for (const r of data) for (const k of Object.keys(r)) seen.add(k);
    columns = [...seen];
  }
  const cells = rows.map((r) => columns.map((c) => formatCell(r[c], digits)));
  const numeric = columns.map((c) => rows.some((r) => typeof r[c] === "number"));
  const footer = total > rows.length ? `${rows.length} of ${total} rows shown` : "";

  const align = (i: number) => numeric[i] ? ' style="text-align:right"' : ' style="text-align:left"';
  const html = [
    "<table>",
    opts.caption ? `<caption>${escapeHtml(opts.caption)}</caption>` : "",
    "<thead><tr>",
    ...columns.map((c, i) => `<th${align(i)}>${escapeHtml(c)}</th>`),
    "</tr></thead><tbody>",
    ...cells.map((row) => `<tr>${row.map((v, i) => `<td${align(i)}>${escapeHtml(v)}</td>`).join("")}</tr>`),
    "</tbody></table>",
    footer ? `<p><em>${footer}</em></p>` : "",
  ].join("");

  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i].length)));
  const line = (vals: string[]) =>
    vals.map((v, i) => numeric[i] ? v.padStart(widths[i]) : v.padEnd(widths[i])).join("  ").trimEnd();
  const text = [
    ...(opts.caption ? [opts.caption] : []),
    line(columns),
    widths.map((w) => "-".repeat(w)).join("  "),
    ...cells.map(line),
    ...(footer ? [`(${footer})`] : []),
  ].join("\n");
  return { "text/html": html, "text/plain": text };
}

/** Display a table (array of row objects or an arquero table) as HTML, with a text/plain twin. */
export async function showTable(
  data: Record<string, unknown>[] | TableLike,
  opts: TableOptions = {},
): Promise<void> {
  const bundle = tableBundle(data, opts);
  const j = jupyter();
  if (j) await display(j, bundle);
  else console.log(bundle["text/plain"]);
}
