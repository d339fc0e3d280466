/**
 * Scoring long sequences on the native engine: per-token nats of equal-length rows through a Transformer
 * engine's forward and head (lib/engine/transformer.ts, its attention tiled: the (L, L) scores are never
 * stored), so the byte Transformer and MegaByte are evaluated at any length the GPU's memory holds, where
 * TF.js materialises every (batch, heads, L, L) score (lib/eval/extrapolation.ts caps it at
 * maxAttentionLength). One engine per (rows, length) is kept while the lengths repeat, and rebuilt when they
 * change; `destroy` releases it.
 */
import { type LanguageModel, readParameters } from "../models/lm.ts";
import type { TransformerConfig } from "../models/transformer_config.ts";
import type { MegaByteConfig } from "../models/megabyte_config.ts";
import type { EngineBackendName } from "../engine/backend.ts";
import { TransformerEngine } from "../engine/transformer.ts";

/** Per-token nats of equal-length rows (each n+1 tokens -> n values, row-major), and its name. */
export interface RowScorer {
  readonly name: string;
  nats(rows: Int32Array[]): Promise<Float32Array>;
  destroy(): void;
}

/** The families the engine scores: full-sequence models whose every position is predicted. */
export const ENGINE_SCORED_KINDS = ["transformer", "transformer_subword", "megabyte"];

export class EngineScorer implements RowScorer {
  private engine?: TransformerEngine;

  private constructor(
    private readonly model: LanguageModel,
    private readonly params: Map<string, Float32Array>,
    private readonly backend: EngineBackendName,
    private readonly allowSoftwareGpu: boolean,
  ) {}

  /** A scorer of `model` (one of ENGINE_SCORED_KINDS) on `backend` (default webgpu). */
  static async create(
    model: LanguageModel,
    o: { backend?: EngineBackendName; allowSoftwareGpu?: boolean } = {},
  ): Promise<EngineScorer> {
    if (!ENGINE_SCORED_KINDS.includes(model.kind)) {
      throw new Error(
        `the engine scores ${
          ENGINE_SCORED_KINDS.join(", ")
        } (got ${model.kind}; Mamba reads long sequences as a recurrence)`,
      );
    }
    return new EngineScorer(model, await readParameters(model), o.backend ?? "webgpu", !!o.allowSoftwareGpu);
  }

  get name(): string {
    return `native engine (${this.engine?.backend.device ?? this.backend})`;
  }

  async nats(rows: Int32Array[]): Promise<Float32Array> {
    const b = rows.length, n = (rows[0]?.length ?? 0) - 1;
    if (n < 1 || rows.some((r) => r.length !== n + 1)) {
      throw new Error("EngineScorer: rows of equal length, at least 2 tokens each");
    }
    // MegaByte reads whole patches: inputs and targets padded with zeros to a multiple, never scored
    const m = this.model.lengthMultiple ?? 1;
    const padded = Math.ceil(n / m) * m;
    const engine = await this.engineFor(b, padded);
    const ids = new Int32Array(b * (padded + 1));
    rows.forEach((r, i) => ids.set(r, i * (padded + 1)));
    const losses = await engine.tokenLosses(ids); // (b, padded)
    const out = new Float32Array(b * n);
    for (let i = 0; i < b; i++) out.set(losses.subarray(i * padded, i * padded + n), i * n);
    return out;
  }

  private async engineFor(batch: number, length: number): Promise<TransformerEngine> {
    if (this.engine?.batch === batch && this.engine.length === length) return this.engine;
    this.destroy();
    this.engine = await TransformerEngine.create({
      config: this.model.config as unknown as TransformerConfig | MegaByteConfig,
      params: this.params,
      batch,
      length,
      backend: this.backend,
      allowSoftwareGpu: this.allowSoftwareGpu,
    });
    return this.engine;
  }

  destroy(): void {
    this.engine?.destroy();
    this.engine = undefined;
  }
}
