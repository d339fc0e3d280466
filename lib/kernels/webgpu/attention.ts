/**
 * Causal attention kernels for WebGPU (twins and layout: ../js/attention.ts). Tiled so that the (L, L)
 * scores are never stored: the forward walks key tiles with an online softmax and keeps only each query's
 * log-sum-exp; the backward recomputes each probability from it, one kernel for dq (query tiles stay, key
 * tiles stream through workgroup memory) and one for dk and dv (key tiles stay, query tiles stream), so
 * every output is written by one thread and nothing is accumulated across workgroups.
 *
 * Three implementations of each kernel:
 * - "tiled" (heads of 32 and 64 floats; 96 where 48 KB of workgroup memory allow): a workgroup of 64
 *   threads holds R rows of one side (queries: forward, dq; keys: dk, dv) and streams tiles of C rows of
 *   the other (attentionTiles: 32, or 16 where the memory is short). Thread (ty, tx) of the 8 x 8 grid owns
 *   the RT = R / 8 rows ty + 8 r and, in each tile, the C / 8 rows tx + 8 j: every product is a small
 *   register-tiled GEMM over vec4s staged row-major in workgroup memory (a row padded by one vec4, so the 8
 *   rows a warp reads sit on distinct banks), RT x C/8 dot products per RT + C/8 vec4 reads. A tile's global
 *   reads are issued into registers one tile ahead, so they are in flight while the tile before is
 *   multiplied. Probabilities (p for p v, ds for ds k, both for dv and dk) go through workgroup memory as
 *   RT / 4 vec4s per (streamed row, ty): the thread's rows, 4 a vec4. Row maxima and sums are reduced over
 *   the 8 threads of a row through workgroup memory. D = <dO, o> is computed once, by the dq kernel, into
 *   scratch the dk, dv kernel reads. Mesa's lavapipe offers 32 KB, the H200 48 KB. Two tilings, chosen by
 *   setAttentionRows; the same code writes both:
 *   - R = 32 (RT = 4), where 64 does not fit (setAttentionRows "auto", the default). CI runs heads of 32 with the H200's tiles (32 everywhere) and heads of
 *     64 with the short ones. Measured on the H200 (lib/bench/engine.ts --profile, d512 x 8 Transformer,
 *     batch 16, length 2048, the 8 layers; data/results/bench/engine.jsonl): forward 620 ms, dq 830, dk dv
 *     1,542 with the thread-per-row kernels; 95, 102, 139 ms tiled (10.7-11.9 TFLOP/s counted on every
 *     (query, key) pair, about half that on the visible ones). Removing parts of the forward one at a time
 *     (a scratch experiment, not recorded) showed much of its time outside the two products: staging, the
 *     softmax's exchanges and barriers, hence the next tiling.
 *   - R = 64 (RT = 8): each streamed vec4 read serves 8 dot products instead of 4, and each tile (with its
 *     barriers and its softmax exchange) serves twice the rows, for twice the stationary rows in workgroup
 *     memory. Heads of 32 fit 32 KB; heads of 64 only 48 KB (dq's q and dO rows alone take 34 KB), and there
 *     only with dq's tiles of 16 keys and dk, dv passing p and ds through one array in turn (two more
 *     barriers a tile; two arrays would take 51,840 bytes). To fit, dq passes D's row sums through ds's
 *     array rather than an array of their own. Even so, faster on the H200 at heads of 64 (the step 8% faster:
 *     see AttentionRows), so the default wherever it fits. CI runs it at heads of 32, also planned for 28 KB
 *     so that dk, dv take the one-array exchange.
 * - "short" (at most 32 queries and keys, any head): see shortForwardShader.
 * - "rows" (any head size): a thread per query (or key) with its vectors in registers. The reference the
 *   tiled one replaced; kept for the rest (long sequences with heads of other sizes) and tested.
 */
import {
  type AttentionParams,
  batchStrides,
  checkAttention,
  type DecodeAttentionParams,
} from "../js/attention.ts";
import type { Dispatcher } from "./dispatcher.ts";
import { type Binding, cached, declare, GROUP_ARGS, itemGroups, treeReduce } from "./wgsl.ts";

/** "rows" kernels: queries (forward, dq) or keys (dk, dv) per workgroup: a thread each. */
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

