/**
 * The fused selective scan as TF.js ops: `SelectiveScan` (outputs y and the last state) and
 * `SelectiveScanGrad` (the gradients of every input), registered for the cpu and wasm backends with the
 * WebAssembly SIMD kernels of wasm/scan.ts (their plain-JS twins in wasm/scan_reference.ts as the fallback), and for webgpu with the WGSL kernels of webgpu/scan.ts. Autodiff connects
 * them through tf.customGrad, so `selectiveScan(..., {impl: "fused"})` is differentiable like the
 * op-built implementations.
 */
import * as tf from "@tensorflow/tfjs";
import * as jsKernel from "../wasm/scan_reference.ts";
import type { ScanArrays, ScanGradients } from "../wasm/scan_reference.ts";
import * as wasmKernel from "../wasm/scan.ts";
import { wasmKernelsEnabled } from "../wasm/pool.ts";

export { namedInputs, SCAN_GRAD_KERNEL, SCAN_INPUTS, SCAN_KERNEL } from "./scan_attrs.ts";
export type { ScanAttrs, ScanInputName } from "./scan_attrs.ts";
import {
  namedInputs,
  SCAN_GRAD_KERNEL,
  SCAN_INPUTS,
  SCAN_KERNEL,
  type ScanAttrs,
  type ScanInputName,
} from "./scan_attrs.ts";
import "../webgpu/scan.ts";

/**
 * The fused scan's tensors, in mamba_ssm's layout (lib/ssm/types.ts documents the math): u, delta, z
 * (b, d, l); A (d, n); B, C (b, n, l); D, deltaBias (d). Channels-last variants: see SCAN_CL_KERNEL.
 */
export interface ScanInputs {
  u: tf.Tensor;
  delta: tf.Tensor;
  A: tf.Tensor;
  B: tf.Tensor;
  C: tf.Tensor;
  D?: tf.Tensor;
  z?: tf.Tensor;
  deltaBias?: tf.Tensor;
}

export interface ScanOptions {
  /** softplus(delta + deltaBias) before the scan, as Mamba does. */
  deltaSoftplus?: boolean;
  /** h_{-1}, (b, d, n); default zeros. */
  initialState?: tf.Tensor;
  /** Also return h_{l-1}, (b, d, n). */
  returnLastState?: boolean;
}

export interface ScanResult {
  y: tf.Tensor;
  lastState?: tf.Tensor;
}

export function dimsOf(u: tf.TensorInfo, A: tf.TensorInfo) {
  const [batch, dInner, length] = u.shape;
  return { batch, dInner, dState: A.shape[1], length };
}

// ---------------------------------------------------------------------------------------------------
// cpu and wasm: the WebAssembly SIMD kernel of wasm/scan.ts (multi-threaded) over typed arrays, or its
// reference twin in plain JS (wasm/scan_reference.ts) where WebAssembly SIMD is missing or the kernels are switched
// off (MAMBABYTE_WASM_KERNELS=0 or setWasmKernels(false), see wasm/pool.ts)

type AnyBackend = {
  readSync(dataId: unknown): unknown;
  makeTensorInfo?(shape: number[], dtype: string, values: Float32Array): tf.TensorInfo;
  makeOutput?(shape: number[], dtype: string): tf.TensorInfo;
  typedArrayFromHeap?(t: tf.TensorInfo): Float32Array;
};

/**
 * The inputs as typed arrays: on cpu the backend's own arrays, on wasm views of its heap (no copies;
 * valid until the backend next allocates, so make the outputs first).
 */
function readInputs(inputs: Record<string, tf.TensorInfo>, backend: AnyBackend): ScanArrays {
  const read = (name: string) => {
    const t = inputs[name];
    if (!t) return undefined;
    return (backend.typedArrayFromHeap
      ? backend.typedArrayFromHeap(t)
      : backend.readSync(t.dataId)) as Float32Array;
  };
  return {
    u: read("u")!,
    delta: read("delta")!,
    A: read("A")!,
    B: read("B")!,
    C: read("C")!,
    D: read("D"),
    z: read("z"),
    deltaBias: read("deltaBias"),
    initialState: read("initialState"),
  };
}

/**
 * Float32 outputs of these shapes and arrays to write them through: on wasm views of the outputs' heap
 * memory (all allocated before any view is taken: a heap growth would detach earlier views), on cpu
 * fresh arrays that become the outputs' storage.
 */
