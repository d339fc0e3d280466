/**
 * Model families by name: create (seeded), rebuild from saved values, save and load. MambaByte and the
 * subword Mamba are saved in mamba_ssm's own format (config.json without a kind field, so the authors'
 * checkpoints load unchanged); every other family writes `model_kind` into its config.json.
 *
 * Baselines register themselves here (`registerFamily`) from their own module; `lib/models/mod.ts`
 * imports them all.
 */
import { WEIGHT_FORMATS, type WeightFormat } from "../kernels/wasm/decode.ts";
import { WEIGHTS_FILE, weightValues } from "./checkpoint.ts";
import { atomicWriteFile, pathExists } from "../io/atomic.ts";
import { ByteBPE } from "../data/bpe.ts";
import { describeFsError, InputError } from "../io/errors.ts";
import { parseJsonText } from "../io/json.ts";
import { readSafetensors, writeSafetensors } from "../io/safetensors.ts";
import { type MambaConfig, parseMambaConfig } from "./mamba_config.ts";
import type { LanguageModel, ModelKind } from "./lm.ts";
import { createMambaLM, dims, forward, initParameters, type MambaLM, noWeightDecay } from "./mamba.ts";
import { loadPretrained, saveMambaLM } from "./pretrained.ts";
import type { ScanImpl } from "../ssm/mod.ts";
import { isMambaKind, readParameters } from "./lm.ts";

export interface ModelFamily {
  kind: ModelKind;
  /** Validates and completes a config (defaults filled), naming `where` in errors. */
  parseConfig(raw: Record<string, unknown>, where: string): LanguageModel["config"];
  /** Fresh, seeded parameters. */
  init(config: LanguageModel["config"], seed: number): Map<string, Float32Array>;
  /** Wraps host values as a model (variables created here). */
  build(config: LanguageModel["config"], values: Map<string, Float32Array>): LanguageModel;
}

const FAMILIES = new Map<ModelKind, ModelFamily>();

export function registerFamily(f: ModelFamily): void {
  FAMILIES.set(f.kind, f);
}

export function family(kind: string): ModelFamily {
  const f = FAMILIES.get(kind as ModelKind);
  if (!f) {
    throw new InputError(
      "--model",
      undefined,
      `unknown model "${kind}"; known: ${[...FAMILIES.keys()].join(", ")}`,
    );
  }
  return f;
}

export function createModel(kind: string, config: Record<string, unknown>, seed = 0): LanguageModel {
  const f = family(kind);
  const cfg = f.parseConfig(config, `${kind} config`);
  return f.build(cfg, f.init(cfg, seed));
}

// ---------------------------------------------------------------------------------------------------
// Mamba (bytes or subwords) as a LanguageModel

/**
 * Training FLOPs per token of a Mamba LM (forward + backward = 3x forward):
 * forward = 2 * (matmul weights: in_proj 2ed, x_proj (r+2n)e, dt_proj er, out_proj de per layer; head Vd)
 *         + per layer: conv 2ke, scan 9en (mamba's count: discretise, multiply-add the state, read C),
 *           gating and D about 5e.
 * Independent of the training length (the recurrence costs the same at every position).
 */
export function mambaTrainFlopsPerToken(cfg: MambaConfig): number {
  const { d, e, n, r, k, V, L } = dims(cfg);
  const matmul = 2 * (L * (2 * e * d + (r + 2 * n) * e + e * r + d * e) + V * d);
  const other = L * (2 * k * e + 9 * e * n + 5 * e);
  return 3 * (matmul + other);
}

/** Views a MambaLM as a LanguageModel (same variables). */
export function mambaAsLanguageModel(
  m: MambaLM,
  kind: ModelKind = m.config.vocab_size === 256 ? "mambabyte" : "mamba_subword",
): LanguageModel & { mamba: MambaLM } {
  return {
    kind,
    config: m.config as unknown as LanguageModel["config"],
    params: m.params,
    mamba: m,
    logits: (ids) => forward(m, ids).logits,
    noWeightDecay,
    trainFlopsPerToken: () => mambaTrainFlopsPerToken(m.config),
  };
}

/** A MambaLM as a LanguageModel whose forward passes use scan implementation `impl` (tests, benchmarks). */
export function withScanImpl(m: MambaLM, impl?: ScanImpl): LanguageModel {
  return { ...mambaAsLanguageModel(m), logits: (ids) => forward(m, ids, { impl }).logits };
}

/** The MambaLM behind a Mamba-family LanguageModel (`mambaAsLanguageModel`), if it is one. */
export function recurrentCore(model: LanguageModel): MambaLM | undefined {
  return (model as { mamba?: MambaLM }).mamba;
}

/** The MambaLM behind a LanguageModel of a Mamba family, or an error naming what it is. */
export function asMamba(model: LanguageModel): MambaLM {
  const m = recurrentCore(model);
  if (!m) throw new InputError("<model>", undefined, `this needs a Mamba model, got "${model.kind}"`);
  return m;
}

/** The Mamba families: recurrent (recurrentCore), so they score a sequence of any length as one pass. */
export const MAMBA_KINDS = ["mambabyte", "mamba_subword"] as const;

