/**
 * The batch-1 decoding kernels of decode.wat (WebAssembly SIMD: `mv`, `mv4`, `ssmStep`, their twins over
 * compressed weights `mvBf16`, `mv4Bf16`, `mvQ8`, `mv4Q8`, and math.wat's vector functions through `map`),
 * bound to a memory of their own; the weight formats and their plain-JS twins (`matvec`, `matvecBf16`,
 * `matvecQ8`). lib/decode/stepper.ts runs a Mamba step with them; tests compare the step with
 * lib/models/mamba.ts's and each kernel with its twin.
 */
import { kernelModules, MAX_PAGES } from "./pool.ts";
import { type KernelName, KernelThreads } from "./threads.ts";

/**
 * How the stepper stores its weight matrices: float32; bfloat16 (the top half of each float32, rounded to
 * nearest even: 2 bytes a weight); int8 with one float32 scale per row and block of Q8_BLOCK columns
 * (1.0625 bytes a weight; the input vector is then rounded to int16 with one scale per vector).
 */
export const WEIGHT_FORMATS = ["f32", "bf16", "int8"] as const;
export type WeightFormat = typeof WEIGHT_FORMATS[number];
/** Columns per int8 scale (a row's block): the int8 kernels need cols % Q8_BLOCK == 0. */
export const Q8_BLOCK = 64;

/** Whether a (rows, cols) matrix can be stored in `format` (the kernels' column multiples). */
export function formatFits(format: WeightFormat, cols: number): boolean {
  return format === "int8" ? cols % Q8_BLOCK === 0 : cols % 8 === 0;
}

/** float32 -> bfloat16 bits, rounded to nearest even (NaN stays NaN). */
export function toBf16(a: Float32Array): Uint16Array {
  const u = new Uint32Array(a.buffer, a.byteOffset, a.length), out = new Uint16Array(a.length);
  for (let i = 0; i < a.length; i++) {
    const v = u[i];
    out[i] = (v & 0x7fffffff) > 0x7f800000 ? (v >>> 16) | 0x40 : (v + 0x7fff + ((v >>> 16) & 1)) >>> 16;
  }
  return out;
}

/** bfloat16 bits -> float32 values (exact). */
export function fromBf16(b: Uint16Array): Float32Array {
  const u = new Uint32Array(b.length);
  for (let i = 0; i < b.length; i++) u[i] = b[i] << 16;
  return new Float32Array(u.buffer);
}

/**
 * W (rows, cols) -> int8 values and one scale per row and block of Q8_BLOCK columns: scale = max |w| / 127
 * over the block, q = round(w / scale); w ~ q scale. cols % Q8_BLOCK == 0.
 */
export function quantizeQ8(
  W: Float32Array,
  rows: number,
  cols: number,
): { q: Int8Array; scales: Float32Array } {
  if (cols % Q8_BLOCK !== 0) throw new Error(`quantizeQ8: cols ${cols} is not a multiple of ${Q8_BLOCK}`);
  const q = new Int8Array(rows * cols), scales = new Float32Array(rows * cols / Q8_BLOCK);
  for (let b = 0; b < scales.length; b++) {
    const at = b * Q8_BLOCK;
    let m = 0;
    for (let i = 0; i < Q8_BLOCK; i++) m = Math.max(m, Math.abs(W[at + i]));
    const s = Math.fround(m / 127);
    scales[b] = s;
    // clamped: a subnormal scale (a block of weights below 1e-36) could round past 127
    if (s > 0) {
      for (let i = 0; i < Q8_BLOCK; i++) {
        q[at + i] = Math.max(-127, Math.min(127, Math.round(W[at + i] / s)));
      }
    }
  }
  return { q, scales };
}

/**
 * x[0, cols) -> int16 in out[0, cols), one scale for the vector: scale = max |x| / 32767, q = round(x /
 * scale); returns the scale (0 for an all-zero x). The int8 kernels' right-hand side.
 */
export function quantizeX16(x: Float32Array, out: Int16Array, cols: number): number {
  let m = 0;
  for (let i = 0; i < cols; i++) m = Math.max(m, Math.abs(x[i]));
  const s = Math.fround(m / 32767);
  if (s === 0) out.fill(0, 0, cols);
  else for (let i = 0; i < cols; i++) out[i] = Math.max(-32767, Math.min(32767, Math.round(x[i] / s)));
  return s;
}

/** The plain-JS twin of `mvBf16`: y = W x with W in bfloat16 bits (sums in double precision). */
export function matvecBf16(W: Uint16Array, x: Float32Array, y: Float32Array, rows: number, cols: number) {
  const f = new Float32Array(1), u = new Uint32Array(f.buffer);
  for (let o = 0; o < rows; o++) {
    let s = 0;
    for (let i = 0; i < cols; i++) {
      u[0] = W[o * cols + i] << 16;
      s += f[0] * x[i];
    }
    y[o] = s;
  }
}

