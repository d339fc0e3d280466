/**
 * The WGSL of the fused selective scan (the passes that lib/kernels/webgpu/scan.ts dispatches, and the
 * algorithm, are described there): the kernels' settings (environment defaults, changeable at run time for
 * benchmarks), the shapes every pass is generated for, and one source generator per pass. Pure functions
 * of their arguments: no device here.
 */

// ---------------------------------------------------------------------------------------------------
// Configuration (environment defaults; setScanKernelConfig changes it at run time, e.g. for benchmarks)

export interface ScanKernelConfig {
  /** Forward-pass layout (also used for the backward's summary pass): see the header. */
  fwdKernel: "direct" | "tiled";
  /** Channels (threads) per workgroup in the forward passes. */
  fwdThreads: number;
  /** Forward chunk length; 0 picks it from the shape (forwardChunk). */
  fwdChunk: number;
  /** The automatic forward chunk is the longest that still leaves this many threads. */
  fwdMinThreads: number;
  /**
   * Gradient pass layout: "split" (the states of a channel over ceil(ns / 4) threads) or "channel" (one
   * thread holds a channel's 16 states).
   */
  bwdKernel: "split" | "channel";
  /** Backward chunk length T (a multiple of bwdSub). */
  bwdChunk: number;
  /** Backward block U: steps whose states are recomputed and kept in registers at once. */
  bwdSub: number;
  /** Channels (threads) per workgroup in the backward gradient pass. */
  bwdThreads: number;
  /** Read runs of consecutive steps as vec4s where the length is a multiple of 4. */
  vec4: boolean;
}

function envInt(name: string, fallback: number): number {
  const v = Number(Deno.env.get(name) ?? "");
  return Number.isInteger(v) && v >= 0 && Deno.env.get(name) !== undefined && Deno.env.get(name) !== ""
    ? v
    : fallback;
}

const config: ScanKernelConfig = {
  fwdKernel: Deno.env.get("MAMBABYTE_SCAN_FWD_KERNEL") === "tiled" ? "tiled" : "direct",
  fwdThreads: envInt("MAMBABYTE_SCAN_FWD_THREADS", 64),
  fwdChunk: envInt("MAMBABYTE_SCAN_FWD_CHUNK", 0),
  fwdMinThreads: envInt("MAMBABYTE_SCAN_FWD_MIN_THREADS", 1 << 16),
  bwdKernel: Deno.env.get("MAMBABYTE_SCAN_BWD_KERNEL") === "channel" ? "channel" : "split",
  bwdChunk: envInt("MAMBABYTE_SCAN_CHUNK", 32),
  bwdSub: envInt("MAMBABYTE_SCAN_SUB", 4),
  bwdThreads: envInt("MAMBABYTE_SCAN_BWD_THREADS", 16),
  vec4: Deno.env.get("MAMBABYTE_SCAN_VEC4") !== "0",
};

/** The current kernel configuration (a copy). */
export function scanKernelConfig(): ScanKernelConfig {
  return { ...config };
}

/** Changes the kernel configuration; later calls compile (and cache) the matching shaders. */
export function setScanKernelConfig(change: Partial<ScanKernelConfig>): void {
  const next = { ...config, ...change };
  const positive = ["fwdThreads", "bwdChunk", "bwdSub", "bwdThreads", "fwdMinThreads"] as const;
  for (const key of positive) {
    if (!Number.isInteger(next[key]) || next[key] <= 0) {
      throw new Error(`setScanKernelConfig: ${key} must be a positive integer, got ${next[key]}`);
    }
  }
  if (next.fwdKernel !== "direct" && next.fwdKernel !== "tiled") {
    throw new Error(`setScanKernelConfig: fwdKernel must be "direct" or "tiled", got ${next.fwdKernel}`);
  }
  if (next.bwdKernel !== "split" && next.bwdKernel !== "channel") {
    throw new Error(`setScanKernelConfig: bwdKernel must be "split" or "channel", got ${next.bwdKernel}`);
  }
  if (next.bwdChunk % next.bwdSub !== 0) {
    throw new Error(
      `setScanKernelConfig: bwdChunk (${next.bwdChunk}) must be a multiple of bwdSub (${next.bwdSub})`,
    );
  }
  Object.assign(config, next);
}

/** Steps per block of the direct forward passes and the local-adjoint pass (straight-line code). */
export const FWD_U = 8;
/** Time steps per tile of the tiled forward passes, and the unrolled steps of their inner loop. */
export const TT = 32;
const TT_INNER = 8;
const PAD = TT + 1; // row stride of a (channels, TT) tile: odd, so a thread per row hits distinct banks
const LOG2E = 1.4426950408889634;
const LN2 = 0.6931471805599453;

/**
 * The forward chunk: the longest (at most 512 steps, a power of two, at least one block) that still
 * leaves `fwdMinThreads` threads (b d ceil(l / T)), since fewer chunks mean less chunk-state traffic but
 * the GPU needs a few hundred thousand threads to hide latency; config.fwdChunk fixes it.
 */
export function forwardChunk(batch: number, dim: number, len: number): number {
  const unit = config.fwdKernel === "tiled" ? TT : FWD_U;
  const cap = Math.max(unit, Math.ceil(len / unit) * unit);
  if (config.fwdChunk > 0) return Math.min(cap, Math.ceil(config.fwdChunk / unit) * unit);
  let chunk = 512;
  while (chunk > unit && batch * dim * Math.ceil(len / chunk) < config.fwdMinThreads) chunk /= 2;
  return Math.min(cap, chunk);
}

// ---------------------------------------------------------------------------------------------------
// Shapes and WGSL building blocks

export interface Dims {
  batch: number;
  dim: number;
  ns: number;
  /** vec4s per state vector: ceil(ns / 4) (the padding states stay zero) */
  nq: number;
  len: number;
  /** chunk length and count */
  T: number;
  nc: number;
  /** threads (channels) per workgroup and workgroups along channels */
  ch: number;
  groups: number;
  /** runs of steps read as vec4s */
  vec: boolean;
}

/** The scan's sizes: u, delta, z, y (batch, dim, len); A (dim, ns); B, C (batch, ns, len). */
export interface ScanShape {
  batch: number;
  dim: number;
  len: number;
  ns: number;
}

