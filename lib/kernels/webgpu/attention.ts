/**
 * Causal attention kernels for WebGPU (twins and layout: ../js/attention.ts). Tiled so that the (L, L)
 * scores are never stored: the forward walks key tiles with an online softmax and keeps only each query's
 * log-sum-exp; the backward recomputes each probability from it, one kernel for dq (a thread per query,
 * key tiles in workgroup memory) and one for dk and dv (a thread per key, query tiles in workgroup memory),
 * so every output is written by one thread and nothing is accumulated across workgroups.
 */
import { type AttentionParams, batchStrides, checkAttention } from "../js/attention.ts";
import type { Dispatcher } from "./dispatcher.ts";
import { type Binding, cached, declare, GROUP_ARGS, itemGroups } from "./wgsl.ts";

/** Queries (forward, dq) or keys (dk, dv) per workgroup: a thread each. */
const ROWS = 64;
/** The most floats per head: each thread holds a few vectors of hd in registers. */
export const MAX_HEAD_DIM = 512;

/** Rows of the other side per tile: a power of two up to 32 with two tiles of hd fitting 16 KB. */
function tileRows(hd: number): number {
  let t = 32;
  while (t > 1 && 2 * t * hd * 4 + 8 * t > 16384) t /= 2;
  return t;
}

/** WGSL constants and index functions shared by the three kernels. */
function prelude(p: AttentionParams): string {
  const f = (x: number) => `${x}`, bs = batchStrides(p);
  return `const HD = ${f(p.hd)}u; const LQ = ${f(p.lq)}u; const LK = ${f(p.lk)}u; const H = ${f(p.heads)}u;
const QPOS0 = ${f(p.qPos0)}; const KPOS0 = ${f(p.kPos0)}; const WIN = ${f(p.window)};
const SCALE = ${1 / Math.sqrt(p.hd)};
fn qAt(b: u32, h: u32, t: u32) -> u32 { return b * ${bs.q}u + t * ${p.qStride}u + ${p.qOff}u + h * HD; }
fn kAt(b: u32, h: u32, t: u32) -> u32 { return b * ${bs.k}u + t * ${p.kStride}u + ${p.kOff}u + h * HD; }
fn vAt(b: u32, h: u32, t: u32) -> u32 { return b * ${bs.v}u + t * ${p.vStride}u + ${p.vOff}u + h * HD; }
fn oAt(b: u32, h: u32, t: u32) -> u32 { return b * ${bs.o}u + t * ${p.oStride}u + ${p.oOff}u + h * HD; }
// keys [first, end) that query i sees
fn keysFrom(i: u32) -> i32 {
  let qpos = QPOS0 + i32(i);
  return select(0, max(0, qpos - WIN + 1 - KPOS0), WIN > 0);
}
fn keysEnd(i: u32) -> i32 { return min(i32(LK), QPOS0 + i32(i) - KPOS0 + 1); }
// queries [first, end) that see key j
fn queriesFrom(j: u32) -> i32 { return max(0, KPOS0 + i32(j) - QPOS0); }
fn queriesEnd(j: u32) -> i32 {
  return select(i32(LQ), min(i32(LQ), KPOS0 + i32(j) + WIN - QPOS0), WIN > 0);
}`;
}

/** Which (sequence, head) and which tile of rows a workgroup takes. */
const placement = (rows: string) =>
  `let item = wg.x + wg.y * nwg.x;
  let tiles = (${rows} + ${ROWS - 1}u) / ${ROWS}u;
  let bh = item / tiles; let tile = item % tiles;
  let b = bh / H; let h = bh % H;
  let r0 = tile * ${ROWS}u; let rLast = min(r0 + ${ROWS - 1}u, ${rows} - 1u);
  let r = r0 + lid; let valid = r < ${rows}; let rr = min(r, ${rows} - 1u);`;

/**
 * WGSL opening the walk over the workgroup's key tiles (forward and dq): each tile of T keys and values
 * loaded into ks, vs by all threads, then a loop over its keys t (j = j0 + t) that the caller's code
 * continues and closes with two braces and a barrier.
 */
function keyTiles(T: number, hd: number): string {
  return `for (var j0 = keysFrom(r0); j0 < wEnd; j0 += ${T}) {
    for (var e = lid; e < ${T * hd}u; e += ${ROWS}u) {
      let j = u32(j0) + e / HD; let c = e % HD;
      if (i32(j) < wEnd) { ks[e] = k[kAt(b, h, j) + c]; vs[e] = v[vAt(b, h, j) + c]; }
    }
    workgroupBarrier();
    let n = min(${T}, wEnd - j0);
    for (var t = 0; t < n; t++) {
      let j = j0 + t;`;
}

