/**
 * A small training loop for byte models: random windows, AdamW with warm-up + cosine, gradient clipping,
 * a progress line. (Checkpoint/resume and compute budgets arrive with the training issue.)
 */
import * as tf from "@tensorflow/tfjs";
import { ByteBatcher } from "../data/bytes.ts";
import { type MambaLM, nextByteLoss, noWeightDecay } from "../models/mamba.ts";
import { AdamW, ADAMW_DEFAULTS, type AdamWConfig, warmupCosine } from "./adamw.ts";

export interface TrainConfig {
  steps: number;
  batch: number;
  length: number;
  lr: number;
  warmup: number;
  seed: number;
  optimizer?: Partial<AdamWConfig>;
  /** Print a progress line every this many steps (0 = silent). */
  logEvery?: number;
  /** Called after every step (e.g. to watch tf.memory() in tests). */
  onStep?: (entry: TrainLogEntry) => void;
}

export interface TrainLogEntry {
  step: number;
  loss: number;
  bits_per_byte: number;
  lr: number;
  grad_norm: number;
  bytes_per_s: number;
}

export interface TrainResult {
  log: TrainLogEntry[];
  wall_s: number;
  bytes_seen: number;
}

/** Trains `model` in place on `data` (the training split as bytes). */
export async function trainBytes(model: MambaLM, data: Uint8Array, cfg: TrainConfig): Promise<TrainResult> {
  const batcher = new ByteBatcher(data, cfg.batch, cfg.length, cfg.seed);
  const opt = new AdamW(model.params, { ...ADAMW_DEFAULTS, lr: cfg.lr, ...cfg.optimizer }, (n) => !noWeightDecay(n));
  const names = [...model.params.keys()];
  const vars = names.map((n) => model.params.get(n)!);
  const log: TrainLogEntry[] = [];
  const t0 = performance.now();
  let bytesSeen = 0;
  try {
    for (let s = 0; s < cfg.steps; s++) {
      const lr = warmupCosine(s, cfg.steps, cfg.lr, cfg.warmup);
      const ids = tf.tensor(batcher.next(), [cfg.batch, cfg.length + 1], "int32");
      const { value, grads } = tf.variableGrads(() => nextByteLoss(model, ids) as tf.Scalar, vars);
      const byName = new Map(names.map((n, i) => [n, grads[vars[i].name]]));
      const gradNorm = await opt.apply(byName, lr);
      const loss = (await value.data())[0];
      tf.dispose([ids, value, ...Object.values(grads)]);
      if (!Number.isFinite(loss)) throw new Error(`training diverged: loss ${loss} at step ${s}`);
      bytesSeen += cfg.batch * cfg.length;
      const elapsed = (performance.now() - t0) / 1000;
      const entry = { step: s + 1, loss, bits_per_byte: loss / Math.LN2, lr, grad_norm: gradNorm, bytes_per_s: bytesSeen / elapsed };
      log.push(entry);
      cfg.onStep?.(entry);
      if (cfg.logEvery && ((s + 1) % cfg.logEvery === 0 || s + 1 === cfg.steps)) {
        const eta = elapsed / (s + 1) * (cfg.steps - s - 1);
        console.error(
          `step ${String(s + 1).padStart(5)}/${cfg.steps}  loss ${loss.toFixed(4)}  bpb ${entry.bits_per_byte.toFixed(3)}` +
            `  lr ${lr.toExponential(2)}  ${Math.round(entry.bytes_per_s)} bytes/s  ETA ${eta.toFixed(0)} s`,
        );
      }
    }
  } finally {
    opt.dispose();
  }
  return { log, wall_s: (performance.now() - t0) / 1000, bytes_seen: bytesSeen };
}
