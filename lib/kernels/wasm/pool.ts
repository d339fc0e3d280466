/**
 * The WebAssembly kernels' runtime: one shared WebAssembly.Memory, the kernel modules (scan.wat,
 * matmul.wat, compiled into wasm/bytes.ts by wasm/build.ts) instantiated on it, and a pool of worker
 * threads running the same modules on the same memory.
 *
 * Threads: the calling thread plus MAMBABYTE_THREADS - 1 workers (default: navigator.hardwareConcurrency,
 * at most MAX_THREADS), a KernelThreads gang (threads.ts) over the one memory. TF.js kernels are
 * synchronous, so the caller hands each worker its share, does its own, then waits until the workers are
 * done (allowed on Deno's main thread). Workers start on first use and never keep a process alive. If
 * they cannot start, everything runs on the calling thread.
 *
 * Memory: the first 4 KiB hold parameter blocks; callers lay out their arrays from HEAP upwards for the
 * duration of one synchronous call (calls never overlap).
 */
import { MATMUL_WASM_BASE64, SCAN_WASM_BASE64 } from "./bytes.ts";
import { type KernelName, KernelThreads } from "./threads.ts";

const PAGE = 65536;
/** The memory's maximum, as declared in the .wat files (2 GiB). */
export const MAX_PAGES = 32768;
/** Parameter blocks: 0 .. 2047 (callers' own layout), 2048 .. 3071 for `transpose`. */
export const PARAMS = 0;
const TRANSPOSE_PARAMS = 2048;
export const HEAP = 4096;
/** The most threads, the caller included (the callers' parameter blocks are laid out for 16). */
export const MAX_THREADS = 16;

/** Kernel functions, by index (the same table in the workers). */
export const Fn = {
  ScanForward: 0,
  ScanBackward: 1,
  Gemm: 2,
  Transpose: 3,
  ConvForward: 4,
  ConvBackward: 5,
  ConvChForward: 6,
  ConvChBackward: 7,
  AddRmsNorm: 8,
  RmsNormBackward: 9,
  CrossEntropy: 10,
  AdamW: 11,
} as const;
export type Fn = typeof Fn[keyof typeof Fn];

/** Fn's kernels as [module (0 scan, 1 matmul), export]: the gang's table, in Fn's order. */
const POOL_KERNELS: readonly KernelName[] = [
  [0, "forward"],
  [0, "backward"],
  [1, "gemm"],
  [0, "transpose"],
  [0, "convForward"],
  [0, "convBackward"],
  [0, "convChForward"],
  [0, "convChBackward"],
  [0, "addRmsNorm"],
  [0, "rmsNormBackward"],
  [0, "crossEntropy"],
  [0, "adamw"],
];

type KernelFn = (a0: number, a1: number, a2: number, a3: number) => void;

export interface ScanExports {
  forward: KernelFn;
  backward: KernelFn;
  map(f: number, src: number, dst: number, n: number): void;
  transpose: KernelFn;
  convForward: KernelFn;
  convBackward: KernelFn;
  convChForward: KernelFn;
  convChBackward: KernelFn;
  addRmsNorm: KernelFn;
  rmsNormBackward: KernelFn;
  crossEntropy: KernelFn;
  adamw: KernelFn;
}
export interface MatmulExports {
  gemm: KernelFn;
  pack(src: number, K: number, N: number, transposed: number, dst: number): void;
  packAT(src: number, K: number, M: number, dst: number): void;
  packStrided(src: number, K: number, N: number, sk: number, sn: number, dst: number): void;
  epilogue(src: number, lds: number, dst: number, ldd: number, M: number, N: number, acc: number): void;
}

export interface Pool {
  memory: WebAssembly.Memory;
  scan: ScanExports;
  matmul: MatmulExports;
  /** the threads that run Fn's kernels on `memory` (the caller and up to MAX_THREADS - 1 workers) */
  threads: KernelThreads;
}

let pool: Pool | undefined;
let poolError: Error | undefined;
let threadOverride: number | undefined;

