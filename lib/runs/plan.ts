/**
 * Experiment plans (data/plans/*.json): for each scale, the domains, the model configs and the training
 * budget, expanded into runs (experiment.ts) that `reproduce` executes, skipping runs already recorded.
 *
 * The compute-matched plan follows the paper's setup: every byte-level baseline gets the same training
 * FLOPs; MambaByte is trained twice, once on the same FLOPs and once on `mambabyte_budget_ratio` of
 * them (the paper gave MambaByte-353M 30B bytes against the baselines' 80B at about equal FLOPs per
 * byte, i.e. 0.375x the compute). Subword models get the byte models' FLOPs too, over sequences that cover
 * about the same bytes. Steps are derived from each model's own FLOPs per token, never typed.
 *
 * A scale may also ask for (the `large` scale does; issue 6/6):
 * - a budget ladder (`budgets`: fractions of `flops`, the last 1): every entry trained at each budget on the
 *   `ladder_domains`, the top budget alone elsewhere, so bits-per-byte can be drawn against training FLOPs
 *   (the paper's Figure 1), one curve per entry; a lower budget's run is named ENTRY_bFRACTION;
 * - `extra_seeds`: the top budget trained again with these seeds on the ladder domains (the seed spread);
 * - `lr_sweep`: multiples of each family's learning rate tried first, at the lowest budget on the first
 *   ladder domain and scored on the validation split (runs sweep/FAMILY_lrMULTIPLE); every other run of the
 *   family then takes the multiple with the lowest validation bits-per-byte (pickSweptLr), so no learning
 *   rate of the published runs is typed by hand. A best value at the edge of what was tried extends the
 *   sweep past it (half the smallest, or twice the largest multiple), up to `lr_sweep_extend` times
 *   (default 2). Until a family's sweep is settled its runs wait (`pending`);
 * - `warmup_fraction` (warm-up as a fraction of each run's steps) and `min_steps` (a run with fewer steps
 *   is refused before it trains).
 * An entry may be limited to some domains (`domains`), kept off the ladder (`ladder: false`) or the extra
 * seeds (`extra_seeds: false`), given a byte budget instead of FLOPs (`bytes`: the equal-bytes comparisons)
 * or a batch of its own (`batch`: more steps where its budget is small).
 */
import { InputError } from "../io/errors.ts";
import { type Domain, DOMAINS } from "../data/corpora/types.ts";
import { countParameters, disposeModel, type LanguageModel, MODEL_KINDS, TOKEN_UNIT } from "../models/lm.ts";
import { createModel } from "../models/mod.ts";
import { presetConfig } from "../models/presets.ts";
import { readRecords } from "../results/store.ts";
import { type RunSpec, trainSchedule } from "./experiment.ts";
import { REPO_ROOT, RESULTS_DIR } from "../paths.ts";
import type { DivergedRecord, RunRecord } from "../results/records.ts";
import { bestMultiple } from "../results/ladder.ts";

export interface PlanModel {
  /** A preset name (lib/models/presets.ts) or an explicit config. */
  size?: string;
  config?: Record<string, unknown>;
  /** Tokens per training sequence for this model (default: the scale's length). */
  length?: number;
  /** Sequences per step for this model (default: the scale's batch). */
  batch?: number;
  lr?: number;
  /** Fraction of the scale's FLOP budget (default 1). */
  budget_ratio?: number;
  /** The family to build (default: the entry's own name; lets one family appear twice). */
  model?: string;
  /** Shown in tables (default: the entry name). */
  label?: string;
  /** Only on these domains (default: every domain of the scale). */
  domains?: Domain[];
  /** Trained at the top budget only, even on a ladder domain (default true: the whole ladder). */
  ladder?: boolean;
  /** Trained with the scale's extra seeds too (default true). */
  extra_seeds?: boolean;
  /** Training bytes instead of a FLOP budget (an equal-bytes comparison); times each ladder fraction. */
  bytes?: number;
}

