/**
 * AdamW (decoupled weight decay, Loshchilov & Hutter) over named variables, with a per-parameter
 * decay switch (Mamba exempts A_log, D, norms and biases) and global-norm gradient clipping.
 * The moment estimates are plain tf variables so they can be checkpointed.
 */
import * as tf from "@tensorflow/tfjs";

export interface AdamWConfig {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Clip the global gradient norm to this value (0 = off). */
  clipNorm: number;
}

export const ADAMW_DEFAULTS: AdamWConfig = {
  lr: 1e-3,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  weightDecay: 0.1,
  clipNorm: 1,
};

export class AdamW {
  readonly m = new Map<string, tf.Variable>();
  readonly v = new Map<string, tf.Variable>();
  step = 0;

  constructor(
    readonly params: Map<string, tf.Variable>,
    readonly config: AdamWConfig,
    readonly decays: (name: string) => boolean,
  ) {
    for (const [name, p] of params) {
      this.m.set(name, tf.variable(tf.zerosLike(p), false));
      this.v.set(name, tf.variable(tf.zerosLike(p), false));
    }
  }

  /**
   * Applies one update with learning rate `lr`; returns the global gradient norm before clipping.
   * With `requireFinite`, a NaN / infinite norm throws a RangeError and changes nothing.
   */
  async apply(
    grads: Map<string, tf.Tensor>,
    lr: number,
    opts: { requireFinite?: boolean } = {},
  ): Promise<number> {
    const { beta1, beta2, eps, weightDecay, clipNorm } = this.config;
    // sum of squares one gradient at a time: addN over every gradient would bind one buffer per
    // parameter, beyond WebGPU's per-shader limit for models with many tensors
    const normT = tf.tidy(() => {
      let sq: tf.Tensor = tf.scalar(0);
      for (const g of grads.values()) sq = tf.add(sq, tf.sum(tf.square(g)));
      return tf.sqrt(sq);
    });
    const norm = (await normT.data())[0];
    normT.dispose();
    if (opts.requireFinite && !Number.isFinite(norm)) throw new RangeError(`gradient norm is ${norm}`);
    const scale = clipNorm > 0 && norm > clipNorm ? clipNorm / norm : 1;
    this.step++;
    const bc1 = 1 - beta1 ** this.step, bc2 = 1 - beta2 ** this.step;
    tf.tidy(() => {
      for (const [name, p] of this.params) {
        const g = tf.mul(grads.get(name)!, scale);
        const m = this.m.get(name)!, v = this.v.get(name)!;
        m.assign(tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1)));
        v.assign(tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2)));
        const update = tf.div(tf.div(m, bc1), tf.add(tf.sqrt(tf.div(v, bc2)), eps));
        const decayed = this.decays(name) ? tf.mul(p, 1 - lr * weightDecay) : p; // decoupled decay
        p.assign(tf.sub(decayed, tf.mul(update, lr)));
      }
    });
    return norm;
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
  }
}

/** Where the cosine ends, as a fraction of the peak learning rate (the trainer's default). */
export const MIN_LR_RATIO = 0.1;

/** Linear warm-up to `peak`, then cosine decay to `peak * minRatio` at `total` steps. */
export function warmupCosine(
  step: number,
  total: number,
  peak: number,
  warmup: number,
  minRatio = MIN_LR_RATIO,
): number {
  if (step < warmup) return peak * (step + 1) / warmup;
  const progress = Math.min(1, (step - warmup) / Math.max(1, total - warmup));
  return peak * (minRatio + (1 - minRatio) * 0.5 * (1 + Math.cos(Math.PI * progress)));
}
