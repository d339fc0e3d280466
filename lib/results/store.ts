/**
 * The results store: every experiment appends one JSON record per run to data/results/<table>.jsonl,
 * with the provenance needed to trust and reproduce it. Tables and figures are computed from these
 * records only; no number is typed by hand.
 */
import { backendInfo } from "../backend.ts";
import { checkWritableDir, parentDir, pathExists, writeAll } from "../io/atomic.ts";
import { describeFsError, FileWriteError, InputError } from "../io/errors.ts";
import { REPO_ROOT, RESULTS_DIR } from "../paths.ts";

export { RESULTS_DIR };

export interface Provenance {
  /**
   * git commit of the code that produced the record ("+dirty" when the code had uncommitted changes;
   * changes under data/, the records themselves among them, do not count).
   */
  commit: string;
  backend: string;
  device: string;
  /** ISO time the record was written. */
  time: string;
  deno: string;
  tfjs: string;
  host: { cores: number; os: string };
}

/** Reads `git rev-parse HEAD` (and whether the tree is dirty) once per process. */
let commitCache: string | undefined;
export function gitCommit(): string {
  if (commitCache) return commitCache;
  // a copy of the tree without .git (e.g. on the GPU machine) passes the commit in
  const given = Deno.env.get("MAMBABYTE_COMMIT");
  if (given) return (commitCache = given);
  const run = (args: string[]) => {
    try {
      const out = new Deno.Command("git", { args, stdout: "piped", stderr: "null" }).outputSync();
      return out.success ? new TextDecoder().decode(out.stdout).trim() : undefined;
    } catch {
      return undefined;
    }
  };
  const head = run(["-C", REPO_ROOT, "rev-parse", "--short=12", "HEAD"]);
  // records appended by earlier runs of the same session change data/results, not the code
  const dirty = run([
    "-C",
    REPO_ROOT,
    "status",
    "--porcelain",
    "--untracked-files=no",
    "--",
    ".",
    ":(exclude)data",
  ]);
  commitCache = head ? head + (dirty ? "+dirty" : "") : "unknown";
  return commitCache;
}

export async function provenance(): Promise<Provenance> {
  const tf = await import("@tensorflow/tfjs");
  const info = backendInfo();
  return {
    commit: gitCommit(),
    backend: info?.backend ?? tf.getBackend(),
    device: info?.device ?? "unknown",
    time: new Date().toISOString(),
    deno: Deno.version.deno,
    tfjs: tf.version.tfjs,
    host: { cores: navigator.hardwareConcurrency, os: Deno.build.os },
  };
}

/**
 * The provenance of a benchmark line from code outside TF.js (the native engine, raw WebGPU): `backend` names
 * what ran ("engine webgpu"), `device` where.
 */
export function benchProvenance(backend: string, device: string): Omit<Provenance, "tfjs"> {
  return {
    commit: gitCommit(),
    backend,
    device,
    time: new Date().toISOString(),
    deno: Deno.version.deno,
    host: { cores: navigator.hardwareConcurrency, os: Deno.build.os },
  };
}

/** Appends a benchmark line with benchProvenance to the JSONL file `path` (appendJsonLine: locked, synced). */
export async function appendBenchLine(
  path: string,
  line: Record<string, unknown>,
  backend: string,
  device: string,
): Promise<void> {
  await appendJsonLine(path, { ...line, provenance: benchProvenance(backend, device) });
}

/** The file of a table in a results directory. */
export function tablePath(table: string, dir: string = RESULTS_DIR): string {
  return `${dir}${dir.endsWith("/") ? "" : "/"}${table}.jsonl`;
}

/** The record with its provenance (what `appendRecord` writes). */
export async function withProvenance<T extends Record<string, unknown>>(
  record: T,
): Promise<T & { provenance: Provenance }> {
  return { ...record, provenance: await provenance() };
}

/**
 * Appends one record to data/results/<table>.jsonl (or `dir`), adding its provenance. Returns the path.
 */