/** The bytes of a base64 string (the kernels ship as base64 in wasm/bytes.ts). */
export function decodeBase64(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

let compiled: WebAssembly.Module[] | undefined;
/**
 * The kernels modules, [scan.wat with its parts, matmul.wat], compiled once per process: the pool and the
 * decoding stepper's memories all instantiate them.
 */
export function kernelModules(): WebAssembly.Module[] {
  compiled ??= [SCAN_WASM_BASE64, MATMUL_WASM_BASE64].map((b) =>
    new WebAssembly.Module(decodeBase64(b) as BufferSource)
  );
  return compiled;
}

/** The pool (modules compiled and instantiated on first use); throws where WebAssembly SIMD is missing. */
export function getPool(): Pool {
  if (pool) return pool;
  if (poolError) throw poolError;
  try {
    const modules = kernelModules();
    const memory = new WebAssembly.Memory({ initial: 2, maximum: MAX_PAGES, shared: true });
    const [scan, matmul] = modules.map((m) =>
      new WebAssembly.Instance(m, { env: { memory } }).exports
    ) as unknown as [
      ScanExports,
      MatmulExports,
    ];
    pool = {
      memory,
      scan,
      matmul,
      threads: new KernelThreads(modules, [memory], POOL_KERNELS, MAX_THREADS),
    };
    return pool;
  } catch (e) {
    poolError = new Error(`the WebAssembly kernels cannot run here: ${(e as Error).message}`);
    throw poolError;
  }
}

/** True where the WebAssembly kernels run (SIMD, relaxed SIMD and shared memory are available). */
export function wasmKernelsAvailable(): boolean {
  try {
    getPool();
    return true;
  } catch {
    return false;
  }
}

let enabledOverride: boolean | undefined;

/**
 * Whether the cpu and wasm backends use these kernels (the scan's and the matmul's ops): available and not
 * switched off by setWasmKernels(false) or MAMBABYTE_WASM_KERNELS=0 (then: the plain-JS scan and tf.matMul).
 */
export function wasmKernelsEnabled(): boolean {
  let on = enabledOverride;
  if (on === undefined) {
    let env: string | undefined;
    try {
      env = Deno.env.get("MAMBABYTE_WASM_KERNELS");
    } catch {
      env = undefined; // no --allow-env
    }
    if (env !== undefined && env !== "" && env !== "0" && env !== "1") {
      throw new Error(`MAMBABYTE_WASM_KERNELS must be 0 or 1, got "${env}"`);
    }
    on = env !== "0";
  }
  return on && wasmKernelsAvailable();
}

/** Overrides wasmKernelsEnabled() for this process (undefined: back to MAMBABYTE_WASM_KERNELS / on). */
export function setWasmKernels(on: boolean | undefined): void {
  enabledOverride = on;
}

/** Threads asked for: setThreads(), else MAMBABYTE_THREADS, else the number of logical CPUs. */
export function threadCount(): number {
  if (threadOverride !== undefined) return threadOverride;
  let env: string | undefined;
  try {
    env = Deno.env.get("MAMBABYTE_THREADS");
  } catch {
    env = undefined; // no --allow-env: the default
  }
  if (env !== undefined && env !== "") {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 1) {
      throw new Error(`MAMBABYTE_THREADS must be a positive integer, got "${env}"`);
    }
    return Math.min(n, MAX_THREADS);
  }
  return Math.max(1, Math.min(navigator.hardwareConcurrency || 1, MAX_THREADS));
}

/** Overrides the thread count for this process (undefined: back to MAMBABYTE_THREADS / the default). */
export function setThreads(n: number | undefined): void {
  if (n !== undefined && (!Number.isInteger(n) || n < 1)) throw new Error(`threads must be >= 1, got ${n}`);
  threadOverride = n === undefined ? undefined : Math.min(n, MAX_THREADS);
}

/** How many worker threads run now (started on demand, up to threadCount() - 1). */
export function workerCount(): number {
  return pool?.threads.workerCount ?? 0;
}

/** Why workers could not be started (then every call runs on one thread), or undefined. */
export function workerFailure(): string | undefined {
  return pool?.threads.failure;
}

