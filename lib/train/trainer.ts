/**
 * The trainer every model uses (nanoGPT's loop, with what a long run needs):
 *  - random windows of `length + 1` tokens from the training ids (seeded, resumable by position);
 *  - AdamW (no decay where the model says so: Mamba's A_log and D, norms, biases), linear warm-up then
 *    cosine decay, global-norm clipping, fp32 parameters;
 *  - a progress line (step, loss, bits-per-byte, bytes/s, ETA) and a JSONL log (runDir/train_log.jsonl);
 *  - checkpoints in runDir/checkpoint/ every `checkpointEvery` steps, at the end, and on SIGINT/SIGTERM:
 *    model.safetensors + config.json (loadable by loadModel), optimizer.safetensors (AdamW moments) and
 *    trainer_state.json (step, data position, generator state, bytes seen). The directory is written
 *    under a temporary name and renamed, so a checkpoint is never half-written;
 *  - `resume`: continue from the checkpoint exactly (same batches, same optimizer state), so an
 *    interrupted run reproduces the uninterrupted weights, moments and curve bit for bit;
 *  - a non-finite loss or gradient stops the run before the update, keeping the last good checkpoint;
 *  - a run directory is used by one process at a time (an advisory lock, io/lock.ts); a directory that
 *    already holds a run is never silently reused: `resume` continues it, `overwrite` starts over, and
 *    otherwise the trainer refuses, saying what is there. Settings that differ from the checkpoint's, a
 *    damaged trainer_state.json or a directory the checkpoint cannot be written to are one-line
 *    `InputError`s before the first step.
 */
import * as tf from "@tensorflow/tfjs";
import { ByteBatcher } from "../data/bytes.ts";
import { atomicWriteFile, checkWritableDir, pathExists } from "../io/atomic.ts";
import { describeFsError, FileWriteError, InputError } from "../io/errors.ts";
import { acquireDirLock, type DirLock, pidAlive } from "../io/lock.ts";
import { readSafetensors, toFloat32, writeSafetensors } from "../io/safetensors.ts";
import { type LanguageModel, readParameters } from "../models/lm.ts";
import { loadModel, saveModel } from "../models/registry.ts";
import { AdamW, ADAMW_DEFAULTS, type AdamWConfig, warmupCosine } from "./adamw.ts";
import { secondsLeft, stepLine } from "../util/progress.ts";
import {
  createRunner,
  type NativeBackend,
  type NativePlace,
  type StepOutcome,
  type StepRunner,
  type TrainEngine,
} from "./steps.ts";

export interface TrainerConfig {
  steps: number;
  batch: number;
  /** Tokens per training sequence (inputs; each window holds length + 1 tokens). */
  length: number;
  lr: number;
  warmup: number;
  /** The cosine decays to lr * minLrRatio. */
  minLrRatio?: number;
  seed: number;
  optimizer?: Partial<AdamWConfig>;
  /** Bytes per token of the training data (1 for byte models), to report bits per BYTE and bytes/s. */
  bytesPerToken?: number;
  /** Directory for checkpoints and the JSONL log; without it nothing is written. */
  runDir?: string;
  /** Save a checkpoint every this many steps (0 = only at the end and on a signal). */
  checkpointEvery?: number;
  /** Continue from runDir/checkpoint if there is one. */
  resume?: boolean;
  /**
   * Without `resume`, a runDir that already holds a run (a checkpoint or logged steps) is refused
   * (`RunExistsError`); with `overwrite` its checkpoint and log are removed and the run starts over.
   */
  overwrite?: boolean;
  /** The lock of runDir, when the caller already holds it (runExperiment); else the trainer takes it. */
  lock?: DirLock;
  /** Print a progress line every this many steps (0 = silent). */
  logEvery?: number;
  /** Save and stop on SIGINT / SIGTERM (default: true when runDir is set). */
  handleSignals?: boolean;
  /**
   * The batch of step s (0-based) as (batch, length + 1) token ids, row-major, instead of random windows of
   * `data`: the tests feed a reference run's exact batches through the trainer's own step with it.
   */
  batches?: (step: number) => Int32Array;
  /**
   * Called with every step's log entry, in order, and awaited (a live view in a notebook, lib/plot/live.ts;
   * tests watch tf.memory() here); throwing aborts the run without saving.
   */
  onStep?: (entry: TrainLogEntry) => unknown;
  /**
   * Measures validation every `every` steps and at the last step: `score(model)` (bits per byte of held-out
   * text, e.g. with lib/eval/score.ts) is called with the model's current parameters, and its value goes
   * into that step's log entry as `val_bits_per_byte`. It must not change the model.
   */
  validate?: {
    every: number;
    /** `native`: where the run's native engine runs (absent for tfjs), so the scorer can run there too. */
    score: (model: LanguageModel, native?: NativePlace) => Promise<number>;
  };
  /**
   * What runs the steps (steps.ts): "tfjs", "native" (the engine; Mamba models, on WebGPU or the CPU) or
   * "auto" (default: native for Mamba models on the CPU and on a real GPU). Not part of a run's settings:
   * a run may resume on the other.
   */
  engine?: TrainEngine;
  /** Where the native engine runs (default: where TF.js runs; steps.ts nativeBackendFor). */
  nativeBackend?: NativeBackend;
}

