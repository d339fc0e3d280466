/**
 * WGSL of the embedding gather and its gradient, and of the residual add fused with RMSNorm, forward and
 * backward; the plain-JS twins (same parameters, same buffers) are in ../js/norm.ts. Each op records its
 * passes on a Dispatcher.
 *
 * The embedding's gradient is a scatter-add. WGSL has no float atomics, and atomics would make the sum's
 * order (so its rounding) vary between runs; instead the host sorts the token positions by id each step
 * (a counting sort of b l ids: microseconds) and uploads `order` and `rowStart` with the ids, and one
 * thread per (id, column) adds its id's rows in position order: deterministic, O(b l d) work in all.
 */
import type { EmbeddingGradParams, EmbeddingParams, NormGradParams, NormParams } from "../js/norm.ts";
import { type Dispatcher, flatGroups } from "./dispatcher.ts";
import {
  type Binding,
  cached,
  declare,
  FLAT_ARGS,
  flatIndex,
  GROUP_ARGS,
  itemGroups,
  treeReduce,
} from "./wgsl.ts";

export function embeddingShader(p: EmbeddingParams): string {
  return cached(
    `embedding ${JSON.stringify(p)}`,
    () =>
      `${declare([["ids", "read", "i32"], ["table", "read", "f32"], ["out", "read_write", "f32"]])}
@compute @workgroup_size(256) fn main(${FLAT_ARGS}) {
  let i = ${flatIndex(256)};
  if (i >= ${p.batch * p.len * p.d}u) { return; }
  let token = i / ${p.d}u; let c = i % ${p.d}u;
  let v = u32(ids[(token / ${p.len}u) * ${p.stride}u + token % ${p.len}u]);
  out[i] = table[v * ${p.d}u + c];
}`,
  );
}

export function embedding<B>(d: Dispatcher<B>, p: EmbeddingParams, b: { ids: B; table: B; out: B }): void {
  d.dispatch(
    "embedding",
    embeddingShader(p),
    [b.ids, b.table, b.out],
    flatGroups(p.batch * p.len * p.d, 256),
  );
}

/** Columns and row-range parts of a workgroup of the embedding's backward (32 x 8 = 256 threads). */
const EB_COLS = 32, EB_PARTS = 8;

/**
 * A workgroup per (id, 32 columns): its 8 x 32 threads split the id's sorted rows in 8 contiguous parts
 * (a frequent byte such as ' ' has ~15% of all rows: one thread per column would walk them all), each
 * summing its part 4 rows at a time (independent loads in flight); the 8 partial sums are then added in
 * order in workgroup memory. A warp reads 32 consecutive columns of one row: coalesced.
 */
export function embeddingBackwardShader(p: EmbeddingGradParams): string {
  return cached(`embeddingBackward ${JSON.stringify(p)}`, () =>
    `${
      declare([
        ["order", "read", "i32"],
        ["rowStart", "read", "i32"],
        ["dOut", "read", "f32"],
        ["dTable", "read_write", "f32"],
      ])
    }
var<workgroup> part: array<f32, ${EB_COLS * EB_PARTS}>;
@compute @workgroup_size(${EB_COLS * EB_PARTS}) fn main(${GROUP_ARGS}) {
  let item = wg.x + wg.y * nwg.x; // uniform in the workgroup
  if (item >= ${p.V * Math.ceil(p.d / EB_COLS)}u) { return; }
  let v = item / ${Math.ceil(p.d / EB_COLS)}u;
  let c = (item % ${Math.ceil(p.d / EB_COLS)}u) * ${EB_COLS}u + lid % ${EB_COLS}u;
  let q = lid / ${EB_COLS}u;
  let first = rowStart[v]; let count = rowStart[v + 1u] - first;
  let size = (count + ${EB_PARTS - 1}) / ${EB_PARTS};
  let begin = first + min(count, i32(q) * size); let end = first + min(count, (i32(q) + 1) * size);
  let cc = min(c, ${p.d - 1}u);
  var s0 = 0.0; var s1 = 0.0; var s2 = 0.0; var s3 = 0.0;
  var j = begin;
  for (; j + 4 <= end; j += 4) {
    s0 += dOut[u32(order[j]) * ${p.d}u + cc]; s1 += dOut[u32(order[j + 1]) * ${p.d}u + cc];
    s2 += dOut[u32(order[j + 2]) * ${p.d}u + cc]; s3 += dOut[u32(order[j + 3]) * ${p.d}u + cc];
  }
  for (; j < end; j++) { s0 += dOut[u32(order[j]) * ${p.d}u + cc]; }
  part[lid] = (s0 + s1) + (s2 + s3);
  workgroupBarrier();
  if (q == 0u && c < ${p.d}u) {
    var s = 0.0;
    for (var k = 0u; k < ${EB_PARTS}u; k++) { s += part[k * ${EB_COLS}u + lid]; }
    let o = v * ${p.d}u + c;
    dTable[o] = ${p.accumulate ? "dTable[o] + s" : "s"};
  }
}`);
}

