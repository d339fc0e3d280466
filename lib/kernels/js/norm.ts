/**
 * Plain-JS twins of webgpu/norm.ts: the embedding gather and its gradient (a scatter-add made
 * deterministic by sorting token positions by id on the host), and the residual add fused with RMSNorm,
 * forward and backward. Shapes: rows = tokens (b l), d the width, V the table's rows.
 */
import { scratch } from "./scratch.ts";

/** ids (b, stride) int32 (a row holds len inputs, then possibly the targets) -> out (b len, d). */
export interface EmbeddingParams {
  batch: number;
  len: number;
  /** ids per row of `ids` (len + 1 when the row also holds the next-token targets) */
  stride: number;
  d: number;
  V: number;
}

/** out[(b len + t), :] = table[ids[b stride + t], :] */
export function embedding(
  p: EmbeddingParams,
  b: { ids: Int32Array; table: Float32Array; out: Float32Array },
): void {
  for (let bb = 0; bb < p.batch; bb++) {
    for (let t = 0; t < p.len; t++) {
      const v = b.ids[bb * p.stride + t];
      b.out.set(b.table.subarray(v * p.d, v * p.d + p.d), (bb * p.len + t) * p.d);
    }
  }
}

/**
 * The embedding inputs' token rows sorted by id (stable: a row's position order within an id), for the
 * deterministic scatter-add: order (b len) holds row indices, rowStart (V + 1) where each id's run begins.
 * Also checks every id (inputs and targets) is in [0, vocab). Host work, O(b stride + V), no allocation.
 */
export function sortTokensById(
  ids: Int32Array,
  p: EmbeddingParams,
  vocab: number,
  order: Int32Array,
  rowStart: Int32Array,
): void {
  if (ids.length !== p.batch * p.stride) {
    throw new RangeError(
      `ids: expected ${p.batch} x ${p.stride} = ${p.batch * p.stride} values, got ${ids.length}`,
    );
  }
  rowStart.fill(0);
  for (let i = 0; i < ids.length; i++) {
    const v = ids[i];
    if (!(v >= 0 && v < vocab)) {
      throw new RangeError(`ids[${i}] = ${v} is outside the vocabulary [0, ${vocab})`);
    }
  }
  for (let bb = 0; bb < p.batch; bb++) {
    for (let t = 0; t < p.len; t++) rowStart[ids[bb * p.stride + t] + 1]++;
  }
  for (let v = 0; v < p.V; v++) rowStart[v + 1] += rowStart[v];
  // fill: rowStart[v] serves as the cursor, then is restored by one shift
  for (let bb = 0; bb < p.batch; bb++) {
    for (let t = 0; t < p.len; t++) order[rowStart[ids[bb * p.stride + t]]++] = bb * p.len + t;
  }
  for (let v = p.V; v > 0; v--) rowStart[v] = rowStart[v - 1];
  rowStart[0] = 0;
}

export interface EmbeddingGradParams {
  tokens: number;
  d: number;
  V: number;
  /** add into dTable (a tied head already wrote its gradient there) instead of overwriting it */
  accumulate: boolean;
}

/** dTable[v, :] (+)= sum over the rows j with id v (in `order`'s order) of dOut[j, :] */
export function embeddingBackward(
  p: EmbeddingGradParams,
  b: { order: Int32Array; rowStart: Int32Array; dOut: Float32Array; dTable: Float32Array },
): void {
  for (let v = 0; v < p.V; v++) {
    for (let c = 0; c < p.d; c++) {
      let s = 0;
      for (let j = b.rowStart[v]; j < b.rowStart[v + 1]; j++) s += b.dOut[b.order[j] * p.d + c];
      const o = v * p.d + c;
      b.dTable[o] = p.accumulate ? b.dTable[o] + s : s;
    }
  }
}

export interface NormParams {
  rows: number;
  d: number;
  eps: number;
  /** res = x + delta first (the residual add), and normalise res; else normalise x */
  add: boolean;
}

/**
 * [res = x + delta;] y = res rstd w, rstd = 1 / sqrt(mean(res^2) + eps) per row (TF.js's rmsNorm:
 * (x rsqrt(mean + eps)) w). rstd (rows) is kept for the backward.
 */
export function addRmsNorm(
  p: NormParams,
  b: {
    x: Float32Array;
    delta?: Float32Array;
    res?: Float32Array;
    w: Float32Array;
    y: Float32Array;
    rstd: Float32Array;
  },
): void {
  const src = p.add ? b.res! : b.x;
  for (let i = 0; i < p.rows; i++) {
    const o = i * p.d;
    let sq = 0;
    for (let c = 0; c < p.d; c++) {
      const v = p.add ? (b.res![o + c] = b.x[o + c] + b.delta![o + c]) : b.x[o + c];
      sq += v * v;
    }
    const r = Math.fround(1 / Math.sqrt(Math.fround(sq / p.d) + p.eps));
    b.rstd[i] = r;
    for (let c = 0; c < p.d; c++) b.y[o + c] = Math.fround(src[o + c] * r) * b.w[c];
  }
}

export interface NormGradParams {
  rows: number;
  d: number;
  /** dx is added to what `dx` holds (the residual stream's gradient) instead of overwriting it */
  accumulate: boolean;
}

/**
 * Backward of y = x rstd w given dy: with xh = x rstd and g = dy w,
 * dx = rstd (g - xh mean(g xh)) (added into dx with `accumulate`), dw = sum over rows of dy xh.
 */
export function rmsNormBackward(
  p: NormGradParams,
  b: {
    x: Float32Array;
    w: Float32Array;
    rstd: Float32Array;
    dy: Float32Array;
    dx: Float32Array;
    dw: Float32Array;
  },
): void {
  const dw = scratch("norm dw", p.d).fill(0);
  for (let i = 0; i < p.rows; i++) {
    const o = i * p.d, r = b.rstd[i];
    let dot = 0;
    for (let c = 0; c < p.d; c++) dot += b.dy[o + c] * b.w[c] * b.x[o + c] * r;
    const mean = dot / p.d;
    for (let c = 0; c < p.d; c++) {
      const xh = b.x[o + c] * r;
      const v = r * (b.dy[o + c] * b.w[c] - xh * mean);
      b.dx[o + c] = p.accumulate ? b.dx[o + c] + v : v;
      dw[c] += b.dy[o + c] * xh;
    }
  }
  for (let c = 0; c < p.d; c++) b.dw[c] = dw[c];
}
