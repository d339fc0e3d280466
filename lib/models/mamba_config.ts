/**
 * The model config of mamba_ssm's `MambaLMHeadModel` (config.json next to the weights), and the state
 * dict it implies.
 *
 * Two spellings are accepted:
 *  - mamba_ssm's `MambaConfig` (what the MambaByte checkpoints use): d_model, n_layer, vocab_size, ssm_cfg,
 *    rms_norm, residual_in_fp32, fused_add_norm, pad_vocab_size_multiple, tie_embeddings, d_intermediate,
 *    attn_layer_idx, attn_cfg;
 *  - Hugging Face transformers' `MambaConfig` (model_type "mamba"): hidden_size, num_hidden_layers,
 *    state_size, conv_kernel, time_step_*, use_bias, ... which is translated to the mamba_ssm form.
 * Defaults are mamba_ssm's (and transformers' for the HF form: they coincide), except that d_model,
 * n_layer and vocab_size are required: mamba_ssm's defaults (a 2.8B subword model) are never what a
 * config that omits them means. Unknown fields are errors, so a typo cannot silently select a default.
 */
import { ConfigError, describeFsError, StateDictError } from "../io/errors.ts";
import { parseJsonText } from "../io/json.ts";

export interface MambaSsmConfig {
  /** Mixer type; only "Mamba1" (the MambaByte architecture) is supported. Not written by configToJson. */
  layer: "Mamba1";
  d_state: number;
  d_conv: number;
  /** d_inner = int(expand * d_model). */
  expand: number;
  /** "auto" means ceil(d_model / 16). */
  dt_rank: number | "auto";
  dt_min: number;
  dt_max: number;
  dt_init: "random" | "constant";
  dt_scale: number;
  dt_init_floor: number;
  conv_bias: boolean;
  bias: boolean;
  use_fast_path: boolean;
}

export interface MambaConfig {
  d_model: number;
  /** Width of a gated MLP after each mixer; 0 (none) is the only supported value. */
  d_intermediate: number;
  n_layer: number;
  vocab_size: number;
  ssm_cfg: MambaSsmConfig;
  /** Layers replaced by attention; must be empty. */
  attn_layer_idx: number[];
  attn_cfg: Record<string, never>;
  rms_norm: boolean;
  residual_in_fp32: boolean;
  /** A kernel fusion switch in mamba_ssm; numerically the same model either way. */
  fused_add_norm: boolean;
  pad_vocab_size_multiple: number;
  tie_embeddings: boolean;
}

/** mamba_ssm's defaults for `ssm_cfg` (Mamba1's constructor arguments). */
export const SSM_DEFAULTS: Readonly<MambaSsmConfig> = {
  layer: "Mamba1",
  d_state: 16,
  d_conv: 4,
  expand: 2,
  dt_rank: "auto",
  dt_min: 0.001,
  dt_max: 0.1,
  dt_init: "random",
  dt_scale: 1.0,
  dt_init_floor: 1e-4,
  conv_bias: true,
  bias: false,
  use_fast_path: true,
};

/** mamba_ssm's defaults for the top-level fields that have one here. */
export const CONFIG_DEFAULTS = {
  d_intermediate: 0,
  rms_norm: true,
  residual_in_fp32: true,
  fused_add_norm: true,
  pad_vocab_size_multiple: 8,
  tie_embeddings: true,
} as const;

/** The epsilon of every norm in mamba_ssm's MixerModel (not a config field there). */
export const NORM_EPSILON = 1e-5;

const TOP_FIELDS = [
  "d_model",
  "d_intermediate",
  "n_layer",
  "vocab_size",
  "ssm_cfg",
  "attn_layer_idx",
  "attn_cfg",
  "rms_norm",
  "residual_in_fp32",
  "fused_add_norm",
  "pad_vocab_size_multiple",
  "tie_embeddings",
];
const SSM_FIELDS = Object.keys(SSM_DEFAULTS);

