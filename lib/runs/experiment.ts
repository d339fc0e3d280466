/**
 * One training run as an experiment: data of a domain -> (tokenizer for subword models) -> model ->
 * trainer (checkpointed, resumable) -> test-split evaluation -> one record in data/results/runs.jsonl.
 * `deno task mambabyte train` and the plan runner (plan.ts) both come through here, so every model is
 * trained and evaluated the same way.
 *
 * A run directory is safe to come back to: it is locked while a process uses it (a second process gets a
 * one-line error naming the holder), a finished or interrupted run is never silently trained over (resume
 * it, or `overwrite`), and the finished run's record is kept in <runDir>/record.json before it is appended
 * to runs.jsonl, so resuming a finished run appends it once (if it is missing) and never twice.
 */
import * as tf from "@tensorflow/tfjs";
import { unigramBitsPerByte } from "../data/unigram.ts";
import { ByteBPE, trainBpe } from "../data/bpe.ts";
import { dataLocation, readCheckedDocuments, readCheckedSplit } from "../data/describe.ts";
import { documentSpans, joinDocuments } from "../data/bytes.ts";
import type { Domain } from "../data/corpora/types.ts";
import { atomicWriteFile, pathExists } from "../io/atomic.ts";
import { describeFsError, FileWriteError, InputError } from "../io/errors.ts";
import { acquireDirLock, type DirLock } from "../io/lock.ts";
import { countParameters, disposeModel, type LanguageModel, TOKEN_UNIT } from "../models/lm.ts";
import { createModel, family, loadModel, saveModel } from "../models/registry.ts";
import { evalBatch, type ScoreOptions, scoreText, type TextScore } from "../eval/score.ts";
import { ENGINE_SCORED_KINDS, EngineScorer } from "../eval/engine_scorer.ts";
import {
  appendJsonLine,
  appendRecord,
  checkRecordsWritable,
  type Provenance,
  readRecords,
  tablePath,
  withProvenance,
} from "../results/store.ts";
import {
  clearRun,
  describeRun,
  inspectRun,
  NonFiniteLoss,
  RunExistsError,
  stepsForFlops,
  train,
  type TrainerConfig,
  type TrainerResult,
} from "../train/trainer.ts";
import type { NativePlace, TrainEngine } from "../train/steps.ts";
import { DATA_DIR, LOCAL_RESULTS_DIR, REPO_ROOT, RUNS_DIR } from "../paths.ts";
import type { RunRecord } from "../results/records.ts";

export interface RunSpec {
  /** Unique name; the run directory is <runsDir>/<name>. */
  name: string;
  model: string;
  /** The model config (fields of the family; vocab_size of subword models comes from the tokenizer). */
  config: Record<string, unknown>;
  domain: Domain;
  /** Which data: `smoke` = the tracked sample, otherwise the built corpus when present (see dataLocation). */
  scale: string;
  train: {
    batch: number;
    /** Tokens per sequence. */
    length: number;
    lr: number;
    warmup: number;
    seed: number;
    /** Warm-up as a fraction of the run's steps, in place of `warmup` (plans whose steps vary by model). */
    warmupFraction?: number;
    /** Refuse the run, before it trains, when it would take fewer optimizer steps than this. */
    minSteps?: number;
    /** One of: a step count, a training-FLOP budget, or training bytes. */
    steps?: number;
    flops?: number;
    bytes?: number;
    /** Checkpoint every this many steps (default: about every 5% of the run). */
    checkpointEvery?: number;
  };
  /** Vocabulary size of the BPE tokenizer (subword models only). */
  vocab?: number;
  eval: {
    /** Tokens per evaluation window (default: the training length). */
    window?: number;
    /** Windows per forward pass (default: the training batch's tokens a pass). */
    batch?: number;
    /** Score at most this many bytes of the test split (default: all). */
    maxBytes?: number;
    split?: "test" | "validation";
    /**
     * Points of a validation curve (the record's `val_curve`): while training, every ceil(steps / valPoints)
     * steps and at the last, score the first `valBytes` (default 65,536) of the validation split. Runs scored
     * on the validation split (sweeps) and domains without one take none.
     */
    valPoints?: number;
    valBytes?: number;
  };
  /** Free-form labels copied into the record (e.g. the plan's group). */
  labels?: Record<string, unknown>;
}

