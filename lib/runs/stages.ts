/**
 * The evaluation stages of recorded runs: length extrapolation (lib/eval/extrapolation.ts) and noise
 * robustness (lib/eval/noise.ts) on one shared loop. A stage picks, per model family, the run it evaluates
 * (`pickRuns`), skips what it has already evaluated (same run and run time: a re-trained run is evaluated
 * again; per noise setting and per extrapolation length and mode, so the next pass finishes a stage that a
 * time limit cut short), loads each trained model with its tokenizer and test text, evaluates, and appends
 * records as soon as each is known.
 *
 *   deno run -A lib/runs/stages.ts extrapolation [--scale S] [--results DIR] [--runs-dir DIR] [--domain D]
 *       [--kinds a,b] [--force] [--max-tokens N] [--engine auto|native|tfjs]
 *   deno run -A lib/runs/stages.ts noise [same flags] [--max-bytes N]
 *
 * `reproduce` runs each stage in a child process this way (a model that exhausts the wasm heap aborts
 * that process only).
 */
import { initBackend, releasePooledGpuBuffers, tf, webgpuAdapter } from "../backend.ts";
import { ENGINE_EXTRAPOLATED_KINDS, EngineScorer } from "../eval/engine_scorer.ts";
import { nativeBackendFor } from "../train/steps.ts";
import { SCALES } from "../scales.ts";
import { helpOrUnknown } from "../util/usage.ts";
import type { ByteBPE } from "../data/bpe.ts";
import {
  EXTRAPOLATION_MULTIPLES,
  extrapolationModes,
  type ExtrapolationOptions,
  extrapolationRecords,
} from "../eval/extrapolation.ts";
import { group } from "d3-array";
import { evaluateNoise, NOISE_SETTINGS } from "../eval/noise.ts";
import { evalBatch } from "../eval/score.ts";
import { countParameters, disposeModel, type LanguageModel, TOKEN_UNIT } from "../models/lm.ts";
import { repoRelative, RESULTS_DIR, RUNS_DIR } from "../paths.ts";
import { appendRecord, readRecords } from "../results/store.ts";
import { isTopBudget } from "../results/compute_matched.ts";
import { isHalfCopy } from "../models/half_precision.ts";
import { pathExists } from "../io/atomic.ts";
import { MAMBA_KINDS } from "../models/registry.ts";
import { countWords } from "../data/bytes.ts";
import { domainText, loadTrained } from "./experiment.ts";
import type { EvaluatedModel, ExtrapolationRecord, NoiseRecord, RunLike } from "../results/records.ts";

export interface StageOptions {
  scale: string;
  resultsDir?: string;
  runsDir?: string;
  /** The domain whose runs are evaluated (default books, the PG19 stand-in, else the first present). */
  domain?: string;
  /** Model families (default: the stage's own list). */
  kinds?: string[];
  /** Evaluate runs that already have records too (default: skip them). */
  force?: boolean;
  quiet?: boolean;
  /**
   * Extrapolation: what scores the byte Transformer and MegaByte: "native" (the engine, lib/eval/
   * engine_scorer.ts: any length; on WebGPU where TF.js runs there, a software adapter included, else the
   * CPU engine), "tfjs" (capped at maxAttentionLength), "auto" (default: native on TF.js's webgpu backend
   * with a real GPU adapter).
   */
  engine?: "auto" | "native" | "tfjs";
}

/** What one stage does with one loaded run. */
interface Stage<O> {
  table: "extrapolation" | "noise";
  /** The families the stage compares by default. */
  kinds: string[];
  /** Between a family's full-budget runs of equal standing, which comes first (pickRuns' `prefer`). */
  prefer?: (a: RunLike, b: RunLike) => number;
  /**
   * Whether a model's records already hold everything the stage would record (default: any record does);
   * an incomplete one is evaluated for the rest.
   */
  complete?: (before: Record<string, unknown>[], opts: O) => boolean;
  /** The domain evaluated at a scale unless --domain says: "all" evaluates a run per domain. */
  domainAt?: (scale: string) => string | undefined;
  evaluate(
    run: EvaluatedRun,
    opts: O,
    record: (r: Record<string, unknown>) => Promise<void>,
    say: (line: string) => void,
  ): Promise<void>;
}