/** The forward kernels' bindings: q, k, v in; o and lse out. */
const FORWARD_BINDINGS: Binding[] = [
  ["q", "read", "f32"],
  ["k", "read", "f32"],
  ["v", "read", "f32"],
  ["o", "read_write", "f32"],
  ["lse", "read_write", "f32"],
];

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
      `${declare(FORWARD_BINDINGS)}
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

/** Which kernels attention() records: "auto" (tiled where the head size and the device allow), or one. */
export type AttentionImpl = "auto" | "tiled" | "short" | "rows";
let attentionImpl: AttentionImpl = "auto";
/** Chooses the kernels recorded from now on (tests run both; benchmarks compare them). */
export function setAttentionImpl(impl: AttentionImpl): void {
  if (!["auto", "tiled", "short", "rows"].includes(impl)) {
    throw new Error(`setAttentionImpl: auto, tiled, short or rows (got ${impl})`);
  }
  attentionImpl = impl;
}

export function getAttentionImpl(): AttentionImpl {
  return attentionImpl;
}

/** Tiled kernels: the workgroup's grid of thread rows and columns. */
const TY = 8, TX = 8, THREADS = TY * TX;

/**
 * Tiled kernels: stationary rows per workgroup, R (RT = R / TY per thread). 64 makes each streamed vec4 read
 * from workgroup memory serve 8 dot products instead of 4 and halves the tiles streamed (and their
 * barriers) per row, but needs more workgroup memory (attentionTiles). "auto" (the default) takes 64 where
 * its tiles fit the device and 32 elsewhere: on the H200 (d512 x 8 Transformer, heads of 64, batch 16,
 * length 2048, the 8 layers; engine.jsonl, one call) 64 rows took the forward from 95.2 to 78.5 ms, dq from
 * 102.4 to 93.5 and dk, dv from 138.9 to 119.0, the step from 602.5 to 557.0 ms, even with dq's tiles of 16
 * and dk, dv's one exchange array that a head of 64 needs there.
 */
export type AttentionRows = 32 | 64;
export type AttentionRowsSetting = AttentionRows | "auto";
let attentionRows: AttentionRowsSetting = "auto";
/** Chooses the tiled kernels' stationary rows per workgroup from now on (tests run both). */
export function setAttentionRows(rows: AttentionRowsSetting): void {
  if (rows !== 32 && rows !== 64 && rows !== "auto") {
    throw new Error(`setAttentionRows: 32, 64 or auto (got ${rows})`);
  }
  attentionRows = rows;
}

export function getAttentionRows(): AttentionRowsSetting {
  return attentionRows;
}

/**
 * Workgroup memory (bytes) the tiled kernels plan with when below the device's, or undefined: the device's.
 * Lets a test run the tiles a smaller device would get (dk, dv's one exchange array, below).
 */
let storageCap: number | undefined;
export function setAttentionStorageCap(bytes: number | undefined): void {
  storageCap = bytes;
}

/**
 * The tiled kernels' shapes: R stationary rows, the streamed rows per tile of each kernel (the forward's
 * keys, dq's keys, dk and dv's queries), and whether dk, dv pass p and ds through one workgroup array in
 * turn (two more barriers a tile) instead of two arrays at once.
 */
export type AttentionTiles = {
  rows: AttentionRows;
  forward: number;
  dq: number;
  dkdv: number;
  dkdvOneExchange: boolean;
};

/**
 * The tiled kernels' shapes for heads of hd floats in `storage` bytes of workgroup memory, at R rows a
 * workgroup (the setting unless given; auto: 64 where it fits, else 32), or undefined: each kernel takes the largest tile of 32 and 16 whose
 * workgroup memory (bytes, as the shaders declare it) fits.
 * R = 32: at a head of 64, 32, 16, 16 in Mesa's 32 KB; 32, 32, 32 in the H200's 48 KB. At a head of 32
 * every kernel takes 32 even in 32 KB, so CI runs both sizes.
 * R = 64: at a head of 32, 32, 16, 16 in 32 KB (24,064, 27,136 and 31,360 bytes); 32, 32, 32 in 48 KB
 * (24,064, 35,840, 44,288). At a head of 64 only in 48 KB: 32, 16, 16, dk and dv with one exchange array
 * (36,864, 47,616, 47,744 bytes); dq's q and dO rows alone take 34,816, so 32 KB serve none.
 */
export function attentionTiles(
  hd: number,
  storage: number,
  R: AttentionRowsSetting = attentionRows,
): AttentionTiles | undefined {
  if (R === "auto") return attentionTiles(hd, storage, 64) ?? attentionTiles(hd, storage, 32);
  if (hd % 32 !== 0 || hd > 128) return undefined;
  const row = (hd / 4 + 1) * 16; // a padded row of vec4s
  const probs = (C: number) => C * R * 4; // a float per (stationary, streamed) row of a tile: p or ds
  const bytes = {
    // q, k, v tiles; p goes through k's tile, made larger where a tile row holds less than a row of p's
    // vec4s (R = 64 at a head of 32); row maxima
    forward: (C: number) => R * row + C * Math.max(row, R * 4) + C * row + R * TX * 4,
    // q, dO rows; k, v tiles; ds; D's row sums (at R = 64 through ds's array, so a head of 64 fits 48 KB)
    dq: (C: number) => (2 * R + 2 * C) * row + probs(C) + (R === 32 ? R * TX * 4 : 0),
    // k, v rows; q, dO tiles; p and ds (one array in turn, or two); the tile's lse and D
    dkdv: (C: number, arrays: number) => (2 * R + 2 * C) * row + arrays * probs(C) + 2 * C * 4,
  };
  const pick = (f: (C: number) => number) => [32, 16].find((C) => f(C) <= storage);
  const forward = pick(bytes.forward), dq = pick(bytes.dq);
  let dkdv = pick((C) => bytes.dkdv(C, 2)), one = false;
  // one array: only where two do not fit at R = 64 (a head of 64 in 48 KB), so the 32-row kernels stay as
  // measured
  if (dkdv === undefined && R === 64) {
    dkdv = pick((C) => bytes.dkdv(C, 1));
    one = true;
  }
  return forward && dq && dkdv ? { rows: R, forward, dq, dkdv, dkdvOneExchange: one } : undefined;
}

/** Whether the tiled kernels serve these params with `storage` bytes of workgroup memory (R: the setting). */
export function tiledAttentionFits(
  p: AttentionParams,
  storage: number,
  R: AttentionRowsSetting = attentionRows,
): boolean {
  return attentionTiles(p.hd, storage, R) !== undefined;
}

/** The tiled kernels' shapes for these params on this device, or undefined: the "rows" kernels. */
function tiledTiles(d: Dispatcher<unknown>, p: AttentionParams) {
  if (attentionImpl === "rows") return undefined;
  const storage = Math.min(d.limits.maxComputeWorkgroupStorageSize, storageCap ?? Infinity);
  const tiles = attentionTiles(p.hd, storage);
  if (attentionImpl === "tiled" && !tiles) {
    throw new Error(
      `attention: the tiled kernels need a head of 32, 64, 96 or 128 floats whose tiles fit ${storage} bytes of workgroup memory (head ${p.hd}, ${attentionRows} rows a workgroup)`,
    );
  }
  return tiles;
}

/**
 * JS helpers writing unrolled WGSL: one line per (thread row r < RT, streamed row j < J, column group
 * g < G).
 */
const each = (n: number, f: (i: number) => string, sep = "\n    ") =>
  Array.from({ length: n }, (_, i) => f(i)).join(sep);

/**
 * WGSL shared by the tiled kernels: constants, the (sequence, head) and row tile of this workgroup (an
 * extra workgroup of a 2-d grid returns at once: uniform), the thread's place, and vec4 loaders.
 */
function tiledPrelude(p: AttentionParams, R: number, buffers: string[]): string {
  return `${prelude(p)}