export function embeddingBackward<B>(
  d: Dispatcher<B>,
  p: EmbeddingGradParams,
  b: { order: B; rowStart: B; dOut: B; dTable: B },
): void {
  d.dispatch(
    "embeddingBackward",
    embeddingBackwardShader(p),
    [b.order, b.rowStart, b.dOut, b.dTable],
    itemGroups(p.V * Math.ceil(p.d / EB_COLS)),
  );
}

/** Threads per row of the norm kernels: enough for 4 columns each, 32 to 256. */
export function rowThreads(d: number): number {
  let t = 32;
  while (t < 256 && t * 4 < d) t *= 2;
  return t;
}

/**
 * Values per thread a norm keeps in registers between its two passes (rows up to 256 x 8 = 2,048 wide):
 * re-reading them from memory after the reduction left one workgroup per row waiting on loads one at a time
 * (11.5 us for a 1,792-wide row on the H200, the decoding step's third-largest cost at the 972M shape).
 */
const MAX_HELD = 8;

/** One workgroup per row: [res = x + delta;] sum of squares (tree), rstd, y = (res rstd) w. */
export function addRmsNormShader(p: NormParams): string {
  const W = rowThreads(p.d), P = Math.ceil(p.d / W);
  return cached(`addRmsNorm ${JSON.stringify(p)}`, () =>
    `${
      declare([
        ["x", "read", "f32"],
        ...(p.add ? [["delta", "read", "f32"], ["res", "read_write", "f32"]] as Binding[] : []),
        ["w", "read", "f32"],
        ["y", "read_write", "f32"],
        ["rstd", "read_write", "f32"],
      ])
    }
var<workgroup> red: array<f32, ${W}>;
@compute @workgroup_size(${W}) fn main(${GROUP_ARGS}) {
  let row = wg.x + wg.y * nwg.x; // uniform in the workgroup
  if (row >= ${p.rows}u) { return; }
  let o = row * ${p.d}u;
  var sq = 0.0;
  ${
      P <= MAX_HELD
        ? `var held: array<f32, ${P}>;
  for (var i = 0u; i < ${P}u; i++) {
    let c = lid + i * ${W}u;
    if (c < ${p.d}u) {
      ${p.add ? "let v = x[o + c] + delta[o + c]; res[o + c] = v;" : "let v = x[o + c];"}
      held[i] = v;
      sq += v * v;
    }
  }`
        : `for (var c = lid; c < ${p.d}u; c += ${W}u) {
    ${p.add ? "let v = x[o + c] + delta[o + c]; res[o + c] = v;" : "let v = x[o + c];"}
    sq += v * v;
  }`
    }
  red[lid] = sq;
  workgroupBarrier();
  ${treeReduce("red", W, "+")}
  let r = 1.0 / sqrt(red[0] / ${p.d}.0 + ${p.eps});
  if (lid == 0u) { rstd[row] = r; }
  ${
      P <= MAX_HELD
        ? `for (var i = 0u; i < ${P}u; i++) {
    let c = lid + i * ${W}u;
    if (c < ${p.d}u) { y[o + c] = (held[i] * r) * w[c]; }
  }`
        : `for (var c = lid; c < ${p.d}u; c += ${W}u) { y[o + c] = (${
          p.add ? "res" : "x"
        }[o + c] * r) * w[c]; }`
    }
}`);
}

export function addRmsNorm<B>(
  d: Dispatcher<B>,
  p: NormParams,
  b: { x: B; delta?: B; res?: B; w: B; y: B; rstd: B },
): void {
  if (p.add && (b.delta === undefined || b.res === undefined)) {
    throw new Error("addRmsNorm: add needs delta and res");
  }
  d.dispatch(
    "addRmsNorm",
    addRmsNormShader(p),
    [b.x, ...(p.add ? [b.delta!, b.res!] : []), b.w, b.y, b.rstd],
    itemGroups(p.rows),
  );
}

/** Rows per workgroup of the norm backward: enough workgroups (about 1024) with few partial rows. */
export function normBlockRows(rows: number): number {
  return Math.max(1, Math.min(64, Math.floor(rows / 1024)));
}

/**
 * Norm backward, pass 1: a workgroup per block of rows; each thread keeps its columns' x rstd, dy, dy w
 * in registers for the row's dot product (a tree over the workgroup), writes dx (added into dx with
 * `accumulate`), and sums dw over its block's rows into partials (blocks, d).
 */
