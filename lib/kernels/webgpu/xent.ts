/**
 * WGSL of the softmax cross-entropy fused with its gradient (plain-JS twin: ../js/xent.ts): one workgroup
 * per logit row reduces the row's max and sum of exponentials in workgroup memory, writes the row's loss
 * and overwrites the logits with dL/dlogits, so the head's logits live only for their chunk.
 */
import type { CrossEntropyParams } from "../js/xent.ts";
import type { Dispatcher } from "./dispatcher.ts";
import { cached, declare, GROUP_ARGS, itemGroups, treeReduce } from "./wgsl.ts";

const W = 256;

export function crossEntropyShader(p: CrossEntropyParams): string {
  return cached(
    `crossEntropy ${JSON.stringify(p)}`,
    () =>
      `${declare([["logits", "read_write", "f32"], ["ids", "read", "i32"], ["loss", "read_write", "f32"]])}
var<workgroup> red: array<f32, ${W}>;
@compute @workgroup_size(${W}) fn main(${GROUP_ARGS}) {
  let row = wg.x + wg.y * nwg.x; // uniform in the workgroup
  if (row >= ${p.rows}u) { return; }
  let token = ${p.rowOffset}u + row;
  let tgt = u32(ids[(token / ${p.len}u) * ${p.stride}u + ${p.targetOffset ?? 0}u + token % ${p.len}u + 1u]);
  let o = row * ${p.V}u;
  let xt = logits[o + tgt]; // read before any thread overwrites the row
  var m = -3.4028234663852886e38;
  for (var c = lid; c < ${p.V}u; c += ${W}u) { m = max(m, logits[o + c]); }
  red[lid] = m;
  workgroupBarrier();
  ${treeReduce("red", W, "max")}
  let rowMax = red[0];
  workgroupBarrier();
  var s = 0.0;
  for (var c = lid; c < ${p.V}u; c += ${W}u) { s += exp(logits[o + c] - rowMax); }
  red[lid] = s;
  workgroupBarrier();
  ${treeReduce("red", W, "+")}
  let sum = red[0];
  if (lid == 0u) { loss[token] = rowMax + log(sum) - xt; }
  for (var c = lid; c < ${p.V}u; c += ${W}u) {
    logits[o + c] = (exp(logits[o + c] - rowMax) / sum - select(0.0, 1.0, c == tgt)) * ${p.scale};
  }
}`,
  );
}

export function crossEntropy<B>(
  d: Dispatcher<B>,
  p: CrossEntropyParams,
  b: { logits: B; ids: B; loss: B },
): void {
  d.dispatch("crossEntropy", crossEntropyShader(p), [b.logits, b.ids, b.loss], itemGroups(p.rows));
}
