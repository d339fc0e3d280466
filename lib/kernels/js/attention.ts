/**
 * Causal attention by absolute position, the plain-JS twins of ../webgpu/attention.ts (and the
 * reference the WGSL kernels are tested against, beside TF.js's lib/nn/attention.ts causalAttention).
 *
 * Query i of a (batch, head) sits at position qPos0 + i, key j at kPos0 + j; the query sees the key iff
 * kPos0 + j <= qPos0 + i and, with a window W > 0, kPos0 + j > qPos0 + i - W. Self-attention has qPos0 =
 * kPos0; PerceiverAR's cross-attention has queries at the end of a longer key set. Element c of head h of
 * position t of sequence b lives at buf[b batch + t stride + off + h hd + c] (batch defaults to L stride, L:
 * lq for q and o, lk for k and v), so q, k and v may be thirds of one packed (B, L, 3 d) product and o a
 * (B, L, d) buffer, and queries may be the last rows of longer sequences.
 *
 *   forward:   s_j = <q, k_j> / sqrt(hd);  o = sum_j softmax(s)_j v_j;  lse = log sum_j exp(s_j)
 *   backward:  D = <dO, o>;  p_j = exp(s_j - lse);  dv_j += p_j dO;  ds_j = p_j (<dO, v_j> - D);
 *              dq = sum_j ds_j k_j / sqrt(hd);  dk_j += ds_j q / sqrt(hd)
 * The forward keeps lse (batch, heads, lq), so the backward recomputes p without the scores being stored.
 */

import { scratch } from "./scratch.ts";

export interface AttentionParams {
  batch: number;
  heads: number;
  lq: number;
  lk: number;
  /** floats per head */
  hd: number;
  /** absolute positions of the first query and the first key */
  qPos0: number;
  kPos0: number;
  /** keys a query sees: positions in (qpos - window, qpos]; 0: every earlier position */
  window: number;
  /** floats between consecutive positions, and the offset of head 0, of q (dq), k (dk), v (dv), o (dO) */
  qStride: number;
  kStride: number;
  vStride: number;
  oStride: number;
  qOff: number;
  kOff: number;
  vOff: number;
  oOff: number;
  /**
   * Floats between sequences of q (dq), k (dk), v (dv), o (dO); default L stride (L: lq or lk): set when the
   * queries are the last lq of a longer sequence's rows (PerceiverAR's cross-attention)
   */
  qBatch?: number;
  kBatch?: number;
  vBatch?: number;
  oBatch?: number;
}

/** [first, end) of the keys query i sees (first < end for every query of a valid AttentionParams). */
export function visibleKeys(p: AttentionParams, i: number): [number, number] {
  const qpos = p.qPos0 + i;
  const first = Math.max(0, p.window > 0 ? qpos - p.window + 1 - p.kPos0 : 0);
  const end = Math.min(p.lk, qpos - p.kPos0 + 1);
  return [first, end];
}

/** Throws (naming the field) unless every query sees at least one key and the sizes are whole. */
export function checkAttention(p: AttentionParams): void {
  for (const f of ["batch", "heads", "lq", "lk", "hd"] as const) {
    if (!(Number.isInteger(p[f]) && p[f] >= 1)) throw new Error(`attention: ${f} must be a positive integer`);
  }
  if (!(Number.isInteger(p.window) && p.window >= 0)) throw new Error("attention: window must be >= 0");
  for (const i of [0, p.lq - 1]) {
    const [first, end] = visibleKeys(p, i);
    if (first >= end) {
      throw new Error(
        `attention: the query at position ${p.qPos0 + i} sees no key (keys at ${p.kPos0}..${
          p.kPos0 + p.lk - 1
        }, window ${p.window || "none"})`,
      );
    }
  }
}

/** Where head h of position t of sequence b starts in a buffer of that layout. */
const at =
  (p: AttentionParams, stride: number, off: number, batch: number) => (b: number, h: number, t: number) =>
    b * batch + t * stride + off + h * p.hd;
/** The four layouts' batch strides (floats between sequences). */
export function batchStrides(p: AttentionParams) {
  return {
    q: p.qBatch ?? p.lq * p.qStride,
    k: p.kBatch ?? p.lk * p.kStride,
    v: p.vBatch ?? p.lk * p.vStride,
    o: p.oBatch ?? p.lq * p.oStride,
  };
}

/** Where head h of position t of sequence b starts in each of q (and dq), k, v and o (and dO). */
function accessors(p: AttentionParams) {
  const bs = batchStrides(p);
  return {
    qa: at(p, p.qStride, p.qOff, bs.q),
    ka: at(p, p.kStride, p.kOff, bs.k),
    va: at(p, p.vStride, p.vOff, bs.v),
    oa: at(p, p.oStride, p.oOff, bs.o),
  };
}