export interface PlanScale {
  domains: Domain[];
  /** Training FLOPs of each byte-model run. */
  flops: number;
  batch: number;
  length: number;
  lr: number;
  warmup: number;
  seed: number;
  vocab: number;
  /** How runs are scored (RunSpec.eval): `valPoints` points of held-out bits per byte along each run. */
  eval: { maxBytes?: number; window?: number; batch?: number; valPoints?: number; valBytes?: number };
  models: Record<string, PlanModel>;
  /** Fractions of `flops`, ascending, the last 1 (default [1]: one budget). */
  budgets?: number[];
  /** Domains where every budget runs (default: the scale's first domain). */
  ladder_domains?: Domain[];
  /** Seeds trained at the top budget on the ladder domains besides `seed`. */
  extra_seeds?: number[];
  /** Multiples of each family's learning rate tried at the lowest budget (at least 3 values). */
  lr_sweep?: number[];
  /** How many values a sweep may add past an edge where its best lies (default 2). */
  lr_sweep_extend?: number;
  /** Warm-up steps as a fraction of each run's steps (instead of `warmup`). */
  warmup_fraction?: number;
  /** The fewest optimizer steps a run may take. */
  min_steps?: number;
}

export interface Plan {
  name: string;
  description: string;
  scales: Record<string, PlanScale>;
}

const PLAN_DIR = `${REPO_ROOT}data/plans`;

