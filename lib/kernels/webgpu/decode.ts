/**
 * WGSL of the decoding engine's recurrent-step kernels (plain-JS twins: ../js/decode.ts): the conv window
 * and the selective SSM stepped one token per sequence, the state updated in place, one thread per
 * (sequence, channel); and the greedy choice, one workgroup per row reducing (value, index) pairs.
 */
import type {
  ArgmaxParams,
  ConvScanParams,
  ConvStepParams,
  GemvConvBuffers,
  GemvConvParams,
  NormGemvParams,
  SampleParams,
  SsmScanParams,
  SsmStepParams,
} from "../js/decode.ts";
import { NOT_FINITE_ID } from "../js/decode.ts";
import { type Dispatcher, flatGroups } from "./dispatcher.ts";
import { recordGemv } from "./gemm.ts";
import {
  argmaxReduce,
  cached,
  declare,
  FLAT_ARGS,
  flatIndex,
  GROUP_ARGS,
  IS_FINITE,
  itemGroups,
  NO_INDEX,
  SIGMOID,
} from "./wgsl.ts";

/** What one conv or SSM dispatch runs: `seqs` sequences of `len` positions each, snapshots or not. */
interface Walk {
  seqs: number;
  len: number;
  snaps: boolean;
}

/**
 * The conv window of `seqs` sequences over `len` positions each (position t of sequence s is row
 * s len + t of x and y), one thread per (sequence, channel); with `snaps`, the window before the first
 * position and after each is stored (snaps (len + 1, ch, k), one sequence).
 */
function convShader(p: Omit<ConvStepParams, "batch">, w: Walk): string {
  const k = p.k, size = p.ch * k;
  return cached(`conv walk ${JSON.stringify([p, w])}`, () =>
    `${
      declare([
        ["x", "read", "f32"],
        ["window", "read_write", "f32"],
        ...(w.snaps ? [["snaps", "read_write", "f32"] as ["snaps", "read_write", "f32"]] : []),
        ["w", "read", "f32"],
        ...(p.bias ? [["bias", "read", "f32"] as ["bias", "read", "f32"]] : []),
        ["y", "read_write", "f32"],
      ])
    }
${SIGMOID}
@compute @workgroup_size(64) fn main(${FLAT_ARGS}) {
  let i = ${flatIndex(64)};
  if (i >= ${w.seqs * p.ch}u) { return; }
  let sq = i / ${p.ch}u; let c = i % ${p.ch}u; let o = i * ${k}u;
  ${w.snaps ? `for (var j = 0u; j < ${k}u; j++) { snaps[o + j] = window[o + j]; }` : ""}
  for (var t = 0u; t < ${w.len}u; t++) {
    let rowi = sq * ${w.len}u + t;
    for (var j = 0u; j < ${k - 1}u; j++) { window[o + j] = window[o + j + 1u]; }
    window[o + ${k - 1}u] = x[rowi * ${p.xStride}u + c];
    var s = ${p.bias ? "bias[c]" : "0.0"};
    for (var j = 0u; j < ${k}u; j++) { s = s + window[o + j] * w[c * ${k}u + j]; }
    y[rowi * ${p.ch}u + c] = s * sigmoid(s);
    ${
      w.snaps
        ? `for (var j = 0u; j < ${k}u; j++) { snaps[(t + 1u) * ${size}u + o + j] = window[o + j]; }`
        : ""
    }
  }
}`);
}

function convDispatch<B>(
  d: Dispatcher<B>,
  label: string,
  p: Omit<ConvStepParams, "batch">,
  w: Walk,
  b: { x: B; window: B; snaps?: B; w: B; bias?: B; y: B },
): void {
  const bufs = [b.x, b.window, ...(w.snaps ? [b.snaps!] : []), b.w, ...(p.bias ? [b.bias!] : []), b.y];
  d.dispatch(label, convShader(p, w), bufs, flatGroups(w.seqs * p.ch, 64));
}

/** The conv window moves by one token per sequence; y = silu(conv of the window). */
export function convStep<B>(
  d: Dispatcher<B>,
  p: ConvStepParams,
  b: { x: B; window: B; w: B; bias?: B; y: B },
): void {
  convDispatch(d, "convStep", p, { seqs: p.batch, len: 1, snaps: false }, b);
}

