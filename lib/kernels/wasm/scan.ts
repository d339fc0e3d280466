/**
 * The fused selective scan in WebAssembly with SIMD (scan.wat, compiled into wasm/bytes.ts by
 * wasm/build.ts): the fast twin of wasm/scan_reference.ts, with the same functions and signatures, used by the cpu and
 * wasm backends' kernels (tfjs/scan_op.ts). tests/scan_kernels_test.ts compares the two.
 *
 * This file stages the typed arrays into the kernels' memory (B and C transposed to (b, l, n), the state
 * axis padded to a multiple of 4), splits the channels (b, d) over threads (wasm/pool.ts: the calling
 * thread plus workers on a shared memory, MAMBABYTE_THREADS), and sums the per-thread partial gradients
 * (dB, dC over channels; dA, dD, dBias over the batch).
 *
 * Memory: the kernels' memory holds one batch chunk's inputs and outputs plus, per thread, O(l * n)
 * scratch (the recomputed states of one channel) and, in the backward pass, the thread's partial dB and dC
 * (b, l, n): never O(b * d * l * n). Batches are processed in chunks that fit MAX_BYTES.
 */
import * as reference from "./scan_reference.ts";
import type { ScanArrays, ScanDims, ScanGradients } from "./scan_reference.ts";
import {
  allocator,
  ensureMemory,
  Fn,
  getPool,
  PARAMS,
  type Pool,
  runJobs,
  splitRange,
  threadsFor,
  transposeInMemory,
} from "./pool.ts";

export type { ScanArrays, ScanDims, ScanGradients } from "./scan_reference.ts";
export { setThreads as setScanThreads, threadCount as scanThreads } from "./pool.ts";

/** What one batch chunk may use; larger inputs are processed in several chunks. */
const MAX_BYTES = 1.5 * 2 ** 30;
/** Per-thread pointer blocks: 17 words each, 128 bytes apart, after the params block (22 words). */
const THREAD_BLOCK = 256;

/** True where WebAssembly SIMD and shared memory are available (the kernels compile). */
export { wasmKernelsAvailable as wasmScanAvailable } from "./pool.ts";

// ---------------------------------------------------------------------------------------------------
// Memory layout of one batch chunk

interface Layout {
  bytes: number;
  Np: number;
  // global arrays (byte addresses)
  u: number;
  delta: number;
  z: number;
  A: number;
  A2: number;
  Bt: number;
  tmp: number;
  Ct: number;
  Dskip: number;
  bias: number;
  h0: number;
  y: number;
  last: number;
  gy: number;
  gLast: number;
  du: number;
  ddelta: number;
  dz: number;
  dh0: number;
  /** per thread: the 17 pointers of its block */
  threads: number[][];
}

function makeLayout(dims: ScanDims, bc: number, threads: number, backward: boolean, hasZ: boolean): Layout {
  const { dInner: D, dState: N, length: L } = dims;
  const Np = (N + 3) & ~3, L4 = (L + 3) & ~3;
  const { alloc, top } = allocator();
  const big = bc * D * L, state = bc * D * Np, bl = bc * L * Np;
  const lay = {
    Np,
    u: alloc(big),
    delta: alloc(big),
    z: hasZ ? alloc(big) : 0,
    A: alloc(D * Np),
    A2: alloc(D * Np),
    Bt: alloc(bl),
    Ct: alloc(bl),
    tmp: dims.channelsLast ? alloc(big) : 0,
    Dskip: alloc(D),
    bias: alloc(D),
    h0: alloc(state),
    y: backward ? 0 : alloc(big),
    last: backward ? 0 : alloc(state),
    gy: backward ? alloc(big) : 0,
    gLast: backward ? alloc(state) : 0,
    du: backward ? alloc(big) : 0,
    ddelta: backward ? alloc(big) : 0,
    dz: backward && hasZ ? alloc(big) : 0,
    dh0: backward ? alloc(state) : 0,
    threads: [] as number[][],
  };
  const row = L4 + 4;
  for (let k = 0; k < threads; k++) {
    const t = [
      alloc(row),
      alloc(row),
      alloc(row),
      alloc(row),
      alloc(row),
      alloc(row),
      alloc(row),
      alloc(row), // 0-7
      alloc((L + 1) * Np),
      alloc(L * Np),
      alloc(Np),
      alloc(Np), // hs, as, h, gA
    ];
    if (backward) t.push(alloc(D * Np), alloc(D), alloc(D), alloc(bl), alloc(bl));
    else t.push(0, 0, 0, 0, 0);
    lay.threads.push(t);
  }
  return { ...lay, bytes: top() };
}

