/**
 * The three scales every experiment and notebook runs at: `smoke` (seconds; CI), `small` (minutes on a
 * 2-core CPU; the default), `gpu` (the published figures; an H200). Read from --scale or SCALE.
 */
export const SCALES = { smoke: "seconds, CI", small: "CPU minutes", gpu: "H200" } as const;
export type ScaleName = keyof typeof SCALES;

/** The scale from the SCALE environment variable (notebooks), default `smoke`. */
export function currentScale(fallback: ScaleName = "smoke"): ScaleName {
  const s = Deno.env.get("SCALE") ?? fallback;
  if (!(s in SCALES)) throw new Error(`SCALE must be one of ${Object.keys(SCALES).join(", ")} (got "${s}")`);
  return s as ScaleName;
}

/** What `reproduce` trains and evaluates at each scale (data paths relative to the repository root). */
export function reproduceConfig(scale: ScaleName) {
  const data = { train: "data/samples/books/train", test: "data/samples/books/test" };
  switch (scale) {
    case "smoke":
      // smoke evaluates the first 16 KiB of the test book only (the record says how many bytes)
      return { data, model: { d_model: 32, n_layer: 2 }, train: { steps: 20, batch: 4, length: 128, lr: 3e-3, warmup: 5, seed: 0 }, evalWindow: 2048, evalBytes: 16384 };
    case "small":
      return { data, model: { d_model: 128, n_layer: 4 }, train: { steps: 600, batch: 8, length: 256, lr: 2e-3, warmup: 50, seed: 0 }, evalWindow: 4096, evalBytes: Infinity };
    case "gpu":
      return { data, model: { d_model: 256, n_layer: 8 }, train: { steps: 3000, batch: 16, length: 1024, lr: 1e-3, warmup: 200, seed: 0 }, evalWindow: 8192, evalBytes: Infinity };
  }
}
