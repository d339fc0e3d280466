/**
 * The fused selective scan on WebGPU: WGSL compute shaders dispatched on TF.js's own device and command
 * encoder (so they are ordered with every other tfjs op), registered as the webgpu kernels of
 * `SelectiveScan` and `SelectiveScanGrad` (see op.ts). The math is that of scan_js.ts, its reference twin.
 *
 * Parallel over length too: the sequence is cut into chunks of T steps, and every (batch, channel,
 * chunk) is one thread.
 *   forward   1. summary: each chunk from a zero state -> its final state S_c and decay product P_c
 *             2. carry:   per (batch, channel, state), sequentially over chunks: H_c = P_{c-1} H_{c-1} + S_{c-1}
 *             3. output:  each chunk again from its true initial state H_c -> y (and the last state)
 *   Steps 1 and 3 go through workgroup memory in coalesced (64 channels, 32 steps) tiles (see tileLoads)
 *   and keep the 16 states in named registers; the forward picks its own, longer chunks (forwardChunk).
 *   backward  the forward's steps 1-2 give H_c; then the same three steps on the adjoint, in reverse time:
 *             4. local adjoint of each chunk from zero; 5. reverse carry; 6. gradients: each chunk
 *             recomputes its states (16 steps at a time, kept in registers) and walks back through them.
 * Sums over channels (dB, dC) are reduced inside a workgroup (64 channels) in shared memory; sums over
 * batch and chunks (dA, dD, d bias) and over channel groups are finished by two small reduction passes.
 * Extra memory: O(b d l / T * n) for chunk states plus O(b n l d / 64) partial sums; never (b, d, l, n).
 */
import * as tf from "@tensorflow/tfjs";
import { namedInputs, SCAN_GRAD_KERNEL, SCAN_KERNEL, type ScanAttrs } from "./op_common.ts";

const WG = 64; // channels per workgroup
/** Steps recomputed at once in the backward pass (kept in private memory); MAMBABYTE_SCAN_SUB overrides. */
const SUB = envInt("MAMBABYTE_SCAN_SUB", 16);
/** Steps per chunk (a multiple of SUB); MAMBABYTE_SCAN_CHUNK overrides. */
const CHUNK = Math.ceil(envInt("MAMBABYTE_SCAN_CHUNK", 64) / SUB) * SUB;

function envInt(name: string, fallback: number): number {
  const v = Number(Deno.env.get(name) ?? "");
  return Number.isInteger(v) && v > 0 ? v : fallback;
}

interface Dims {
  batch: number;
  dim: number;
  ns: number;
  len: number;
  T: number;
  nc: number;
  groups: number;
}

// deno-lint-ignore no-explicit-any
type Backend = any;

function dimsFor(u: tf.TensorInfo, A: tf.TensorInfo, chunk = CHUNK): Dims {
  const [batch, dim, len] = u.shape;
  const ns = A.shape[1];
  const T = Math.min(chunk, Math.ceil(len / SUB) * SUB);
  return { batch, dim, ns, len, T, nc: Math.ceil(len / T), groups: Math.ceil(dim / WG) };
}

/** Workgroups the forward pass aims for (enough to fill the GPU); MAMBABYTE_SCAN_FWD_WGS overrides. */
const FWD_WGS = envInt("MAMBABYTE_SCAN_FWD_WGS", 4096);

/**
 * The forward pass has no per-thread state history to keep, so its chunks can be long: fewer chunks means
 * less chunk-state traffic (summary and states are O(b d l / T ns)). It takes the longest chunk (at most
 * 512 steps, at least one tile) that still leaves about FWD_WGS workgroups; MAMBABYTE_SCAN_FWD_CHUNK fixes it.
 */
export function forwardChunk(batch: number, dim: number, len: number): number {
  const fixed = envInt("MAMBABYTE_SCAN_FWD_CHUNK", 0);
  if (fixed > 0) return Math.ceil(fixed / TT) * TT;
  let chunk = 512;
  while (chunk > TT && batch * Math.ceil(dim / WG) * Math.ceil(len / chunk) < FWD_WGS) chunk /= 2;
  return chunk;
}
function forwardDimsFor(u: tf.TensorInfo, A: tf.TensorInfo): Dims {
  const [batch, dim, len] = u.shape;
  return dimsFor(u, A, forwardChunk(batch, dim, len));
}