type SsmBuffers<B> = { u: B; dtW: B; deltaBias?: B; A: B; xdbl: B; D?: B; z?: B; h: B; snaps?: B; y: B };

/** The bindings of both SSM walks, in ssmDispatch's buffer order. */
function ssmBindings(w: Walk, has: { bias: boolean; D: boolean; z: boolean }): string {
  const b: [string, "read" | "read_write", "f32"][] = [["u", "read", "f32"], ["dtW", "read", "f32"]];
  if (has.bias) b.push(["deltaBias", "read", "f32"]);
  b.push(["A", "read", "f32"], ["xdbl", "read", "f32"]);
  if (has.D) b.push(["D", "read", "f32"]);
  if (has.z) b.push(["z", "read", "f32"]);
  b.push(["h", "read_write", "f32"]);
  if (w.snaps) b.push(["snaps", "read_write", "f32"]);
  b.push(["y", "read_write", "f32"]);
  return declare(b);
}

/**
 * The selective SSM of `seqs` sequences over `len` positions each (row s len + t), dt_proj fused in, one
 * thread per (sequence, channel), h carried; with `snaps`, h before the first position and after each.
 */
function ssmShader(
  p: Omit<SsmStepParams, "batch">,
  w: Walk,
  has: { bias: boolean; D: boolean; z: boolean },
): string {
  const size = p.dim * p.ns;
  return cached(`ssm walk ${JSON.stringify([p, w, has])}`, () =>
    `${ssmBindings(w, has)}
${SIGMOID}
fn softplus(x: f32) -> f32 { return select(log(1.0 + exp(x)), x, x > 20.0); }
@compute @workgroup_size(64) fn main(${FLAT_ARGS}) {
  let i = ${flatIndex(64)};
  if (i >= ${w.seqs * p.dim}u) { return; }
  let sq = i / ${p.dim}u; let c = i % ${p.dim}u; let hs = i * ${p.ns}u;
  ${w.snaps ? `for (var s = 0u; s < ${p.ns}u; s++) { snaps[hs + s] = h[hs + s]; }` : ""}
  for (var t = 0u; t < ${w.len}u; t++) {
    let rowi = sq * ${w.len}u + t; let ro = rowi * ${p.row}u;
    var delta = 0.0;
    for (var j = 0u; j < ${p.rank}u; j++) { delta = delta + xdbl[ro + j] * dtW[c * ${p.rank}u + j]; }
    let raw = delta${has.bias ? " + deltaBias[c]" : ""};
    let dt = ${p.softplus ? "softplus(raw)" : "raw"};
    let uu = u[rowi * ${p.dim}u + c]; let bo = ro + ${p.rank}u;
    var acc = 0.0;
    for (var s = 0u; s < ${p.ns}u; s++) {
      let hv = exp(dt * A[c * ${p.ns}u + s]) * h[hs + s] + dt * xdbl[bo + s] * uu;
      h[hs + s] = hv;
      ${w.snaps ? `snaps[(t + 1u) * ${size}u + hs + s] = hv;` : ""}
      acc = acc + hv * xdbl[bo + ${p.ns}u + s];
    }
    var out = acc${has.D ? " + D[c] * uu" : ""};
    ${has.z ? `let zz = z[rowi * ${p.zStride}u + ${p.zOffset}u + c]; out = out * zz * sigmoid(zz);` : ""}
    y[rowi * ${p.dim}u + c] = out;
  }
}`);
}

/**
 * The same walk with one thread per (sequence, channel, state): `ns` lanes share a channel, each holding
 * one element of h. At the 972M shape the thread-per-channel walk ran 3,584 threads (14 workgroups on 132
 * SMs) through 112 + 16 sequential terms each: 23 us a layer, a quarter of the step. Only dt (the dt_proj
 * dot product) and y = <h, C> need the channel's other lanes, so over `len` positions (a pass) the dt of
 * every position comes first, all reduced together, then each lane runs the recurrence on its own element
 * keeping its share of each y, and one reduction gives every position's y: two reductions for the walk,
 * where one pair a position left the pass's 8 positions waiting on 16 of them in turn.
 * Used when ns is a power of two from 2 to 64.
 */