export interface RunOptions {
  /** Where run directories live (default data/checkpoints/runs). */
  runsDir?: string;
  /** Results directory (default data/local/results: local, ignored by git; data/results publishes). */
  resultsDir?: string;
  /** The data/ folder holding samples/ and corpora/ (default the repository's). */
  dataDir?: string;
  /** Continue the run in its directory, if there is one (default true). */
  resume?: boolean;
  /** Without `resume`: remove what the run directory holds and start over (else such a rerun is refused). */
  overwrite?: boolean;
  /**
   * With `resume`: a run directory trained at another learning rate than the spec's starts over (a plan's
   * run whose family's sweep moved; reproduce asks for it), instead of refusing to resume.
   */
  restartChanged?: boolean;
  logEvery?: number;
  /** What runs the training steps (lib/train/steps.ts; default auto: the native engine for Mamba models on a real GPU). */
  engine?: TrainEngine;
  /** Quiet: no progress lines. */
  quiet?: boolean;
  /** Each training step's log entry, awaited (a notebook's live view: lib/plot/live.ts). */
  onStep?: TrainerConfig["onStep"];
  /** Called once the run's steps are known, before training (a live view's plan: its total and x axis). */
  onStart?: (p: { steps: number; batch: number; length: number; bytesPerToken: number }) => void;
  /** The run, already opened (locked and checked) by the caller with `openRun`; the caller closes it. */
  run?: OpenRun;
}

/** The record of a finished run, as appended to runs.jsonl. */
export type StoredRunRecord = RunRecord & { provenance: Provenance };

/** The finished run's record, written into its directory before it is appended to runs.jsonl. */
export const RECORD_FILE = "record.json";

/**
 * Checks a run name: one or more "/"-separated segments (plans nest their runs), none empty, ".", ".."
 * or starting with "."; no backslash, no absolute path. So <runsDir>/<name> stays inside runsDir.
 */
export function checkRunName(name: string): void {
  const segments = name.split("/");
  if (
    !name || name.includes("\\") || /[\0\n\r]/.test(name) ||
    segments.some((s) => !s || s === "." || s === ".." || s.startsWith("."))
  ) {
    throw new InputError(
      "run name",
      "name",
      `run name "${name}": use plain names separated by "/" (no "..", no empty part, no part starting with ".", no "\\")`,
    );
  }
}

/** A run directory, locked by this process and checked against what it already holds. */
export interface OpenRun {
  runDir: string;
  resultsDir: string;
  lock: DirLock;
  /** The record of the run when it had already finished (resume only: there is nothing to train). */
  finished?: StoredRunRecord;
  /** Releases the lock. */
  close(): Promise<void>;
}

async function readRunRecord(runDir: string): Promise<StoredRunRecord | undefined> {
  const path = `${runDir}/${RECORD_FILE}`;
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw new InputError(path, undefined, `${path}: cannot read the run's record: ${describeFsError(e)}`);
  }
  try {
    const r = JSON.parse(text);
    if (r && typeof r === "object" && typeof r.run === "string" && r.provenance) return r;
  } catch { /* reported below */ }
  throw new InputError(path, undefined, `${path}: not a run record (damaged); start over with --overwrite`);
}

/**
 * Opens a run before anything is computed: checks the name and that the results directory takes a record,
 * creates and locks <runsDir>/<name> (`LockHeldError` when another live process has it), and decides what
 * to do with what it holds: without `resume` a finished or interrupted run is refused (`RunExistsError`)
 * unless `overwrite`, which removes it; with `resume` an interrupted run continues and a finished one is
 * returned as `finished`. Nothing in the directory changes before the lock is held.
 */
