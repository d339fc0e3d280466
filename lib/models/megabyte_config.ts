/**
 * MegaByte's config type and parameter names and shapes, apart from the TF.js model (megabyte.ts) so that
 * the native engine (lib/engine/transformer.ts) can read them without it.
 */
import { stackShapes, type StackSpec } from "./transformer_config.ts";

export interface MegaByteConfig {
  vocab_size: 256;
  patch_size: number;
  d_global: number;
  n_layer_global: number;
  n_head_global: number;
  d_local: number;
  n_layer_local: number;
  n_head_local: number;
  /** Width of each byte's embedding in the patch embedder (P of them are concatenated). */
  d_byte_global: number;
  mlp_ratio: number;
  rope_theta: number;
  norm_eps: number;
}

/** The global and local stacks of a config. */
export function stacks(cfg: MegaByteConfig): { global: StackSpec; local: StackSpec } {
  const common = { ropeTheta: cfg.rope_theta, eps: cfg.norm_eps };
  return {
    global: {
      prefix: "global.",
      d: cfg.d_global,
      nLayer: cfg.n_layer_global,
      nHead: cfg.n_head_global,
      f: cfg.mlp_ratio * cfg.d_global,
      ...common,
    },
    local: {
      prefix: "local.",
      d: cfg.d_local,
      nLayer: cfg.n_layer_local,
      nHead: cfg.n_head_local,
      f: cfg.mlp_ratio * cfg.d_local,
      ...common,
    },
  };
}

export function megabyteShapes(cfg: MegaByteConfig): [string, number[]][] {
  const { global, local } = stacks(cfg);
  const P = cfg.patch_size;
  return [
    ["global.wte.weight", [256, cfg.d_byte_global]],
    ["global.patch_proj.weight", [cfg.d_global, P * cfg.d_byte_global]],
    ["global.start_patch", [cfg.d_global]],
    ...stackShapes(global),
    ["global_to_local.weight", [P * cfg.d_local, cfg.d_global]],
    ["local.wte.weight", [256, cfg.d_local]],
    ...stackShapes(local),
  ];
}