export interface TrainLogEntry {
  step: number;
  /** Mean nats per token. */
  loss: number;
  bits_per_byte: number;
  lr: number;
  grad_norm: number;
  bytes_per_s: number;
  /** Wall seconds since the run began (over all resumed parts). */
  wall_s: number;
  /** Bits per byte of the validation text (TrainerConfig.validate), at the steps where it was measured. */
  val_bits_per_byte?: number;
}

export interface TrainerResult {
  log: TrainLogEntry[];
  /** Wall seconds of training over all parts of the run. */
  wall_s: number;
  tokens_seen: number;
  bytes_seen: number;
  /** The step the run started from (0, or the checkpoint's step when resumed). */
  resumed_from: number;
  /** What ran the steps: "tfjs" or "native (webgpu: DEVICE)" (steps.ts StepRunner.name). */
  engine: string;
  /** GPU memory the native engine allocated (all of its buffers); absent for tfjs. */
  gpu_bytes?: number;
  /** Where the native engine ran (absent for tfjs). */
  native?: NativePlace;
}

/** The run was stopped by SIGINT / SIGTERM after saving a checkpoint. */
export class TrainingInterrupted extends Error {
  constructor(readonly step: number, readonly checkpoint: string) {
    super(
      `interrupted at step ${step}; checkpoint saved in ${checkpoint} (continue with --resume, or resume: true in code)`,
    );
    this.name = "TrainingInterrupted";
  }
}

/** The loss or gradient became NaN / infinite; nothing was updated with it. */
export class NonFiniteLoss extends Error {
  constructor(readonly step: number, what: string, lastCheckpoint: string | undefined) {
    super(
      `training stopped at step ${step}: ${what} is not finite (lower the learning rate or check the data); ` +
        (lastCheckpoint ? `the last good checkpoint is ${lastCheckpoint}` : "no checkpoint was written"),
    );
    this.name = "NonFiniteLoss";
  }
}

/** runDir already holds a run, and neither resume nor overwrite was asked for. */
export class RunExistsError extends InputError {
  constructor(readonly runDir: string, what: string, finished = false) {
    super(
      runDir,
      undefined,
      `${runDir} already holds ${what}; ` +
        (finished
          ? "train it again with --overwrite, or choose another --name"
          : "continue it with --resume, or start over with --overwrite"),
    );
    this.name = "RunExistsError";
  }
}

interface TrainerState {
  format: "mambabyte-lab-trainer/1";
  step: number;
  adam_step: number;
  batcher_position: number;
  batcher_rng: number[];
  tokens_seen: number;
  wall_s: number;
  /** The settings that must not change across a resume. */
  fingerprint: Record<string, unknown>;
}

export const CHECKPOINT_DIR = "checkpoint";
export const TRAIN_LOG = "train_log.jsonl";
/** Temporary checkpoints are named checkpoint.tmp-<pid of the writer>-<random>. */
const TMP_PREFIX = `${CHECKPOINT_DIR}.tmp-`;