/** WGSL shared by all passes: constants, bindings and the per-step math. */
function prelude(k: Dims, has: Set<string>, softplus: boolean, bindings: [string, "read" | "read_write"][]): string {
  const decls = bindings.map(([name, access], i) =>
    `@group(0) @binding(${i}) var<storage, ${access}> ${name}: array<f32>;`
  ).join("\n");
  return `
const BATCH: u32 = ${k.batch}u; const DIM: u32 = ${k.dim}u; const NS: u32 = ${k.ns}u; const LEN: u32 = ${k.len}u;
const T: u32 = ${k.T}u; const NC: u32 = ${k.nc}u; const GROUPS: u32 = ${k.groups}u; const SUB: u32 = ${SUB}u;
${decls}
${bindings.some(([n]) => n === "delta") ? `// delta + bias of channel d at time t (batch b)
fn raw_dt(b: u32, d: u32, t: u32) -> f32 {
  return delta[(b * DIM + d) * LEN + t]${has.has("deltaBias") ? " + deltaBias[d]" : ""};
}` : ""}
// the step size: softplus as in PyTorch (linear above 20)
fn step_dt(raw: f32) -> f32 {
  ${softplus ? "if (raw > 20.0) { return raw; } if (raw < -15.0) { return exp(raw); } return log(1.0 + exp(raw));" : "return raw;"}
}
fn chunk_end(c: u32) -> u32 { return min(LEN, (c + 1u) * T); }
`;
}

function inputBindings(names: string[], has: Set<string>): [string, "read"][] {
  return names.filter((n) => has.has(n)).map((n) => [n, "read"]);
}

/**
 * Coalesced tiles. In the (b, d, l) layout a thread per channel walking along time reads with stride
 * LEN across the warp, which wastes most of every memory transaction. So a workgroup of CH threads
 * (one channel each) walks its chunk TT steps at a time: first all threads copy the (CH, TT) tiles of u
 * and delta (consecutive threads -> consecutive time steps, 128-byte runs) and the (ns, TT) tiles of
 * B and C into workgroup memory, computing softplus(delta + bias) on the way in; then each thread scans
 * its own channel out of workgroup memory (B, C reads are broadcasts); the output pass writes y back
 * into the u tile and stores it with the same coalesced pattern, applying the z gate there.
 */
const CH = 64; // channels per workgroup in the tiled passes (= threads)
const TT = 32; // time steps per tile
const PAD = TT + 1; // row stride of a (CH, TT) tile: odd, so a thread per row hits distinct banks

function quads(ns: number): number {
  return Math.ceil(ns / 4);
}
/**
 * The state loop written out over n with one scalar per state (h0, h1, ...): an array indexed in a
 * loop may be kept in (slow, per-thread) local memory by the shader compiler; named scalars stay in registers.
 */
function unrolled(ns: number, line: (n: number) => string): string {
  return Array.from({ length: ns }, (_, n) => line(n)).join("\n      ");
}
/** WGSL lines loading step t's B (and C) quads into bq0.., cq0..; `Bn`/`Cn` name state n's value. */
function stepBC(ns: number, withC: boolean): string {
  return Array.from({ length: quads(ns) }, (_, q) =>
    `let bq${q} = sB[t * ${quads(ns)}u + ${q}u];` + (withC ? ` let cq${q} = sC[t * ${quads(ns)}u + ${q}u];` : "")
  ).join("\n      ");
}
const Bn = (n: number) => `bq${n >> 2}.${"xyzw"[n % 4]}`;
const Cn = (n: number) => `cq${n >> 2}.${"xyzw"[n % 4]}`;

