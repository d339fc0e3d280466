/**
 * The Transformer family's config type and parameter names and shapes (nanoGPT's), apart from the TF.js
 * model (transformer.ts) so that the native engine (lib/engine/transformer.ts) can read them without it.
 */

export interface TransformerConfig {
  vocab_size: number;
  d_model: number;
  n_layer: number;
  n_head: number;
  mlp_ratio: number;
  rope_theta: number;
  norm_eps: number;
}

/** One stack of pre-norm Transformer blocks. Parameter names start with `prefix`. */
export interface StackSpec {
  prefix: string;
  d: number;
  nLayer: number;
  nHead: number;
  /** MLP hidden width. */
  f: number;
  ropeTheta: number;
  eps: number;
}

export const blockKey = (s: StackSpec, i: number, name: string) => `${s.prefix}h.${i}.${name}`;

/** Names and shapes of a stack's parameters (nanoGPT names; Linear weights (out, in) as in PyTorch). */
export function stackShapes(s: StackSpec): [string, number[]][] {
  const out: [string, number[]][] = [];
  for (let i = 0; i < s.nLayer; i++) {
    out.push(
      [blockKey(s, i, "ln_1.weight"), [s.d]],
      [blockKey(s, i, "ln_1.bias"), [s.d]],
      [blockKey(s, i, "attn.c_attn.weight"), [3 * s.d, s.d]], // rows: q, k, v
      [blockKey(s, i, "attn.c_proj.weight"), [s.d, s.d]],
      [blockKey(s, i, "ln_2.weight"), [s.d]],
      [blockKey(s, i, "ln_2.bias"), [s.d]],
      [blockKey(s, i, "mlp.c_fc.weight"), [s.f, s.d]],
      [blockKey(s, i, "mlp.c_proj.weight"), [s.d, s.f]],
    );
  }
  out.push([`${s.prefix}ln_f.weight`, [s.d]], [`${s.prefix}ln_f.bias`, [s.d]]);
  return out;
}

/** The decoder stack of a config (the Transformer's, and PerceiverAR's, which has the same fields). */
export function transformerStack(
  cfg: Pick<TransformerConfig, "d_model" | "n_layer" | "n_head" | "mlp_ratio" | "rope_theta" | "norm_eps">,
): StackSpec {
  return {
    prefix: "",
    d: cfg.d_model,
    nLayer: cfg.n_layer,
    nHead: cfg.n_head,
    f: cfg.mlp_ratio * cfg.d_model,
    ropeTheta: cfg.rope_theta,
    eps: cfg.norm_eps,
  };
}

export function transformerShapes(cfg: TransformerConfig): [string, number[]][] {
  return [["wte.weight", [cfg.vocab_size, cfg.d_model]], ...stackShapes(transformerStack(cfg))];
}

/** Norms, biases and learned start vectors are not decayed; matrices (embeddings included) are. */
export function transformerNoWeightDecay(name: string): boolean {
  return /(ln_\w+\.weight|\.bias|start_\w+)$/.test(name);
}