const HD4 = ${p.hd / 4}u; const HD4P = ${p.hd / 4 + 1}u; const R = ${R}u; const TX = ${TX}u;
${
    buffers.map((x) =>
      `fn load4_${x}(a: u32) -> vec4<f32> { return vec4<f32>(${x}[a], ${x}[a + 1u], ${x}[a + 2u], ${x}[a + 3u]); }`
    ).join("\n")
  }`;
}

const tiledPlacement = (p: AttentionParams, rows: string) =>
  `let item = wg.x + wg.y * nwg.x;
  let tiles = (${rows} + R - 1u) / R;
  if (item >= ${p.batch * p.heads}u * tiles) { return; }
  let bh = item / tiles; let tile = item % tiles;
  let b = bh / H; let h = bh % H;
  let r0 = tile * R; let rLast = min(r0 + R - 1u, ${rows} - 1u);
  let tx = lid % TX; let ty = lid / TX;`;

/**
 * A tile of `n` rows of buffer `src` on its way to the padded row-major workgroup array `dst`, through
 * registers: `load(first, end)` issues the thread's share of global reads (rows from `first`, zeros from
 * `end` on; rows clamped, so every read is in bounds and nothing branches) into `${dst}_in${k}`, `store`
 * writes them to workgroup memory. Issued a tile ahead, the reads are in flight while the workgroup
 * computes the tile before (a loop that loaded and stored element by element waited on each read).
 * `at(row)` is the WGSL index of a row's first float.
 */
function tileLoader(dst: string, src: string, n: number, hd: number, at: (row: string) => string) {
  const K = (n * hd / 4) / THREADS; // hd % 32 == 0 and n >= 16: whole
  const place = (k: number) => `let e = lid + ${k * THREADS}u; let rr = e / HD4; let c4 = e % HD4;`;
  return {
    declare: each(K, (k) => `var ${dst}_in${k} = vec4<f32>(0.0);`, " "),
    load: (first: string, end: string) =>
      each(
        K,
        (k) =>
          `{ ${
            place(k)
          } let t = i32(${first}) + i32(rr); ${dst}_in${k} = select(vec4<f32>(0.0), load4_${src}(${
            at(`u32(min(t, ${end} - 1))`)
          } + 4u * c4), t < ${end}); }`,
      ),
    store: each(K, (k) => `{ ${place(k)} ${dst}[rr * HD4P + c4] = ${dst}_in${k}; }`),
  };
}

/**
 * WGSL opening the walk over tiles of C keys and values (forward, dq) from the workgroup's first visible key
 * to wEnd: each tile stored from the registers its reads went into, the next tile's reads then issued so
 * they land while this one is multiplied (the loop variable j0 is the tile's first key; the caller's code
 * continues the body and closes it).
 */
function keyTileLoop(hd: number, C: number): string {
  const kt = tileLoader("ks", "k", C, hd, (t) => `kAt(b, h, ${t})`);
  const vt = tileLoader("vs", "v", C, hd, (t) => `vAt(b, h, ${t})`);
  return `let wEnd = keysEnd(rLast);
  let first = keysFrom(r0);
  ${kt.declare}
  ${vt.declare}
  ${kt.load("first", "wEnd")}
  ${vt.load("first", "wEnd")}
  for (var j0 = first; j0 < wEnd; j0 += ${C}) {
    workgroupBarrier(); // the last tile's reads of the workgroup arrays are done
    ${kt.store}
    ${vt.store}
    workgroupBarrier();
    ${kt.load(`j0 + ${C}`, "wEnd")}
    ${vt.load(`j0 + ${C}`, "wEnd")}`;
}

/** WGSL staging a tile at once (loads, then stores): the stationary rows. */
function stage(
  dst: string,
  src: string,
  n: number,
  hd: number,
  first: string,
  end: string,
  at: (row: string) => string,
) {
  const t = tileLoader(dst, src, n, hd, at);
  return `${t.declare}\n  ${t.load(first, end)}\n  ${t.store}`;
}

/**
 * WGSL accumulating dot products of the thread's RT stationary rows (workgroup array `a`) with its J
 * streamed rows (array `b`) into f32 variables `${out}_r_j`, over the head's vec4s.
 */
function dots(out: string, a: string, b: string, RT: number, J: number): string {
  return `for (var c4 = 0u; c4 < HD4; c4++) {
      ${each(RT, (r) => `let ${a}${r} = ${a}[(ty + ${8 * r}u) * HD4P + c4];`, " ")}
      ${each(J, (j) => `let ${b}${j} = ${b}[(tx + ${8 * j}u) * HD4P + c4];`, " ")}
      ${each(RT, (r) => each(J, (j) => `${out}_${r}_${j} += dot(${a}${r}, ${b}${j});`, " "))}
    }`;
}

/**
 * WGSL index of a probability exchange's vec4 holding rows 4 k .. 4 k + 3 of thread row ty for streamed row
 * t (WGSL) of a tile of C: RT / 4 planes of C x TY vec4s, so a thread of 4 rows has the one plane.
 */
const exchangeAt = (t: string, k: number, C: number) => `${k ? `${k * C * TY}u + ` : ""}${t} * ${TY}u + ty`;

/**
 * WGSL adding, over the tile's C streamed rows t, w(t) v(t) to the thread's accumulators `${acc}_r_g`
 * (vec4: row r, columns 4 (tx + 8 g)): w's RT rows are the RT / 4 vec4s `w_k` of the exchange `${w}`
 * (exchangeAt), v's row the padded workgroup array `${v}`.
 */
function accumulate(acc: string, w: string, v: string, C: number, G: number, RT: number): string {
  return `for (var t = 0u; t < ${C}u; t++) {
      ${each(RT / 4, (k) => `let w${k} = ${w}[${exchangeAt("t", k, C)}];`, " ")}
      ${each(G, (g) => `let v${g} = ${v}[t * HD4P + tx + ${8 * g}u];`, " ")}
      ${each(RT, (r) => each(G, (g) => `${acc}_${r}_${g} += w${Math.floor(r / 4)}[${r % 4}] * v${g};`, " "))}
    }`;
}

/** WGSL declaring zeroed f32 variables name_r_j (r < RT, j < J) or vec4 ones. */
const zeros = (name: string, RT: number, J: number, vec = false) =>
  each(RT, (r) => each(J, (j) => `var ${name}_${r}_${j} = ${vec ? "vec4<f32>(0.0)" : "0.0"};`, " "), "\n  ");

/**
 * WGSL writing the thread's RT values of column j of `name` (name_r_j) to the exchange `dst` of a tile of C
 * (exchangeAt, streamed row tx + 8 j): a vec4 per 4 rows.
 */
const transpose = (dst: string, name: string, C: number, J: number, RT: number) =>
  each(
    J,
    (j) =>
      each(
        RT / 4,
        (k) =>
          `${dst}[${exchangeAt(`(tx + ${8 * j}u)`, k, C)}] = vec4<f32>(${
            each(4, (r) => `${name}_${4 * k + r}_${j}`, ", ")
          });`,
      ),
  );

/** WGSL writing the thread's row r of `acc` (vec4s acc_r_g, times `scale`) at `base` + its columns in `buf`. */
const writeRow = (buf: string, base: string, acc: string, r: number, G: number, scale = "") =>
  each(
    G,
    (g) =>
      `{ let a = ${base} + 4u * (tx + ${
        8 * g
      }u); let y = ${acc}_${r}_${g}${scale}; ${buf}[a] = y.x; ${buf}[a + 1u] = y.y; ${buf}[a + 2u] = y.z; ${buf}[a + 3u] = y.w; }`,
  );

/**
 * The thread's RT stationary rows x_r = r0 + ty + 8 r, and the range of the other side each sees ([lo, hi),
 * empty past the end).
 */
const rowRanges = (x: string, rows: string, from: string, to: string, RT: number) =>
  each(
    RT,
    (r) =>
      `let ${x}${r} = r0 + ty + ${
        8 * r
      }u; let lo${r} = ${from}(min(${x}${r}, ${rows} - 1u)); let hi${r} = select(lo${r}, ${to}(${x}${r}), ${x}${r} < ${rows});`,
    "\n  ",
  );

function tiledForwardShader(p: AttentionParams, R: number, C: number): string {
  const RT = R / TY, J = C / TX, G = p.hd / 4 / TX;
  return cached(
    `attention tiled ${R}x${C} ${JSON.stringify(p)}`,
    () =>
      `${declare(FORWARD_BINDINGS)}
${tiledPrelude(p, R, ["q", "k", "v"])}
var<workgroup> qs: array<vec4<f32>, ${R * (p.hd / 4 + 1)}>;
var<workgroup> ks: array<vec4<f32>, ${C * Math.max(p.hd / 4 + 1, R / 4)}>;
var<workgroup> vs: array<vec4<f32>, ${C * (p.hd / 4 + 1)}>;
var<workgroup> red: array<f32, ${R * TX}>;
@compute @workgroup_size(${THREADS}) fn main(${GROUP_ARGS}) {
  ${tiledPlacement(p, "LQ")}
  ${stage("qs", "q", R, p.hd, "r0", "i32(LQ)", (t) => `qAt(b, h, ${t})`)}
  // the thread's queries i_r see keys [lo_r, hi_r); m, l: their running maximum score and sum
  ${rowRanges("i", "LQ", "keysFrom", "keysEnd", RT)}
  ${each(RT, (r) => `var m${r} = -3.0e38; var l${r} = 0.0;`, " ")}
  ${zeros("acc", RT, G, true)}
  ${keyTileLoop(p.hd, C)}
    ${zeros("s", RT, J)}
    ${dots("s", "qs", "ks", RT, J)}
    // scaled scores, -3e38 where the key is not visible; each thread's maximum per row, then the row's
    ${
        each(RT, (r) =>
          `var mx${r} = -3.0e38;
    ${
            each(
              J,
              (j) =>
                `{ let j = j0 + i32(tx + ${
                  8 * j
                }u); s_${r}_${j} = select(-3.0e38, s_${r}_${j} * SCALE, j >= lo${r} && j < hi${r}); mx${r} = max(mx${r}, s_${r}_${j}); }`,
              "\n    ",
            )
          }
    red[(ty + ${8 * r}u) * TX + tx] = mx${r};`)
      }
    workgroupBarrier();
    ${
        each(RT, (r) =>
          `{
      var mt = m${r};
      for (var x = 0u; x < TX; x++) { mt = max(mt, red[(ty + ${8 * r}u) * TX + x]); }
      let corr = exp(m${r} - mt); m${r} = mt; l${r} *= corr;
      ${each(G, (g) => `acc_${r}_${g} *= corr;`, " ")}
      ${
            each(
              J,
              (j) =>
                `s_${r}_${j} = select(0.0, exp(s_${r}_${j} - mt), s_${r}_${j} > -1.0e38); l${r} += s_${r}_${j};`,
              " ",
            )
          }
    }`)
      }
    // p goes through ks (declared large enough for a tile of p): every thread's reads of k ended before the
    // row-maximum barrier above
    ${transpose("ks", "s", C, J, RT)}
    workgroupBarrier();
    ${accumulate("acc", "ks", "vs", C, G, RT)}
  }
  // the row sums over the 8 threads of a row, then o = acc / l and lse = m + log l
  workgroupBarrier();
  ${each(RT, (r) => `red[(ty + ${8 * r}u) * TX + tx] = l${r};`, " ")}
  workgroupBarrier();
  ${
        each(RT, (r) =>
          `if (i${r} < LQ) {
    var lt = 0.0;
    for (var x = 0u; x < TX; x++) { lt += red[(ty + ${8 * r}u) * TX + x]; }
    ${writeRow("o", `oAt(b, h, i${r})`, "acc", r, G, " / lt")}
    if (tx == 0u) { lse[bh * LQ + i${r}] = m${r} + log(lt); }
  }`, "\n  ")
      }
}`,
  );
}

function tiledDqShader(p: AttentionParams, R: number, C: number): string {
  const RT = R / TY, J = C / TX, G = p.hd / 4 / TX;
  // D's partial sums over the 8 threads of a row: through red at R = 32; at R = 64 through ds's array as
  // the thread's RT / 4 vec4s (no key tile has been written to it yet), which saves red's 2 KB
  const parts = R === 32
    ? {
      declare: `\nvar<workgroup> red: array<f32, ${R * TX}>;`,
      put: each(RT, (r) => `red[(ty + ${8 * r}u) * TX + tx] = part${r};`, " "),
      at: (r: number) => `red[(ty + ${8 * r}u) * TX + x]`,
    }
    : {
      declare: "",
      put: each(
        RT / 4,
        (k) => `dss[lid * ${RT / 4}u + ${k}u] = vec4<f32>(${each(4, (r) => `part${4 * k + r}`, ", ")});`,
        " ",
      ),
      at: (r: number) => `dss[(ty * TX + x) * ${RT / 4}u + ${Math.floor(r / 4)}u][${r % 4}]`,
    };
  return cached(
    `attention tiled dq ${R}x${C} ${JSON.stringify(p)}`,
    () =>
      `${declare([...BACKWARD_INPUTS, ["dq", "read_write", "f32"], ["delta", "read_write", "f32"]])}
