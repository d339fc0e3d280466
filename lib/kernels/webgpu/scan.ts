/**
 * The fused selective scan on WebGPU: WGSL compute shaders whose pass sequences (recordScanForward,
 * recordScanBackward) are written once over a Dispatcher (dispatcher.ts) and run in two places: as the
 * webgpu kernels of `SelectiveScan` and `SelectiveScanGrad` (see tfjs/scan_op.ts) on TF.js's own device
 * and command encoder (so they are ordered with every other tfjs op), and in the native engine
 * (lib/engine, on raw buffers: `scanForward`, `scanBackward`, whose plain-JS twins are ../js/scan.ts).
 * The math is that of wasm/scan_reference.ts, its reference twin.
 *
 * Parallel over length too: the sequence is cut into chunks of T steps, and every (batch, channel, chunk)
 * is one thread; the workgroups' threads are neighbouring channels of one chunk.
 *   0. transpose: B, C (b, n, l) -> bct (b, l, [B | C]) as vec4s, so that one step's 2 x 16 values are
 *      8 loads of one cache line, the same line for every thread of a workgroup (a broadcast)
 *   forward   1. summary: each chunk from a zero state -> its final state S_c and decay product P_c
 *             2. carry:   per (batch, channel, state), sequentially over chunks: H_c = P_{c-1} H_{c-1} + S_{c-1}
 *             3. output:  each chunk again from its true initial state H_c -> y (the last chunk also
 *                         writes the last state)
 *   backward  the forward's steps 1-2 give H_c; then 4. the adjoint carried out of each chunk from zero
 *             (in reverse time), 5. the reverse carry -> the adjoint entering each chunk from its end,
 *             6. gradients: each chunk sweeps forward once, checkpointing its state every U steps in
 *             workgroup memory, then walks back U steps at a time, recomputing those U states in
 *             registers; 7. two reduction passes (dA, dD, d bias over batch and chunks; dB, dC over
 *             channel groups).
 *
 * How the code is written matters as much as the algorithm here. Deno's WebGPU (wgpu) translates WGSL
 * with naga, which emits every loop as an open `loop` with an added 64-bit iteration counter, so the
 * driver unrolls nothing and a load inside a loop waits for the previous iteration. So the generators
 * below write the per-step work out as straight-line code: all loads of a block of steps are issued
 * together, the 16 states are 4 vec4 registers (h0..h3), and loops are left only around whole blocks.
 *
 * Two layouts of the forward passes (ScanKernelConfig.fwdKernel):
 *   "direct": each thread loads its own channel's U consecutive steps (one 32-byte sector per array
 *             and block; as vec4s where the length allows), no workgroup memory, no barriers;
 *   "tiled":  the workgroup copies (channels, 32 steps) tiles of u and softplus(delta) through workgroup
 *             memory with fully coalesced loads (and y out the same way), each thread then scans its row.
 * and two of the gradient pass (bwdKernel): "split" spreads a channel's states over ceil(ns / 4)
 * threads (a vec4 each), "channel" keeps them in one thread.
 * Defaults, from a sweep on the H200 (data/results/bench/sweep/gpu_scan_variants.jsonl): direct
 * forward with vec4 runs and chunks leaving >= 65536 threads; split gradients, T = 32, U = 4, 16 channels
 * per workgroup. "tiled" and "channel" were slower there (tiled: 1.7x the forward's GPU time; channel:
 * 2.1x the gradient pass's) and are kept as tested alternatives.
 * Extra memory, all O(b d l) (chunk states and partial sums, n / T <= 1): about 5 b d l floats in the
 * backward at the defaults; never (b, d, l, n).
 */
import * as tf from "@tensorflow/tfjs";
import { namedInputs, SCAN_GRAD_KERNEL, SCAN_KERNEL, type ScanAttrs } from "../tfjs/scan_attrs.ts";
import { type Backend, newTensor, tfjsDispatcher } from "./runtime.ts";
import { type Dispatcher, type DispatchLimits, flatGroups } from "./dispatcher.ts";
import {
  type BcOutput,
  bcReduceShader,
  carryShader,
  type Dims,
  dimsFor,
  forwardChunk,
  forwardShader,
  FWD_U,
  gradientShader,
  gradientSharedBytes,
  lastSlotShader,
  localAdjointShader,
  paramReduceShader,
  reverseCarryShader,
  scanKernelConfig,
  type ScanShape,
  splitGradientShader,
  splitGradientSharedBytes,
  transposeShader,
  TT,
} from "./scan_wgsl.ts";