function ssmLanesShader(
  p: Omit<SsmStepParams, "batch">,
  w: Walk,
  has: { bias: boolean; D: boolean; z: boolean },
): string {
  const T = p.ns, size = p.dim * p.ns, items = w.seqs * p.dim, ts = [...Array(w.len).keys()];
  if (w.len > 16) throw new Error(`ssm lanes: at most 16 positions a walk (workgroup memory), got ${w.len}`);
  // red[t * 256 + lid]: lane lid's share for position t, reduced over the channel's T lanes
  const reduceAll = `workgroupBarrier();
  for (var st = ${T / 2}u; st >= 1u; st = st / 2u) {
    if (s < st) { ${ts.map((t) => `red[${t * 256}u + lid] += red[${t * 256}u + lid + st];`).join(" ")} }
    workgroupBarrier();
  }`;
  const row = (t: number) => `sq * ${w.len}u + ${t}u`;
  return cached(`ssm lanes ${JSON.stringify([p, w, has])}`, () =>
    `${ssmBindings(w, has)}
${SIGMOID}
fn softplus(x: f32) -> f32 { return select(log(1.0 + exp(x)), x, x > 20.0); }
var<workgroup> red: array<f32, ${256 * w.len}>;
@compute @workgroup_size(256) fn main(${GROUP_ARGS}) {
  let cl = lid / ${T}u; let s = lid % ${T}u;
  let i = (wg.x + wg.y * nwg.x) * ${256 / T}u + cl; // (sequence, channel); lanes past the end only reduce
  let valid = i < ${items}u;
  let ii = min(i, ${items - 1}u);
  let sq = ii / ${p.dim}u; let c = ii % ${p.dim}u; let hi = ii * ${p.ns}u + s;
  // dt of every position: this lane's terms of each dot product <x_dbl[t, :rank], W_dt[c]>, each weight
  // loaded once for all positions (the terms of each position still added in order of j)
  ${ts.map((t) => `var part${t} = 0.0;`).join(" ")}
  for (var j = s; j < ${p.rank}u; j += ${T}u) {
    let wj = dtW[c * ${p.rank}u + j];
    ${ts.map((t) => `part${t} = part${t} + xdbl[(${row(t)}) * ${p.row}u + j] * wj;`).join(" ")}
  }
  ${ts.map((t) => `red[${t * 256}u + lid] = part${t};`).join(" ")}
  ${reduceAll}
  ${
      ts.map((t) =>
        `let dt${t} = ${p.softplus ? "softplus" : ""}(red[${t * 256}u + cl * ${T}u]${
          has.bias ? " + deltaBias[c]" : ""
        });`
      ).join("\n  ")
    }
  workgroupBarrier();
  // the recurrence on this lane's element of h; its share of y_t = <h_t, C_t> kept for the reduction
  var hv = h[hi];
  let a = A[c * ${p.ns}u + s];
  ${w.snaps ? "if (valid) { snaps[hi] = hv; }" : ""}
  ${
      ts.map((t) =>
        `{
    let ro = (${row(t)}) * ${p.row}u + ${p.rank}u;
    hv = exp(dt${t} * a) * hv + dt${t} * xdbl[ro + s] * u[(${row(t)}) * ${p.dim}u + c];
    ${w.snaps ? `if (valid) { snaps[${(t + 1) * size}u + hi] = hv; }` : ""}
    red[${t * 256}u + lid] = hv * xdbl[ro + ${p.ns}u + s];
  }`
      ).join("\n  ")
    }
  ${reduceAll}
  if (s == 0u && valid) {
    ${
      ts.map((t) =>
        `{
      let rowi = ${row(t)};
      var out = red[${t * 256}u + lid]${has.D ? " + D[c] * u[rowi * " + p.dim + "u + c]" : ""};
      ${has.z ? `let zz = z[rowi * ${p.zStride}u + ${p.zOffset}u + c]; out = out * zz * sigmoid(zz);` : ""}
      y[rowi * ${p.dim}u + c] = out;
    }`
      ).join("\n    ")
    }
  }
  if (valid) { h[hi] = hv; }
}`);
}