export function dimsFor({ batch, dim, len, ns }: ScanShape, T: number, ch: number, unit: number): Dims {
  const chunk = Math.min(T, Math.ceil(len / unit) * unit);
  const nc = Math.ceil(len / chunk);
  if (nc > 65535 || batch > 65535) {
    throw new Error(
      `selective scan (webgpu): (batch ${batch}, length ${len}) needs ${nc} chunks of ${chunk}; at most 65535 of each are supported`,
    );
  }
  return {
    batch,
    dim,
    ns,
    nq: Math.ceil(ns / 4),
    len,
    T: chunk,
    nc,
    ch,
    groups: Math.ceil(dim / ch),
    vec: config.vec4 && len % 4 === 0 && unit % 4 === 0,
  };
}

type Access = "read" | "read_write";
/** A storage binding: name, access, element type. Every declared binding must be used by the shader. */
type Binding = [string, Access, "f32" | "vec4<f32>"];

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const lines = (n: number, f: (i: number) => string, sep = "\n  ") => range(n).map(f).join(sep);
const XYZW = "xyzw";

/**
 * WGSL: sums one block's dB, dC contributions over the workgroup's channels (`red`, (step, B|C, n) rows of
 * k.ch + 1 with padding), `threads` outputs per pass, into bcPartial. Shared by both gradient kernels.
 */
function bcReduction(k: Dims, outs: number, threads: number): string {
  return lines(Math.ceil(outs / threads), (s) =>
    `{
      let o = lid + ${s * threads}u;
      if (o < ${outs}u) {
        let base = o * ${k.ch + 1}u;
        var r0 = 0.0; var r1 = 0.0; var r2 = 0.0; var r3 = 0.0;
        ${
      lines(Math.ceil(k.ch / 4), (r) =>
        range(4).filter((i) => 4 * r + i < k.ch).map((i) =>
          `r${i} += red[base + ${4 * r + i}u];`
        ).join(" "), "\n        ")
    }
        let t = t0 + o / ${2 * k.ns}u;
        if (t < end) { bcPartial[((b * GROUPS + wid.x) * LEN + t) * ${2 * k.ns}u + o % ${
      2 * k.ns
    }u] = (r0 + r1) + (r2 + r3); }
      }
    }`, "\n    ");
}

/** A (b, d, l) array read in runs of consecutive steps: declared as vec4s when k.vec. */
function runBinding(k: Dims, name: string, access: Access = "read"): Binding {
  return k.vec ? [`${name}_v4`, access, "vec4<f32>"] : [name, access, "f32"];
}

function header(k: Dims, bindings: Binding[]): string {
  const decls = bindings.map(([name, access, type], i) =>
    `@group(0) @binding(${i}) var<storage, ${access}> ${name}: array<${type}>;`
  ).join("\n");
  return `
const BATCH: u32 = ${k.batch}u; const DIM: u32 = ${k.dim}u; const NS: u32 = ${k.ns}u; const NQ: u32 = ${k.nq}u;
const LEN: u32 = ${k.len}u; const T: u32 = ${k.T}u; const NC: u32 = ${k.nc}u; const CH: u32 = ${k.ch}u;
const GROUPS: u32 = ${k.groups}u;
${decls}
// softplus as max(x, 0) + log1p(exp(-|x|)), log1p by Goldberg's trick (WGSL has no log1p)
fn softplus(raw: f32) -> f32 {
  let x = exp(-abs(raw));
  let w = 1.0 + x;
  return max(raw, 0.0) + select(log(w) * (x / (w - 1.0)), x, w == 1.0);
}
fn sigmoid(x: f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }
`;
}

/**
 * WGSL defining `${v}0 .. ${v}{n-1}` = arr[row + t0 + j]: n consecutive steps of this thread's channel
 * (`row` = (b DIM + d) LEN), clamped to the row's last step (the caller zeroes steps past the chunk).
 */
function loadRun(k: Dims, arr: string, v: string, n: number): string {
  if (k.vec) {
    return lines(n / 4, (q) => `let ${v}q${q} = ${arr}_v4[(row + min(t0 + ${4 * q}u, LEN - 4u)) / 4u];`) +
      "\n  " +
      lines(n, (j) => `let ${v}${j} = ${v}q${j >> 2}.${XYZW[j % 4]};`);
  }
  return lines(n, (j) => `let ${v}${j} = ${arr}[row + min(t0 + ${j}u, LEN - 1u)];`);
}

/** WGSL for one element arr[idx] of a (b, d, l) array declared by runBinding. */
function elementAt(k: Dims, arr: string, idx: string): string {
  return k.vec ? `${arr}_v4[(${idx}) / 4u][(${idx}) % 4u]` : `${arr}[${idx}]`;
}

/** WGSL storing values `vals(j)` to arr[row + t0 + j] for the steps before `end`, on live lanes. */
function storeRun(k: Dims, arr: string, n: number, vals: (j: number) => string): string {
  if (k.vec) { // LEN % 4 == 0 and chunks are multiples of 4: a quad is all before `end` or all after
    return lines(
      n / 4,
      (q) =>
        `if (live && t0 + ${4 * q}u < end) { ${arr}_v4[(row + t0) / 4u + ${q}u] = vec4<f32>(${
          range(4).map((i) => vals(4 * q + i)).join(", ")
        }); }`,
    );
  }
  return lines(n, (j) => `if (live && t0 + ${j}u < end) { ${arr}[row + t0 + ${j}u] = ${vals(j)}; }`);
}

/** `let aq0 = vec4(A[d, 0..4]) * log2(e)` ...: exp(dt A) = exp2(dt aq); padding states get a = 0. */
function loadA(k: Dims): string {
  return lines(
    k.nq,
    (q) =>
      `let aq${q} = vec4<f32>(${
        range(4).map((i) => 4 * q + i < k.ns ? `A[d * NS + ${4 * q + i}u]` : "0.0").join(", ")
      }) * ${LOG2E};`,
  );
}

/** `var ${v}0 = vec4(buf[base + 0..4])` ...: a state vector from a (.., ns) buffer, zero-padded. */
function loadState(k: Dims, v: string, buf: string, base: string): string {
  return lines(
    k.nq,
    (q) =>
      `var ${v}${q} = vec4<f32>(${
        range(4).map((i) => 4 * q + i < k.ns ? `${buf}[${base} + ${4 * q + i}u]` : "0.0").join(", ")
      });`,
  );
}

/** WGSL storing state n of `expr(q, component)` to buf[base + n] for every real state n. */
function storeState(k: Dims, buf: string, base: string, expr: (q: number, c: string) => string): string {
  return lines(k.ns, (n) => `${buf}[${base} + ${n}u] = ${expr(n >> 2, XYZW[n % 4])};`);
}