/** WGSL for the tiled passes: tile storage and the cooperative loads of one tile starting at t0. */
function tileLoads(k: Dims, has: Set<string>, withC: boolean): string {
  return `
var<workgroup> sU: array<f32, ${CH * PAD}>;  // (CH, TT) u, then y in the output pass
var<workgroup> sDt: array<f32, ${CH * PAD}>; // (CH, TT) step size after bias and softplus
// (TT, ns) as vec4s: one step's 16 values of B (or C) are 4 broadcast loads, not 16
var<workgroup> sB: array<vec4<f32>, ${TT * quads(k.ns)}>;
${withC ? `var<workgroup> sC: array<vec4<f32>, ${TT * quads(k.ns)}>;` : ""}
// copies the tiles of time steps [t0, t0 + nt) of channels [d0, d0 + CH) of batch b
fn load_tile(lid: u32, b: u32, d0: u32, t0: u32, nt: u32) {
  for (var e = lid; e < ${CH * TT}u; e += ${CH}u) {
    let r = e / ${TT}u; let t = e % ${TT}u; let d = d0 + r;
    var uv = 0.0; var dv = 0.0;
    if (t < nt && d < DIM) {
      let i = (b * DIM + d) * LEN + t0 + t;
      uv = u[i];
      dv = step_dt(delta[i]${has.has("deltaBias") ? " + deltaBias[d]" : ""});
    }
    sU[r * ${PAD}u + t] = uv; sDt[r * ${PAD}u + t] = dv;
  }
  for (var e = lid; e < ${TT}u * NS; e += ${CH}u) {
    let n = e / ${TT}u; let t = e % ${TT}u;
    var bv = 0.0; ${withC ? "var cv = 0.0;" : ""}
    if (t < nt) {
      let j = (b * NS + n) * LEN + t0 + t;
      bv = B[j]; ${withC ? "cv = C[j];" : ""}
    }
    let q = t * ${quads(k.ns)}u + n / 4u;
    sB[q][n % 4u] = bv; ${withC ? "sC[q][n % 4u] = cv;" : ""}
  }
}`;
}

/** 1. (b, d, c): final state from zero and decay product of each chunk -> summary (b, d, nc, 2 ns). */
function summaryShader(k: Dims, has: Set<string>, sp: boolean): string {
  return prelude(k, has, sp, [...inputBindings(["u", "delta", "A", "B", "deltaBias"], has), ["summary", "read_write"]]) +
    tileLoads(k, has, false) + `
@compute @workgroup_size(${CH}) fn main(@builtin(local_invocation_id) lid3: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let lid = lid3.x; let d0 = wid.x * ${CH}u; let c = wid.y; let b = wid.z; // uniform, as barriers need
  let d = min(d0 + lid, DIM - 1u);
  // exp(x) = exp2(x log2 e): A is scaled once
  ${unrolled(k.ns, (n) => `var h${n} = 0.0; let a${n} = A[d * NS + ${n}u] * 1.4426950408889634;`)}
  var dtSum = 0.0; // the chunk's decay product is exp(A sum(dt)): no per-step product needed
  let end = chunk_end(c);
  for (var t0 = c * T; t0 < end; t0 += ${TT}u) {
    let nt = min(${TT}u, end - t0);
    load_tile(lid, b, d0, t0, nt);
    workgroupBarrier();
    for (var t = 0u; t < nt; t++) {
      let dt = sDt[lid * ${PAD}u + t];
      let dtu = dt * sU[lid * ${PAD}u + t];
      dtSum += dt;
      ${stepBC(k.ns, false)}
      ${unrolled(k.ns, (n) => `h${n} = exp2(dt * a${n}) * h${n} + dtu * ${Bn(n)};`)}
    }
    workgroupBarrier();
  }
  if (d0 + lid < DIM) {
    let o = ((b * DIM + d) * NC + c) * 2u * NS;
    ${unrolled(k.ns, (n) => `summary[o + ${n}u] = h${n}; summary[o + NS + ${n}u] = exp2(dtSum * a${n});`)}
  }
}`;
}

/**
 * 2. (b, d, n): chunk initial states -> states (b, d, nc + 1, ns); the last slot is the final state. A
 * thread per state n (not per channel): the walk over chunks is sequential, so it needs all the threads
 * it can get when b d is small, and neighbouring threads then read neighbouring words.
 */
function carryShader(k: Dims, has: Set<string>, sp: boolean): string {
  return prelude(k, has, sp, [["summary", "read"], ...inputBindings(["initialState"], has), ["states", "read_write"]]) + `
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let idx = gid.x + gid.y * 65535u * ${WG}u; // over b * d * ns
  if (idx >= BATCH * DIM * NS) { return; }
  let n = idx % NS; let bd = idx / NS;
  var h = ${has.has("initialState") ? "initialState[idx]" : "0.0"};
  for (var c = 0u; c < NC; c++) {
    let s = (bd * NC + c) * 2u * NS;
    states[(bd * (NC + 1u) + c) * NS + n] = h;
    h = summary[s + NS + n] * h + summary[s + n];
  }
  states[(bd * (NC + 1u) + NC) * NS + n] = h;
}`;
}

