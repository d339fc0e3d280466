/**
 * Plain-JS twin of webgpu/xent.ts: softmax cross-entropy of a chunk of logit rows against next-token
 * targets, fused with its gradient. The logits are overwritten by dL/dlogits, so the (b l, V) logits
 * never need to outlive their chunk: the head's products run chunk by chunk around this op.
 */

export interface CrossEntropyParams {
  /** rows of this chunk; its first row is token `rowOffset` of the batch (token = b len + t) */
  rows: number;
  rowOffset: number;
  /** logits per row (the padded vocabulary: every column takes part in the softmax, as in TF.js) */
  V: number;
  len: number;
  /** ids per row of `ids`: the target of token (b, t) is ids[b stride + targetOffset + t + 1] */
  stride: number;
  /** where a sequence's rows start among its ids (PerceiverAR's latents: the last len of l; default 0) */
  targetOffset?: number;
  /** dL/dlogits scale: 1 / (tokens in the batch), the loss being the mean over tokens */
  scale: number;
}

/**
 * loss[token] = logsumexp(x) - x[target]; x <- (softmax(x) - onehot(target)) scale, for each row of the
 * chunk.
 */
export function crossEntropy(
  p: CrossEntropyParams,
  b: { logits: Float32Array; ids: Int32Array; loss: Float32Array },
): void {
  for (let i = 0; i < p.rows; i++) {
    const token = p.rowOffset + i;
    const target = b.ids[Math.floor(token / p.len) * p.stride + (p.targetOffset ?? 0) + (token % p.len) + 1];
    const o = i * p.V;
    let max = -Infinity;
    for (let j = 0; j < p.V; j++) max = Math.max(max, b.logits[o + j]);
    let sum = 0;
    for (let j = 0; j < p.V; j++) sum += Math.exp(b.logits[o + j] - max);
    b.loss[token] = max + Math.log(sum) - b.logits[o + target];
    for (let j = 0; j < p.V; j++) {
      b.logits[o + j] = (Math.exp(b.logits[o + j] - max) / sum - (j === target ? 1 : 0)) * p.scale;
    }
  }
}
