/**
 * The registry of figures and tables: a builder is a plain function (records of the tables it reads) -> a
 * plotly figure or a markdown table, registered by name (the experiment files next to this one register
 * theirs; plot/figures/mod.ts imports them all). Notebooks and the exporter call the same builder, so
 * what a notebook shows is the exported file.
 */
import { readRecords } from "../../results/store.ts";
import { ANCHORS_DIR, RESULTS_DIR } from "../../paths.ts";
import { showFigure, showTable } from "../display.ts";
import type { PlotlyFigure } from "../export.ts";
import { type MarkdownTable, tableObjects } from "../../results/tables.ts";

// deno-lint-ignore no-explicit-any
export type Rec = Record<string, any>;
/** Result table name -> its records (append order). */
export type Records = Record<string, Rec[]>;

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
