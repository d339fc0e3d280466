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
export function pseudoRandom(shape: number[], seed: number, lo: number, hi: number): tf.Tensor {
  return tf.tidy(() => {
    const cols = shape[shape.length - 1], rows = shape.reduce((a, b) => a * b, 1) / cols;
    const r = tf.range(0, rows).reshape([rows, 1]), c = tf.range(0, cols).reshape([1, cols]);
    const x = tf.sin(tf.add(tf.add(tf.mul(r, 12.9898), tf.mul(c, 78.233)), 1.618 * seed)).mul(43758.5453);
    return tf.sub(x, tf.floor(x)).mul(hi - lo).add(lo).reshape(shape);
  });
}