/** Hugging Face field -> mamba_ssm field path. */
const HF_FIELDS: Record<string, string> = {
  hidden_size: "d_model",
  num_hidden_layers: "n_layer",
  vocab_size: "vocab_size",
  state_size: "ssm_cfg.d_state",
  conv_kernel: "ssm_cfg.d_conv",
  expand: "ssm_cfg.expand",
  time_step_rank: "ssm_cfg.dt_rank",
  time_step_min: "ssm_cfg.dt_min",
  time_step_max: "ssm_cfg.dt_max",
  time_step_scale: "ssm_cfg.dt_scale",
  time_step_floor: "ssm_cfg.dt_init_floor",
  time_step_init_scheme: "ssm_cfg.dt_init",
  use_bias: "ssm_cfg.bias",
  use_conv_bias: "ssm_cfg.conv_bias",
  residual_in_fp32: "residual_in_fp32",
  tie_word_embeddings: "tie_embeddings",
};
/** Hugging Face fields that are checked for consistency but have no mamba_ssm counterpart. */
const HF_CHECKED = ["model_type", "hidden_act", "layer_norm_epsilon", "intermediate_size"];
/** Hugging Face bookkeeping that does not change the computation: ignored (in the HF form only). */
const HF_IGNORED = [
  "architectures",
  "torch_dtype",
  "dtype",
  "transformers_version",
  "bos_token_id",
  "eos_token_id",
  "pad_token_id",
  "sep_token_id",
  "decoder_start_token_id",
  "use_cache",
  "initializer_range",
  "rescale_prenorm_residual",
  "use_mambapy",
  "_name_or_path",
  "auto_map",
  "return_dict",
  "output_hidden_states",
  "output_attentions",
  "torchscript",
  "use_bfloat16",
  "is_encoder_decoder",
  "is_decoder",
  "add_cross_attention",
  "tokenizer_class",
  "id2label",
  "label2id",
  "problem_type",
  "finetuning_task",
  "task_specific_params",
  "chunk_size_feed_forward",
  "pruned_heads",
  "max_length",
  "min_length",
  "_attn_implementation_autoset",
];

// ===================================================================================================
// Parsing

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function show(v: unknown): string {
  if (v === undefined) return "nothing";
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** The closest allowed name, for "did you mean" hints (edit distance <= 3). */
function closest(name: string, allowed: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = 4;
  for (const a of allowed) {
    const d = editDistance(name, a);
    if (d < bestD) {
      bestD = d;
      best = a;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

/**
 * Reads fields from a JSON object, reporting problems under the name the user wrote: `label(path)` maps a
 * mamba_ssm path ("ssm_cfg.d_state") to the field as it appears in the file ("state_size" in HF form).
 */
class FieldReader {
  constructor(readonly source: string, readonly label: (path: string) => string) {}

  fail(path: string, msg: string): never {
    const name = this.label(path);
    throw new ConfigError(this.source, name, `${this.source}: field "${name}" ${msg}`);
  }

  posInt(obj: Json, field: string, path: string, dflt?: number): number {
    const v = obj[field] ?? dflt;
    if (v === undefined) this.fail(path, "is required (a positive integer)");
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) {
      this.fail(path, `must be a positive integer, got ${show(v)}`);
    }
    return v as number;
  }

  nonNegInt(obj: Json, field: string, path: string, dflt: number): number {
    const v = obj[field] ?? dflt;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
      this.fail(path, `must be a non-negative integer, got ${show(v)}`);
    }
    return v as number;
  }

  posNumber(obj: Json, field: string, path: string, dflt: number): number {
    const v = obj[field] ?? dflt;
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) {
      this.fail(path, `must be a positive number, got ${show(v)}`);
    }
    return v as number;
  }

  nonNegNumber(obj: Json, field: string, path: string, dflt: number): number {
    const v = obj[field] ?? dflt;
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
      this.fail(path, `must be a non-negative number, got ${show(v)}`);
    }
    return v as number;
  }

  bool(obj: Json, field: string, path: string, dflt: boolean): boolean {
    const v = obj[field] ?? dflt;
    if (typeof v !== "boolean") this.fail(path, `must be true or false, got ${show(v)}`);
    return v as boolean;
  }

  oneOf<T extends string>(obj: Json, field: string, path: string, allowed: readonly T[], dflt: T): T {
    const v = obj[field] ?? dflt;
    if (typeof v !== "string" || !allowed.includes(v as T)) {
      this.fail(path, `must be one of ${allowed.map((a) => `"${a}"`).join(", ")}, got ${show(v)}`);
    }
    return v as T;
  }

  rejectUnknown(obj: Json, allowed: readonly string[], prefix: string, also: readonly string[] = []): void {
    for (const field of Object.keys(obj)) {
      if (allowed.includes(field) || also.includes(field)) continue;
      const hint = closest(field, [...allowed, ...also]);
      const where = prefix ? ` in ${prefix}` : "";
      throw new ConfigError(
        this.source,
        prefix ? `${prefix}.${field}` : field,
        `${this.source}: unknown field "${prefix ? `${prefix}.` : ""}${field}"` +
          (hint ? ` (did you mean "${hint}"?)` : "") + `; allowed${where}: ${allowed.join(", ")}`,
      );
    }
  }
}