import { nq4, type PackedBC, type PackParams, type ScanParams } from "../js/scan.ts";
import { declare, FLAT_ARGS, flatIndex } from "./wgsl.ts";

export type { ScanShape } from "./scan_wgsl.ts";

// ---------------------------------------------------------------------------------------------------
// The pass sequences, over a Dispatcher (the TF.js kernels below and the native engine both run these)

const codes = new Map<string, string>();

/**
 * The WGSL of `make(...args)`, generated once per (generator, arguments, kernel configuration): building
 * the unrolled source costs more host time than a small scan's dispatch.
 */
// deno-lint-ignore no-explicit-any
function code<A extends any[]>(make: (...args: A) => string, ...args: A): string {
  const key = make.name + JSON.stringify(args, (_, v) => v instanceof Set ? [...v].sort() : v) +
    JSON.stringify(scanKernelConfig());
  let text = codes.get(key);
  if (text === undefined) {
    text = make(...args);
    codes.set(key, text);
  }
  return text;
}

/**
 * The scan's buffers, in mamba_ssm's layout: u, delta, z (b, d, l); A (d, n); D, deltaBias (d);
 * initialState (b, d, n); and bct, B and C (b, l, 2, ceil(n / 4) 4) as the passes read them (see
 * recordTransposeBC). Optional ones may be missing.
 */
export interface ScanBuffers<B> {
  u: B;
  delta: B;
  A: B;
  bct: B;
  D?: B;
  z?: B;
  deltaBias?: B;
  initialState?: B;
}

/** The backward's outputs: gradients of u, delta, A (and of D, z, deltaBias, initialState when present). */
export interface ScanGradBuffers<B> {
  u: B;
  delta: B;
  A: B;
  D?: B;
  z?: B;
  deltaBias?: B;
  initialState?: B;
}

/** The optional inputs present, as the generators name them. */
function present<B>(x: ScanBuffers<B>, extra: Record<string, B | undefined> = {}): Set<string> {
  return new Set(
    Object.entries({ ...x, ...extra }).filter(([, v]) => v !== undefined).map(([k]) => k),
  );
}

function perChunk(k: Dims): [number, number, number] {
  return [k.groups, k.nc, k.batch];
}

function pick<B>(inputs: Record<string, B | undefined>, names: string[]): B[] {
  return names.filter((n) => inputs[n] !== undefined).map((n) => inputs[n]!);
}

/** Floats of bct for a shape: (b, l, 2, nq) vec4s. */
export function bctFloats(s: ScanShape): number {
  return s.batch * s.len * 2 * Math.ceil(s.ns / 4) * 4;
}

/** 0. B, C (b, n, l) -> bct (b, l, 2, nq) vec4, into `bct` (bctFloats(s) floats). */
export function recordTransposeBC<B>(d: Dispatcher<B>, s: ScanShape, B: B, C: B, bct: B): void {
  const k = dimsFor(s, Math.max(1, s.len), 1, 1); // one chunk: only the shape matters here
  d.dispatch("transposeBC", code(transposeShader, k), [B, C, bct], flatGroups(k.batch * 2 * k.nq * k.len));
}

/** Inputs of a forward pass in forwardBindings' order. */
function forwardInputs<B>(x: ScanBuffers<B>, mode: "summary" | "output", extra: B[]): B[] {
  const out = mode === "output";
  return [
    x.u,
    x.delta,
    x.A,
    x.bct,
    ...pick(x as unknown as Record<string, B>, ["deltaBias"]),
    ...(out ? pick(x as unknown as Record<string, B>, ["D", "z"]) : []),
    ...extra,
  ];
}

