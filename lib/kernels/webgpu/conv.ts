/**
 * WGSL of Mamba's causal depthwise conv1d + bias + SiLU over channel-major activations (b, ch, l), forward
 * and backward; the plain-JS twin is ../js/conv.ts. Channel-major, a thread's taps are neighbouring
 * steps of one row and a warp's loads are consecutive steps: coalesced, and the k - 1 taps shared with the
 * neighbouring thread come from the same cache lines.
 *   forward   one thread per (b, c, t)
 *   backward  dx: one thread per (b, c, t), recomputing the k pre-activations it needs (k^2 loads from
 *             cache, no scratch); dw, dbias: one workgroup per channel summing over (b, t) in a tree
 */
import type { ConvParams } from "../js/conv.ts";
import { type Dispatcher, flatGroups } from "./dispatcher.ts";
import {
  cached,
  declare,
  FLAT_ARGS,
  flatIndex,
  GROUP_ARGS,
  itemGroups,
  SIGMOID,
  treeReduce,
} from "./wgsl.ts";

const taps = (k: number) => [...Array(k).keys()];

/** WGSL fn pre(row, c, t): bias + sum_j w[c, j] x[row + t - k + 1 + j] (taps before the row are zero). */
function preFn(p: ConvParams): string {
  return `fn pre(row: u32, c: u32, t: u32) -> f32 {
  var s = ${p.bias ? "bias[c]" : "0.0"};
  ${
    taps(p.k).map((j) => {
      const back = p.k - 1 - j;
      const load = `x[row + t - ${back}u] * w[c * ${p.k}u + ${j}u]`;
      return back === 0 ? `s = s + ${load};` : `if (t >= ${back}u) { s = s + ${load}; }`;
    }).join("\n  ")
  }
  return s;
}`;
}

function inputs(p: ConvParams): [string, "read", "f32"][] {
  return [
    ["x", "read", "f32"],
    ["w", "read", "f32"],
    ...(p.bias ? [["bias", "read", "f32"] as [string, "read", "f32"]] : []),
  ];
}

export function convShader(p: ConvParams): string {
  return cached(`conv ${JSON.stringify(p)}`, () =>
    `${declare([...inputs(p), ["y", "read_write", "f32"]])}
${SIGMOID}
${preFn(p)}
@compute @workgroup_size(256) fn main(${FLAT_ARGS}) {
  let i = ${flatIndex(256)};
  if (i >= ${p.batch * p.ch * p.len}u) { return; }
  let t = i % ${p.len}u; let c = (i / ${p.len}u) % ${p.ch}u;
  let v = pre(i - t, c, t);
  y[i] = v * sigmoid(v);
}`);
}

export function conv<B>(d: Dispatcher<B>, p: ConvParams, b: { x: B; w: B; bias?: B; y: B }): void {
  d.dispatch(
    "conv",
    convShader(p),
    [b.x, b.w, ...(p.bias ? [b.bias!] : []), b.y],
    flatGroups(p.batch * p.ch * p.len, 256),
  );
}

/** dL/dpre at step t of row `row`: dy silu'(pre). */
function gradFn(): string {
  return `fn gpre(row: u32, c: u32, t: u32) -> f32 {
  let v = pre(row, c, t); let s = sigmoid(v);
  return dy[row + t] * s * (1.0 + v * (1.0 - s));
}`;
}

export function convBackwardDxShader(p: ConvParams): string {
  return cached(
    `convBackwardDx ${JSON.stringify(p)}`,
    () =>
      `${declare([...inputs(p), ["dy", "read", "f32"], ["dx", "read_write", "f32"]])}
${SIGMOID}
${preFn(p)}
${gradFn()}
@compute @workgroup_size(256) fn main(${FLAT_ARGS}) {
  let i = ${flatIndex(256)};
  if (i >= ${p.batch * p.ch * p.len}u) { return; }
  let t = i % ${p.len}u; let c = (i / ${p.len}u) % ${p.ch}u; let row = i - t;
  var s = 0.0;
  ${
        taps(p.k).map((j) => {
          const ahead = p.k - 1 - j; // x_t feeds pre_{t + ahead} through tap j
          const term = `w[c * ${p.k}u + ${j}u] * gpre(row, c, t + ${ahead}u)`;
          return ahead === 0 ? `s += ${term};` : `if (t + ${ahead}u < ${p.len}u) { s += ${term}; }`;
        }).join("\n  ")
      }
  dx[i] = s;
}`,
  );
}

const PARAM_THREADS = 256;

export function convBackwardParamsShader(p: ConvParams): string {
  const W = PARAM_THREADS, outs = p.k + (p.bias ? 1 : 0);
  return cached(`convBackwardParams ${JSON.stringify(p)}`, () =>
    `${
      declare([
        ...inputs(p),
        ["dy", "read", "f32"],
        ["dw", "read_write", "f32"],
        ...(p.bias ? [["dbias", "read_write", "f32"] as [string, "read_write", "f32"]] : []),
      ])
    }
${SIGMOID}
${preFn(p)}
${gradFn()}
var<workgroup> red: array<f32, ${W * outs}>;
@compute @workgroup_size(${W}) fn main(${GROUP_ARGS}) {
  let c = wg.x + wg.y * nwg.x; // uniform in the workgroup
  if (c >= ${p.ch}u) { return; }
  ${taps(outs).map((j) => `var a${j} = 0.0;`).join(" ")}
  for (var e = lid; e < ${p.batch * p.len}u; e += ${W}u) { // (b, t), t fastest: coalesced
    let t = e % ${p.len}u; let row = ((e / ${p.len}u) * ${p.ch}u + c) * ${p.len}u;
    let g = gpre(row, c, t);
    ${
      taps(p.k).map((j) => {
        const back = p.k - 1 - j;
        return back === 0
          ? `a${j} += g * x[row + t];`
          : `if (t >= ${back}u) { a${j} += g * x[row + t - ${back}u]; }`;
      }).join("\n    ")
    }
    ${p.bias ? `a${p.k} += g;` : ""}
  }
  ${taps(outs).map((j) => `red[${j * W}u + lid] = a${j};`).join(" ")}
  workgroupBarrier();
  ${
      treeReduce("red", W, "+").replace(
        /red\[lid\] = red\[lid\] \+ red\[lid \+ (\d+)u\];/g,
        (_m, s) => taps(outs).map((j) => `red[${j * W}u + lid] += red[${j * W}u + lid + ${s}u];`).join(" "),
      )
    }
  if (lid == 0u) {
    ${taps(p.k).map((j) => `dw[c * ${p.k}u + ${j}u] = red[${j * W}u];`).join(" ")}
    ${p.bias ? `dbias[c] = red[${p.k * W}u];` : ""}
  }
}`);
}

export function convBackward<B>(
  d: Dispatcher<B>,
  p: ConvParams,
  b: { x: B; w: B; bias?: B; dy: B; dx: B; dw: B; dbias?: B },
): void {
  const inp = [b.x, b.w, ...(p.bias ? [b.bias!] : [])];
  d.dispatch(
    "convBackwardDx",
    convBackwardDxShader(p),
    [...inp, b.dy, b.dx],
    flatGroups(p.batch * p.ch * p.len, 256),
  );
  d.dispatch(
    "convBackwardParams",
    convBackwardParamsShader(p),
    [...inp, b.dy, b.dw, ...(p.bias ? [b.dbias!] : [])],
    itemGroups(p.ch),
  );
}