/**
 * Validates a parsed config.json (mamba_ssm or Hugging Face form) and returns the complete mamba_ssm
 * config with every default filled in. `source` names the file in error messages.
 */
export function parseMambaConfig(json: unknown, source = "config.json"): MambaConfig {
  if (!isObject(json)) {
    throw new ConfigError(source, undefined, `${source}: expected a JSON object, found ${show(json)}`);
  }
  if (isHuggingFaceForm(json)) return parseHuggingFace(json, source);
  return parseMambaSsm(json, new FieldReader(source, (p) => p));
}

/** Hugging Face transformers configs name the width `hidden_size` and carry a `model_type`. */
function isHuggingFaceForm(json: Json): boolean {
  return "model_type" in json || "hidden_size" in json || "num_hidden_layers" in json || "state_size" in json;
}

function parseMambaSsm(json: Json, r: FieldReader): MambaConfig {
  // The mixer type is checked first: a Mamba2 ssm_cfg has fields (headdim, ngroups, ...) that would
  // otherwise be reported as unknown, hiding the real problem.
  const ssmRaw = json.ssm_cfg ?? {};
  if (!isObject(ssmRaw)) r.fail("ssm_cfg", `must be an object, got ${show(ssmRaw)}`);
  const ssm = ssmRaw as Json;
  const layer = ssm.layer ?? "Mamba1";
  if (layer !== "Mamba1") {
    r.fail("ssm_cfg.layer", `is ${show(layer)}: only "Mamba1" (the MambaByte architecture) is supported`);
  }
  r.rejectUnknown(json, TOP_FIELDS, "");
  r.rejectUnknown(ssm, SSM_FIELDS, "ssm_cfg");

  const d_model = r.posInt(json, "d_model", "d_model");
  const d_intermediate = r.nonNegInt(
    json,
    "d_intermediate",
    "d_intermediate",
    CONFIG_DEFAULTS.d_intermediate,
  );
  if (d_intermediate !== 0) {
    r.fail("d_intermediate", `is ${d_intermediate}: a gated MLP after each mixer is not supported (only 0)`);
  }
  const attnIdx = json.attn_layer_idx ?? [];
  if (!Array.isArray(attnIdx) || attnIdx.length > 0) {
    r.fail("attn_layer_idx", `must be empty (attention layers are not supported), got ${show(attnIdx)}`);
  }
  const attnCfg = json.attn_cfg ?? {};
  if (!isObject(attnCfg) || Object.keys(attnCfg).length > 0) {
    r.fail("attn_cfg", `must be empty (attention layers are not supported), got ${show(attnCfg)}`);
  }

  const dtRankRaw = ssm.dt_rank ?? SSM_DEFAULTS.dt_rank;
  if (
    dtRankRaw !== "auto" &&
    (typeof dtRankRaw !== "number" || !Number.isSafeInteger(dtRankRaw) || dtRankRaw <= 0)
  ) {
    r.fail("ssm_cfg.dt_rank", `must be "auto" or a positive integer, got ${show(dtRankRaw)}`);
  }
  const dt_rank = dtRankRaw as number | "auto";
  const dt_min = r.posNumber(ssm, "dt_min", "ssm_cfg.dt_min", SSM_DEFAULTS.dt_min);
  const dt_max = r.posNumber(ssm, "dt_max", "ssm_cfg.dt_max", SSM_DEFAULTS.dt_max);
  if (dt_max < dt_min) r.fail("ssm_cfg.dt_max", `(${dt_max}) must be at least dt_min (${dt_min})`);
  const expand = r.posNumber(ssm, "expand", "ssm_cfg.expand", SSM_DEFAULTS.expand);
  if (Math.trunc(expand * d_model) < 1) {
    r.fail("ssm_cfg.expand", `(${expand}) times d_model (${d_model}) must give d_inner >= 1`);
  }

  const ssm_cfg: MambaSsmConfig = {
    layer: "Mamba1",
    d_state: r.posInt(ssm, "d_state", "ssm_cfg.d_state", SSM_DEFAULTS.d_state),
    d_conv: r.posInt(ssm, "d_conv", "ssm_cfg.d_conv", SSM_DEFAULTS.d_conv),
    expand,
    dt_rank,
    dt_min,
    dt_max,
    dt_init: r.oneOf(
      ssm,
      "dt_init",
      "ssm_cfg.dt_init",
      ["random", "constant"] as const,
      SSM_DEFAULTS.dt_init,
    ),
    dt_scale: r.posNumber(ssm, "dt_scale", "ssm_cfg.dt_scale", SSM_DEFAULTS.dt_scale),
    dt_init_floor: r.nonNegNumber(ssm, "dt_init_floor", "ssm_cfg.dt_init_floor", SSM_DEFAULTS.dt_init_floor),
    conv_bias: r.bool(ssm, "conv_bias", "ssm_cfg.conv_bias", SSM_DEFAULTS.conv_bias),
    bias: r.bool(ssm, "bias", "ssm_cfg.bias", SSM_DEFAULTS.bias),
    use_fast_path: r.bool(ssm, "use_fast_path", "ssm_cfg.use_fast_path", SSM_DEFAULTS.use_fast_path),
  };
  return {
    d_model,
    d_intermediate,
    n_layer: r.posInt(json, "n_layer", "n_layer"),
    vocab_size: r.posInt(json, "vocab_size", "vocab_size"),
    ssm_cfg,
    attn_layer_idx: [],
    attn_cfg: {},
    rms_norm: r.bool(json, "rms_norm", "rms_norm", CONFIG_DEFAULTS.rms_norm),
    residual_in_fp32: r.bool(json, "residual_in_fp32", "residual_in_fp32", CONFIG_DEFAULTS.residual_in_fp32),
    fused_add_norm: r.bool(json, "fused_add_norm", "fused_add_norm", CONFIG_DEFAULTS.fused_add_norm),
    pad_vocab_size_multiple: r.posInt(
      json,
      "pad_vocab_size_multiple",
      "pad_vocab_size_multiple",
      CONFIG_DEFAULTS.pad_vocab_size_multiple,
    ),
    tie_embeddings: r.bool(json, "tie_embeddings", "tie_embeddings", CONFIG_DEFAULTS.tie_embeddings),
  };
}

