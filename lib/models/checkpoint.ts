/**
 * Checkpoint directories as mamba_ssm / Hugging Face lay them out: config.json plus model.safetensors
 * (or shards listed in model.safetensors.index.json). Pure TypeScript: returns typed arrays, which the
 * model code turns into tensors.
 */
import {
  canonicalizeStateDictKeys,
  checkStateDict,
  configToJson,
  type MambaConfig,
  readMambaConfig,
} from "./mamba_config.ts";
import { atomicWriteFile, pathExists as exists } from "../io/atomic.ts";
import {
  describeFsError,
  findNonFinite,
  InputError,
  NonFiniteWeightsError,
  SafetensorsError,
} from "../io/errors.ts";
import {
  readSafetensors,
  readSafetensorsHeader,
  type Tensor,
  type TensorInfo,
  type TensorsInput,
  toFloat32,
  writeSafetensors,
} from "../io/safetensors.ts";
import { parseJsonText } from "../io/json.ts";

export const CONFIG_FILE = "config.json";
export const WEIGHTS_FILE = "model.safetensors";
export const WEIGHTS_INDEX_FILE = "model.safetensors.index.json";

export interface Checkpoint {
  dir: string;
  configPath: string;
  config: MambaConfig;
  /** The safetensors file(s) the tensors were read from. */
  weightsPaths: string[];
  /**
   * Every tensor under mamba_ssm's key names (Hugging Face names are mapped), already checked against the
   * config. With tie_embeddings, "lm_head.weight" is present only if the file stores it; mamba_ssm's
   * load_state_dict would then copy it over the (shared) embedding, as it is loaded last.
   */
  tensors: Map<string, Tensor>;
  /** The safetensors metadata (of the first shard when sharded). */
  metadata: Record<string, string>;
}

function join(dir: string, name: string): string {
  return dir.endsWith("/") ? dir + name : `${dir}/${name}`;
}

/**
 * Reads config.json and the weights of a checkpoint directory. Shapes are checked against the config from
 * the headers alone, before any tensor data is read.
 */
export async function readCheckpoint(dir: string): Promise<Checkpoint> {
  try {
    const st = await Deno.stat(dir);
    if (!st.isDirectory) {
      throw new InputError(dir, undefined, `${dir}: not a directory (expected a checkpoint directory)`);
    }
  } catch (err) {
    if (err instanceof InputError) throw err;
    throw new InputError(
      dir,
      undefined,
      `${dir}: cannot open checkpoint directory: ${describeFsError(err)}`,
      { cause: err },
    );
  }
  const configPath = join(dir, CONFIG_FILE);
  const config = await readMambaConfig(configPath);

  const single = join(dir, WEIGHTS_FILE);
  const index = join(dir, WEIGHTS_INDEX_FILE);
  let shards: { path: string; keys?: string[] }[];
  if (await exists(single)) {
    shards = [{ path: single }];
  } else if (await exists(index)) {
    shards = await readIndex(index, dir);
  } else {
    throw await missingWeightsError(dir);
  }

  // Validate every header (and the key/shape set as a whole) before reading data.
  const infos = new Map<string, TensorInfo>();
  const headers = [];
  for (const shard of shards) {
    const h = await readSafetensorsHeader(shard.path);
    headers.push(h);
    if (shard.keys) {
      for (const k of shard.keys) {
        if (!h.tensors.has(k)) {
          throw new SafetensorsError(
            shard.path,
            k,
            `${shard.path}: no tensor "${k}", which ${index} places in this file`,
          );
        }
      }
    }
    for (const [k, info] of h.tensors) {
      if (shard.keys && !shard.keys.includes(k)) continue;
      if (infos.has(k)) {
        throw new SafetensorsError(
          shard.path,
          k,
          `${shard.path}: tensor "${k}" also appears in another shard`,
        );
      }
      infos.set(k, info);
    }
  }
  const weightsLabel = shards.length === 1 ? shards[0].path : index;
  checkStateDict(weightsLabel, infos, config, configPath);

  const raw = new Map<string, Tensor>();
  for (const shard of shards) {
    const sf = await readSafetensors(shard.path, shard.keys ? { keys: shard.keys } : {});
    for (const [k, t] of sf.tensors) raw.set(k, t);
  }
  return {
    dir,
    configPath,
    config,
    weightsPaths: shards.map((s) => s.path),
    tensors: canonicalizeStateDictKeys(weightsLabel, raw),
    metadata: headers[0]?.metadata ?? {},
  };
}