/** Reads and checks a plan file; errors name the file and the field. */
export async function readPlan(name = "compute-matched"): Promise<Plan> {
  const path = name.endsWith(".json") ? name : `${PLAN_DIR}/${name}.json`;
  let raw: Plan;
  try {
    raw = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new InputError(path, undefined, `${path}: cannot read the plan (${(e as Error).message})`);
  }
  const bad = (field: string, what: string) => new InputError(path, field, `${path}: ${field} ${what}`);
  if (typeof raw.scales !== "object" || !raw.scales) {
    throw bad("scales", "must be an object of scale -> settings");
  }
  for (const [scale, s] of Object.entries(raw.scales)) {
    const at = `scales.${scale}`;
    for (const k of ["flops", "batch", "length", "lr", "warmup", "seed", "vocab"] as const) {
      if (typeof s[k] !== "number" || !(s[k] >= 0)) throw bad(`${at}.${k}`, "must be a number >= 0");
    }
    if (!Array.isArray(s.domains) || s.domains.some((d) => !DOMAINS.includes(d))) {
      throw bad(`${at}.domains`, `must list domains among ${DOMAINS.join(", ")}`);
    }
    const domainList = (v: unknown) =>
      Array.isArray(v) && v.length > 0 && v.every((d) => (DOMAINS as readonly string[]).includes(d));
    if (s.budgets !== undefined) {
      const b = s.budgets;
      if (
        !Array.isArray(b) || !b.length || b.some((x, i) => !(x > 0) || (i > 0 && !(x > b[i - 1]))) ||
        b.at(-1) !== 1
      ) {
        throw bad(
          `${at}.budgets`,
          "must be fractions of flops, ascending, ending at 1 (e.g. [0.1, 0.316, 1])",
        );
      }
    }
    if (s.ladder_domains !== undefined && !domainList(s.ladder_domains)) {
      throw bad(`${at}.ladder_domains`, `must list domains among ${DOMAINS.join(", ")}`);
    }
    if (
      s.extra_seeds !== undefined &&
      (!Array.isArray(s.extra_seeds) ||
        s.extra_seeds.some((x) => !Number.isInteger(x) || x < 0 || x === s.seed))
    ) {
      throw bad(`${at}.extra_seeds`, `must be integers >= 0 other than the scale's seed ${s.seed}`);
    }
    if (
      s.lr_sweep !== undefined &&
      (!Array.isArray(s.lr_sweep) || s.lr_sweep.length < 3 || s.lr_sweep.some((x) => !(x > 0)) ||
        new Set(s.lr_sweep).size !== s.lr_sweep.length)
    ) {
      throw bad(`${at}.lr_sweep`, "must list at least 3 distinct learning-rate multiples > 0");
    }
    if (
      s.lr_sweep_extend !== undefined && !(Number.isInteger(s.lr_sweep_extend) && s.lr_sweep_extend >= 0)
    ) {
      throw bad(`${at}.lr_sweep_extend`, "must be an integer >= 0");
    }
    if (s.warmup_fraction !== undefined && !(s.warmup_fraction >= 0 && s.warmup_fraction < 1)) {
      throw bad(`${at}.warmup_fraction`, "must be a fraction in [0, 1)");
    }
    for (const k of ["valPoints", "valBytes"] as const) {
      const v = s.eval?.[k];
      if (v !== undefined && !(Number.isInteger(v) && v >= 1)) {
        throw bad(`${at}.eval.${k}`, "must be an integer >= 1");
      }
    }
    if (s.min_steps !== undefined && !(Number.isInteger(s.min_steps) && s.min_steps >= 1)) {
      throw bad(`${at}.min_steps`, "must be an integer >= 1");
    }
    if (s.ladder_domains?.some((d) => !s.domains.includes(d))) {
      throw bad(`${at}.ladder_domains`, `must be among the scale's domains (${s.domains.join(", ")})`);
    }
    if (s.extra_seeds && new Set(s.extra_seeds).size !== s.extra_seeds.length) {
      throw bad(`${at}.extra_seeds`, "lists a seed twice");
    }
    for (const [name, m] of Object.entries(s.models ?? {})) {
      const kind = m.model ?? name;
      // the names plan.ts gives runs must not collide: ENTRY_bFRACTION, ENTRY_seedN, sweep/FAMILY_lrM; and
      // reproduce passes names through comma-separated options
      if (
        !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name) || /_b[0-9.]+$|_seed[0-9]+$/.test(name) || name === "sweep"
      ) {
        throw bad(
          `${at}.models.${name}`,
          'needs a plain name (letters, digits, _ . -) not ending in _b<number> or _seed<number>, and not "sweep"',
        );
      }
      if (!(MODEL_KINDS as readonly string[]).includes(kind)) {
        throw bad(`${at}.models.${name}`, `names an unknown model family "${kind}"`);
      }
      if (!m.size === !m.config) {
        throw bad(`${at}.models.${name}`, `needs exactly one of "size" and "config"`);
      }
      if (m.domains !== undefined && !domainList(m.domains)) {
        throw bad(`${at}.models.${name}.domains`, `must list domains among ${DOMAINS.join(", ")}`);
      }
      if (m.domains?.some((d) => !s.domains.includes(d))) {
        throw bad(
          `${at}.models.${name}.domains`,
          `must be among the scale's domains (${s.domains.join(", ")})`,
        );
      }
      if (m.bytes !== undefined && !(m.bytes > 0)) throw bad(`${at}.models.${name}.bytes`, "must be > 0");
      if (m.batch !== undefined && !(Number.isInteger(m.batch) && m.batch >= 1)) {
        throw bad(`${at}.models.${name}.batch`, "must be an integer >= 1");
      }
      if (m.bytes !== undefined && m.budget_ratio !== undefined) {
        throw bad(`${at}.models.${name}`, `takes "bytes" or "budget_ratio", not both`);
      }
    }
    // the sweep trains each family on the first ladder domain: a family absent there would wait forever
    for (const [name, m] of Object.entries(s.lr_sweep ? s.models ?? {} : {})) {
      const fam = m.model ?? name;
      if (!sweepEntryOf(s, fam)) {
        throw bad(
          `${at}.models.${name}`,
          `is a ${fam}, whose learning-rate sweep runs on ${
            (s.ladder_domains ?? s.domains)[0]
          }, where no ${fam} entry trains`,
        );
      }
    }
  }
  return raw;
}

/** A run of a plan; `pending` says what it waits for (its family's learning-rate sweep) before it can train. */
export type PlannedRun = RunSpec & { pending?: string };

