/**
 * The command line shared by the evaluation stages (extrapolation.ts, noise.ts): evaluate the recorded
 * runs of a scale and append records.
 *   deno run -A lib/eval/NAME.ts [--scale S] [--results DIR] [--runs-dir DIR] [--domain D] [--kinds a,b] [--force] ...
 */
import { initBackend } from "../backend.ts";
import { readRecords, RESULTS_DIR } from "../results/store.ts";
import type { RunLike } from "./extrapolation.ts";

export interface StageCliOptions {
  scale: string;
  resultsDir: string;
  runsDir?: string;
  domain?: string;
  kinds?: string[];
  force: boolean;
}

/**
 * Parses the common flags, starts the backend and runs `stage` on the runs recorded in the results
 * directory. `extraUsage` lists a stage's own flags; `flag` reads them.
 */
export async function runStageCli(
  table: string,
  extraUsage: string,
  stage: (
    runs: RunLike[],
    opts: StageCliOptions,
    flag: (name: string) => string | undefined,
  ) => Promise<unknown[]>,
): Promise<void> {
  const args = Deno.args;
  const flag = (name: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  if (args.includes("--help")) {
    console.log(
      `deno run -A lib/eval/${table}.ts [--scale smoke|small|gpu] [--results DIR] [--runs-dir DIR] [--domain D] [--kinds a,b] [--force]${extraUsage}`,
    );
    Deno.exit(0);
  }
  await initBackend({});
  const resultsDir = flag("results") ?? RESULTS_DIR;
  const runs = await readRecords<RunLike>("runs", resultsDir);
  const recs = await stage(runs, {
    scale: flag("scale") ?? Deno.env.get("SCALE") ?? "small",
    resultsDir,
    runsDir: flag("runs-dir"),
    domain: flag("domain"),
    kinds: flag("kinds")?.split(","),
    force: args.includes("--force"),
  }, flag);
  console.log(`${recs.length} ${table} records appended to ${resultsDir}/${table}.jsonl`);
}