/** Grows the memory to at least `bytes`; returns a fresh Float32Array view of all of it. */
export function ensureMemory(p: Pool, bytes: number): Float32Array {
  const have = p.memory.buffer.byteLength;
  if (bytes > MAX_PAGES * PAGE) {
    throw new Error(`WebAssembly kernels: ${bytes} bytes exceed the 2 GiB memory`);
  }
  if (bytes > have) p.memory.grow(Math.ceil((bytes - have) / PAGE));
  return new Float32Array(p.memory.buffer);
}

/**
 * Regions of the memory held across calls (the CPU engine's buffers, which the kernels read in place), as
 * [start, end) byte ranges; the per-call heap of `allocator` starts above the highest of them.
 */
const reserved: { start: number; end: number }[] = [];

/** Where a call's scratch may start: above every reserved region. */
export function heapStart(): number {
  return reserved.reduce((top, r) => Math.max(top, r.end), HEAP);
}

/**
 * Holds `bytes` of the memory (64-byte aligned, zero-filled) until `release`; returns its byte address.
 * Calls of the kernels never overlap a reserved region.
 */
export function reserve(bytes: number): { start: number; release: () => void } {
  const p = getPool();
  const start = Math.ceil(heapStart() / 64) * 64;
  const region = { start, end: start + Math.ceil(bytes / 64) * 64 };
  ensureMemory(p, region.end);
  new Uint8Array(p.memory.buffer, region.start, region.end - region.start).fill(0);
  reserved.push(region);
  return {
    start,
    release: () => {
      const i = reserved.indexOf(region);
      if (i >= 0) reserved.splice(i, 1);
    },
  };
}

/** Bytes held by reserved regions (tests check that an engine gives them back). */
export function reservedBytes(): number {
  return reserved.reduce((a, r) => a + r.end - r.start, 0);
}

/** A bump allocator over the heap (above reserved regions): 64-byte aligned byte addresses. */
export function allocator(start = heapStart()) {
  let top = start;
  const alloc = (floats: number) => {
    const at = top;
    top += Math.ceil(floats * 4 / 64) * 64;
    return at;
  };
  return { alloc, top: () => top };
}

/**
 * How many threads a call with this much work (in rough units of one multiply-add) should use: 1 below
 * `minWork` per extra thread, else up to threadCount() (and never more than `parts`).
 */
export function threadsFor(p: Pool, parts: number, work: number, minWork = 1 << 16): number {
  let want = Math.min(threadCount(), parts, Math.max(1, Math.floor(work / minWork)));
  if (want > 1 && !p.threads.start(want - 1)) want = 1;
  return want;
}

/**
 * Runs `fn` once per job: job 0 on this thread, job k on worker k-1 (threadsFor must have started them),
 * and returns when all are done. A trap in any of them is rethrown here.
 */
export function runJobs(p: Pool, fn: Fn, jobs: [number, number, number, number][]): void {
  p.threads.run(0, fn, jobs);
}

/** Splits [0, n) into `parts` contiguous ranges of near-equal size. */
export function splitRange(n: number, parts: number): [number, number][] {
  return Array.from(
    { length: parts },
    (_, k) => [Math.floor(n * k / parts), Math.floor(n * (k + 1) / parts)],
  );
}

/**
 * dst[m][c][r] = src[m][r][c] for `batches` R x C matrices, byte addresses in the kernels' memory (no
 * overlap), split by blocks of 4 rows over up to `threads` threads (as from threadsFor).
 */
export function transposeInMemory(
  p: Pool,
  src: number,
  dst: number,
  batches: number,
  R: number,
  C: number,
  threads: number,
): void {
  const nb = Math.ceil(R / 4);
  new Int32Array(p.memory.buffer, TRANSPOSE_PARAMS, 5).set([src, dst, R, C, nb]);
  const blocks = batches * nb;
  runJobs(
    p,
    Fn.Transpose,
    splitRange(blocks, Math.max(1, Math.min(threads, blocks))).map((
      [i0, i1],
    ) => [TRANSPOSE_PARAMS, i0, i1, 0]),
  );
}
