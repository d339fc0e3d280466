/**
 * `deno task mambabyte import DIR`: a torch job's runs (job.ts), finished or still running, brought into the
 * lab's results. For each run with a checkpoint: its weights become a lab run directory
 * (<runsDir>/<run>_torch<N><gpu|cpu>/model), the lab scores it on the test bytes the job evaluated (the
 * job's own shard, checked against the job's sha256), and a record in the runs.jsonl schema goes to the
 * results directory, with the job's training curve, wall time and FLOPs, labelled by engine and process
 * count, and with the job's provenance (the lab commit that wrote it, GPUs, the implementation that ran).
 * A running job's run is recorded at its checkpoint's step (labels.partial); importing it again once it has
 * moved on records the later state, and tables take a run's latest record. Importing the same state twice
 * appends nothing.
 */
import { InputError } from "../io/errors.ts";
import { parseJsonText } from "../io/json.ts";
import { readLog } from "../train/trainer.ts";
import { sha256Bytes } from "../data/corpora/acquire.ts";
import { atomicWriteFile, pathExists } from "../io/atomic.ts";
import { loadModel } from "../models/registry.ts";
import { readSafetensorsHeader } from "../io/safetensors.ts";
import { countParameters, disposeModel } from "../models/lm.ts";
import { evalBatch, scoreText } from "../eval/score.ts";
import {
  appendJsonLine,
  checkRecordsWritable,
  readRecords,
  tablePath,
  withProvenance,
} from "../results/store.ts";
import type { RunRecord } from "../results/records.ts";
import { RUNS_DIR } from "../paths.ts";
import { downsampleCurve, evalRecord, RECORD_FILE, type StoredRunRecord } from "./experiment.ts";
import { JOB_FORMAT, type JobFile, type JobRun } from "./job.ts";

export interface ImportOptions {
  /** Where runs.jsonl goes. */
  resultsDir: string;
  /** Where the imported runs' directories go (default data/checkpoints/runs). */
  runsDir?: string;
  quiet?: boolean;
}

export interface ImportedRun {
  run: string;
  status: "imported" | "already imported" | "not started";
  step?: number;
  steps: number;
  /** The lab's test bits per byte of the imported weights. */
  bits_per_byte?: number;
  /** The job's own test bits per byte (eval.json; finished runs). */
  job_bits_per_byte?: number;
}

async function readJson<T>(path: string, what: string): Promise<T> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch {
    throw new InputError(path, undefined, `${path}: cannot read ${what}`);
  }
  return parseJsonText(text, path) as T;
}

/** The checkpoint train.py resumes from (checkpoint/, else checkpoint.old/ after a crash mid-swap). */
async function jobCheckpoint(runDir: string): Promise<string | undefined> {
  for (const d of ["checkpoint", "checkpoint.old"]) {
    if (await pathExists(`${runDir}/${d}/trainer_state.json`)) return `${runDir}/${d}`;
  }
  return undefined;
}

/**
 * Copies a run's checkpoint into `to`, whole: train.py replaces checkpoint/ by renames while it runs, so a
 * copy that loses a file to a swap, or whose weights' step (their metadata) is not its trainer state's, is
 * made again (up to 5 times).
 */
