/**
 * The batch-1 decoding kernels of decode.wat (WebAssembly SIMD: `mv`, `mv4`, `ssmStep`, and math.wat's
 * vector functions through `map`), bound to a memory of their own, and `matvec`, the plain-JS twin of `mv`.
 * lib/decode/stepper.ts runs a Mamba step with them; tests compare the step with lib/models/mamba.ts's.
 */
import { SCAN_WASM_BASE64 } from "./bytes.ts";
import { decodeBase64, MAX_PAGES } from "./pool.ts";

/**
 * y (rows) = W (rows, cols) @ x (cols) (+ bias), W row-major as PyTorch stores Linear weights. Four rows
 * at a time: each x[i] is loaded once for four multiply-adds, and the four sums are independent chains
 * (about 2x faster than one row at a time in V8).
 */
export function matvec(
  W: Float32Array,
  x: Float32Array,
  y: Float32Array,
  rows: number,
  cols: number,
  bias?: Float32Array,
) {
  let o = 0;
  for (; o + 3 < rows; o += 4) {
    const b0 = o * cols, b1 = b0 + cols, b2 = b1 + cols, b3 = b2 + cols;
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (let i = 0; i < cols; i++) {
      const xi = x[i];
      s0 += W[b0 + i] * xi;
      s1 += W[b1 + i] * xi;
      s2 += W[b2 + i] * xi;
      s3 += W[b3 + i] * xi;
    }
    y[o] = s0 + (bias ? bias[o] : 0);
    y[o + 1] = s1 + (bias ? bias[o + 1] : 0);
    y[o + 2] = s2 + (bias ? bias[o + 2] : 0);
    y[o + 3] = s3 + (bias ? bias[o + 3] : 0);
  }
  for (; o < rows; o++) {
    const base = o * cols;
    let s = 0;
    for (let i = 0; i < cols; i++) s += W[base + i] * x[i];
    y[o] = s + (bias ? bias[o] : 0);
  }
}

export type MvFn = (W: number, x: number, y: number, rows: number, cols: number) => void;
export type Mv4Fn = (
  W: number,
  x: number,
  xs: number,
  y: number,
  ys: number,
  rows: number,
  cols: number,
) => void;
export type MapFn = (f: number, src: number, dst: number, n: number) => void;
export type SsmStepFn = (
  hOld: number,
  h: number,
  A2: number,
  dt: number,
  x: number,
  B: number,
  C: number,
  s: number,
  e: number,
  n: number,
) => void;

/**
 * The decoding kernels of decode.wat (WebAssembly SIMD: `mv`, `mv4`, `ssmStep`), bound to a fresh memory of
 * `floats` float32 values; undefined where they cannot run, and then the stepper runs plain JS, saying why
 * once on stderr (decodeKernelsUnavailable). Pointers are byte offsets into that memory, so the weights,
 * inputs and outputs all live there.
 */
export function decodeKernels(
  floats: number,
): { mem: WebAssembly.Memory; mv: MvFn; mv4: Mv4Fn; ssmStep: SsmStepFn; map: MapFn } | undefined {
  const why = decodeKernelsUnavailable(floats);
  if (why) return fallBack(why);
  try {
    const pages = Math.ceil((floats * 4 + 64) / 65536);
    const mem = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    const module = new WebAssembly.Module(decodeBase64(SCAN_WASM_BASE64) as BufferSource);
    const x = new WebAssembly.Instance(module, { env: { memory: mem } }).exports;
    return {
      mem,
      mv: x.mv as unknown as MvFn,
      mv4: x.mv4 as unknown as Mv4Fn,
      ssmStep: x.ssmStep as unknown as SsmStepFn,
      map: x.map as unknown as MapFn,
    };
  } catch (e) {
    return fallBack(`the WebAssembly SIMD stepper could not start (${(e as Error).message})`);
  }
}

/** Says once per reason, on one line, that the plain-JS stepper decodes instead of the kernels. */
function fallBack(reason: string): undefined {
  if (!warned.has(reason)) {
    warned.add(reason);
    console.error(`decoding: ${reason}; the plain-JS stepper decodes instead (several times slower)`);
  }
  return undefined;
}
const warned = new Set<string>();

/**
 * The most float32 values (weights and scratch) one memory of the decoding kernels holds: they are
 * compiled against a memory of at most MAX_PAGES pages (2 GiB), less 64 bytes of alignment slack.
 */
export const DECODE_MEMORY_FLOATS = (MAX_PAGES * 65536 - 64) / 4;

/**
 * Why the SIMD stepper cannot hold `floats` float32 values in one memory, or undefined when it can: the
 * paper's 972M model (3.9 GB of float32 weights) does not fit one (the stepper splits it by layers).
 */
export function decodeKernelsUnavailable(floats: number): string | undefined {
  if (floats > DECODE_MEMORY_FLOATS) {
    return `the WebAssembly SIMD stepper holds at most ${MAX_PAGES * 65536 / 2 ** 30} GiB of weights and ` +
      `scratch in its one memory; this model needs ${((floats * 4 + 64) / 2 ** 30).toFixed(2)} GiB`;
  }
  return undefined;
}

/** The bound kernels `decodeKernels` returns. */
export type DecodeKernels = NonNullable<ReturnType<typeof decodeKernels>>;
