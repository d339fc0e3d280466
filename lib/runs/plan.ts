/**
 * Experiment plans (data/plans/*.json): for each scale, the domains, the model configs and the training
 * budget, expanded into runs (experiment.ts) that `reproduce` executes, skipping runs already recorded.
 *
 * The compute-matched plan follows the paper's setup: every byte-level baseline gets the same training
 * FLOPs; MambaByte is trained twice, once on the same FLOPs and once on `mambabyte_budget_ratio` of
 * them (the paper gave MambaByte-353M 30B bytes against the baselines' 80B at about equal FLOPs per
 * byte, i.e. 0.375x the compute). Subword models get the byte models' FLOPs too, over sequences that cover
 * about the same bytes. Steps are derived from each model's own FLOPs per token, never typed.
 */
import { InputError } from "../io/errors.ts";
import { type Domain, DOMAINS } from "../data/corpora/types.ts";
import { MODEL_KINDS } from "../models/lm.ts";
import { presetConfig } from "../models/presets.ts";
import { readRecords } from "../results/store.ts";
import { type RunSpec } from "./experiment.ts";
import { REPO_ROOT, RESULTS_DIR } from "../paths.ts";
import type { RunRecord } from "../results/records.ts";

export interface PlanModel {
  /** A preset name (lib/models/presets.ts) or an explicit config. */
  size?: string;
  config?: Record<string, unknown>;
  /** Tokens per training sequence for this model (default: the scale's length). */
  length?: number;
  lr?: number;
  /** Fraction of the scale's FLOP budget (default 1). */
  budget_ratio?: number;
  /** The family to build (default: the entry's own name; lets one family appear twice). */
  model?: string;
  /** Shown in tables (default: the entry name). */
  label?: string;
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
  eval: { maxBytes?: number; window?: number; batch?: number };
  models: Record<string, PlanModel>;
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
    for (const [name, m] of Object.entries(s.models ?? {})) {
      const kind = m.model ?? name;
      if (!(MODEL_KINDS as readonly string[]).includes(kind)) {
        throw bad(`${at}.models.${name}`, `names an unknown model family "${kind}"`);
      }
      if (!m.size === !m.config) {
        throw bad(`${at}.models.${name}`, `needs exactly one of "size" and "config"`);
      }
    }
  }
  return raw;
}

/**
 * The runs of a plan at one scale (optionally some domains / models only), in execution order. `seeds`
 * trains every entry once per seed (default: the scale's own seed); a run with another seed than the
 * scale's is named `<entry>_seed<N>`, so the published records of several seeds give each entry's seed
 * spread (results/compare.ts).
 */
export function planRuns(
  plan: Plan,
  scale: string,
  only: { domains?: string[]; models?: string[]; seeds?: number[] } = {},
): RunSpec[] {
  const s = plan.scales[scale];
  if (!s) {
    throw new Error(
      `plan ${plan.name} has no scale "${scale}" (has: ${Object.keys(plan.scales).join(", ")})`,
    );
  }
  const runs: RunSpec[] = [];
  for (const seed of only.seeds ?? [s.seed]) {
    for (const domain of s.domains) {
      if (only.domains && !only.domains.includes(domain)) continue;
      for (const [name, m] of Object.entries(s.models)) {
        if (only.models && !only.models.includes(name)) continue;
        runs.push(planRun(plan, scale, domain, name, m, seed));
      }
    }
  }
  return runs;
}

/** One plan entry on one domain with one seed. */
function planRun(
  plan: Plan,
  scale: string,
  domain: Domain,
  name: string,
  m: PlanModel,
  seed: number,
): RunSpec {
  const s = plan.scales[scale];
  const kind = m.model ?? name;
  return {
    name: `${plan.name}/${scale}/${domain}/${name}${seed === s.seed ? "" : `_seed${seed}`}`,
    model: kind,
    config: m.config ? { ...m.config } : presetConfig(kind, m.size!),
    domain,
    scale,
    train: {
      batch: s.batch,
      length: m.length ?? s.length,
      lr: m.lr ?? s.lr,
      warmup: s.warmup,
      seed,
      flops: s.flops * (m.budget_ratio ?? 1),
    },
    vocab: s.vocab,
    eval: { ...s.eval },
    labels: {
      plan: plan.name,
      entry: name,
      label: m.label ?? name,
      budget_ratio: m.budget_ratio ?? 1,
      ...(seed === s.seed ? {} : { seed }),
    },
  };
}

/** Whether a run with exactly this spec is already recorded in runs.jsonl. */
export function isRecorded(spec: RunSpec, records: RunRecord[]): boolean {
  return records.some((r) =>
    r.run === spec.name && r.scale === spec.scale && r.batch === spec.train.batch &&
    r.length === spec.train.length &&
    r.seed === spec.train.seed && Math.abs(r.train_flops / (spec.train.flops ?? 1) - 1) < 0.1 &&
    Object.entries(spec.config).every(([k, v]) => JSON.stringify(r.config[k]) === JSON.stringify(v))
  );
}

export async function recordedRuns(dir = RESULTS_DIR): Promise<RunRecord[]> {
  return await readRecords<RunRecord>("runs", dir);
}
