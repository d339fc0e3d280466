/**
 * The fused selective scan on WebGPU: WGSL compute shaders dispatched on TF.js's own device and command
 * encoder (so they are ordered with every other tfjs op), registered as the webgpu kernels of
 * `SelectiveScan` and `SelectiveScanGrad` (see tfjs/scan_op.ts). The math is that of wasm/scan_reference.ts, its reference twin.
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
import { type Backend, dispatch, newTensor } from "./runtime.ts";
import {
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
  splitGradientShader,
  splitGradientSharedBytes,
  transposeShader,
  TT,
} from "./scan_wgsl.ts";

// ---------------------------------------------------------------------------------------------------
// Dispatch of the passes on tfjs's device

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

/** One dispatch of the scan's program `label` (timed as `SelectiveScan:${label}`, see `dispatch`). */
function run(
  be: Backend,
  label: string,
  code: string,
  tensors: tf.TensorInfo[],
  groups: [number, number, number],
): void {
  dispatch(be, `SelectiveScan:${label}`, code, tensors, groups);
}

function perChunk(k: Dims): [number, number, number] {
  return [k.groups, k.nc, k.batch];
}
/** One thread per item of a 1-d range of `count` (2-d grid past 65535 workgroups of 64). */
function flat(count: number): [number, number, number] {
  const wgs = Math.ceil(count / 64);
  return [Math.min(wgs, 65535), Math.ceil(wgs / 65535), 1];
}

function pick(inputs: Record<string, tf.TensorInfo>, names: string[]): tf.TensorInfo[] {
  return names.filter((n) => inputs[n]).map((n) => inputs[n]);
}

/** 0. bct (b, l, 2, nq) vec4 (the caller disposes it). */
function transposeBC(be: Backend, x: Record<string, tf.TensorInfo>, k: Dims): tf.TensorInfo {
  const bct = newTensor(be, [k.batch, k.len, 2, k.nq * 4]);
  run(be, "transposeBC", code(transposeShader, k), [x.B, x.C, bct], flat(k.batch * 2 * k.nq * k.len));
  return bct;
}

/** Inputs of a forward pass in forwardBindings' order. */
function forwardInputs(
  x: Record<string, tf.TensorInfo>,
  bct: tf.TensorInfo,
  mode: "summary" | "output",
  extra: tf.TensorInfo[],
) {
  const out = mode === "output";
  return [x.u, x.delta, x.A, bct, ...pick(x, ["deltaBias"]), ...(out ? pick(x, ["D", "z"]) : []), ...extra];
}

/** Forward steps 1-2 with chunks of k.T: chunk summaries and chunk initial states (the caller disposes both). */
function chunkStates(
  be: Backend,
  x: Record<string, tf.TensorInfo>,
  bct: tf.TensorInfo,
  k: Dims,
  has: Set<string>,
  sp: boolean,
) {
  const summary = newTensor(be, [k.batch, k.dim, k.nc, 2 * k.ns]);
  run(
    be,
    "summary",
    code(forwardShader, k, has, sp, "summary"),
    forwardInputs(x, bct, "summary", [summary]),
    perChunk(k),
  );
  const states = newTensor(be, [k.batch, k.dim, k.nc + 1, k.ns]);
  run(
    be,
    "carry",
    code(carryShader, k, has),
    [summary, ...pick(x, ["initialState"]), states],
    flat(k.batch * k.dim * k.ns),
  );
  return { summary, states };
}

function forwardDims(x: Record<string, tf.TensorInfo>): Dims {
  const [batch, dim, len] = x.u.shape;
  return dimsFor(
    x.u,
    x.A,
    forwardChunk(batch, dim, len),
    scanKernelConfig().fwdThreads,
    scanKernelConfig().fwdKernel === "tiled" ? TT : FWD_U,
  );
}

function forwardKernel(
  { inputs: list, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: unknown },
) {
  const be = backend as Backend;
  const a = attrs as unknown as ScanAttrs;
  const x = namedInputs(list, a);
  const k = forwardDims(x);
  const has = new Set(Object.keys(x));
  const bct = transposeBC(be, x, k);
  const { summary, states } = chunkStates(be, x, bct, k, has, a.deltaSoftplus);
  const y = newTensor(be, [k.batch, k.dim, k.len]);
  const last = newTensor(be, [k.batch, k.dim, k.ns]);
  run(
    be,
    "output",
    code(forwardShader, k, has, a.deltaSoftplus, "output"),
    forwardInputs(x, bct, "output", [states, y, last]),
    perChunk(k),
  );
  for (const t of [bct, summary, states]) be.disposeData(t.dataId);
  if (a.lastState) return [y, last];
  be.disposeData(last.dataId); // written by the output pass, not an output (see ScanAttrs.lastState)
  return [y];
}