/** Which runs of a scale: some domains, plan entries, seeds, or runs by name (default: all). */
export interface PlanSelection {
  domains?: string[];
  models?: string[];
  /**
   * Train every entry's top budget once per seed on every domain, in place of the scale's seeds (the scale's
   * `seed`, and `extra_seeds` on the ladder domains); the ladder and the sweep run with the scale's seed.
   */
  seeds?: number[];
  /** Only the runs of these names. */
  runs?: string[];
}

/**
 * The runs of a plan at one scale (optionally a selection), in execution order: the learning-rate sweep,
 * then each domain's entries at each budget, then the extra seeds. `records` (runs.jsonl) give each
 * family's swept learning rate; without a complete sweep its runs come back `pending`. A run with another
 * seed than the scale's is named `<entry>_seed<N>`, so the published records of several seeds give each
 * entry's seed spread (results/compare.ts).
 */
export function planRuns(
  plan: Plan,
  scale: string,
  only: PlanSelection = {},
  records: RunRecord[] = [],
  diverged: DivergedRecord[] = [],
): PlannedRun[] {
  const s = plan.scales[scale];
  if (!s) {
    throw new Error(
      `plan ${plan.name} has no scale "${scale}" (has: ${Object.keys(plan.scales).join(", ")})`,
    );
  }
  const budgets = s.budgets ?? [1];
  const ladderDomains = s.ladder_domains ?? [s.domains[0]];
  // a name that selects nothing would give an empty plan that "finishes" at once: refuse it
  for (const name of only.models ?? []) {
    if (s.models[name]) continue;
    const seedOf = name.match(/^(.+)_seed\d+$/)?.[1];
    throw new InputError(
      "--models",
      "models",
      `${name} is not an entry of plan ${plan.name} at scale ${scale}${
        seedOf && s.models[seedOf] ? ` (its seeds run with their entry: --models ${seedOf})` : ""
      }; entries: ${Object.keys(s.models).join(", ")}`,
    );
  }
  const entries = Object.entries(s.models).filter(([name]) => !only.models || only.models.includes(name));
  const onDomain = (m: PlanModel, d: Domain) => !m.domains || m.domains.includes(d);
  const runs: PlannedRun[] = [];
  // each family's sweep, read from the records once: its runs to train and the rate its other runs take
  const sweeps = new Map<string, Sweep>();
  const sweepFor = (fam: string) =>
    sweeps.get(fam) ?? sweeps.set(fam, sweepOf(plan, scale, fam, records, diverged)).get(fam)!;
  const sweptFor = (fam: string) => s.lr_sweep ? sweptLr(fam, sweepFor(fam)) : undefined;
  // the sweep of every family a selected entry belongs to, whatever the domains and seeds selected (its
  // runs wait for it, so a selection without it could never finish)
  if (s.lr_sweep) {
    const families = new Set(entries.map(([n, e]) => e.model ?? n));
    for (const fam of families) {
      for (const multiple of sweepFor(fam).values) runs.push(sweepRun(plan, scale, fam, multiple));
    }
  }
  const seeds = only.seeds ?? [s.seed];
  for (const seed of seeds) {
    for (const domain of s.domains) {
      if (only.domains && !only.domains.includes(domain)) continue;
      for (const [name, m] of entries) {
        if (!onDomain(m, domain)) continue;
        const ladder = seed === s.seed && ladderDomains.includes(domain) && m.ladder !== false;
        for (const budget of ladder ? budgets : [1]) {
          runs.push(planRun(plan, scale, domain, name, m, seed, budget, sweptFor(m.model ?? name)));
        }
      }
    }
  }
  if (!only.seeds) {
    for (const seed of s.extra_seeds ?? []) {
      for (const domain of ladderDomains) {
        if (only.domains && !only.domains.includes(domain)) continue;
        for (const [name, m] of entries) {
          if (onDomain(m, domain) && m.extra_seeds !== false) {
            runs.push(planRun(plan, scale, domain, name, m, seed, 1, sweptFor(m.model ?? name)));
          }
        }
      }
    }
  }
  return only.runs ? runs.filter((r) => only.runs!.includes(r.name)) : runs;
}

/** The part of a run's name saying its budget: "" at the top, "_b0.1" below it. */
const budgetSuffix = (budget: number) => budget === 1 ? "" : `_b${budget}`;