/** The largest batch chunk that fits, or 0 if not even one batch element does. */
function chunkSize(dims: ScanDims, threads: number, backward: boolean, hasZ: boolean): number {
  for (let bc = dims.batch; bc >= 1; bc = bc > 1 ? Math.ceil(bc / 2) : 0) {
    if (makeLayout(dims, bc, threads, backward, hasZ).bytes <= MAX_BYTES) return bc;
    if (bc === 1) break;
  }
  return 0;
}

/** Threads for a call over `channels` channels: one per ~64K state updates, at most threadCount(). */
function scanThreadsFor(p: Pool, channels: number, dims: ScanDims): number {
  return threadsFor(p, channels, channels * dims.length * ((dims.dState + 3) & ~3));
}

/** Runs `fn` over channels [0, channels), split into `threads` contiguous ranges (thread block k each). */
function runChannels(e: Pool, fn: Fn, channels: number, threads: number): void {
  runJobs(
    e,
    fn,
    splitRange(channels, threads).map(([c0, c1], k) => [PARAMS, THREAD_BLOCK + 128 * k, c0, c1]),
  );
}

/** Writes the params block and the thread blocks. */
function writeBlocks(e: Pool, lay: Layout, dims: ScanDims, deltaSoftplus: boolean, hasZ: boolean): void {
  const w = new Int32Array(e.memory.buffer, 0, THREAD_BLOCK / 4 + 128 / 4 * lay.threads.length);
  const words = [
    dims.length,
    lay.Np,
    dims.dInner,
    (deltaSoftplus ? 1 : 0) | (hasZ ? 2 : 0),
    lay.u,
    lay.delta,
    lay.A,
    lay.Bt,
    lay.Ct,
    lay.Dskip,
    lay.z,
    lay.bias,
    lay.h0,
    lay.y,
    lay.last,
    lay.gy,
    lay.gLast,
    lay.du,
    lay.ddelta,
    lay.dz,
    lay.dh0,
    lay.A2,
  ];
  w.set(words, PARAMS >> 2);
  lay.threads.forEach((t, k) => w.set(t, (THREAD_BLOCK + 128 * k) >> 2));
}

/**
 * Copies batches [b0, b0 + bc) of a (b, d, l) array (channels last: (b, l, d), transposed on the way by
 * the kernels' `transpose`) into the (bc, d, l) region at byte address `at`.
 */
function putRows(
  e: Pool,
  mem: Float32Array,
  lay: Layout,
  dims: ScanDims,
  src: Float32Array,
  at: number,
  b0: number,
  bc: number,
  threads: number,
): void {
  const big = dims.dInner * dims.length;
  const part = src.subarray(b0 * big, (b0 + bc) * big);
  if (!dims.channelsLast) return mem.set(part, at >> 2);
  mem.set(part, lay.tmp >> 2);
  transposeInMemory(e, lay.tmp, at, bc, dims.length, dims.dInner, threads);
}

/** The inverse of putRows: the (bc, d, l) region at `at` into batches [b0, b0 + bc) of dst. */
function getRows(
  e: Pool,
  mem: Float32Array,
  lay: Layout,
  dims: ScanDims,
  at: number,
  dst: Float32Array,
  b0: number,
  bc: number,
  threads: number,
): void {
  const big = dims.dInner * dims.length;
  if (dims.channelsLast) {
    transposeInMemory(e, at, lay.tmp, bc, dims.dInner, dims.length, threads);
    at = lay.tmp;
  }
  dst.set(mem.subarray(at >> 2, (at >> 2) + bc * big), b0 * big);
}

