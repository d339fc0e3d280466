/**
 * Whether a planned run can finish in the time a device call has left (`reproduce --time-left S`): the
 * training FLOPs it still has to do (all of them, or those after a checkpoint it will resume from) at the
 * FLOP rate recorded for runs like it, plus their test evaluation's time and a process's start. "Like it":
 * the records of its own plan entry at this scale (the same config, batch and length: a sweep's runs
 * count), else its model family's at the same batch and length, else the family's; recorded under the
 * same sharing of the device that `lib/gpu_plan.sh` runs with. A session's last call uses it so that it
 * starts no run whose checkpoint would be lost with the machine (lib/bench/h200_large.sh LARGE_FINAL); a
 * run with nothing recorded like it is run (nothing to judge by).
 */
import type { RunRecord } from "../results/records.ts";
import { inspectRun } from "../train/trainer.ts";
import type { RunSpec } from "./experiment.ts";

/** Seconds a run's process takes beyond training and evaluation (start-up, data, saving the model). */
export const RUN_OVERHEAD_S = 15;

export interface RecordedRate {
  flopsPerSecond: number;
  flopsPerByte: number;
  /** Mean seconds of the test (or validation) evaluation after training. */
  evalSeconds: number;
}

/** A record a rate can be read from: training time, FLOPs and bytes all recorded. */
const timed = (r: RunRecord) => r.train_wall_s > 0 && r.train_flops > 0 && r.bytes_seen > 0;

function rateOf(rs: RunRecord[]): RecordedRate | undefined {
  rs = rs.filter(timed);
  const flops = rs.reduce((s, r) => s + r.train_flops, 0);
  const seconds = rs.reduce((s, r) => s + r.train_wall_s, 0);
  const bytes = rs.reduce((s, r) => s + r.bytes_seen, 0);
  if (!(flops > 0 && seconds > 0 && bytes > 0)) return undefined;
  const evals = rs.map((r) => r.eval?.wall_s).filter((x): x is number => typeof x === "number");
  return {
    flopsPerSecond: flops / seconds,
    flopsPerByte: flops / bytes,
    evalSeconds: evals.length ? evals.reduce((s, x) => s + x, 0) / evals.length : 0,
  };
}

/** The FLOP rate of a family at a scale over all its records (undefined: none). */
export function familyRate(records: RunRecord[], model: string, scale: string): RecordedRate | undefined {
  return rateOf(records.filter((r) => r.model === model && r.scale === scale));
}

/**
 * The rate of runs like `spec` (see the module's comment), or undefined; `ownEntry` when it comes from the
 * records of the spec's own plan entry.
 */
export function rateFor(
  spec: RunSpec,
  records: RunRecord[],
): (RecordedRate & { ownEntry: boolean }) | undefined {
  const like = runsLike(spec, records);
  const rate = like && rateOf(like.runs);
  return rate && { ...rate, ownEntry: like.ownEntry };
}

/**
 * As `rateFor`, from the fastest of those runs alone: its FLOP rate and the quickest evaluation among
 * them. Runs shared the device with others in most recorded calls, which a pooled rate carries into a
 * sequential estimate; the fastest is the nearest to one process alone on the card (how the plan is now
 * run: lib/bench/h200_large.sh).
 */
export function fastestRateFor(spec: RunSpec, records: RunRecord[]): RecordedRate | undefined {
  const runs = runsLike(spec, records)?.runs;
  if (!runs) return undefined;
  const speed = (r: RunRecord) => r.train_flops / r.train_wall_s;
  const fastest = runs.reduce((a, r) => (speed(r) > speed(a) ? r : a));
  const evals = runs.map((r) => r.eval?.wall_s).filter((x): x is number => typeof x === "number");
  return {
    flopsPerSecond: speed(fastest),
    flopsPerByte: fastest.train_flops / fastest.bytes_seen,
    evalSeconds: evals.length ? Math.min(...evals) : 0,
  };
}

/**
 * The recorded runs like `spec` that a rate can be read from (the module's comment: its entry's, else its
 * family's shape, else its family's), or undefined: none.
 */
function runsLike(spec: RunSpec, records: RunRecord[]): { runs: RunRecord[]; ownEntry: boolean } | undefined {
  const family = records.filter((r) => r.model === spec.model && r.scale === spec.scale && timed(r));
  const entry = spec.labels?.entry;
  const own = entry === undefined ? [] : family.filter((r) => r.labels?.entry === entry);
  if (own.length) return { runs: own, ownEntry: true };
  const sameShape = family.filter((r) => r.batch === spec.train.batch && r.length === spec.train.length);
  if (sameShape.length) return { runs: sameShape, ownEntry: false };
  return family.length ? { runs: family, ownEntry: false } : undefined;
}

/**
 * The seconds `spec` still needs (training left, its evaluation, a process's start), or undefined when no
 * run like it is recorded. A checkpoint counts only when the run will resume from it: trained at the
 * learning rate the spec gives (a moved rate starts over).
 */
export async function secondsNeeded(
  spec: RunSpec,
  records: RunRecord[],
  runDir: string,
): Promise<number | undefined> {
  const rate = rateFor(spec, records);
  if (!rate) return undefined;
  // a byte budget in FLOPs: at its own entry's FLOPs per byte only (another size of the family, or a
  // subword model of another tokenizer, reads bytes at another cost)
  const total = spec.train.flops ??
    (spec.train.bytes !== undefined && rate.ownEntry ? spec.train.bytes * rate.flopsPerByte : undefined);
  if (total === undefined) return undefined;
  const c = await inspectRun(runDir);
  const resumes = c.step !== undefined && c.steps && (c.lr === undefined || c.lr === spec.train.lr);
  const done = resumes ? Math.min(1, c.step! / c.steps!) : 0;
  return total * (1 - done) / rate.flopsPerSecond + rate.evalSeconds + RUN_OVERHEAD_S;
}