/** What a run directory holds of a run (the trainer's files only). */
export interface RunContents {
  /** The checkpoint the run would continue from (checkpoint/, else checkpoint.old/), when there is one. */
  checkpoint?: string;
  /** Its step, the run's total steps and learning rate, when its trainer_state.json is readable. */
  step?: number;
  steps?: number;
  lr?: number;
  /** Steps in train_log.jsonl. */
  loggedSteps: number;
}

/** Looks at a run directory without changing it. */
export async function inspectRun(runDir: string): Promise<RunContents> {
  let checkpoint: string | undefined;
  for (const d of [`${runDir}/${CHECKPOINT_DIR}`, `${runDir}/${CHECKPOINT_DIR}.old`]) {
    if (await pathExists(d)) {
      checkpoint = d;
      break;
    }
  }
  let step: number | undefined, steps: number | undefined, lr: number | undefined;
  if (checkpoint) {
    try {
      const st = JSON.parse(await Deno.readTextFile(`${checkpoint}/trainer_state.json`));
      if (Number.isInteger(st.step)) step = st.step;
      if (Number.isInteger(st.fingerprint?.steps)) steps = st.fingerprint.steps;
      if (typeof st.fingerprint?.lr === "number") lr = st.fingerprint.lr;
    } catch { /* described without its step */ }
  }
  let loggedSteps = 0;
  try {
    loggedSteps = (await Deno.readTextFile(`${runDir}/${TRAIN_LOG}`)).split("\n").filter((l) => l.trim())
      .length;
  } catch { /* no log */ }
  return { checkpoint, step, steps, lr, loggedSteps };
}

/** "a run (checkpoint at step 6 of 12, 7 steps logged)", or undefined when the directory holds none. */
export function describeRun(c: RunContents): string | undefined {
  if (!c.checkpoint && !c.loggedSteps) return undefined;
  const parts: string[] = [];
  if (c.checkpoint) {
    parts.push(
      c.step !== undefined
        ? `checkpoint at step ${c.step}${c.steps !== undefined ? ` of ${c.steps}` : ""}`
        : `a checkpoint in ${c.checkpoint}`,
    );
  } else parts.push("no checkpoint yet");
  if (c.loggedSteps) parts.push(`${c.loggedSteps} steps logged`);
  const finished = c.step !== undefined && c.step === c.steps;
  return `${finished ? "a finished" : "an interrupted"} run (${parts.join(", ")})`;
}

/** Removes the trainer's files of a run (checkpoints, log, temporary checkpoints of dead processes). */
export async function clearRun(runDir: string): Promise<void> {
  for (const p of [CHECKPOINT_DIR, `${CHECKPOINT_DIR}.old`, TRAIN_LOG]) {
    try {
      await Deno.remove(`${runDir}/${p}`, { recursive: true });
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) {
        throw new FileWriteError(
          `${runDir}/${p}`,
          `${runDir}/${p}: cannot remove it: ${describeFsError(e)}`,
          {
            cause: e,
          },
        );
      }
    }
  }
  await removeStaleTemporaries(runDir);
}

/**
 * Removes temporary checkpoints left by processes that died while saving (their pid is in the name and
 * no longer runs) or by this process. Another live process's save in progress is never touched, nor a
 * temporary directory whose name carries no pid.
 */
async function removeStaleTemporaries(runDir: string): Promise<void> {
  for await (const e of Deno.readDir(runDir)) {
    if (!e.name.startsWith(TMP_PREFIX)) continue;
    const pid = Number(/^(\d+)-/.exec(e.name.slice(TMP_PREFIX.length))?.[1]);
    if (!Number.isInteger(pid) || (pid !== Deno.pid && pidAlive(pid))) continue;
    await Deno.remove(`${runDir}/${e.name}`, { recursive: true }).catch(() => {});
  }
}

function fingerprint(model: LanguageModel, cfg: TrainerConfig, dataLength: number) {
  return {
    kind: model.kind,
    config: model.config,
    steps: cfg.steps,
    batch: cfg.batch,
    length: cfg.length,
    lr: cfg.lr,
    warmup: cfg.warmup,
    seed: cfg.seed,
    data_tokens: dataLength,
  };
}