function makeOutputs(
  backend: AnyBackend,
  shapes: number[][],
): { infos: tf.TensorInfo[]; arrays: Float32Array[] } {
  if (backend.typedArrayFromHeap) {
    const infos = shapes.map((shape) => backend.makeOutput!(shape, "float32"));
    return { infos, arrays: infos.map((info) => backend.typedArrayFromHeap!(info)) };
  }
  const arrays = shapes.map((shape) => new Float32Array(shape.reduce((a, b) => a * b, 1)));
  return { infos: shapes.map((shape, i) => backend.makeTensorInfo!(shape, "float32", arrays[i])), arrays };
}

/** The dims of a cpu/wasm kernel call: (b, d, l) inputs, or (b, l, d) ones with attrs.channelsLast. */
function cpuDims(inputs: Record<string, tf.TensorInfo>, attrs: ScanAttrs) {
  if (!attrs.channelsLast) return dimsOf(inputs.u, inputs.A);
  const [batch, length, dInner] = inputs.u.shape;
  return { batch, dInner, dState: inputs.A.shape[1], length, channelsLast: true };
}

function forwardKernel(
  { inputs: list, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: unknown },
) {
  const be = backend as AnyBackend;
  const a = attrs as unknown as ScanAttrs;
  const inputs = namedInputs(list, a);
  const dims = cpuDims(inputs, a);
  const { infos, arrays: [y, last] } = makeOutputs(be, [
    [...inputs.u.shape],
    [dims.batch, dims.dInner, dims.dState],
  ]);
  const kernel = wasmKernelsEnabled() ? wasmKernel : jsKernel;
  kernel.scanForward(readInputs(inputs, be), dims, a.deltaSoftplus, y, last);
  if (a.lastState) return infos;
  (be as unknown as tf.KernelBackend).disposeData(infos[1].dataId); // computed alongside y, not an output
  return [infos[0]];
}

function gradKernel(
  { inputs: list, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: unknown },
) {
  const be = backend as AnyBackend;
  const a = attrs as unknown as ScanAttrs;
  const inputs = namedInputs(list, a);
  const dims = cpuDims(inputs, a);
  const present = a.present.split(",") as ScanInputName[];
  const { infos, arrays } = makeOutputs(be, present.map((name) => inputs[name].shape));
  const x = readInputs(inputs, be);
  const read = (t: tf.TensorInfo) =>
    (be.typedArrayFromHeap ? be.typedArrayFromHeap(t) : be.readSync(t.dataId)) as Float32Array;
  const gy = read(inputs.dy);
  const gLast = inputs.dLast ? read(inputs.dLast) : undefined;
  if (wasmKernelsEnabled()) {
    const out: Partial<ScanGradients> = Object.fromEntries(present.map((name, i) => [name, arrays[i]]));
    wasmKernel.scanBackward(x, dims, a.deltaSoftplus, gy, gLast, out);
  } else {
    const g = jsKernel.scanBackward(x, dims, a.deltaSoftplus, gy, gLast);
    present.forEach((name, i) => arrays[i].set(g[name]));
  }
  return infos;
}

/**
 * The same scan with channels-last tensors, cpu and wasm only: u, delta, z and y (b, l, d), B and C
 * (b, l, n), as a model's activations come out of its matmuls (no transposes around the scan).
 */
export const SCAN_CL_KERNEL = "SelectiveScanChannelsLast";
export const SCAN_CL_GRAD_KERNEL = "SelectiveScanChannelsLastGrad";

for (const backendName of ["cpu", "wasm"]) {
  tf.registerKernel({ kernelName: SCAN_KERNEL, backendName, kernelFunc: forwardKernel as tf.KernelFunc });
  tf.registerKernel({ kernelName: SCAN_GRAD_KERNEL, backendName, kernelFunc: gradKernel as tf.KernelFunc });
  tf.registerKernel({ kernelName: SCAN_CL_KERNEL, backendName, kernelFunc: forwardKernel as tf.KernelFunc });
  tf.registerKernel({
    kernelName: SCAN_CL_GRAD_KERNEL,
    backendName,
    kernelFunc: gradKernel as tf.KernelFunc,
  });
}