${tiledPrelude(p, R, ["q", "k", "v", "dO", "o"])}
var<workgroup> qs: array<vec4<f32>, ${R * (p.hd / 4 + 1)}>;
var<workgroup> dos: array<vec4<f32>, ${R * (p.hd / 4 + 1)}>;
var<workgroup> ks: array<vec4<f32>, ${C * (p.hd / 4 + 1)}>;
var<workgroup> vs: array<vec4<f32>, ${C * (p.hd / 4 + 1)}>;
var<workgroup> dss: array<vec4<f32>, ${C * R / 4}>;${parts.declare}
@compute @workgroup_size(${THREADS}) fn main(${GROUP_ARGS}) {
  ${tiledPlacement(p, "LQ")}
  ${stage("qs", "q", R, p.hd, "r0", "i32(LQ)", (t) => `qAt(b, h, ${t})`)}
  ${stage("dos", "dO", R, p.hd, "r0", "i32(LQ)", (t) => `oAt(b, h, ${t})`)}
  ${rowRanges("i", "LQ", "keysFrom", "keysEnd", RT)}
  // D_r = <dO, o> of the thread's rows: its column groups here, the row's 8 threads summed below (and
  // kept in delta for the dk, dv kernel)
  ${
        each(RT, (r) =>
          `var part${r} = 0.0;
  {
    let o0 = oAt(b, h, min(i${r}, LQ - 1u));
    ${
            each(
              G,
              (g) =>
                `part${r} += dot(load4_dO(o0 + 4u * (tx + ${8 * g}u)), load4_o(o0 + 4u * (tx + ${8 * g}u)));`,
              " ",
            )
          }
  }`, "\n  ")
      }
  ${parts.put}
  workgroupBarrier();
  ${
        each(
          RT,
          (r) =>
            `var D${r} = 0.0; for (var x = 0u; x < TX; x++) { D${r} += ${parts.at(r)}; }
  let L${r} = lse[bh * LQ + min(i${r}, LQ - 1u)];
  if (i${r} < LQ && tx == 0u) { delta[bh * LQ + i${r}] = D${r}; }`,
          "\n  ",
        )
      }
  ${zeros("acc", RT, G, true)}
  ${keyTileLoop(p.hd, C)}
    ${zeros("s", RT, J)}
    ${zeros("dp", RT, J)}
    ${dots("s", "qs", "ks", RT, J)}
    ${dots("dp", "dos", "vs", RT, J)}
    // ds = p (dp - D), p = exp(s / sqrt(hd) - lse): 0 where the key is not visible
    ${
        each(RT, (r) =>
          each(
            J,
            (j) =>
              `{ let j = j0 + i32(tx + ${
                8 * j
              }u); s_${r}_${j} = select(0.0, exp(s_${r}_${j} * SCALE - L${r}) * (dp_${r}_${j} - D${r}), j >= lo${r} && j < hi${r}); }`,
            "\n    ",
          ), "\n    ")
      }
    ${transpose("dss", "s", C, J, RT)}
    workgroupBarrier();
    ${accumulate("acc", "dss", "ks", C, G, RT)}
  }
  ${
        each(
          RT,
          (r) => `if (i${r} < LQ) {\n    ${writeRow("dq", `qAt(b, h, i${r})`, "acc", r, G, " * SCALE")}\n  }`,
          "\n  ",
        )
      }
}`,
  );
}

function tiledDkDvShader(p: AttentionParams, R: number, C: number, oneExchange: boolean): string {
  const RT = R / TY, J = C / TX, G = p.hd / 4 / TX;
  const qt = tileLoader("qs", "q", C, p.hd, (t) => `qAt(b, h, ${t})`);
  const dot_ = tileLoader("dos", "dO", C, p.hd, (t) => `oAt(b, h, ${t})`);
  // p for dv, ds for dk: at once through two arrays, or (short of memory) in turn through ps
  const products = oneExchange
    ? `${transpose("ps", "s", C, J, RT)}
    workgroupBarrier();
    ${accumulate("dv", "ps", "dos", C, G, RT)}
    workgroupBarrier(); // every thread has read p before ds takes its place
    ${transpose("ps", "dp", C, J, RT)}
    workgroupBarrier();
    ${accumulate("dk", "ps", "qs", C, G, RT)}`
    : `${transpose("ps", "s", C, J, RT)}
    ${transpose("dss", "dp", C, J, RT)}
    workgroupBarrier();
    ${accumulate("dv", "ps", "dos", C, G, RT)}
    ${accumulate("dk", "dss", "qs", C, G, RT)}`;
  return cached(
    `attention tiled dkdv ${R}x${C}${oneExchange ? " one exchange" : ""} ${JSON.stringify(p)}`,
    () =>
      `${
        declare([
          ["q", "read", "f32"],
          ["k", "read", "f32"],
          ["v", "read", "f32"],
          ["lse", "read", "f32"],
          ["dO", "read", "f32"],
          ["delta", "read", "f32"],
          ["dk", "read_write", "f32"],
          ["dv", "read_write", "f32"],
        ])
      }