export async function openRun(spec: RunSpec, opts: RunOptions = {}): Promise<OpenRun> {
  checkRunName(spec.name);
  const runDir = `${opts.runsDir ?? RUNS_DIR}/${spec.name}`;
  const resultsDir = opts.resultsDir ?? LOCAL_RESULTS_DIR;
  const resume = opts.resume ?? true;
  await checkRecordsWritable(
    "runs",
    resultsDir,
    "the run's record could not be saved: make it writable or choose another results directory (--results DIR)",
  );
  try {
    await Deno.mkdir(runDir, { recursive: true });
  } catch (e) {
    throw new FileWriteError(runDir, `${runDir}: cannot create the run directory: ${describeFsError(e)}`, {
      cause: e,
    });
  }
  const lock = await acquireDirLock(runDir, `run ${spec.name}`);
  try {
    const record = await readRunRecord(runDir);
    if (!resume) {
      const contents = await inspectRun(runDir);
      const model = await pathExists(`${runDir}/model`);
      const what = record
        ? `a finished run (${record.steps} steps, test bits-per-byte ${
          record.eval?.bits_per_byte?.toFixed?.(4) ?? "?"
        }, recorded ${record.provenance.time})`
        : describeRun(contents) ?? (model ? "a trained model (model/)" : undefined);
      if (what && !opts.overwrite) throw new RunExistsError(runDir, what, !!record);
      if (what) await removeRun(runDir);
    }
    // a plan's run whose learning rate moved (its family's sweep settled elsewhere) starts over: its
    // checkpoint or record is of another run
    const was = record?.lr ?? (await inspectRun(runDir)).lr;
    if (resume && opts.restartChanged && was !== undefined && Math.abs(was / spec.train.lr - 1) > 1e-9) {
      if (!opts.quiet) {
        console.error(
          `run ${spec.name}: trained at learning rate ${was}, the plan now gives ${spec.train.lr}: starting over`,
        );
      }
      await removeRun(runDir);
      return { runDir, resultsDir, lock, close: () => lock.release() };
    }
    return { runDir, resultsDir, lock, finished: resume ? record : undefined, close: () => lock.release() };
  } catch (e) {
    await lock.release();
    throw e;
  }
}

/**
 * A run's steps and warm-up: its step count, or as many steps as its FLOP budget (the model's own FLOPs per
 * token) or its byte budget (`bytesPerToken`: the training split's, for subword models) buys; the warm-up
 * as given or as a fraction of the steps. Refuses, naming the run, a budget giving fewer steps than
 * `minSteps`.
 */
export function trainSchedule(
  spec: Pick<RunSpec, "name" | "train">,
  model: LanguageModel,
  bytesPerToken = 1,
): { steps: number; warmup: number } {
  const t = spec.train;
  if ([t.steps, t.flops, t.bytes].filter((x) => x !== undefined).length !== 1) {
    throw new Error(`run ${spec.name}: give exactly one of train.steps, train.flops and train.bytes`);
  }
  const steps = t.steps ??
    (t.flops !== undefined
      ? stepsForFlops(model, t.flops, t.batch, t.length)
      : Math.max(1, Math.floor(t.bytes! / (t.batch * t.length * bytesPerToken))));
  if (t.minSteps !== undefined && steps < t.minSteps) {
    throw new Error(
      `run ${spec.name}: its budget buys ${steps} steps of ${t.batch} x ${t.length}, fewer than the ${t.minSteps} the plan asks (min_steps): raise the budget or shorten the batch`,
    );
  }
  const warmup = t.warmupFraction !== undefined ? Math.round(t.warmupFraction * steps) : t.warmup;
  return { steps, warmup };
}

/** Removes what a run directory holds: checkpoint, log, model and record (the lock stays). */
async function removeRun(runDir: string): Promise<void> {
  await clearRun(runDir);
  for (const p of [`${runDir}/model`, `${runDir}/${RECORD_FILE}`]) {
    await Deno.remove(p, { recursive: true }).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) {
        throw new FileWriteError(p, `${p}: cannot remove it: ${describeFsError(e)}`, { cause: e });
      }
    });
  }
}