for (const kind of MAMBA_KINDS) {
  registerFamily({
    kind,
    parseConfig: (raw, where) => {
      const cfg = parseMambaConfig({ vocab_size: kind === "mambabyte" ? 256 : undefined, ...raw }, where);
      if (kind === "mambabyte" && cfg.vocab_size !== 256) {
        throw new InputError(
          where,
          "vocab_size",
          `${where}: mambabyte reads bytes, so vocab_size must be 256 (got ${cfg.vocab_size})`,
        );
      }
      return cfg as unknown as LanguageModel["config"];
    },
    init: (cfg, seed) => initParameters(cfg as unknown as MambaConfig, seed),
    build: (cfg, values) => mambaAsLanguageModel(createMambaLM(cfg as unknown as MambaConfig, values), kind),
  });
}

// ---------------------------------------------------------------------------------------------------
// Saving and loading any family

/** The config.json field naming a non-Mamba family. */
export const KIND_FIELD = "model_kind";

/** Writes config.json + model.safetensors (F32) atomically into `dir`. */
export async function saveModel(
  model: LanguageModel,
  dir: string,
  metadata: Record<string, string> = {},
): Promise<void> {
  if (isMambaKind(model.kind)) {
    return saveMambaLM(asMamba(model), dir, metadata);
  }
  const values = await readParameters(model);
  const tensors = new Map(
    [...model.params].map((
      [name, v],
    ) => [name, { dtype: "F32" as const, shape: v.shape, data: values.get(name)! }]),
  );
  await writeSafetensors(`${dir}/${WEIGHTS_FILE}`, tensors, { format: "mambabyte-lab", ...metadata }, {
    createParents: true,
  });
  await atomicWriteFile(
    `${dir}/config.json`,
    JSON.stringify({ [KIND_FIELD]: model.kind, ...model.config }, null, 2) + "\n",
  );
}

/** The tokenizer file a subword model's directory holds next to config.json. */
export const TOKENIZER_FILE = "tokenizer.json";

/**
 * Loads a directory written by `saveModel` (or a mamba_ssm / Hugging Face Mamba checkpoint), with its
 * tokenizer attached (`model.tokenizer`) when the directory has one. `weights` (Mamba models): the format
 * the CPU stepper decodes and scores it with ("f32", "bf16", "int8"; lib/kernels/wasm/decode.ts); the
 * model's own parameters stay float32.
 */
export async function loadModel(dir: string, opts: { weights?: WeightFormat } = {}): Promise<LanguageModel> {
  if (opts.weights !== undefined && !WEIGHT_FORMATS.includes(opts.weights)) {
    throw new InputError(
      dir,
      undefined,
      `weights: expected one of ${WEIGHT_FORMATS.join(", ")}, got "${opts.weights}"`,
    );
  }
  const model = await loadWeights(dir);
  const tokenizerPath = `${dir}/${TOKENIZER_FILE}`;
  if (await pathExists(tokenizerPath)) model.tokenizer = await ByteBPE.load(tokenizerPath);
  if (opts.weights !== undefined) {
    const m = recurrentCore(model);
    if (!m) {
      throw new InputError(
        dir,
        undefined,
        `${dir}: weights "${opts.weights}" apply to Mamba models (the CPU stepper); this is a ${model.kind}`,
      );
    }
    m.decodeWeights = opts.weights;
  }
  return model;
}

async function loadWeights(dir: string): Promise<LanguageModel> {
  let isDir: boolean;
  try {
    isDir = (await Deno.stat(dir)).isDirectory;
  } catch (e) {
    throw new InputError(dir, undefined, `${dir}: cannot open the model directory: ${describeFsError(e)}`);
  }
  if (!isDir) {
    throw new InputError(
      dir,
      undefined,
      `${dir}: not a directory (expected a model directory with config.json)`,
    );
  }
  const configPath = `${dir}/config.json`;
  let text: string;
  try {
    text = await Deno.readTextFile(configPath);
  } catch (e) {
    throw new InputError(
      configPath,
      undefined,
      `${configPath}: cannot read the model config: ${describeFsError(e)}`,
    );
  }
  const json = parseJsonText(text, configPath);
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new InputError(configPath, undefined, `${configPath}: expected a JSON object (the model config)`);
  }
  const raw = json as Record<string, unknown>;
  const kind = raw[KIND_FIELD];
  if (kind === undefined) return mambaAsLanguageModel(await loadPretrained(dir)); // mamba_ssm layout
  if (!FAMILIES.has(kind as ModelKind)) {
    throw new InputError(
      configPath,
      KIND_FIELD,
      `${configPath}: unknown ${KIND_FIELD} ${JSON.stringify(kind)} (known: ${
        [...FAMILIES.keys()].join(", ")
      })`,
    );
  }
  const f = family(String(kind));
  const { [KIND_FIELD]: _, ...rest } = raw;
  const cfg = f.parseConfig(rest, configPath);
  const path = `${dir}/${WEIGHTS_FILE}`;
  const sf = await readSafetensors(path);
  const values = new Map<string, Float32Array>();
  for (const [name, t] of sf.tensors) values.set(name, weightValues(t, path, name));
  return f.build(cfg, values);
}