/** The backward kernels' inputs: the forward's q, k, v, o, lse and the gradient dO. */
const BACKWARD_INPUTS: Binding[] = [
  ["q", "read", "f32"],
  ["k", "read", "f32"],
  ["v", "read", "f32"],
  ["o", "read", "f32"],
  ["lse", "read", "f32"],
  ["dO", "read", "f32"],
];

function forwardShader(p: AttentionParams): string {
  const T = tileRows(p.hd);
  return cached(
    `attention ${JSON.stringify(p)}`,
    () =>
      `${
        declare([
          ["q", "read", "f32"],
          ["k", "read", "f32"],
          ["v", "read", "f32"],
          ["o", "read_write", "f32"],
          [
            "lse",
            "read_write",
            "f32",
          ],
        ])
      }
${prelude(p)}
var<workgroup> ks: array<f32, ${T * p.hd}>;
var<workgroup> vs: array<f32, ${T * p.hd}>;
@compute @workgroup_size(${ROWS}) fn main(${GROUP_ARGS}) {
  ${placement("LQ")}
  let lo = keysFrom(rr); let hi = keysEnd(rr);
  var qr: array<f32, ${p.hd}>;
  var acc: array<f32, ${p.hd}>;
  let q0 = qAt(b, h, rr);
  for (var c = 0u; c < HD; c++) { qr[c] = q[q0 + c]; acc[c] = 0.0; }
  var m = -3.0e38; var l = 0.0;
  // the tile's queries see keys from its first query's first to its last query's end
  let wEnd = keysEnd(rLast);
  ${keyTiles(T, p.hd)}
      if (j >= lo && j < hi) {
        var dot = 0.0;
        for (var c = 0u; c < HD; c++) { dot += qr[c] * ks[u32(t) * HD + c]; }
        let s = dot * SCALE;
        if (s > m) {
          let corr = exp(m - s);
          l = l * corr;
          for (var c = 0u; c < HD; c++) { acc[c] = acc[c] * corr; }
          m = s;
        }
        let w = exp(s - m);
        l += w;
        for (var c = 0u; c < HD; c++) { acc[c] += w * vs[u32(t) * HD + c]; }
      }
    }
    workgroupBarrier();
  }
  if (valid) {
    let o0 = oAt(b, h, r);
    for (var c = 0u; c < HD; c++) { o[o0 + c] = acc[c] / l; }
    lse[bh * LQ + r] = m + log(l);
  }
}`,
  );
}

function dqShader(p: AttentionParams): string {
  const T = tileRows(p.hd);
  return cached(`attention dq ${JSON.stringify(p)}`, () =>
    `${
      declare([
        ...BACKWARD_INPUTS,
        ["dq", "read_write", "f32"],
      ])
    }
${prelude(p)}
var<workgroup> ks: array<f32, ${T * p.hd}>;
var<workgroup> vs: array<f32, ${T * p.hd}>;
@compute @workgroup_size(${ROWS}) fn main(${GROUP_ARGS}) {
  ${placement("LQ")}
  let lo = keysFrom(rr); let hi = keysEnd(rr);
  var qr: array<f32, ${p.hd}>;
  var dor: array<f32, ${p.hd}>;
  var acc: array<f32, ${p.hd}>;
  let q0 = qAt(b, h, rr); let o0 = oAt(b, h, rr);
  var D = 0.0;
  for (var c = 0u; c < HD; c++) {
    qr[c] = q[q0 + c]; dor[c] = dO[o0 + c]; acc[c] = 0.0;
    D += dor[c] * o[o0 + c];
  }
  let L = lse[bh * LQ + rr];
  let wEnd = keysEnd(rLast);
  ${keyTiles(T, p.hd)}
      if (j >= lo && j < hi) {
        var s = 0.0; var dp = 0.0;
        for (var c = 0u; c < HD; c++) {
          s += qr[c] * ks[u32(t) * HD + c];
          dp += dor[c] * vs[u32(t) * HD + c];
        }
        let ds = exp(s * SCALE - L) * (dp - D);
        for (var c = 0u; c < HD; c++) { acc[c] += ds * ks[u32(t) * HD + c]; }
      }
    }
    workgroupBarrier();
  }
  if (valid) { for (var c = 0u; c < HD; c++) { dq[q0 + c] = acc[c] * SCALE; } }
}`);
}