/** 3. (b, d, c): y over the chunk from its initial state (tiled as the summary pass). */
function outputShader(k: Dims, has: Set<string>, sp: boolean): string {
  return prelude(k, has, sp, [
    ...inputBindings(["u", "delta", "A", "B", "C", "D", "z", "deltaBias"], has), ["states", "read"], ["y", "read_write"],
  ]) + tileLoads(k, has, true) + `
@compute @workgroup_size(${CH}) fn main(@builtin(local_invocation_id) lid3: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let lid = lid3.x; let d0 = wid.x * ${CH}u; let c = wid.y; let b = wid.z;
  let d = min(d0 + lid, DIM - 1u);
  let so = ((b * DIM + d) * (NC + 1u) + c) * NS;
  ${unrolled(k.ns, (n) => `var h${n} = states[so + ${n}u]; let a${n} = A[d * NS + ${n}u] * 1.4426950408889634;`)}
  let skip = ${has.has("D") ? "D[d]" : "0.0"};
  let end = chunk_end(c);
  for (var t0 = c * T; t0 < end; t0 += ${TT}u) {
    let nt = min(${TT}u, end - t0);
    load_tile(lid, b, d0, t0, nt);
    workgroupBarrier();
    for (var t = 0u; t < nt; t++) {
      let dt = sDt[lid * ${PAD}u + t];
      let ut = sU[lid * ${PAD}u + t];
      let dtu = dt * ut;
      var acc = skip * ut;
      ${stepBC(k.ns, true)}
      ${unrolled(k.ns, (n) => `h${n} = exp2(dt * a${n}) * h${n} + dtu * ${Bn(n)}; acc += h${n} * ${Cn(n)};`)}
      sU[lid * ${PAD}u + t] = acc; // u of this step is no longer needed: the tile now holds y
    }
    workgroupBarrier();
    for (var e = lid; e < ${CH * TT}u; e += ${CH}u) { // coalesced store, z gate on the way out
      let r = e / ${TT}u; let t = e % ${TT}u; let dd = d0 + r;
      if (t < nt && dd < DIM) {
        let i = (b * DIM + dd) * LEN + t0 + t;
        var out = sU[r * ${PAD}u + t];
        ${has.has("z") ? "let zt = z[i]; out = out * zt / (1.0 + exp(-zt));" : ""}
        y[i] = out;
      }
    }
    workgroupBarrier();
  }
}`;
}

/** gOut_t = dL/d(out_t) = gy_t * silu(z_t) */
function gOutExpr(has: Set<string>): string {
  return has.has("z") ? "gy[i] * z[i] / (1.0 + exp(-z[i]))" : "gy[i]";
}

/** 4. (b, d, c): the adjoint carried out of each chunk from a zero incoming adjoint -> local (b, d, nc, ns). */
function localAdjointShader(k: Dims, has: Set<string>, sp: boolean): string {
  return prelude(k, has, sp, [
    ...inputBindings(["delta", "A", "C", "z", "deltaBias"], has), ["gy", "read"], ["local", "read_write"],
  ]) + `
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let d = gid.x; let c = gid.y; let b = gid.z;
  if (d >= DIM) { return; }
  var g: array<f32, ${k.ns}>;
  for (var n = 0u; n < NS; n++) { g[n] = 0.0; }
  for (var t = chunk_end(c); t > c * T; t--) {
    let s = t - 1u;
    let i = (b * DIM + d) * LEN + s;
    let dt = step_dt(raw_dt(b, d, s));
    let go = ${gOutExpr(has).replace(/\[i\]/g, "[i]")};
    for (var n = 0u; n < NS; n++) {
      g[n] = exp(dt * A[d * NS + n]) * (g[n] + go * C[(b * NS + n) * LEN + s]);
    }
  }
  let o = ((b * DIM + d) * NC + c) * NS;
  for (var n = 0u; n < NS; n++) { local[o + n] = g[n]; }
}`;
}

