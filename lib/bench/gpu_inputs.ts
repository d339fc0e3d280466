/**
 * Inputs and synchronisation shared by the GPU benchmarks (gpu.ts, gpu_host_profile.ts).
 */
import * as tf from "@tensorflow/tfjs";

/** Waits for everything queued before `t` to finish (a one-element reduction read back). */
export async function sync(t: tf.Tensor): Promise<void> {
  const s = tf.sum(t);
  await s.data();
  s.dispose();
}

/**
 * Deterministic pseudo-random inputs made on the GPU, frac(sin(12.9898 r + 78.233 c + seed) 43758.5453)
 * over (row, column): only the two index vectors travel from the host (host-made random tensors of
 * this size take seconds to make and upload).
 */
function pseudoRandom(shape: number[], seed: number, lo: number, hi: number): tf.Tensor {
  return tf.tidy(() => {
    const cols = shape[shape.length - 1], rows = shape.reduce((a, b) => a * b, 1) / cols;
    const r = tf.range(0, rows).reshape([rows, 1]), c = tf.range(0, cols).reshape([1, cols]);
    const x = tf.sin(tf.add(tf.add(tf.mul(r, 12.9898), tf.mul(c, 78.233)), 1.618 * seed)).mul(43758.5453);
    return tf.sub(x, tf.floor(x)).mul(hi - lo).add(lo).reshape(shape);
  });
}

/**
 * The scan benchmark's inputs at (B, D, N, L), made on the GPU: u, delta, z and the output gradient gy
 * (B, D, L), B and C (B, N, L), A = -(1..N) per channel, D = 1, delta bias 0.
 */
export function scanBenchInputs(B: number, D: number, N: number, L: number) {
  return {
    u: pseudoRandom([B, D, L], 1, -2, 2),
    delta: pseudoRandom([B, D, L], 2, -6, -2),
    A: tf.neg(tf.range(1, N + 1).tile([D]).reshape([D, N])),
    Bm: pseudoRandom([B, N, L], 3, -2, 2),
    Cm: pseudoRandom([B, N, L], 4, -2, 2),
    Dv: tf.ones([D]),
    z: pseudoRandom([B, D, L], 5, -2, 2),
    bias: tf.zeros([D]),
    gy: pseudoRandom([B, D, L], 6, -1, 1),
  };
}
