/**
 * `deno task reproduce [--scale S]`: data -> the compute-matched training plan -> evaluations on the
 * trained models (extrapolation, noise) -> tables and figures -> every notebook executed headlessly and
 * rendered to HTML -> this reproduction's numbers side by side with the published records.
 *
 * Where things go: by default a fresh local results directory, data/local/results (ignored by git), with
 * its figures in data/local/figures and its executed notebooks in data/local/notebooks/SCALE; the
 * committed records (data/results) stay the published ones, and `deno task figures` builds from them.
 * `--results data/results` publishes into the committed records instead (the team's way to record runs).
 *
 * Each stage skips work already done: recorded runs are not re-trained, an interrupted run resumes from its
 * checkpoint, the data step is a no-op when the corpus matches its manifest, and a notebook whose inputs did
 * not change is not executed again. Progress is printed throughout (stage, run i/N, elapsed, ETA).
 */
import { isDivergedSweep, isDone, planRuns, readPlan, recordedDiverged, recordedRuns } from "./runs/plan.ts";
import { runExperiment, type RunSpec } from "./runs/experiment.ts";
import { secondsNeeded } from "./runs/time_left.ts";
import type { TrainEngine } from "./train/steps.ts";
import { TrainingInterrupted } from "./train/trainer.ts";
import { formatSeconds } from "./util/progress.ts";
import { computeMatchedTable, latestRuns, matchedRows } from "./results/compute_matched.ts";
import { tableMarkdown } from "./results/tables.ts";
import { appendRecord, readRecords } from "./results/store.ts";
import { pathExists } from "./io/atomic.ts";
import {
  LOCAL_DIR,
  LOCAL_RESULTS_DIR,
  LOCAL_RUNS_DIR,
  REPO_ROOT,
  repoRelative,
  RESULTS_DIR,
  RUNS_DIR,
} from "./paths.ts";
import { compareWithPublished, comparisonTable } from "./results/compare.ts";
import type { RunRecord, UnigramRecord } from "./results/records.ts";

export interface ReproduceOptions {
  scale: string;
  /** The plan: a name in data/plans or a path to a plan file (default compute-matched). */
  plan?: string;
  /** (A child of reproduce) only the runs of these names. */
  runs?: string[];
  /** Results directory (default data/local/results: a fresh local one, compared with data/results). */
  resultsDir?: string;
  /** Train every plan entry once per seed (default: the plan's seed). */
  seeds?: number[];
  /** Run directories (default data/local/runs for a local reproduction, else data/checkpoints/runs). */
  runsDir?: string;
  /** Restrict to some domains / plan entries. */
  domains?: string[];
  models?: string[];
  /** Skip stages. */
  skipData?: boolean;
  skipEvaluations?: boolean;
  skipFigures?: boolean;
  skipNotebooks?: boolean;
  /**
   * Train in this process and stop after training (no table, no later stage). By default each run trains in
   * a child process that does exactly this, so a run that aborts its backend (the wasm heap's 4 GiB limit)
   * fails alone instead of every run after it.
   */
  inProcess?: boolean;
  /** The backend the child processes use (default: the environment's choice). */
  backend?: string;
  /** What trains the runs (lib/train/steps.ts; default auto). */
  engine?: TrainEngine;
  /**
   * Seconds this invocation may train for: a run that the speed recorded for runs like it says cannot finish in
   * what is left is skipped, saying so (lib/runs/time_left.ts), not started (a device call's last minutes).
   */
  timeLeft?: number;
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
    const args = ["run", "-A", "lib/runs/stages.ts", name, "--scale", o.scale];
    if (o.resultsDir) args.push("--results", o.resultsDir);
    if (o.runsDir) args.push("--runs-dir", o.runsDir);
    if (!(await subprocess(name, args))) throw new Error(`the ${name} stage failed (its output is above)`);
  });
}

/** The child process running now: a signal during training is forwarded to it (signals are per process). */
let runningChild: Deno.ChildProcess | undefined;

/** Runs `deno ARGS` in the repository, its output inherited; resolves to its exit status. */
async function denoChild(args: string[], env: Record<string, string> = {}): Promise<Deno.CommandStatus> {
  const p = new Deno.Command(Deno.execPath(), {
    args,
    env,
    stdout: "inherit",
    stderr: "inherit",
    cwd: REPO_ROOT,
  }).spawn();
  runningChild = p;
  try {
    return await p.status;
  } finally {
    runningChild = undefined;
  }
}