/** 5. (b, d, n): incoming adjoint of every chunk -> incoming (b, d, nc + 1, ns); slot nc = dL/d initialState. */
function reverseCarryShader(k: Dims, has: Set<string>, sp: boolean): string {
  return prelude(k, has, sp, [["summary", "read"], ["local", "read"], ...(has.has("dLast") ? [["dLast", "read"] as [string, "read"]] : []), ["incoming", "read_write"]]) + `
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let idx = gid.x + gid.y * 65535u * ${WG}u; // over b * d * ns
  if (idx >= BATCH * DIM * NS) { return; }
  let n = idx % NS; let bd = idx / NS;
  var g = ${has.has("dLast") ? "dLast[idx]" : "0.0"};
  for (var cc = NC; cc > 0u; cc--) {
    let c = cc - 1u;
    incoming[(bd * (NC + 1u) + c) * NS + n] = g;
    g = local[(bd * NC + c) * NS + n] + summary[(bd * NC + c) * 2u * NS + NS + n] * g;
  }
  incoming[(bd * (NC + 1u) + NC) * NS + n] = g;
}`;
}

/**
 * 6. (b, d, c): all gradients of the chunk. Writes du, ddelta, dz directly; per-thread partial sums for
 * dA, dD, d bias -> paramPartial (b, nc, d, ns + 2); per-workgroup sums over its 64 channels for dB, dC
 * -> bcPartial (2, b, groups, ns, l).
 */
function gradientShader(k: Dims, has: Set<string>, sp: boolean): string {
  const hasZ = has.has("z");
  return prelude(k, has, sp, [
    ...inputBindings(["u", "delta", "A", "B", "C", "D", "z", "deltaBias"], has),
    ["states", "read"], ["incoming", "read"], ["gy", "read"],
    ["gu", "read_write"], ["gdelta", "read_write"], ...(hasZ ? [["gz", "read_write"] as [string, "read_write"]] : []),
    ["paramPartial", "read_write"], ["bcPartial", "read_write"],
  ]) + `
var<workgroup> shB: array<f32, ${WG * k.ns}>;
var<workgroup> shC: array<f32, ${WG * k.ns}>;
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
                                       @builtin(workgroup_id) wid: vec3<u32>) {
  let d = gid.x; let c = wid.y; let b = wid.z; // c, b from the workgroup id: uniform, as barriers need
  let live = d < DIM;
  let dd = min(d, DIM - 1u); // dead lanes read a valid channel and contribute zeros
  let start = c * T; let end = chunk_end(c);
  let nsub = (end - start + SUB - 1u) / SUB;
  // states before each sub-chunk, from one forward sweep
  var hsub: array<f32, ${(k.T / SUB) * k.ns}>;
  // per-state values as named scalars (h0, g0, gA0, ...), written out over n: see unrolled()
  let so = ((b * DIM + dd) * (NC + 1u) + c) * NS;
  ${unrolled(k.ns, (n) => `var h${n} = states[so + ${n}u]; let a${n} = A[dd * NS + ${n}u];`)}
  for (var t = start; t < end; t++) {
    if ((t - start) % SUB == 0u) { let j = (t - start) / SUB; ${unrolled(k.ns, (n) => `hsub[j * NS + ${n}u] = h${n};`)} }
    let dt = step_dt(raw_dt(b, dd, t));
    let dtu = dt * u[(b * DIM + dd) * LEN + t];
    ${unrolled(k.ns, (n) => `h${n} = exp(dt * a${n}) * h${n} + dtu * B[(b * NS + ${n}u) * LEN + t];`)}
  }
  // dL/dh_t of the step being processed, before adding the step's own output
  ${unrolled(k.ns, (n) => `var g${n} = incoming[so + ${n}u]; var gA${n} = 0.0;`)}
  var gD = 0.0; var gBias = 0.0;
  var hbuf: array<f32, ${SUB * k.ns}>; // h of the current sub-chunk's steps
  for (var jj = nsub; jj > 0u; jj--) {
    let j = jj - 1u;
    let s0 = start + j * SUB; let s1 = min(end, s0 + SUB);
    ${unrolled(k.ns, (n) => `h${n} = hsub[j * NS + ${n}u];`)}
    for (var t = s0; t < s1; t++) {
      let dt = step_dt(raw_dt(b, dd, t));
      let dtu = dt * u[(b * DIM + dd) * LEN + t];
      ${unrolled(k.ns, (n) => `h${n} = exp(dt * a${n}) * h${n} + dtu * B[(b * NS + ${n}u) * LEN + t]; hbuf[(t - s0) * NS + ${n}u] = h${n};`)}
    }
    for (var tt = s1; tt > s0; tt--) {
      let t = tt - 1u;
      let i = (b * DIM + dd) * LEN + t;
      let ut = u[i];
      let raw = raw_dt(b, dd, t);
      let dt = step_dt(raw);
      var gOut = gy[i];
      let hb = (t - s0) * NS; // this step's h in hbuf
      ${hasZ ? `let zt = z[i]; let sg = 1.0 / (1.0 + exp(-zt));
      var out = ${has.has("D") ? "D[dd] * ut" : "0.0"};
      for (var n = 0u; n < NS; n++) { out += hbuf[hb + n] * C[(b * NS + n) * LEN + t]; }
      if (live) { gz[i] = gOut * out * sg * (1.0 + zt * (1.0 - sg)); }
      gOut = gOut * zt * sg;` : ""}
      gD += gOut * ut;
      var gU = gOut * ${has.has("D") ? "D[dd]" : "0.0"};
      var gDt = 0.0;
      let first = t == s0;
      ${unrolled(k.ns, (n) => `{
        let bt = B[(b * NS + ${n}u) * LEN + t]; let ct = C[(b * NS + ${n}u) * LEN + t];
        let hn = hbuf[hb + ${n}u];
        let prev = select(hbuf[max(hb, NS) - NS + ${n}u], hsub[j * NS + ${n}u], first);
        let a = exp(dt * a${n});
        let gh = g${n} + gOut * ct; // dL/dh_t
        let gDecay = gh * prev * a;
        gDt += gDecay * a${n} + gh * bt * ut;
        gA${n} += gDecay * dt;
        gU += gh * dt * bt;
        shB[lid.x * NS + ${n}u] = select(0.0, gh * dt * ut, live);
        shC[lid.x * NS + ${n}u] = select(0.0, gOut * hn, live);
        g${n} = gh * a; // dL/dh_{t-1}
      }`)}
      ${sp ? "let gDelta = gDt / (1.0 + exp(-raw));" : "let gDelta = gDt;"}
      gBias += gDelta;
      if (live) { gu[i] = gU; gdelta[i] = gDelta; }
      workgroupBarrier();
      if (lid.x < 2u * NS) { // one lane per (B or C, n) sums the 64 channels of this step
        let which = lid.x / NS; let n = lid.x % NS;
        var acc = 0.0;
        for (var r = 0u; r < ${WG}u; r++) { if (which == 0u) { acc += shB[r * NS + n]; } else { acc += shC[r * NS + n]; } }
        bcPartial[(((which * BATCH + b) * GROUPS + wid.x) * NS + n) * LEN + t] = acc;
      }
      workgroupBarrier();
    }
  }
  if (live) {
    let po = ((b * NC + c) * DIM + d) * (NS + 2u);
    ${unrolled(k.ns, (n) => `paramPartial[po + ${n}u] = gA${n};`)}
    paramPartial[po + NS] = gD;
    paramPartial[po + NS + 1u] = gBias;
  }
}`;
}

