/**
 * A model directory copied with its float weights stored as float16: half the bytes, so trained models of
 * a few million parameters can be committed (issue 6/6: those the notebooks decode and score, when each
 * is at most 10 MB) and a clone evaluates them without a GPU. `loadModel` decodes float16 exactly into
 * float32, so the copy is the model with every weight rounded to the nearest float16 (round to nearest
 * even); nothing else changes: config.json and a subword model's tokenizer.json are copied as they are, and
 * a tied head's second copy is left out (the lab's loaders tie it again; mamba_ssm's strict
 * load_state_dict and lib/torch/train.py's load_weights would want it: the copies are for the lab).
 */
import { CONFIG_FILE, WEIGHTS_FILE } from "./checkpoint.ts";
import { KIND_FIELD, MAMBA_KINDS, TOKENIZER_FILE } from "./registry.ts";
import { parseMambaConfig } from "./mamba_config.ts";
import { parseJsonText } from "../io/json.ts";
import { InputError } from "../io/errors.ts";
import { pathExists } from "../io/atomic.ts";
import {
  DTYPES,
  readSafetensors,
  readSafetensorsHeader,
  type Tensor,
  toFloat32,
  writeSafetensors,
} from "../io/safetensors.ts";
import { encodeFloat16 } from "../io/half.ts";

/** The metadata entry that marks a copy written here (and lets a later copy replace it). */
const PRECISION_KEY = "precision";
const PRECISION_MARK = "float16 copy (lib/models/half_precision.ts)";

/**
 * Whether a saved model is a float16 copy written here (its weights rounded): evaluations of it say so in
 * their records (lib/runs/stages.ts).
 */
export async function isHalfCopy(dir: string): Promise<boolean> {
  const mark = await readSafetensorsHeader(`${dir}/${WEIGHTS_FILE}`).then((h) => h.metadata[PRECISION_KEY])
    .catch(() => undefined);
  return mark === PRECISION_MARK;
}

/**
 * The tied head's second copy, where it is one: a Mamba config (mamba_ssm's, or a lab family of Mamba) that
 * ties the head (as its parser reads it: tie_embeddings, or Hugging Face's tie_word_embeddings; mamba_ssm
 * ties by default) and an "lm_head.weight" equal, byte for byte, to "backbone.embedding.weight". A head that
 * differs is kept (the loader lets it win, as mamba_ssm's load_state_dict does), and so is one of an untied
 * config. Leaving it out cuts a subword model's copy by a quarter or more (its 4,096-token head is a large
 * part of a small model: the equal-bytes drafter 7.7 -> 5.6 MB) and changes nothing the lab loads.
 */
function tiedDuplicates(raw: unknown, where: string, tensors: Map<string, Tensor>): string[] {
  const head = tensors.get("lm_head.weight"), emb = tensors.get("backbone.embedding.weight");
  if (!head || !emb || head.dtype !== emb.dtype || head.shape.join() !== emb.shape.join()) return [];
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return [];
  const { [KIND_FIELD]: kind, ...rest } = raw as Record<string, unknown>;
  if (kind !== undefined && !(MAMBA_KINDS as readonly unknown[]).includes(kind)) return [];
  if (!parseMambaConfig(rest, where).tie_embeddings) return [];
  const a = new Uint8Array(head.data.buffer, head.data.byteOffset, head.data.byteLength);
  const b = new Uint8Array(emb.data.buffer, emb.data.byteOffset, emb.data.byteLength);
  return a.length === b.length && a.every((v, i) => v === b[i]) ? ["lm_head.weight"] : [];
}

/** The largest finite float16. */
const FLOAT16_MAX = 65504;

export interface HalfModelSummary {
  out: string;
  tensors: number;
  /** Bytes of the float16 model.safetensors, and of the file it came from. */
  bytes: number;
  source_bytes: number;
  /**
   * Tensors left out: "lm_head.weight" where the config ties it to the embedding and the file's copy equals
   * the embedding (mamba_ssm's state_dict stores both names; the lab's loader ties the head again).
   */
  dropped: string[];
  /** The largest |w16 - w| over all weights, and the largest relative to |w| (weights not zero). */
  max_abs_error: number;
  max_rel_error: number;
}