/** Appends a finished run's stored record to runs.jsonl unless it is there already (same run and time). */
async function ensureRecorded(record: StoredRunRecord, resultsDir: string): Promise<boolean> {
  const recs = await readRecords<StoredRunRecord>("runs", resultsDir);
  if (recs.some((r) => r.run === record.run && r.provenance?.time === record.provenance.time)) return false;
  await appendJsonLine(tablePath("runs", resultsDir), record);
  return true;
}

/** Training and test text of a domain at a scale (bytes), and where they came from. */
export async function domainText(
  domain: Domain,
  scale: string,
  split: "test" | "validation" = "test",
  dataDir: string = DATA_DIR,
) {
  const loc = await dataLocation(scale, dataDir);
  if (!loc.domains.includes(domain)) {
    throw new Error(
      `no data for domain "${domain}" in ${loc.dir} (have: ${loc.domains.join(", ") || "none"}); ${loc.note}`,
    );
  }
  let evalSplit = split;
  if (!(await pathExists(`${loc.dir}/${domain}/${split}`)) && split === "validation") evalSplit = "test";
  const testDir = `${loc.dir}/${domain}/${evalSplit}`;
  const testDocuments = await readCheckedDocuments(loc, domain, evalSplit);
  const spans = documentSpans(testDocuments.map((d) => d.bytes.length));
  return {
    train: await readCheckedSplit(loc, domain, "train"),
    test: joinDocuments(testDocuments.map((d) => d.bytes)),
    /** The test text's documents in order: a name (the file under the split's folder) and the bytes of its part. */
    testDocuments: testDocuments.map((d, i) => ({ name: d.path.slice(testDir.length + 1), span: spans[i] })),
    trainPath: `${loc.dir}/${domain}/train`,
    source: loc.dir.replace(REPO_ROOT, ""),
    evalSplit,
    note: loc.note,
  };
}

/**
 * The first `bytes` bytes of a domain's validation split (its documents joined as the test split's are), or
 * undefined where the domain has none.
 */
async function validationText(domain: Domain, scale: string, bytes: number, dataDir: string = DATA_DIR) {
  const loc = await dataLocation(scale, dataDir);
  if (!(await pathExists(`${loc.dir}/${domain}/validation`))) return undefined;
  const text = joinDocuments((await readCheckedDocuments(loc, domain, "validation")).map((d) => d.bytes));
  return text.subarray(0, bytes);
}

/** Bytes of the training split a domain's BPE tokenizer learns its merges from. */
export const TOKENIZER_TRAIN_BYTES = 4 << 20;

/**
 * The BPE tokenizer of a domain (trained on its training split, cached next to the runs so every subword
 * model of a plan shares one).
 */
export async function domainTokenizer(
  train: Uint8Array,
  vocab: number,
  cachePath: string,
  quiet = false,
): Promise<ByteBPE> {
  if (await pathExists(cachePath)) {
    const bpe = await ByteBPE.load(cachePath);
    if (bpe.vocabSize === vocab) return bpe;
  }
  if (!quiet) console.error(`training a ${vocab}-token BPE tokenizer on ${train.length} bytes...`);
  const bpe = trainBpe(train, { vocabSize: vocab, maxTrainBytes: TOKENIZER_TRAIN_BYTES });
  await Deno.mkdir(cachePath.slice(0, cachePath.lastIndexOf("/")), { recursive: true });
  await atomicWriteFile(cachePath, JSON.stringify(bpe.toJSON()) + "\n");
  return bpe;
}

/**
 * Runs (or resumes) one training run and evaluates it; returns the record appended to runs.jsonl (or, when
 * the run had finished before, its stored record, appended only if runs.jsonl lacks it).
 */
export async function runExperiment(spec: RunSpec, opts: RunOptions = {}): Promise<RunRecord> {
  const runsDir = opts.runsDir ?? RUNS_DIR;
  family(spec.model); // unknown model names fail before any work
  const run = opts.run ?? await openRun(spec, opts);
  try {
    return await runOpened(spec, opts, runsDir, run);
  } finally {
    if (!opts.run) await run.close();
  }
}

