/**
 * Scoring on the native engine: per-token nats of equal-length rows through a Transformer engine's forward
 * and head (lib/engine/transformer.ts, its attention tiled: the (L, L) scores are never stored). Two uses:
 * - a run's test score and validation curve (lib/runs/experiment.ts), on the engine that trained it: TF.js
 *   took 120-220 s of a GPU call to score the 879 KB books test split with a byte Transformer or
 *   PerceiverAR (data/results/runs.jsonl, eval.wall_s), the engine 9-34 s for code's 1 MB split;
 * - the extrapolation at lengths the GPU's memory holds, where TF.js materialises every (batch, heads, L,
 *   L) score (lib/eval/extrapolation.ts caps it at maxAttentionLength).
 * PerceiverAR predicts from its latents only (the last N positions of a pass), so a row is scored as its
 * TF.js model scores it (lib/models/perceiver_ar.ts, perceiverLogits): passes over nested prefixes ending
 * at n, n - N, ..., each scoring its last N positions. Engines are kept per (rows, length) (MAX_ENGINES),
 * so the repeating lengths of a split's windows build each engine once; `destroy` releases them all.
 */
import { type LanguageModel, readParameters } from "../models/lm.ts";
import type { TransformerConfig } from "../models/transformer_config.ts";
import type { MegaByteConfig } from "../models/megabyte_config.ts";
import type { PerceiverARConfig } from "../models/perceiver_ar.ts";
import type { EngineBackendName } from "../engine/backend.ts";
import { TransformerEngine } from "../engine/transformer.ts";

/** Per-token nats of equal-length rows (each n+1 tokens -> n values, row-major), and its name. */
export interface RowScorer {
  readonly name: string;
  nats(rows: Int32Array[]): Promise<Float32Array>;
  /** Frees what the scorer built for the shapes scored so far; a later call builds it again. */
  release(): void;
  destroy(): void;
}

/** The families the engine scores (the attention models; Mamba reads long sequences as a recurrence). */
export const ENGINE_SCORED_KINDS = ["transformer", "transformer_subword", "megabyte", "perceiver_ar"];
/**
 * Those the extrapolation scores on the engine: not PerceiverAR, whose row of k times the training length
 * takes k x length / N nested passes, each a length of its own and so an engine of its own.
 */
export const ENGINE_EXTRAPOLATED_KINDS = ["transformer", "transformer_subword", "megabyte"];

/**
 * Engines a scorer keeps, the least recently used going first. A split's windows need one length (the
 * window; PerceiverAR: ceil(window / N) of them) for each of at most three row counts (full batches, the
 * last partial batch, the short last window alone): 12 serves PerceiverAR's 4 passes at the large scale.
 * More passes than this rebuild engines on every batch (slow, not wrong). Each engine is a training engine
 * (gradients and AdamW moments included): PerceiverAR's at batch 4 x 1,024 holds about 270 MB.
 */
const MAX_ENGINES = 12;

export class EngineScorer implements RowScorer {
  /** Engines by `${rows}x${length}`, the least recently used first. */
  private engines = new Map<string, TransformerEngine>();
  /** Engines built so far (each is a device's worth of buffers and pipelines: tests count them). */
  enginesBuilt = 0;
  /** The most engines alive at once (tests count them: a length's engines go before the next length's). */
  peakEngines = 0;

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

  /** The device the engines run on, once one was built (it stays known after `release`). */
  private device?: string;

  get name(): string {
    return `native engine (${this.backend}: ${this.device ?? "not started"})`;
  }

  async nats(rows: Int32Array[]): Promise<Float32Array> {
    const b = rows.length, n = (rows[0]?.length ?? 0) - 1;
    if (n < 1 || rows.some((r) => r.length !== n + 1)) {
      throw new Error("EngineScorer: rows of equal length, at least 2 tokens each");
    }
    const out = new Float32Array(b * n);
    if (this.model.kind === "perceiver_ar") {
      // passes over the prefixes ending at n, n - N, ...: each scores the last min(N, end) positions
      const N = (this.model.config as unknown as PerceiverARConfig).num_latents;
      for (let end = n; end > 0; end -= N) {
        const m = Math.min(N, end);
        const losses = await this.losses(rows.map((r) => r.subarray(0, end + 1)), end); // (b, m)
        for (let i = 0; i < b; i++) out.set(losses.subarray(i * m, (i + 1) * m), i * n + end - m);
      }
      return out;
    }
    // MegaByte reads whole patches: inputs and targets padded with zeros to a multiple, never scored
    const m = this.model.lengthMultiple ?? 1;
    const padded = Math.ceil(n / m) * m;
    const losses = await this.losses(rows, padded); // (b, padded)
    for (let i = 0; i < b; i++) out.set(losses.subarray(i * padded, i * padded + n), i * n);
    return out;
  }

  /** The engine's per-token losses of rows (each at most length + 1 tokens, zero-padded to it). */
  private async losses(rows: Int32Array[], length: number): Promise<Float32Array> {
    const engine = await this.engineFor(rows.length, length);
    const ids = new Int32Array(rows.length * (length + 1));
    rows.forEach((r, i) => ids.set(r, i * (length + 1)));
    return await engine.tokenLosses(ids);
  }

  private async engineFor(batch: number, length: number): Promise<TransformerEngine> {
    const key = `${batch}x${length}`;
    const kept = this.engines.get(key);
    if (kept) {
      this.engines.delete(key); // to the back: the most recently used
      this.engines.set(key, kept);
      return kept;
    }
    if (this.engines.size >= MAX_ENGINES) {
      const [oldest, engine] = this.engines.entries().next().value!;
      engine.destroy();
      this.engines.delete(oldest);
    }
    const perceiver = this.model.kind === "perceiver_ar"
      ? (this.model.config as unknown as PerceiverARConfig).num_latents
      : undefined;
    const engine = await TransformerEngine.create({
      config: this.model.config as unknown as TransformerConfig | MegaByteConfig,
      params: this.params,
      batch,
      length,
      backend: this.backend,
      allowSoftwareGpu: this.allowSoftwareGpu,
      ...(perceiver ? { latents: perceiver } : {}),
    });
    this.engines.set(key, engine);
    this.device = engine.backend.device;
    this.enginesBuilt++;
    this.peakEngines = Math.max(this.peakEngines, this.engines.size);
    return engine;
  }

  /**
   * Destroys the engines kept so far (the next call builds what it needs). The extrapolation calls it after
   * each length, whose whole-sequence engines no other length uses: kept, a context-8192 Transformer's
   * engines for 1x-64x (65,536 to 524,288 tokens each, gradients and moments included) would sum to about
   * 55 GB; and an engine left invalid by a failed allocation is not reused. The sliding windows' engine has
   * one shape at every length and is built again each time (about a second, against minutes of scoring).
   */
  release(): void {
    for (const engine of this.engines.values()) engine.destroy();
    this.engines.clear();
  }

  destroy(): void {
    this.release();
  }
}