async function subprocess(what: string, args: string[], env: Record<string, string> = {}): Promise<boolean> {
  const { code } = await denoChild(args, env);
  if (code !== 0) console.error(`reproduce: ${what} failed (exit ${code})`);
  return code === 0;
}

/** SIGINT / SIGTERM stopped the training plan (the interrupted run saved its checkpoint). */
export class ReproduceInterrupted extends Error {
  constructor(run: string) {
    super(`interrupted during ${run}; its checkpoint is saved and the next \`reproduce\` resumes it`);
    this.name = "ReproduceInterrupted";
  }
}

/** Whether two directory paths name the same place (trailing slashes ignored). */
function samePath(a: string, b: string): boolean {
  const norm = (p: string) => (p.startsWith("/") ? p : `${Deno.cwd()}/${p}`).replace(/\/+$/, "");
  return norm(a) === norm(b);
}

/** The command line that trains one plan entry in a child process (`reproduce --in-process` restricted to it). */
function childArgs(spec: RunSpec, opts: ReproduceOptions, resultsDir: string): string[] {
  const entry = String(spec.labels?.entry ?? "");
  if (!entry) throw new Error(`${spec.name}: the plan entry is not in the run's labels`);
  return [
    "run",
    "-A",
    "lib/cli.ts",
    "reproduce",
    "--in-process",
    "--scale",
    opts.scale,
    "--domains",
    spec.domain,
    "--models",
    entry,
    "--seeds",
    String(spec.train.seed),
    "--runs",
    spec.name,
    ...(opts.plan ? ["--plan", opts.plan] : []),
    "--results",
    resultsDir,
    ...(opts.runsDir ? ["--runs-dir", opts.runsDir] : []),
    ...(opts.backend ? ["--backend", opts.backend] : []),
    ...(opts.engine ? ["--engine", opts.engine] : []),
  ];
}