async function runOpened(spec: RunSpec, opts: RunOptions, runsDir: string, run: OpenRun): Promise<RunRecord> {
  const { runDir, resultsDir } = run;
  const say = (s: string) => opts.quiet || console.error(s);
  const text = await domainText(spec.domain, spec.scale, spec.eval.split, opts.dataDir);
  if (spec.eval.split === "validation" && text.evalSplit !== "validation") {
    // a learning-rate sweep must not choose its rate on the test split
    throw new InputError(
      `${text.source}/${spec.domain}/validation`,
      undefined,
      `run ${spec.name}: scores the validation split, which ${text.source}/${spec.domain} does not have`,
    );
  }
  const subword = TOKEN_UNIT[spec.model as keyof typeof TOKEN_UNIT] === "subword";
  let tokenizer: ByteBPE | undefined;
  let ids: Uint8Array | Int32Array = text.train;
  let bytesPerToken = 1;
  const config = { ...spec.config };
  if (subword) {
    if (!spec.vocab) {
      throw new Error(
        `run ${spec.name}: subword model ${spec.model} needs "vocab" (the BPE vocabulary size)`,
      );
    }
    tokenizer = await domainTokenizer(
      text.train,
      spec.vocab,
      `${runsDir}/tokenizers/${spec.scale}-${spec.domain}-${spec.vocab}.json`,
      opts.quiet,
    );
    ids = tokenizer.encode(text.train);
    bytesPerToken = text.train.length / ids.length;
    config.vocab_size = tokenizer.vocabSize;
  }
  const model = createModel(spec.model, config, spec.train.seed);
  try {
    const t = spec.train;
    const { steps, warmup } = trainSchedule(spec, model, bytesPerToken);
    const flopsPerToken = model.trainFlopsPerToken(t.length);
    const flopsPerStep = flopsPerToken * t.batch * t.length;
    say(
      `run ${spec.name}: ${spec.model} (${
        countParameters(model).toLocaleString("en")
      } parameters) on ${spec.domain} ` +
        `[${text.source}], ${steps} steps of ${t.batch} x ${t.length} ${subword ? "tokens" : "bytes"}, ` +
        `${(flopsPerStep * steps).toExponential(2)} training FLOPs`,
    );
    if (ids.length < t.length + 1) {
      throw new InputError(
        text.trainPath,
        undefined,
        `${text.trainPath}: the training split has ${text.train.length} bytes (${ids.length} ${
          subword ? "tokens" : "bytes"
        }), fewer than one training window of ${t.length + 1}; add data or lower --length`,
      );
    }
    opts.onStart?.({ steps, batch: t.batch, length: t.length, bytesPerToken });
    const window = spec.eval.window ?? t.length;
    const batch = spec.eval.batch ?? evalBatch(t.batch, t.length, window);
    for (const k of ["valPoints", "valBytes"] as const) {
      const v = spec.eval[k];
      if (v !== undefined && !(Number.isInteger(v) && v >= 1)) {
        throw new RangeError(`run ${spec.name}: eval.${k} must be an integer >= 1 (got ${v})`);
      }
    }
    const heldOut = text.evalSplit === "test" && spec.eval.valPoints
      ? await validationText(spec.domain, spec.scale, spec.eval.valBytes ?? 65536, opts.dataDir)
      : undefined;
    let result: TrainerResult;
    try {
      result = await train(model, ids, {
        steps,
        batch: t.batch,
        length: t.length,
        lr: t.lr,
        warmup,
        seed: t.seed,
        bytesPerToken,
        runDir,
        checkpointEvery: t.checkpointEvery ?? Math.max(1, Math.round(steps / 20)),
        resume: opts.resume ?? true,
        lock: run.lock,
        logEvery: opts.quiet ? 0 : (opts.logEvery ?? Math.max(1, Math.round(steps / 20))),
        engine: opts.engine,
        onStep: opts.onStep,
        ...(heldOut
          ? {
            validate: {
              every: Math.ceil(steps / spec.eval.valPoints!),
              score: async (m: LanguageModel, native?: NativePlace) =>
                (await scoreRun(m, heldOut, { window, tokenizer, batch }, native)).score.bits_per_byte,
            },
          }
          : {}),
      });
    } catch (e) {
      // a diverged run is an outcome (a learning-rate sweep counts it), recorded before it is reported
      if (e instanceof NonFiniteLoss) {
        await appendRecord("diverged", {
          run: spec.name,
          scale: spec.scale,
          model: spec.model,
          lr: t.lr,
          step: e.step,
          what: e.message,
          ...(spec.labels ? { labels: spec.labels } : {}),
        }, resultsDir);
      }
      throw e;
    }
    if (run.finished && result.resumed_from === steps) {
      // finished and recorded before, and its checkpoint matched these settings: nothing to do again
      const appended = await ensureRecorded(run.finished, resultsDir);
      say(
        `run ${spec.name}: already finished (${run.finished.steps} steps); its record is in ${
          tablePath("runs", resultsDir)
        }${appended ? " (appended now: it was missing)" : ""}; train it again with --overwrite`,
      );
      return run.finished;
    }
    // the final model, loadable by loadModel / `eval` / `generate`
    await saveModel(model, `${runDir}/model`, { run: spec.name });
    if (tokenizer) {
      await atomicWriteFile(`${runDir}/model/tokenizer.json`, JSON.stringify(tokenizer.toJSON()) + "\n");
    }
    const test = spec.eval.maxBytes ? text.test.subarray(0, spec.eval.maxBytes) : text.test;
    say(`evaluating ${spec.name} on ${test.length} bytes of the ${text.evalSplit} split...`);
    const t0 = performance.now();
    const { score, scoredBy } = await scoreRun(model, test, {
      window,
      tokenizer,
      batch,
      documents: clipSpans(text.testDocuments.map((d) => d.span), test.length),
    }, result.native);
    const record: RunRecord = {
      run: spec.name,
      model: spec.model,
      domain: spec.domain,
      scale: spec.scale,
      data: text.source,
      config: model.config,
      parameters: countParameters(model),
      train_flops_per_token: flopsPerToken,
      train_flops: flopsPerToken * result.tokens_seen,
      steps,
      batch: t.batch,
      length: t.length,
      lr: t.lr,
      warmup,
      seed: t.seed,
      tokens_seen: result.tokens_seen,
      bytes_seen: result.bytes_seen,
      bytes_per_token: bytesPerToken,
      train_wall_s: result.wall_s,
      train_bytes_per_s: result.bytes_seen / result.wall_s,
      engine: result.engine,
      final_train_bpb: result.log.at(-1)?.bits_per_byte ?? NaN,
      curve: downsampleCurve(result.log.map((e) => e.bits_per_byte), flopsPerStep, 50),
      ...(heldOut
        ? {
          val_curve: result.log.flatMap((e): [number, number, number][] =>
            e.val_bits_per_byte === undefined ? [] : [[e.step, e.step * flopsPerStep, e.val_bits_per_byte]]
          ),
          val_curve_bytes: heldOut.length,
        }
        : {}),
      eval: evalRecord(
        score,
        text.evalSplit,
        test,
        window,
        batch,
        (performance.now() - t0) / 1000,
        text.testDocuments,
        scoredBy,
      ),
      ...(spec.labels ? { labels: spec.labels } : {}),
    };
    // kept in the run directory first: a results file that cannot take it loses nothing
    const stored = await withProvenance(record as unknown as Record<string, unknown>);
    await atomicWriteFile(`${runDir}/${RECORD_FILE}`, JSON.stringify(stored, null, 1) + "\n");
    const path = tablePath("runs", resultsDir);
    try {
      await appendJsonLine(path, stored);
    } catch (e) {
      throw new FileWriteError(
        path,
        `${
          (e as Error).message
        }; the run's record is kept in ${runDir}/${RECORD_FILE}, and \`--resume\` with the same settings appends it`,
        { cause: e },
      );
    }
    say(
      `${spec.name}: test bits-per-byte ${score.bits_per_byte.toFixed(4)}, word perplexity ${
        score.word_perplexity.toFixed(1)
      }`,
    );
    return record;
  } finally {
    disposeModel(model);
  }
}