/** Whether the lanes walk applies: ns a power of two from 2 to 64. */
const ssmLanes = (ns: number) => ns >= 2 && ns <= 64 && (ns & (ns - 1)) === 0;

function ssmDispatch<B>(
  d: Dispatcher<B>,
  label: string,
  p: Omit<SsmStepParams, "batch">,
  w: Walk,
  b: SsmBuffers<B>,
) {
  const has = { bias: !!b.deltaBias, D: !!b.D, z: !!b.z };
  const bufs = [
    b.u,
    b.dtW,
    ...(b.deltaBias ? [b.deltaBias] : []),
    b.A,
    b.xdbl,
    ...(b.D ? [b.D] : []),
    ...(b.z ? [b.z] : []),
    b.h,
    ...(w.snaps ? [b.snaps!] : []),
    b.y,
  ];
  if (ssmLanes(p.ns)) {
    d.dispatch(label, ssmLanesShader(p, w, has), bufs, itemGroups(Math.ceil(w.seqs * p.dim / (256 / p.ns))));
  } else d.dispatch(label, ssmShader(p, w, has), bufs, flatGroups(w.seqs * p.dim, 64));
}

/** One step of the selective SSM per (sequence, channel), dt_proj fused in, h updated in place. */
export function ssmStep<B>(d: Dispatcher<B>, p: SsmStepParams, b: SsmBuffers<B>): void {
  ssmDispatch(d, "ssmStep", p, { seqs: p.batch, len: 1, snaps: false }, b);
}

const W = 256;

export function argmaxShader(p: ArgmaxParams): string {
  return cached(
    `argmax ${JSON.stringify(p)}`,
    () =>
      `${declare([["logits", "read", "f32"], ["ids", "read_write", "i32"]])}
${IS_FINITE}
var<workgroup> bestV: array<f32, ${W}>;
var<workgroup> bestI: array<u32, ${W}>;
var<workgroup> bad: atomic<u32>;
@compute @workgroup_size(${W}) fn main(${GROUP_ARGS}) {
  let row = wg.x + wg.y * nwg.x;
  if (row >= ${p.rows}u) { return; }
  if (lid == 0u) { atomicStore(&bad, 0u); }
  workgroupBarrier();
  var v = -3.4028234663852886e38; var at = ${NO_INDEX};
  for (var j = lid; j < ${p.vocab}u; j += ${W}u) {
    let x = logits[row * ${p.V}u + j];
    if (!isFinite(x)) { atomicStore(&bad, 1u); }
    if (x > v || at == ${NO_INDEX}) { v = x; at = j; }
  }
  ${argmaxReduce(W)}
  if (lid == 0u) {
    let id = select(i32(bestI[0]), ${NOT_FINITE_ID}, atomicLoad(&bad) != 0u);
    ids[${p.outOffset}u + row] = id;
    ${p.alsoOffset !== undefined ? `ids[${p.alsoOffset}u + row] = id;` : ""}
  }
}`,
  );
}

/** ids[outOffset + row] (and ids[alsoOffset + row]) = argmax of the row's first `vocab` logits. */
export function argmax<B>(d: Dispatcher<B>, p: ArgmaxParams, b: { logits: B; ids: B }): void {
  d.dispatch("argmax", argmaxShader(p), [b.logits, b.ids], itemGroups(p.rows));
}

/**
 * Sampling per row (the twin ../js/decode.ts `sample`): one workgroup sorts the row's (logit, id) pairs in
 * workgroup memory (a bitonic sort: logits descending, ties by id), then its first thread walks the sorted
 * head as pickToken does, in float32.
 */