/**
 * The backward's dims: chunk bwdChunk, block bwdSub, bwdThreads channels per workgroup, shrunk (chunk
 * first, then channels) until the gradient pass's workgroup memory fits the device.
 */
function backwardDims(be: Backend, x: Record<string, tf.TensorInfo>): { k: Dims; U: number } {
  const U = scanKernelConfig().bwdSub;
  const limit = (be.device as GPUDevice).limits.maxComputeWorkgroupStorageSize;
  let T = scanKernelConfig().bwdChunk, ch = scanKernelConfig().bwdThreads;
  const bytes = (k: Dims) =>
    scanKernelConfig().bwdKernel === "split" ? splitGradientSharedBytes(k, U) : gradientSharedBytes(k, U);
  let k = dimsFor(x.u, x.A, T, ch, U);
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
    k = dimsFor(x.u, x.A, T, ch, U);
  }
  return { k, U };
}

function gradKernel(
  { inputs: list, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: unknown },
) {
  const be = backend as Backend;
  const a = attrs as unknown as ScanAttrs;
  const sp = a.deltaSoftplus;
  const x = namedInputs(list, a);
  const { k, U } = backwardDims(be, x);
  const has = new Set(Object.keys(x));
  const bct = transposeBC(be, x, k);
  // 1-2 on the backward's chunks; summary and local adjoint run with the gradient pass's channels per workgroup
  const { summary, states } = chunkStates(be, x, bct, k, has, sp);
  const local = newTensor(be, [k.batch, k.dim, k.nc, k.ns]);
  run(be, "localAdjoint", code(localAdjointShader, k, has, sp), [
    x.delta,
    x.A,
    bct,
    x.dy,
    ...pick(x, ["z", "deltaBias"]),
    local,
  ], perChunk(k));
  const incoming = newTensor(be, [k.batch, k.dim, k.nc + 1, k.ns]);
  run(
    be,
    "reverseCarry",
    code(reverseCarryShader, k, has),
    [summary, local, ...pick(x, ["dLast"]), incoming],
    flat(k.batch * k.dim * k.ns),
  );
  const g: Record<string, tf.TensorInfo> = {
    u: newTensor(be, x.u.shape),
    delta: newTensor(be, x.u.shape),
    A: newTensor(be, x.A.shape),
    B: newTensor(be, x.B.shape),
    C: newTensor(be, x.C.shape),
  };
  if (has.has("z")) g.z = newTensor(be, x.u.shape);
  if (has.has("D")) g.D = newTensor(be, [k.dim]);
  if (has.has("deltaBias")) g.deltaBias = newTensor(be, [k.dim]);
  const paramPartial = newTensor(be, [k.dim, k.batch * k.nc, k.ns + 2]);
  const bcPartial = newTensor(be, [k.batch, k.groups, k.len, 2 * k.ns]);
  run(
    be,
    "gradients",
    scanKernelConfig().bwdKernel === "split"
      ? code(splitGradientShader, k, has, sp, U)
      : code(gradientShader, k, has, sp, U),
    [
      x.u,
      x.delta,
      x.A,
      bct,
      ...pick(x, ["D", "z", "deltaBias"]),
      states,
      incoming,
      x.dy,
      g.u,
      g.delta,
      ...(g.z ? [g.z] : []),
      paramPartial,
      bcPartial,
    ],
    perChunk(k),
  );
  const paramOuts = ["gA", ...(g.D ? ["gD"] : []), ...(g.deltaBias ? ["gBias"] : [])];
  run(be, "paramReduce", code(paramReduceShader, k, paramOuts), [
    paramPartial,
    g.A,
    ...(g.D ? [g.D] : []),
    ...(g.deltaBias ? [g.deltaBias] : []),
  ], [k.dim, 1, 1]);
  run(be, "bcReduce", code(bcReduceShader, k), [bcPartial, g.B, g.C], flat(k.batch * k.len * 2 * k.ns));
  if (has.has("initialState")) {
    g.initialState = newTensor(be, [k.batch, k.dim, k.ns]);
    run(
      be,
      "initialStateGrad",
      code(lastSlotShader, k),
      [incoming, g.initialState],
      flat(k.batch * k.dim * k.ns),
    );
  }
  for (const t of [bct, summary, states, local, incoming, paramPartial, bcPartial]) be.disposeData(t.dataId);
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