/** WGSL for one forward step at time `t` (clamped inside the sequence) with step size dt, dtu = dt u. */
function forwardStep(k: Dims, s: string, withC: boolean): string {
  return `let bo${s} = (b * LEN + ts${s}) * 2u * NQ;
  ${lines(k.nq, (q) => `h${q} = exp2(dt${s} * aq${q}) * h${q} + dtu${s} * bct[bo${s} + ${q}u];`)}` +
    (withC
      ? `\n  let yc${s} = ${range(k.nq).map((q) => `dot(h${q}, bct[bo${s} + NQ + ${q}u])`).join(" + ")};`
      : "");
}

// ---------------------------------------------------------------------------------------------------
// 0. B, C -> bct (b, l, 2, nq) vec4

export function transposeShader(k: Dims): string {
  return header(k, [["B", "read", "f32"], ["C", "read", "f32"], ["bct", "read_write", "vec4<f32>"]]) + `
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let idx = gid.x + gid.y * 65535u * 64u; // over (b, which, q, t), t fastest: coalesced reads
  if (idx >= BATCH * 2u * NQ * LEN) { return; }
  let t = idx % LEN; let q = (idx / LEN) % NQ; let w = (idx / (LEN * NQ)) % 2u; let b = idx / (LEN * NQ * 2u);
  var v = vec4<f32>(0.0);
  for (var i = 0u; i < 4u; i++) {
    let n = q * 4u + i;
    if (n < NS) { let j = (b * NS + n) * LEN + t; v[i] = select(B[j], C[j], w == 1u); }
  }
  bct[((b * LEN + t) * 2u + w) * NQ + q] = v;
}`;
}

// ---------------------------------------------------------------------------------------------------
// 1, 3. forward passes over chunks: "summary" (from zero: final state, decay product) or "output" (y)

function forwardBindings(k: Dims, has: Set<string>, mode: "summary" | "output"): Binding[] {
  const out = mode === "output";
  const b: Binding[] = [runBinding(k, "u"), runBinding(k, "delta"), ["A", "read", "f32"], [
    "bct",
    "read",
    "vec4<f32>",
  ]];
  if (has.has("deltaBias")) b.push(["deltaBias", "read", "f32"]);
  if (out && has.has("D")) b.push(["D", "read", "f32"]);
  if (out && has.has("z")) b.push(runBinding(k, "z"));
  if (out) b.push(["states", "read", "f32"], runBinding(k, "y", "read_write"), ["last", "read_write", "f32"]);
  else b.push(["summary", "read_write", "f32"]);
  return b;
}

function forwardPrologue(k: Dims, mode: "summary" | "output"): string {
  return `let lid = lid3.x; let c = wid.y; let b = wid.z; // c, b uniform in the workgroup, as barriers need
  let lane = wid.x * CH + lid; let live = lane < DIM; let d = min(lane, DIM - 1u);
  let row = (b * DIM + d) * LEN;
  let start = c * T; let end = min(LEN, start + T);
  ${loadA(k)}
  ${
    mode === "output"
      ? loadState(k, "h", "states", "((b * DIM + d) * (NC + 1u) + c) * NS")
      : lines(k.nq, (q) => `var h${q} = vec4<f32>(0.0);`)
  }
  var dtSum = 0.0; // the chunk's decay product is exp(A sum(dt)): no per-step product needed`;
}

function forwardEpilogue(k: Dims, mode: "summary" | "output"): string {
  if (mode === "output") { // the last chunk's final state is the scan's last state
    return `if (live && c == NC - 1u) {
    let o = (b * DIM + d) * NS;
    ${storeState(k, "last", "o", (q, c) => `h${q}.${c}`)}
  }`;
  }
  return `if (live) {
    let o = ((b * DIM + d) * NC + c) * 2u * NS;
    ${storeState(k, "summary", "o", (q, c) => `h${q}.${c}`)}
    ${storeState(k, "summary", "o + NS", (q, c) => `exp2(dtSum * aq${q}.${c})`)}
  }`;
}

/** y of step s before the gate (D skip + C . h) and after it (times silu(z)). */
function gatedOutput(has: Set<string>, s: string, u: string): string {
  const pre = `${has.has("D") ? `D[d] * ${u} + ` : ""}yc${s}`;
  return has.has("z") ? `(${pre}) * z${s} * sigmoid(z${s})` : pre;
}

function directForwardShader(k: Dims, has: Set<string>, sp: boolean, mode: "summary" | "output"): string {
  const out = mode === "output";
  const U = FWD_U;
  const bias = has.has("deltaBias") ? " + deltaBias[d]" : "";
  return header(k, forwardBindings(k, has, mode)) + `
@compute @workgroup_size(${k.ch}) fn main(@builtin(local_invocation_id) lid3: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  ${forwardPrologue(k, mode)}
  for (var t0 = start; t0 < end; t0 += ${U}u) {
  ${loadRun(k, "u", "u", U)}
  ${loadRun(k, "delta", "dl", U)}
  ${out && has.has("z") ? loadRun(k, "z", "z", U) : ""}
  // steps past the chunk get dt = 0, which leaves the state as it is
  ${
    lines(U, (j) =>
      `let ts${j} = min(t0 + ${j}u, LEN - 1u);
  let dt${j} = select(0.0, ${sp ? `softplus(dl${j}${bias})` : `dl${j}${bias}`}, t0 + ${j}u < end);
  let dtu${j} = dt${j} * u${j};
  dtSum += dt${j};
  ${forwardStep(k, String(j), out)}`)
  }
  ${out ? storeRun(k, "y", U, (j) => gatedOutput(has, String(j), `u${j}`)) : ""}
  }
  ${forwardEpilogue(k, mode)}
}`;
}

