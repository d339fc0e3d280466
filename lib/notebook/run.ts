/**
 * Execute notebooks headlessly with Debian's Jupyter and render them to HTML.
 *
 *   deno run -A lib/notebook/run.ts [--scale smoke|small|gpu] [--timeout SECONDS] [--out DIR] [--no-html]
 *                                   [notebooks/NAME.ipynb ...]
 *   (deno task notebooks [...] runs the setup first, then this)
 *
 * Every notebooks/*.ipynb (or the ones named) is executed by `jupyter nbconvert --to notebook --execute`
 * with SCALE in the environment (default smoke), then converted with `--to html`. Results go to
 * figures/notebooks/SCALE/NAME.ipynb and NAME.html, replaced only when the run succeeds (written in a temporary
 * folder first). The kernel's cwd is the notebook's folder (Jupyter's rule), and Deno's kernel reads
 * deno.json from there upward. Exits 1 naming each failing notebook with its cell and error.
 *
 * Library use (tests): `await runNotebook("notebooks/01_mamba_block.ipynb", { scale: "smoke" })`.
 */

import { DEBIAN_JUPYTER, denoKernelStatus, ensureDenoKernel } from "../setup.ts";
import { FIGURES_DIR, NOTEBOOKS_DIR } from "../paths.ts";

export type Scale = "smoke" | "small" | "gpu";
export const SCALES: readonly Scale[] = ["smoke", "small", "gpu"];

export interface RunOptions {
  scale?: Scale;
  /** Output folder (default <repo>/figures/notebooks/SCALE: one report per scale). */
  outDir?: string;
  /** Per-cell timeout in seconds; -1 for none. Default: smoke 600, small 3600, gpu none. */
  timeoutS?: number;
  /** Also render HTML (default true). */
  html?: boolean;
  /** Extra environment for the kernel. */
  env?: Record<string, string>;
  /** Print a "still running" line this often (seconds; 0 = never). Default 60. */
  heartbeatS?: number;
}

export interface NotebookResult {
  notebook: string;
  ok: boolean;
  seconds: number;
  /** Written on success. */
  executed?: string;
  html?: string;
  /** On failure: which cell, its first lines, and the error; or what else went wrong. */
  error?: string;
}

/** Default per-cell timeout for a scale (seconds; -1 = none). */
export function defaultTimeout(scale: Scale): number {
  return scale === "smoke" ? 600 : scale === "small" ? 3600 : -1;
}

/** notebooks/*.ipynb of the repository, sorted by name. */
export async function listNotebooks(dir = NOTEBOOKS_DIR): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && e.name.endsWith(".ipynb") && !e.name.startsWith(".")) out.push(`${dir}/${e.name}`);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort();
}

/**
 * Is everything needed to execute notebooks here? Returns a message saying what to do, or undefined.
 * A stale Deno kernelspec (kernel.json holds an absolute deno path) is repaired, not reported.
 */
