/**
 * Attention for the Transformer family: rotary position embeddings and causal attention by absolute
 * position (optionally within a sliding window), chunked over queries so the score matrix of a long input
 * is never held at once.
 */
import * as tf from "@tensorflow/tfjs";
import { fastMatMul } from "../kernels/mod.ts";

/**
 * Rotary embedding of x (b, h, l, k) at absolute positions pos0 .. pos0+l-1. Pair i of the "rotate half"
 * layout is (x[i], x[i + k/2]), rotated by angle pos * theta^(-2i/k). The cos/sin tables are constants
 * built on the host (no gradient needed).
 */
export function rope(x: tf.Tensor, pos0: number, theta: number): tf.Tensor {
  const [, , l, k] = x.shape;
  const half = k / 2;
  const cos = new Float32Array(l * half), sin = new Float32Array(l * half);
  for (let t = 0; t < l; t++) {
    for (let i = 0; i < half; i++) {
      const angle = (pos0 + t) * theta ** (-2 * i / k);
      cos[t * half + i] = Math.cos(angle);
      sin[t * half + i] = Math.sin(angle);
    }
  }
  const c = tf.tensor(cos, [l, half]), s = tf.tensor(sin, [l, half]); // broadcast over (b, h)
  const [x1, x2] = tf.split(x, 2, 3); // (b, h, l, k/2) each
  return tf.concat([tf.sub(tf.mul(x1, c), tf.mul(x2, s)), tf.add(tf.mul(x1, s), tf.mul(x2, c))], 3);
}

/**
 * a (B, m, k) @ b (B, k, n) per batch entry (either operand transposed in its last two axes). On cpu and
 * wasm, tf.matMul's batched kernel is slow (one thread, and a plain loop whenever an operand is
 * transposed: ~8x slower at attention shapes, measured), so sizeable products go through fastMatMul one
 * batch entry at a time; many tiny products (MegaByte's local attention) stay one batched op, where the
 * per-op overhead of a loop would dominate.
 */
export function batchMatMul(a: tf.Tensor, b: tf.Tensor, transposeA = false, transposeB = false): tf.Tensor {
  const [B, r, c] = a.shape;
  const n = transposeB ? b.shape[1]! : b.shape[2]!;
  const backend = tf.getBackend();
  if ((backend !== "cpu" && backend !== "wasm") || B > 256 || r * c * n < 32768) {
    return tf.matMul(a, b, transposeA, transposeB);
  }
  if (B === 1) {
    // tf.unstack into ONE tensor has a broken gradient in tfjs 4.22 (its grad gets dy unwrapped and
    // stack() rejects it: "Argument tensors passed to stack must be a `Tensor[]`"), so batch 1 reshapes
    const [a2, b2] = [a.reshape(a.shape.slice(1)), b.reshape(b.shape.slice(1))];
    return fastMatMul(a2, b2, transposeA, transposeB).expandDims(0);
  }
  const as = tf.unstack(a), bs = tf.unstack(b);
  return tf.stack(as.map((x, i) => fastMatMul(x, bs[i], transposeA, transposeB)));
}

/**
 * Score elements per query chunk (b*h*queries*keys): bounds attention memory on long inputs. Training
 * shapes of the experiments (e.g. 8 x 2 heads x 1024^2) fit in one chunk. Mutable for tests.
 */
export const attentionLimits = { chunkElements: 1 << 24 };

/**
 * Additive mask (n, m) for queries at positions q0 .. q0+n-1 and keys at k0 .. k0+m-1: 0 where the key
 * is visible (not in the future, and within the window), -1e9 elsewhere (exp(-1e9) = 0 after the
 * softmax). Built on the host: tf's broadcast comparisons are slow on wasm (~80 ms vs ~4 ms at 1024^2).
 */
function attentionMask(q0: number, n: number, k0: number, m: number, window?: number): tf.Tensor {
  const mask = new Float32Array(n * m).fill(-1e9);
  for (let i = 0; i < n; i++) {
    const last = Math.min(m - 1, q0 + i - k0); // newest visible key (the query's own position)
    const first = Math.max(0, window ? q0 + i - window + 1 - k0 : 0); // oldest visible key
    if (last >= first) mask.fill(0, i * m + first, i * m + last + 1);
  }
  return tf.tensor(mask, [n, m]);
}

/**
 * Causal attention by absolute position: query i (position qPos0+i) sees key j (position kPos0+j) iff
 * kPos0+j <= qPos0+i, and, with a window W, kPos0+j > qPos0+i-W. q (b, h, lq, k), k/v (b, h, lk, k) ->
 * (b, h, lq, k). Long inputs are processed in chunks of queries, each against only the keys it may see,
 * so the (lq, lk) score matrix is never held at once (evaluation at 64x the training length).
 */
export function causalAttention(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  qPos0: number,
  kPos0: number,
  window?: number,
): tf.Tensor {
  const [b, h, lq, hd] = q.shape;
  const lk = k.shape[2]!;
  const scale = 1 / Math.sqrt(hd);
  const chunk = Math.max(1, Math.min(lq, Math.floor(attentionLimits.chunkElements / (b * h * lk))));
  const outs: tf.Tensor[] = [];
  for (let s = 0; s < lq; s += chunk) {
    const n = Math.min(chunk, lq - s);
    const qFirst = qPos0 + s, qLast = qFirst + n - 1; // absolute positions of this chunk's queries
    const kLo = Math.max(0, window ? qFirst - window + 1 - kPos0 : 0); // first key any query may see
    const kHi = Math.min(lk, qLast - kPos0 + 1); // one past the last key any query may see
    if (kHi <= kLo) {
      throw new Error(`causalAttention: queries at ${qFirst}..${qLast} see no key (keys from ${kPos0})`);
    }
    const m = kHi - kLo;
    const qc = tf.slice(q, [0, 0, s, 0], [b, h, n, hd]).reshape([b * h, n, hd]);
    const kc = tf.slice(k, [0, 0, kLo, 0], [b, h, m, hd]).reshape([b * h, m, hd]);
    const vc = tf.slice(v, [0, 0, kLo, 0], [b, h, m, hd]).reshape([b * h, m, hd]);
    let scores = tf.mul(batchMatMul(qc, kc, false, true), scale); // (b*h, n, m)
    // a mask is needed unless every query sees every key of the slice (a single decoding step)
    const full = qFirst >= kPos0 + kHi - 1 && (!window || qLast - window < kPos0 + kLo);
    if (!full) scores = tf.add(scores, attentionMask(qFirst, n, kPos0 + kLo, m, window)); // (b*h, n, m)
    const att = tf.softmax(scores); // (b*h, n, m)
    outs.push(batchMatMul(att, vc).reshape([b, h, n, hd])); // (b, h, n, k)
  }
  return outs.length === 1 ? outs[0] : tf.concat(outs, 2);
}
