/** Human-readable descriptions of a Mamba model: the tensor shapes through one block, parameter counts. */
import type { MambaConfig } from "./mamba_config.ts";
import { dims, parameterShapes } from "./mamba.ts";

export interface ShapeRow {
  step: string;
  tensor: string;
  shape: string;
  elements: number;
}

/** The shape of every intermediate of one Mamba block for a (batch, length) input (PAPER.md steps 1-6). */
export function mixerShapeTable(cfg: MambaConfig, batch: number, length: number): ShapeRow[] {
  const { d, e, n, r, k } = dims(cfg);
  const [b, l] = [batch, length];
  const row = (step: string, tensor: string, shape: number[]): ShapeRow => ({
    step,
    tensor,
    shape: `(${shape.join(", ")})`,
    elements: shape.reduce((x, y) => x * y, 1),
  });
  return [
    row("input", "hidden (after RMSNorm)", [b, l, d]),
    row("1 in_proj", "x, z", [b, l, e]),
    row("2 conv1d + silu", `x (kernel ${k}, causal)`, [b, l, e]),
    row("3 x_proj", "dt_low / B / C", [b, l, r + 2 * n]),
    row("3 split", "B, C", [b, l, n]),
    row("4 dt_proj + softplus", "delta", [b, l, e]),
    row("5 selective scan", "state h_t (never stored by fused kernels)", [b, l, e, n]),
    row("5 selective scan", "y = (<h, C> + D x) * silu(z)", [b, l, e]),
    row("6 out_proj", "output (added to the residual)", [b, l, d]),
  ];
}

/** Parameter counts split by component, for one config. */
export function parameterBreakdown(cfg: MambaConfig): Record<string, number> {
  const out: Record<string, number> = {};
  let total = 0;
  for (const [name, shape] of parameterShapes(cfg)) {
    const part = name.replace(/^backbone\.layers\.\d+\./, "layers.*.").replace(/\.weight$|\.bias$/, "");
    const size = shape.reduce((a, b) => a * b, 1);
    out[part] = (out[part] ?? 0) + size;
    total += size;
  }
  out.total = total;
  return out;
}
