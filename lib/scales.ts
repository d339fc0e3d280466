/**
 * The scales every experiment and notebook runs at: `smoke` (seconds; CI), `small` (minutes on a 2-core
 * CPU; the default), `gpu` (the published figures; an H200), `large` (about two hours of H200 time in runs
 * of at most 10 minutes, resumed across calls: budgets, seeds and swept learning rates at which every
 * model learns; issue 6/6). Read from --scale or SCALE.
 */
export const SCALES = {
  smoke: "seconds, CI",
  small: "CPU minutes",
  gpu: "H200",
  large: "H200 hours, resumed across runs",
} as const;
export type ScaleName = keyof typeof SCALES;
/** Largest first: figures and the README show the largest scale recorded. */
export const SCALES_LARGEST_FIRST: readonly ScaleName[] = ["large", "gpu", "small", "smoke"];

/** The scale from the SCALE environment variable (notebooks), default `smoke`. */
export function currentScale(fallback: ScaleName = "smoke"): ScaleName {
  const s = Deno.env.get("SCALE") ?? fallback;
  if (!(s in SCALES)) throw new Error(`SCALE must be one of ${Object.keys(SCALES).join(", ")} (got "${s}")`);
  return s as ScaleName;
}
