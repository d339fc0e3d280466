/**
 * The results store: every experiment appends one JSON record per run to data/results/<table>.jsonl,
 * with the provenance needed to trust and reproduce it. Tables and figures are computed from these
 * records only; no number is typed by hand.
 */
import { backendInfo } from "../backend.ts";
import { REPO_ROOT, RESULTS_DIR } from "../paths.ts";

export { RESULTS_DIR };

export interface Provenance {
  /** git commit of the code that produced the record ("+dirty" when the tree had changes). */
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
  const dirty = run(["-C", REPO_ROOT, "status", "--porcelain", "--untracked-files=no"]);
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
 * Appends one record to data/results/<table>.jsonl (or `path`). Appending one line with O_APPEND keeps
 * earlier lines intact even if the process dies mid-way; a torn last line is skipped by `readRecords`.
 */
export async function appendRecord(
  table: string,
  record: Record<string, unknown>,
  dir = RESULTS_DIR,
): Promise<string> {
  const path = `${dir}${dir.endsWith("/") ? "" : "/"}${table}.jsonl`;
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  const full = { ...record, provenance: await provenance() };
  await Deno.writeTextFile(path, JSON.stringify(full) + "\n", { append: true });
  return path;
}

/** All complete records of a table (an unparsable line, e.g. a torn final write, is reported and skipped). */
export async function readRecords<T = Record<string, unknown>>(
  table: string,
  dir = RESULTS_DIR,
): Promise<T[]> {
  const path = `${dir}${dir.endsWith("/") ? "" : "/"}${table}.jsonl`;
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  const out: T[] = [];
  text.split("\n").forEach((line, i) => {
    if (!line.trim()) return;
    try {
      out.push(JSON.parse(line));
    } catch {
      console.error(`${path}:${i + 1}: skipping an unparsable record`);
    }
  });
  return out;
}