/** Whether `fusedSelectiveScanChannelsLast` runs on the current backend (cpu or wasm, kernels enabled). */
export function channelsLastScanAvailable(): boolean {
  const backend = tf.getBackend();
  return (backend === "cpu" || backend === "wasm") && wasmKernelsEnabled();
}

// ---------------------------------------------------------------------------------------------------
// The differentiable op: the gradient of SelectiveScan is one SelectiveScanGrad call for all inputs

for (
  const [kernelName, gradKernelName] of [[SCAN_KERNEL, SCAN_GRAD_KERNEL], [
    SCAN_CL_KERNEL,
    SCAN_CL_GRAD_KERNEL,
  ]]
) {
  tf.registerGradient({
    kernelName,
    saveAllInputs: true, // in `present` order (optional inputs may be missing, so no fixed inputsToSave)
    gradFunc: (dys: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: tf.NamedAttrMap) => {
      // with attrs.lastState the op has two outputs (the engine passes zeros for one not used), else one
      const [dy, dLast] = Array.isArray(dys) ? dys : [dys];
      const inputs = [...saved, dy, ...(dLast ? [dLast] : [])];
      // computed eagerly, in the backward pass's own scope (which disposes what is not used)
      const grads = tf.engine().runKernel(
        gradKernelName,
        inputs as unknown as tf.NamedTensorMap,
        attrs,
      ) as tf.Tensor[];
      return Object.fromEntries(saved.map((_, i) => [String(i), () => grads[i]]));
    },
  });
}

/**
 * The fused scan on the current backend (which must have the kernels registered). Differentiable with
 * respect to every tensor input, the initial state included.
 */
export function fusedSelectiveScan(inputs: ScanInputs, opts: ScanOptions): ScanResult {
  return runFused(SCAN_KERNEL, inputs, opts, false);
}

/**
 * `fusedSelectiveScan` with channels-last tensors (see SCAN_CL_KERNEL): u, delta, z (b, l, d), B, C
 * (b, l, n) -> y (b, l, d); A, D, deltaBias, the states as usual. cpu and wasm only (see
 * channelsLastScanAvailable). Differentiable with respect to every tensor input.
 */
export function fusedSelectiveScanChannelsLast(inputs: ScanInputs, opts: ScanOptions): ScanResult {
  const { u, delta, A, B, C, D, z, deltaBias } = inputs;
  const [b, l, d] = u.shape;
  const n = A.shape[1] ?? -1;
  const same = (t: tf.Tensor | undefined, shape: number[]) => !t || t.shape.join() === shape.join();
  if (
    u.rank !== 3 || !same(delta, [b, l, d]) || !same(z, [b, l, d]) || !same(A, [d, n]) ||
    !same(B, [b, l, n]) ||
    !same(C, [b, l, n]) || !same(D, [d]) || !same(deltaBias, [d]) || !same(opts.initialState, [b, d, n])
  ) {
    throw new Error(
      `fusedSelectiveScanChannelsLast: expected u, delta, z (b, l, d), A (d, n), B, C (b, l, n), ` +
        `got u [${u.shape}], delta [${delta.shape}], A [${A.shape}], B [${B.shape}], C [${C.shape}]`,
    );
  }
  return runFused(SCAN_CL_KERNEL, inputs, opts, true);
}

function runFused(
  kernelName: string,
  inputs: ScanInputs,
  opts: ScanOptions,
  channelsLast: boolean,
): ScanResult {
  const named: Partial<Record<ScanInputName, tf.Tensor>> = { ...inputs, initialState: opts.initialState };
  const present = SCAN_INPUTS.filter((n) => named[n] !== undefined);
  const attrs: ScanAttrs = {
    deltaSoftplus: !!opts.deltaSoftplus,
    present: present.join(","),
    lastState: !!opts.returnLastState,
  };
  if (channelsLast) attrs.channelsLast = true;
  const list = present.map((n) => named[n]!);
  const [y, lastState] = tf.engine().runKernel(
    kernelName,
    list as unknown as tf.NamedTensorMap,
    attrs as unknown as tf.NamedAttrMap,
  ) as tf.Tensor[];
  return opts.returnLastState ? { y, lastState } : { y };
}

/** Whether `backend` (default: the current one) has the fused scan's kernels (cpu, wasm and webgpu do). */
export function fusedScanAvailable(backend = tf.getBackend()): boolean {
  return tf.getKernel(SCAN_KERNEL, backend) !== undefined;
}
