/**
 * WGSL of the Transformer family's LayerNorm (forward and backward), rotary position embeddings and GELU;
 * the plain-JS twins, with the same parameters and buffers, are in ../js/transformer.ts.
 */
import type { GeluParams, LayerNormGradParams, LayerNormParams, RopeParams } from "../js/transformer.ts";
import { type Dispatcher, flatGroups } from "./dispatcher.ts";
import { columnSumGroups, columnSumShader, normBlockRows, rowThreads } from "./norm.ts";
import { cached, declare, FLAT_ARGS, flatIndex, GROUP_ARGS, itemGroups, treeReduce } from "./wgsl.ts";

/** One workgroup per row: the mean (a tree), the variance about it (a second tree), then y. */
function layerNormShader(p: LayerNormParams): string {
  const W = rowThreads(p.d);
  return cached(`layerNorm ${JSON.stringify(p)}`, () =>
    `${
      declare([
        ["x", "read", "f32"],
        ["w", "read", "f32"],
        ["bias", "read", "f32"],
        ["y", "read_write", "f32"],
        ["mean", "read_write", "f32"],
        ["rstd", "read_write", "f32"],
      ])
    }
var<workgroup> red: array<f32, ${W}>;
@compute @workgroup_size(${W}) fn main(${GROUP_ARGS}) {
  let row = wg.x + wg.y * nwg.x; // uniform in the workgroup
  if (row >= ${p.rows}u) { return; }
  let o = row * ${p.d}u;
  var s = 0.0;
  for (var c = lid; c < ${p.d}u; c += ${W}u) { s += x[o + c]; }
  red[lid] = s;
  workgroupBarrier();
  ${treeReduce("red", W, "+")}
  let m = red[0] / ${p.d}.0;
  workgroupBarrier(); // everyone has read red[0] before it is reused
  var v = 0.0;
  for (var c = lid; c < ${p.d}u; c += ${W}u) { let e = x[o + c] - m; v += e * e; }
  red[lid] = v;
  workgroupBarrier();
  ${treeReduce("red", W, "+")}
  let r = 1.0 / sqrt(red[0] / ${p.d}.0 + ${p.eps});
  if (lid == 0u) { mean[row] = m; rstd[row] = r; }
  for (var c = lid; c < ${p.d}u; c += ${W}u) { y[o + c] = (x[o + c] - m) * r * w[c] + bias[c]; }
}`);
}

export function layerNorm<B>(
  d: Dispatcher<B>,
  p: LayerNormParams,
  b: { x: B; w: B; bias: B; y: B; mean: B; rstd: B },
): void {
  d.dispatch("layerNorm", layerNormShader(p), [b.x, b.w, b.bias, b.y, b.mean, b.rstd], itemGroups(p.rows));
}

/**
 * LayerNorm backward, pass 1: a workgroup per block of rows; per row the sums of g = dy w and of g xh (two
 * trees), dx written (or added), and each thread's columns of dy xh and dy summed over the block into
 * partials (blocks, d) of dw and of db. Pass 2 sums the blocks per column (columnSum).
 */
function layerNormBackwardShader(p: LayerNormGradParams): string {
  const W = rowThreads(p.d), CPT = Math.ceil(p.d / W), RB = normBlockRows(p.rows);
  return cached(`layerNormBackward ${JSON.stringify(p)}`, () =>
    `${
      declare([
        ["x", "read", "f32"],
        ["w", "read", "f32"],
        ["mean", "read", "f32"],
        ["rstd", "read", "f32"],
        ["dy", "read", "f32"],
        ["dx", "read_write", "f32"],
        ["dwParts", "read_write", "f32"],
        ["dbParts", "read_write", "f32"],
      ])
    }
var<workgroup> red: array<f32, ${2 * W}>;
@compute @workgroup_size(${W}) fn main(${GROUP_ARGS}) {
  let blk = wg.x + wg.y * nwg.x; // uniform in the workgroup
  var dwAcc: array<f32, ${CPT}>;
  var dbAcc: array<f32, ${CPT}>;
  for (var j = 0u; j < ${CPT}u; j++) { dwAcc[j] = 0.0; dbAcc[j] = 0.0; }
  for (var i = 0u; i < ${RB}u; i++) {
    let row = blk * ${RB}u + i;
    if (row >= ${p.rows}u) { break; }
    let o = row * ${p.d}u; let m = mean[row]; let r = rstd[row];
    var sg = 0.0; var sgx = 0.0;
    for (var j = 0u; j < ${CPT}u; j++) {
      let c = lid + j * ${W}u;
      if (c < ${p.d}u) { let g = dy[o + c] * w[c]; sg += g; sgx += g * (x[o + c] - m) * r; }
    }
    red[lid] = sg; red[${W}u + lid] = sgx;
    workgroupBarrier();
    for (var s = ${W / 2}u; s >= 1u; s = s / 2u) {
      if (lid < s) { red[lid] += red[lid + s]; red[${W}u + lid] += red[${W}u + lid + s]; }
      workgroupBarrier();
    }
    let mg = red[0] / ${p.d}.0; let mgx = red[${W}u] / ${p.d}.0;
    workgroupBarrier(); // everyone has read the sums before the next row writes red
    for (var j = 0u; j < ${CPT}u; j++) {
      let c = lid + j * ${W}u;
      if (c < ${p.d}u) {
        let xh = (x[o + c] - m) * r;
        let v = r * (dy[o + c] * w[c] - mg - xh * mgx);
        dx[o + c] = ${p.accumulate ? "dx[o + c] + v" : "v"};
        dwAcc[j] += dy[o + c] * xh;
        dbAcc[j] += dy[o + c];
      }
    }
  }
  if (blk * ${RB}u < ${p.rows}u) {
    for (var j = 0u; j < ${CPT}u; j++) {
      let c = lid + j * ${W}u;
      if (c < ${p.d}u) { dwParts[blk * ${p.d}u + c] = dwAcc[j]; dbParts[blk * ${p.d}u + c] = dbAcc[j]; }
    }
  }
}`);
}