/** Sums paramPartial over (b, c) -> gA (d, ns), gD (d), gBias (d); one thread per (d, column). */
function paramReduceShader(k: Dims, outs: string[]): string {
  return prelude(k, new Set(), false, [["paramPartial", "read"], ...outs.map((o) => [o, "read_write"] as [string, "read_write"])]) + `
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let idx = gid.x; // over d * (ns + 2)
  if (idx >= DIM * (NS + 2u)) { return; }
  let d = idx / (NS + 2u); let col = idx % (NS + 2u);
  var acc = 0.0;
  for (var bc = 0u; bc < BATCH * NC; bc++) { acc += paramPartial[(bc * DIM + d) * (NS + 2u) + col]; }
  if (col < NS) { gA[d * NS + col] = acc; }
  ${outs.includes("gD") ? "else if (col == NS) { gD[d] = acc; }" : ""}
  ${outs.includes("gBias") ? "else if (col == NS + 1u) { gBias[d] = acc; }" : ""}
}`;
}

/** Sums bcPartial over channel groups -> gB, gC (b, ns, l); one thread per element. */
function bcReduceShader(k: Dims): string {
  return prelude(k, new Set(), false, [["bcPartial", "read"], ["gB", "read_write"], ["gC", "read_write"]]) + `
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let idx = gid.x + gid.y * 65535u * ${WG}u; // over b * ns * l
  if (idx >= BATCH * NS * LEN) { return; }
  let t = idx % LEN; let n = (idx / LEN) % NS; let b = idx / (LEN * NS);
  var accB = 0.0; var accC = 0.0;
  for (var g = 0u; g < GROUPS; g++) {
    accB += bcPartial[((b * GROUPS + g) * NS + n) * LEN + t];
    accC += bcPartial[(((BATCH + b) * GROUPS + g) * NS + n) * LEN + t];
  }
  gB[idx] = accB; gC[idx] = accC;
}`;
}

