/**
 * Plain-JS twins of webgpu/optim.ts: the optimizer's step over flat parameter arenas, as the project's
 * TF.js AdamW (lib/train/adamw.ts) computes it, without any read-back per step:
 *   1. sumSquares: partial sums of g^2 over slices of the gradient arena;
 *   2. finalizeStep (one workgroup): the mean loss, the global gradient norm, the clip scale, and a sticky
 *      `halted` flag set when either is not finite (no update happens then, nor in any later step, so
 *      the parameters stay those before the bad step, as the trainer keeps its last good state); the
 *      step's (loss, norm, halted) go into slot `hyper[SLOT]` of a history the host reads back every N
 *      steps;
 *   3. adamw: decoupled weight decay (only below `decayEnd`: the arena holds the decayed parameters
 *      first), bias-corrected moments.
 */

/** The per-step values the host writes (float32): learning rate, bias corrections, decay factor, slot. */
export const HYPER = { LR: 0, BC1: 1, BC2: 2, DECAY: 3, SLOT: 4, SIZE: 8 } as const;
/** The optimizer's state on the device: halted (0 / 1), clip scale, last norm, last loss. */
export const STATE = { HALTED: 0, SCALE: 1, NORM: 2, LOSS: 3, SIZE: 4 } as const;
/** Floats per history slot: loss, gradient norm (before clipping), halted. */
export const HISTORY_STRIDE = 4;

export interface SumSquaresParams {
  count: number;
  /** partials written: slice p = [p size, (p + 1) size) with size = ceil(count / parts) */
  parts: number;
  partOffset: number;
}

export function sliceSize(p: SumSquaresParams): number {
  return Math.ceil(p.count / p.parts);
}

export function sumSquares(p: SumSquaresParams, b: { x: Float32Array; partials: Float32Array }): void {
  const size = sliceSize(p);
  for (let part = 0; part < p.parts; part++) {
    let s = 0;
    for (let i = part * size; i < Math.min(p.count, (part + 1) * size); i++) s += b.x[i] * b.x[i];
    b.partials[p.partOffset + part] = s;
  }
}

export interface FinalizeParams {
  /** partial sums of squares to add up */
  parts: number;
  /** per-token losses to average */
  rows: number;
  /** clip the global norm to this (0: off) */
  clip: number;
}

const finite = (x: number) => Number.isFinite(Math.fround(x));

export function finalizeStep(
  p: FinalizeParams,
  b: {
    partials: Float32Array;
    loss: Float32Array;
    hyper: Float32Array;
    state: Float32Array;
    history: Float32Array;
  },
): void {
  let sq = 0, loss = 0;
  for (let i = 0; i < p.parts; i++) sq += b.partials[i];
  for (let i = 0; i < p.rows; i++) loss += b.loss[i];
  loss /= p.rows;
  const norm = Math.sqrt(sq);
  const halted = b.state[STATE.HALTED] !== 0 || !finite(norm) || !finite(loss);
  b.state[STATE.HALTED] = halted ? 1 : 0;
  b.state[STATE.SCALE] = p.clip > 0 && norm > p.clip ? p.clip / norm : 1;
  b.state[STATE.NORM] = norm;
  b.state[STATE.LOSS] = loss;
  const o = b.hyper[HYPER.SLOT] * HISTORY_STRIDE;
  b.history[o] = loss;
  b.history[o + 1] = norm;
  b.history[o + 2] = halted ? 1 : 0;
}

export interface AdamWParams {
  count: number;
  /** parameters [0, decayEnd) get weight decay, the rest none */
  decayEnd: number;
  beta1: number;
  beta2: number;
  eps: number;
}

/**
 * g = grad scale; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
 * p = p (1 - lr wd) [decayed only] - lr (m / bc1) / (sqrt(v / bc2) + eps). Nothing when halted.
 */
export function adamw(
  p: AdamWParams,
  b: {
    param: Float32Array;
    grad: Float32Array;
    m: Float32Array;
    v: Float32Array;
    hyper: Float32Array;
    state: Float32Array;
  },
): void {
  if (b.state[STATE.HALTED] !== 0) return;
  const f = Math.fround;
  const scale = b.state[STATE.SCALE], lr = b.hyper[HYPER.LR];
  const bc1 = b.hyper[HYPER.BC1], bc2 = b.hyper[HYPER.BC2], decay = b.hyper[HYPER.DECAY];
  const c1 = f(1 - p.beta1), c2 = f(1 - p.beta2);
  for (let i = 0; i < p.count; i++) {
    const g = f(b.grad[i] * scale);
    const m = f(f(b.m[i] * p.beta1) + f(g * c1));
    const v = f(f(b.v[i] * p.beta2) + f(f(g * g) * c2));
    b.m[i] = m;
    b.v[i] = v;
    const update = f(f(m / bc1) / f(f(Math.sqrt(f(v / bc2))) + p.eps));
    const kept = i < p.decayEnd ? f(b.param[i] * decay) : b.param[i];
    b.param[i] = f(kept - f(update * lr));
  }
}