/**
 * Translates a Hugging Face `MambaConfig` into the mamba_ssm form, then validates that. HF configs
 * converted from mamba_ssm often keep the mamba_ssm fields too (d_model, n_layer, ssm_cfg, ...): those are
 * accepted when they agree with their HF counterparts. HF never pads the vocabulary, so the translated
 * pad_vocab_size_multiple is 1.
 */
function parseHuggingFace(json: Json, source: string): MambaConfig {
  const fail = (field: string, msg: string): never => {
    throw new ConfigError(source, field, `${source}: field "${field}" ${msg}`);
  };
  if ("model_type" in json && json.model_type !== "mamba") {
    fail(
      "model_type",
      `is ${show(json.model_type)}: only "mamba" (Mamba1, the MambaByte architecture) is supported`,
    );
  }
  const mambaSsmAliases = TOP_FIELDS.filter((f) => !(f in HF_FIELDS) && f !== "ssm_cfg");
  const r0 = new FieldReader(source, (p) => p);
  r0.rejectUnknown(
    json,
    [...Object.keys(HF_FIELDS), ...HF_CHECKED, ...mambaSsmAliases, "ssm_cfg"],
    "",
    HF_IGNORED,
  );

  if ("hidden_act" in json && json.hidden_act !== "silu") {
    fail("hidden_act", `is ${show(json.hidden_act)}: Mamba uses "silu"`);
  }
  if ("layer_norm_epsilon" in json && json.layer_norm_epsilon !== NORM_EPSILON) {
    fail(
      "layer_norm_epsilon",
      `is ${show(json.layer_norm_epsilon)}: only mamba_ssm's ${NORM_EPSILON} is supported`,
    );
  }
  if ("rms_norm" in json && json.rms_norm !== true) {
    fail("rms_norm", `is ${show(json.rms_norm)}, but Hugging Face Mamba models always use RMSNorm`);
  }

  // Build the mamba_ssm form, remembering which HF field each value came from (for messages).
  const top: Json = {};
  const ssm: Json = {};
  const origin = new Map<string, string>();
  const put = (path: string, value: unknown, from: string) => {
    const [obj, field] = path.startsWith("ssm_cfg.") ? [ssm, path.slice(8)] : [top, path];
    if (field in obj && JSON.stringify(obj[field]) !== JSON.stringify(value)) {
      fail(from, `(${show(value)}) disagrees with "${origin.get(path)}" (${show(obj[field])})`);
    }
    obj[field] = value;
    if (!origin.has(path)) origin.set(path, from);
  };
  for (const [hf, path] of Object.entries(HF_FIELDS)) {
    if (json[hf] !== undefined && json[hf] !== null) put(path, json[hf], hf);
  }
  for (const f of mambaSsmAliases) {
    if (json[f] !== undefined && json[f] !== null) put(f, json[f], f);
  }
  const ssmCfg = json.ssm_cfg ?? {};
  if (!isObject(ssmCfg)) return fail("ssm_cfg", `must be an object, got ${show(ssmCfg)}`);
  for (const [k, v] of Object.entries(ssmCfg)) put(`ssm_cfg.${k}`, v, `ssm_cfg.${k}`);
  top.pad_vocab_size_multiple = 1;
  origin.set("pad_vocab_size_multiple", "pad_vocab_size_multiple");
  if (Object.keys(ssm).length > 0) top.ssm_cfg = ssm;

  const cfg = parseMambaSsm(top, new FieldReader(source, (p) => origin.get(p) ?? hfNameOf(p)));
  if ("intermediate_size" in json && json.intermediate_size !== dInner(cfg)) {
    fail(
      "intermediate_size",
      `is ${show(json.intermediate_size)} but expand * hidden_size gives ${dInner(cfg)}`,
    );
  }
  return cfg;
}