${tiledPrelude(p, R, ["q", "k", "v", "dO"])}
var<workgroup> ks: array<vec4<f32>, ${R * (p.hd / 4 + 1)}>;
var<workgroup> vs: array<vec4<f32>, ${R * (p.hd / 4 + 1)}>;
var<workgroup> qs: array<vec4<f32>, ${C * (p.hd / 4 + 1)}>;
var<workgroup> dos: array<vec4<f32>, ${C * (p.hd / 4 + 1)}>;
var<workgroup> ps: array<vec4<f32>, ${C * R / 4}>;${
        oneExchange ? "" : `\nvar<workgroup> dss: array<vec4<f32>, ${C * R / 4}>;`
      }
var<workgroup> Ds: array<f32, ${C}>;
var<workgroup> ls: array<f32, ${C}>;
@compute @workgroup_size(${THREADS}) fn main(${GROUP_ARGS}) {
  ${tiledPlacement(p, "LK")}
  ${stage("ks", "k", R, p.hd, "r0", "i32(LK)", (t) => `kAt(b, h, ${t})`)}
  ${stage("vs", "v", R, p.hd, "r0", "i32(LK)", (t) => `vAt(b, h, ${t})`)}
  // the thread's keys j_r are seen by queries [lo_r, hi_r)
  ${rowRanges("j", "LK", "queriesFrom", "queriesEnd", RT)}
  ${zeros("dk", RT, G, true)}
  ${zeros("dv", RT, G, true)}
  let wEnd = queriesEnd(rLast);
  let first = queriesFrom(r0);
  // the tile's lse and D (threads lid < C: query i0 + lid), loaded a tile ahead as q and dO are
  var l_in = 0.0; var D_in = 0.0;
  let lq = u32(min(first + i32(lid), wEnd - 1));
  if (lid < ${C}u) { l_in = lse[bh * LQ + lq]; D_in = delta[bh * LQ + lq]; }
  ${qt.declare}
  ${dot_.declare}
  ${qt.load("first", "wEnd")}
  ${dot_.load("first", "wEnd")}
  for (var i0 = first; i0 < wEnd; i0 += ${C}) {
    workgroupBarrier(); // the last tile's reads are done
    ${qt.store}
    ${dot_.store}
    if (lid < ${C}u) { ls[lid] = l_in; Ds[lid] = D_in; }
    workgroupBarrier();
    ${qt.load(`i0 + ${C}`, "wEnd")}
    ${dot_.load(`i0 + ${C}`, "wEnd")}
    if (lid < ${C}u) {
      let i = u32(min(i0 + ${C} + i32(lid), wEnd - 1));
      l_in = lse[bh * LQ + i]; D_in = delta[bh * LQ + i];
    }
    ${zeros("s", RT, J)}
    ${zeros("dp", RT, J)}
    ${dots("s", "ks", "qs", RT, J)}
    ${dots("dp", "vs", "dos", RT, J)}
    // p = exp(s / sqrt(hd) - lse), ds = p (dp - D): 0 where the query does not see the key
    ${
        each(J, (j) =>
          `{
      let t = tx + ${8 * j}u; let i = i0 + i32(t); let Di = Ds[t]; let Li = ls[t];
      ${
            each(
              RT,
              (r) =>
                `s_${r}_${j} = select(0.0, exp(s_${r}_${j} * SCALE - Li), i >= lo${r} && i < hi${r}); dp_${r}_${j} = s_${r}_${j} * (dp_${r}_${j} - Di);`,
              "\n      ",
            )
          }
    }`)
      }
    ${products}
  }
  ${
        each(RT, (r) =>
          `if (j${r} < LK) {
    ${writeRow("dk", `kAt(b, h, j${r})`, "dk", r, G, " * SCALE")}
    ${writeRow("dv", `vAt(b, h, j${r})`, "dv", r, G)}
  }`, "\n  ")
      }
}`,
  );
}

/** "short" kernels: sequences of at most this many queries and keys (a workgroup holds their scores). */
export const SHORT_ROWS = 32;

/** Whether the short kernels run these params (auto: every sequence that short; "short": required). */
function useShort(p: AttentionParams): boolean {
  const fits = p.lq <= SHORT_ROWS && p.lk <= SHORT_ROWS;
  if (attentionImpl === "short" && !fits) {
    throw new Error(
      `attention: the short kernels take at most ${SHORT_ROWS} queries and keys (got ${p.lq}, ${p.lk})`,
    );
  }
  return fits && (attentionImpl === "short" || attentionImpl === "auto");
}

/**
 * WGSL shared by the short kernels: the (sequence, head) of this workgroup (extra workgroups return), and
 * <x_row, y_row> over a head for two bindings (vec4 steps when the head is a multiple of 4).
 */
function shortPrelude(p: AttentionParams, pairs: [string, string][]): string {
  const dotFn = ([x, y]: [string, string]) =>
    `fn dot_${x}_${y}(a: u32, b: u32) -> f32 {
  var acc = 0.0;
  ${
      p.hd % 4 === 0
        ? `for (var c = 0u; c < HD; c += 4u) {
    acc += dot(vec4<f32>(${x}[a + c], ${x}[a + c + 1u], ${x}[a + c + 2u], ${x}[a + c + 3u]), vec4<f32>(${y}[b + c], ${y}[b + c + 1u], ${y}[b + c + 2u], ${y}[b + c + 3u]));
  }`
        : `for (var c = 0u; c < HD; c++) { acc += ${x}[a + c] * ${y}[b + c]; }`
    }
  return acc;
}`;
  return `${prelude(p)}
