/**
 * One training run as an experiment: data of a domain -> (tokenizer for subword models) -> model ->
 * trainer (checkpointed, resumable) -> test-split evaluation -> one record in data/results/runs.jsonl.
 * `deno task mambabyte train` and the plan runner (plan.ts) both come through here, so every model is
 * trained and evaluated the same way.
 */
import { readSplit } from "../data/bytes.ts";
import { ByteBPE, trainBpe } from "../data/bpe.ts";
import { dataLocation } from "../data/describe.ts";
import type { Domain } from "../data/corpora/types.ts";
import { atomicWriteFile, pathExists } from "../io/atomic.ts";
import { InputError } from "../io/errors.ts";
import { countParameters, disposeModel, type LanguageModel, TOKEN_UNIT } from "../models/lm.ts";
import { createModel, family, loadModel, saveModel } from "../models/registry.ts";
import { evalBatch, scoreText } from "../eval/score.ts";
import { appendRecord } from "../results/store.ts";
import { stepsForFlops, train, type TrainerResult } from "../train/trainer.ts";
import { REPO_ROOT, RESULTS_DIR } from "../paths.ts";
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
    /** Either a step count or a training-FLOP budget. */
    steps?: number;
    flops?: number;
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
  };
  /** Free-form labels copied into the record (e.g. the plan's group). */
  labels?: Record<string, unknown>;
}

export interface RunOptions {
  /** Where run directories live (default data/checkpoints/runs). */
  runsDir?: string;
  /** Results directory (default data/results). */
  resultsDir?: string;
  resume?: boolean;
  logEvery?: number;
  /** Quiet: no progress lines. */
  quiet?: boolean;
}

/** Training and test text of a domain at a scale (bytes), and where they came from. */
export async function domainText(domain: Domain, scale: string, split: "test" | "validation" = "test") {
  const loc = await dataLocation(scale, `${REPO_ROOT}data`);
  if (!loc.domains.includes(domain)) {
    throw new Error(
      `no data for domain "${domain}" in ${loc.dir} (have: ${loc.domains.join(", ") || "none"}); ${loc.note}`,
    );
  }
  let evalDir = `${loc.dir}/${domain}/${split}`;
  if (!(await pathExists(evalDir)) && split === "validation") evalDir = `${loc.dir}/${domain}/test`;
  return {
    train: await readSplit(`${loc.dir}/${domain}/train`),
    test: await readSplit(evalDir),
    source: loc.dir.replace(REPO_ROOT, ""),
    evalSplit: evalDir.endsWith("/test") ? "test" : "validation",
    note: loc.note,
  };
}

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
  const bpe = trainBpe(train, { vocabSize: vocab, maxTrainBytes: 4 << 20 });
  await Deno.mkdir(cachePath.slice(0, cachePath.lastIndexOf("/")), { recursive: true });
  await atomicWriteFile(cachePath, JSON.stringify(bpe.toJSON()) + "\n");
  return bpe;
}

/** Runs (or resumes) one training run and evaluates it; returns the record appended to runs.jsonl. */
export async function runExperiment(spec: RunSpec, opts: RunOptions = {}): Promise<RunRecord> {
  const runsDir = opts.runsDir ?? `${REPO_ROOT}data/checkpoints/runs`;
  const runDir = `${runsDir}/${spec.name}`;
  const say = (s: string) => opts.quiet || console.error(s);
  family(spec.model); // unknown model names fail before any work
  const text = await domainText(spec.domain, spec.scale, spec.eval.split);
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
    if ((t.steps === undefined) === (t.flops === undefined)) {
      throw new Error(`run ${spec.name}: give exactly one of train.steps and train.flops`);
    }
    const steps = t.steps ?? stepsForFlops(model, t.flops!, t.batch, t.length);
    const flopsPerToken = model.trainFlopsPerToken(t.length);
    say(
      `run ${spec.name}: ${spec.model} (${
        countParameters(model).toLocaleString("en")
      } parameters) on ${spec.domain} ` +
        `[${text.source}], ${steps} steps of ${t.batch} x ${t.length} ${subword ? "tokens" : "bytes"}, ` +
        `${(flopsPerToken * t.batch * t.length * steps).toExponential(2)} training FLOPs`,
    );
    const result: TrainerResult = await train(model, ids, {
      steps,
      batch: t.batch,
      length: t.length,
      lr: t.lr,
      warmup: t.warmup,
      seed: t.seed,
      bytesPerToken,
      runDir,
      checkpointEvery: t.checkpointEvery ?? Math.max(1, Math.round(steps / 20)),
      resume: opts.resume ?? true,
      logEvery: opts.quiet ? 0 : (opts.logEvery ?? Math.max(1, Math.round(steps / 20))),
    });
    // the final model, loadable by loadModel / `eval` / `generate`
    await saveModel(model, `${runDir}/model`, { run: spec.name });
    if (tokenizer) {
      await atomicWriteFile(`${runDir}/model/tokenizer.json`, JSON.stringify(tokenizer.toJSON()) + "\n");
    }
    const test = spec.eval.maxBytes ? text.test.subarray(0, spec.eval.maxBytes) : text.test;
    const window = spec.eval.window ?? t.length;
    say(`evaluating ${spec.name} on ${test.length} bytes of the ${text.evalSplit} split...`);
    const t0 = performance.now();
    const batch = spec.eval.batch ?? evalBatch(t.batch, t.length, window);
    const score = await scoreText(model, test, { window, tokenizer, batch });
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
      seed: t.seed,
      tokens_seen: result.tokens_seen,
      bytes_seen: result.bytes_seen,
      bytes_per_token: bytesPerToken,
      train_wall_s: result.wall_s,
      train_bytes_per_s: result.bytes_seen / result.wall_s,
      final_train_bpb: result.log.at(-1)?.bits_per_byte ?? NaN,
      curve: downsampleCurve(result.log.map((e) => e.bits_per_byte), flopsPerToken * t.batch * t.length, 50),
      eval: {
        split: text.evalSplit,
        bytes: score.bytes,
        tokens: score.tokens,
        bits_per_byte: score.bits_per_byte,
        word_perplexity: score.word_perplexity,
        words: score.words,
        window,
        batch,
        wall_s: (performance.now() - t0) / 1000,
      },
      ...(spec.labels ? { labels: spec.labels } : {}),
    };
    await appendRecord("runs", record as unknown as Record<string, unknown>, opts.resultsDir ?? RESULTS_DIR);
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
