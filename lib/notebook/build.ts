/**
 * Write Jupyter notebooks (.ipynb, nbformat 4.5) for Deno's kernel from a TypeScript description, so a
 * notebook can be authored as readable source and regenerated:
 *
 *   // notebooks/src/01_mamba_block.ts
 *   import { code, md } from "./build.ts";
 *   export default [
 *     md`# The Mamba block`,
 *     code`import { showFigure } from "./plot/display.ts";
 *   const SCALE = Deno.env.get("SCALE") ?? "smoke";`,
 *   ];
 *
 *   deno run -A lib/notebook/build.ts notebooks/src/01_mamba_block.ts   # -> notebooks/01_mamba_block.ipynb
 *   deno run -A lib/notebook/build.ts --check notebooks/src/*.ts          # exit 1 if an .ipynb is stale
 *
 * Code in a cell runs with the notebook's folder as cwd (Jupyter's rule), so relative imports in cells are
 * relative to notebooks/, not to notebooks/src/. Output is deterministic (cell ids from positions, no
 * outputs, no execution counts), so regenerating an unchanged source changes nothing in git.
 */

export interface Cell {
  cell_type: "markdown" | "code";
  source: string;
}

/** Dedent a template literal: drop a leading newline and the common indentation of non-blank lines. */
function dedent(text: string): string {
  const lines = text.replace(/^\n/, "").replace(/\s+$/, "").split("\n");
  const indents = lines.filter((l) => l.trim()).map((l) => l.match(/^ */)![0].length);
  const cut = indents.length ? Math.min(...indents) : 0;
  return lines.map((l) => l.slice(cut)).join("\n");
}

function joinTemplate(strings: TemplateStringsArray | string, values: unknown[]): string {
  if (typeof strings === "string") return strings;
  // The raw text keeps backslashes in code as written (regexes, "\n" in strings); only the two escapes needed
  // to write a template literal inside the tag, \` and \${, are undone.
  const raw = strings.raw.map((s) => s.replace(/\\`/g, "`").replace(/\\\$\{/g, "${"));
  return raw.reduce((acc, s, i) => acc + s + (i < values.length ? String(values[i]) : ""), "");
}

/** A markdown cell: md`# Title` or md("text"). */
export function md(strings: TemplateStringsArray | string, ...values: unknown[]): Cell {
  return { cell_type: "markdown", source: dedent(joinTemplate(strings, values)) };
}

/**
 * A code cell: code`const x = 1;` or code("..."). The tagged form keeps backslashes as written; inside it
 * write \` for a backtick and \${ for a placeholder of the cell's own template literals (`${expr}` is
 * substituted at build time).
 */
export function code(strings: TemplateStringsArray | string, ...values: unknown[]): Cell {
  return { cell_type: "code", source: dedent(joinTemplate(strings, values)) };
}

/** nbformat stores source as a list of lines, each but the last ending in "\n". */
function sourceLines(source: string): string[] {
  if (source === "") return [];
  const lines = source.split("\n");
  return lines.map((l, i) => (i < lines.length - 1 ? l + "\n" : l));
}

/** Kernel metadata for Deno's Jupyter kernel (`deno jupyter --install`). */
export const DENO_KERNELSPEC = { name: "deno", display_name: "Deno", language: "typescript" } as const;
export const TYPESCRIPT_LANGUAGE_INFO = {
  name: "typescript",
  file_extension: ".ts",
  mimetype: "text/x.typescript",
  pygments_lexer: "typescript",
  codemirror_mode: "typescript",
  nbconvert_exporter: "script",
} as const;

/** The notebook JSON object for a list of cells. */
export function buildNotebook(cells: Cell[]): Record<string, unknown> {
  return {
    cells: cells.map((c, i) => {
      const id = `cell-${String(i + 1).padStart(3, "0")}`;
      const base = { cell_type: c.cell_type, id, metadata: {}, source: sourceLines(c.source) };
      return c.cell_type === "code" ? { ...base, execution_count: null, outputs: [] } : base;
    }),
    metadata: { kernelspec: { ...DENO_KERNELSPEC }, language_info: { ...TYPESCRIPT_LANGUAGE_INFO } },
    nbformat: 4,
    nbformat_minor: 5,
  };
}

/** Serialise like Jupyter does (1-space indent, trailing newline), for small diffs against saved files. */
export function notebookText(cells: Cell[]): string {
  return JSON.stringify(buildNotebook(cells), null, 1) + "\n";
}

/** Write a notebook atomically (temporary name in the same folder, then rename). */
export async function writeNotebook(path: string, cells: Cell[]): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}`;
  try {
    await Deno.writeTextFile(tmp, notebookText(cells));
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/** notebooks/src/NAME.ts -> notebooks/NAME.ipynb (the folder above src/). */
export function notebookPathFor(srcPath: string): string {
  const m = srcPath.match(/^(.*?)(?:\/)?src\/([^/]+)\.ts$/);
  if (!m) throw new Error(`${srcPath}: notebook sources live in a src/ folder and end in .ts`);
  return `${m[1] || "."}/${m[2]}.ipynb`;
}

/** Load a source module's default export (a Cell[]), validating it. */
export async function loadCells(srcPath: string): Promise<Cell[]> {
  const abs = srcPath.startsWith("/") ? srcPath : `${Deno.cwd()}/${srcPath}`;
  const mod = await import(new URL(`file://${abs}`).href);
  const cells = mod.default;
  if (
    !Array.isArray(cells) || !cells.every((c) => c && (c.cell_type === "markdown" || c.cell_type === "code"))
  ) {
    throw new Error(`${srcPath}: the default export must be an array of md\`...\` / code\`...\` cells`);
  }
  return cells;
}

async function main(args: string[]): Promise<number> {
  const check = args.includes("--check");
  const srcs = args.filter((a) => a !== "--check");
  if (srcs.length === 0) {
    console.error("usage: deno run -A lib/notebook/build.ts [--check] notebooks/src/NAME.ts ...");
    return 2;
  }
  let stale = 0;
  for (const src of srcs) {
    const out = notebookPathFor(src);
    const text = notebookText(await loadCells(src));
    if (check) {
      const current = await Deno.readTextFile(out).catch(() => "");
      if (current !== text) {
        console.error(`${out} is out of date with ${src} (run: deno run -A lib/notebook/build.ts ${src})`);
        stale++;
      }
    } else {
      await writeNotebook(out, await loadCells(src));
      console.log(`${src} -> ${out}`);
    }
  }
  return stale ? 1 : 0;
}

// Not a top-level await: notebook sources import this module, and importing a module whose evaluation is
// still waiting (on that very import) would never finish.
if (import.meta.main) main(Deno.args).then((code) => Deno.exit(code));
