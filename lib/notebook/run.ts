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
 * A notebook whose inputs did not change since its last successful run in the same output folder is not
 * executed again (`--force` runs it anyway): the inputs are the notebook itself, the scale, the records it
 * can read (every .jsonl of the results directories), the trained models' files (sizes and times), and
 * the library's sources and lock file. Ctrl-C stops the notebook running now, keeps the finished ones and
 * exits with 130.
 *
 * Library use (tests): `await runNotebook("notebooks/01_mamba_block.ipynb", { scale: "smoke" })`.
 */

import { DEBIAN_JUPYTER, denoKernelStatus, ensureDenoKernel } from "../setup.ts";
import { FIGURES_DIR, NOTEBOOKS_DIR, REPO_ROOT, RESULTS_DIR, RUNS_DIR } from "../paths.ts";
import { shareStylesOf } from "./styles.ts";
import { parentDir } from "../io/atomic.ts";

export type Scale = "smoke" | "small" | "gpu" | "large";
export const SCALES: readonly Scale[] = ["smoke", "small", "gpu", "large"];

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
  /** Execute even when nothing the notebook reads changed since its last run (default false). */
  force?: boolean;
}

export interface NotebookResult {
  notebook: string;
  ok: boolean;
  seconds: number;
  /** Written on success. */
  executed?: string;
  html?: string;
  /** Not executed: its inputs are those of its last successful run, whose outputs are kept. */
  unchanged?: boolean;
  /** On failure: which cell, its first lines, and the error; or what else went wrong. */
  error?: string;
}

/** nbclient's IOPub wait must be a number: a day stands for "no limit". */
const IOPUB_NO_LIMIT_S = 86_400;

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

/** The nbconvert running now, so that Ctrl-C can stop it. */
let running: Deno.ChildProcess | undefined;

async function nbconvert(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stderr: string }> {
  const child = new Deno.Command(DEBIAN_JUPYTER, {
    args: ["nbconvert", ...args],
    env,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  running = child;
  try {
    const out = await child.output();
    return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
  } finally {
    running = undefined;
  }
}

/** SHA-256 of the notebook's inputs (see the module's doc); undefined when they cannot be read. */
export async function notebookInputs(
  path: string,
  scale: string,
  env: Record<string, string>,
): Promise<string> {
  const parts: string[] = [`scale ${scale}`, `results ${env.MAMBABYTE_RESULTS ?? ""}`];
  const file = async (p: string) => {
    try {
      const bytes = await Deno.readFile(p);
      parts.push(`${p} ${hex(await crypto.subtle.digest("SHA-256", bytes))}`);
    } catch {
      parts.push(`${p} absent`);
    }
  };
  const walk = async (dir: string, keep: (name: string) => boolean, each: (p: string) => Promise<void>) => {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(dir));
    } catch {
      return;
    }
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const p = `${dir}/${e.name}`;
      if (e.isDirectory) await walk(p, keep, each);
      else if (keep(e.name)) await each(p);
    }
  };
  await file(path);
  await file(`${REPO_ROOT}deno.lock`);
  await walk(`${REPO_ROOT}lib`, (n) => n.endsWith(".ts"), file);
  for (const dir of new Set([RESULTS_DIR, env.MAMBABYTE_RESULTS ?? RESULTS_DIR])) {
    await walk(dir.replace(/\/$/, ""), (n) => n.endsWith(".jsonl"), file);
  }
  // trained models: their size and modification time stand for their bytes (hundreds of MB at gpu scale)
  await walk(RUNS_DIR, (n) => n.endsWith(".safetensors") || n === "tokenizer.json", async (p) => {
    const s = await Deno.stat(p);
    parts.push(`${p} ${s.size} ${s.mtime?.getTime()}`);
  });
  return hex(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(parts.join("\n"))));
}