function tiledForwardShader(k: Dims, has: Set<string>, sp: boolean, mode: "summary" | "output"): string {
  const out = mode === "output";
  // the cooperative copies: element e = lid + i CH of the (CH, TT) tile is row e / TT, step e % TT
  const perThread = TT; // CH * TT elements over CH threads
  const tileIndex = (i: number) =>
    `let e${i} = lid + ${i}u * CH; let r${i} = e${i} / ${TT}u; let s${i} = e${i} % ${TT}u;
    let i${i} = (b * DIM + min(d0 + r${i}, DIM - 1u)) * LEN + min(t0 + s${i}, LEN - 1u);`;
  const bias = (i: number) => has.has("deltaBias") ? ` + deltaBias[min(d0 + r${i}, DIM - 1u)]` : "";
  const fb = forwardBindings(k, has, mode).map((b): Binding =>
    b[0].endsWith("_v4") ? [b[0].slice(0, -3), b[1], "f32"] : b
  );
  return header(k, fb) + `
var<workgroup> sU: array<f32, ${k.ch * PAD}>;  // (CH, TT) u, then y (before the gate) in the output pass
var<workgroup> sDt: array<f32, ${k.ch * PAD}>; // (CH, TT) step sizes after bias and softplus
@compute @workgroup_size(${k.ch}) fn main(@builtin(local_invocation_id) lid3: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  ${forwardPrologue(k, mode)}
  let d0 = wid.x * CH;
  for (var t0 = start; t0 < end; t0 += ${TT}u) {
    ${
    lines(perThread, (i) =>
      `{ ${tileIndex(i)}
    sU[r${i} * ${PAD}u + s${i}] = u[i${i}];
    sDt[r${i} * ${PAD}u + s${i}] = select(0.0, ${
        sp ? `softplus(delta[i${i}]${bias(i)})` : `delta[i${i}]${bias(i)}`
      }, t0 + s${i} < end); }`, "\n    ")
  }
    workgroupBarrier();
    for (var j0 = 0u; j0 < ${TT}u; j0 += ${TT_INNER}u) {
      ${
    lines(TT_INNER, (j) =>
      `let x${j} = lid * ${PAD}u + j0 + ${j}u;
      let ts${j} = min(t0 + j0 + ${j}u, LEN - 1u);
      let dt${j} = sDt[x${j}]; let u${j} = sU[x${j}]; let dtu${j} = dt${j} * u${j};
      dtSum += dt${j};
      ${forwardStep(k, String(j), out)}
      ${out ? `sU[x${j}] = ${has.has("D") ? `D[d] * u${j} + ` : ""}yc${j};` : ""}`, "\n      ")
  }
    }
    ${
    out
      ? `workgroupBarrier();
    ${
        lines(
          perThread,
          (i) =>
            `{ ${tileIndex(i)}
    if (t0 + s${i} < end && d0 + r${i} < DIM) {
      let v = sU[r${i} * ${PAD}u + s${i}];
      ${has.has("z") ? `let zz = z[i${i}]; y[i${i}] = v * zz * sigmoid(zz);` : `y[i${i}] = v;`}
    } }`,
          "\n    ",
        )
      }`
      : ""
  }
    workgroupBarrier();
  }
  ${forwardEpilogue(k, mode)}
}`;
}

export function forwardShader(k: Dims, has: Set<string>, sp: boolean, mode: "summary" | "output"): string {
  return config.fwdKernel === "tiled"
    ? tiledForwardShader(k, has, sp, mode)
    : directForwardShader(k, has, sp, mode);
}

// ---------------------------------------------------------------------------------------------------
// 2, 5. carries over chunks: one thread per (b, d, n), four chunks per iteration (loads issued together)

/** 2. summary (b, d, nc, 2 ns) -> states (b, d, nc + 1, ns): H_{c+1} = P_c H_c + S_c; slot nc = last state. */
export function carryShader(k: Dims, has: Set<string>): string {
  return header(k, [
    ["summary", "read", "f32"],
    ...(has.has("initialState") ? [["initialState", "read", "f32"] as Binding] : []),
    ["states", "read_write", "f32"],
  ]) + `
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let idx = gid.x + gid.y * 65535u * 64u; // over b * d * ns
  if (idx >= BATCH * DIM * NS) { return; }
  let n = idx % NS; let bd = idx / NS;
  var h = ${has.has("initialState") ? "initialState[idx]" : "0.0"};
  var c = 0u;
  for (; c + 4u <= NC; c += 4u) {
    let s = (bd * NC + c) * 2u * NS + n; let o = (bd * (NC + 1u) + c) * NS + n;
    ${
    lines(4, (i) =>
      `let S${i} = summary[s + ${2 * i}u * NS]; let P${i} = summary[s + ${2 * i + 1}u * NS];`, "\n    ")
  }
    ${lines(4, (i) => `states[o + ${i}u * NS] = h; h = P${i} * h + S${i};`, "\n    ")}
  }
  for (; c < NC; c++) {
    let s = (bd * NC + c) * 2u * NS + n;
    states[(bd * (NC + 1u) + c) * NS + n] = h;
    h = summary[s + NS] * h + summary[s];
  }
  states[(bd * (NC + 1u) + NC) * NS + n] = h;
}`;
}

/**
 * 5. local (b, d, nc, ns) and the decay products -> incoming (b, d, nc + 1, ns): the adjoint entering each
 * chunk from its end, G_c = local_{c+1} + P_{c+1} G_{c+1}, walking back from dLast; slot nc = dL/dh0.
 */
export function reverseCarryShader(k: Dims, has: Set<string>): string {
  return header(k, [
    ["summary", "read", "f32"],
    ["local", "read", "f32"],
    ...(has.has("dLast") ? [["dLast", "read", "f32"] as Binding] : []),
    ["incoming", "read_write", "f32"],
  ]) + `
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let idx = gid.x + gid.y * 65535u * 64u; // over b * d * ns
  if (idx >= BATCH * DIM * NS) { return; }
  let n = idx % NS; let bd = idx / NS;
  var g = ${has.has("dLast") ? "dLast[idx]" : "0.0"};
  var cc = NC;
  for (; cc >= 4u; cc -= 4u) { // chunks cc - 1 .. cc - 4
    ${
    lines(
      4,
      (i) =>
        `let c${i} = cc - ${
          i + 1
        }u; let L${i} = local[(bd * NC + c${i}) * NS + n]; let P${i} = summary[(bd * NC + c${i}) * 2u * NS + NS + n];`,
      "\n    ",
    )
  }
    ${lines(4, (i) => `incoming[(bd * (NC + 1u) + c${i}) * NS + n] = g; g = L${i} + P${i} * g;`, "\n    ")}
  }
  for (; cc > 0u; cc--) {
    let c = cc - 1u;
    incoming[(bd * (NC + 1u) + c) * NS + n] = g;
    g = local[(bd * NC + c) * NS + n] + summary[(bd * NC + c) * 2u * NS + NS + n] * g;
  }
  incoming[(bd * (NC + 1u) + NC) * NS + n] = g;
}`;
}