/** Forward steps 1-2 with chunks of k.T: chunk summaries and chunk initial states (the caller releases both). */
function chunkStates<B>(d: Dispatcher<B>, x: ScanBuffers<B>, k: Dims, has: Set<string>, sp: boolean) {
  const summary = d.alloc(k.batch * k.dim * k.nc * 2 * k.ns, "scan chunk summaries");
  d.dispatch(
    "summary",
    code(forwardShader, k, has, sp, "summary"),
    forwardInputs(x, "summary", [summary]),
    perChunk(k),
  );
  const states = d.alloc(k.batch * k.dim * (k.nc + 1) * k.ns, "scan chunk states");
  d.dispatch(
    "carry",
    code(carryShader, k, has),
    [summary, ...pick(x as unknown as Record<string, B>, ["initialState"]), states],
    flatGroups(k.batch * k.dim * k.ns),
  );
  return { summary, states };
}

function forwardDims(s: ScanShape): Dims {
  return dimsFor(
    s,
    forwardChunk(s.batch, s.dim, s.len),
    scanKernelConfig().fwdThreads,
    scanKernelConfig().fwdKernel === "tiled" ? TT : FWD_U,
  );
}

/**
 * Forward: y (b, d, l) and the last state (b, d, n) (always written: pass a scratch buffer when it is not
 * wanted). Three dispatches; scratch O(b d l n / T).
 */
export function recordScanForward<B>(
  d: Dispatcher<B>,
  s: ScanShape,
  deltaSoftplus: boolean,
  x: ScanBuffers<B>,
  out: { y: B; last: B },
): void {
  const k = forwardDims(s);
  const has = present(x);
  const { summary, states } = chunkStates(d, x, k, has, deltaSoftplus);
  d.release(summary);
  d.dispatch(
    "output",
    code(forwardShader, k, has, deltaSoftplus, "output"),
    forwardInputs(x, "output", [states, out.y, out.last]),
    perChunk(k),
  );
  d.release(states);
}

/**
 * The backward's dims: chunk bwdChunk, block bwdSub, bwdThreads channels per workgroup, shrunk (chunk
 * first, then channels) until the gradient pass's workgroup memory fits the device.
 */
function backwardDims(limits: DispatchLimits, s: ScanShape): { k: Dims; U: number } {
  const U = scanKernelConfig().bwdSub;
  const limit = limits.maxComputeWorkgroupStorageSize;
  let T = scanKernelConfig().bwdChunk, ch = scanKernelConfig().bwdThreads;
  const bytes = (k: Dims) =>
    scanKernelConfig().bwdKernel === "split" ? splitGradientSharedBytes(k, U) : gradientSharedBytes(k, U);
  let k = dimsFor(s, T, ch, U);
  while (bytes(k) > limit) {
    if (T > U) T = Math.max(U, Math.floor(T / 2 / U) * U);
    else if (ch > (scanKernelConfig().bwdKernel === "split" ? 8 : 32)) {
      ch = Math.max(scanKernelConfig().bwdKernel === "split" ? 8 : 32, ch / 2);
    } else {
      throw new Error(
        `selective scan (webgpu): the gradient pass needs ${bytes(k)} bytes of workgroup memory ` +
          `(d_state ${k.ns}, block ${U}) but this device allows ${limit}; lower MAMBABYTE_SCAN_SUB`,
      );
    }
    k = dimsFor(s, T, ch, U);
  }
  return { k, U };
}

/**
 * Backward: given dy = dL/dy (and dLast = dL/d lastState), the gradients of every input present. dB, dC
 * go to `bc`: (b, n, l) buffers B and C, or one packed token-major buffer (BcOutput.packed). Seven
 * dispatches (eight with an initial state); scratch about 5 b d l floats at the default settings.
 */
