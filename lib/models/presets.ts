/**
 * Named model sizes per family, for `train --size NAME` and the experiment plans. A preset is a partial
 * config; the family fills in its defaults. Sizes are named by scale of use, not by parameter count,
 * because the count depends on the family (see `deno task mambabyte train --model M --size S --dry-run`).
 */
import type { ModelKind } from "./lm.ts";
import { baselineConfig } from "./mod.ts";

const SIZES: Record<string, [number, number]> = {
  tiny: [32, 2],
  small: [128, 4],
  base: [256, 8],
  gpu: [512, 8],
};
function widthDepth(
  make: (d: number, l: number) => Record<string, unknown>,
): Record<string, Record<string, unknown>> {
  return Object.fromEntries(Object.entries(SIZES).map(([name, [d, l]]) => [name, make(d, l)]));
}

export const PRESETS: Partial<Record<ModelKind, Record<string, Record<string, unknown>>>> = {
  mambabyte: {
    tiny: { d_model: 32, n_layer: 2 },
    small: { d_model: 128, n_layer: 4 },
    base: { d_model: 256, n_layer: 8 },
    gpu: { d_model: 512, n_layer: 8 },
    "353m": { d_model: 1024, n_layer: 53 },
    "972m": { d_model: 1792, n_layer: 48 },
  },
  mamba_subword: {
    tiny: { d_model: 32, n_layer: 2 },
    small: { d_model: 128, n_layer: 4 },
    base: { d_model: 256, n_layer: 8 },
    gpu: { d_model: 512, n_layer: 8 },
  },
  // the Transformers and PerceiverAR: the same width and depth as the Mamba presets (baselineConfig)
  transformer: widthDepth((d, l) => baselineConfig("transformer", { d_model: d, n_layer: l })),
  transformer_subword: widthDepth((d, l) =>
    baselineConfig("transformer_subword", { d_model: d, n_layer: l })
  ),
  perceiver_ar: widthDepth((d, l) => baselineConfig("perceiver_ar", { d_model: d, n_layer: l })),
  // MegaByte: a global model of the preset's width and depth, a local one in the paper's proportions
  megabyte: widthDepth((d, l) => baselineConfig("megabyte", { d_model: d, n_layer: l })),
};

/** The preset config, or an error listing the sizes the family has. */
export function presetConfig(kind: string, size: string): Record<string, unknown> {
  const sizes = PRESETS[kind as ModelKind];
  if (!sizes) {
    throw new Error(
      `no size presets for model "${kind}" (models with presets: ${Object.keys(PRESETS).join(", ")})`,
    );
  }
  const cfg = sizes[size];
  if (!cfg) {
    throw new Error(`model "${kind}" has no size "${size}" (sizes: ${Object.keys(sizes).join(", ")})`);
  }
  return { ...cfg };
}