/** A recorded run with its trained model, tokenizer and test text loaded. */
interface EvaluatedRun {
  record: RunLike & { eval?: { window?: number } };
  model: LanguageModel;
  tokenizer?: ByteBPE;
  test: Uint8Array;
  /** The fields every record of the stage shares (scale, run, model, data, parameters). */
  about: EvaluatedModel & { parameters: number };
  /** This model's records already in the table (a stage cut short by a time limit): not evaluated again. */
  before: Record<string, unknown>[];
}

/**
 * The records of `table` per evaluated model, keyed `run|run_time`, so a stage does not evaluate the same
 * trained model twice (a re-trained run has a new time and is evaluated again) and can finish one that a
 * time limit cut short.
 */
export async function evaluatedRuns(
  table: string,
  resultsDir: string,
): Promise<Map<string, Record<string, unknown>[]>> {
  type Evaluated = Record<string, unknown> & { run?: string; run_time?: string };
  const recs = await readRecords<Evaluated>(table, resultsDir);
  return group(recs.filter((r) => r.run), (r: Evaluated) => `${r.run}|${r.run_time ?? ""}`) as Map<
    string,
    Record<string, unknown>[]
  >;
}

/** The plan's principal entry of a family (the entry named as the family) before its variants. */
const principalFirst = (a: RunLike, b: RunLike) =>
  Number((b.labels?.entry ?? b.model) === b.model) - Number((a.labels?.entry ?? a.model) === a.model);

/**
 * The runs to evaluate: per model family of `kinds`, one run on `domain` (default books, the PG19
 * stand-in, else the first domain present; "all": one on every domain), the full-budget one
 * (labels.budget_ratio 1), then the first by `prefer` (default: the family's principal entry), then the one
 * with the most FLOPs.
 */
export function pickRuns<T extends RunLike>(
  runs: T[],
  kinds: string[],
  domain?: string,
  prefer: (a: RunLike, b: RunLike) => number = principalFirst,
): T[] {
  const domains = [...new Set(runs.map((r) => r.domain))];
  if (domain === "all") return domains.flatMap((d) => pickRuns(runs, kinds, d, prefer));
  const d = domain ?? (domains.includes("books") ? "books" : domains[0]);
  const out: T[] = [];
  for (const kind of kinds) {
    const mine = runs.filter((r) => r.model === kind && r.domain === d)
      .sort((a, b) =>
        Number((b.labels?.budget_ratio ?? 1) === 1) - Number((a.labels?.budget_ratio ?? 1) === 1) ||
        prefer(a, b) || (b.train_flops ?? 0) - (a.train_flops ?? 0)
      );
    if (mine.length) out.push(mine[0]);
  }
  return out;
}

/**
 * The run a stage evaluates for `run` (its entry's seed 0): `run` once it has records in `table`; else another
 * seed of its entry (same domain, top budget, the latest record of each) that has records there, so that a
 * table never holds two seeds of one entry; else `run` where its model is in `runsDir`; else the first other
 * seed whose model is (a device's run whose own model went with the machine: a committed float16 copy of
 * another seed stands in, its records naming the seed's run).
 */
async function standIn<T extends RunLike>(
  run: T,
  seeds: T[],
  runsDir: string,
  evaluated: Map<string, unknown[]>,
  table: string,
  say: (line: string) => void,
): Promise<T> {
  const recorded = (r: RunLike) => [...evaluated.keys()].some((k) => k.startsWith(`${r.run}|`));
  if (recorded(run)) return run;
  const entry = (r: RunLike) => r.labels?.entry ?? r.model;
  const others = [...new Map(seeds.map((r) => [r.run, r])).values()]
    .filter((r) => r.domain === run.domain && r.model === run.model && entry(r) === entry(run))
    .sort((a, b) => Number(a.labels?.seed) - Number(b.labels?.seed));
  const before = others.find(recorded);
  if (before) return before;
  if (await pathExists(`${runsDir}/${run.run}/model/config.json`)) return run;
  for (const r of others) {
    if (await pathExists(`${runsDir}/${r.run}/model/config.json`)) {
      say(
        `${table}: ${run.run} has no model in ${
          repoRelative(runsDir)
        }: its seed ${r.labels?.seed} (${r.run}) stands in`,
      );
      return r;
    }
  }
  return run;
}