function dkdvShader(p: AttentionParams): string {
  const T = tileRows(p.hd);
  return cached(`attention dkdv ${JSON.stringify(p)}`, () =>
    `${
      declare([
        ...BACKWARD_INPUTS,
        ["dk", "read_write", "f32"],
        ["dv", "read_write", "f32"],
      ])
    }
${prelude(p)}
var<workgroup> qs: array<f32, ${T * p.hd}>;
var<workgroup> dos: array<f32, ${T * p.hd}>;
var<workgroup> ls: array<f32, ${T}>;
var<workgroup> Ds: array<f32, ${T}>;
@compute @workgroup_size(${ROWS}) fn main(${GROUP_ARGS}) {
  ${placement("LK")}
  let lo = queriesFrom(rr); let hi = queriesEnd(rr);
  var kr: array<f32, ${p.hd}>;
  var vr: array<f32, ${p.hd}>;
  var dkr: array<f32, ${p.hd}>;
  var dvr: array<f32, ${p.hd}>;
  let k0 = kAt(b, h, rr); let v0 = vAt(b, h, rr);
  for (var c = 0u; c < HD; c++) { kr[c] = k[k0 + c]; vr[c] = v[v0 + c]; dkr[c] = 0.0; dvr[c] = 0.0; }
  // the tile's keys are seen by queries from its first key's first to its last key's end
  let wEnd = queriesEnd(rLast);
  for (var i0 = queriesFrom(r0); i0 < wEnd; i0 += ${T}) {
    for (var e = lid; e < ${T * p.hd}u; e += ${ROWS}u) {
      let i = u32(i0) + e / HD; let c = e % HD;
      if (i32(i) < wEnd) { qs[e] = q[qAt(b, h, i) + c]; dos[e] = dO[oAt(b, h, i) + c]; }
    }
    if (lid < ${T}u && i0 + i32(lid) < wEnd) {
      let i = u32(i0) + lid; let o0 = oAt(b, h, i);
      var D = 0.0;
      for (var c = 0u; c < HD; c++) { D += dO[o0 + c] * o[o0 + c]; }
      Ds[lid] = D; ls[lid] = lse[bh * LQ + i];
    }
    workgroupBarrier();
    let n = min(${T}, wEnd - i0);
    for (var t = 0; t < n; t++) {
      let i = i0 + t;
      if (i >= lo && i < hi) {
        var s = 0.0; var dp = 0.0;
        for (var c = 0u; c < HD; c++) {
          s += qs[u32(t) * HD + c] * kr[c];
          dp += dos[u32(t) * HD + c] * vr[c];
        }
        let pj = exp(s * SCALE - ls[t]);
        let ds = pj * (dp - Ds[t]);
        for (var c = 0u; c < HD; c++) {
          dvr[c] += pj * dos[u32(t) * HD + c];
          dkr[c] += ds * qs[u32(t) * HD + c];
        }
      }
    }
    workgroupBarrier();
  }
  if (valid) {
    for (var c = 0u; c < HD; c++) { dk[k0 + c] = dkr[c] * SCALE; dv[v0 + c] = dvr[c]; }
  }
}`);
}

function checked(p: AttentionParams): void {
  checkAttention(p);
  if (p.hd > MAX_HEAD_DIM) {
    throw new Error(`attention: at most ${MAX_HEAD_DIM} floats per head (got ${p.hd})`);
  }
}

/** Forward FLOPs: two products of (lq, hd) by (hd, visible keys) per head, about half the keys when causal. */
const flops = (p: AttentionParams) => 2 * 2 * p.batch * p.heads * p.lq * p.lk * p.hd;

/** o and lse from q, k, v (../js/attention.ts attention). */
export function attention<B>(
  d: Dispatcher<B>,
  p: AttentionParams,
  b: { q: B; k: B; v: B; o: B; lse: B },
): void {
  checked(p);
  const groups = itemGroups(p.batch * p.heads * Math.ceil(p.lq / ROWS));
  d.dispatch("attention", forwardShader(p), [b.q, b.k, b.v, b.o, b.lse], groups, flops(p));
}

/** dq, dk, dv from the forward's inputs, o, lse and dO (../js/attention.ts attentionBackward). */
export function attentionBackward<B>(
  d: Dispatcher<B>,
  p: AttentionParams,
  b: { q: B; k: B; v: B; o: B; lse: B; dO: B; dq: B; dk: B; dv: B },
): void {
  checked(p);
  const bh = p.batch * p.heads;
  d.dispatch(
    "attentionDq",
    dqShader(p),
    [b.q, b.k, b.v, b.o, b.lse, b.dO, b.dq],
    itemGroups(bh * Math.ceil(p.lq / ROWS)),
    flops(p),
  );
  d.dispatch(
    "attentionDkDv",
    dkdvShader(p),
    [b.q, b.k, b.v, b.o, b.lse, b.dO, b.dk, b.dv],
    itemGroups(bh * Math.ceil(p.lk / ROWS)),
    1.5 * flops(p),
  );
}