${pairs.map(dotFn).join("\n")}`;
}

const shortPlacement = (p: AttentionParams) =>
  `let bh = wg.x + wg.y * nwg.x;
  if (bh >= ${p.batch * p.heads}u) { return; }
  let b = bh / H; let h = bh % H;`;

/**
 * Forward over a short sequence (MegaByte's patches; a tail of a few queries): a workgroup per (sequence,
 * head) holds the (lq, lk) scores. Threads take (query, key) pairs for the scores, a query each for its
 * softmax, and (query, column) pairs for o, so the big heads (MegaByte's local model: one head of 2/3 d)
 * spread over all threads instead of sitting in one thread's registers.
 */
function shortForwardShader(p: AttentionParams): string {
  return cached(
    `attention short ${JSON.stringify(p)}`,
    () =>
      `${declare(FORWARD_BINDINGS)}
${shortPrelude(p, [["q", "k"]])}
var<workgroup> ps: array<f32, ${p.lq * p.lk}>;
@compute @workgroup_size(${ROWS}) fn main(${GROUP_ARGS}) {
  ${shortPlacement(p)}
  for (var e = lid; e < LQ * LK; e += ${ROWS}u) {
    let i = e / LK; let j = i32(e % LK);
    var s = -3.0e38;
    if (j >= keysFrom(i) && j < keysEnd(i)) { s = dot_q_k(qAt(b, h, i), kAt(b, h, u32(j))) * SCALE; }
    ps[e] = s;
  }
  workgroupBarrier();
  if (lid < LQ) {
    let i = lid;
    var m = -3.0e38;
    for (var j = keysFrom(i); j < keysEnd(i); j++) { m = max(m, ps[i * LK + u32(j)]); }
    var l = 0.0;
    for (var j = keysFrom(i); j < keysEnd(i); j++) { l += exp(ps[i * LK + u32(j)] - m); }
    for (var j = keysFrom(i); j < keysEnd(i); j++) { ps[i * LK + u32(j)] = exp(ps[i * LK + u32(j)] - m) / l; }
    lse[bh * LQ + i] = m + log(l);
  }
  workgroupBarrier();
  for (var e = lid; e < LQ * HD; e += ${ROWS}u) {
    let i = e / HD; let c = e % HD;
    var acc = 0.0;
    for (var j = keysFrom(i); j < keysEnd(i); j++) { acc += ps[i * LK + u32(j)] * v[vAt(b, h, u32(j)) + c]; }
    o[oAt(b, h, i) + c] = acc;
  }
}`,
  );
}

/**
 * The backward over a short sequence in one kernel: p recomputed from lse, dp = <dO_i, v_j> and ds = p (dp -
 * D_i) for every pair into workgroup memory, then dq, dk and dv by (row, column) pairs, each written once.
 */
function shortBackwardShader(p: AttentionParams): string {
  return cached(
    `attention short backward ${JSON.stringify(p)}`,
    () =>
      `${
        declare([...BACKWARD_INPUTS, ["dq", "read_write", "f32"], ["dk", "read_write", "f32"], [
          "dv",
          "read_write",
          "f32",
        ]])
      }