/** The shared loop: pick, skip what is done, load, evaluate, record; returns the records appended. */
async function runStage<O extends StageOptions>(
  stage: Stage<O>,
  runs: (RunLike & { eval?: { window?: number } })[],
  opts: O,
): Promise<Record<string, unknown>[]> {
  await import("../models/mod.ts"); // every family registered, so any trained model loads
  const say = (s: string) => opts.quiet || console.error(s);
  const runsDir = opts.runsDir ?? RUNS_DIR;
  const resultsDir = opts.resultsDir ?? RESULTS_DIR;
  const kinds = opts.kinds ?? stage.kinds;
  // the latest record of each run (a re-trained run is recorded again)
  // runs of extra seeds (labels.seed) measure the seed spread, sweeps and lower budgets the curves; the
  // evaluations use the plan's own seed at the top budget
  const latest = [
    ...new Map(
      runs.filter((r) => r.scale === opts.scale && r.labels?.seed === undefined && isTopBudget(r))
        .map((r) => [r.run, r]),
    ).values(),
  ];
  const picked = pickRuns(latest, kinds, opts.domain ?? stage.domainAt?.(opts.scale), stage.prefer);
  // a run whose model is not on this machine (trained on a device given back since) gives way to another
  // seed of its entry whose model is, once it has no records of its own: the records name the seed's run
  const seeds = runs.filter((r) => r.scale === opts.scale && r.labels?.seed !== undefined && isTopBudget(r));
  // the table's records, read once: they choose the stand-ins (with --force too, so a table keeps one seed
  // of an entry) and, without --force, what is already done
  const recorded = await evaluatedRuns(stage.table, resultsDir);
  const chosen: typeof picked = [];
  for (const run of picked) chosen.push(await standIn(run, seeds, runsDir, recorded, stage.table, say));
  if (!chosen.length) say(`${stage.table}: no runs of ${kinds.join(", ")} recorded at scale ${opts.scale}`);
  const evaluated = opts.force ? new Map<string, Record<string, unknown>[]>() : recorded;
  const out: Record<string, unknown>[] = [];
  for (const run of chosen) {
    const dir = `${runsDir}/${run.run}/model`;
    // a float16 copy brought back from a device (the run's own checkpoint stayed there) is another model
    // than the run's float32 one: the records of one do not stand for the other
    const weights = await isHalfCopy(dir) ? "float16 copy" : undefined;
    const key = `${run.run}|${run.provenance?.time ?? ""}`;
    const records = evaluated.get(key) ?? [];
    const before = records.filter((r) => r.weights === weights);
    if (before.length && (stage.complete?.(before, opts) ?? true)) {
      say(
        `${stage.table}: ${run.run} already evaluated (records in ${resultsDir}/${stage.table}.jsonl; ` +
          `--force evaluates again)`,
      );
      continue;
    }
    // no model here (a run trained on a machine given back since, and no seed to stand in): records of it
    // (of its float32 model or of a float16 copy) stay as they are; without any, the other runs are still
    // evaluated, so a device's last call evaluates what it has
    if (!(await pathExists(`${dir}/config.json`))) {
      const kept = recorded.get(key)?.length ?? 0; // the table's, with --force too
      say(
        kept
          ? `${stage.table}: ${run.run} has ${kept} records and its model is not in ${
            repoRelative(dir)
          }: left as they are`
          : `${stage.table}: ${run.run} is not evaluated: its model is not in ${repoRelative(dir)} (bring ` +
            `back its float16 copy, export --format f16, to evaluate it here)`,
      );
      continue;
    }
    const { model, tokenizer } = await loadTrained(dir);
    try {
      const text = await domainText(run.domain as Parameters<typeof domainText>[0], run.scale);
      const about = {
        scale: opts.scale,
        run: run.run,
        run_time: run.provenance?.time,
        model_dir: repoRelative(dir),
        model_kind: model.kind,
        label: String(run.labels?.label ?? run.model),
        unit: TOKEN_UNIT[model.kind],
        domain: run.domain,
        data: `${text.source}/${run.domain}/${text.evalSplit}`,
        parameters: countParameters(model),
        ...(weights ? { weights } : {}),
      };
      await stage.evaluate(
        { record: run, model, tokenizer, test: text.test, about, before },
        opts,
        async (r) => {
          await appendRecord(stage.table, r, resultsDir);
          out.push(r);
        },
        say,
      );
    } finally {
      disposeModel(model);
      // the pool TF.js kept for this run's shapes: left, it starves the next run's engine (releasePooledGpuBuffers)
      releasePooledGpuBuffers();
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Extrapolation

/** The settings of each scale (tokens scored per length, attention cap). */
export const EXTRAPOLATION_SCALES: Record<string, Partial<ExtrapolationOptions>> = {
  smoke: { maxTokens: 8192, maxAttentionLength: 4096 },
  small: { maxTokens: 65536, maxAttentionLength: 4096 },
  gpu: { maxTokens: 1 << 19, maxAttentionLength: 16384 },
  large: { maxTokens: 1 << 20, maxAttentionLength: 16384 },
};

/** The extrapolation settings of a pass: its scale's, with what the options say over them. */
const extrapolationSettings = (opts: StageOptions & { settings?: Partial<ExtrapolationOptions> }) => ({
  ...(EXTRAPOLATION_SCALES[opts.scale] ?? {}),
  ...(opts.settings ?? {}),
});

/**
 * Which of a family's full-budget runs extrapolation evaluates: the longest trained context (the large
 * scale trains MambaByte and the Transformer at 8192 to test it), then the principal entry.
 */
export const extrapolationPrefer = (a: RunLike, b: RunLike) =>
  (b.length ?? 0) - (a.length ?? 0) || principalFirst(a, b);

/** The model families the experiment compares (PAPER.md): MambaByte, subword Mamba, the byte Transformer. */
export const EXTRAPOLATION_KINDS = ["mambabyte", "mamba_subword", "transformer"];

const EXTRAPOLATION: Stage<StageOptions & { settings?: Partial<ExtrapolationOptions> }> = {
  table: "extrapolation",
  kinds: EXTRAPOLATION_KINDS,
  prefer: (a, b) => extrapolationPrefer(a, b),
  // every length asked for in every mode of the model's kind (whole; and sliding windows, unless Mamba),
  // recorded as scored or as capped; a model with less is loaded again and `skip` leaves out what the
  // records hold, so a pass cut short by a time limit is finished
  complete: (before, opts) => {
    const settings = extrapolationSettings(opts);
    // the Mamba families are the recurrent ones (evaluateExtrapolation asks the model itself)
    const recurrent = (MAMBA_KINDS as readonly string[]).includes(String(before[0]?.model_kind));
    const modes = extrapolationModes(recurrent, settings.modes);
    return (settings.multiples ?? EXTRAPOLATION_MULTIPLES).every((m) =>
      modes.every((mode) => before.some((r) => r.multiple === m && r.mode === mode && r.status !== "failed"))
    );
  },
  async evaluate({ record: run, model, tokenizer, test, about, before }, opts, record, say) {
    // a length counts as done when scored over the same span of tokens as this pass scores (another
    // --max-tokens or longest length changes the span: then every length is scored again, so the table's
    // lengths share their bytes) or when it was capped; a failed one is tried again
    const skip = (multiple: number, mode: string, span: number) =>
      before.some((r) =>
        r.multiple === multiple && r.mode === mode &&
        (r.status === "skipped" || (r.status === "ok" && r.tokens === span))
      );
    say(
      `extrapolation: ${run.run} (${model.kind}, trained at ${run.length} tokens) on ${test.length} test bytes` +
        (before.length
          ? ` (${before.length} lengths and modes recorded by an earlier pass are not evaluated again)`
          : ""),
    );
    const settings = extrapolationSettings(opts);
    const { model_kind: _, unit: __, ...fields } = about;
    const scorer = await scorerFor(model, opts.engine ?? "auto");
    if (scorer) say(`  scored on the ${scorer.name}: no cap on the attention length`);
    try {
      await extrapolationRecords(
        model,
        test,
        {
          ...settings,
          trainedContext: run.length,
          tokenizer,
          scorer,
          skip,
          onProgress: (l) => say(`  ${l}`),
        },
        fields,
        (r) => record(r as unknown as Record<string, unknown>),
      );
    } finally {
      scorer?.destroy();
    }
  },
};

/** The engine scorer of an extrapolation, or undefined (TF.js scores): see StageOptions.engine. */
async function scorerFor(model: LanguageModel, engine: "auto" | "native" | "tfjs") {
  if (engine === "tfjs" || !ENGINE_EXTRAPOLATED_KINDS.includes(model.kind)) return undefined;
  if (engine === "auto" && !(tf.getBackend() === "webgpu" && (await webgpuAdapter())?.fallback === false)) {
    return undefined;
  }
  // the engine beside TF.js: webgpu on webgpu, else the CPU engine (WebAssembly kernels, else the JS twins)
  const backend = nativeBackendFor(tf.getBackend()) ?? "js";
  return await EngineScorer.create(model, { backend, allowSoftwareGpu: engine === "native" });
}

/**
 * Evaluates the recorded runs of a scale (see pickRuns) and appends one record per (model, length, mode).
 */
export async function extrapolationStage(
  runs: RunLike[],
  opts: StageOptions & { settings?: Partial<ExtrapolationOptions> },
): Promise<ExtrapolationRecord[]> {
  return await runStage(EXTRAPOLATION, runs, opts) as unknown as ExtrapolationRecord[];
}

// ---------------------------------------------------------------------------------------------------
// Noise

/** Clean bytes scored per model and setting (a prefix of the test split). */
export const NOISE_SCALES: Record<string, { maxBytes?: number; allDomains?: boolean }> = {
  smoke: { maxBytes: 4096 },
  small: { maxBytes: 32768 },
  gpu: { maxBytes: 262144 },
  // issue 6/6: noise robustness on all five domains (the figures show books, noise_domains every domain)
  large: { maxBytes: 1 << 20, allDomains: true },
};

/** MambaByte against subword Mamba (the paper's pair), plus the byte Transformer. */
export const NOISE_KINDS_COMPARED = ["mambabyte", "mamba_subword", "transformer"];

type NoiseStageOptions = StageOptions & { maxBytes?: number; seed?: number };

/** Whether `before` holds a noise setting scored with `seed` (and on a clean text of `words` words, if said). */
const noiseRecorded = (
  before: Record<string, unknown>[],
  kind: string,
  p: number,
  seed: number,
  words?: number,
) =>
  before.some((r) =>
    r.noise === kind && r.p === p && r.seed === seed && (words === undefined || r.words === words)
  );

const NOISE: Stage<NoiseStageOptions> = {
  table: "noise",
  kinds: NOISE_KINDS_COMPARED,
  domainAt: (scale) => NOISE_SCALES[scale]?.allDomains ? "all" : undefined,
  // every setting and the clean text recorded (antspeak alone takes about ten times the clean text's tokens
  // for a subword model, so a time limit may cut a model between settings)
  complete: (before, opts) => {
    const has = (kind: string, p: number) => noiseRecorded(before, kind, p, opts.seed ?? 0);
    return has("none", 0) && NOISE_SETTINGS.every((s) => has(s.kind, s.p));
  },
  async evaluate({ record: run, model, tokenizer, test, about, before }, opts, record, say) {
    const maxBytes = opts.maxBytes ?? NOISE_SCALES[opts.scale]?.maxBytes;
    const clean = maxBytes ? test.subarray(0, maxBytes) : test;
    const window = run.eval?.window ?? run.length;
    // a setting counts as done when scored with this pass's noise seed on the same clean text (its words)
    const words = countWords(clean);
    const has = (kind: string, p: number) => noiseRecorded(before, kind, p, opts.seed ?? 0, words);
    const settings = NOISE_SETTINGS.filter((s) => !has(s.kind, s.p));
    say(
      `noise: ${run.run} (${model.kind}) on ${clean.length} bytes of ${about.data}, window ${window}` +
        (settings.length < NOISE_SETTINGS.length
          ? `; ${settings.length} settings left of an earlier pass`
          : ""),
    );
    // each setting recorded as soon as it is scored (the clean text is scored again for the deltas, and
    // recorded once)
    await evaluateNoise(model, clean, {
      window,
      batch: run.batch ? evalBatch(run.batch, run.length, window) : 1,
      tokenizer,
      seed: opts.seed,
      settings,
      onProgress: (l) => say(`  ${l}`),
      onResult: async (r) => {
        if (r.noise === "none" && has("none", 0)) return;
        const rec: NoiseRecord = { experiment: "noise", ...about, ...r };
        await record(rec as unknown as Record<string, unknown>);
      },
    });
  },
};

/**
 * Evaluates the recorded runs of a scale (one per model family, see pickRuns) and appends one record per
 * (model, setting).
 */
export async function noiseStage(
  runs: (RunLike & { eval?: { window?: number } })[],
  opts: NoiseStageOptions,
): Promise<NoiseRecord[]> {
  return await runStage(NOISE, runs, opts) as unknown as NoiseRecord[];
}

// ---------------------------------------------------------------------------------------------------
// Command line: evaluate the recorded runs of a scale

const USAGE = `deno run -A lib/runs/stages.ts extrapolation|noise [options]
  evaluates the recorded runs of a scale (one run per model family on one domain) and appends the records
  to RESULTS/extrapolation.jsonl or RESULTS/noise.jsonl; runs already evaluated are skipped
  --scale S         ${Object.keys(SCALES).join(", ")} (default small, or SCALE)
  --results DIR     where runs.jsonl is read and the records appended (default data/results)
  --runs-dir DIR    where the runs' models are (default data/checkpoints/runs)
  --domain D        the domain whose runs are evaluated (default books, else the first recorded; noise at
                    the large scale: all; "all": every domain recorded)
  --kinds a,b       model families (default: the stage's, extrapolation ${EXTRAPOLATION_KINDS.join(",")};
                    noise ${NOISE_KINDS_COMPARED.join(",")})
  --force           evaluate runs already evaluated again
  --engine E        extrapolation: what scores the byte Transformer and MegaByte: auto (default: the native
                    engine on a real GPU), native (the engine, any length; WebGPU, software included), tfjs
  --max-tokens N    extrapolation: tokens scored per length (default per scale: ${
  Object.entries(EXTRAPOLATION_SCALES).map(([k, v]) => `${k} ${v.maxTokens}`).join(", ")
})
  --batch-tokens N  extrapolation: tokens a batch of rows holds (default 65536 on the engine, 4096 on TF.js,
                    16384 for Mamba); smaller where a length fails with a binding or memory limit (Mesa's
                    software WebGPU binds at most 128 MiB, the CPU engine's memory is 2 GiB)
  --max-bytes N     noise: bytes of the test split (default per scale: ${
  Object.entries(NOISE_SCALES).map(([k, v]) => `${k} ${v.maxBytes}`).join(", ")
})`;

if (import.meta.main) {
  const [table, ...args] = Deno.args;
  helpOrUnknown(Deno.args, USAGE, "lib/runs/stages.ts");
  const fail = (message: string): never => {
    console.error(`lib/runs/stages.ts: ${message}`);
    Deno.exit(2);
  };
  const flag = (name: string) => {
    const i = args.indexOf(`--${name}`);
    if (i >= 0 && (i + 1 >= args.length || args[i + 1].startsWith("--"))) fail(`--${name} needs a value`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const positive = (name: string) => {
    const v = flag(name);
    const x = Number(v);
    if (v !== undefined && !(Number.isSafeInteger(x) && x >= 1)) {
      fail(`--${name} must be a positive integer (got "${v}")`);
    }
    return v === undefined ? undefined : x;
  };
  if (table !== "extrapolation" && table !== "noise") {
    fail(`the first argument is the stage, extrapolation or noise (got "${table ?? ""}"; --help for usage)`);
  }
  const scale = flag("scale") ?? Deno.env.get("SCALE") ?? "small";
  if (!Object.hasOwn(SCALES, scale)) {
    fail(`--scale must be one of ${Object.keys(SCALES).join(", ")} (got "${scale}")`);
  }
  const maxTokens = positive("max-tokens"), maxBytes = positive("max-bytes");
  const batchTokens = positive("batch-tokens");
  const engineFlag = flag("engine") ?? "auto";
  if (!["auto", "native", "tfjs"].includes(engineFlag)) {
    fail(`--engine must be auto, native or tfjs (got "${engineFlag}")`);
  }
  try {
    await initBackend({});
    const resultsDir = flag("results") ?? RESULTS_DIR;
    const runs = await readRecords<RunLike>("runs", resultsDir);
    const opts: StageOptions = {
      scale,
      resultsDir,
      runsDir: flag("runs-dir"),
      domain: flag("domain"),
      kinds: flag("kinds")?.split(","),
      force: args.includes("--force"),
      engine: engineFlag as StageOptions["engine"],
    };
    const recs = table === "extrapolation"
      ? await extrapolationStage(runs, {
        ...opts,
        settings: { ...(maxTokens ? { maxTokens } : {}), ...(batchTokens ? { batchTokens } : {}) },
      })
      : await noiseStage(runs, { ...opts, maxBytes });
    console.log(`${recs.length} ${table} records appended to ${resultsDir}/${table}.jsonl`);
  } catch (e) {
    // one line; the stack with MAMBABYTE_DEBUG=1
    const debug = !["", "0", undefined].includes(Deno.env.get("MAMBABYTE_DEBUG"));
    console.error(`lib/runs/stages.ts ${table}: ${debug ? (e as Error).stack : (e as Error).message}`);
    Deno.exit(1);
  }
}
