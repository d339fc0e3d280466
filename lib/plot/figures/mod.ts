/**
 * Every figure and table of the project, built from data/results alone (no training), by name: the
 * registry (registry.ts) with every experiment's builders registered (one file per experiment here), and
 * the exporter.
 *
 *   deno task figures [--results DIR] [--out DIR] [--scale S] [--only a,b] [--list]
 *       -> OUT/NAME.svg + OUT/NAME.png for figures, OUT/NAME.md for tables, OUT/index.md   (OUT: figures/)
 *   await showRegistered("extrapolation_length", { resultsDir: "../data/results", scale: SCALE })   // notebooks
 *
 * A builder is a plain function (records of the tables it reads) -> a plotly figure or a table. Notebooks
 * and the exporter call the same builder, so what a notebook shows is the exported file. To add a figure,
 * `registerFigure({ name, description, reads, build })`; `reads` names result tables (paths under the
 * results directory without .jsonl, e.g. "extrapolation" or "bench/sweep/scan"). A builder returns
 * undefined when there is nothing to draw from its records, and the exporter then says so and writes nothing.
 *
 * Scale: records of experiments carry `scale`; a builder shows one scale: the one asked for, else the
 * largest one recorded (large > gpu > small > smoke; the noise figures: the largest that compares MambaByte
 * with the subword Mamba, noiseScale). The scale is in every title.
 *
 * Tables are reshaped with arquero and written as markdown; statistics (means, deviations, extents) use
 * d3-array.
 */
import { atomicWriteFile } from "../../io/atomic.ts";
import { ANCHORS_DIR, FIGURES_DIR, RESULTS_DIR } from "../../paths.ts";
import { closeRenderer, type PlotlyFigure, renderFigure } from "../export.ts";
import {
  type BuildOptions,
  type FigureBuilder,
  figureBuilder,
  figureBuilders,
  loadRecords,
  type Rec,
} from "./registry.ts";
import "./extrapolation.ts";
import "./noise.ts";
import "./scans.ts";
import "./decode.ts";
import "./compute_matched.ts";
import "./ladder.ts";
import { tableMarkdown } from "../../results/tables.ts";

export * from "./registry.ts";
export { chooseScale, latestBy } from "./common.ts";
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
        const reason = `nothing to draw from ${b.reads.map((t) => `${t}.jsonl`).join(", ")}${
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
