/** Plain-JS twins of webgpu/elementwise.ts: small maps over float ranges. */

export interface RangeParams {
  count: number;
}

/** y = -exp(x) (Mamba's A from A_log). */
export function negExp(p: RangeParams, b: { x: Float32Array; y: Float32Array }): void {
  for (let i = 0; i < p.count; i++) b.y[i] = -Math.exp(b.x[i]);
}

/** x *= y, in place (dA_log = dA A, since dA/dA_log = -exp(A_log) = A). */
export function mulInPlace(p: RangeParams, b: { x: Float32Array; y: Float32Array }): void {
  for (let i = 0; i < p.count; i++) b.x[i] *= b.y[i];
}

export interface CopyParams {
  count: number;
  srcOffset: number;
  dstOffset: number;
  /** add into dst instead of overwriting it */
  accumulate?: boolean;
}

/** dst[dstOffset + i] (+)= src[srcOffset + i] */
export function copy(p: CopyParams, b: { src: Float32Array; dst: Float32Array }): void {
  if (!p.accumulate) {
    b.dst.set(b.src.subarray(p.srcOffset, p.srcOffset + p.count), p.dstOffset);
    return;
  }
  for (let i = 0; i < p.count; i++) b.dst[p.dstOffset + i] += b.src[p.srcOffset + i];
}

export interface FillParams {
  count: number;
  value: number;
}

/** x[i] = value for i < count */
export function fill(p: FillParams, b: { x: Float32Array }): void {
  b.x.fill(p.value, 0, p.count);
}
