/**
 * The TF.js layers every model family shares, as plain functions of tensors (weights in PyTorch's
 * layouts, so checkpoints move between this project and PyTorch unchanged). Shapes: b batch, l length,
 * d width, V vocabulary.
 */
import * as tf from "@tensorflow/tfjs";
import { fastMatMul } from "../kernels/mod.ts";

/** x (..., in) @ W^T (+ bias), W (out, in) as PyTorch stores it -> (..., out). */
export function linear(x: tf.Tensor, W: tf.Tensor, bias?: tf.Tensor): tf.Tensor {
  const inDim = x.shape[x.rank - 1];
  const y = fastMatMul(x.reshape([-1, inDim]), W, false, true);
  const out = bias ? tf.add(y, bias) : y;
  return out.reshape([...x.shape.slice(0, -1), W.shape[0]]);
}

/** RMSNorm over the last axis: x / sqrt(mean(x^2) + eps) * w. */
export function rmsNorm(x: tf.Tensor, w: tf.Tensor, eps = 1e-5): tf.Tensor {
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps))), w);
}

export const silu = (x: tf.Tensor) => tf.mul(x, tf.sigmoid(x));

/**
 * Embedding lookup E[ids]: (V, d), (b, l) -> (b, l, d). tf.gather's gradient needs UnsortedSegmentSum,
 * which the wasm backend lacks; the gradient here is written as onehot(ids)^T @ dy, a matmul every
 * backend has (it costs what the tied output head costs, b*l*V*d).
 */
export function embed(E: tf.Tensor, ids: tf.Tensor): tf.Tensor {
  const [V, d] = E.shape;
  const flat = ids.reshape([-1]).toInt();
  // deno-lint-ignore no-explicit-any
  const lookup = tf.customGrad(
    ((table: tf.Tensor, save: tf.GradSaveFunc) => {
      save([flat]);
      return {
        value: tf.gather(table, flat), // (b*l, d)
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
          fastMatMul(tf.oneHot(saved[0], V).toFloat(), dy, true, false), // (V, d)
      };
    }) as any,
  );
  return (lookup(E) as tf.Tensor).reshape([...ids.shape, d]);
}

/**
 * Causal depthwise conv1d along l with bias: x (b, l, e), w (e, 1, k) -> (b, l, e).
 * y_t = bias + sum_j w[j] x_{t-k+1+j}: written as k shifted multiply-adds because tfjs has no causal
 * padding and wasm has no depthwise-conv gradient; for k = 4 this is also cheap.
 */
export function causalConv(x: tf.Tensor, w: tf.Tensor, bias?: tf.Tensor): tf.Tensor {
  const [b, l, e] = x.shape;
  const k = w.shape[2]!;
  const xp = tf.pad(x, [[0, 0], [k - 1, 0], [0, 0]]); // (b, l+k-1, e)
  const taps = tf.unstack(w.reshape([e, k]), 1); // k x (e)
  let y: tf.Tensor = bias ? bias.reshape([1, 1, e]) : tf.zeros([1, 1, e]);
  for (let j = 0; j < k; j++) y = tf.add(y, tf.mul(tf.slice(xp, [0, j, 0], [b, l, e]), taps[j]));
  return y;
}

/**
 * Mean cross-entropy (nats) of logits (..., V) against one target id per row (row-major, as many as the
 * leading dims hold).
 * Works with one-hot targets (no gather), so it is differentiable on every backend.
 */
export function crossEntropy(logits: tf.Tensor, targets: tf.Tensor): tf.Tensor {
  const V = logits.shape[logits.rank - 1];
  const logp = tf.logSoftmax(logits.reshape([-1, V])); // (b*l, V)
  const onehot = tf.oneHot(targets.reshape([-1]).toInt(), V).toFloat();
  return tf.neg(tf.mean(tf.sum(tf.mul(onehot, logp), 1)));
}

/** LayerNorm over the last axis: (x - mean) / sqrt(var + eps) * w + b. */
export function layerNorm(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor, eps: number): tf.Tensor {
  const mean = tf.mean(x, -1, true); // (..., 1)
  const centred = tf.sub(x, mean);
  const variance = tf.mean(tf.square(centred), -1, true); // (..., 1)
  return tf.add(tf.mul(tf.mul(centred, tf.rsqrt(tf.add(variance, eps))), w), b);
}

/** GELU, tanh approximation (GPT-2): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
export function gelu(x: tf.Tensor): tf.Tensor {
  const inner = tf.mul(tf.add(x, tf.mul(tf.mul(tf.mul(x, x), x), 0.044715)), Math.sqrt(2 / Math.PI));
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
}
