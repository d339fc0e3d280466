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
 *    interrupted run reproduces the uninterrupted loss curve;
 *  - a non-finite loss or gradient stops the run before the update, keeping the last good checkpoint.
 */
import * as tf from "@tensorflow/tfjs";
import { ByteBatcher } from "../data/bytes.ts";
import { atomicWriteFile, pathExists } from "../io/atomic.ts";
import { readSafetensors, toFloat32, writeSafetensors } from "../io/safetensors.ts";
import { type LanguageModel, nextTokenLoss, readParameters } from "../models/lm.ts";
import { loadModel, saveModel } from "../models/registry.ts";
import { AdamW, ADAMW_DEFAULTS, type AdamWConfig, warmupCosine } from "./adamw.ts";

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
  /** Print a progress line every this many steps (0 = silent). */
  logEvery?: number;
  /** Save and stop on SIGINT / SIGTERM (default: true when runDir is set). */
  handleSignals?: boolean;
  /**
   * The batch of step s (0-based) as (batch, length + 1) token ids, row-major, instead of random windows of
   * `data`: the tests feed a reference run's exact batches through the trainer's own step with it.
   */
  batches?: (step: number) => Int32Array;
  /** Called after every step (tests watch tf.memory() here; throwing aborts the run without saving). */
  onStep?: (entry: TrainLogEntry) => void;
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
}

export interface TrainerResult {
  log: TrainLogEntry[];
  /** Wall seconds of training over all parts of the run. */
  wall_s: number;
  tokens_seen: number;
  bytes_seen: number;
  /** The step the run started from (0, or the checkpoint's step when resumed). */
  resumed_from: number;
}

/** The run was stopped by SIGINT / SIGTERM after saving a checkpoint. */
export class TrainingInterrupted extends Error {
  constructor(readonly step: number, readonly checkpoint: string) {
    super(`interrupted at step ${step}; checkpoint saved in ${checkpoint} (continue with --resume)`);
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
  const bytesPerToken = cfg.bytesPerToken ?? 1;
  const batcher = new ByteBatcher(data as Uint8Array, cfg.batch, cfg.length, cfg.seed);
  const opt = new AdamW(
    model.params,
    { ...ADAMW_DEFAULTS, lr: cfg.lr, ...cfg.optimizer },
    (n) => !model.noWeightDecay(n),
  );
  const names = [...model.params.keys()];
  const vars = names.map((n) => model.params.get(n)!);
  const fp = fingerprint(model, cfg, data.length);
  const ckptDir = cfg.runDir ? `${cfg.runDir}/${CHECKPOINT_DIR}` : undefined;

  let start = 0, tokensSeen = 0, wallBefore = 0;
  const log: TrainLogEntry[] = [];
  if (cfg.resume) {
    if (!cfg.runDir) throw new Error("train: resume needs a run directory");
    const state = await loadCheckpointInto(cfg.runDir, model, opt, fp);
    if (state) {
      start = state.step;
      tokensSeen = state.tokens_seen;
      wallBefore = state.wall_s;
      batcher.restore(state.batcher_rng, state.batcher_position);
      log.push(...(await readLog(cfg.runDir)).filter((e) => e.step <= start));
      if (cfg.logEvery) console.error(`resuming from step ${start} (${ckptDir})`);
    }
  }
  if (cfg.runDir) {
    await Deno.mkdir(cfg.runDir, { recursive: true });
    // a process killed while saving leaves its unfinished temporary checkpoint: never used, removed here
    for await (const e of Deno.readDir(cfg.runDir)) {
      if (e.name.startsWith(`${CHECKPOINT_DIR}.tmp-`)) {
        await Deno.remove(`${cfg.runDir}/${e.name}`, { recursive: true });
      }
    }
    // the log holds exactly the steps up to the checkpoint we continue from
    await atomicWriteFile(`${cfg.runDir}/${TRAIN_LOG}`, log.map((e) => JSON.stringify(e) + "\n").join(""));
  }

  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
  };
  const signals: Deno.Signal[] = (cfg.handleSignals ?? !!cfg.runDir) ? ["SIGINT", "SIGTERM"] : [];
  for (const s of signals) Deno.addSignalListener(s, onSignal);
  let lastCheckpoint: string | undefined = ckptDir && (await pathExists(ckptDir)) ? ckptDir : undefined;
  const save = async (step: number, wall: number) => {
    if (!cfg.runDir) return;
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
    await saveCheckpoint(cfg.runDir, model, opt, state);
    lastCheckpoint = ckptDir;
  };

