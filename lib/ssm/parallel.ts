/**
 * A work-efficient (Blelloch-style) parallel scan of the linear recurrence h_t = a_t h_{t-1} + b_t,
 * built from tfjs ops so that autodiff gives the backward pass.
 *
 * The associative operator on pairs is (a1, b1) then (a2, b2) = (a2 a1, a2 b1 + b2). One level combines
 * neighbours (2i, 2i+1) into one element (the up-sweep), recurses on the half-length sequence, which
 * yields h at every odd position, then fills the even positions with one more step from the odd state on
 * their left (the down-sweep). Total work O(l), depth O(log l).
 */
import * as tf from "@tensorflow/tfjs";
import type { RecurrenceFn } from "./types.ts";
import { discretize, readout } from "./reference.ts";

/** Inclusive scan along axis 2 of (b, d, l, n) tensors `a`, `x`; h_{-1} = 0. */
export function linearScan(a: tf.Tensor, x: tf.Tensor): tf.Tensor {
  const [b, d, l, n] = a.shape;
  if (l === 1) return x;
  if (l % 2 === 1) {
    // pad with the identity element (a = 1, x = 0) so pairs line up, then drop it again
    const h = linearScan(
      tf.concat([a, tf.ones([b, d, 1, n])], 2),
      tf.concat([x, tf.zeros([b, d, 1, n])], 2),
    );
    return tf.slice(h, [0, 0, 0, 0], [b, d, l, n]);
  }
  const half = l / 2;
  const pairs = (t: tf.Tensor) => tf.unstack(t.reshape([b, d, half, 2, n]), 3); // [even, odd], (b, d, l/2, n)
  const [aEven, aOdd] = pairs(a);
  const [xEven, xOdd] = pairs(x);
  // up-sweep: element 2i+1 composed with 2i
  const hOdd = linearScan(tf.mul(aOdd, aEven), tf.add(tf.mul(aOdd, xEven), xOdd)); // h at 2i+1
  // down-sweep: h_{2i} = a_{2i} h_{2i-1} + x_{2i}, with h_{-1} = 0
  const hPrev = tf.concat([tf.zeros([b, d, 1, n]), tf.slice(hOdd, [0, 0, 0, 0], [b, d, half - 1, n])], 2);
  const hEven = tf.add(tf.mul(aEven, hPrev), xEven);
  return tf.stack([hEven, hOdd], 3).reshape([b, d, l, n]); // interleave
}

export const parallelRecurrence: RecurrenceFn = ({ u, delta, A, B, C, h0 }) => {
  const [b, d, l] = delta.shape;
  const n = A.shape[1]!;
  let { deltaA, deltaBu } = discretize(u, delta, A, B);
  {
    // fold the initial state into the first input: x_0 += a_0 h_{-1}. Done for a zero state too, so that
    // A stays connected to the output (tf.grads throws on a disconnected input, e.g. for l = 1).
    h0 ??= tf.zeros([b, d, n]);
    const first = tf.add(
      tf.slice(deltaBu, [0, 0, 0, 0], [b, d, 1, n]),
      tf.mul(tf.slice(deltaA, [0, 0, 0, 0], [b, d, 1, n]), h0.reshape([b, d, 1, n])),
    );
    deltaBu = l === 1 ? first : tf.concat([first, tf.slice(deltaBu, [0, 0, 1, 0], [b, d, l - 1, n])], 2);
  }
  const states = linearScan(deltaA, deltaBu); // (b, d, l, n)
  const last = tf.slice(states, [0, 0, l - 1, 0], [b, d, 1, n]).reshape([b, d, n]);
  return { y: readout(states, C), last };
};