/**
 * `scoreText` as a run scores: on a native engine of the backend that trained the model (a fresh one,
 * loaded with the model's parameters) where the engine scores its family (the attention models,
 * lib/eval/engine_scorer.ts; `native` is where the run's engine ran), else through the model's TF.js
 * forward pass. The engine gives TF.js's numbers (tests/engine_scorer_test.ts) in seconds where TF.js took
 * minutes of GPU time for the Transformer and PerceiverAR. `scoredBy` names the path taken.
 */
export async function scoreRun(
  model: LanguageModel,
  text: Uint8Array,
  opts: ScoreOptions,
  native?: NativePlace,
): Promise<{ score: TextScore; scoredBy: string }> {
  const scorer = native && ENGINE_SCORED_KINDS.includes(model.kind)
    ? await EngineScorer.create(model, native)
    : undefined;
  try {
    const score = await scoreText(model, text, { ...opts, ...(scorer ? { scorer } : {}) });
    return { score, scoredBy: scorer?.name ?? `TF.js (${tf.getBackend()})` };
  } finally {
    scorer?.destroy();
  }
}

/** A run record's `eval`: the score of `test` (its unigram entropy beside it), and how it was scored. */
export function evalRecord(
  score: TextScore,
  split: string,
  test: Uint8Array,
  window: number,
  batch: number,
  wallS: number,
  documents?: { name: string }[],
  scoredBy?: string,
): RunRecord["eval"] {
  return {
    split,
    bytes: score.bytes,
    tokens: score.tokens,
    bits_per_byte: score.bits_per_byte,
    word_perplexity: score.word_perplexity,
    words: score.words,
    window,
    batch,
    wall_s: wallS,
    ...(scoredBy ? { scored_by: scoredBy } : {}),
    unigram_bpb: unigramBitsPerByte(test),
    ...(documents && score.documents
      ? {
        documents: score.documents.flatMap((d, i) =>
          d.bytes > 0
            ? [{ name: documents[i].name, bytes: d.bytes, bits_per_byte: d.nats / d.bytes / Math.LN2 }]
            : []
        ),
      }
      : {}),
  };
}