  const t0 = performance.now();
  const elapsed = () => wallBefore + (performance.now() - t0) / 1000;
  const logFile = cfg.runDir ? await Deno.open(`${cfg.runDir}/${TRAIN_LOG}`, { append: true }) : undefined;
  try {
    for (let s = start; s < cfg.steps; s++) {
      const lr = warmupCosine(s, cfg.steps, cfg.lr, cfg.warmup, cfg.minLrRatio);
      const ids = tf.tensor(cfg.batches?.(s) ?? batcher.next(), [cfg.batch, cfg.length + 1], "int32"); // (b, l+1)
      const { value, grads } = tf.variableGrads(() => nextTokenLoss(model, ids), vars);
      const loss = (await value.data())[0];
      if (!Number.isFinite(loss)) {
        tf.dispose([ids, value, ...Object.values(grads)]);
        throw new NonFiniteLoss(s + 1, `the loss (${loss})`, lastCheckpoint);
      }
      const byName = new Map(names.map((n, i) => [n, grads[vars[i].name]]));
      const gradNorm = await opt.apply(byName, lr, { requireFinite: true }).catch((e) => {
        tf.dispose([ids, value, ...Object.values(grads)]);
        throw e instanceof RangeError ? new NonFiniteLoss(s + 1, "the gradient norm", lastCheckpoint) : e;
      });
      tf.dispose([ids, value, ...Object.values(grads)]);
      tokensSeen += cfg.batch * cfg.length;
      const wall = elapsed();
      const entry: TrainLogEntry = {
        step: s + 1,
        loss,
        bits_per_byte: loss / bytesPerToken / Math.LN2,
        lr,
        grad_norm: gradNorm,
        bytes_per_s: (tokensSeen - start * cfg.batch * cfg.length) * bytesPerToken /
          ((performance.now() - t0) / 1000),
        wall_s: wall,
      };
      log.push(entry);
      await logFile?.write(new TextEncoder().encode(JSON.stringify(entry) + "\n"));
      cfg.onStep?.(entry);
      const last = s + 1 === cfg.steps;
      if (cfg.logEvery && ((s + 1) % cfg.logEvery === 0 || last)) {
        const eta = (performance.now() - t0) / 1000 / (s + 1 - start) * (cfg.steps - s - 1);
        console.error(
          `step ${String(s + 1).padStart(6)}/${cfg.steps}  loss ${loss.toFixed(4)}  bpb ${
            entry.bits_per_byte.toFixed(3)
          }` +
            `  lr ${lr.toExponential(2)}  ${Math.round(entry.bytes_per_s)} bytes/s  ETA ${
              formatSeconds(eta)
            }`,
        );
      }
      if (last || (cfg.checkpointEvery && (s + 1) % cfg.checkpointEvery === 0) || interrupted) {
        await save(s + 1, wall);
      }
      if (interrupted && !last) throw new TrainingInterrupted(s + 1, ckptDir!);
    }
  } finally {
    for (const s of signals) Deno.removeSignalListener(s, onSignal);
    logFile?.close();
    opt.dispose();
  }
  return {
    log,
    wall_s: elapsed(),
    tokens_seen: tokensSeen,
    bytes_seen: tokensSeen * bytesPerToken,
    resumed_from: start,
  };
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return "?";
  if (s < 90) return `${s.toFixed(0)} s`;
  if (s < 5400) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

async function readLog(runDir: string): Promise<TrainLogEntry[]> {
  const path = `${runDir}/${TRAIN_LOG}`;
  if (!(await pathExists(path))) return [];
  return (await Deno.readTextFile(path)).split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
}

/**
 * Writes the checkpoint into a fresh temporary directory, then swaps it in with renames: the previous
 * checkpoint stays whole until the new one is complete (a crash in between leaves checkpoint.old, which
 * `resume` falls back to).
 */
async function saveCheckpoint(
  runDir: string,
  model: LanguageModel,
  opt: AdamW,
  state: TrainerState,
): Promise<void> {
  const final = `${runDir}/${CHECKPOINT_DIR}`, old = `${final}.old`;
  const tmp = await Deno.makeTempDir({ dir: runDir, prefix: `${CHECKPOINT_DIR}.tmp-` });
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
      await Deno.remove(old, { recursive: true }).catch(() => {});
      await Deno.rename(final, old);
    }
    await Deno.rename(tmp, final);
    await Deno.remove(old, { recursive: true }).catch(() => {});
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  }
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
  const state = JSON.parse(await Deno.readTextFile(statePath)) as TrainerState;
  if (state.format !== "mambabyte-lab-trainer/1") {
    throw new Error(`${statePath}: unknown format "${state.format}"`);
  }
  const mismatch = Object.keys(fp).filter((k) =>
    JSON.stringify(fp[k]) !== JSON.stringify(state.fingerprint[k])
  );
  if (mismatch.length) {
    throw new Error(
      `${statePath}: cannot resume, the run's settings differ from the checkpoint's in ${
        mismatch.join(", ")
      } ` +
        `(checkpoint: ${mismatch.map((k) => `${k}=${JSON.stringify(state.fingerprint[k])}`).join(", ")}); ` +
        `use a new run directory or the same settings`,
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
    if (!w || !m || !v) throw new Error(`${dir}: the checkpoint lacks parameter or moments of "${name}"`);
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
