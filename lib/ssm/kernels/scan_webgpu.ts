/**
 * The fused selective scan on WebGPU: WGSL compute shaders dispatched on TF.js's own device and command
 * encoder (so they are ordered with every other tfjs op), registered as the webgpu kernels of
 * `SelectiveScan` and `SelectiveScanGrad` (see op.ts). The math is that of scan_js.ts, its reference twin.
 *
 * Parallel over length too: the sequence is cut into chunks of T steps, and every (batch, channel,
 * chunk) is one thread.
 *   forward   1. summary: each chunk from a zero state -> its final state S_c and decay product P_c
 *             2. carry:   per (batch, channel), sequentially over chunks: H_c = P_{c-1} H_{c-1} + S_{c-1}
 *             3. output:  each chunk again from its true initial state H_c -> y (and the last state)
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

function dimsFor(u: tf.TensorInfo, A: tf.TensorInfo): Dims {
  const [batch, dim, len] = u.shape;
  const ns = A.shape[1];
  const T = Math.min(CHUNK, Math.ceil(len / SUB) * SUB);
  return { batch, dim, ns, len, T, nc: Math.ceil(len / T), groups: Math.ceil(dim / WG) };
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

/** 1. (b, d, c): final state from zero and decay product of each chunk -> summary (b, d, nc, 2 ns). */
function summaryShader(k: Dims, has: Set<string>, sp: boolean): string {
  return prelude(k, has, sp, [...inputBindings(["u", "delta", "A", "B", "deltaBias"], has), ["summary", "read_write"]]) + `
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let d = gid.x; let c = gid.y; let b = gid.z;
  if (d >= DIM) { return; }
  var h: array<f32, ${k.ns}>; var p: array<f32, ${k.ns}>;
  for (var n = 0u; n < NS; n++) { h[n] = 0.0; p[n] = 1.0; }
  for (var t = c * T; t < chunk_end(c); t++) {
    let dt = step_dt(raw_dt(b, d, t));
    let dtu = dt * u[(b * DIM + d) * LEN + t];
    for (var n = 0u; n < NS; n++) {
      let a = exp(dt * A[d * NS + n]);
      h[n] = a * h[n] + dtu * B[(b * NS + n) * LEN + t];
      p[n] = p[n] * a;
    }
  }
  let o = ((b * DIM + d) * NC + c) * 2u * NS;
  for (var n = 0u; n < NS; n++) { summary[o + n] = h[n]; summary[o + NS + n] = p[n]; }
}`;
}

/** 2. (b, d): chunk initial states -> states (b, d, nc + 1, ns); the last slot is the final state. */
function carryShader(k: Dims, has: Set<string>, sp: boolean): string {
  return prelude(k, has, sp, [["summary", "read"], ...inputBindings(["initialState"], has), ["states", "read_write"]]) + `
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let d = gid.x; let b = gid.z;
  if (d >= DIM) { return; }
  var h: array<f32, ${k.ns}>;
  for (var n = 0u; n < NS; n++) { h[n] = ${has.has("initialState") ? "initialState[(b * DIM + d) * NS + n]" : "0.0"}; }
  for (var c = 0u; c < NC; c++) {
    let o = ((b * DIM + d) * (NC + 1u) + c) * NS;
    let s = ((b * DIM + d) * NC + c) * 2u * NS;
    for (var n = 0u; n < NS; n++) { states[o + n] = h[n]; h[n] = summary[s + NS + n] * h[n] + summary[s + n]; }
  }
  let o = ((b * DIM + d) * (NC + 1u) + NC) * NS;
  for (var n = 0u; n < NS; n++) { states[o + n] = h[n]; }
}`;
}