/** Document spans cut to the first `bytes` bytes (an evaluation of a prefix: `eval.maxBytes`). */
export function clipSpans(spans: number[], bytes: number): number[] {
  let left = bytes;
  return spans.map((n) => {
    const kept = Math.min(n, left);
    left -= kept;
    return kept;
  });
}

/** Loads a trained run's model (and tokenizer, for subword models) from a model directory. */
export async function loadTrained(dir: string): Promise<{ model: LanguageModel; tokenizer?: ByteBPE }> {
  const model = await loadModel(dir);
  if (TOKEN_UNIT[model.kind] === "subword" && !model.tokenizer) {
    throw new InputError(
      `${dir}/tokenizer.json`,
      undefined,
      `${dir}: a ${model.kind} model needs its tokenizer.json next to config.json`,
    );
  }
  return { model, tokenizer: model.tokenizer };
}

/** Averages a per-step series into about `points` buckets: [last step, FLOPs at it, mean value]. */
export function downsampleCurve(
  values: number[],
  flopsPerStep: number,
  points: number,
): [number, number, number][] {
  const out: [number, number, number][] = [];
  const per = Math.max(1, Math.ceil(values.length / points));
  for (let i = 0; i < values.length; i += per) {
    const chunk = values.slice(i, i + per);
    const step = i + chunk.length;
    out.push([step, step * flopsPerStep, chunk.reduce((a, b) => a + b, 0) / chunk.length]);
  }
  return out;
}