/** Trains `model` in place on `data` (the training split as token ids: bytes, or BPE ids). */
export async function train(
  model: LanguageModel,
  data: Uint8Array | Int32Array,
  cfg: TrainerConfig,
): Promise<TrainerResult> {
  for (const [k, v] of Object.entries({ steps: cfg.steps, batch: cfg.batch, length: cfg.length })) {
    if (!(Number.isInteger(v) && v >= 1)) {
      throw new Error(`train: ${k} must be a positive integer (got ${v})`);
    }
  }
  const multiple = model.lengthMultiple ?? 1;
  if (cfg.length % multiple !== 0) {
    throw new Error(
      `train: ${model.kind} needs a sequence length that is a multiple of ${multiple} (got ${cfg.length})`,
    );
  }
  if (data.length < cfg.length + 1) {
    throw new InputError(
      "training data",
      "length",
      `train: the training data has ${data.length} tokens, fewer than one window of length + 1 = ${
        cfg.length + 1
      } (use more data or a shorter --length)`,
    );
  }
  if (cfg.resume && !cfg.runDir) throw new Error("train: resume needs a run directory");
  const bytesPerToken = cfg.bytesPerToken ?? 1;
  const fp = fingerprint(model, cfg, data.length);
  const runDir = cfg.runDir;
  const ckptDir = runDir ? `${runDir}/${CHECKPOINT_DIR}` : undefined;

  let lock: DirLock | undefined;
  if (runDir) {
    try {
      await Deno.mkdir(runDir, { recursive: true });
    } catch (e) {
      throw new FileWriteError(runDir, `${runDir}: cannot create the run directory: ${describeFsError(e)}`, {
        cause: e,
      });
    }
    lock = cfg.lock ?? await acquireDirLock(runDir, "train");
  }
  const opt = new AdamW(
    model.params,
    { ...ADAMW_DEFAULTS, lr: cfg.lr, ...cfg.optimizer },
    (n) => !model.noWeightDecay(n),
  );
  const signals: Deno.Signal[] = (cfg.handleSignals ?? !!runDir) ? ["SIGINT", "SIGTERM"] : [];
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
  };
  let logFile: Deno.FsFile | undefined;
  let runner: StepRunner | undefined;
  try {
    const batcher = new ByteBatcher(data as Uint8Array, cfg.batch, cfg.length, cfg.seed);

    let start = 0, tokensSeen = 0, wallBefore = 0;
    const log: TrainLogEntry[] = [];
    if (runDir) {
      if (!cfg.resume) {
        const what = describeRun(await inspectRun(runDir));
        if (what && !cfg.overwrite) throw new RunExistsError(runDir, what);
        if (what) await clearRun(runDir);
      } else {
        const state = await loadCheckpointInto(runDir, model, opt, fp);
        if (state) {
          start = state.step;
          tokensSeen = state.tokens_seen;
          wallBefore = state.wall_s;
          batcher.restore(state.batcher_rng, state.batcher_position);
          log.push(...(await readLog(runDir)).filter((e) => e.step <= start));
          if (cfg.logEvery) console.error(`resuming from step ${start} (${ckptDir})`);
        }
      }
      await prepareRunDir(runDir);
      // the log holds exactly the steps up to the checkpoint we continue from
      await atomicWriteFile(`${runDir}/${TRAIN_LOG}`, log.map((e) => JSON.stringify(e) + "\n").join(""));
    }
    runner = await createRunner(cfg.engine ?? "auto", model, opt, {
      batch: cfg.batch,
      length: cfg.length,
      backend: cfg.nativeBackend,
    });
    if (cfg.logEvery && runner.name !== "tfjs") console.error(`training on the ${runner.name} engine`);

    for (const s of signals) Deno.addSignalListener(s, onSignal);
    let lastCheckpoint: string | undefined = ckptDir && (await pathExists(ckptDir)) ? ckptDir : undefined;
    const save = async (step: number, wall: number) => {
      if (!runDir) return;
      const state: TrainerState = {
        format: "mambabyte-lab-trainer/1",
        step,
        adam_step: opt.step,
        batcher_position: batcher.position,
        batcher_rng: batcher.state(),
        tokens_seen: tokensSeen,
        wall_s: wall,
        fingerprint: fp,
      };
      await saveCheckpoint(runDir, model, opt, state);
      lastCheckpoint = ckptDir;
    };

    const t0 = performance.now();
    // seconds spent scoring validation text (cfg.validate) are not training time: the wall time and the
    // bytes/s that runs record (and that time_left.ts predicts from) leave them out
    let validatingS = 0;
    const trainingS = () => (performance.now() - t0) / 1000 - validatingS;
    const elapsed = () => wallBefore + trainingS();
    logFile = runDir ? await Deno.open(`${runDir}/${TRAIN_LOG}`, { append: true }) : undefined;
    // A step's outcome (loss, norm) may arrive after later steps were queued (the native engine reads
    // them back every runner.window steps); they are logged in order as they settle.
    const pending: { step: number; lr: number; outcome: Promise<StepOutcome> }[] = [];
    const v = cfg.validate;
    if (v && !(Number.isInteger(v.every) && v.every >= 1)) {
      throw new RangeError(`validate.every must be a positive integer (got ${v.every})`);
    }
    const settle = async () => {
      await runner!.flush();
      for (const p of pending.splice(0)) {
        const { loss, gradNorm, notFinite } = await p.outcome;
        if (notFinite) throw new NonFiniteLoss(p.step, notFinite, lastCheckpoint);
        tokensSeen += cfg.batch * cfg.length;
        const entry: TrainLogEntry = {
          step: p.step,
          loss,
          bits_per_byte: loss / bytesPerToken / Math.LN2,
          lr: p.lr,
          grad_norm: gradNorm,
          bytes_per_s: (tokensSeen - start * cfg.batch * cfg.length) * bytesPerToken / trainingS(),
          wall_s: elapsed(),
        };
        if (v && (p.step % v.every === 0 || p.step === cfg.steps)) {
          const v0 = performance.now();
          await runner!.sync(); // the model's variables hold this step's parameters
          entry.val_bits_per_byte = await v.score(model, runner!.native);
          validatingS += (performance.now() - v0) / 1000;
        }
        log.push(entry);
        await logFile?.write(new TextEncoder().encode(JSON.stringify(entry) + "\n"));
        await cfg.onStep?.(entry);
        if (cfg.logEvery && (p.step % cfg.logEvery === 0 || p.step === cfg.steps)) {
          const eta = secondsLeft(p.step - start, cfg.steps - start, trainingS());
          console.error(stepLine(entry, cfg.steps, eta));
        }
      }
    };
    for (let s = start; s < cfg.steps; s++) {
      const lr = warmupCosine(s, cfg.steps, cfg.lr, cfg.warmup, cfg.minLrRatio);
      const ids = cfg.batches?.(s) ?? batcher.next(); // (b, l+1)
      pending.push({ step: s + 1, lr, outcome: (await runner.step(ids, lr)).outcome });
      const last = s + 1 === cfg.steps;
      // read once: a signal arriving during the awaits below stops the run after the next step, saved
      const stopping = interrupted;
      const checkpoint = last || (cfg.checkpointEvery && (s + 1) % cfg.checkpointEvery === 0) || stopping;
      const validating = v !== undefined && (s + 1) % v.every === 0;
      if (pending.length >= runner.window || checkpoint || validating) await settle();
      if (checkpoint) {
        if (runDir || last) await runner.sync(); // the model's variables hold the run's state from here
        await save(s + 1, elapsed());
      }
      if (stopping && !last) throw new TrainingInterrupted(s + 1, ckptDir!);
    }
    return {
      log,
      wall_s: elapsed(),
      tokens_seen: tokensSeen,
      bytes_seen: tokensSeen * bytesPerToken,
      resumed_from: start,
      engine: runner.name,
      ...(runner.native ? { native: runner.native } : {}),
      ...(runner.gpuBytes !== undefined ? { gpu_bytes: runner.gpuBytes } : {}),
    };
  } finally {
    for (const s of signals) Deno.removeSignalListener(s, onSignal);
    logFile?.close();
    runner?.dispose();
    opt.dispose();
    if (!cfg.lock) await lock?.release();
  }
}