/** The HF name of a mamba_ssm path (for "field is required" messages about absent fields). */
function hfNameOf(path: string): string {
  for (const [hf, p] of Object.entries(HF_FIELDS)) if (p === path) return hf;
  return path;
}

/** Reads and validates a config.json file (either form). */
export async function readMambaConfig(path: string): Promise<MambaConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    throw new ConfigError(path, undefined, `${path}: cannot read: ${describeFsError(err)}`, { cause: err });
  }
  return parseMambaConfig(parseJsonText(text, path), path);
}

// ===================================================================================================
// Derived quantities and serialisation

/** Inner width of the mixer: int(expand * d_model), as mamba_ssm computes it. */
export function dInner(cfg: MambaConfig): number {
  return Math.trunc(cfg.ssm_cfg.expand * cfg.d_model);
}

/** Rank of the Δ projection: ceil(d_model / 16) when "auto". */
export function dtRank(cfg: MambaConfig): number {
  const r = cfg.ssm_cfg.dt_rank;
  return r === "auto" ? Math.ceil(cfg.d_model / 16) : r;
}

/** Rows of the embedding and LM head: vocab_size rounded up to a multiple of pad_vocab_size_multiple. */
export function paddedVocab(cfg: MambaConfig): number {
  const m = cfg.pad_vocab_size_multiple;
  return Math.ceil(cfg.vocab_size / m) * m;
}

/**
 * The config in mamba_ssm form, for config.json. Only fields every mamba_ssm version knows are written
 * (d_intermediate, attn_* and ssm_cfg.layer are omitted: they are always the defaults here, and mamba_ssm
 * 1.x, which the MambaByte checkpoints were made with, rejects them).
 */
export function configToJson(cfg: MambaConfig): Record<string, unknown> {
  const s = cfg.ssm_cfg;
  return {
    d_model: cfg.d_model,
    n_layer: cfg.n_layer,
    vocab_size: cfg.vocab_size,
    ssm_cfg: {
      d_state: s.d_state,
      d_conv: s.d_conv,
      expand: s.expand,
      dt_rank: s.dt_rank,
      dt_min: s.dt_min,
      dt_max: s.dt_max,
      dt_init: s.dt_init,
      dt_scale: s.dt_scale,
      dt_init_floor: s.dt_init_floor,
      conv_bias: s.conv_bias,
      bias: s.bias,
      use_fast_path: s.use_fast_path,
    },
    rms_norm: cfg.rms_norm,
    residual_in_fp32: cfg.residual_in_fp32,
    fused_add_norm: cfg.fused_add_norm,
    pad_vocab_size_multiple: cfg.pad_vocab_size_multiple,
    tie_embeddings: cfg.tie_embeddings,
  };
}