/** 3. (b, d, c): y over the chunk from its initial state. */
function outputShader(k: Dims, has: Set<string>, sp: boolean): string {
  return prelude(k, has, sp, [
    ...inputBindings(["u", "delta", "A", "B", "C", "D", "z", "deltaBias"], has), ["states", "read"], ["y", "read_write"],
  ]) + `
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let d = gid.x; let c = gid.y; let b = gid.z;
  if (d >= DIM) { return; }
  var h: array<f32, ${k.ns}>;
  let so = ((b * DIM + d) * (NC + 1u) + c) * NS;
  for (var n = 0u; n < NS; n++) { h[n] = states[so + n]; }
  for (var t = c * T; t < chunk_end(c); t++) {
    let i = (b * DIM + d) * LEN + t;
    let dt = step_dt(raw_dt(b, d, t));
    let ut = u[i];
    let dtu = dt * ut;
    var acc = 0.0;
    for (var n = 0u; n < NS; n++) {
      h[n] = exp(dt * A[d * NS + n]) * h[n] + dtu * B[(b * NS + n) * LEN + t];
      acc += h[n] * C[(b * NS + n) * LEN + t];
    }
    var out = acc${has.has("D") ? " + D[d] * ut" : ""};
    ${has.has("z") ? "let zt = z[i]; out = out * zt / (1.0 + exp(-zt));" : ""}
    y[i] = out;
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

/** 5. (b, d): incoming adjoint of every chunk -> incoming (b, d, nc + 1, ns); slot nc = dL/d initialState. */
function reverseCarryShader(k: Dims, has: Set<string>, sp: boolean): string {
  return prelude(k, has, sp, [["summary", "read"], ["local", "read"], ...(has.has("dLast") ? [["dLast", "read"] as [string, "read"]] : []), ["incoming", "read_write"]]) + `
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let d = gid.x; let b = gid.z;
  if (d >= DIM) { return; }
  var g: array<f32, ${k.ns}>;
  for (var n = 0u; n < NS; n++) { g[n] = ${has.has("dLast") ? "dLast[(b * DIM + d) * NS + n]" : "0.0"}; }
  for (var cc = NC; cc > 0u; cc--) {
    let c = cc - 1u;
    let o = ((b * DIM + d) * (NC + 1u) + c) * NS;
    let s = ((b * DIM + d) * NC + c) * 2u * NS;
    let l = ((b * DIM + d) * NC + c) * NS;
    for (var n = 0u; n < NS; n++) { incoming[o + n] = g[n]; g[n] = local[l + n] + summary[s + NS + n] * g[n]; }
  }
  let o = ((b * DIM + d) * (NC + 1u) + NC) * NS;
  for (var n = 0u; n < NS; n++) { incoming[o + n] = g[n]; }
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
  var h: array<f32, ${k.ns}>;
  let so = ((b * DIM + dd) * (NC + 1u) + c) * NS;
  for (var n = 0u; n < NS; n++) { h[n] = states[so + n]; }
  for (var t = start; t < end; t++) {
    if ((t - start) % SUB == 0u) { let j = (t - start) / SUB; for (var n = 0u; n < NS; n++) { hsub[j * NS + n] = h[n]; } }
    let dt = step_dt(raw_dt(b, dd, t));
    let dtu = dt * u[(b * DIM + dd) * LEN + t];
    for (var n = 0u; n < NS; n++) { h[n] = exp(dt * A[dd * NS + n]) * h[n] + dtu * B[(b * NS + n) * LEN + t]; }
  }
  var g: array<f32, ${k.ns}>; // dL/dh_t of the step being processed, before adding the step's own output
  for (var n = 0u; n < NS; n++) { g[n] = incoming[so + n]; }
  var gA: array<f32, ${k.ns}>;
  for (var n = 0u; n < NS; n++) { gA[n] = 0.0; }
  var gD = 0.0; var gBias = 0.0;
  var hbuf: array<f32, ${SUB * k.ns}>; // h of the current sub-chunk's steps
  for (var jj = nsub; jj > 0u; jj--) {
    let j = jj - 1u;
    let s0 = start + j * SUB; let s1 = min(end, s0 + SUB);
    for (var n = 0u; n < NS; n++) { h[n] = hsub[j * NS + n]; }
    for (var t = s0; t < s1; t++) {
      let dt = step_dt(raw_dt(b, dd, t));
      let dtu = dt * u[(b * DIM + dd) * LEN + t];
      for (var n = 0u; n < NS; n++) {
        h[n] = exp(dt * A[dd * NS + n]) * h[n] + dtu * B[(b * NS + n) * LEN + t];
        hbuf[(t - s0) * NS + n] = h[n];
      }
    }
    for (var tt = s1; tt > s0; tt--) {
      let t = tt - 1u;
      let i = (b * DIM + dd) * LEN + t;
      let ut = u[i];
      let raw = raw_dt(b, dd, t);
      let dt = step_dt(raw);
      var gOut = gy[i];
      ${hasZ ? `let zt = z[i]; let sg = 1.0 / (1.0 + exp(-zt));
      var out = ${has.has("D") ? "D[dd] * ut" : "0.0"};
      for (var n = 0u; n < NS; n++) { out += hbuf[(t - s0) * NS + n] * C[(b * NS + n) * LEN + t]; }
      if (live) { gz[i] = gOut * out * sg * (1.0 + zt * (1.0 - sg)); }
      gOut = gOut * zt * sg;` : ""}
      gD += gOut * ut;
      var gU = gOut * ${has.has("D") ? "D[dd]" : "0.0"};
      var gDt = 0.0;
      for (var n = 0u; n < NS; n++) {
        let bt = B[(b * NS + n) * LEN + t];
        let ct = C[(b * NS + n) * LEN + t];
        let hn = hbuf[(t - s0) * NS + n];
        var prev: f32;
        if (t > s0) { prev = hbuf[(t - s0 - 1u) * NS + n]; } else { prev = hsub[j * NS + n]; }
        let An = A[dd * NS + n];
        let a = exp(dt * An);
        let gh = g[n] + gOut * ct; // dL/dh_t
        let gDecay = gh * prev * a;
        gDt += gDecay * An + gh * bt * ut;
        gA[n] += gDecay * dt;
        gU += gh * dt * bt;
        shB[lid.x * NS + n] = select(0.0, gh * dt * ut, live);
        shC[lid.x * NS + n] = select(0.0, gOut * hn, live);
        g[n] = gh * a; // dL/dh_{t-1}
      }
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
    for (var n = 0u; n < NS; n++) { paramPartial[po + n] = gA[n]; }
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
function perChannel(k: Dims): [number, number, number] {
  return [k.groups, 1, k.batch];
}

function pick(inputs: Record<string, tf.TensorInfo>, names: string[]): tf.TensorInfo[] {
  return names.filter((n) => inputs[n]).map((n) => inputs[n]);
}

/** Forward steps 1-2: chunk summaries and chunk initial states (the caller disposes both). */
function chunkStates(be: Backend, x: Record<string, tf.TensorInfo>, k: Dims, has: Set<string>, sp: boolean) {
  const summary = newTensor(be, [k.batch, k.dim, k.nc, 2 * k.ns]);
  run(be, summaryShader(k, has, sp), [...pick(x, ["u", "delta", "A", "B", "deltaBias"]), summary], perChunk(k));
  const states = newTensor(be, [k.batch, k.dim, k.nc + 1, k.ns]);
  run(be, carryShader(k, has, sp), [summary, ...pick(x, ["initialState"]), states], perChannel(k));
  return { summary, states };
}

function forwardKernel({ inputs: list, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: unknown }) {
  const be = backend as Backend;
  const a = attrs as unknown as ScanAttrs;
  const x = namedInputs(list, a);
  const k = dimsFor(x.u, x.A);
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
  run(be, reverseCarryShader(k, has, sp), [summary, local, ...pick(x, ["dLast"]), incoming], perChannel(k));
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