/**
 * The plain-JS twin of `mvQ8`: y[o] = sum_b S[o, b] sum_{i in b} q[o, i] xq[i] (integer sums exact, the
 * rest in double precision); the caller multiplies by xq's scale.
 */
export function matvecQ8(
  q: Int8Array,
  S: Float32Array,
  xq: Int16Array,
  y: Float32Array,
  rows: number,
  cols: number,
) {
  const nb = cols / Q8_BLOCK;
  for (let o = 0; o < rows; o++) {
    let s = 0;
    for (let b = 0; b < nb; b++) {
      let dot = 0;
      for (let i = b * Q8_BLOCK; i < (b + 1) * Q8_BLOCK; i++) dot += q[o * cols + i] * xq[i];
      s += dot * S[o * nb + b];
    }
    y[o] = s;
  }
}

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
 * The kernels a KernelThreads gang runs for the stepper, by index (DecodeFn): decode.wat's exports of the
 * kernels module (module 0 of pool.ts `kernelModules`, matmul.wat module 1).
 */
export const DECODE_THREAD_KERNELS: readonly KernelName[] = [
  [0, "mv"],
  [0, "mv4"],
  [0, "ssmStep"],
  [0, "mvBf16"],
  [0, "mv4Bf16"],
  [0, "mvQ8"],
  [0, "mv4Q8"],
  [1, "gemm"],
  [0, "ssmScan"],
  [1, "gemmPanels"],
  [0, "siluRows"],
  [0, "map"],
  [0, "convRows"],
  [0, "stepLayers"],
];
export const DecodeFn = {
  mv: 0,
  mv4: 1,
  ssmStep: 2,
  mvBf16: 3,
  mv4Bf16: 4,
  mvQ8: 5,
  mv4Q8: 6,
  gemm: 7,
  ssmScan: 8,
  gemmPanels: 9,
  siluRows: 10,
  map: 11,
  convRows: 12,
  stepLayers: 13,
} as const;

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
  if (why) return plainStepperInstead(why);
  try {
    const pages = Math.ceil((floats * 4 + 64) / 65536);
    const mem = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    const x = new WebAssembly.Instance(kernelModules()[0], { env: { memory: mem } }).exports;
    return {
      mem,
      mv: x.mv as unknown as MvFn,
      mv4: x.mv4 as unknown as Mv4Fn,
      ssmStep: x.ssmStep as unknown as SsmStepFn,
      map: x.map as unknown as MapFn,
    };
  } catch (e) {
    return plainStepperInstead(`the WebAssembly SIMD stepper could not start (${(e as Error).message})`);
  }
}

/** Says once per reason, on one line, that the plain-JS stepper decodes instead of the kernels. */
export function plainStepperInstead(reason: string): undefined {
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

/**
 * How fast `threads` threads read memory in WebAssembly (decode.wat's sumFloats, each thread over its
 * share of one buffer of about `floats` float32 values): the ceiling of a decoding step, which reads each
 * weight once. The buffer (`floats` rounded down to whole runs of 16 per thread) and the threads are made
 * once, so that measuring again allocates and starts nothing (a benchmark measures it between its
 * contenders' repetitions); `close` ends the threads.
 */
export class MemoryReader {
  readonly floats: number;
  private mem: WebAssembly.Memory;
  private gang: KernelThreads;
  private jobs: number[][];
  private out: number;

  constructor(readonly threads: number, floats = 2 ** 27) {
    const share = Math.floor(floats / (16 * threads)) * 16;
    if (share === 0) throw new Error(`MemoryReader: ${floats} floats are fewer than 16 per thread`);
    this.floats = share * threads;
    this.out = this.floats * 4;
    const pages = Math.ceil((this.out + 64 * threads) / 65536);
    this.mem = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    new Float32Array(this.mem.buffer, 0, this.floats).fill(1);
    this.gang = new KernelThreads(kernelModules(), [this.mem], [[0, "sumFloats"]], threads);
    this.jobs = Array.from({ length: threads }, (_, k) => [k * share * 4, share, this.out + 64 * k]);
  }

  /**
   * Bytes read per second, best of `reps`, and the buffer's sum (1 per float), which must equal `floats`:
   * every float was read (else it throws).
   */
  measure(reps = 5): { bytesPerS: number; sum: number } {
    let best = Infinity;
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      this.gang.run(0, 0, this.jobs);
      best = Math.min(best, performance.now() - t0);
    }
    const sums = new Float32Array(this.mem.buffer, this.out, 16 * this.threads);
    let sum = 0;
    for (let k = 0; k < this.threads; k++) sum += sums[16 * k];
    if (sum !== this.floats) throw new Error(`MemoryReader: summed ${sum} of ${this.floats} ones`);
    return { bytesPerS: this.floats * 4 / (best / 1000), sum };
  }

  close(): void {
    this.gang.close();
  }
}