// ===================================================================================================
// The state dict a config implies

export interface StateDictEntry {
  key: string;
  shape: number[];
  /** The shape in config terms, e.g. "[d_inner, d_state]", for messages. */
  dims: string;
  /** Present in mamba_ssm's state_dict but not needed to load (the tied LM head). */
  optional: boolean;
}

/**
 * Every parameter of mamba_ssm's MambaLMHeadModel for `cfg`, in mamba_ssm's state_dict order: the one list
 * of names and shapes that the model (lib/models/mamba.ts), checkpoints and the native engine use.
 */
export function stateDictSpec(cfg: MambaConfig): StateDictEntry[] {
  const d = cfg.d_model;
  const di = dInner(cfg);
  const r = dtRank(cfg);
  const n = cfg.ssm_cfg.d_state;
  const k = cfg.ssm_cfg.d_conv;
  const v = paddedVocab(cfg);
  const out: StateDictEntry[] = [];
  const add = (key: string, shape: number[], dims: string, optional = false) =>
    out.push({ key, shape, dims, optional });
  const vocabDims = v === cfg.vocab_size ? "[vocab_size, d_model]" : "[padded vocab_size, d_model]";
  add("backbone.embedding.weight", [v, d], vocabDims);
  for (let i = 0; i < cfg.n_layer; i++) {
    const p = `backbone.layers.${i}`;
    add(`${p}.norm.weight`, [d], "[d_model]");
    if (!cfg.rms_norm) add(`${p}.norm.bias`, [d], "[d_model]");
    add(`${p}.mixer.A_log`, [di, n], "[d_inner, d_state]");
    add(`${p}.mixer.D`, [di], "[d_inner]");
    add(`${p}.mixer.in_proj.weight`, [2 * di, d], "[2 * d_inner, d_model]");
    if (cfg.ssm_cfg.bias) add(`${p}.mixer.in_proj.bias`, [2 * di], "[2 * d_inner]");
    add(`${p}.mixer.conv1d.weight`, [di, 1, k], "[d_inner, 1, d_conv]");
    if (cfg.ssm_cfg.conv_bias) add(`${p}.mixer.conv1d.bias`, [di], "[d_inner]");
    add(`${p}.mixer.x_proj.weight`, [r + 2 * n, di], "[dt_rank + 2 * d_state, d_inner]");
    add(`${p}.mixer.dt_proj.weight`, [di, r], "[d_inner, dt_rank]");
    add(`${p}.mixer.dt_proj.bias`, [di], "[d_inner]");
    add(`${p}.mixer.out_proj.weight`, [d, di], "[d_model, d_inner]");
    if (cfg.ssm_cfg.bias) add(`${p}.mixer.out_proj.bias`, [d], "[d_model]");
  }
  add("backbone.norm_f.weight", [d], "[d_model]");
  if (!cfg.rms_norm) add("backbone.norm_f.bias", [d], "[d_model]");
  add("lm_head.weight", [v, d], vocabDims, cfg.tie_embeddings);
  return out;
}

/** Every mamba_ssm state-dict key for `cfg` and its shape (lm_head.weight included, even when tied). */
export function expectedStateDictShapes(cfg: MambaConfig): Map<string, number[]> {
  return new Map(stateDictSpec(cfg).map((e) => [e.key, e.shape]));
}

/** Hugging Face transformers' names that differ from mamba_ssm's (everything else is identical). */
const HF_KEY_RENAMES: Record<string, string> = {
  "backbone.embeddings.weight": "backbone.embedding.weight",
};

/** The mamba_ssm name of a state-dict key (maps Hugging Face transformers' names). */
export function canonicalStateDictKey(key: string): string {
  return HF_KEY_RENAMES[key] ?? key;
}

/**
 * Renames Hugging Face keys to mamba_ssm's (keeping order); an error if both spellings are present.
 */
export function canonicalizeStateDictKeys<T>(file: string, tensors: ReadonlyMap<string, T>): Map<string, T> {
  const out = new Map<string, T>();
  const from = new Map<string, string>();
  for (const [key, value] of tensors) {
    const c = canonicalStateDictKey(key);
    if (out.has(c)) {
      throw new StateDictError(
        file,
        key,
        `${file}: tensor "${key}" duplicates "${from.get(c)}" (both are "${c}")`,
      );
    }
    out.set(c, value);
    from.set(c, key);
  }
  return out;
}