/** Stages the inputs of batches [b0, b0 + bc) into the memory. */
function stageInputs(
  e: Pool,
  mem: Float32Array,
  lay: Layout,
  x: ScanArrays,
  dims: ScanDims,
  b0: number,
  bc: number,
  threads: number,
): void {
  const { dInner: D, dState: N, length: L } = dims;
  const Np = lay.Np;
  putRows(e, mem, lay, dims, x.u, lay.u, b0, bc, threads);
  putRows(e, mem, lay, dims, x.delta, lay.delta, b0, bc, threads);
  if (x.z && lay.z) putRows(e, mem, lay, dims, x.z, lay.z, b0, bc, threads);
  const A = lay.A >> 2, A2 = lay.A2 >> 2;
  if (Np !== N) mem.fill(0, A, A + D * Np);
  for (let d = 0; d < D; d++) mem.set(x.A.subarray(d * N, d * N + N), A + d * Np);
  for (let i = 0; i < D * Np; i++) mem[A2 + i] = mem[A + i] * Math.LOG2E; // rounded to float32 on store
  if (x.D) mem.set(x.D, lay.Dskip >> 2);
  else mem.fill(0, lay.Dskip >> 2, (lay.Dskip >> 2) + D);
  if (x.deltaBias) mem.set(x.deltaBias, lay.bias >> 2);
  else mem.fill(0, lay.bias >> 2, (lay.bias >> 2) + D);
  padStates(mem, lay.h0 >> 2, x.initialState, b0, bc, D, N, Np);
  // B, C: (b, n, l) -> (b, l, Np); channels last (b, l, n) -> (b, l, Np)
  for (const [src, at] of [[x.B, lay.Bt >> 2], [x.C, lay.Ct >> 2]] as [Float32Array, number][]) {
    if (dims.channelsLast && Np === N) {
      mem.set(src.subarray(b0 * L * N, (b0 + bc) * L * N), at);
      continue;
    }
    if (Np !== N) mem.fill(0, at, at + bc * L * Np);
    if (dims.channelsLast) {
      for (let r = 0; r < bc * L; r++) {
        mem.set(src.subarray((b0 * L + r) * N, (b0 * L + r) * N + N), at + r * Np);
      }
      continue;
    }
    for (let bi = 0; bi < bc; bi++) {
      for (let n = 0; n < N; n++) {
        const s = ((b0 + bi) * N + n) * L;
        let o = at + bi * L * Np + n;
        for (let t = 0; t < L; t++, o += Np) mem[o] = src[s + t];
      }
    }
  }
}

/** (b, d, n) rows of batches [b0, b0 + bc) -> (bc, d, Np), zeros where `src` is absent. */
function padStates(
  mem: Float32Array,
  at: number,
  src: Float32Array | undefined,
  b0: number,
  bc: number,
  D: number,
  N: number,
  Np: number,
): void {
  if (!src) {
    mem.fill(0, at, at + bc * D * Np);
    return;
  }
  if (Np === N) {
    mem.set(src.subarray(b0 * D * N, (b0 + bc) * D * N), at);
    return;
  }
  mem.fill(0, at, at + bc * D * Np);
  for (let c = 0; c < bc * D; c++) mem.set(src.subarray((b0 * D + c) * N, (b0 * D + c) * N + N), at + c * Np);
}

/** (bc, d, Np) at `at` -> rows of batches [b0, b0 + bc) of dst (b, d, n). */
function unpadStates(
  mem: Float32Array,
  at: number,
  dst: Float32Array,
  b0: number,
  bc: number,
  D: number,
  N: number,
  Np: number,
): void {
  if (Np === N) {
    dst.set(mem.subarray(at, at + bc * D * N), b0 * D * N);
    return;
  }
  for (let c = 0; c < bc * D; c++) dst.set(mem.subarray(at + c * Np, at + c * Np + N), (b0 * D + c) * N);
}

// ---------------------------------------------------------------------------------------------------
// The two entry points, with wasm/scan_reference.ts's signatures

/** Forward: writes y (b, d, l) and lastState (b, d, n). */
export function scanForward(
  x: ScanArrays,
  dims: ScanDims,
  deltaSoftplus: boolean,
  y: Float32Array,
  lastState: Float32Array,
): void {
  const e = getPool();
  const { batch, dInner: D, dState: N } = dims;
  const hasZ = !!x.z;
  let threads = scanThreadsFor(e, batch * D, dims);
  const bc = chunkSize(dims, threads, false, hasZ);
  if (bc === 0) return reference.scanForward(x, dims, deltaSoftplus, y, lastState);
  threads = Math.min(threads, Math.max(1, bc * D));
  for (let b0 = 0; b0 < batch; b0 += bc) {
    const n = Math.min(bc, batch - b0);
    const lay = makeLayout(dims, n, threads, false, hasZ);
    const mem = ensureMemory(e, lay.bytes);
    stageInputs(e, mem, lay, x, dims, b0, n, threads);
    writeBlocks(e, lay, dims, deltaSoftplus, hasZ);
    runChannels(e, Fn.ScanForward, n * D, Math.min(threads, n * D));
    getRows(e, mem, lay, dims, lay.y, y, b0, n, threads);
    unpadStates(mem, lay.last >> 2, lastState, b0, n, D, N, lay.Np);
  }
}

/**
 * Backward: gradients of L with respect to every input, given gy = dL/dy (b, d, l) and optionally
 * gLast = dL/dlastState (b, d, n). Gradients of absent optional inputs are returned as zeros. `out` may
 * supply (some of) the arrays to write into, e.g. a backend's output buffers.
 */