async function copyCheckpoint(runDir: string, to: string): Promise<string> {
  for (let attempt = 0; attempt < 5; attempt++) {
    await Deno.remove(to, { recursive: true }).catch(() => {});
    const from = await jobCheckpoint(runDir);
    if (!from) break;
    try {
      await Deno.mkdir(to, { recursive: true });
      for (const f of ["trainer_state.json", "model.safetensors", "config.json"]) {
        await Deno.copyFile(`${from}/${f}`, `${to}/${f}`);
      }
      const step = JSON.parse(await Deno.readTextFile(`${to}/trainer_state.json`)).step;
      if ((await readSafetensorsHeader(`${to}/model.safetensors`)).metadata.step === String(step)) return to;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  await Deno.remove(to, { recursive: true }).catch(() => {});
  throw new InputError(
    runDir,
    undefined,
    `${runDir}: cannot copy a whole checkpoint (it kept changing); try again`,
  );
}

interface TorchState {
  step: number;
  wall_s: number;
  tokens_seen: number;
  processes: number;
  gpus: number;
  implementation: string;
}

/** The lab's name of an imported run: the job's run name, the engine and the process count. */
export function importedRunName(name: string, processes: number, gpus: number): string {
  return `${name}_torch${processes}${gpus ? "gpu" : "cpu"}`;
}

export async function importJob(dir: string, opts: ImportOptions): Promise<ImportedRun[]> {
  const job = await readJson<JobFile>(`${dir}/job.json`, "the job's job.json (is this a job folder?)");
  if (job.format !== JOB_FORMAT) {
    throw new InputError(`${dir}/job.json`, "format", `${dir}/job.json: format is not "${JOB_FORMAT}"`);
  }
  const say = (s: string) => opts.quiet || console.error(s);
  const runsDir = opts.runsDir ?? RUNS_DIR;
  await checkRecordsWritable("runs", opts.resultsDir, "choose another results directory (--results DIR)");
  const existing = await readRecords<StoredRunRecord>("runs", opts.resultsDir);
  const out: ImportedRun[] = [];
  for (const entry of job.runs) {
    const runDir = `${dir}/${entry.dir}`;
    const run = await readJson<JobRun>(`${runDir}/run.json`, "the run's run.json");
    if (!(await jobCheckpoint(runDir))) {
      say(`import: ${entry.name}: no checkpoint yet (not started); skipped`);
      out.push({ run: entry.name, status: "not started", steps: run.steps });
      continue;
    }
    // the checkpoint is copied first and read from the copy: a running job may swap in a newer one meanwhile
    await Deno.mkdir(runsDir, { recursive: true });
    const copy = await copyCheckpoint(
      runDir,
      `${runsDir}/.import-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`,
    );
    try {
      out.push(
        await importRun({ dir, job, entry, run, copy, runsDir, resultsDir: opts.resultsDir, existing, say }),
      );
    } finally {
      await Deno.remove(copy, { recursive: true }).catch(() => {});
    }
  }
  return out;
}

/** One run of the job, from `copy` (a whole copy of its checkpoint): scored, recorded, its model kept. */
async function importRun(
  { dir, job, entry, run, copy, runsDir, resultsDir, existing, say }: {
    dir: string;
    job: JobFile;
    entry: JobFile["runs"][number];
    run: JobRun;
    copy: string;
    runsDir: string;
    resultsDir: string;
    existing: StoredRunRecord[];
    say: (s: string) => void;
  },
): Promise<ImportedRun> {
  const runDir = `${dir}/${entry.dir}`;
  const state = await readJson<TorchState>(
    `${copy}/trainer_state.json`,
    "the checkpoint's trainer_state.json",
  );
  const name = importedRunName(entry.name, state.processes, state.gpus);
  const finished = state.step === run.steps;
  if (
    existing.some((r) => r.run === name && r.steps === state.step && r.labels?.job_created === job.created)
  ) {
    say(`import: ${name}: step ${state.step} is recorded already`);
    return { run: name, status: "already imported", step: state.step, steps: run.steps };
  }
  const log = (await readLog(runDir)).filter((e) => e.step <= state.step);
  const jobEval = finished && (await pathExists(`${runDir}/eval.json`))
    ? await readJson<{ bits_per_byte: number }>(`${runDir}/eval.json`, "the run's eval.json")
    : undefined;

  const testPath = `${dir}/${run.test_data.file}`;
  const test = await Deno.readFile(testPath).catch(() => {
    throw new InputError(testPath, undefined, `${testPath}: cannot read the job's test shard`);
  });
  if (sha256Bytes(test) !== run.test_data.sha256) {
    throw new InputError(testPath, undefined, `${testPath}: sha256 differs from the job's run.json`);
  }

  // the lab's run directory: the weights (model/) and the record
  const modelDir = `${runsDir}/${name}/model`;
  const staged = `${copy}-model`;
  await Deno.mkdir(staged);
  for (const f of ["model.safetensors", "config.json"]) await Deno.rename(`${copy}/${f}`, `${staged}/${f}`);
  await Deno.mkdir(`${runsDir}/${name}`, { recursive: true });
  await Deno.remove(modelDir, { recursive: true }).catch(() => {});
  await Deno.rename(staged, modelDir);
  const model = await loadModel(modelDir);
  try {
    const window = run.eval_window;
    const batch = entry.spec.eval.batch ?? evalBatch(run.batch, run.length, window);
    say(
      `import: ${name}: step ${state.step} of ${run.steps}; scoring ${test.length} test bytes in the lab...`,
    );
    const t0 = performance.now();
    const score = await scoreText(model, test, { window, batch });
    const tokensSeen = state.tokens_seen;
    const label = String(entry.spec.labels?.label ?? entry.spec.model);
    const where = state.gpus
      ? `${state.gpus} GPU${state.gpus > 1 ? "s" : ""}`
      : `${state.processes} CPU process${state.processes > 1 ? "es" : ""}`;
    const record: RunRecord = {
      run: name,
      model: run.kind,
      domain: entry.spec.domain,
      scale: entry.spec.scale,
      data: String(
        (await readJson<Record<string, { source?: string }>>(
          `${dir}/data/manifest.json`,
          "the job's data manifest",
        ))[run.train_data.file]?.source ?? run.train_data.file,
      ),
      config: model.config,
      parameters: countParameters(model),
      train_flops_per_token: run.flops_per_token,
      train_flops: run.flops_per_token * tokensSeen,
      steps: state.step,
      batch: run.batch,
      length: run.length,
      seed: run.seed,
      tokens_seen: tokensSeen,
      bytes_seen: tokensSeen * run.bytes_per_token,
      bytes_per_token: run.bytes_per_token,
      train_wall_s: state.wall_s,
      train_bytes_per_s: tokensSeen * run.bytes_per_token / state.wall_s,
      engine: `torch (${where}: ${state.implementation})`,
      final_train_bpb: log.at(-1)?.bits_per_byte ?? NaN,
      curve: downsampleCurve(
        log.map((e) => e.bits_per_byte),
        run.flops_per_token * run.batch * run.length,
        50,
      ),
      eval: evalRecord(score, run.eval_split ?? "test", test, window, batch, (performance.now() - t0) / 1000),
      labels: {
        ...entry.spec.labels,
        label: `${label} (torch, ${where})`,
        engine: "torch",
        gpus: state.gpus,
        processes: state.processes,
        job_commit: job.lab_commit,
        job_created: job.created,
        job_run: entry.name,
        ...(jobEval ? { job_test_bits_per_byte: jobEval.bits_per_byte } : {}),
        ...(finished ? {} : { partial: true, of_steps: run.steps }),
      },
    };
    const stored = await withProvenance(record as unknown as Record<string, unknown>);
    await atomicWriteFile(`${runsDir}/${name}/${RECORD_FILE}`, JSON.stringify(stored, null, 1) + "\n");
    await appendJsonLine(tablePath("runs", resultsDir), stored);
    say(
      `import: ${name}: lab test bits per byte ${score.bits_per_byte.toFixed(5)}` +
        (jobEval ? ` (the job's own: ${jobEval.bits_per_byte.toFixed(5)})` : " (the job has not finished)"),
    );
    return {
      run: name,
      status: "imported",
      step: state.step,
      steps: run.steps,
      bits_per_byte: score.bits_per_byte,
      ...(jobEval ? { job_bits_per_byte: jobEval.bits_per_byte } : {}),
    };
  } finally {
    disposeModel(model);
  }
}