export function attention(
  p: AttentionParams,
  b: { q: Float32Array; k: Float32Array; v: Float32Array; o: Float32Array; lse: Float32Array },
): void {
  checkAttention(p);
  const { hd } = p, scale = 1 / Math.sqrt(hd);
  const { qa, ka, va, oa } = accessors(p);
  const s = scratch("attention scores", p.lk), acc = scratch("attention acc", hd);
  for (let bb = 0; bb < p.batch; bb++) {
    for (let h = 0; h < p.heads; h++) {
      for (let i = 0; i < p.lq; i++) {
        const [first, end] = visibleKeys(p, i), q0 = qa(bb, h, i);
        let m = -Infinity;
        for (let j = first; j < end; j++) {
          const k0 = ka(bb, h, j);
          let dot = 0;
          for (let c = 0; c < hd; c++) dot += b.q[q0 + c] * b.k[k0 + c];
          s[j] = dot * scale;
          m = Math.max(m, s[j]);
        }
        let l = 0;
        acc.fill(0);
        for (let j = first; j < end; j++) {
          const w = Math.exp(s[j] - m), v0 = va(bb, h, j);
          l += w;
          for (let c = 0; c < hd; c++) acc[c] += w * b.v[v0 + c];
        }
        const o0 = oa(bb, h, i);
        for (let c = 0; c < hd; c++) b.o[o0 + c] = acc[c] / l;
        b.lse[(bb * p.heads + h) * p.lq + i] = m + Math.log(l);
      }
    }
  }
}

export function attentionBackward(
  p: AttentionParams,
  b: {
    q: Float32Array;
    k: Float32Array;
    v: Float32Array;
    o: Float32Array;
    lse: Float32Array;
    dO: Float32Array;
    dq: Float32Array;
    dk: Float32Array;
    dv: Float32Array;
  },
): void {
  checkAttention(p);
  const { hd } = p, scale = 1 / Math.sqrt(hd);
  const { qa, ka, va, oa } = accessors(p);
  const dk = scratch("attention dk", p.lk * hd),
    dv = scratch("attention dv", p.lk * hd),
    dq = scratch("attention dq", hd);
  for (let bb = 0; bb < p.batch; bb++) {
    for (let h = 0; h < p.heads; h++) {
      dk.fill(0);
      dv.fill(0);
      for (let i = 0; i < p.lq; i++) {
        const [first, end] = visibleKeys(p, i), q0 = qa(bb, h, i), o0 = oa(bb, h, i);
        const lse = b.lse[(bb * p.heads + h) * p.lq + i];
        let D = 0;
        for (let c = 0; c < hd; c++) D += b.dO[o0 + c] * b.o[o0 + c];
        dq.fill(0);
        for (let j = first; j < end; j++) {
          const k0 = ka(bb, h, j), v0 = va(bb, h, j);
          let s = 0, dp = 0;
          for (let c = 0; c < hd; c++) {
            s += b.q[q0 + c] * b.k[k0 + c];
            dp += b.dO[o0 + c] * b.v[v0 + c];
          }
          const pj = Math.exp(s * scale - lse), ds = pj * (dp - D);
          for (let c = 0; c < hd; c++) {
            dv[j * hd + c] += pj * b.dO[o0 + c];
            dk[j * hd + c] += ds * b.q[q0 + c];
            dq[c] += ds * b.k[k0 + c];
          }
        }
        for (let c = 0; c < hd; c++) b.dq[q0 + c] = dq[c] * scale;
      }
      for (let j = 0; j < p.lk; j++) {
        const k0 = ka(bb, h, j), v0 = va(bb, h, j);
        for (let c = 0; c < hd; c++) {
          b.dk[k0 + c] = dk[j * hd + c] * scale;
          b.dv[v0 + c] = dv[j * hd + c];
        }
      }
    }
  }
}

/**
 * One query per head against a KV cache, the query's position read on the device (decoding): keys 0 ..
 * ctl[indexAt] of the cache (rows of kvStride floats, k of head h at h hd, v at vOffset + h hd) are seen.
 */
export interface DecodeAttentionParams {
  heads: number;
  hd: number;
  /** rows the cache holds (the longest context) */
  maxLen: number;
  kvStride: number;
  vOffset: number;
  /** the query's position: ctl[indexAt] */
  indexAt: number;
  /** q of head h at qOffset + h hd (q inside a q | k | v row) */
  qOffset: number;
}

/** o (heads hd) = softmax over keys 0..pos of <q, k_j> / sqrt(hd), times v_j, per head. */
export function decodeAttention(
  p: DecodeAttentionParams,
  b: { q: Float32Array; kv: Float32Array; ctl: Int32Array; o: Float32Array },
): void {
  const len = b.ctl[p.indexAt] + 1, { hd } = p, scale = 1 / Math.sqrt(hd);
  if (!(len >= 1 && len <= p.maxLen)) {
    throw new Error(`decodeAttention: position ${len - 1} outside the cache of ${p.maxLen} rows`);
  }
  const s = scratch("decode attention scores", len);
  for (let h = 0; h < p.heads; h++) {
    const q0 = p.qOffset + h * hd;
    let m = -Infinity;
    for (let j = 0; j < len; j++) {
      const k0 = j * p.kvStride + h * hd;
      let dot = 0;
      for (let c = 0; c < hd; c++) dot += b.q[q0 + c] * b.kv[k0 + c];
      s[j] = dot * scale;
      m = Math.max(m, s[j]);
    }
    let l = 0;
    for (let j = 0; j < len; j++) l += s[j] = Math.exp(s[j] - m);
    for (let c = 0; c < hd; c++) {
      let acc = 0;
      for (let j = 0; j < len; j++) acc += s[j] * b.kv[j * p.kvStride + p.vOffset + h * hd + c];
      b.o[h * hd + c] = acc / l;
    }
  }
}
