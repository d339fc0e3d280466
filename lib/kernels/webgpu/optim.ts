/**
 * WGSL of the optimizer step over flat parameter arenas (plain-JS twins and the algorithm: ../js/optim.ts):
 * partial sums of squares of the gradients, one workgroup that finishes the global norm, the clip scale,
 * the mean loss and the halted flag, and AdamW, one thread per parameter. Nothing is read back: the
 * norm, scale and flag stay on the device (`state`), and the step's loss and norm go into a history slot
 * that the host copies out every few steps.
 */
import {
  type AdamWParams,
  type FinalizeParams,
  HISTORY_STRIDE,
  HYPER,
  sliceSize,
  STATE,
  type SumSquaresParams,
} from "../js/optim.ts";
import { type Dispatcher, flatGroups } from "./dispatcher.ts";
import {
  cached,
  declare,
  FLAT_ARGS,
  flatIndex,
  GROUP_ARGS,
  IS_FINITE,
  itemGroups,
  treeReduce,
} from "./wgsl.ts";

const W = 256;

export function sumSquaresShader(p: SumSquaresParams): string {
  const size = sliceSize(p);
  return cached(
    `sumSquares ${JSON.stringify(p)}`,
    () =>
      `${declare([["x", "read", "f32"], ["partials", "read_write", "f32"]])}
var<workgroup> red: array<f32, ${W}>;
@compute @workgroup_size(${W}) fn main(${GROUP_ARGS}) {
  let part = wg.x + wg.y * nwg.x; // uniform in the workgroup
  if (part >= ${p.parts}u) { return; }
  let end = min(${p.count}u, (part + 1u) * ${size}u);
  var s = 0.0;
  for (var i = part * ${size}u + lid; i < end; i += ${W}u) { let g = x[i]; s += g * g; }
  red[lid] = s;
  workgroupBarrier();
  ${treeReduce("red", W, "+")}
  if (lid == 0u) { partials[${p.partOffset}u + part] = red[0]; }
}`,
  );
}

export function sumSquares<B>(d: Dispatcher<B>, p: SumSquaresParams, b: { x: B; partials: B }): void {
  d.dispatch("sumSquares", sumSquaresShader(p), [b.x, b.partials], itemGroups(p.parts));
}

export function finalizeStepShader(p: FinalizeParams): string {
  return cached(`finalizeStep ${JSON.stringify(p)}`, () =>
    `${
      declare([
        ["partials", "read", "f32"],
        ["loss", "read", "f32"],
        ["hyper", "read", "f32"],
        ["state", "read_write", "f32"],
        ["history", "read_write", "f32"],
      ])
    }
${IS_FINITE}
var<workgroup> red: array<f32, ${W}>;
var<workgroup> red2: array<f32, ${W}>;
@compute @workgroup_size(${W}) fn main(@builtin(local_invocation_index) lid: u32) {
  var sq = 0.0; var l = 0.0;
  for (var i = lid; i < ${p.parts}u; i += ${W}u) { sq += partials[i]; }
  for (var i = lid; i < ${p.rows}u; i += ${W}u) { l += loss[i]; }
  red[lid] = sq; red2[lid] = l;
  workgroupBarrier();
  ${
      treeReduce("red", W, "+").replace(
        /red\[lid\] = red\[lid\] \+ red\[lid \+ (\d+)u\];/g,
        "red[lid] += red[lid + $1u]; red2[lid] += red2[lid + $1u];",
      )
    }
  if (lid == 0u) {
    let norm = sqrt(red[0]);
    let meanLoss = red2[0] / ${p.rows}.0;
    let halted = state[${STATE.HALTED}] != 0.0 || !isFinite(norm) || !isFinite(meanLoss);
    state[${STATE.HALTED}] = select(0.0, 1.0, halted);
    state[${STATE.SCALE}] = select(1.0, ${p.clip} / norm, ${p.clip} > 0.0 && norm > ${p.clip});
    state[${STATE.NORM}] = norm;
    state[${STATE.LOSS}] = meanLoss;
    let o = u32(hyper[${HYPER.SLOT}]) * ${HISTORY_STRIDE}u;
    history[o] = meanLoss;
    history[o + 1u] = norm;
    history[o + 2u] = select(0.0, 1.0, halted);
  }
}`);
}

export function finalizeStep<B>(
  d: Dispatcher<B>,
  p: FinalizeParams,
  b: { partials: B; loss: B; hyper: B; state: B; history: B },
): void {
  d.dispatch("finalizeStep", finalizeStepShader(p), [b.partials, b.loss, b.hyper, b.state, b.history], [
    1,
    1,
    1,
  ]);
}

export function adamwShader(p: AdamWParams): string {
  return cached(`adamw ${JSON.stringify(p)}`, () =>
    `${
      declare([
        ["param", "read_write", "f32"],
        ["grad", "read", "f32"],
        ["m", "read_write", "f32"],
        ["v", "read_write", "f32"],
        ["hyper", "read", "f32"],
        ["state", "read", "f32"],
      ])
    }
@compute @workgroup_size(256) fn main(${FLAT_ARGS}) {
  let i = ${flatIndex(256)};
  if (i >= ${p.count}u || state[${STATE.HALTED}] != 0.0) { return; }
  let g = grad[i] * state[${STATE.SCALE}];
  let mi = m[i] * ${p.beta1} + g * ${Math.fround(1 - p.beta1)};
  let vi = v[i] * ${p.beta2} + (g * g) * ${Math.fround(1 - p.beta2)};
  m[i] = mi; v[i] = vi;
  let update = (mi / hyper[${HYPER.BC1}]) / (sqrt(vi / hyper[${HYPER.BC2}]) + ${p.eps});
  let kept = select(param[i], param[i] * hyper[${HYPER.DECAY}], i < ${p.decayEnd}u);
  param[i] = kept - update * hyper[${HYPER.LR}];
}`);
}

export function adamw<B>(
  d: Dispatcher<B>,
  p: AdamWParams,
  b: { param: B; grad: B; m: B; v: B; hyper: B; state: B },
): void {
  d.dispatch(
    "adamw",
    adamwShader(p),
    [b.param, b.grad, b.m, b.v, b.hyper, b.state],
    flatGroups(p.count, 256),
  );
}