export async function reproduce(
  opts: ReproduceOptions,
): Promise<{ runs: RunRecord[]; table: string; failures: string[] }> {
  const t0 = performance.now();
  const elapsed = () => formatSeconds((performance.now() - t0) / 1000);
  // seconds spent in each stage, recorded at the end (reproduce.jsonl)
  const stages: Record<string, number> = {};
  let current: { name: string; t: number } | undefined;
  const stage = (i: number, s: string) => {
    const now = performance.now();
    if (current) stages[current.name] = (now - current.t) / 1000;
    current = { name: ["data", "training", "evaluations", "figures", "notebooks"][i - 1], t: now };
    if (!opts.inProcess) console.error(`\n== [${i}/5] ${s}  (elapsed ${elapsed()})`);
  };
  const failures: string[] = [];
  const resultsDir = opts.resultsDir ?? LOCAL_RESULTS_DIR;
  // a local reproduction keeps its figures and notebooks apart from the published ones
  const local = !samePath(resultsDir, RESULTS_DIR);
  // ... and its own run directories, so no model trained for the published records is taken as its own
  opts = { ...opts, runsDir: opts.runsDir ?? (local ? LOCAL_RUNS_DIR : undefined) };
  if (!opts.inProcess) {
    console.error(
      local
        ? `records go to ${repoRelative(resultsDir)} (compared with the published ones in ${
          repoRelative(RESULTS_DIR)
        } at the end)`
        : `records go to the published results, ${repoRelative(resultsDir)}`,
    );
  }

  stage(1, "data");
  if (opts.inProcess) {
    // a child of reproduce: the parent did the data stage
  } else if (opts.scale === "smoke") {
    console.error("using the tracked sample in data/samples (no download)");
  } else if (opts.skipData) {
    console.error("skipped (--no-data): runs read data/corpora where it is built, else the tracked sample");
  } else if (!(await subprocess("deno task data", ["run", "-A", "lib/data/corpora/main.ts"]))) {
    console.error(
      "reproduce: continuing with whatever data is present (the tracked sample if the corpus is missing)",
    );
  }

  const plan = await readPlan(opts.plan ?? "compute-matched");
  stage(2, `training plan (${plan.name})`);
  const selection = { domains: opts.domains, models: opts.models, seeds: opts.seeds, runs: opts.runs };
  // The plan in rounds: a run whose learning rate comes from its family's sweep is planned once the sweep
  // is recorded, so each round trains what can train now, and the next re-plans from the records.
  const toRun = async () => {
    const done = await recordedRuns(resultsDir), diverged = await recordedDiverged(resultsDir);
    const planned = planRuns(plan, opts.scale, selection, done, diverged);
    const open = planned.filter((s) => !isDone(s, done, diverged));
    return { planned, todo: open.filter((s) => !s.pending), waiting: open.filter((s) => s.pending) };
  };
  let { planned: specs, todo, waiting } = await toRun();
  if (!opts.inProcess) {
    console.error(
      `${specs.length} runs in the plan at scale ${opts.scale}; ${
        specs.length - todo.length - waiting.length
      } already recorded, ${todo.length} to run${
        waiting.length ? `, ${waiting.length} waiting for a learning-rate sweep` : ""
      }`,
    );
  }
  // a signal reaches the child training a run (which saves a checkpoint), then the plan stops
  let interrupted = false;
  const forward = (sig: Deno.Signal) => () => {
    interrupted = true;
    try {
      runningChild?.kill(sig);
    } catch { /* already gone */ }
  };
  const listeners = opts.inProcess
    ? []
    : (["SIGINT", "SIGTERM"] as Deno.Signal[]).map((sig) => [sig, forward(sig)] as const);
  for (const [sig, f] of listeners) Deno.addSignalListener(sig, f);
  // The ETA comes from the training FLOP rate of the runs finished in this invocation (their records: FLOPs
  // and wall time over all of a run's resumed parts), so a run resumed near its end does not make the rest
  // of the plan look fast.
  const finished: RunRecord[] = [];
  const eta = (remaining: RunSpec[]) => {
    const flops = finished.reduce((s, r) => s + r.train_flops, 0);
    const seconds = finished.reduce((s, r) => s + r.train_wall_s, 0);
    if (!flops || !seconds) return "?";
    return formatSeconds(remaining.reduce((s, r) => s + (r.train.flops ?? 0), 0) * seconds / flops);
  };
  const attempted = new Set<string>();
  const trainingStarted = performance.now();
  const skipped: string[] = [];
  try {
    for (let round = 0; todo.length; round++) {
      if (round > 0 && !opts.inProcess) {
        console.error(`\n${todo.length} more run(s) to train with their swept learning rate`);
      }
      for (const [i, spec] of todo.entries()) {
        attempted.add(spec.name);
        if (opts.timeLeft !== undefined) {
          const left = opts.timeLeft - (performance.now() - trainingStarted) / 1000;
          const need = await secondsNeeded(
            spec,
            await recordedRuns(resultsDir),
            `${opts.runsDir ?? RUNS_DIR}/${spec.name}`,
          );
          if (need !== undefined && need > left) {
            skipped.push(spec.name);
            console.error(
              `run ${spec.name}: not started: about ${
                formatSeconds(need)
              } of training and evaluation left at the speed recorded for runs like it, ${
                formatSeconds(Math.max(0, left))
              } of --time-left`,
            );
            continue;
          }
        }
        if (!opts.inProcess) {
          console.error(
            `\n-- run ${i + 1}/${todo.length}: ${spec.name}  (elapsed ${elapsed()}, ETA ${
              eta(todo.slice(i))
            })`,
          );
        }
        try {
          if (opts.inProcess) {
            await runExperiment(spec, {
              resultsDir,
              runsDir: opts.runsDir,
              resume: true,
              restartChanged: true, // a run of a moved learning rate starts over
              quiet: false,
              engine: opts.engine,
            });
          } else {
            const { code, signal } = await denoChild(childArgs(spec, opts, resultsDir));
            // 130: the child saved its checkpoint on SIGINT / SIGTERM
            if (code === 130 || interrupted) throw new ReproduceInterrupted(spec.name);
            if (code !== 0) {
              throw new Error(
                `its process exited with ${
                  signal ? `signal ${signal}` : `code ${code}`
                } (its output is above)`,
              );
            }
            const recs = await recordedRuns(resultsDir);
            // a child that exits 0 without this run's record (it found the run pending, or recorded one
            // the plan does not count) has not done it, unless it was a sweep run that diverged
            if (!isDone(spec, recs, await recordedDiverged(resultsDir))) {
              throw new Error("its process exited 0 but left no record matching the planned run");
            }
            const rec = recs.findLast((r) => r.run === spec.name);
            if (rec) finished.push(rec);
          }
        } catch (e) {
          if (e instanceof ReproduceInterrupted) throw e;
          if (e instanceof TrainingInterrupted) {
            console.error(`run ${spec.name}: ${e.message}`);
            throw new ReproduceInterrupted(spec.name);
          }
          // a sweep run that diverged is an outcome its sweep counts, not a failure
          if (isDivergedSweep(spec, await recordedDiverged(resultsDir))) {
            console.error(`run ${spec.name} diverged: its sweep counts the rate as too high`);
            continue;
          }
          failures.push(`${spec.name}: ${(e as Error).message}`);
          console.error(`run ${spec.name} failed: ${(e as Error).message}`);
        }
      }
      ({ planned: specs, todo, waiting } = await toRun());
      todo = todo.filter((s) => !attempted.has(s.name)); // a failed run is not tried again in this invocation
    }
  } finally {
    for (const [sig, f] of listeners) Deno.removeSignalListener(sig, f);
  }
  if (skipped.length) {
    console.error(
      `${skipped.length} run(s) not started for lack of time (--time-left): ${skipped.join(", ")}`,
    );
  }
  for (const w of opts.inProcess ? [] : waiting) {
    // a run whose sweep was left for lack of time waits on purpose: not a failure
    if (skipped.length) {
      console.error(`${w.name}: not started: it waits for ${w.pending}, left for lack of time`);
    } else failures.push(`${w.name}: not trained: it waits for ${w.pending}`);
  }
  if (opts.inProcess) return { runs: [], table: "", failures };
  // every seed's run: a cell with several seeds shows their mean and spread
  const runs = latestRuns(await recordedRuns(resultsDir), opts.scale, plan.name, true)
    .filter((r) => specs.some((s) => s.name === r.run));
  const table = runs.length
    ? tableMarkdown(
      computeMatchedTable(
        matchedRows(runs, await readRecords<UnigramRecord>("unigram", resultsDir)),
        opts.scale,
      ),
    )
    : "(no runs recorded)\n";
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

  const figuresOut = local ? `${LOCAL_DIR}/figures` : undefined;
  stage(4, `figures and tables (deno task figures${local ? ` -> ${repoRelative(figuresOut!)}` : ""})`);
  if (opts.skipFigures) console.error("skipped");
  else if (await pathExists(`${REPO_ROOT}lib/plot/main.ts`)) {
    const args = [
      "run",
      "-A",
      "lib/plot/main.ts",
      ...(local ? ["--results", resultsDir, "--out", figuresOut!] : []),
    ];
    if (!(await subprocess("deno task figures", args))) failures.push("figures");
  }

  const notebooksOut = local ? `${LOCAL_DIR}/notebooks/${opts.scale}` : undefined;
  stage(
    5,
    `notebooks (executed headlessly, rendered to ${
      repoRelative(notebooksOut ?? `figures/notebooks/${opts.scale}`)
    })`,
  );
  if (opts.skipNotebooks) console.error("skipped");
  else {
    const { code } = await denoChild(
      [
        "run",
        "-A",
        "lib/notebook/run.ts",
        "--scale",
        opts.scale,
        ...(notebooksOut ? ["--out", notebooksOut] : []),
      ],
      local ? { MAMBABYTE_RESULTS: resultsDir, MAMBABYTE_RUNS: opts.runsDir! } : {},
    );
    if (code === 130) throw new ReproduceInterrupted("the notebooks");
    if (code !== 0) {
      console.error(`reproduce: notebooks failed (exit ${code})`);
      failures.push("notebooks");
    }
  }

  if (local) {
    const rows = compareWithPublished(
      await recordedRuns(resultsDir),
      await recordedRuns(RESULTS_DIR),
      opts.scale,
    );
    console.log(
      `\nThis reproduction against the published records:\n\n${
        tableMarkdown(comparisonTable(rows, opts.scale, repoRelative(RESULTS_DIR)))
      }`,
    );
  }

  if (current) stages[current.name] = (performance.now() - current.t) / 1000;
  console.error(
    `\nreproduce (${opts.scale}) finished in ${elapsed()}` +
      (failures.length ? `; ${failures.length} failure(s):\n  ${failures.join("\n  ")}` : ""),
  );
  await appendRecord("reproduce", {
    experiment: "reproduce",
    scale: opts.scale,
    wall_s: (performance.now() - t0) / 1000,
    stage_wall_s: stages,
    runs_in_plan: specs.length,
    runs_trained: attempted.size,
    failures,
    skipped_stages: {
      data: !!opts.skipData,
      evaluations: !!opts.skipEvaluations,
      figures: !!opts.skipFigures,
      notebooks: !!opts.skipNotebooks,
    },
  }, resultsDir);
  return { runs, table, failures };
}