export function sampleShader(p: SampleParams): string {
  let N = W;
  while (N < p.vocab) N *= 2;
  return cached(
    `sample ${JSON.stringify(p)}`,
    () =>
      `${declare([["logits", "read", "f32"], ["u", "read", "f32"], ["ids", "read_write", "i32"]])}
${IS_FINITE}
var<workgroup> sv: array<f32, ${N}>;
var<workgroup> si: array<u32, ${N}>;
var<workgroup> bad: atomic<u32>;
fn before(a: u32, b: u32) -> bool { return sv[a] > sv[b] || (sv[a] == sv[b] && si[a] < si[b]); }
@compute @workgroup_size(${W}) fn main(${GROUP_ARGS}) {
  let row = wg.x + wg.y * nwg.x;
  if (row >= ${p.rows}u) { return; }
  if (lid == 0u) { atomicStore(&bad, 0u); }
  workgroupBarrier();
  for (var e = lid; e < ${N}u; e += ${W}u) {
    sv[e] = select(-3.4028234663852886e38, logits[row * ${p.V}u + min(e, ${p.vocab - 1}u)], e < ${p.vocab}u);
    si[e] = e;
    if (!isFinite(sv[e])) { atomicStore(&bad, 1u); }
  }
  workgroupBarrier();
  for (var k = 2u; k <= ${N}u; k = k * 2u) {
    for (var j = k / 2u; j > 0u; j = j / 2u) {
      for (var e = lid; e < ${N}u; e += ${W}u) {
        let o = e ^ j;
        if (o > e) {
          let swap = select(before(e, o), before(o, e), (e & k) == 0u);
          if (swap) {
            let tv = sv[e]; sv[e] = sv[o]; sv[o] = tv;
            let ti = si[e]; si[e] = si[o]; si[o] = ti;
          }
        }
      }
      workgroupBarrier();
    }
  }
  if (lid == 0u) {
    let k = ${p.topK > 0 ? Math.min(p.topK, p.vocab) : p.vocab}u;
    let top = sv[0];
    var sum = 0.0;
    for (var i = 0u; i < k; i++) { sv[i] = exp((sv[i] - top) / ${f32(p.temperature)}); sum = sum + sv[i]; }
    var cut = k;
    ${
        p.topP < 1
          ? `var acc = 0.0;
    for (var i = 0u; i < k; i++) {
      acc = acc + sv[i] / sum;
      if (acc >= ${f32(p.topP)}) { cut = i + 1u; break; }
    }`
          : ""
      }
    var kept = 0.0;
    for (var i = 0u; i < cut; i++) { kept = kept + sv[i] / sum; }
    var left = u[${p.uOffset}u + row] * kept;
    var id = si[cut - 1u];
    for (var i = 0u; i < cut; i++) {
      left = left - sv[i] / sum;
      if (left <= 0.0) { id = si[i]; break; }
    }
    let chosen = select(i32(id), ${NOT_FINITE_ID}, atomicLoad(&bad) != 0u);
    ids[${p.outOffset}u + row] = chosen;
    ${p.alsoOffset !== undefined ? `ids[${p.alsoOffset}u + row] = chosen;` : ""}
  }
}`,
  );
}

/**
 * in_proj with the conv step in its epilogue (twin: ../js/decode.ts gemvConv): the group that computes x's
 * column c for every row then moves channel c's conv window through those rows (a batch's sequences, or a
 * pass's positions with snapshots) and writes u. The conv needs only its own channel, so nothing waits for
 * other workgroups. With `norm` the layer's RMSNorm (and the residual add) is folded in too (gemm.ts
 * GemvNorm): `a` is then the residual stream, and norm, in_proj and conv are one dispatch.
 */
