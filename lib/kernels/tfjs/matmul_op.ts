/**
 * `fastMatMul`: tf.matMul of two matrices, through the multi-threaded WebAssembly GEMM of wasm/matmul.ts
 * on the cpu and wasm backends (TF.js op `WasmMatMul`, with its gradient), tf.matMul elsewhere.
 *
 * Why: the wasm backend's BatchMatMul runs XNNPACK only when neither operand is transposed (otherwise a
 * loop ~12x slower, which tf.matMul's own gradient always hits), and on one thread; the cpu backend's is
 * plain JS. The GEMM here takes either operand transposed at no extra cost and uses every thread.
 */
import * as tf from "@tensorflow/tfjs";
import { matMul } from "../wasm/matmul.ts";
import { gemmWebGPU, gemmWorthwhile } from "../webgpu/gemm.ts";
import { wasmKernelsEnabled } from "../wasm/pool.ts";

export const MATMUL_KERNEL = "WasmMatMul";

type AnyBackend = {
  readSync(dataId: unknown): unknown;
  makeTensorInfo?(shape: number[], dtype: string, values: Float32Array): tf.TensorInfo;
  makeOutput?(shape: number[], dtype: string): tf.TensorInfo;
  typedArrayFromHeap?(t: tf.TensorInfo): Float32Array;
};

interface MatMulAttrs {
  transposeA: boolean;
  transposeB: boolean;
}

function dimsOf(a: tf.TensorInfo, b: tf.TensorInfo, { transposeA, transposeB }: MatMulAttrs) {
  if (a.shape.length !== 2 || b.shape.length !== 2) {
    throw new Error(`${MATMUL_KERNEL}: expected matrices, got shapes [${a.shape}] and [${b.shape}]`);
  }
  const [M, K] = transposeA ? [a.shape[1], a.shape[0]] : a.shape;
  const [Kb, N] = transposeB ? [b.shape[1], b.shape[0]] : b.shape;
  if (K !== Kb) {
    throw new Error(
      `${MATMUL_KERNEL}: incompatible shapes [${a.shape}] and [${b.shape}] ` +
        `(transposeA ${transposeA}, transposeB ${transposeB})`,
    );
  }
  return { M, K, N, transposeA, transposeB };
}

function kernelFunc(
  { inputs, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: unknown },
) {
  const be = backend as AnyBackend;
  const { a, b } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  const dims = dimsOf(a, b, attrs as unknown as MatMulAttrs);
  if (be.typedArrayFromHeap) {
    // wasm: the output first (a heap growth would detach views taken before), then views of the heap
    const out = be.makeOutput!([dims.M, dims.N], "float32");
    matMul(be.typedArrayFromHeap(a), be.typedArrayFromHeap(b), dims, be.typedArrayFromHeap(out));
    return out;
  }
  const c = new Float32Array(dims.M * dims.N);
  matMul(be.readSync(a.dataId) as Float32Array, be.readSync(b.dataId) as Float32Array, dims, c);
  return be.makeTensorInfo!([dims.M, dims.N], "float32", c);
}

for (const backendName of ["cpu", "wasm"]) {
  tf.registerKernel({ kernelName: MATMUL_KERNEL, backendName, kernelFunc: kernelFunc as tf.KernelFunc });
}
tf.registerKernel({
  kernelName: MATMUL_KERNEL,
  backendName: "webgpu",
  kernelFunc:
    (({ inputs, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: unknown }) => {
      const { a, b } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
      return gemmWebGPU(backend, a, b, dimsOf(a, b, attrs as unknown as MatMulAttrs));
    }) as tf.KernelFunc,
});

const run = (a: tf.Tensor, b: tf.Tensor, transposeA: boolean, transposeB: boolean) =>
  tf.engine().runKernel(
    MATMUL_KERNEL,
    { a, b },
    { transposeA, transposeB } as unknown as tf.NamedAttrMap,
  ) as tf.Tensor;

// The gradient, as tfjs's BatchMatMul's, in the same op.
tf.registerGradient({
  kernelName: MATMUL_KERNEL,
  inputsToSave: ["a", "b"],
  gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: tf.NamedAttrMap) => {
    const g = dy as tf.Tensor;
    const [a, b] = saved;
    const { transposeA, transposeB } = attrs as unknown as MatMulAttrs;
    if (!transposeA && !transposeB) {
      return {
        a: () => run(g, b, false, true),
        b: () => run(a, g, true, false),
      };
    }
    if (!transposeA && transposeB) {
      return {
        a: () => run(g, b, false, false),
        b: () => run(g, a, true, false),
      };
    }
    if (transposeA && !transposeB) {
      return {
        a: () => run(b, g, false, true),
        b: () => run(a, g, false, false),
      };
    }
    return { a: () => run(b, g, true, true), b: () => run(g, a, true, true) };
  },
});

/**
 * op(a) op(b) for matrices (float32): the WebAssembly GEMM on cpu and wasm where enabled, the WGSL GEMM of
 * webgpu/gemm.ts on webgpu for sizeable products (MAMBABYTE_WEBGPU_GEMM=0 switches it off), else
 * tf.matMul.
 */
export function fastMatMul(a: tf.Tensor, b: tf.Tensor, transposeA = false, transposeB = false): tf.Tensor {
  const backend = tf.getBackend();
  if (a.dtype !== "float32" || b.dtype !== "float32" || a.rank !== 2 || b.rank !== 2) {
    return tf.matMul(a, b, transposeA, transposeB);
  }
  if ((backend === "cpu" || backend === "wasm") && wasmKernelsEnabled()) {
    return run(a, b, transposeA, transposeB);
  }
  if (backend === "webgpu" && webgpuGemmEnabled() && storedAsFloat32(a) && storedAsFloat32(b)) {
    const { M, N, K } = dimsOf(a, b, { transposeA, transposeB });
    if (gemmWorthwhile(M, N, K)) return run(a, b, transposeA, transposeB);
  }
  return tf.matMul(a, b, transposeA, transposeB);
}

/**
 * Whether a float32 tensor's data really is float32 on the backend. tfjs-webgpu casts int32 and bool to
 * float32 without converting: the cast shares the integer buffer, and tfjs's own shaders read it by the
 * stored dtype; the WGSL GEMM binds it as f32 and would read integer bits (1 as 1.4e-45), as it did for the
 * embedding's gradient onehot(ids)^T dy. Such tensors go to tf.matMul.
 */
function storedAsFloat32(t: tf.Tensor): boolean {
  const map = (tf.backend() as { tensorMap?: { get(id: unknown): { dtype?: string } | undefined } })
    .tensorMap;
  return (map?.get(t.dataId)?.dtype ?? t.dtype) === "float32";
}

let webgpuGemm: boolean | undefined;
/** Whether fastMatMul uses the WGSL GEMM on webgpu (default on; MAMBABYTE_WEBGPU_GEMM=0 or setWebGPUGemm(false): off). */
export function webgpuGemmEnabled(): boolean {
  return webgpuGemm ?? Deno.env.get("MAMBABYTE_WEBGPU_GEMM") !== "0";
}
/** Switches the WGSL GEMM on or off (undefined: back to the environment's setting); for tests and benchmarks. */
export function setWebGPUGemm(on: boolean | undefined): void {
  webgpuGemm = on;
}