/** Copies slot nc of a (b, d, nc + 1, ns) buffer out to (b, d, ns) (dL/dh0 from `incoming`). */
export function lastSlotShader(k: Dims): string {
  return header(k, [["slots", "read", "f32"], ["last", "read_write", "f32"]]) + `
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let idx = gid.x + gid.y * 65535u * 64u;
  if (idx >= BATCH * DIM * NS) { return; }
  let n = idx % NS; let bd = idx / NS;
  last[idx] = slots[(bd * (NC + 1u) + NC) * NS + n];
}`;
}

// ---------------------------------------------------------------------------------------------------
// 4. local adjoint: dL/dh at each chunk's start from its own outputs only (zero adjoint at its end)

/** gOut = dL/d(pre-gate y) = gy silu(z); zero past the chunk. */
function gOutExpr(has: Set<string>, j: number): string {
  return has.has("z") ? `gy${j} * z${j} * sigmoid(z${j})` : `gy${j}`;
}

export function localAdjointShader(k: Dims, has: Set<string>, sp: boolean): string {
  const U = FWD_U;
  const bias = has.has("deltaBias") ? " + deltaBias[d]" : "";
  const bindings: Binding[] = [
    runBinding(k, "delta"),
    ["A", "read", "f32"],
    ["bct", "read", "vec4<f32>"],
    runBinding(k, "gy"),
  ];
  if (has.has("z")) bindings.push(runBinding(k, "z"));
  if (has.has("deltaBias")) bindings.push(["deltaBias", "read", "f32"]);
  bindings.push(["local", "read_write", "f32"]);
  return header(k, bindings) + `
@compute @workgroup_size(${k.ch}) fn main(@builtin(local_invocation_id) lid3: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let lid = lid3.x; let c = wid.y; let b = wid.z;
  let lane = wid.x * CH + lid; let live = lane < DIM; let d = min(lane, DIM - 1u);
  let row = (b * DIM + d) * LEN;
  let start = c * T; let end = min(LEN, start + T);
  ${loadA(k)}
  ${lines(k.nq, (q) => `var g${q} = vec4<f32>(0.0);`)}
  for (var jb = (end - start + ${U - 1}u) / ${U}u; jb > 0u; jb--) {
  let t0 = start + (jb - 1u) * ${U}u;
  ${loadRun(k, "delta", "dl", U)}
  ${loadRun(k, "gy", "gy", U)}
  ${has.has("z") ? loadRun(k, "z", "z", U) : ""}
  ${
    lines(U, (jj) => {
      const j = U - 1 - jj;
      return `let ok${j} = t0 + ${j}u < end;
  let dt${j} = select(0.0, ${sp ? `softplus(dl${j}${bias})` : `dl${j}${bias}`}, ok${j});
  let go${j} = select(0.0, ${gOutExpr(has, j)}, ok${j});
  let bo${j} = (b * LEN + min(t0 + ${j}u, LEN - 1u)) * 2u * NQ;
  ${lines(k.nq, (q) => `g${q} = exp2(dt${j} * aq${q}) * (g${q} + go${j} * bct[bo${j} + NQ + ${q}u]);`)}`;
    })
  }
  }
  if (live) {
    let o = ((b * DIM + d) * NC + c) * NS;
    ${storeState(k, "local", "o", (q, c) => `g${q}.${c}`)}
  }
}`;
}

// ---------------------------------------------------------------------------------------------------
// 6. gradients of one chunk

/** Workgroup memory of the gradient pass, in bytes: checkpoints and the dB/dC reduction buffer. */
export function gradientSharedBytes(k: Dims, U: number): number {
  return (k.T / U) * k.nq * 16 * k.ch + U * 2 * k.ns * (k.ch + 1) * 4;
}

/**
 * 6. (b, d, c): writes du, ddelta (and dz) directly; per-thread sums for dA, dD, d bias ->
 * paramPartial (d, b * nc, ns + 2); sums over the workgroup's channels for dB, dC ->
 * bcPartial (b, groups, l, 2 ns).
 *
 * Per step t (reverse time) with gh = dL/dh_t = g + gOut C_t, and pd = exp(dt A) h_{t-1} = h_t - dt u B_t
 * (so h_{t-1} itself is never needed):
 *   ddelta += sum_n gh (A pd + u B);  dA += gh pd dt;  dB = gh dt u;  du += dt sum_n gh B;
 *   dC = gOut h_t;  g <- gh exp(dt A).
 */
