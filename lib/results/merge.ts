/**
 * Merges records brought back from another machine (the GPU machine's runs.jsonl, extrapolation.jsonl, ...)
 * into data/results/<table>.jsonl. A record already present (same JSON text) is skipped, so merging the
 * same file twice changes nothing; the others are appended in their order, provenance untouched.
 *   deno run -A lib/results/merge.ts TABLE FILE.jsonl [FILE.jsonl ...] [--results DIR]
 */
import { RESULTS_DIR } from "../paths.ts";

/** Appends the records of `files` missing from `dir`/`table`.jsonl; returns how many were added and skipped. */
export async function mergeRecords(
  table: string,
  files: string[],
  dir = RESULTS_DIR,
): Promise<{ added: number; skipped: number }> {
  const path = `${dir}${dir.endsWith("/") ? "" : "/"}${table}.jsonl`;
  let existing = "";
  try {
    existing = await Deno.readTextFile(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  // canonical form: parsed and re-serialised, so whitespace differences do not count as new records
  const seen = new Set(
    existing.split("\n").filter((l) => l.trim()).map((l) => JSON.stringify(JSON.parse(l))),
  );
  const lines: string[] = [];
  let skipped = 0;
  for (const file of files) {
    const text = await Deno.readTextFile(file);
    for (const [i, line] of text.split("\n").entries()) {
      if (!line.trim()) continue;
      let rec: unknown;
      try {
        rec = JSON.parse(line);
      } catch {
        throw new Error(`${file}:${i + 1}: not a JSON record (a torn write?): ${line.slice(0, 80)}`);
      }
      if (typeof rec !== "object" || rec === null || !("provenance" in rec)) {
        throw new Error(`${file}:${i + 1}: a record needs its provenance (commit, backend, device, time)`);
      }
      const key = JSON.stringify(rec);
      if (seen.has(key)) {
        skipped++;
        continue;
      }
      seen.add(key);
      lines.push(key);
    }
  }
  if (lines.length) {
    const sep = existing && !existing.endsWith("\n") ? "\n" : "";
    await Deno.writeTextFile(path, sep + lines.join("\n") + "\n", { append: true });
  }
  return { added: lines.length, skipped };
}

if (import.meta.main) {
  const args = [...Deno.args];
  const i = args.indexOf("--results");
  const dir = i >= 0 ? args.splice(i, 2)[1] : RESULTS_DIR;
  const [table, ...files] = args;
  if (!table || !files.length || !/^[a-z_]+$/.test(table)) {
    console.error(
      "usage: deno run -A lib/results/merge.ts TABLE FILE.jsonl [FILE.jsonl ...] [--results DIR]",
    );
    Deno.exit(2);
  }
  try {
    const { added, skipped } = await mergeRecords(table, files, dir);
    console.log(`${table}: ${added} records added, ${skipped} already present`);
  } catch (e) {
    console.error(`merge: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