/**
 * Writes `out`: `src`'s config.json, tokenizer.json (if any) and model.safetensors with every F32, F64 and
 * BF16 tensor as F16 (integer tensors kept). A weight beyond float16's range is refused, naming the tensor.
 * `out` is written under a temporary name and renamed into place, replacing an earlier copy.
 */
export async function writeHalfModel(src: string, out: string): Promise<HalfModelSummary> {
  const weights = `${src}/${WEIGHTS_FILE}`;
  for (const f of [`${src}/${CONFIG_FILE}`, weights]) {
    if (!(await pathExists(f))) {
      throw new InputError(f, undefined, `${f} does not exist: --model must be a directory saved by the lab`);
    }
  }
  // an existing `out` is replaced only when it is an earlier float16 copy: never an unrelated folder
  if (await pathExists(out)) {
    if (!(await isHalfCopy(out))) {
      throw new InputError(
        out,
        undefined,
        `${out} exists and is not a float16 copy written by this command: choose another --out, or remove it`,
      );
    }
  }
  const sf = await readSafetensors(weights);
  const tensors = new Map<string, Tensor>();
  const configPath = `${src}/${CONFIG_FILE}`;
  const dropped = tiedDuplicates(
    parseJsonText(await Deno.readTextFile(configPath), configPath),
    configPath,
    sf.tensors,
  );
  let maxAbs = 0, maxRel = 0;
  for (const [name, t] of sf.tensors) {
    if (dropped.includes(name)) continue;
    if (!DTYPES[t.dtype].float) {
      tensors.set(name, t);
      continue;
    }
    const w = toFloat32(t, { file: weights, key: name });
    for (let i = 0; i < w.length; i++) {
      if (!(Math.abs(w[i]) <= FLOAT16_MAX)) { // NaN too
        throw new InputError(
          weights,
          name,
          `${weights}: tensor "${name}" holds ${
            w[i]
          }, beyond float16's range (±${FLOAT16_MAX}) or not a number: it cannot be stored in half precision`,
        );
      }
    }
    const half = encodeFloat16(w);
    const back = toFloat32({ dtype: "F16", shape: t.shape, data: half });
    for (let i = 0; i < w.length; i++) {
      const e = Math.abs(back[i] - w[i]);
      if (e > maxAbs) maxAbs = e;
      if (w[i] !== 0 && e / Math.abs(w[i]) > maxRel) maxRel = e / Math.abs(w[i]);
    }
    tensors.set(name, { dtype: "F16", shape: t.shape, data: half });
  }
  const base = out.replace(/\/+$/, "");
  const tmp = `${base}.part-${Deno.pid}`;
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
  try {
    await writeSafetensors(`${tmp}/${WEIGHTS_FILE}`, tensors, {
      ...sf.metadata,
      [PRECISION_KEY]: PRECISION_MARK,
    }, { createParents: true });
    await Deno.copyFile(`${src}/${CONFIG_FILE}`, `${tmp}/${CONFIG_FILE}`);
    if (await pathExists(`${src}/${TOKENIZER_FILE}`)) {
      await Deno.copyFile(`${src}/${TOKENIZER_FILE}`, `${tmp}/${TOKENIZER_FILE}`);
    }
    // replace an earlier copy: it moves aside first, so `out` is at every moment whole or absent
    const old = `${base}.old-${Deno.pid}`;
    const had = await pathExists(out);
    if (had) await Deno.rename(out, old);
    await Deno.rename(tmp, out);
    if (had) await Deno.remove(old, { recursive: true });
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  }
  return {
    out,
    tensors: tensors.size,
    dropped,
    bytes: (await Deno.stat(`${out}/${WEIGHTS_FILE}`)).size,
    source_bytes: (await Deno.stat(weights)).size,
    max_abs_error: maxAbs,
    max_rel_error: maxRel,
  };
}