export function recordScanBackward<B>(
  d: Dispatcher<B>,
  s: ScanShape,
  deltaSoftplus: boolean,
  x: ScanBuffers<B>,
  dy: B,
  dLast: B | undefined,
  g: ScanGradBuffers<B>,
  bc: { B: B; C: B } | { packed: B; row: number; offset: number },
): void {
  const sp = deltaSoftplus;
  const { k, U } = backwardDims(d.limits, s);
  const has = present(x, { dLast });
  // 1-2 on the backward's chunks; summary and local adjoint run with the gradient pass's channels per workgroup
  const { summary, states } = chunkStates(d, x, k, has, sp);
  const local = d.alloc(k.batch * k.dim * k.nc * k.ns, "scan local adjoints");
  d.dispatch("localAdjoint", code(localAdjointShader, k, has, sp), [
    x.delta,
    x.A,
    x.bct,
    dy,
    ...pick(x as unknown as Record<string, B>, ["z", "deltaBias"]),
    local,
  ], perChunk(k));
  const incoming = d.alloc(k.batch * k.dim * (k.nc + 1) * k.ns, "scan incoming adjoints");
  d.dispatch(
    "reverseCarry",
    code(reverseCarryShader, k, has),
    [summary, local, ...(dLast !== undefined ? [dLast] : []), incoming],
    flatGroups(k.batch * k.dim * k.ns),
  );
  d.release(summary);
  d.release(local);
  const paramPartial = d.alloc(k.dim * k.batch * k.nc * (k.ns + 2), "scan parameter partial sums");
  const bcPartial = d.alloc(k.batch * k.groups * k.len * 2 * k.ns, "scan dB dC partial sums");
  const hasZ = has.has("z");
  d.dispatch(
    "gradients",
    scanKernelConfig().bwdKernel === "split"
      ? code(splitGradientShader, k, has, sp, U)
      : code(gradientShader, k, has, sp, U),
    [
      x.u,
      x.delta,
      x.A,
      x.bct,
      ...pick(x as unknown as Record<string, B>, ["D", "z", "deltaBias"]),
      states,
      incoming,
      dy,
      g.u,
      g.delta,
      ...(hasZ ? [g.z!] : []),
      paramPartial,
      bcPartial,
    ],
    perChunk(k),
  );
  d.release(states);
  const paramOuts = ["gA", ...(has.has("D") ? ["gD"] : []), ...(has.has("deltaBias") ? ["gBias"] : [])];
  d.dispatch("paramReduce", code(paramReduceShader, k, paramOuts), [
    paramPartial,
    g.A,
    ...(has.has("D") ? [g.D!] : []),
    ...(has.has("deltaBias") ? [g.deltaBias!] : []),
  ], [k.dim, 1, 1]);
  d.release(paramPartial);
  const packed: BcOutput = "packed" in bc ? { packed: { row: bc.row, offset: bc.offset } } : {};
  d.dispatch(
    "bcReduce",
    code(bcReduceShader, k, packed),
    [bcPartial, ...("packed" in bc ? [bc.packed] : [bc.B, bc.C])],
    flatGroups(k.batch * k.len * 2 * k.ns),
  );
  d.release(bcPartial);
  if (has.has("initialState")) {
    d.dispatch(
      "initialStateGrad",
      code(lastSlotShader, k),
      [incoming, g.initialState!],
      flatGroups(k.batch * k.dim * k.ns),
    );
  }
  d.release(incoming);
}

// ---------------------------------------------------------------------------------------------------
// The engine's ops (plain-JS twins with the same parameters and buffers: ../js/scan.ts)

function packBCSource(p: PackParams): string {
  const q = nq4(p.ns);
  return `${declare([["x", "read", "f32"], ["bct", "read_write", "f32"]])}
@compute @workgroup_size(256) fn main(${FLAT_ARGS}) {
  let i = ${flatIndex(256)}; // over (row, B|C, state), states fastest
  if (i >= ${p.rows * 2 * q}u) { return; }
  let s = i % ${q}u; let w = (i / ${q}u) % 2u; let row = i / ${2 * q}u;
  var v = 0.0;
  if (s < ${p.ns}u) { v = x[row * ${p.row}u + ${p.offset}u + w * ${p.ns}u + s]; }
  bct[i] = v;
}`;
}

export const packBCShader = (p: PackParams) => code(packBCSource, p);

/** bct (rows, 2, nq4): B and C from columns [offset, offset + 2 ns) of the token-major x (rows, row). */
export function packBC<B>(d: Dispatcher<B>, p: PackParams, b: { x: B; bct: B }): void {
  d.dispatch("packBC", packBCShader(p), [b.x, b.bct], flatGroups(p.rows * 2 * nq4(p.ns), 256));
}

/** The forward as the engine calls it (see recordScanForward). */
export function scanForward<B>(
  d: Dispatcher<B>,
  p: ScanParams,
  b: EngineScanInputs<B> & { y: B; last: B },
): void {
  recordScanForward(d, p, p.softplus, b, { y: b.y, last: b.last });
}

