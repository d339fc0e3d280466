/**
 * Every model family, registered with the registry on import: MambaByte and the subword Mamba
 * (registry.ts), the Transformers, MegaByte and PerceiverAR. `import "./lib/models/mod.ts"` is enough for
 * createModel / loadModel to know them all.
 */
import type { ModelKind } from "./lm.ts";
import "./transformer.ts";
import "./megabyte.ts";
import "./perceiver_ar.ts";

export * from "./registry.ts";
export {
  asTransformer,
  disposeCache,
  emptyCache,
  type KVCache,
  transformerForward,
  transformerPrefill,
  transformerStep,
} from "./transformer.ts";
export {
  asMegaByte,
  disposeMegaByteState,
  megabytePrefill,
  type MegaByteState,
  megabyteStep,
} from "./megabyte.ts";
export { asPerceiverAR, perceiverLatentLogits } from "./perceiver_ar.ts";

/**
 * A config of family `kind` from one width and depth, for sweeps and presets (the lead chooses sizes):
 * - transformer, transformer_subword, perceiver_ar, mambabyte, mamba_subword: d_model, n_layer as given
 *   (perceiver_ar's n_layer includes its cross-attention layer);
 * - megabyte: the global model gets d_model x n_layer; the local model MegaByte's proportions (758M+262M:
 *   global 1536 x 24, local 1024 x 18), i.e. width 2/3 rounded to a multiple of 16 and 3/4 of the layers.
 * `extra` fields (num_latents, patch_size, vocab_size, n_head, ...) are added last and win.
 */
export function baselineConfig(
  kind: ModelKind,
  size: { d_model: number; n_layer: number },
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  const { d_model, n_layer } = size;
  if (kind !== "megabyte") return { d_model, n_layer, ...extra };
  return {
    d_global: d_model,
    n_layer_global: n_layer,
    d_local: Math.max(16, Math.round((2 / 3) * d_model / 16) * 16),
    n_layer_local: Math.max(1, Math.round(0.75 * n_layer)),
    ...extra,
  };
}