/** The training settings every run of an entry shares at one budget (FLOPs, or bytes for a bytes entry). */
function entryTrain(s: PlanScale, m: PlanModel, seed: number, budget: number, lr: number): RunSpec["train"] {
  const length = m.length ?? s.length;
  return {
    batch: m.batch ?? s.batch,
    length,
    lr,
    warmup: s.warmup,
    ...(s.warmup_fraction !== undefined ? { warmupFraction: s.warmup_fraction } : {}),
    ...(s.min_steps !== undefined ? { minSteps: s.min_steps } : {}),
    seed,
    ...(m.bytes !== undefined
      ? { bytes: m.bytes * budget }
      : { flops: s.flops * budget * (m.budget_ratio ?? 1) }),
  };
}

/** One plan entry on one domain with one seed at one budget (a fraction of the top one). */
function planRun(
  plan: Plan,
  scale: string,
  domain: Domain,
  name: string,
  m: PlanModel,
  seed: number,
  budget: number,
  swept: SweptLr | undefined,
): PlannedRun {
  const s = plan.scales[scale];
  const kind = m.model ?? name;
  const base = m.lr ?? s.lr;
  return {
    name: `${plan.name}/${scale}/${domain}/${name}${budgetSuffix(budget)}${
      seed === s.seed ? "" : `_seed${seed}`
    }`,
    model: kind,
    config: m.config ? { ...m.config } : presetConfig(kind, m.size!),
    domain,
    scale,
    train: entryTrain(s, m, seed, budget, base * (swept?.multiple ?? 1)),
    vocab: s.vocab,
    eval: { ...s.eval },
    labels: {
      plan: plan.name,
      entry: name,
      label: m.label ?? name,
      budget_ratio: m.budget_ratio ?? 1,
      ...(s.budgets ? { budget } : {}),
      ...(swept?.multiple !== undefined ? { lr_multiple: swept.multiple } : {}),
      ...(seed === s.seed ? {} : { seed }),
    },
    ...(swept?.pending ? { pending: swept.pending } : {}),
  };
}

/** The entry a family's sweep trains (its first on the first ladder domain) and that domain, if any. */
function sweepEntryOf(
  s: PlanScale,
  family: string,
): { name: string; m: PlanModel; domain: Domain } | undefined {
  const domain = (s.ladder_domains ?? s.domains)[0];
  const found = Object.entries(s.models).find(([n, e]) =>
    (e.model ?? n) === family && (!e.domains || e.domains.includes(domain))
  );
  return found && { name: found[0], m: found[1], domain };
}

/** sweepEntryOf for a plan that readPlan checked (every swept family has its entry). */
function sweepEntry(
  plan: Plan,
  scale: string,
  family: string,
): { name: string; m: PlanModel; domain: Domain } {
  const e = sweepEntryOf(plan.scales[scale], family);
  if (!e) throw new Error(`plan ${plan.name}: no ${family} entry trains where its learning-rate sweep runs`);
  return e;
}

/** A run of the learning-rate sweep: the family's first entry at the lowest budget, scored on validation. */
function sweepRun(plan: Plan, scale: string, family: string, multiple: number): PlannedRun {
  const s = plan.scales[scale];
  const { name, m, domain } = sweepEntry(plan, scale, family);
  const budget = (s.budgets ?? [1])[0];
  return {
    name: `${plan.name}/${scale}/${domain}/sweep/${family}_lr${multiple}`,
    model: family,
    config: m.config ? { ...m.config } : presetConfig(family, m.size!),
    domain,
    scale,
    train: entryTrain(s, m, s.seed, budget, (m.lr ?? s.lr) * multiple),
    vocab: s.vocab,
    eval: { ...s.eval, split: "validation" },
    labels: {
      plan: plan.name,
      entry: name,
      label: `${m.label ?? name} (lr x${multiple})`,
      sweep: family,
      lr_multiple: multiple,
      budget,
    },
  };
}