export function gradientShader(k: Dims, has: Set<string>, sp: boolean, U: number): string {
  const hasZ = has.has("z"), hasD = has.has("D");
  const bias = has.has("deltaBias") ? " + deltaBias[d]" : "";
  const nblk = k.T / U;
  const outs = U * 2 * k.ns; // dB and dC values of one block
  const bindings: Binding[] = [runBinding(k, "u"), runBinding(k, "delta"), ["A", "read", "f32"], [
    "bct",
    "read",
    "vec4<f32>",
  ]];
  if (hasD) bindings.push(["D", "read", "f32"]);
  if (hasZ) bindings.push(runBinding(k, "z"));
  if (has.has("deltaBias")) bindings.push(["deltaBias", "read", "f32"]);
  bindings.push(
    ["states", "read", "f32"],
    ["incoming", "read", "f32"],
    runBinding(k, "gy"),
    runBinding(k, "gu", "read_write"),
    runBinding(k, "gdelta", "read_write"),
  );
  if (hasZ) bindings.push(runBinding(k, "gz", "read_write"));
  bindings.push(["paramPartial", "read_write", "f32"], ["bcPartial", "read_write", "f32"]);
  const dtOf = (j: number) => `select(0.0, ${sp ? `softplus(dl${j}${bias})` : `dl${j}${bias}`}, ok${j})`;
  return header(k, bindings) + `
// states at the start of each block of the chunk, (block, q, channel): a thread reads its own column
var<workgroup> ck: array<vec4<f32>, ${nblk * k.nq * k.ch}>;
// one block's dB, dC contributions, (step, B|C, n, channel) with a padded row: summed over channels
var<workgroup> red: array<f32, ${outs * (k.ch + 1)}>;
@compute @workgroup_size(${k.ch}) fn main(@builtin(local_invocation_id) lid3: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let lid = lid3.x; let c = wid.y; let b = wid.z; // uniform in the workgroup, as barriers need
  let lane = wid.x * CH + lid; let live = lane < DIM; let d = min(lane, DIM - 1u);
  let row = (b * DIM + d) * LEN;
  let start = c * T; let end = min(LEN, start + T);
  let nblk = (end - start + ${U - 1}u) / ${U}u;
  ${loadA(k)}
  let so = ((b * DIM + d) * (NC + 1u) + c) * NS;
  ${loadState(k, "h", "states", "so")}
  // sweep: the state at each block's start
  for (var jb = 0u; jb < nblk; jb++) {
    let t0 = start + jb * ${U}u;
    ${lines(k.nq, (q) => `ck[(jb * NQ + ${q}u) * CH + lid] = h${q};`, "\n    ")}
    ${loadRun(k, "u", "u", U)}
    ${loadRun(k, "delta", "dl", U)}
    ${
    lines(U, (j) =>
      `let ok${j} = t0 + ${j}u < end; let ts${j} = min(t0 + ${j}u, LEN - 1u);
    let dt${j} = ${dtOf(j)}; let dtu${j} = dt${j} * u${j};
    ${forwardStep(k, String(j), false)}`, "\n    ")
  }
  }
  ${loadState(k, "g", "incoming", "so")}
  ${lines(k.nq, (q) => `var gA${q} = vec4<f32>(0.0);`)}
  var gD = 0.0; var gBias = 0.0;
  for (var jb = nblk; jb > 0u; jb--) {
    let t0 = start + (jb - 1u) * ${U}u;
    ${lines(k.nq, (q) => `h${q} = ck[((jb - 1u) * NQ + ${q}u) * CH + lid];`, "\n    ")}
    ${loadRun(k, "u", "u", U)}
    ${loadRun(k, "delta", "dl", U)}
    ${loadRun(k, "gy", "gy", U)}
    ${hasZ ? loadRun(k, "z", "z", U) : ""}
    // recompute the block's states (kept as h{step}_{q}) and outputs
    ${
    lines(U, (j) =>
      `let ok${j} = t0 + ${j}u < end; let ts${j} = min(t0 + ${j}u, LEN - 1u);
    let dt${j} = ${dtOf(j)}; let dtu${j} = dt${j} * u${j};
    ${forwardStep(k, String(j), hasZ)}
    ${lines(k.nq, (q) => `let h${j}_${q} = h${q};`, " ")}
    ${
        hasZ
          ? `let sg${j} = sigmoid(z${j}); let pre${j} = ${hasD ? `D[d] * u${j} + ` : ""}yc${j};
    let gz${j} = gy${j} * pre${j} * sg${j} * (1.0 + z${j} * (1.0 - sg${j}));
    let go${j} = select(0.0, gy${j} * z${j} * sg${j}, ok${j});`
          : `let go${j} = select(0.0, gy${j}, ok${j});`
      }`, "\n    ")
  }
    // walk back through the block
    ${
    lines(U, (jj) => {
      const j = U - 1 - jj;
      return `var gDt${j} = 0.0; var gU${j} = 0.0;
    {
      ${
        lines(k.nq, (q) =>
          `let bq${q} = bct[bo${j} + ${q}u]; let cq${q} = bct[bo${j} + NQ + ${q}u];
      let gh${q} = g${q} + go${j} * cq${q};
      let pd${q} = h${j}_${q} - dtu${j} * bq${q};
      gDt${j} += ${LN2} * dot(gh${q}, pd${q} * aq${q}) + u${j} * dot(gh${q}, bq${q});
      gA${q} += gh${q} * pd${q} * dt${j};
      gU${j} += dot(gh${q}, bq${q});
      g${q} = gh${q} * exp2(dt${j} * aq${q});
      let db${q} = gh${q} * dtu${j}; let dc${q} = go${j} * h${j}_${q};`, "\n      ")
      }
      ${
        lines(k.ns, (n) =>
          `red[${(j * 2) * k.ns + n}u * ${k.ch + 1}u + lid] = select(0.0, db${n >> 2}.${
            XYZW[n % 4]
          }, live);` +
          ` red[${(j * 2 + 1) * k.ns + n}u * ${k.ch + 1}u + lid] = select(0.0, dc${n >> 2}.${
            XYZW[n % 4]
          }, live);`, "\n      ")
      }
    }
    gU${j} = gU${j} * dt${j}${hasD ? ` + go${j} * D[d]` : ""};
    let gDelta${j} = ${sp ? `gDt${j} * sigmoid(dl${j}${bias})` : `gDt${j}`};
    gBias += select(0.0, gDelta${j}, ok${j});
    gD += go${j} * u${j};`;
    }, "\n    ")
  }
    ${storeRun(k, "gu", U, (j) => `gU${j}`)}
    ${storeRun(k, "gdelta", U, (j) => `gDelta${j}`)}
    ${hasZ ? storeRun(k, "gz", U, (j) => `gz${j}`) : ""}
    // dB, dC of the block: sum the workgroup's channels, one (step, B|C, n) per thread
    workgroupBarrier();
    ${bcReduction(k, outs, k.ch)}
    workgroupBarrier();
  }
  if (live) {
    let po = ((d * BATCH + b) * NC + c) * (NS + 2u);
    ${storeState(k, "paramPartial", "po", (q, c) => `gA${q}.${c}`)}
    paramPartial[po + NS] = gD;
    paramPartial[po + NS + 1u] = gBias;
  }
}`;
}

/** Workgroup memory of the split gradient pass: checkpoints, dB/dC reduction, per-quad partial sums. */
export function splitGradientSharedBytes(k: Dims, U: number): number {
  const wg = k.ch * k.nq;
  return (k.T / U) * wg * 16 + U * 2 * k.ns * (k.ch + 1) * 4 + 3 * U * wg * 4;
}

/**
 * 6'. The same gradients with the states of a channel split over nq = ceil(ns / 4) threads (one vec4 of
 * states each): a quarter of the registers and checkpoints per thread, so four times the threads per
 * SM. The per-step sums over states (ddelta, du, and y for dz) are finished in workgroup memory after
 * each block: thread q of a channel then handles steps q, q + nq, ... of the block, reading that step's
 * inputs again (L1 hits). Same outputs and layouts as gradientShader.
 */
