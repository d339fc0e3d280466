/**
 * The sequential recurrence: the ground truth every other scan is tested against. A direct transcription
 * of mamba_ssm's `selective_scan_ref`; O(l) steps, each a handful of ops, so slow but obviously correct.
 */
import * as tf from "@tensorflow/tfjs";
import type { RecurrenceFn } from "./types.ts";

/** exp(delta A) and delta B u, both (b, d, l, n). Shared by the sequential and parallel scans. */
export function discretize(u: tf.Tensor, delta: tf.Tensor, A: tf.Tensor, B: tf.Tensor) {
  const [b, d, l] = delta.shape;
  const n = A.shape[1]!;
  const dt = delta.reshape([b, d, l, 1]); // (b, d, l, 1)
  const deltaA = tf.exp(tf.mul(dt, A.reshape([1, d, 1, n]))); // (b, d, l, n)
  const Bt = tf.transpose(B, [0, 2, 1]).reshape([b, 1, l, n]); // (b, 1, l, n)
  const deltaBu = tf.mul(tf.mul(dt, u.reshape([b, d, l, 1])), Bt); // (b, d, l, n)
  return { deltaA, deltaBu };
}

/** y_t = <h_t, C_t> over n: h (b, d, l, n), C (b, n, l) -> (b, d, l). */
export function readout(h: tf.Tensor, C: tf.Tensor): tf.Tensor {
  const [b, n, l] = C.shape;
  const Ct = tf.transpose(C, [0, 2, 1]).reshape([b, 1, l, n]); // (b, 1, l, n)
  return tf.sum(tf.mul(h, Ct), 3); // (b, d, l)
}

export const sequentialRecurrence: RecurrenceFn = ({ u, delta, A, B, C, h0 }) => {
  const [b, d, l] = delta.shape;
  const n = A.shape[1]!;
  // time-major, so each step's slice is contiguous (tfjs copies strided slices slowly, and the
  // gradient of one unstack is one stack)
  const steps = (t: tf.Tensor) => {
    const tm = tf.transpose(t, [2, 0, 1]); // (l, b, c)
    return l === 1 ? [tm.reshape(t.shape.slice(0, 2))] : tf.unstack(tm, 0); // (tfjs's unstack grad fails for l = 1)
  };
  const us = steps(u), dts = steps(delta), Bs = steps(B), Cs = steps(C); // l x (b, d) or (b, n)
  const An = A.reshape([1, d, n]);
  let h = h0 ?? tf.zeros([b, d, n]);
  const ys: tf.Tensor[] = [];
  for (let t = 0; t < l; t++) {
    const dt = dts[t].reshape([b, d, 1]);
    const decay = tf.exp(tf.mul(dt, An)); // exp(delta_t A), (b, d, n)
    const input = tf.mul(tf.mul(dt, us[t].reshape([b, d, 1])), Bs[t].reshape([b, 1, n])); // delta_t B_t u_t
    h = tf.add(tf.mul(decay, h), input); // h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t
    ys.push(tf.sum(tf.mul(h, Cs[t].reshape([b, 1, n])), 2)); // y_t = <h_t, C_t>, (b, d)
  }
  const y = l === 1 ? ys[0].reshape([b, d, 1]) : tf.transpose(tf.stack(ys, 0), [1, 2, 0]); // (b, d, l)
  return { y, last: h };
};