/**
 * What a sweep value gave: its validation bits-per-byte when a record matches the sweep run exactly
 * (isRecorded: config, budget, rate; scored on validation; not a partial import), Infinity when it
 * diverged (diverged.jsonl: a rate too high is an outcome, not a failure to retry), else undefined.
 */
function sweepOutcome(
  plan: Plan,
  scale: string,
  family: string,
  multiple: number,
  records: RunRecord[],
  diverged: DivergedRecord[],
): number | undefined {
  const spec = sweepRun(plan, scale, family, multiple);
  const rec = records.findLast((r) =>
    r.run === spec.name && r.eval?.split === "validation" && !r.labels?.partial && isRecorded(spec, [r])
  );
  if (rec) return Number.isFinite(rec.eval.bits_per_byte) ? rec.eval.bits_per_byte : Infinity;
  return isDivergedSweep(spec, diverged) ? Infinity : undefined;
}

/**
 * A family's sweep as the records leave it: the multiples to try (the plan's, then one past an edge where
 * the best of a complete sweep lies, up to lr_sweep_extend times), the validation bits-per-byte of those
 * recorded (Infinity: diverged), and whether it is settled (every value recorded, and the best inside or
 * the extensions spent; when every value diverged, the smallest is the best, so the sweep extends down).
 */
export function sweepOf(
  plan: Plan,
  scale: string,
  family: string,
  records: RunRecord[],
  diverged: DivergedRecord[] = [],
): Sweep {
  const s = plan.scales[scale];
  const values = [...(s.lr_sweep ?? [])].sort((a, b) => a - b);
  for (let extended = 0;; extended++) {
    const tried = values.flatMap((multiple) => {
      const bpb = sweepOutcome(plan, scale, family, multiple, records, diverged);
      return bpb === undefined ? [] : [{ multiple, bits_per_byte: bpb }];
    });
    if (tried.length < values.length) return { values, tried, settled: false };
    const { best, edge } = bestMultiple(tried)!;
    if (!edge || extended >= (s.lr_sweep_extend ?? 2)) return { values, tried, settled: true };
    if (best === values[0]) values.unshift(best / 2);
    else values.push(best * 2);
  }
}

/**
 * The learning-rate multiple a family's runs take: the settled sweep's value of lowest validation
 * bits-per-byte (the smaller multiple on a tie), with `edge` set when it is still the smallest or largest
 * value tried (the best may lie outside the sweep: say so wherever it is shown); or `pending` until the
 * sweep is settled.
 */
export function pickSweptLr(
  plan: Plan,
  scale: string,
  family: string,
  records: RunRecord[],
  diverged: DivergedRecord[] = [],
): SweptLr {
  return sweptLr(family, sweepOf(plan, scale, family, records, diverged));
}

/** A family's sweep as sweepOf reads it from the records. */
type Sweep = { values: number[]; tried: { multiple: number; bits_per_byte: number }[]; settled: boolean };
/** The multiple a family's runs take (and whether it is at the sweep's edge), or what they wait for. */
type SweptLr = { multiple?: number; edge?: boolean; pending?: string };

/** pickSweptLr on a sweep already read. */
function sweptLr(family: string, sweep: Sweep): SweptLr {
  if (!sweep.settled) {
    return {
      pending:
        `the learning-rate sweep of ${family} (${sweep.tried.length} of ${sweep.values.length} recorded)`,
    };
  }
  const { best, edge } = bestMultiple(sweep.tried)!;
  if (!sweep.tried.some((t) => Number.isFinite(t.bits_per_byte))) {
    return { pending: `the learning-rate sweep of ${family}: every rate tried diverged (lower lr_sweep)` };
  }
  return { multiple: best, edge };
}

