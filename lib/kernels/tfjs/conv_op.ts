/**
 * `fusedCausalConvSilu`: silu(causal depthwise conv1d(x) + bias), channels last, as ONE TF.js op
 * (`CausalConvSilu`, gradient `CausalConvSiluGrad`) on the cpu and wasm backends, with the kernels of
 * wasm/conv.ts (their JS twins where the channels are not a multiple of 4). Replaces the pad, k shifted
 * slices, multiply-adds and SiLU of the op-built version (mamba.ts causalConv), and their gradients.
 */
import * as tf from "@tensorflow/tfjs";
import {
  type ConvDims,
  convSilu,
  convSiluBackward,
  convSiluBackwardReference,
  convSiluReference,
  convWasmSupports,
} from "../wasm/conv.ts";
import { wasmKernelsEnabled } from "../wasm/pool.ts";

export const CONV_KERNEL = "CausalConvSilu";
export const CONV_GRAD_KERNEL = "CausalConvSiluGrad";

type AnyBackend = {
  readSync(dataId: unknown): unknown;
  makeTensorInfo?(shape: number[], dtype: string, values: Float32Array): tf.TensorInfo;
  makeOutput?(shape: number[], dtype: string): tf.TensorInfo;
  typedArrayFromHeap?(t: tf.TensorInfo): Float32Array;
};

type Inputs = { x: tf.TensorInfo; w: tf.TensorInfo; bias: tf.TensorInfo; dy?: tf.TensorInfo };

function dimsOf({ x, w }: Inputs): ConvDims {
  const [batch, length, channels] = x.shape;
  return { batch, length, channels, k: w.shape[2] };
}

/** Outputs first (on wasm a heap growth would detach earlier views), then arrays to write them through. */
function makeOutputs(be: AnyBackend, shapes: number[][]) {
  if (be.typedArrayFromHeap) {
    const infos = shapes.map((s) => be.makeOutput!(s, "float32"));
    return { infos, arrays: infos.map((i) => be.typedArrayFromHeap!(i)) };
  }
  const arrays = shapes.map((s) => new Float32Array(s.reduce((a, b) => a * b, 1)));
  return { infos: shapes.map((s, i) => be.makeTensorInfo!(s, "float32", arrays[i])), arrays };
}

const read = (be: AnyBackend, t: tf.TensorInfo) =>
  (be.typedArrayFromHeap ? be.typedArrayFromHeap(t) : be.readSync(t.dataId)) as Float32Array;

function forwardKernel({ inputs, backend }: { inputs: tf.NamedTensorInfoMap; backend: unknown }) {
  const be = backend as AnyBackend;
  const ins = inputs as unknown as Inputs;
  const dims = dimsOf(ins);
  const { infos, arrays: [y] } = makeOutputs(be, [[...ins.x.shape]]);
  const fast = wasmKernelsEnabled() && convWasmSupports(dims);
  (fast ? convSilu : convSiluReference)(read(be, ins.x), read(be, ins.w), read(be, ins.bias), dims, y);
  return infos[0];
}

function gradKernel({ inputs, backend }: { inputs: tf.NamedTensorInfoMap; backend: unknown }) {
  const be = backend as AnyBackend;
  const ins = inputs as unknown as Inputs;
  const dims = dimsOf(ins);
  const { infos, arrays: [dx, dw, dbias] } = makeOutputs(be, [[...ins.x.shape], [...ins.w.shape], [
    ...ins.bias.shape,
  ]]);
  const args = [read(be, ins.x), read(be, ins.w), read(be, ins.bias), dims, read(be, ins.dy!)] as const;
  if (wasmKernelsEnabled() && convWasmSupports(dims)) {
    convSiluBackward(...args, { x: dx, w: dw, bias: dbias });
  } else {
    const g = convSiluBackwardReference(...args);
    dx.set(g.x);
    dw.set(g.w);
    dbias.set(g.bias);
  }
  return infos;
}

for (const backendName of ["cpu", "wasm"]) {
  tf.registerKernel({
    kernelName: CONV_KERNEL,
    backendName,
    kernelFunc: forwardKernel as unknown as tf.KernelFunc,
  });
  tf.registerKernel({
    kernelName: CONV_GRAD_KERNEL,
    backendName,
    kernelFunc: gradKernel as unknown as tf.KernelFunc,
  });
}

tf.registerGradient({
  kernelName: CONV_KERNEL,
  inputsToSave: ["x", "w", "bias"],
  gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
    const [x, w, bias] = saved;
    const [dx, dw, dbias] = tf.engine().runKernel(CONV_GRAD_KERNEL, {
      x,
      w,
      bias,
      dy: dy as tf.Tensor,
    }) as tf.Tensor[];
    return { x: () => dx, w: () => dw, bias: () => dbias };
  },
});

/** Whether fusedCausalConvSilu runs on the current backend (cpu or wasm, kernels enabled). */
export function fusedConvAvailable(): boolean {
  const backend = tf.getBackend();
  return (backend === "cpu" || backend === "wasm") && wasmKernelsEnabled();
}

/**
 * silu(causal conv1d): x (b, l, e), w (e, 1, k) as PyTorch's depthwise Conv1d stores it, bias (e) or
 * none -> (b, l, e). Differentiable with respect to all three.
 */
export function fusedCausalConvSilu(x: tf.Tensor, w: tf.Tensor, bias?: tf.Tensor): tf.Tensor {
  const [, , e] = x.shape;
  if (
    x.rank !== 3 || w.rank !== 3 || w.shape[0] !== e || w.shape[1] !== 1 ||
    (bias && bias.shape.join() !== `${e}`)
  ) {
    throw new Error(
      `fusedCausalConvSilu: expected x (b, l, e), w (e, 1, k), bias (e); got x [${x.shape}], ` +
        `w [${w.shape}]${bias ? `, bias [${bias.shape}]` : ""}`,
    );
  }
  return tf.tidy(() =>
    tf.engine().runKernel(CONV_KERNEL, { x, w, bias: bias ?? tf.zeros([e]) }) as tf.Tensor
  );
}