export function gemvConv<B>(
  d: Dispatcher<B>,
  p: GemvConvParams,
  b: GemvConvBuffers<B>,
): void {
  const { rows, ch, k } = p, size = ch * k;
  // the window and the conv's weights in registers: lane 0 walks the rows itself, so a walk through global
  // memory (each tap stored, then loaded back) left it waiting on every access in turn: at the 972M shape a
  // pass of 8 spent 66 us a layer in this kernel, a step 26
  const js = [...Array(k).keys()];
  const taps = (o: string) => js.map((j) => `var w${j} = window[${o} + ${j}u];`).join(" ");
  const store = (o: string) => js.map((j) => `window[${o} + ${j}u] = w${j};`).join(" ");
  const snap = (slot: number) => js.map((j) => `snaps[${slot * size}u + o + ${j}u] = w${j};`).join(" ");
  const conv = (m: number, x: string) =>
    `${js.slice(0, k - 1).map((j) => `w${j} = w${j + 1};`).join(" ")} w${k - 1} = ${x};
        let s${m} = ${p.bias ? "cbias[n]" : "0.0"}${js.map((j) => ` + w${j} * c${j}`).join("")};
        u[${m}u * ${ch}u + n] = s${m} * sigmoid(s${m});`;
  const walk = (v: (m: number) => string) => {
    const ms = [...Array(rows).keys()];
    const body = p.pass
      // one sequence: its window carried through the positions, a snapshot before and after each
      ? `let o = n * ${k}u; ${taps("o")}
      ${snap(0)}
      ${ms.map((m) => `${conv(m, v(m))}\n        ${snap(m + 1)}`).join("\n      ")}
      ${store("o")}`
      // a batch: each row its own sequence's window
      : ms.map((m) =>
        `{
        let o = (${m}u * ${ch}u + n) * ${k}u; ${taps("o")}
        ${conv(m, v(m))}
        ${store("o")}
      }`
      ).join("\n      ");
    return `if (n < ${ch}u) {
      ${js.map((j) => `let c${j} = cw[n * ${k}u + ${j}u];`).join(" ")}
      ${body}
    }`;
  };
  const bindings: [string, "read" | "read_write", string][] = [
    ["window", "read_write", "f32"],
    ["cw", "read", "f32"],
    ...(p.bias ? [["cbias", "read", "f32"] as [string, "read", string]] : []),
    ["u", "read_write", "f32"],
    ...(p.pass ? [["snaps", "read_write", "f32"] as [string, "read_write", string]] : []),
  ];
  const norm = p.norm;
  const bufs: [B, B, B, ...B[]] = [
    b.a,
    b.W,
    b.c,
    ...(norm ? [b.gain!] : []),
    b.window,
    b.w,
    ...(p.bias ? [b.bias!] : []),
    b.u,
    ...(p.pass ? [b.snaps!] : []),
  ];
  recordGemv(d, "gemvConv", { M: rows, N: 2 * ch, K: p.K, transposeA: false, transposeB: true }, bufs, {
    key: `conv ${JSON.stringify(p)}`,
    bindings,
    after: walk,
    helpers: SIGMOID,
  }, norm);
}

/** A WGSL float literal of x (always with a decimal point or exponent). */
const f32 = (x: number) => {
  const t = String(Math.fround(x));
  return /[.e]/.test(t) ? t : `${t}.0`;
};

/** ids[outOffset + row] (and ids[alsoOffset + row]) = the id sampled from the row with uniform u[uOffset + row]. */
export function sample<B>(d: Dispatcher<B>, p: SampleParams, b: { logits: B; u: B; ids: B }): void {
  d.dispatch("sample", sampleShader(p), [b.logits, b.u, b.ids], itemGroups(p.rows));
}

/** c = rmsnorm(x) w W^T: the GEMV with the norm folded in (gemm.ts GemvNorm), one dispatch. */
export function normGemv<B>(d: Dispatcher<B>, p: NormGemvParams, b: { x: B; w: B; W: B; c: B }): void {
  const spec = { M: p.rows, N: p.N, K: p.d, transposeA: false, transposeB: true };
  recordGemv(d, "normGemv", spec, [b.x, b.W, b.c, b.w], undefined, { eps: p.eps });
}

/** The conv window over `len` positions of one sequence, a snapshot before and after each. */
export function convScan<B>(
  d: Dispatcher<B>,
  p: ConvScanParams,
  b: { x: B; window: B; snaps: B; w: B; bias?: B; y: B },
): void {
  convDispatch(d, "convScan", p, { seqs: 1, len: p.len, snaps: true }, b);
}

/** The selective SSM over `len` positions of one sequence, a snapshot of h before and after each. */
export function ssmScan<B>(d: Dispatcher<B>, p: SsmScanParams, b: SsmBuffers<B> & { snaps: B }): void {
  ssmDispatch(d, "ssmScan", p, { seqs: 1, len: p.len, snaps: true }, b);
}