export function splitGradientShader(k: Dims, has: Set<string>, sp: boolean, U: number): string {
  const hasZ = has.has("z"), hasD = has.has("D");
  const bias = has.has("deltaBias") ? " + deltaBias[d]" : "";
  const nblk = k.T / U;
  const wg = k.ch * k.nq;
  const outs = U * 2 * k.ns;
  const kinds = hasZ ? 3 : 2; // per-step partial sums: ddelta, du (and y)
  const bindings: Binding[] = [runBinding(k, "u"), runBinding(k, "delta"), ["A", "read", "f32"], [
    "bct",
    "read",
    "vec4<f32>",
  ]];
  if (hasD) bindings.push(["D", "read", "f32"]);
  if (hasZ) bindings.push(["z", "read", "f32"]); // read per step by the combining threads; as runs below
  if (has.has("deltaBias")) bindings.push(["deltaBias", "read", "f32"]);
  bindings.push(["states", "read", "f32"], ["incoming", "read", "f32"], ["gy", "read", "f32"], [
    "gu",
    "read_write",
    "f32",
  ], ["gdelta", "read_write", "f32"]);
  if (hasZ) bindings.push(["gz", "read_write", "f32"]);
  bindings.push(["paramPartial", "read_write", "f32"], ["bcPartial", "read_write", "f32"]);
  // gy and z are read per step (scalar loads) both in the block and by the combining threads
  const scalarRun = (arr: string, v: string) =>
    lines(U, (j) => `let ${v}${j} = ${arr}[row + min(t0 + ${j}u, LEN - 1u)];`, "\n    ");
  const dtOf = (j: number) => `select(0.0, ${sp ? `softplus(dl${j}${bias})` : `dl${j}${bias}`}, ok${j})`;
  const stateAt = (buf: string, base: string) =>
    `vec4<f32>(${
      range(4).map((i) => `select(0.0, ${buf}[${base} + min(4u * q + ${i}u, NS - 1u)], 4u * q + ${i}u < NS)`)
        .join(", ")
    })`;
  return header(k, bindings) + `
const WG: u32 = ${wg}u;
// this thread's states at the start of each block of the chunk, (block, thread)
var<workgroup> ck: array<vec4<f32>, ${nblk * wg}>;
// one block's dB, dC contributions, (step, B|C, n, channel) with a padded row: summed over channels
var<workgroup> red: array<f32, ${outs * (k.ch + 1)}>;
// one block's per-thread partial sums over its 4 states, (step, kind, thread)
var<workgroup> part: array<f32, ${kinds * U * wg}>;
@compute @workgroup_size(${wg}) fn main(@builtin(local_invocation_id) lid3: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let lid = lid3.x; let c = wid.y; let b = wid.z; // uniform in the workgroup, as barriers need
  let q = lid % NQ; let cl = lid / NQ; // state quad, channel in the workgroup
  let lane = wid.x * CH + cl; let live = lane < DIM; let d = min(lane, DIM - 1u);
  let row = (b * DIM + d) * LEN;
  let start = c * T; let end = min(LEN, start + T);
  let nblk = (end - start + ${U - 1}u) / ${U}u;
  let aq = vec4<f32>(${
    range(4).map((i) => `select(0.0, A[d * NS + min(4u * q + ${i}u, NS - 1u)], 4u * q + ${i}u < NS)`).join(
      ", ",
    )
  }) * ${LOG2E};
  let so = ((b * DIM + d) * (NC + 1u) + c) * NS;
  var h = ${stateAt("states", "so")};
  // sweep: the state at each block's start
  for (var jb = 0u; jb < nblk; jb++) {
    let t0 = start + jb * ${U}u;
    ck[jb * WG + lid] = h;
    ${loadRun(k, "u", "u", U)}
    ${loadRun(k, "delta", "dl", U)}
    ${
    lines(
      U,
      (j) =>
        `let ok${j} = t0 + ${j}u < end;
    let dt${j} = ${dtOf(j)};
    h = exp2(dt${j} * aq) * h + (dt${j} * u${j}) * bct[(b * LEN + min(t0 + ${j}u, LEN - 1u)) * 2u * NQ + q];`,
      "\n    ",
    )
  }
  }
  var g = ${stateAt("incoming", "so")};
  var gA = vec4<f32>(0.0);
  var gD = 0.0; var gBias = 0.0;
  for (var jb = nblk; jb > 0u; jb--) {
    let t0 = start + (jb - 1u) * ${U}u;
    h = ck[(jb - 1u) * WG + lid];
    ${loadRun(k, "u", "u", U)}
    ${loadRun(k, "delta", "dl", U)}
    ${scalarRun("gy", "gy")}
    ${hasZ ? scalarRun("z", "z") : ""}
    // recompute the block's states (h{step}) and this quad's part of y
    ${
    lines(U, (j) =>
      `let ok${j} = t0 + ${j}u < end;
    let dt${j} = ${dtOf(j)}; let dtu${j} = dt${j} * u${j};
    let bo${j} = (b * LEN + min(t0 + ${j}u, LEN - 1u)) * 2u * NQ;
    let bq${j} = bct[bo${j} + q]; let cq${j} = bct[bo${j} + NQ + q];
    h = exp2(dt${j} * aq) * h + dtu${j} * bq${j};
    let h${j} = h;
    ${
        hasZ
          ? `part[(${j * kinds + 2}u) * WG + lid] = dot(h, cq${j});
    let go${j} = select(0.0, gy${j} * z${j} * sigmoid(z${j}), ok${j});`
          : `let go${j} = select(0.0, gy${j}, ok${j});`
      }
    gD += go${j} * u${j};`, "\n    ")
  }
    // walk back through the block
    ${
    lines(U, (jj) => {
      const j = U - 1 - jj;
      return `{
      let gh = g + go${j} * cq${j};
      let pd = h${j} - dtu${j} * bq${j};
      part[${j * kinds}u * WG + lid] = ${LN2} * dot(gh, pd * aq) + u${j} * dot(gh, bq${j});
      part[${j * kinds + 1}u * WG + lid] = dot(gh, bq${j});
      gA += gh * pd * dt${j};
      g = gh * exp2(dt${j} * aq);
      let db = select(vec4<f32>(0.0), gh * dtu${j}, live); let dc = select(vec4<f32>(0.0), go${j} * h${j}, live);
      ${
        lines(4, (i) =>
          `if (4u * q + ${i}u < NS) { red[(${2 * j}u * NS + 4u * q + ${i}u) * ${k.ch + 1}u + cl] = db.${
            XYZW[i]
          }; red[(${2 * j + 1}u * NS + 4u * q + ${i}u) * ${k.ch + 1}u + cl] = dc.${XYZW[i]}; }`, "\n      ")
      }
    }`;
    }, "\n    ")
  }
    workgroupBarrier();
    // thread q of a channel finishes steps q, q + NQ, ...: sums over the channel's quads, then du, ddelta, dz
    ${
    lines(Math.ceil(U / k.nq), (s) =>
      `{
      let j = q + ${s * k.nq}u;
      let t = t0 + j;
      if (j < ${U}u && t < end) {
        let i = row + t;
        var sDt = 0.0; var sU = 0.0;${hasZ ? " var sY = 0.0;" : ""}
        for (var qq = 0u; qq < NQ; qq++) {
          let p = cl * NQ + qq;
          sDt += part[(j * ${kinds}u) * WG + p]; sU += part[(j * ${kinds}u + 1u) * WG + p];${
        hasZ ? ` sY += part[(j * ${kinds}u + 2u) * WG + p];` : ""
      }
        }
        let raw = ${elementAt(k, "delta", "i")}${bias};
        let dt = ${sp ? "softplus(raw)" : "raw"};
        let gyt = gy[i];
        ${
        hasZ
          ? `let zt = z[i]; let sg = sigmoid(zt);
        let go = gyt * zt * sg;
        let pre = sY${hasD ? ` + D[d] * ${elementAt(k, "u", "i")}` : ""};`
          : "let go = gyt;"
      }
        let gDelta = ${sp ? "sDt * sigmoid(raw)" : "sDt"};
        gBias += gDelta;
        if (live) {
          gu[i] = sU * dt${hasD ? " + go * D[d]" : ""};
          gdelta[i] = gDelta;
          ${hasZ ? "gz[i] = gyt * pre * sg * (1.0 + zt * (1.0 - sg));" : ""}
        }
      }
    }`, "\n    ")
  }
    // dB, dC of the block: sum the workgroup's channels, one (step, B|C, n) per thread
    ${bcReduction(k, outs, wg)}
    workgroupBarrier();
  }
  // d bias: each thread summed its own steps; add up the channel's threads
  part[lid] = gBias;
  workgroupBarrier();
  if (live) {
    let po = ((d * BATCH + b) * NC + c) * (NS + 2u);
    ${
    lines(
      4,
      (i) => `if (4u * q + ${i}u < NS) { paramPartial[po + 4u * q + ${i}u] = gA.${XYZW[i]}; }`,
      "\n    ",
    )
  }
    if (q == 0u) {
      var sb = 0.0;
      for (var qq = 0u; qq < NQ; qq++) { sb += part[cl * NQ + qq]; }
      paramPartial[po + NS] = gD;
      paramPartial[po + NS + 1u] = sb;
    }
  }
}`;
}