function hex(buf: ArrayBuffer): string {
  return Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");
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
  const env = { SCALE: scale, NO_COLOR: "1", PYDEVD_DISABLE_FILE_VALIDATION: "1", ...opts.env };
  const stamp = `${outDir}/.inputs-${name}.txt`;
  const inputs = await notebookInputs(path, scale, env);
  const html = opts.html ?? true;
  if (!opts.force) {
    const before = await Deno.readTextFile(stamp).catch(() => "");
    const outputs = [`${outDir}/${name}.ipynb`, ...(html ? [`${outDir}/${name}.html`] : [])];
    const kept = (await Promise.all(outputs.map((p) => Deno.stat(p).then(() => true, () => false)))).every(
      Boolean,
    );
    if (before.trim() === inputs && kept) {
      return {
        notebook,
        ok: true,
        seconds: seconds(),
        unchanged: true,
        executed: outputs[0],
        html: html ? outputs[1] : undefined,
      };
    }
  }
  // Work in a temporary folder inside outDir (same file system, so the final renames are atomic). The files
  // keep the notebook's name there, since nbconvert uses it as the HTML page title.
  const work = await Deno.makeTempDir({ dir: outDir, prefix: `.run-${name}-` });
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
      // After a cell's execute_reply, nbclient waits only iopub_timeout (default 4 s) for the outputs still
      // in flight on IOPub, then drops them with a mere warning: a loaded machine, or a cell displaying
      // much, lost its last outputs (a showTable after a showFigure). Wait as long as a cell may run, and
      // fail rather than lose an output.
      `--ExecutePreprocessor.iopub_timeout=${timeout > 0 ? timeout : IOPUB_NO_LIMIT_S}`,
      "--ExecutePreprocessor.raise_on_iopub_timeout=True",
      "--output-dir",
      work,
      "--output",
      name,
      path,
    ], env);
    if (exec.code !== 0) return fail(await describeFailure(path, exec.code, exec.stderr));

    const result: NotebookResult = { notebook, ok: true, seconds: 0 };
    if (html) {
      const html = await nbconvert(["--to", "html", "--output-dir", work, `${work}/${name}.ipynb`], env);
      if (html.code !== 0) {
        return fail(
          `executed, but HTML conversion failed: ${await describeFailure(path, html.code, html.stderr)}`,
        );
      }
      // Jupyter's theme once (lib/notebook/styles.ts), in place before the page that links it: for the
      // default folders figures/notebooks/SCALE in figures/notebooks, shared by every scale; else beside it
      const up = opts.outDir === undefined;
      const css = await shareStylesOf(`${work}/${name}.html`, { up, cssDir: work });
      if (css) await Deno.rename(`${work}/${css}`, `${up ? parentDir(outDir) : outDir}/${css}`);
      await Deno.rename(`${work}/${name}.html`, `${outDir}/${name}.html`);
      result.html = `${outDir}/${name}.html`;
    }
    await Deno.rename(`${work}/${name}.ipynb`, `${outDir}/${name}.ipynb`);
    result.executed = `${outDir}/${name}.ipynb`;
    await Deno.writeTextFile(stamp, `${inputs}\n`);
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
    else if (a === "--force") opts.force = true;
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

const USAGE = `deno task notebooks [options] [NB.ipynb ...]
  executes the notebooks headlessly (default: every notebooks/*.ipynb) and renders each to HTML; a notebook
  whose inputs did not change since its last run is not executed again
  --scale S      smoke, small or gpu (default smoke)
  --timeout S    seconds per cell, -1 for none (default: smoke 600, small 3600, gpu none)
  --out DIR      where executed notebooks go (default figures/notebooks/SCALE)
  --no-html      do not render HTML
  --force        execute even when nothing the notebook reads changed`;

async function main(args: string[]): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(USAGE);
    return 0;
  }
  let opts: CliOptions;
  try {
    opts = parseArgs(args);
  } catch (e) {
    console.error(`notebooks: ${(e as Error).message} (deno task notebooks --help lists the options)`);
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
  let interrupted = false;
  const stop = () => {
    interrupted = true;
    try {
      running?.kill("SIGINT");
    } catch { /* already gone */ }
  };
  for (const sig of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(sig, stop);
  for (const [i, nb] of notebooks.entries()) {
    const label = `[${i + 1}/${notebooks.length}] ${basename(nb)}`;
    console.log(`${label} ...`);
    const r = await runNotebook(nb, { ...opts, scale });
    if (interrupted) {
      console.error(
        `notebooks: interrupted during ${basename(nb)} (${i} finished and kept); run again to continue: ` +
          "unchanged notebooks are not executed again",
      );
      return 130;
    }
    if (r.unchanged) {
      console.log(
        `${label} unchanged since its last run (--force runs it) -> ${relative(r.html ?? r.executed!)}`,
      );
    } else if (r.ok) {
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