/**
 * A stored weight as float32 (F16 / BF16 / F64 converted), refused when it holds NaN or an infinity: the
 * one gate every model loader (`loadPretrained`, the registry's `loadModel`) passes each tensor through, so
 * a damaged or diverged checkpoint fails on load with the tensor's name instead of scoring NaN or sampling
 * arbitrary bytes. One pass over the values.
 */
export function weightValues(t: Tensor, file: string, key: string): Float32Array {
  const values = toFloat32(t, { file, key });
  const bad = findNonFinite(values);
  if (bad) {
    const first = values[bad.first];
    throw new NonFiniteWeightsError(
      file,
      key,
      `${file}: tensor "${key}" holds ${bad.count} non-finite value${bad.count === 1 ? "" : "s"} of ` +
        `${values.length} (${first} at index ${bad.first}); the checkpoint is damaged or its training diverged`,
    );
  }
  return values;
}

async function readIndex(index: string, dir: string): Promise<{ path: string; keys: string[] }[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(index);
  } catch (err) {
    throw new InputError(index, undefined, `${index}: cannot read: ${describeFsError(err)}`, { cause: err });
  }
  const json = parseJsonText(text, index) as { weight_map?: unknown };
  const map = json?.weight_map;
  if (typeof map !== "object" || map === null || Array.isArray(map)) {
    throw new InputError(
      index,
      "weight_map",
      `${index}: expected an object "weight_map" {tensor name: shard file}`,
    );
  }
  const byFile = new Map<string, string[]>();
  for (const [key, file] of Object.entries(map as Record<string, unknown>)) {
    if (typeof file !== "string" || file.includes("/") || file.includes("\\")) {
      throw new InputError(
        index,
        key,
        `${index}: weight_map "${key}" must name a file in ${dir}, got ${JSON.stringify(file)}`,
      );
    }
    if (!byFile.has(file)) byFile.set(file, []);
    byFile.get(file)!.push(key);
  }
  return [...byFile.entries()].map(([file, keys]) => ({ path: join(dir, file), keys }));
}

async function missingWeightsError(dir: string): Promise<InputError> {
  const torchFile = join(dir, "pytorch_model.bin");
  if (await exists(torchFile)) {
    return new InputError(
      torchFile,
      undefined,
      `${dir}: has no ${WEIGHTS_FILE}, only pytorch_model.bin (a PyTorch pickle, which cannot be read safely ` +
        `here). Convert it once with PyTorch: python -c "import torch; from safetensors.torch import ` +
        `save_file; sd = torch.load('${torchFile}', map_location='cpu'); sd.pop('lm_head.weight', None) ` +
        `if sd.get('lm_head.weight') is not None and sd['lm_head.weight'].data_ptr() == ` +
        `sd['backbone.embedding.weight'].data_ptr() else None; save_file({k: v.contiguous() for k, v in ` +
        `sd.items()}, '${join(dir, WEIGHTS_FILE)}', metadata={'format': 'pt'})"`,
    );
  }
  return new InputError(
    join(dir, WEIGHTS_FILE),
    undefined,
    `${dir}: no ${WEIGHTS_FILE} (nor ${WEIGHTS_INDEX_FILE}) in the checkpoint directory`,
  );
}

/**
 * Writes config.json and model.safetensors into `dir` (created if missing). Everything is validated
 * first (tensors against the config), so invalid input writes nothing; each file is written atomically.
 * The safetensors metadata defaults to {format: "pt"}, which Hugging Face transformers requires.
 */
export async function writeCheckpoint(
  dir: string,
  config: MambaConfig,
  tensors: TensorsInput,
  metadata: Record<string, string> = { format: "pt" },
): Promise<void> {
  const weightsPath = join(dir, WEIGHTS_FILE);
  const entries = tensors instanceof Map ? tensors : new Map(Object.entries(tensors));
  checkStateDict(weightsPath, entries, config, "the config");
  const configText = JSON.stringify(configToJson(config), null, 2) + "\n";
  // Weights first: a reader never finds a new config.json next to weights that do not match it yet.
  await writeSafetensors(weightsPath, tensors, metadata, { createParents: true });
  await atomicWriteFile(join(dir, CONFIG_FILE), configText);
}