/**
 * Before the first step: the run directory and its checkpoint must be writable (else the run would train
 * and then fail at every save), a leftover checkpoint.old beside a whole checkpoint is removed, and so are
 * temporary checkpoints of dead processes (never those of a live one).
 */
async function prepareRunDir(runDir: string): Promise<void> {
  const final = `${runDir}/${CHECKPOINT_DIR}`, old = `${final}.old`;
  await checkWritableDir(runDir, "run directory");
  for (const dir of [final, old]) {
    if (await pathExists(dir)) {
      await checkWritableDir(
        dir,
        "checkpoint directory",
        `the run replaces its checkpoint as it trains: make it writable (chmod -R u+w ${dir})`,
      );
    }
  }
  if ((await pathExists(final)) && (await pathExists(old))) await removeDir(old);
  await removeStaleTemporaries(runDir);
}

/** Removes a directory tree; a missing one is fine, anything else a FileWriteError naming it. */
async function removeDir(path: string): Promise<void> {
  try {
    await Deno.remove(path, { recursive: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw new FileWriteError(path, `${path}: cannot remove it: ${describeFsError(e)}`, { cause: e });
  }
}

/**
 * The logged steps of a run directory (a torn last line, from a process killed mid-write, is skipped: it is
 * never resumed). A torch job's runs (lib/torch/train.py) write the same file with the same fields.
 */
export async function readLog(runDir: string): Promise<TrainLogEntry[]> {
  const path = `${runDir}/${TRAIN_LOG}`;
  if (!(await pathExists(path))) return [];
  const out: TrainLogEntry[] = [];
  for (const line of (await Deno.readTextFile(path)).split("\n")) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line));
    } catch { /* torn */ }
  }
  return out;
}

