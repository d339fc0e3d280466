/**
 * Plain-JS twin of webgpu/conv.ts: Mamba's causal depthwise conv1d + bias + SiLU over channel-major
 * activations x (b, ch, l) (each channel's steps contiguous), weights w (ch, k), forward and backward.
 *   pre_t = bias + sum_j w_j x_{t-k+1+j} (zeros before the sequence), y_t = silu(pre_t)
 */
import { scratch } from "./scratch.ts";

export interface ConvParams {
  batch: number;
  ch: number;
  len: number;
  k: number;
  bias: boolean;
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

function pre(
  p: ConvParams,
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array | undefined,
  row: number,
  c: number,
  t: number,
) {
  let s = p.bias ? bias![c] : 0;
  for (let j = 0; j < p.k; j++) {
    const tt = t - p.k + 1 + j;
    if (tt >= 0) s = Math.fround(s + Math.fround(x[row + tt] * w[c * p.k + j]));
  }
  return s;
}

export function conv(
  p: ConvParams,
  b: { x: Float32Array; w: Float32Array; bias?: Float32Array; y: Float32Array },
): void {
  for (let bb = 0; bb < p.batch; bb++) {
    for (let c = 0; c < p.ch; c++) {
      const row = (bb * p.ch + c) * p.len;
      for (let t = 0; t < p.len; t++) {
        const v = pre(p, b.x, b.w, b.bias, row, c, t);
        b.y[row + t] = v * sigmoid(v);
      }
    }
  }
}

/**
 * Given dy: g_t = dy_t silu'(pre_t), dx_t = sum_j w_j g_{t+k-1-j}, dw_j = sum over (b, t) of
 * g_t x_{t-k+1+j}, dbias = sum of g. dw and dbias are overwritten.
 */
export function convBackward(
  p: ConvParams,
  b: {
    x: Float32Array;
    w: Float32Array;
    bias?: Float32Array;
    dy: Float32Array;
    dx: Float32Array;
    dw: Float32Array;
    dbias?: Float32Array;
  },
): void {
  const g = scratch("conv g", p.len), dw = scratch("conv dw", p.k);
  for (let c = 0; c < p.ch; c++) {
    dw.fill(0);
    let db = 0;
    for (let bb = 0; bb < p.batch; bb++) {
      const row = (bb * p.ch + c) * p.len;
      for (let t = 0; t < p.len; t++) {
        const v = pre(p, b.x, b.w, b.bias, row, c, t);
        const s = sigmoid(v);
        g[t] = b.dy[row + t] * s * (1 + v * (1 - s));
        db += g[t];
        for (let j = 0; j < p.k; j++) {
          const tt = t - p.k + 1 + j;
          if (tt >= 0) dw[j] += g[t] * b.x[row + tt];
        }
      }
      for (let t = 0; t < p.len; t++) {
        let s = 0;
        for (let j = 0; j < p.k; j++) {
          const tt = t + p.k - 1 - j;
          if (tt < p.len) s += b.w[c * p.k + j] * g[tt];
        }
        b.dx[row + t] = s;
      }
    }
    for (let j = 0; j < p.k; j++) b.dw[c * p.k + j] = dw[j];
    if (p.bias) b.dbias![c] = db;
  }
}