${shortPrelude(p, [["q", "k"], ["dO", "v"], ["dO", "o"]])}
var<workgroup> ps: array<f32, ${p.lq * p.lk}>;
var<workgroup> ds: array<f32, ${p.lq * p.lk}>;
var<workgroup> Dr: array<f32, ${p.lq}>;
@compute @workgroup_size(${ROWS}) fn main(${GROUP_ARGS}) {
  ${shortPlacement(p)}
  if (lid < LQ) { Dr[lid] = dot_dO_o(oAt(b, h, lid), oAt(b, h, lid)); }
  workgroupBarrier();
  for (var e = lid; e < LQ * LK; e += ${ROWS}u) {
    let i = e / LK; let j = i32(e % LK);
    var pe = 0.0; var dse = 0.0;
    if (j >= keysFrom(i) && j < keysEnd(i)) {
      pe = exp(dot_q_k(qAt(b, h, i), kAt(b, h, u32(j))) * SCALE - lse[bh * LQ + i]);
      dse = pe * (dot_dO_v(oAt(b, h, i), vAt(b, h, u32(j))) - Dr[i]);
    }
    ps[e] = pe; ds[e] = dse;
  }
  workgroupBarrier();
  for (var e = lid; e < LQ * HD; e += ${ROWS}u) {
    let i = e / HD; let c = e % HD;
    var acc = 0.0;
    for (var j = keysFrom(i); j < keysEnd(i); j++) { acc += ds[i * LK + u32(j)] * k[kAt(b, h, u32(j)) + c]; }
    dq[qAt(b, h, i) + c] = acc * SCALE;
  }
  for (var e = lid; e < LK * HD; e += ${ROWS}u) {
    let j = e / HD; let c = e % HD;
    var dkc = 0.0; var dvc = 0.0;
    for (var i = queriesFrom(j); i < queriesEnd(j); i++) {
      dkc += ds[u32(i) * LK + j] * q[qAt(b, h, u32(i)) + c];
      dvc += ps[u32(i) * LK + j] * dO[oAt(b, h, u32(i)) + c];
    }
    dk[kAt(b, h, j) + c] = dkc * SCALE; dv[vAt(b, h, j) + c] = dvc;
  }
}`,
  );
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
  if (useShort(p)) {
    const code = shortForwardShader(p);
    d.dispatch("attention", code, [b.q, b.k, b.v, b.o, b.lse], itemGroups(p.batch * p.heads), flops(p));
    return;
  }
  const tiles = tiledTiles(d as Dispatcher<unknown>, p);
  if (tiles) {
    const groups = itemGroups(p.batch * p.heads * Math.ceil(p.lq / tiles.rows));
    const code = tiledForwardShader(p, tiles.rows, tiles.forward);
    d.dispatch("attention", code, [b.q, b.k, b.v, b.o, b.lse], groups, flops(p));
    return;
  }
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
  if (useShort(p)) {
    d.dispatch(
      "attentionBackward",
      shortBackwardShader(p),
      [b.q, b.k, b.v, b.o, b.lse, b.dO, b.dq, b.dk, b.dv],
      itemGroups(bh),
      2.5 * flops(p),
    );
    return;
  }
  const tiles = tiledTiles(d as Dispatcher<unknown>, p);
  if (tiles) {
    // D = <dO, o> per query: the dq kernel computes it, the dk, dv kernel reads it
    const delta = d.alloc(bh * p.lq, "attention D");
    d.dispatch(
      "attentionDq",
      tiledDqShader(p, tiles.rows, tiles.dq),
      [b.q, b.k, b.v, b.o, b.lse, b.dO, b.dq, delta],
      itemGroups(bh * Math.ceil(p.lq / tiles.rows)),
      flops(p),
    );
    d.dispatch(
      "attentionDkDv",
      tiledDkDvShader(p, tiles.rows, tiles.dkdv, tiles.dkdvOneExchange),
      [b.q, b.k, b.v, b.lse, b.dO, delta, b.dk, b.dv],
      itemGroups(bh * Math.ceil(p.lk / tiles.rows)),
      1.5 * flops(p),
    );
    d.release(delta);
    return;
  }
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

// ---------------------------------------------------------------------------------------------------
// decoding: one query per head against a KV cache (../js/attention.ts decodeAttention)

/** Keys per workgroup of the decoding split (a thread each). */
const DECODE_CHUNK = 64;

const decodePrelude = (p: DecodeAttentionParams) =>
  `const HD = ${p.hd}u; const H = ${p.heads}u; const CH = ${DECODE_CHUNK}u;