export function rmsNormBackwardShader(p: NormGradParams): string {
  const W = rowThreads(p.d), CPT = Math.ceil(p.d / W), RB = normBlockRows(p.rows);
  const cols = [...Array(CPT).keys()];
  return cached(`rmsNormBackward ${JSON.stringify(p)}`, () =>
    `${
      declare([
        ["x", "read", "f32"],
        ["w", "read", "f32"],
        ["rstd", "read", "f32"],
        ["dy", "read", "f32"],
        ["dx", "read_write", "f32"],
        ["partials", "read_write", "f32"],
      ])
    }
var<workgroup> red: array<f32, ${W}>;
@compute @workgroup_size(${W}) fn main(${GROUP_ARGS}) {
  let blk = wg.x + wg.y * nwg.x; // uniform in the workgroup
  ${
      cols.map((j) => `var dw${j} = 0.0; let c${j} = lid + ${j * W}u; let ok${j} = c${j} < ${p.d}u;`).join(
        "\n  ",
      )
    }
  for (var i = 0u; i < ${RB}u; i++) {
    let row = blk * ${RB}u + i;
    if (row >= ${p.rows}u) { break; }
    let o = row * ${p.d}u; let r = rstd[row];
    ${
      cols.map((j) =>
        `var xh${j} = 0.0; var dy${j} = 0.0; var g${j} = 0.0;
    if (ok${j}) { xh${j} = x[o + c${j}] * r; dy${j} = dy[o + c${j}]; g${j} = dy${j} * w[c${j}]; }`
      ).join("\n    ")
    }
    red[lid] = ${cols.map((j) => `g${j} * xh${j}`).join(" + ")};
    workgroupBarrier();
    ${treeReduce("red", W, "+")}
    let mean = red[0] / ${p.d}.0;
    workgroupBarrier(); // everyone has read red[0] before the next row writes red
    ${
      cols.map((j) =>
        `if (ok${j}) { let v = r * (g${j} - xh${j} * mean); dx[o + c${j}] = ${
          p.accumulate ? `dx[o + c${j}] + v` : "v"
        }; dw${j} += dy${j} * xh${j}; }`
      ).join("\n    ")
    }
  }
  if (blk * ${RB}u < ${p.rows}u) {
    ${cols.map((j) => `if (ok${j}) { partials[blk * ${p.d}u + c${j}] = dw${j}; }`).join("\n    ")}
  }
}`);
}

/**
 * out[c] = sum over p < parts of partials[p cols + c]. A workgroup per 16 columns: 16 threads per column
 * each sum every 16th part (four independent chains), then one thread adds the 16 sums in order. One
 * thread per column (the earlier kernel) summed 1,024 parts in one dependent chain over 4 to 8
 * workgroups: 200 us a call on the H200, 18% of the byte Transformer's d256x4 step.
 */
export function columnSumShader(parts: number, cols: number): string {
  return cached(
    `columnSum ${parts} ${cols}`,
    () =>
      `${declare([["partials", "read", "f32"], ["out", "read_write", "f32"]])}
var<workgroup> red: array<f32, 256>;
@compute @workgroup_size(256) fn main(${GROUP_ARGS}) {
  let c = (wg.x + wg.y * nwg.x) * 16u + lid % 16u; let s = lid / 16u;
  let col = min(c, ${cols - 1}u);
  var s0 = 0.0; var s1 = 0.0; var s2 = 0.0; var s3 = 0.0;
  var p = s;
  for (; p + 48u < ${parts}u; p += 64u) {
    s0 += partials[p * ${cols}u + col]; s1 += partials[(p + 16u) * ${cols}u + col];
    s2 += partials[(p + 32u) * ${cols}u + col]; s3 += partials[(p + 48u) * ${cols}u + col];
  }
  for (; p < ${parts}u; p += 16u) { s0 += partials[p * ${cols}u + col]; }
  red[lid] = (s0 + s1) + (s2 + s3);
  workgroupBarrier();
  if (s == 0u && c < ${cols}u) {
    var sum = 0.0;
    for (var i = 0u; i < 16u; i++) { sum += red[i * 16u + lid]; }
    out[c] = sum;
  }
}`,
  );
}

/** Workgroups of columnSumShader for `cols` columns. */
export function columnSumGroups(cols: number): [number, number, number] {
  return flatGroups(Math.ceil(cols / 16), 1);
}

export function rmsNormBackward<B>(
  d: Dispatcher<B>,
  p: NormGradParams,
  b: { x: B; w: B; rstd: B; dy: B; dx: B; dw: B },
): void {
  const blocks = Math.ceil(p.rows / normBlockRows(p.rows));
  const partials = d.alloc(blocks * p.d, "norm dw partials");
  d.dispatch(
    "rmsNormBackward",
    rmsNormBackwardShader(p),
    [b.x, b.w, b.rstd, b.dy, b.dx, partials],
    itemGroups(blocks),
  );
  d.dispatch("columnSum", columnSumShader(blocks, p.d), [partials, b.dw], columnSumGroups(p.d));
  d.release(partials);
}
