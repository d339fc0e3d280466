/**
 * A MambaByte checkpoint as a GGUF file that llama.cpp runs (architecture "mamba", F32), for serving a
 * model trained here with llama.cpp or comparing with it. The mapping follows llama.cpp's own converter for
 * Mamba (convert_hf_to_gguf.py, MambaModel) as of llama.cpp v0.5.0:
 *   A_log (e, n)           -> blk.i.ssm_a = -exp(A_log)   (llama.cpp keeps A itself)
 *   conv1d.weight (e, 1, k) -> blk.i.ssm_conv1d.weight (e, k)
 *   lm_head.weight          -> left out when tied to the embedding (llama.cpp reuses token_embd)
 * The vocabulary is the 256 bytes, written as a GPT-2 byte-level BPE vocabulary (each token the printable
 * character GPT-2 assigns to its byte) with one merge that never applies (llama.cpp requires merges), so
 * llama.cpp's tokenizer maps text to its bytes one to one; no BOS or EOS is added.
 */
import type { Checkpoint } from "./checkpoint.ts";
import { weightValues } from "./checkpoint.ts";
import { dInner, dtRank, paddedVocab } from "./mamba_config.ts";
import { GgmlType, type GgufTensor, type GgufValue, GgufValueType } from "../io/gguf.ts";

/** GPT-2's printable character for each byte (the table every byte-level BPE shares). */
export function byteCharacters(): string[] {
  const printable = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  const chars: string[] = [];
  let next = 256;
  for (let b = 0; b < 256; b++) chars.push(String.fromCodePoint(printable(b) ? b : next++));
  return chars;
}

/** Why a checkpoint cannot be exported to llama.cpp's Mamba, or undefined when it can. */
export function ggufUnsupported(ckpt: Checkpoint): string | undefined {
  const cfg = ckpt.config, s = cfg.ssm_cfg;
  if (dInner(cfg) !== 2 * cfg.d_model) {
    return `ssm_cfg.expand is ${s.expand}; llama.cpp's mamba supports 2 only`;
  }
  if (s.bias) return "ssm_cfg.bias is true; llama.cpp's mamba has no in_proj/out_proj biases";
  if (!s.conv_bias) return "ssm_cfg.conv_bias is false; llama.cpp's mamba requires the conv1d bias";
  if (paddedVocab(cfg) !== 256) {
    return `vocab_size ${cfg.vocab_size} (padded ${paddedVocab(cfg)}): only byte models (256) are exported`;
  }
  if (!cfg.rms_norm) return "rms_norm is false; llama.cpp's mamba uses RMSNorm";
  return undefined;
}

/** The GGUF metadata and tensors of a checkpoint, in the order llama.cpp's converter writes them. */
export function mambaGguf(ckpt: Checkpoint, name: string): {
  metadata: Map<string, GgufValue>;
  tensors: GgufTensor[];
} {
  const why = ggufUnsupported(ckpt);
  if (why) throw new Error(`${ckpt.configPath}: cannot export to GGUF: ${why}`);
  const cfg = ckpt.config, e = dInner(cfg), n = cfg.ssm_cfg.d_state, k = cfg.ssm_cfg.d_conv;
  const u32 = (value: number): GgufValue => ({ type: GgufValueType.UINT32, value });
  const str = (value: string): GgufValue => ({ type: GgufValueType.STRING, value });
  const bool = (value: boolean): GgufValue => ({ type: GgufValueType.BOOL, value });
  const arch = "mamba";
  const metadata = new Map<string, GgufValue>([
    ["general.architecture", str(arch)],
    ["general.name", str(name)],
    [`${arch}.context_length`, u32(2 ** 20)], // a recurrent model: no trained context limit
    [`${arch}.embedding_length`, u32(cfg.d_model)],
    [`${arch}.feed_forward_length`, u32(0)],
    [`${arch}.attention.head_count`, u32(0)],
    [`${arch}.block_count`, u32(cfg.n_layer)],
    [`${arch}.ssm.conv_kernel`, u32(k)],
    [`${arch}.ssm.inner_size`, u32(e)],
    [`${arch}.ssm.state_size`, u32(n)],
    [`${arch}.ssm.time_step_rank`, u32(dtRank(cfg))],
    [`${arch}.attention.layer_norm_rms_epsilon`, { type: GgufValueType.FLOAT32, value: 1e-5 }],
    [`${arch}.ssm.dt_b_c_rms`, bool(false)],
    ["general.file_type", u32(0)], // all F32
    ["tokenizer.ggml.model", str("gpt2")],
    ["tokenizer.ggml.pre", str("default")],
    ["tokenizer.ggml.tokens", {
      type: GgufValueType.ARRAY,
      elementType: GgufValueType.STRING,
      value: byteCharacters(),
    }],
    ["tokenizer.ggml.token_type", {
      type: GgufValueType.ARRAY,
      elementType: GgufValueType.INT32,
      value: Array(256).fill(1), // normal
    }],
    // two CJK characters no byte maps to: a merge that can never apply
    ["tokenizer.ggml.merges", {
      type: GgufValueType.ARRAY,
      elementType: GgufValueType.STRING,
      value: ["一 丁"],
    }],
    ["tokenizer.ggml.add_bos_token", bool(false)],
    ["tokenizer.ggml.add_eos_token", bool(false)],
  ]);
  const file = ckpt.weightsPaths[0];
  const tensors: GgufTensor[] = [];
  const get = (key: string) => {
    const t = ckpt.tensors.get(key);
    if (!t) throw new Error(`${file}: tensor "${key}" is missing`);
    return { shape: t.shape, data: weightValues(t, file, key) };
  };
  const put = (gname: string, key: string, shape?: number[], map?: (x: Float32Array) => Float32Array) => {
    const t = get(key);
    tensors.push({
      name: gname,
      shape: shape ?? t.shape,
      type: GgmlType.F32,
      data: map ? map(t.data) : t.data,
    });
  };
  put("token_embd.weight", "backbone.embedding.weight");
  for (let i = 0; i < cfg.n_layer; i++) {
    const p = `backbone.layers.${i}.`, m = `${p}mixer.`;
    put(`blk.${i}.attn_norm.weight`, `${p}norm.weight`);
    put(`blk.${i}.ssm_in.weight`, `${m}in_proj.weight`);
    put(`blk.${i}.ssm_conv1d.weight`, `${m}conv1d.weight`, [e, k]);
    put(`blk.${i}.ssm_conv1d.bias`, `${m}conv1d.bias`);
    put(`blk.${i}.ssm_x.weight`, `${m}x_proj.weight`);
    put(`blk.${i}.ssm_dt.weight`, `${m}dt_proj.weight`);
    put(`blk.${i}.ssm_dt.bias`, `${m}dt_proj.bias`);
    // -exp in double precision, then rounded once
    put(`blk.${i}.ssm_a`, `${m}A_log`, undefined, (a) => a.map((x) => -Math.exp(x)));
    put(`blk.${i}.ssm_d`, `${m}D`);
    put(`blk.${i}.ssm_out.weight`, `${m}out_proj.weight`);
  }
  put("output_norm.weight", "backbone.norm_f.weight");
  const head = ckpt.tensors.get("lm_head.weight");
  if (head && !cfg.tie_embeddings) put("output.weight", "lm_head.weight");
  else if (head) {
    const emb = get("backbone.embedding.weight").data, h = get("lm_head.weight").data;
    if (h.some((v, i) => v !== emb[i])) {
      throw new Error(
        `${file}: tie_embeddings is true but lm_head.weight differs from the embedding; cannot export to GGUF`,
      );
    }
  }
  return { metadata, tensors };
}