export function layerNormBackward<B>(
  d: Dispatcher<B>,
  p: LayerNormGradParams,
  b: { x: B; w: B; mean: B; rstd: B; dy: B; dx: B; dw: B; db: B },
): void {
  const blocks = Math.ceil(p.rows / normBlockRows(p.rows));
  const dwParts = d.alloc(blocks * p.d, "layerNorm dw partials");
  const dbParts = d.alloc(blocks * p.d, "layerNorm db partials");
  d.dispatch(
    "layerNormBackward",
    layerNormBackwardShader(p),
    [b.x, b.w, b.mean, b.rstd, b.dy, b.dx, dwParts, dbParts],
    itemGroups(blocks),
  );
  const sum = columnSumShader(blocks, p.d);
  d.dispatch("columnSum", sum, [dwParts, b.dw], columnSumGroups(p.d));
  d.dispatch("columnSum", sum, [dbParts, b.db], columnSumGroups(p.d));
  d.release(dwParts);
  d.release(dbParts);
}

/** A thread per (sequence, position, head, pair): the pair rotated in place by the position's angle. */
function ropeShader(p: RopeParams): string {
  const half = p.hd / 2, count = p.batch * p.len * p.heads * half;
  return cached(
    `rope ${JSON.stringify(p)}`,
    () =>
      `${declare([["x", "read_write", "f32"], ["cosT", "read", "f32"], ["sinT", "read", "f32"]])}
@compute @workgroup_size(64) fn main(${FLAT_ARGS}) {
  let e = ${flatIndex(64)};
  if (e >= ${count}u) { return; }
  let i = e % ${half}u; let h = (e / ${half}u) % ${p.heads}u; let bt = e / ${half * p.heads}u;
  let t = bt % ${p.len}u;
  let o = bt * ${p.stride}u + ${p.offset}u + h * ${p.hd}u;
  let c = cosT[t * ${half}u + i]; let s = ${p.inverse ? "-" : ""}sinT[t * ${half}u + i];
  let x1 = x[o + i]; let x2 = x[o + i + ${half}u];
  x[o + i] = x1 * c - x2 * s;
  x[o + i + ${half}u] = x1 * s + x2 * c;
}`,
  );
}

export function rope<B>(d: Dispatcher<B>, p: RopeParams, b: { x: B; cos: B; sin: B }): void {
  if (p.hd % 2 !== 0) throw new Error(`rope: hd must be even (got ${p.hd})`);
  d.dispatch(
    "rope",
    ropeShader(p),
    [b.x, b.cos, b.sin],
    flatGroups(p.batch * p.len * p.heads * p.hd / 2, 64),
  );
}

// tanh's argument clamped: tanh(15) is 1 in float32, and some drivers' tanh overflows to NaN past ~44
const geluFns = (t: string) =>
  `const K0 = ${Math.sqrt(2 / Math.PI)}; const K1 = 0.044715;
fn geluTanh(x: ${t}) -> ${t} { return tanh(clamp(K0 * (x + K1 * x * x * x), ${t}(-15.0), ${t}(15.0))); }`;

/**
 * GELU's kernels take four elements a thread (a vec4 when the count allows, as every model's does: the MLP's
 * width times the tokens) in workgroups of 256: with one element a thread in workgroups of 64, a d256 x 4
 * step's 4M-element GELU ran as 65,536 workgroups and took 84 us on the H200 (400 GB/s of a 4.8 TB/s
 * memory), which points at starting workgroups rather than memory as its bound (not yet measured after this
 * change). Each element's arithmetic is the scalar one. Returns the WGSL and the workgroups.
 */
function geluKernel(label: string, count: number, out: string, body: string) {
  const v4 = count % 4 === 0, n = v4 ? count / 4 : count, t = v4 ? "vec4<f32>" : "f32";
  const code = cached(`${label} ${count}`, () =>
    `${declare([["x", "read", t], [out, "read_write", t]])}
${geluFns(t)}
@compute @workgroup_size(256) fn main(${FLAT_ARGS}) {
  let i = ${flatIndex(256)};
  if (i >= ${n}u) { return; }
  ${body}
}`);
  return { code, groups: flatGroups(n, 256) };
}

export function gelu<B>(d: Dispatcher<B>, p: GeluParams, b: { x: B; y: B }): void {
  const k = geluKernel("gelu", p.count, "y", "let v = x[i]; y[i] = 0.5 * v * (1.0 + geluTanh(v));");
  d.dispatch("gelu", k.code, [b.x, b.y], k.groups);
}

export function geluBackward<B>(d: Dispatcher<B>, p: GeluParams, b: { x: B; d: B }): void {
  const k = geluKernel(
    "geluBackward",
    p.count,
    "g",
    "let v = x[i]; let t = geluTanh(v);\n  g[i] = g[i] * (0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * K0 * (1.0 + 3.0 * K1 * v * v));",
  );
  d.dispatch("geluBackward", k.code, [b.x, b.d], k.groups);
}
