/**
 * Whether a planned run can finish in the time a device call has left (`reproduce --time-left S`): its
 * training FLOPs still to do (all of them, or those after its checkpoint's step) over the FLOP rate its
 * model family trained at on this scale (the records: the runs' FLOPs over their training wall time). A
 * session's last call uses it so that it does not start runs whose checkpoints would be lost with the
 * machine (lib/bench/h200_large.sh); a run of a family with no recorded rate is run (nothing to judge by).
 */
import type { RunRecord } from "../results/records.ts";
import { inspectRun } from "../train/trainer.ts";
import type { RunSpec } from "./experiment.ts";

/** FLOPs per second and FLOPs per byte of a family at a scale, from its records (undefined: none). */
export function familyRate(
  records: RunRecord[],
  model: string,
  scale: string,
): { flopsPerSecond: number; flopsPerByte: number } | undefined {
  const rs = records.filter((r) => r.model === model && r.scale === scale && r.train_wall_s > 0);
  const flops = rs.reduce((s, r) => s + r.train_flops, 0),
    seconds = rs.reduce((s, r) => s + r.train_wall_s, 0);
  const bytes = rs.reduce((s, r) => s + r.bytes_seen, 0);
  return flops > 0 && seconds > 0 && bytes > 0
    ? { flopsPerSecond: flops / seconds, flopsPerByte: flops / bytes }
    : undefined;
}

/**
 * The seconds `spec` still needs at its family's recorded rate (the part after its checkpoint when it has
 * one of the same length), or undefined when no rate is recorded.
 */
export async function secondsNeeded(
  spec: RunSpec,
  records: RunRecord[],
  runDir: string,
): Promise<number | undefined> {
  const rate = familyRate(records, spec.model, spec.scale);
  if (!rate) return undefined;
  const total = spec.train.flops ??
    (spec.train.bytes !== undefined ? spec.train.bytes * rate.flopsPerByte : undefined);
  if (total === undefined) return undefined;
  const c = await inspectRun(runDir);
  const done = c.step !== undefined && c.steps ? Math.min(1, c.step / c.steps) : 0;
  return total * (1 - done) / rate.flopsPerSecond;
}