/**
 * Writes the checkpoint into a fresh temporary directory (checkpoint.tmp-<pid>-<random>), then swaps it in
 * with renames: the previous checkpoint stays whole until the new one is complete (a crash in between
 * leaves checkpoint.old, which `resume` falls back to).
 */
async function saveCheckpoint(
  runDir: string,
  model: LanguageModel,
  opt: AdamW,
  state: TrainerState,
): Promise<void> {
  const final = `${runDir}/${CHECKPOINT_DIR}`, old = `${final}.old`;
  const tmp = `${runDir}/${TMP_PREFIX}${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  const fail = (what: string, e: unknown) =>
    e instanceof InputError
      ? e
      : new FileWriteError(final, `${final}: cannot ${what}: ${describeFsError(e)}`, {
        cause: e,
      });
  try {
    await Deno.mkdir(tmp);
  } catch (e) {
    throw fail(`save the checkpoint (creating ${tmp})`, e);
  }
  try {
    await saveModel(model, tmp, { step: String(state.step) });
    const moments = new Map<string, { dtype: "F32"; shape: number[]; data: Float32Array }>();
    for (const [name, p] of model.params) {
      moments.set(`m.${name}`, {
        dtype: "F32",
        shape: p.shape,
        data: (await opt.m.get(name)!.data()) as Float32Array,
      });
      moments.set(`v.${name}`, {
        dtype: "F32",
        shape: p.shape,
        data: (await opt.v.get(name)!.data()) as Float32Array,
      });
    }
    await writeSafetensors(`${tmp}/optimizer.safetensors`, moments, { format: "mambabyte-lab-adamw" });
    await atomicWriteFile(`${tmp}/trainer_state.json`, JSON.stringify(state, null, 2) + "\n");
    if (await pathExists(final)) {
      await removeDir(old);
      try {
        await Deno.rename(final, old);
      } catch (e) {
        throw fail(`move it aside to ${old}`, e);
      }
    }
    try {
      await Deno.rename(tmp, final);
    } catch (e) {
      throw fail(`rename ${tmp} to it`, e);
    }
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw fail("save the checkpoint", e);
  }
  await removeDir(old);
}

/** One line per differing setting, "name old -> new" (nested objects such as the config by field). */
export function settingsDiff(was: unknown, now: unknown, prefix = ""): string[] {
  const isObj = (x: unknown): x is Record<string, unknown> =>
    !!x && typeof x === "object" && !Array.isArray(x);
  if (isObj(was) && isObj(now)) {
    const keys = [...new Set([...Object.keys(was), ...Object.keys(now)])];
    return keys.flatMap((k) => settingsDiff(was[k], now[k], prefix ? `${prefix}.${k}` : k));
  }
  if (JSON.stringify(was) === JSON.stringify(now)) return [];
  const show = (x: unknown) => (x === undefined ? "(unset)" : JSON.stringify(x));
  return [`${prefix} ${show(was)} -> ${show(now)}`];
}

/** Reads and checks a checkpoint's trainer_state.json; damage is an InputError naming the file and field. */
async function readTrainerState(statePath: string): Promise<TrainerState> {
  const fix = "the checkpoint cannot be resumed: start over with --overwrite";
  let text: string;
  try {
    text = await Deno.readTextFile(statePath);
  } catch (e) {
    throw new InputError(statePath, undefined, `${statePath}: ${describeFsError(e)}; ${fix}`, { cause: e });
  }
  let state: TrainerState;
  try {
    state = JSON.parse(text);
  } catch (e) {
    throw new InputError(
      statePath,
      undefined,
      `${statePath}: not valid JSON (${(e as Error).message}); ${fix}`,
    );
  }
  const bad = (field: string, what: string) =>
    new InputError(statePath, field, `${statePath}: ${field} ${what}; ${fix}`);
  if (!state || typeof state !== "object") throw bad("(the whole file)", "is not a JSON object");
  if (state.format !== "mambabyte-lab-trainer/1") throw bad("format", `is not "mambabyte-lab-trainer/1"`);
  for (const k of ["step", "adam_step", "batcher_position", "tokens_seen"] as const) {
    if (!(Number.isInteger(state[k]) && state[k] >= 0)) throw bad(k, "is not an integer >= 0");
  }
  if (typeof state.wall_s !== "number") throw bad("wall_s", "is not a number");
  if (!Array.isArray(state.batcher_rng) || !state.batcher_rng.every(Number.isFinite)) {
    throw bad("batcher_rng", "is not an array of numbers");
  }
  if (!state.fingerprint || typeof state.fingerprint !== "object") throw bad("fingerprint", "is missing");
  return state;
}

/** Restores weights, AdamW moments and trainer state from runDir's checkpoint; undefined if none. */
async function loadCheckpointInto(
  runDir: string,
  model: LanguageModel,
  opt: AdamW,
  fp: Record<string, unknown>,
): Promise<TrainerState | undefined> {
  let dir = `${runDir}/${CHECKPOINT_DIR}`;
  if (!(await pathExists(dir))) {
    if (!(await pathExists(`${dir}.old`))) return undefined;
    dir = `${dir}.old`; // a crash between the two renames of saveCheckpoint
  }
  const statePath = `${dir}/trainer_state.json`;
  const state = await readTrainerState(statePath);
  const diff = settingsDiff(state.fingerprint, fp);
  if (diff.length) {
    throw new InputError(
      statePath,
      diff[0].split(" ")[0],
      `${runDir}: cannot resume, the settings differ from the checkpoint's: ${diff.join(", ")} ` +
        `(resume with the checkpoint's settings, or start over with --overwrite)`,
    );
  }
  const saved = await loadModel(dir);
  const values = await readParameters(saved);
  for (const v of saved.params.values()) v.dispose();
  const optPath = `${dir}/optimizer.safetensors`;
  const moments = await readSafetensors(optPath);
  for (const [name, p] of model.params) {
    const w = values.get(name);
    const m = moments.tensors.get(`m.${name}`), v = moments.tensors.get(`v.${name}`);
    if (!w || !m || !v) {
      throw new InputError(
        dir,
        name,
        `${dir}: the checkpoint lacks parameter or moments of "${name}"; start over with --overwrite`,
      );
    }
    tf.tidy(() => {
      p.assign(tf.tensor(w, p.shape, "float32"));
      opt.m.get(name)!.assign(
        tf.tensor(toFloat32(m, { file: optPath, key: `m.${name}` }), p.shape, "float32"),
      );
      opt.v.get(name)!.assign(
        tf.tensor(toFloat32(v, { file: optPath, key: `v.${name}` }), p.shape, "float32"),
      );
    });
  }
  opt.step = state.adam_step;
  return state;
}

/** Training steps that spend `flops` training FLOPs (at least 1). */
export function stepsForFlops(model: LanguageModel, flops: number, batch: number, length: number): number {
  return Math.max(1, Math.floor(flops / (model.trainFlopsPerToken(length) * batch * length)));
}