// ---------------------------------------------------------------------------------------------------
// 7. reductions

/** paramPartial (d, b nc, ns + 2) summed over its middle axis -> gA (d, ns), gD (d), gBias (d); a workgroup per d. */
export function paramReduceShader(k: Dims, outs: string[]): string {
  const cols = k.ns + 2;
  return header(k, [["paramPartial", "read", "f32"], ...outs.map((o): Binding => [o, "read_write", "f32"])]) +
    `
var<workgroup> sh: array<f32, ${cols * 64}>;
@compute @workgroup_size(64) fn main(@builtin(local_invocation_id) lid3: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let lid = lid3.x; let d = wid.x;
  let rows = BATCH * NC;
  ${lines(cols, (m) => `var a${m} = 0.0;`, " ")}
  for (var r = lid; r < rows; r += 64u) {
    let o = (d * rows + r) * ${cols}u;
    ${lines(cols, (m) => `a${m} += paramPartial[o + ${m}u];`, " ")}
  }
  ${lines(cols, (m) => `sh[${m * 64}u + lid] = a${m};`, " ")}
  workgroupBarrier();
  ${
      [32, 16, 8, 4, 2, 1].map((s) =>
        `if (lid < ${s}u) { ${
          lines(cols, (m) => `sh[${m * 64}u + lid] += sh[${m * 64}u + lid + ${s}u];`, " ")
        } }
  workgroupBarrier();`
      ).join("\n  ")
    }
  if (lid == 0u) {
    ${lines(k.ns, (n) => `gA[d * NS + ${n}u] = sh[${n * 64}u];`, " ")}
    ${outs.includes("gD") ? `gD[d] = sh[${k.ns * 64}u];` : ""}
    ${outs.includes("gBias") ? `gBias[d] = sh[${(k.ns + 1) * 64}u];` : ""}
  }
}`;
}

/**
 * Where bcReduceShader writes dB and dC: by default gB, gC (b, ns, l) as the scan's B and C are laid out;
 * `packed`, into one token-major buffer gBC whose row (b, t) holds dB at columns offset .. offset + ns and
 * dC right after (the engine's d x_dbl, (b l, dt_rank + 2 ns), whose B and C columns the scan read).
 */
export interface BcOutput {
  packed?: { row: number; offset: number };
}

/** bcPartial (b, groups, l, 2 ns) summed over groups -> gB, gC; one thread per (b, t, B|C, n). */
export function bcReduceShader(k: Dims, out: BcOutput = {}): string {
  const outs: Binding[] = out.packed
    ? [["gBC", "read_write", "f32"]]
    : [["gB", "read_write", "f32"], ["gC", "read_write", "f32"]];
  const write = out.packed
    ? `gBC[(b * LEN + t) * ${out.packed.row}u + ${out.packed.offset}u + m] = total;`
    : "if (m < NS) { gB[(b * NS + m) * LEN + t] = total; } else { gC[(b * NS + m - NS) * LEN + t] = total; }";
  return header(k, [["bcPartial", "read", "f32"], ...outs]) +
    `
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let idx = gid.x + gid.y * 65535u * 64u; // over (b, t, m), m fastest: coalesced reads
  if (idx >= BATCH * LEN * 2u * NS) { return; }
  let m = idx % (2u * NS); let t = (idx / (2u * NS)) % LEN; let b = idx / (2u * NS * LEN);
  let stride = LEN * 2u * NS; // from one channel group to the next
  let base = b * GROUPS * stride + t * 2u * NS + m;
  var a0 = 0.0; var a1 = 0.0; var a2 = 0.0; var a3 = 0.0;
  var g = 0u;
  for (; g + 4u <= GROUPS; g += 4u) {
    a0 += bcPartial[base + g * stride]; a1 += bcPartial[base + (g + 1u) * stride];
    a2 += bcPartial[base + (g + 2u) * stride]; a3 += bcPartial[base + (g + 3u) * stride];
  }
  for (; g < GROUPS; g++) { a0 += bcPartial[base + g * stride]; }
  let total = (a0 + a1) + (a2 + a3);
  ${write}
}`;
}