const FLOAT_DTYPES = ["F32", "F16", "BF16", "F64"];

/**
 * Checks that a state dict holds exactly the parameters `cfg` implies, each with the right shape and a
 * floating-point dtype. Accepts Hugging Face key names. Throws ONE StateDictError: its message states
 * the first problem (naming the file, the key, the expected and found shapes) and counts the others.
 * `configSource` names the config in messages (e.g. the path of config.json).
 */
export function checkStateDict(
  file: string,
  tensors: ReadonlyMap<string, { shape: readonly number[]; dtype?: string }>,
  cfg: MambaConfig,
  configSource = "the config",
): void {
  const found = canonicalizeStateDictKeys(file, tensors);
  const originalName = new Map<string, string>();
  for (const key of tensors.keys()) originalName.set(canonicalStateDictKey(key), key);
  const summary = `d_model ${cfg.d_model}, n_layer ${cfg.n_layer}, d_inner ${dInner(cfg)}, ` +
    `d_state ${cfg.ssm_cfg.d_state}, dt_rank ${dtRank(cfg)}, vocab ${paddedVocab(cfg)}`;

  const problems: { key: string; msg: string }[] = [];
  const spec = stateDictSpec(cfg);
  const expectedKeys = new Set(spec.map((e) => e.key));
  for (const e of spec) {
    const t = found.get(e.key);
    const name = originalName.get(e.key) ?? e.key;
    if (!t) {
      if (!e.optional) {
        const why = e.key === "lm_head.weight" ? " (tie_embeddings is false)" : "";
        problems.push({
          key: e.key,
          msg: `missing tensor "${e.key}"${why}; ${configSource} needs shape ${
            fmt(e.shape)
          } = ${e.dims} (${summary})`,
        });
      }
      continue;
    }
    if (!sameShape(t.shape, e.shape)) {
      problems.push({
        key: name,
        msg:
          `tensor "${name}" has shape ${fmt(t.shape)} but ${configSource} needs ${
            fmt(e.shape)
          } = ${e.dims} ` +
          `(${summary})`,
      });
    } else if (t.dtype !== undefined && !FLOAT_DTYPES.includes(t.dtype)) {
      problems.push({
        key: name,
        msg: `tensor "${name}" has dtype ${t.dtype}; parameters must be F32, F16, BF16 or F64`,
      });
    }
  }
  for (const key of found.keys()) {
    if (!expectedKeys.has(key)) {
      const name = originalName.get(key) ?? key;
      problems.push({
        key: name,
        msg: `unexpected tensor "${name}": ${configSource} has no such parameter (${summary})`,
      });
    }
  }
  if (problems.length === 0) return;
  const [first, ...rest] = problems;
  let msg = `${file}: ${first.msg}`;
  if (rest.length > 0) {
    const names = rest.slice(0, 3).map((p) => `"${p.key}"`).join(", ");
    msg += `; and ${rest.length} more problem${rest.length > 1 ? "s" : ""} (${names}${
      rest.length > 3 ? ", ..." : ""
    })`;
  }
  throw new StateDictError(file, first.key, msg);
}

function fmt(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

// ===================================================================================================
// Sizes and parameters the config implies (the TF.js model and the native engine both read these)

/** Dimensions derived from the config, named as in the shape comments. */
export function dims(cfg: MambaConfig) {
  return {
    d: cfg.d_model,
    e: dInner(cfg),
    n: cfg.ssm_cfg.d_state,
    r: dtRank(cfg),
    k: cfg.ssm_cfg.d_conv,
    V: paddedVocab(cfg),
    L: cfg.n_layer,
  };
}

/** The model's parameters: names and shapes (`stateDictSpec`, less the tied head). */
export function parameterShapes(cfg: MambaConfig): [string, number[]][] {
  return stateDictSpec(cfg).filter((e) => !e.optional).map((e) => [e.key, e.shape]);
}

/** Parameters that AdamW must not decay (mamba_ssm marks A_log and D `_no_weight_decay`; norms, biases). */
export function noWeightDecay(name: string): boolean {
  return /(A_log|\.D|norm(_f)?\.weight|\.bias)$/.test(name);
}