/** Whether a run with exactly this spec is already recorded in runs.jsonl. */
export function isRecorded(spec: PlannedRun, records: RunRecord[]): boolean {
  // a run still waiting for its sweep has no rate yet: nothing recorded is it
  if (spec.pending) return false;
  return records.some((r) =>
    r.run === spec.name && r.scale === spec.scale && r.batch === spec.train.batch &&
    (r.eval?.split ?? "test") === (spec.eval.split ?? "test") &&
    r.length === spec.train.length &&
    r.seed === spec.train.seed &&
    (spec.train.bytes !== undefined
      ? Math.abs(r.bytes_seen / spec.train.bytes - 1) < 0.1
      : Math.abs(r.train_flops / (spec.train.flops ?? 1) - 1) < 0.1) &&
    Object.entries(spec.config).every(([k, v]) => JSON.stringify(r.config[k]) === JSON.stringify(v)) &&
    // a run trained at another rate than its family's settled sweep now gives is not this run; a record
    // without its rate (older than the ladder) stands only for a run whose rate the plan typed
    (r.lr === undefined ? spec.labels?.lr_multiple === undefined : Math.abs(r.lr / spec.train.lr - 1) < 1e-9)
  );
}

/**
 * Whether a planned run is done: recorded, or a sweep run that diverged at this rate (an outcome its sweep
 * counts; training it again would diverge again).
 */
export function isDone(spec: PlannedRun, records: RunRecord[], diverged: DivergedRecord[]): boolean {
  return isRecorded(spec, records) || isDivergedSweep(spec, diverged);
}

/** A sweep run recorded as diverged at its planned rate. */
export function isDivergedSweep(spec: PlannedRun, diverged: DivergedRecord[]): boolean {
  return spec.labels?.sweep !== undefined &&
    diverged.some((d) =>
      d.run === spec.name && d.scale === spec.scale && Math.abs(d.lr / spec.train.lr - 1) < 1e-9
    );
}

/** The runs recorded as diverged (diverged.jsonl): outcomes a learning-rate sweep counts. */
export async function recordedDiverged(dir = RESULTS_DIR): Promise<DivergedRecord[]> {
  return await readRecords<DivergedRecord>("diverged", dir);
}

export async function recordedRuns(dir = RESULTS_DIR): Promise<RunRecord[]> {
  return await readRecords<RunRecord>("runs", dir);
}

/** A planned run's schedule, as `plan` prints it and the plan's tests check it. */
export interface PlannedSchedule {
  run: string;
  model: string;
  parameters: number;
  steps: number;
  warmup: number;
  batch: number;
  length: number;
  /** Training tokens (bytes for byte models). */
  tokens: number;
  flops: number;
  lr: number;
  pending?: string;
}

/**
 * Each run's steps, warm-up, tokens and FLOPs, as training will derive them (trainSchedule), from one model
 * of each distinct config (built, measured, released). A byte budget of a subword model buys tokens at
 * `bytesPerToken(run)` bytes each (its domain's tokenizer: the caller's to give). A run whose budget breaks
 * `min_steps` throws, naming it.
 */
export function planSchedules(
  runs: PlannedRun[],
  bytesPerToken: (run: PlannedRun) => number = () => 1,
): PlannedSchedule[] {
  const costs = new Map<string, { parameters: number; flopsPerToken: number; model: LanguageModel }>();
  try {
    return runs.map((r) => {
      const subword = TOKEN_UNIT[r.model as keyof typeof TOKEN_UNIT] === "subword";
      const config = subword ? { ...r.config, vocab_size: r.vocab } : r.config;
      const key = `${r.model} ${JSON.stringify(config)}`;
      let c = costs.get(key);
      if (!c) {
        const model = createModel(r.model, config, 0);
        c = { parameters: countParameters(model), flopsPerToken: NaN, model };
        costs.set(key, c);
      }
      const { steps, warmup } = trainSchedule(r, c.model, subword ? bytesPerToken(r) : 1);
      const tokens = steps * r.train.batch * r.train.length;
      return {
        run: r.name,
        model: r.model,
        parameters: c.parameters,
        steps,
        warmup,
        batch: r.train.batch,
        length: r.train.length,
        tokens,
        flops: c.model.trainFlopsPerToken(r.train.length) * tokens,
        lr: r.train.lr,
        ...(r.pending ? { pending: r.pending } : {}),
      };
    });
  } finally {
    for (const c of costs.values()) disposeModel(c.model);
  }
}