// ---------------------------------------------------------------------------------------------------
// Dispatch on tfjs's device

const pipelines = new Map<string, GPUComputePipeline>();

function pipeline(be: Backend, code: string): GPUComputePipeline {
  let p = pipelines.get(code);
  if (!p) {
    const device: GPUDevice = be.device;
    p = device.createComputePipeline({ layout: "auto", compute: { module: device.createShaderModule({ code }), entryPoint: "main" } });
    pipelines.set(code, p);
  }
  return p;
}

function newTensor(be: Backend, shape: number[]): tf.TensorInfo {
  const info = be.makeTensorInfo(shape, "float32");
  be.uploadToGPU(info.dataId); // allocates the GPU buffer
  return info;
}

function bufferOf(be: Backend, info: tf.TensorInfo): GPUBuffer {
  be.uploadToGPU(info.dataId);
  return be.tensorMap.get(info.dataId).resource as GPUBuffer;
}

/** Records one dispatch of `code` over `groups` workgroups, binding `tensors` in order. */
function run(be: Backend, code: string, tensors: tf.TensorInfo[], groups: [number, number, number]): void {
  const p = pipeline(be, code);
  const device: GPUDevice = be.device;
  const limit = device.limits.maxStorageBuffersPerShaderStage;
  if (tensors.length > limit) {
    throw new Error(`selective scan (webgpu): a pass needs ${tensors.length} storage buffers but this device allows ${limit}`);
  }
  const bindGroup = device.createBindGroup({
    layout: p.getBindGroupLayout(0),
    entries: tensors.map((t, i) => ({ binding: i, resource: { buffer: bufferOf(be, t) } })),
  });
  for (const t of tensors) be.commandQueueOwnedIds.add(t.dataId); // keep buffers alive until submitted
  be.ensureCommandEncoderReady();
  be.endComputePassEncoder();
  const pass = (be.commandEncoder as GPUCommandEncoder).beginComputePass();
  pass.setPipeline(p);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(...groups);
  pass.end();
  be.dispatchCountInPass++;
}

function perChunk(k: Dims): [number, number, number] {
  return [k.groups, k.nc, k.batch];
}
/** One thread per (b, d, n), for the carry passes (2-d grid past 65535 workgroups). */
function perState(k: Dims): [number, number, number] {
  const wgs = Math.ceil(k.batch * k.dim * k.ns / WG);
  return [Math.min(wgs, 65535), Math.ceil(wgs / 65535), 1];
}

function pick(inputs: Record<string, tf.TensorInfo>, names: string[]): tf.TensorInfo[] {
  return names.filter((n) => inputs[n]).map((n) => inputs[n]);
}

/** Forward steps 1-2: chunk summaries and chunk initial states (the caller disposes both). */
function chunkStates(be: Backend, x: Record<string, tf.TensorInfo>, k: Dims, has: Set<string>, sp: boolean) {
  const summary = newTensor(be, [k.batch, k.dim, k.nc, 2 * k.ns]);
  run(be, summaryShader(k, has, sp), [...pick(x, ["u", "delta", "A", "B", "deltaBias"]), summary], perChunk(k));
  const states = newTensor(be, [k.batch, k.dim, k.nc + 1, k.ns]);
  run(be, carryShader(k, has, sp), [summary, ...pick(x, ["initialState"]), states], perState(k));
  return { summary, states };
}

