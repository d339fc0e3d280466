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
  const { deltaA, deltaBu } = discretize(u, delta, A, B);
  // (tfjs's unstack gradient fails on an axis of size 1, hence the reshape for l = 1)
  const steps = (t: tf.Tensor) => l === 1 ? [t.reshape([b, d, n])] : tf.unstack(t, 2); // l x (b, d, n)
  const aSteps = steps(deltaA);
  const bSteps = steps(deltaBu);
  let h = h0 ?? tf.zeros([b, d, n]);
  const hs: tf.Tensor[] = [];
  for (let t = 0; t < l; t++) {
    h = tf.add(tf.mul(aSteps[t], h), bSteps[t]); // h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t
    hs.push(h);
  }
  const states = l === 1 ? hs[0].reshape([b, d, 1, n]) : tf.stack(hs, 2); // (b, d, l, n)
  return { y: readout(states, C), last: h };
};
