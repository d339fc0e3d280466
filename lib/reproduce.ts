/**
 * `deno task reproduce [--scale S]`: data -> the compute-matched training plan -> evaluations on the
 * trained models (extrapolation, noise) -> tables and figures -> every notebook executed headlessly and
 * rendered to HTML (figures/notebooks/). Each stage skips work already done: recorded runs are not
 * re-trained, an interrupted run resumes from its checkpoint, and the data step is a no-op when the
 * corpus matches its manifest. Progress is printed throughout (stage, run i/N, elapsed, ETA).
 */
import { readPlan, planRuns, isRecorded, recordedRuns } from "./train/plan.ts";
import { REPO_ROOT, runExperiment, type RunRecord } from "./train/experiment.ts";
import { formatSeconds } from "./train/trainer.ts";
import { computeMatchedTable, latestRuns, matchedRows, tableMarkdown } from "./results/compute_matched.ts";
import { RESULTS_DIR } from "./results/store.ts";
import { pathExists } from "./io/atomic.ts";

export interface ReproduceOptions {
  scale: string;
  /** Results directory (default data/results). */
  resultsDir?: string;
  /** Run directories (default data/checkpoints/runs). */
  runsDir?: string;
  /** Restrict to some domains / plan entries. */
  domains?: string[];
  models?: string[];
  /** Skip stages. */
  skipData?: boolean;
  skipEvaluations?: boolean;
  skipFigures?: boolean;
  skipNotebooks?: boolean;
}

/** A stage hook run after training (extrapolation / noise evaluations register here). */
export type EvaluationStage = (runs: RunRecord[], opts: ReproduceOptions) => Promise<void>;
const EVALUATIONS: { name: string; run: EvaluationStage }[] = [];
export function registerEvaluation(name: string, run: EvaluationStage): void {
  EVALUATIONS.push({ name, run });
}

// Each evaluation runs in its own process: a model that exhausts the wasm heap (4 GiB) aborts that process
// only, not the stages after it. Runs already evaluated are skipped by the stage itself.
for (const name of ["extrapolation", "noise"]) {
  registerEvaluation(name, async (_runs, o) => {
    const args = ["run", "-A", `lib/eval/${name}.ts`, "--scale", o.scale];
    if (o.resultsDir) args.push("--results", o.resultsDir);
    if (o.runsDir) args.push("--runs-dir", o.runsDir);
    if (!(await subprocess(name, args))) throw new Error(`the ${name} stage failed (its output is above)`);
  });
}

async function subprocess(what: string, args: string[], env: Record<string, string> = {}): Promise<boolean> {
  const p = new Deno.Command(Deno.execPath(), { args, env, stdout: "inherit", stderr: "inherit", cwd: REPO_ROOT }).spawn();
  const { code } = await p.status;
  if (code !== 0) console.error(`reproduce: ${what} failed (exit ${code})`);
  return code === 0;
}

export async function reproduce(opts: ReproduceOptions): Promise<{ runs: RunRecord[]; table: string; failures: string[] }> {
  const t0 = performance.now();
  const elapsed = () => formatSeconds((performance.now() - t0) / 1000);
  const stage = (i: number, s: string) => console.error(`\n== [${i}/5] ${s}  (elapsed ${elapsed()})`);
  const failures: string[] = [];
  const resultsDir = opts.resultsDir ?? RESULTS_DIR;

  stage(1, "data");
  if (opts.scale === "smoke" || opts.skipData) {
    console.error("using the tracked sample in data/samples (no download)");
  } else if (!(await subprocess("deno task data", ["run", "-A", "lib/data/corpora/main.ts"]))) {
    console.error("reproduce: continuing with whatever data is present (the tracked sample if the corpus is missing)");
  }

  stage(2, "training plan (compute-matched)");
  const plan = await readPlan("compute-matched");
  const specs = planRuns(plan, opts.scale, { domains: opts.domains, models: opts.models });
  const done = await recordedRuns(resultsDir);
  const todo = specs.filter((s) => !isRecorded(s, done));
  console.error(`${specs.length} runs in the plan at scale ${opts.scale}; ${specs.length - todo.length} already recorded, ${todo.length} to run`);
  const tTrain = performance.now();
  for (const [i, spec] of todo.entries()) {
    const eta = i ? formatSeconds((performance.now() - tTrain) / 1000 / i * (todo.length - i)) : "?";
    console.error(`\n-- run ${i + 1}/${todo.length}: ${spec.name}  (elapsed ${elapsed()}, ETA ${eta})`);
    try {
      await runExperiment(spec, { resultsDir, runsDir: opts.runsDir, resume: true, quiet: false });
    } catch (e) {
      failures.push(`${spec.name}: ${(e as Error).message}`);
      console.error(`run ${spec.name} failed: ${(e as Error).message}`);
    }
  }
  const runs = latestRuns(await recordedRuns(resultsDir), opts.scale, plan.name)
    .filter((r) => specs.some((s) => s.name === r.run));
  const table = runs.length ? tableMarkdown(computeMatchedTable(matchedRows(runs), opts.scale)) : "(no runs recorded)\n";
  console.log(`\nCompute-matched test bits-per-byte (${opts.scale} scale):\n\n${table}`);

  stage(3, "evaluations on the trained models");
  if (opts.skipEvaluations) console.error("skipped");
  for (const ev of opts.skipEvaluations ? [] : EVALUATIONS) {
    console.error(`-- ${ev.name}`);
    try {
      await ev.run(runs, opts);
    } catch (e) {
      failures.push(`${ev.name}: ${(e as Error).message}`);
      console.error(`${ev.name} failed: ${(e as Error).message}`);
    }
  }

  stage(4, "figures and tables (deno task figures)");
  if (opts.skipFigures) console.error("skipped");
  else if (await pathExists(`${REPO_ROOT}lib/plot/figures.ts`)) {
    if (!(await subprocess("deno task figures", ["run", "-A", "lib/plot/figures.ts"]))) failures.push("figures");
  }

  stage(5, "notebooks (executed headlessly, rendered to figures/notebooks/)");
  if (opts.skipNotebooks) console.error("skipped");
  else if (!(await subprocess("notebooks", ["run", "-A", "lib/notebook/run.ts", "--scale", opts.scale]))) failures.push("notebooks");

  console.error(`\nreproduce (${opts.scale}) finished in ${elapsed()}` + (failures.length ? `; ${failures.length} failure(s):\n  ${failures.join("\n  ")}` : ""));
  return { runs, table, failures };
}