const CHUNKS = ${Math.ceil(p.maxLen / DECODE_CHUNK)}u; const KVS = ${p.kvStride}u; const VOFF = ${p.vOffset}u;
const SCALE = ${1 / Math.sqrt(p.hd)};
var<workgroup> wlen: u32;`;

/** The keys seen, read from ctl by one thread and shared uniformly (control flow may depend on it). */
const readLength = (p: DecodeAttentionParams) =>
  `if (lid == 0u) { wlen = min(u32(ctl[${p.indexAt}]) + 1u, ${p.maxLen}u); }
  let len = workgroupUniformLoad(&wlen);`;

/**
 * The split: a workgroup per (head, chunk of 64 keys) writes the chunk's maximum score m, its sum of
 * exp(s - m) and its sum of exp(s - m) v (HD floats) to part; chunks past the length write m = -3e38, 0.
 */
function decodeSplitShader(p: DecodeAttentionParams): string {
  return cached(
    `decode attention split ${JSON.stringify(p)}`,
    () =>
      `${
        declare([["q", "read", "f32"], ["kv", "read", "f32"], ["ctl", "read", "i32"], [
          "part",
          "read_write",
          "f32",
        ]])
      }
${decodePrelude(p)}
var<workgroup> qs: array<f32, ${p.hd}>;
var<workgroup> ps: array<f32, ${DECODE_CHUNK}>;
var<workgroup> red: array<f32, ${DECODE_CHUNK}>;
@compute @workgroup_size(${DECODE_CHUNK}) fn main(${GROUP_ARGS}) {
  let item = wg.x + wg.y * nwg.x;
  if (item >= H * CHUNKS) { return; }
  let h = item / CHUNKS; let chunk = item % CHUNKS;
  ${readLength(p)}
  let j0 = chunk * CH; let out = item * (HD + 2u);
  if (j0 >= len) {
    if (lid == 0u) { part[out] = -3.0e38; part[out + 1u] = 0.0; }
    return;
  }
  for (var c = lid; c < HD; c += CH) { qs[c] = q[${p.qOffset}u + h * HD + c]; }
  workgroupBarrier();
  let j = j0 + lid;
  var s = -3.0e38;
  if (j < len) {
    let k0 = j * KVS + h * HD;
    var acc = 0.0;
    for (var c = 0u; c < HD; c++) { acc += qs[c] * kv[k0 + c]; }
    s = acc * SCALE;
  }
  red[lid] = s;
  workgroupBarrier();
  ${treeReduce("red", DECODE_CHUNK, "max")}
  let m = red[0];
  workgroupBarrier(); // every thread has read the maximum before red is reused
  let pj = select(0.0, exp(s - m), j < len);
  ps[lid] = pj; red[lid] = pj;
  workgroupBarrier();
  ${treeReduce("red", DECODE_CHUNK, "+")}
  let n = min(CH, len - j0);
  for (var c = lid; c < HD; c += CH) {
    var acc = 0.0;
    for (var t = 0u; t < n; t++) { acc += ps[t] * kv[(j0 + t) * KVS + VOFF + h * HD + c]; }
    part[out + 2u + c] = acc;
  }
  if (lid == 0u) { part[out] = m; part[out + 1u] = red[0]; }
}`,
  );
}

/** The combine: a workgroup per head rescales the chunks' sums to their common maximum into o. */
function decodeCombineShader(p: DecodeAttentionParams): string {
  return cached(
    `decode attention combine ${JSON.stringify(p)}`,
    () =>
      `${declare([["part", "read", "f32"], ["ctl", "read", "i32"], ["o", "read_write", "f32"]])}
${decodePrelude(p)}
var<workgroup> red: array<f32, ${DECODE_CHUNK}>;
@compute @workgroup_size(${DECODE_CHUNK}) fn main(${GROUP_ARGS}) {
  let h = wg.x + wg.y * nwg.x;
  if (h >= H) { return; }
  ${readLength(p)}
  let n = (len + CH - 1u) / CH;
  let base = h * CHUNKS * (HD + 2u);
  var mx = -3.0e38;
  for (var c = lid; c < n; c += CH) { mx = max(mx, part[base + c * (HD + 2u)]); }
  red[lid] = mx;
  workgroupBarrier();
  ${treeReduce("red", DECODE_CHUNK, "max")}
  let M = red[0];
  workgroupBarrier();
  var l = 0.0;
  for (var c = lid; c < n; c += CH) {
    let at = base + c * (HD + 2u);
    l += exp(part[at] - M) * part[at + 1u];
  }
  red[lid] = l;
  workgroupBarrier();
  ${treeReduce("red", DECODE_CHUNK, "+")}
  let L = red[0];
  for (var e = lid; e < HD; e += CH) {
    var acc = 0.0;
    for (var c = 0u; c < n; c++) {
      let at = base + c * (HD + 2u);
      acc += exp(part[at] - M) * part[at + 2u + e];
    }
    o[h * HD + e] = acc / L;
  }
}`,
  );
}

/** o from q and the KV cache, the length read on the device: split over chunks of keys, then combined. */
export function decodeAttention<B>(
  d: Dispatcher<B>,
  p: DecodeAttentionParams,
  b: { q: B; kv: B; ctl: B; o: B },
): void {
  const chunks = Math.ceil(p.maxLen / DECODE_CHUNK);
  const part = d.alloc(p.heads * chunks * (p.hd + 2), "decode attention partials");
  d.dispatch("decodeAttention", decodeSplitShader(p), [b.q, b.kv, b.ctl, part], itemGroups(p.heads * chunks));
  d.dispatch("decodeAttentionCombine", decodeCombineShader(p), [part, b.ctl, b.o], itemGroups(p.heads));
  d.release(part);
}