function forwardKernel({ inputs: list, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: unknown }) {
  const be = backend as Backend;
  const a = attrs as unknown as ScanAttrs;
  const x = namedInputs(list, a);
  const k = forwardDimsFor(x.u, x.A);
  const has = new Set(Object.keys(x));
  const { summary, states } = chunkStates(be, x, k, has, a.deltaSoftplus);
  const y = newTensor(be, [k.batch, k.dim, k.len]);
  run(be, outputShader(k, has, a.deltaSoftplus),
    [...pick(x, ["u", "delta", "A", "B", "C", "D", "z", "deltaBias"]), states, y], perChunk(k));
  // the last state is slot nc of `states`: copy it out with a strided copy pass
  const last = newTensor(be, [k.batch, k.dim, k.ns]);
  run(be, lastStateShader(k), [states, last], [Math.ceil(k.batch * k.dim * k.ns / WG), 1, 1]);
  be.disposeData(summary.dataId);
  be.disposeData(states.dataId);
  return [y, last];
}

function lastStateShader(k: Dims): string {
  return prelude(k, new Set(), false, [["states", "read"], ["last", "read_write"]]) + `
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let idx = gid.x;
  if (idx >= BATCH * DIM * NS) { return; }
  let n = idx % NS; let bd = idx / NS;
  last[idx] = states[(bd * (NC + 1u) + NC) * NS + n];
}`;
}

function gradKernel({ inputs: list, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: unknown }) {
  const be = backend as Backend;
  const a = attrs as unknown as ScanAttrs;
  const sp = a.deltaSoftplus;
  const x = namedInputs(list, a);
  const k = dimsFor(x.u, x.A);
  const has = new Set(Object.keys(x));
  const { summary, states } = chunkStates(be, x, k, has, sp);
  const local = newTensor(be, [k.batch, k.dim, k.nc, k.ns]);
  run(be, localAdjointShader(k, has, sp), [...pick(x, ["delta", "A", "C", "z", "deltaBias"]), x.dy, local], perChunk(k));
  const incoming = newTensor(be, [k.batch, k.dim, k.nc + 1, k.ns]);
  run(be, reverseCarryShader(k, has, sp), [summary, local, ...pick(x, ["dLast"]), incoming], perState(k));
  const g: Record<string, tf.TensorInfo> = {
    u: newTensor(be, x.u.shape), delta: newTensor(be, x.u.shape),
    A: newTensor(be, x.A.shape), B: newTensor(be, x.B.shape), C: newTensor(be, x.C.shape),
  };
  if (has.has("z")) g.z = newTensor(be, x.u.shape);
  if (has.has("D")) g.D = newTensor(be, [k.dim]);
  if (has.has("deltaBias")) g.deltaBias = newTensor(be, [k.dim]);
  const paramPartial = newTensor(be, [k.batch, k.nc, k.dim, k.ns + 2]);
  const bcPartial = newTensor(be, [2, k.batch, k.groups, k.ns, k.len]);
  run(be, gradientShader(k, has, sp), [
    ...pick(x, ["u", "delta", "A", "B", "C", "D", "z", "deltaBias"]), states, incoming, x.dy,
    g.u, g.delta, ...(g.z ? [g.z] : []), paramPartial, bcPartial,
  ], perChunk(k));
  const paramOuts = ["gA", ...(g.D ? ["gD"] : []), ...(g.deltaBias ? ["gBias"] : [])];
  run(be, paramReduceShader(k, paramOuts), [paramPartial, g.A, ...(g.D ? [g.D] : []), ...(g.deltaBias ? [g.deltaBias] : [])],
    [Math.ceil(k.dim * (k.ns + 2) / WG), 1, 1]);
  const total = k.batch * k.ns * k.len;
  const wgs = Math.ceil(total / WG);
  run(be, bcReduceShader(k), [bcPartial, g.B, g.C], [Math.min(wgs, 65535), Math.ceil(wgs / 65535), 1]);
  if (has.has("initialState")) {
    g.initialState = newTensor(be, [k.batch, k.dim, k.ns]);
    run(be, lastStateShader(k), [incoming, g.initialState], [Math.ceil(k.batch * k.dim * k.ns / WG), 1, 1]);
  }
  for (const t of [summary, states, local, incoming, paramPartial, bcPartial]) be.disposeData(t.dataId);
  return a.present.split(",").map((name) => g[name]);
}

tf.registerKernel({ kernelName: SCAN_KERNEL, backendName: "webgpu", kernelFunc: forwardKernel as tf.KernelFunc });
tf.registerKernel({ kernelName: SCAN_GRAD_KERNEL, backendName: "webgpu", kernelFunc: gradKernel as tf.KernelFunc });