export function scanBackward(
  x: ScanArrays,
  dims: ScanDims,
  deltaSoftplus: boolean,
  gy: Float32Array,
  gLast: Float32Array | undefined,
  out: Partial<ScanGradients> = {},
): ScanGradients {
  const e = getPool();
  const { batch, dInner: D, dState: N, length: L } = dims;
  const hasZ = !!x.z;
  let threads = scanThreadsFor(e, batch * D, dims);
  const bc = chunkSize(dims, threads, true, hasZ);
  if (bc === 0) {
    const g = reference.scanBackward(x, dims, deltaSoftplus, gy, gLast);
    for (const [k, v] of Object.entries(out)) if (v) v.set(g[k as keyof ScanGradients]);
    return { ...g, ...Object.fromEntries(Object.entries(out).filter(([, v]) => v)) } as ScanGradients;
  }
  threads = Math.min(threads, Math.max(1, bc * D));
  const zeroed = (k: keyof ScanGradients, size: number) => {
    const a = out[k];
    if (!a) return new Float32Array(size);
    a.fill(0);
    return a;
  };
  const g: ScanGradients = {
    u: out.u ?? new Float32Array(batch * D * L),
    delta: out.delta ?? new Float32Array(batch * D * L),
    A: zeroed("A", D * N),
    B: out.B ?? new Float32Array(batch * N * L),
    C: out.C ?? new Float32Array(batch * N * L),
    D: zeroed("D", D),
    z: hasZ ? out.z ?? new Float32Array(batch * D * L) : zeroed("z", batch * D * L),
    deltaBias: zeroed("deltaBias", D),
    initialState: out.initialState ?? new Float32Array(batch * D * N),
  };
  for (let b0 = 0; b0 < batch; b0 += bc) {
    const n = Math.min(bc, batch - b0);
    const used = Math.min(threads, n * D);
    const lay = makeLayout(dims, n, used, true, hasZ);
    const mem = ensureMemory(e, lay.bytes);
    stageInputs(e, mem, lay, x, dims, b0, n, used);
    putRows(e, mem, lay, dims, gy, lay.gy, b0, n, used);
    padStates(mem, lay.gLast >> 2, gLast, b0, n, D, N, lay.Np);
    const Np = lay.Np;
    for (const t of lay.threads) {
      mem.fill(0, t[12] >> 2, (t[12] >> 2) + D * Np);
      mem.fill(0, t[13] >> 2, (t[13] >> 2) + D);
      mem.fill(0, t[14] >> 2, (t[14] >> 2) + D);
      mem.fill(0, t[15] >> 2, (t[15] >> 2) + n * L * Np);
      mem.fill(0, t[16] >> 2, (t[16] >> 2) + n * L * Np);
    }
    writeBlocks(e, lay, dims, deltaSoftplus, hasZ);
    runChannels(e, Fn.ScanBackward, n * D, used);
    getRows(e, mem, lay, dims, lay.du, g.u, b0, n, used);
    getRows(e, mem, lay, dims, lay.ddelta, g.delta, b0, n, used);
    if (hasZ) getRows(e, mem, lay, dims, lay.dz, g.z, b0, n, used);
    unpadStates(mem, lay.dh0 >> 2, g.initialState, b0, n, D, N, Np);
    // sum the threads' partial gradients
    for (const t of lay.threads) {
      const a = t[12] >> 2, dd = t[13] >> 2, db = t[14] >> 2;
      for (let d = 0; d < D; d++) {
        for (let s = 0; s < N; s++) g.A[d * N + s] += mem[a + d * Np + s];
        g.D[d] += mem[dd + d];
        g.deltaBias[d] += mem[db + d];
      }
    }
    // dB, dC: (bc, l, Np) partials -> (b, n, l); channels last (b, l, n)
    for (const [dst, k] of [[g.B, 15], [g.C, 16]] as [Float32Array, number][]) {
      const parts = lay.threads.map((t) => t[k] >> 2);
      if (dims.channelsLast) {
        for (let r = 0; r < n * L; r++) {
          for (let s = 0; s < N; s++) {
            let v = 0;
            for (const p of parts) v += mem[p + r * Np + s];
            dst[(b0 * L + r) * N + s] = v;
          }
        }
        continue;
      }
      for (let bi = 0; bi < n; bi++) {
        for (let s = 0; s < N; s++) {
          const o = ((b0 + bi) * N + s) * L;
          const base = bi * L * Np + s;
          for (let t = 0; t < L; t++) {
            let v = 0;
            for (const p of parts) v += mem[p + base + t * Np];
            dst[o + t] = v;
          }
        }
      }
    }
  }
  return g;
}
