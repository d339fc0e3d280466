/**
 * The chunked scan: sequential across chunks of T steps, parallel inside a chunk.
 *
 * Inside a chunk the recurrence has a closed form. With S_t = sum_{s<=t} delta_s A (the log of the
 * cumulative decay, per channel and state),
 *   h_t = exp(S_t) h_start + sum_{s<=t} exp(S_t - S_s) delta_s B_s u_s,
 * i.e. a lower-triangular (T, T) decay matrix times the chunk's inputs: a batched matmul. Masking the
 * upper triangle BEFORE the exp keeps every exponent <= 0, so nothing overflows however large delta is
 * (the cumulative-product form exp(S_t) * sum exp(-S_s) x_s would overflow). Memory per chunk is
 * (b, d, n, T, T); a small T keeps it modest.
 * Every step is a matmul or an elementwise op, so all backends (and their gradients) support it.
 */
import * as tf from "@tensorflow/tfjs";
import type { RecurrenceFn } from "./types.ts";

export const DEFAULT_CHUNK = 16;

export const chunkedRecurrence: RecurrenceFn = ({ u, delta, A, B, C, h0, chunkSize }) => {
  const [b, d, l] = delta.shape;
  const n = A.shape[1]!;
  const T = Math.max(1, Math.min(chunkSize ?? DEFAULT_CHUNK, l));
  const nc = Math.ceil(l / T);
  // Pad the length to nc * T at the end with delta = 0 (no decay, no input: the state just carries over,
  // so the last state is still h_{l-1}), then cut into chunks with one reshape + unstack. (Per-chunk
  // tf.slice gave wrong gradients on the webgpu backend of tfjs 4.22.)
  const chunks = (t: tf.Tensor, c: number): tf.Tensor[] => {
    const padded = nc * T === l ? t : tf.pad(t, [[0, 0], [0, 0], [0, nc * T - l]]);
    const r = padded.reshape([b, c, nc, T]);
    return nc === 1 ? [r.reshape([b, c, T])] : tf.unstack(r, 2); // nc x (b, c, T)
  };
  const deltas = chunks(delta, d), us = chunks(u, d), Bs = chunks(B, n), Cs = chunks(C, n);
  let h = h0; // (b, d, n); undefined = zero state
  const ys: tf.Tensor[] = [];
  const An = A.reshape([1, d, n, 1]);
  const rows = b * d * n;
  for (let c = 0; c < nc; c++) {
    // one tidy per chunk: what the backward pass needs is saved by the tape, the rest is freed now
    // (without it the (b*d*n, T, T) intermediates of every chunk stay alive until the scan ends)
    const carry = h;
    const out = tf.tidy(() => {
      const dt = deltas[c].reshape([b, d, 1, T]); // (b, d, 1, T)
      const uc = us[c].reshape([b, d, 1, T]);
      const Bc = Bs[c].reshape([b, 1, n, T]); // (b, 1, n, T)
      const Cc = Cs[c].reshape([b, 1, n, T]);
      // S_t = sum_{s<=t} delta_s A, as a matmul with an upper-triangular ones matrix: tf.cumsum's gradient
      // (a reverse cumsum) returns wrong values on tfjs-webgpu 4.22 for T >= 7 (tests/scan_test.ts caught it)
      const S = tf.matMul(tf.mul(dt, An).reshape([rows, T]), cached("sum", T, () => upperOnes(T))).reshape([
        b,
        d,
        n,
        T,
      ]);
      const x = tf.mul(tf.mul(dt, uc), Bc); // delta_s B_s u_s, (b, d, n, T)
      // decay[t, s] = exp(S_t - S_s) for s <= t, else exp(-inf) = 0
      const diff = tf.sub(S.reshape([rows, T, 1]), S.reshape([rows, 1, T])); // (b*d*n, T, T)
      const decay = tf.exp(tf.add(diff, causalMask(T)));
      const within = tf.matMul(decay, x.reshape([rows, T, 1])).reshape([b, d, n, T]);
      // carry in the state from the previous chunk (nothing to carry into the first one without h0)
      const hs = carry ? tf.add(within, tf.mul(tf.exp(S), carry.reshape([b, d, n, 1]))) : within; // (b, d, n, T)
      return {
        y: tf.sum(tf.mul(hs, Cc), 2), // y_t = <h_t, C_t>, (b, d, T)
        h: tf.slice(hs, [0, 0, 0, T - 1], [b, d, n, 1]).reshape([b, d, n]),
      };
    });
    ys.push(out.y);
    h = out.h;
  }
  const y = ys.length === 1 ? ys[0] : tf.concat(ys, 2); // (b, d, nc * T)
  return { y: nc * T === l ? y : tf.slice(y, [0, 0, 0], [b, d, l]), last: h! };
};

/** Small constant tensors, cached per kind, size and backend (kept outside any tidy scope). */
const constants = new Map<string, tf.Tensor>();
function cached(kind: string, T: number, make: () => tf.Tensor): tf.Tensor {
  const key = `${tf.getBackend()}:${kind}:${T}`;
  let m = constants.get(key);
  if (!m || m.isDisposed) {
    m = tf.keep(make());
    constants.set(key, m);
  }
  return m;
}

/**
 * (1, T, T): 0 where s <= t, -inf above the diagonal; added before the exp. (Not tf.where: its
 * broadcasting tiles, which the webgpu backend runs on the CPU with a synchronous read that Deno lacks.)
 */
function causalMask(T: number): tf.Tensor {
  return cached("mask", T, () => {
    const data = new Float32Array(T * T);
    for (let t = 0; t < T; t++) for (let s = t + 1; s < T; s++) data[t * T + s] = -Infinity;
    return tf.tensor(data, [1, T, T]);
  });
}

/** (T, T): U[s, t] = 1 for s <= t, so x @ U is the inclusive cumulative sum of x's rows. */
function upperOnes(T: number): tf.Tensor {
  const data = new Float32Array(T * T);
  for (let s = 0; s < T; s++) for (let t = s; t < T; t++) data[s * T + t] = 1;
  return tf.tensor(data, [T, T]);
}
