/**
 * Loading and saving MambaLM checkpoints in mamba_ssm's format: a directory with config.json and
 * model.safetensors (the layout of the authors' released MambaByte checkpoints on Hugging Face), so
 * checkpoints move freely between this project and PyTorch.
 */
import { readCheckpoint, weightValues, writeCheckpoint } from "./checkpoint.ts";
import { type MambaConfig, parseMambaConfig } from "./mamba_config.ts";
import { createMambaLM, initMambaLM, type MambaLM, parameterShapes } from "./mamba.ts";
import { readParameters } from "./lm.ts";

/** Loads config.json + model.safetensors (or a sharded index) from `dir` into a trainable MambaLM. */
export async function loadPretrained(dir: string): Promise<MambaLM> {
  const ckpt = await readCheckpoint(dir); // validates config and every shape before reading data
  const values = new Map<string, Float32Array>();
  for (const [name] of parameterShapes(ckpt.config)) {
    const t = ckpt.tensors.get(name)!;
    values.set(name, weightValues(t, ckpt.weightsPaths[0], name)); // F16 / BF16 too; NaN refused
  }
  // With tied embeddings mamba_ssm's load_state_dict copies lm_head.weight last, over the shared
  // tensor: mirror that so a file whose two copies differ behaves as it does in PyTorch.
  const head = ckpt.tensors.get("lm_head.weight");
  if (ckpt.config.tie_embeddings && head) {
    values.set(
      "backbone.embedding.weight",
      weightValues(head, ckpt.weightsPaths[0], "lm_head.weight"),
    );
  }
  return createMambaLM(ckpt.config, values);
}

/**
 * Writes `model` to `dir` as config.json + model.safetensors (F32). lm_head.weight is stored too when
 * tied, as mamba_ssm's state_dict() does, so PyTorch's strict loading accepts the file.
 */
export async function saveMambaLM(
  model: MambaLM,
  dir: string,
  metadata: Record<string, string> = {},
): Promise<void> {
  const values = await readParameters(model);
  const tensors = new Map<string, { dtype: "F32"; shape: number[]; data: Float32Array }>();
  for (const [name, shape] of parameterShapes(model.config)) {
    tensors.set(name, { dtype: "F32", shape, data: values.get(name)! });
  }
  if (model.config.tie_embeddings) {
    const emb = tensors.get("backbone.embedding.weight")!;
    tensors.set("lm_head.weight", { ...emb });
  }
  await writeCheckpoint(dir, model.config, tensors, { format: "pt", ...metadata });
}

/** A MambaByte config (vocabulary = 256 bytes) with mamba_ssm's defaults for everything else. */
export function mambaByteConfig(
  d_model: number,
  n_layer: number,
  fields: Record<string, unknown> = {},
): MambaConfig {
  return parseMambaConfig({ d_model, n_layer, vocab_size: 256, ...fields }, "mambaByteConfig");
}

export { initMambaLM };
