/**
 * The fused selective scan as TF.js ops: `SelectiveScan` (outputs y and the last state) and
 * `SelectiveScanGrad` (the gradients of every input), registered for the cpu and wasm backends with the
 * JS kernels of scan_js.ts, and for webgpu with the WGSL kernels of scan_webgpu.ts. Autodiff connects
 * them through tf.customGrad, so `selectiveScan(..., {impl: "fused"})` is differentiable like the
 * op-built implementations.
 */
import * as tf from "@tensorflow/tfjs";
import { registerFusedScan } from "../scan.ts";
import type { ScanInputs, ScanOptions, ScanResult } from "../types.ts";
import { type ScanArrays, scanBackward, scanForward } from "./scan_js.ts";

export { namedInputs, SCAN_GRAD_KERNEL, SCAN_INPUTS, SCAN_KERNEL } from "./op_common.ts";
export type { ScanAttrs, ScanInputName } from "./op_common.ts";
import { namedInputs, SCAN_GRAD_KERNEL, SCAN_INPUTS, SCAN_KERNEL, type ScanAttrs, type ScanInputName } from "./op_common.ts";
import "./scan_webgpu.ts";

export function dimsOf(u: tf.TensorInfo, A: tf.TensorInfo) {
  const [batch, dInner, length] = u.shape;
  return { batch, dInner, dState: A.shape[1], length };
}

// ---------------------------------------------------------------------------------------------------
// cpu and wasm: JS over typed arrays

type AnyBackend = {
  readSync(dataId: unknown): unknown;
  makeTensorInfo?(shape: number[], dtype: string, values: Float32Array): tf.TensorInfo;
  makeOutput?(shape: number[], dtype: string): tf.TensorInfo;
  typedArrayFromHeap?(t: tf.TensorInfo): Float32Array;
};

function readInputs(inputs: tf.NamedTensorInfoMap, backend: AnyBackend): ScanArrays {
  const read = (name: string) => {
    const t = inputs[name];
    return t ? backend.readSync(t.dataId) as Float32Array : undefined;
  };
  return {
    u: read("u")!, delta: read("delta")!, A: read("A")!, B: read("B")!, C: read("C")!,
    D: read("D"), z: read("z"), deltaBias: read("deltaBias"), initialState: read("initialState"),
  };
}

/** Makes float32 outputs holding `values`, on the cpu (JS arrays) or wasm (heap) backend. */
function outputs(backend: AnyBackend, list: [number[], Float32Array][]): tf.TensorInfo[] {
  if (!backend.typedArrayFromHeap) {
    return list.map(([shape, values]) => backend.makeTensorInfo!(shape, "float32", values));
  }
  // wasm: allocate every output first, then fill (a heap growth would detach earlier views)
  const infos = list.map(([shape]) => backend.makeOutput!(shape, "float32"));
  infos.forEach((info, i) => backend.typedArrayFromHeap!(info).set(list[i][1]));
  return infos;
}

function forwardKernel({ inputs: list, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: unknown }) {
  const be = backend as AnyBackend;
  const a = attrs as unknown as ScanAttrs;
  const inputs = namedInputs(list, a);
  const dims = dimsOf(inputs.u, inputs.A);
  const y = new Float32Array(dims.batch * dims.dInner * dims.length);
  const last = new Float32Array(dims.batch * dims.dInner * dims.dState);
  scanForward(readInputs(inputs, be), dims, a.deltaSoftplus, y, last);
  return outputs(be, [[[dims.batch, dims.dInner, dims.length], y], [[dims.batch, dims.dInner, dims.dState], last]]);
}

function gradKernel({ inputs: list, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: unknown }) {
  const be = backend as AnyBackend;
  const a = attrs as unknown as ScanAttrs;
  const inputs = namedInputs(list, a);
  const dims = dimsOf(inputs.u, inputs.A);
  const x = readInputs(inputs, be);
  const gy = be.readSync(inputs.dy.dataId) as Float32Array;
  const gLast = inputs.dLast ? be.readSync(inputs.dLast.dataId) as Float32Array : undefined;
  const g = scanBackward(x, dims, a.deltaSoftplus, gy, gLast);
  const present = a.present.split(",");
  return outputs(be, present.map((name) => [inputs[name].shape, g[name as ScanInputName]] as [number[], Float32Array]));
}

for (const backendName of ["cpu", "wasm"]) {
  tf.registerKernel({ kernelName: SCAN_KERNEL, backendName, kernelFunc: forwardKernel as tf.KernelFunc });
  tf.registerKernel({ kernelName: SCAN_GRAD_KERNEL, backendName, kernelFunc: gradKernel as tf.KernelFunc });
}

// ---------------------------------------------------------------------------------------------------
// The differentiable op: the gradient of SelectiveScan is one SelectiveScanGrad call for all inputs

tf.registerGradient({
  kernelName: SCAN_KERNEL,
  saveAllInputs: true, // in `present` order (optional inputs may be missing, so no fixed inputsToSave)
  gradFunc: (dys: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: tf.NamedAttrMap) => {
    const [dy, dLast] = dys as tf.Tensor[]; // the engine passes zeros for an unused output
    const inputs = [...saved, dy, ...(dLast ? [dLast] : [])];
    // computed eagerly, in the backward pass's own scope (which disposes what is not used)
    const grads = tf.engine().runKernel(SCAN_GRAD_KERNEL, inputs as unknown as tf.NamedTensorMap, attrs) as tf.Tensor[];
    return Object.fromEntries(saved.map((_, i) => [String(i), () => grads[i]]));
  },
});

/**
 * The fused scan on the current backend (which must have the kernels registered). Differentiable with
 * respect to every tensor input, the initial state included.
 */
export function fusedSelectiveScan(inputs: ScanInputs, opts: ScanOptions): ScanResult {
  const named: Partial<Record<ScanInputName, tf.Tensor>> = { ...inputs, initialState: opts.initialState };
  const present = SCAN_INPUTS.filter((n) => named[n] !== undefined);
  const attrs: ScanAttrs = { deltaSoftplus: !!opts.deltaSoftplus, present: present.join(",") };
  const list = present.map((n) => named[n]!);
  const [y, lastState] = tf.engine().runKernel(
    SCAN_KERNEL, list as unknown as tf.NamedTensorMap, attrs as unknown as tf.NamedAttrMap,
  ) as tf.Tensor[];
  if (opts.returnLastState) return { y, lastState };
  lastState.dispose();
  return { y };
}

registerFusedScan("cpu", fusedSelectiveScan);
registerFusedScan("wasm", fusedSelectiveScan);
registerFusedScan("webgpu", fusedSelectiveScan);