export async function appendRecord(
  table: string,
  record: Record<string, unknown>,
  dir: string = RESULTS_DIR,
): Promise<string> {
  const path = tablePath(table, dir);
  await makeResultsDir(path);
  await appendJsonLine(path, await withProvenance(record));
  return path;
}

async function makeResultsDir(path: string): Promise<void> {
  const dir = parentDir(path);
  try {
    await Deno.mkdir(dir, { recursive: true });
  } catch (e) {
    throw new FileWriteError(path, `${dir}: cannot create the results directory: ${describeFsError(e)}`, {
      cause: e,
    });
  }
}

/**
 * Appends `value` as one JSON line. The file is locked (flock) while appending, so concurrent writers
 * never interleave; a torn last line (a writer killed mid-append) is left on its own line (reported, and
 * skipped by readers) instead of swallowing this record. The line is written with O_APPEND and synced.
 */
export async function appendJsonLine(path: string, value: unknown): Promise<void> {
  const line = new TextEncoder().encode(JSON.stringify(value) + "\n");
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true, append: true, create: true });
  } catch (e) {
    throw new FileWriteError(path, `${path}: cannot append a record: ${describeFsError(e)}`, { cause: e });
  }
  try {
    await file.lock(true).catch(() => {}); // best effort: some file systems cannot lock
    const size = (await file.stat()).size;
    let prefix = new Uint8Array(0);
    if (size > 0) {
      const last = new Uint8Array(1);
      await file.seek(size - 1, Deno.SeekMode.Start);
      if ((await file.read(last)) === 1 && last[0] !== 0x0a) {
        prefix = new Uint8Array([0x0a]);
        const lines = (await Deno.readTextFile(path)).split("\n").length;
        console.error(
          `${path}:${lines}: the last line is torn (an interrupted write); it is kept on its own line, which readers skip`,
        );
      }
    }
    const bytes = new Uint8Array(prefix.length + line.length);
    bytes.set(prefix);
    bytes.set(line, prefix.length);
    await writeAll(file, bytes);
    await file.syncData();
  } catch (e) {
    if (e instanceof FileWriteError) throw e;
    throw new FileWriteError(path, `${path}: cannot append a record: ${describeFsError(e)}`, { cause: e });
  } finally {
    try {
      await file.unlock();
    } catch { /* not locked */ }
    file.close();
  }
}

/**
 * Checks, before a long job, that a record can be appended to `table` in `dir` (creating the directory):
 * a `FileWriteError` naming the directory or file otherwise, with `hint` (what to do) appended.
 */
export async function checkRecordsWritable(table: string, dir: string = RESULTS_DIR, hint?: string) {
  const path = tablePath(table, dir);
  const tail = hint ? `; ${hint}` : "";
  try {
    await makeResultsDir(path);
  } catch (e) {
    throw new FileWriteError(path, `${(e as Error).message}${tail}`, { cause: e });
  }
  if (await pathExists(path)) {
    try {
      (await Deno.open(path, { append: true })).close();
    } catch (e) {
      throw new FileWriteError(path, `${path}: cannot append to it: ${describeFsError(e)}${tail}`, {
        cause: e,
      });
    }
  } else {
    await checkWritableDir(parentDir(path), "results directory", hint);
  }
  return path;
}

/**
 * All complete records of a table. A line that is not a JSON object (a torn write, or damage) is reported
 * with its file and line number and skipped; it never merges with or hides the records around it.
 */
export async function readRecords<T = Record<string, unknown>>(
  table: string,
  dir: string = RESULTS_DIR,
): Promise<T[]> {
  const path = tablePath(table, dir);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw new InputError(path, undefined, `${path}: cannot read the records: ${describeFsError(e)}`, {
      cause: e,
    });
  }
  const out: T[] = [];
  text.split("\n").forEach((line, i) => {
    if (!line.trim()) return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch { /* reported below */ }
    if (value && typeof value === "object" && !Array.isArray(value)) out.push(value as T);
    else console.error(`${path}:${i + 1}: skipping a torn or unparsable line (not a JSON record)`);
  });
  return out;
}
