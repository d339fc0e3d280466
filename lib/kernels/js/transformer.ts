/**
 * The Transformer family's other kernels, plain-JS twins of ../webgpu/transformer.ts: LayerNorm (with its
 * backward), rotary position embeddings, and GELU (tanh form, as lib/nn/layers.ts). Rows are (rows, d)
 * row-major; rotary embedding works in place on heads inside packed rows, as attention reads them.
 */
import { scratch } from "./scratch.ts";

export interface LayerNormParams {
  rows: number;
  d: number;
  eps: number;
}

/** y = (x - mean) rstd w + b per row, rstd = 1 / sqrt(var + eps) (biased variance); mean, rstd kept. */
export function layerNorm(
  p: LayerNormParams,
  b: {
    x: Float32Array;
    w: Float32Array;
    bias: Float32Array;
    y: Float32Array;
    mean: Float32Array;
    rstd: Float32Array;
  },
): void {
  for (let i = 0; i < p.rows; i++) {
    const o = i * p.d;
    let s = 0;
    for (let c = 0; c < p.d; c++) s += b.x[o + c];
    const mean = s / p.d;
    let v = 0;
    for (let c = 0; c < p.d; c++) v += (b.x[o + c] - mean) ** 2;
    const r = 1 / Math.sqrt(v / p.d + p.eps);
    b.mean[i] = mean;
    b.rstd[i] = r;
    for (let c = 0; c < p.d; c++) b.y[o + c] = (b.x[o + c] - mean) * r * b.w[c] + b.bias[c];
  }
}

export interface LayerNormGradParams extends LayerNormParams {
  /** dx is added to what dx holds (the residual stream's gradient) instead of overwriting it */
  accumulate: boolean;
}

/**
 * Backward of layerNorm given dy: with xh = (x - mean) rstd and g = dy w,
 *   dx = rstd (g - mean(g) - xh mean(g xh)),  dw = sum over rows of dy xh,  db = sum over rows of dy.
 */
export function layerNormBackward(
  p: LayerNormGradParams,
  b: {
    x: Float32Array;
    w: Float32Array;
    mean: Float32Array;
    rstd: Float32Array;
    dy: Float32Array;
    dx: Float32Array;
    dw: Float32Array;
    db: Float32Array;
  },
): void {
  const dw = scratch("layerNorm dw", p.d).fill(0), db = scratch("layerNorm db", p.d).fill(0);
  for (let i = 0; i < p.rows; i++) {
    const o = i * p.d, m = b.mean[i], r = b.rstd[i];
    let sg = 0, sgx = 0;
    for (let c = 0; c < p.d; c++) {
      const g = b.dy[o + c] * b.w[c], xh = (b.x[o + c] - m) * r;
      sg += g;
      sgx += g * xh;
    }
    for (let c = 0; c < p.d; c++) {
      const xh = (b.x[o + c] - m) * r;
      const v = r * (b.dy[o + c] * b.w[c] - sg / p.d - xh * sgx / p.d);
      b.dx[o + c] = p.accumulate ? b.dx[o + c] + v : v;
      dw[c] += b.dy[o + c] * xh;
      db[c] += b.dy[o + c];
    }
  }
  for (let c = 0; c < p.d; c++) {
    b.dw[c] = dw[c];
    b.db[c] = db[c];
  }
}

export interface RopeParams {
  batch: number;
  len: number;
  heads: number;
  /** floats per head (even): pair i is (x[i], x[i + hd/2]) ("rotate half") */
  hd: number;
  /** floats between positions, and the offset of head 0 (q or k inside packed q | k | v rows) */
  stride: number;
  offset: number;
  /** the backward: rotate by minus the angle (the transpose), applied to the gradient in place */
  inverse: boolean;
}

/**
 * The rotation tables (len, hd/2) of positions pos0 .. pos0 + len - 1: angle pos theta^(-2i/hd), computed
 * in float64 and rounded once (TF.js's rope builds the same constants); a float32 angle at 64K positions
 * would be off by ~4e-3 rad.
 */
export function ropeTables(
  len: number,
  hd: number,
  theta: number,
  pos0 = 0,
): { cos: Float32Array; sin: Float32Array } {
  const half = hd / 2, cos = new Float32Array(len * half), sin = new Float32Array(len * half);
  for (let t = 0; t < len; t++) {
    for (let i = 0; i < half; i++) {
      const angle = (pos0 + t) * theta ** (-2 * i / hd);
      cos[t * half + i] = Math.cos(angle);
      sin[t * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

/** In place: (x1, x2) <- (x1 cos - x2 sin, x1 sin + x2 cos) at each position (inverse: sin negated). */
export function rope(p: RopeParams, b: { x: Float32Array; cos: Float32Array; sin: Float32Array }): void {
  const half = p.hd / 2, sign = p.inverse ? -1 : 1;
  for (let bb = 0; bb < p.batch; bb++) {
    for (let t = 0; t < p.len; t++) {
      for (let h = 0; h < p.heads; h++) {
        const o = (bb * p.len + t) * p.stride + p.offset + h * p.hd;
        for (let i = 0; i < half; i++) {
          const c = b.cos[t * half + i], s = sign * b.sin[t * half + i];
          const x1 = b.x[o + i], x2 = b.x[o + i + half];
          b.x[o + i] = x1 * c - x2 * s;
          b.x[o + i + half] = x1 * s + x2 * c;
        }
      }
    }
  }
}

export interface GeluParams {
  count: number;
}

const K0 = Math.sqrt(2 / Math.PI), K1 = 0.044715;

/** y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
export function gelu(p: GeluParams, b: { x: Float32Array; y: Float32Array }): void {
  for (let i = 0; i < p.count; i++) {
    const x = b.x[i];
    b.y[i] = 0.5 * x * (1 + Math.tanh(K0 * (x + K1 * x * x * x)));
  }
}

/** In place on the gradient d: d <- d gelu'(x). */
export function geluBackward(p: GeluParams, b: { x: Float32Array; d: Float32Array }): void {
  for (let i = 0; i < p.count; i++) {
    const x = b.x[i], t = Math.tanh(K0 * (x + K1 * x * x * x));
    b.d[i] *= 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * K0 * (1 + 3 * K1 * x * x);
  }
}