export async function notebookPrerequisites(): Promise<string | undefined> {
  const missing: string[] = [];
  for (const exe of [DEBIAN_JUPYTER, `${DEBIAN_JUPYTER}-nbconvert`]) {
    try {
      await Deno.stat(exe);
    } catch {
      missing.push(exe);
    }
  }
  if (missing.length) {
    return `${missing.join(" and ")} not found: Debian's jupyter-nbconvert and python3-nbclient are needed ` +
      "to execute notebooks. Run `deno task setup --with-notebooks` (as root; it installs them).";
  }
  if (!(await denoKernelStatus()).current) {
    try {
      await ensureDenoKernel({ quiet: true });
    } catch (e) {
      return `the Deno Jupyter kernel is not installed for ${Deno.execPath()} and installing it failed: ${
        e instanceof Error ? e.message : e
      }`;
    }
  }
  return undefined;
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

function absolute(path: string): string {
  return path.startsWith("/") ? path : `${Deno.cwd()}/${path}`;
}

/**
 * Drop repeated error lines: nbclient appends "Name: message" after the kernel's traceback, which already
 * starts with it (and Deno's kernel sometimes repeats it once more).
 */
function dedupeLines(text: string): string {
  const lines = text.split("\n").filter((l, i, a) => i === 0 || l !== a[i - 1]);
  while (lines.length > 1 && lines.slice(0, -1).includes(lines[lines.length - 1])) lines.pop();
  return lines.join("\n");
}

/** Code cells' sources of a notebook file, in order (for locating the failing cell). */
async function codeCells(path: string): Promise<{ index: number; source: string }[]> {
  try {
    const nb = JSON.parse(await Deno.readTextFile(path));
    const cells: { cell_type: string; source: string | string[] }[] = nb.cells ?? [];
    return cells.map((c, i) => ({ c, i })).filter(({ c }) => c.cell_type === "code").map(({ c, i }) => ({
      index: i + 1,
      source: Array.isArray(c.source) ? c.source.join("") : c.source,
    }));
  } catch {
    return [];
  }
}

const CELL_ERROR_MARK = "An error occurred while executing the following cell:";

/**
 * Turn nbconvert's stderr into a readable failure: for a cell error, the cell number (1-based, counting all
 * cells as Jupyter shows them), its first lines and the error; otherwise the end of stderr with a hint.
 */
export async function describeFailure(notebook: string, code: number, stderr: string): Promise<string> {
  const at = stderr.indexOf(CELL_ERROR_MARK);
  if (at >= 0) {
    const rest = stderr.slice(at + CELL_ERROR_MARK.length);
    // Layout: "\n------------------\n<source>\n------------------\n\n<error...>"
    const parts = rest.split(/\n-{18}\n/);
    const source = (parts[1] ?? "").trim();
    const error = dedupeLines(parts.slice(2).join("\n").trim());
    const cell = (await codeCells(notebook)).find((c) => c.source.trim() === source);
    const lines = source.split("\n");
    const excerpt = lines.slice(0, 6).map((l) => `    ${l}`).join("\n") +
      (lines.length > 6 ? `\n    ... (${lines.length - 6} more lines)` : "");
    return `cell ${cell ? cell.index : "?"} failed:\n${excerpt}\n${error}`;
  }
  const tail = stderr.trimEnd().split("\n").slice(-15).join("\n");
  let hint = "";
  if (/NoSuchKernel|No such kernel/.test(stderr)) hint = "\nhint: run `deno task setup --with-notebooks`";
  else if (/CellTimeoutError|A cell timed out/.test(stderr)) {
    hint = "\nhint: a cell hit the timeout (--timeout)";
  } else if (/DeadKernelError|Kernel died/.test(stderr)) {
    hint = "\nhint: the Deno kernel died (out of memory?)";
  }
  return `nbconvert exited with code ${code}:\n${tail}${hint}`;
}

async function nbconvert(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stderr: string }> {
  const out = await new Deno.Command(DEBIAN_JUPYTER, {
    args: ["nbconvert", ...args],
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

/** Execute one notebook (and render its HTML). Never throws for a notebook failure: see `ok` / `error`. */
export async function runNotebook(notebook: string, opts: RunOptions = {}): Promise<NotebookResult> {
  const t0 = performance.now();
  const path = absolute(notebook);
  const name = basename(path).replace(/\.ipynb$/, "");
  const scale = opts.scale ?? "smoke";
  const outDir = absolute(opts.outDir ?? `${FIGURES_DIR}/notebooks/${scale}`);
  const timeout = opts.timeoutS ?? defaultTimeout(scale);
  const seconds = () => (performance.now() - t0) / 1000;
  const fail = (error: string): NotebookResult => ({ notebook, ok: false, seconds: seconds(), error });

  if (!SCALES.includes(scale)) return fail(`unknown scale '${scale}' (expected ${SCALES.join(", ")})`);
  try {
    await Deno.stat(path);
  } catch {
    return fail(`${path} does not exist`);
  }
  const missing = await notebookPrerequisites();
  if (missing) return fail(missing);

  await Deno.mkdir(outDir, { recursive: true });
  // Work in a temporary folder inside outDir (same file system, so the final renames are atomic). The files
  // keep the notebook's name there, since nbconvert uses it as the HTML page title.
  const work = await Deno.makeTempDir({ dir: outDir, prefix: `.run-${name}-` });
  const env = { SCALE: scale, NO_COLOR: "1", PYDEVD_DISABLE_FILE_VALIDATION: "1", ...opts.env };
  const heartbeatS = opts.heartbeatS ?? 60;
  const timer = heartbeatS > 0
    ? setInterval(
      () => console.log(`  ... ${name} still running (${Math.round(seconds())} s)`),
      heartbeatS * 1000,
    )
    : undefined;
  try {
    const exec = await nbconvert([
      "--to",
      "notebook",
      "--execute",
      `--ExecutePreprocessor.timeout=${timeout}`,
      "--ExecutePreprocessor.startup_timeout=120",
      "--output-dir",
      work,
      "--output",
      name,
      path,
    ], env);
    if (exec.code !== 0) return fail(await describeFailure(path, exec.code, exec.stderr));

    const result: NotebookResult = { notebook, ok: true, seconds: 0 };
    if (opts.html ?? true) {
      const html = await nbconvert(["--to", "html", "--output-dir", work, `${work}/${name}.ipynb`], env);
      if (html.code !== 0) {
        return fail(
          `executed, but HTML conversion failed: ${await describeFailure(path, html.code, html.stderr)}`,
        );
      }
      await Deno.rename(`${work}/${name}.html`, `${outDir}/${name}.html`);
      result.html = `${outDir}/${name}.html`;
    }
    await Deno.rename(`${work}/${name}.ipynb`, `${outDir}/${name}.ipynb`);
    result.executed = `${outDir}/${name}.ipynb`;
    result.seconds = seconds();
    return result;
  } finally {
    if (timer !== undefined) clearInterval(timer);
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

function relative(path: string): string {
  const cwd = Deno.cwd() + "/";
  return path.startsWith(cwd) ? path.slice(cwd.length) : path;
}

interface CliOptions extends RunOptions {
  notebooks: string[];
}

function parseArgs(args: string[]): CliOptions {
  const opts: CliOptions = { notebooks: [] };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = () => {
      const v = args[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === "--scale") opts.scale = value() as Scale;
    else if (a.startsWith("--scale=")) opts.scale = a.slice(8) as Scale;
    else if (a === "--timeout") opts.timeoutS = Number(value());
    else if (a === "--out") opts.outDir = value();
    else if (a === "--no-html") opts.html = false;
    else if (a.startsWith("-")) throw new Error(`unknown option ${a}`);
    else opts.notebooks.push(a);
  }
  if (opts.scale && !SCALES.includes(opts.scale)) {
    throw new Error(`unknown scale '${opts.scale}' (expected ${SCALES.join(", ")})`);
  }
  if (opts.timeoutS !== undefined && !Number.isFinite(opts.timeoutS)) {
    throw new Error("--timeout needs a number");
  }
  return opts;
}

async function main(args: string[]): Promise<number> {
  let opts: CliOptions;
  try {
    opts = parseArgs(args);
  } catch (e) {
    console.error(`notebooks: ${(e as Error).message}`);
    console.error(
      "usage: lib/notebook/run.ts [--scale smoke|small|gpu] [--timeout S] [--out DIR] [--no-html] [NB.ipynb ...]",
    );
    return 2;
  }
  const scale = opts.scale ?? "smoke";
  const notebooks = opts.notebooks.length ? opts.notebooks : await listNotebooks();
  if (notebooks.length === 0) {
    console.log("notebooks: no notebooks/*.ipynb to run");
    return 0;
  }
  const problem = await notebookPrerequisites();
  if (problem) {
    console.error(`notebooks: ${problem}`);
    return 1;
  }
  console.log(`notebooks: executing ${notebooks.length} at SCALE=${scale}`);
  const failures: NotebookResult[] = [];
  const t0 = performance.now();
  for (const [i, nb] of notebooks.entries()) {
    const label = `[${i + 1}/${notebooks.length}] ${basename(nb)}`;
    console.log(`${label} ...`);
    const r = await runNotebook(nb, { ...opts, scale });
    if (r.ok) {
      console.log(`${label} ok (${r.seconds.toFixed(1)} s)${r.html ? ` -> ${relative(r.html)}` : ""}`);
    } else {
      console.log(`${label} FAILED (${r.seconds.toFixed(1)} s)\n${indent(r.error ?? "")}`);
      failures.push(r);
    }
  }
  const total = ((performance.now() - t0) / 1000).toFixed(1);
  if (failures.length) {
    console.error(
      `notebooks: ${failures.length} of ${notebooks.length} failed (${total} s): ` +
        failures.map((f) => basename(f.notebook)).join(", "),
    );
    return 1;
  }
  console.log(`notebooks: all ${notebooks.length} ok (${total} s)`);
  return 0;
}

function indent(text: string): string {
  return text.split("\n").map((l) => `    ${l}`).join("\n");
}

if (import.meta.main) Deno.exit(await main(Deno.args));