/** The backward as the engine calls it: dB, dC packed (see recordScanBackward), no initial state. */
export function scanBackward<B>(
  d: Dispatcher<B>,
  p: ScanParams & PackedBC,
  b: EngineScanInputs<B> & { dy: B; du: B; ddelta: B; dA: B; dD?: B; dz?: B; dDeltaBias?: B; dbc: B },
): void {
  recordScanBackward(d, p, p.softplus, b, b.dy, undefined, {
    u: b.du,
    delta: b.ddelta,
    A: b.dA,
    D: b.dD,
    z: b.dz,
    deltaBias: b.dDeltaBias,
  }, { packed: b.dbc, row: p.row, offset: p.offset });
}

type EngineScanInputs<B> = Omit<ScanBuffers<B>, "initialState">;

// ---------------------------------------------------------------------------------------------------
// The TF.js kernels: tensors in, tensors out, the passes above on tfjs's device and encoder

function shapeOf(x: Record<string, tf.TensorInfo>): ScanShape {
  const [batch, dim, len] = x.u.shape;
  return { batch, dim, len, ns: x.A.shape[1] };
}

function scanBuffers(x: Record<string, tf.TensorInfo>, bct: tf.TensorInfo): ScanBuffers<tf.TensorInfo> {
  return {
    u: x.u,
    delta: x.delta,
    A: x.A,
    bct,
    D: x.D,
    z: x.z,
    deltaBias: x.deltaBias,
    initialState: x.initialState,
  };
}

function transposed(d: Dispatcher<tf.TensorInfo>, x: Record<string, tf.TensorInfo>, s: ScanShape) {
  const bct = d.alloc(bctFloats(s), "bct");
  recordTransposeBC(d, s, x.B, x.C, bct);
  return bct;
}

function forwardKernel(
  { inputs: list, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: unknown },
) {
  const be = backend as Backend;
  const a = attrs as unknown as ScanAttrs;
  const x = namedInputs(list, a);
  const s = shapeOf(x);
  const d = tfjsDispatcher(be, "SelectiveScan:");
  const bct = transposed(d, x, s);
  const y = newTensor(be, [s.batch, s.dim, s.len]);
  const last = newTensor(be, [s.batch, s.dim, s.ns]);
  recordScanForward(d, s, a.deltaSoftplus, scanBuffers(x, bct), { y, last });
  d.release(bct);
  if (a.lastState) return [y, last];
  be.disposeData(last.dataId); // written by the output pass, not an output (see ScanAttrs.lastState)
  return [y];
}

function gradKernel(
  { inputs: list, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: unknown },
) {
  const be = backend as Backend;
  const a = attrs as unknown as ScanAttrs;
  const x = namedInputs(list, a);
  const s = shapeOf(x);
  const d = tfjsDispatcher(be, "SelectiveScan:");
  const bct = transposed(d, x, s);
  const g: Record<string, tf.TensorInfo> = {
    u: newTensor(be, x.u.shape),
    delta: newTensor(be, x.u.shape),
    A: newTensor(be, x.A.shape),
    B: newTensor(be, x.B.shape),
    C: newTensor(be, x.C.shape),
  };
  if (x.z) g.z = newTensor(be, x.u.shape);
  if (x.D) g.D = newTensor(be, [s.dim]);
  if (x.deltaBias) g.deltaBias = newTensor(be, [s.dim]);
  if (x.initialState) g.initialState = newTensor(be, [s.batch, s.dim, s.ns]);
  const grads = g as unknown as ScanGradBuffers<tf.TensorInfo>;
  recordScanBackward(d, s, a.deltaSoftplus, scanBuffers(x, bct), x.dy, x.dLast, grads, { B: g.B, C: g.C });
  d.release(bct);
  return a.present.split(",").map((name) => g[name]);
}

tf.registerKernel({
  kernelName: SCAN_KERNEL,
  backendName: "webgpu",
  kernelFunc: forwardKernel as tf.KernelFunc,
});
tf.registerKernel({
  kernelName: SCAN_GRAD_KERNEL,
  backendName: "webgpu",
  kernelFunc: gradKernel as tf.KernelFunc,
});
