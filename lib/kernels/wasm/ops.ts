/**
 * The engine's op set on the CPU with WebAssembly kernels (lib/engine "wasm" backend): the buffers are
 * views of the kernels' shared memory (wasm/pool.ts `reserve`), so the kernels read and write them in
 * place. The products (every GemmSpec layout: strided operands, batches, k in segments, accumulation) run
 * on matmul.wat's 6 x 8 micro-kernel over the pool's threads; the selective scan on scan.wat's fused
 * kernels; the conv + SiLU on conv.wat's channels-first kernels; the rest are ../js's twins, which this set is tested against op by op (tests/engine_wasm_test.ts).
 *
 * A product, per batch item z and k segment s: B's segment is packed into 8-column panels (packStrided), A
 * is read in place through its row and k strides, the micro-kernel writes 6 x 8 tiles of a padded
 * scratch C (adding to it from the second segment on), and the epilogue stores (or adds) the M x N part into
 * C with its leading dimension.
 */
import { type EngineOps, gemmFlops, type JsBuffer, jsOps, type OpRecorder } from "../js/ops.ts";
import { gemmLayout, type GemmSpec } from "../js/gemm.ts";
import { nq4, type PackedBC, type PackParams, type ScanParams } from "../js/scan.ts";
import type { ConvParams } from "../js/conv.ts";
import {
  allocator,
  ensureMemory,
  Fn,
  getPool,
  PARAMS,
  runJobs,
  splitRange,
  threadCount,
  threadsFor,
} from "./pool.ts";

/** Below this many multiply-adds per extra thread a product stays on one thread (as wasm/matmul.ts). */
const MIN_PARALLEL_WORK = 1 << 20;

/** The byte address of a view of the kernels' memory. */
function addr(v: JsBuffer): number {
  return v.byteOffset;
}

/** C (+)= op(A) op(B) with every layout of GemmSpec (the module comment); a, b, c views of the pool memory. */
export function gemmInMemory(spec: GemmSpec, b: { a: Float32Array; b: Float32Array; c: Float32Array }): void {
  const g = gemmLayout(spec);
  const p = getPool();
  const { M, N, K } = g;
  if (M === 0 || N === 0) return;
  const M6 = Math.ceil(M / 6) * 6, N8 = Math.ceil(N / 8) * 8;
  const kSeg = Math.min(g.kSeg, K), segs = Math.ceil(K / kSeg);
  const { alloc, top } = allocator();
  const Bp = alloc(N8 * kSeg), Cp = alloc(M6 * N8);
  alloc(16384); // slack: the last row tile reads up to 5 rows of A past M (their results are dropped)
  ensureMemory(p, top());
  // A(m, k) at a + m mA + k kA within a segment; B(k, n) at b + k kB + n nB
  const mA = g.transposeA ? 1 : g.lda, kA = g.transposeA ? g.lda : 1;
  const kB = g.transposeB ? 1 : g.ldb, nB = g.transposeB ? g.ldb : 1;
  const tiles = M6 / 6;
  const params = new Int32Array(p.memory.buffer, PARAMS, 10);
  for (let z = 0; z < g.batch; z++) {
    if (K === 0) {
      if (!g.accumulate) {
        for (let m = 0; m < M; m++) {
          const at = g.offC + z * g.strideC + m * g.ldc;
          b.c.fill(0, at, at + N);
        }
      }
      continue;
    }
    for (let s = 0; s < segs; s++) {
      const kLen = Math.min(kSeg, K - s * kSeg);
      const aAt = addr(b.a) + 4 * (g.offA + z * g.strideA + s * g.segA);
      const bAt = addr(b.b) + 4 * (g.offB + z * g.strideB + s * g.segB);
      p.matmul.packStrided(bAt, kLen, N, kB, nB, Bp);
      params.set([aAt, 4 * mA, 4 * kA, Bp, kLen, Cp, 4 * N8, N8, 24 * mA, s > 0 ? 1 : 0]);
      const threads = threadsFor(p, tiles, M * N * kLen, MIN_PARALLEL_WORK);
      runJobs(p, Fn.Gemm, splitRange(tiles, threads).map(([t0, t1]) => [PARAMS, t0, t1, 0]));
    }
    const cAt = addr(b.c) + 4 * (g.offC + z * g.strideC);
    p.matmul.epilogue(Cp, N8, cAt, g.ldc, M, N, g.accumulate ? 1 : 0);
  }
}

/**
 * The scan's B and C as scan.wat reads them: packBC here writes x_dbl's B columns as Bt (b l, Np) and its
 * C columns as Ct (b l, Np) after it, the state axis padded with zeros to Np (the js twin interleaves them
 * per row, (b l, 2, nq4); the buffer, 2 (b l) Np floats, holds either).
 */
function packBCRows(p: PackParams, b: { x: Float32Array; bct: Float32Array }) {
  const { rows: T, ns, row, offset } = p;
  const Np = nq4(ns);
  for (let w = 0; w < 2; w++) {
    for (let i = 0; i < T; i++) {
      const dst = (w * T + i) * Np, src = i * row + offset + w * ns;
      for (let s = 0; s < Np; s++) b.bct[dst + s] = s < ns ? b.x[src + s] : 0;
    }
  }
}

/** Per-thread scratch of scan.wat (its thread block: 17 words) for a call over `threads` threads. */
function scanThreadBlocks(
  alloc: (floats: number) => number,
  threads: number,
  p: ScanParams,
  backward: boolean,
): number[][] {
  const Np = nq4(p.ns), L = p.len, row = ((L + 3) & ~3) + 4, bl = p.batch * L * Np;
  return Array.from({ length: threads }, () => {
    const t = [
      ...Array.from({ length: 8 }, () => alloc(row)),
      alloc((L + 1) * Np),
      alloc(L * Np),
      alloc(Np),
      alloc(Np),
    ];
    if (backward) t.push(alloc(p.dim * Np), alloc(p.dim), alloc(p.dim), alloc(bl), alloc(bl));
    else t.push(0, 0, 0, 0, 0);
    return t;
  });
}

/** Byte offset of thread k's block (after the params block, as wasm/scan.ts lays them out). */
const THREAD_BLOCK = 256;

/**
 * scan.wat's forward or backward over the engine's buffers in place (no staging): u, delta, z, y, dy, du,
 * ddelta, dz are the engine's (b, e, l) arrays; Bt, Ct packBCRows' halves of bct; A padded to (e, Np) and
 * A2 = A log2 e, the zero initial state and the per-thread accumulators in the call's scratch. The
 * backward sums the threads' partial dA, dD, d bias and writes dB, dC into d x_dbl's columns.
 */
function scanInMemory(
  p: ScanParams & Partial<PackedBC>,
  b: {
    u: JsBuffer;
    delta: JsBuffer;
    A: JsBuffer;
    bct: JsBuffer;
    D?: JsBuffer;
    z?: JsBuffer;
    deltaBias?: JsBuffer;
    y?: JsBuffer;
    last?: JsBuffer;
    dy?: JsBuffer;
    du?: JsBuffer;
    ddelta?: JsBuffer;
    dz?: JsBuffer;
    dA?: JsBuffer;
    dD?: JsBuffer;
    dDeltaBias?: JsBuffer;
    dbc?: JsBuffer;
  },
): void {
  const pool = getPool();
  const backward = b.dy !== undefined;
  const { batch, dim: E, len: L, ns } = p, Np = nq4(ns), T = batch * L;
  const channels = batch * E;
  const threads = Math.min(channels, threadsFor(pool, channels, channels * L * Np));
  const { alloc, top } = allocator();
  const A = alloc(E * Np), A2 = alloc(E * Np), zeros = alloc(Math.max(E, batch * E * Np));
  const state = alloc(batch * E * Np); // the padded last state (forward), or dh0 (backward: unused)
  const blocks = scanThreadBlocks(alloc, threads, p, backward);
  ensureMemory(pool, top());
  const mem = new Float32Array(pool.memory.buffer);
  mem.fill(0, zeros >> 2, (zeros >> 2) + Math.max(E, batch * E * Np));
  const a = b.A as Float32Array;
  for (let d = 0; d < E; d++) {
    for (let s = 0; s < Np; s++) {
      const v = s < ns ? a[d * ns + s] : 0;
      mem[(A >> 2) + d * Np + s] = v;
      mem[(A2 >> 2) + d * Np + s] = v * Math.LOG2E; // rounded to float32 on store, as wasm/scan.ts does
    }
  }
  const Bt = addr(b.bct), Ct = Bt + 4 * T * Np;
  const at = (v?: JsBuffer) => (v ? addr(v) : 0);
  const words = [
    L,
    Np,
    E,
    (p.softplus ? 1 : 0) | (b.z ? 2 : 0),
    addr(b.u),
    addr(b.delta),
    A,
    Bt,
    Ct,
    b.D ? addr(b.D) : zeros,
    at(b.z),
    b.deltaBias ? addr(b.deltaBias) : zeros,
    zeros, // h0
    at(b.y),
    backward ? 0 : Np === ns ? addr(b.last!) : state, // last (b, e, n): written in place unless padded
    at(b.dy),
    zeros, // gLast
    at(b.du),
    at(b.ddelta),
    at(b.dz),
    backward ? state : 0, // dh0
    A2,
  ];
  const w = new Int32Array(pool.memory.buffer, 0, THREAD_BLOCK / 4 + 32 * threads);
  w.set(words, PARAMS >> 2);
  blocks.forEach((t, k) => w.set(t, (THREAD_BLOCK + 128 * k) >> 2));
  if (backward) {
    for (const t of blocks) {
      for (const [i, n] of [[12, E * Np], [13, E], [14, E], [15, T * Np], [16, T * Np]]) {
        mem.fill(0, t[i] >> 2, (t[i] >> 2) + n);
      }
    }
  }
  runJobs(
    pool,
    backward ? Fn.ScanBackward : Fn.ScanForward,
    splitRange(channels, threads).map(([c0, c1], k) => [PARAMS, THREAD_BLOCK + 128 * k, c0, c1]),
  );
  if (!backward) {
    if (Np !== ns) {
      const last = b.last as Float32Array;
      for (let c = 0; c < channels; c++) {
        for (let j = 0; j < ns; j++) last[c * ns + j] = mem[(state >> 2) + c * Np + j];
      }
    }
    return;
  }
  // the threads' partial sums: dA (e, n), dD, d bias (e); dB, dC into d x_dbl's columns
  const dA = b.dA as Float32Array, dD = b.dD as Float32Array | undefined;
  const dBias = b.dDeltaBias as Float32Array | undefined, dbc = b.dbc as Float32Array;
  dA.fill(0);
  dD?.fill(0);
  dBias?.fill(0);
  for (const t of blocks) {
    const pa = t[12] >> 2, pd = t[13] >> 2, pb = t[14] >> 2;
    for (let d = 0; d < E; d++) {
      for (let s = 0; s < ns; s++) dA[d * ns + s] += mem[pa + d * Np + s];
      if (dD) dD[d] += mem[pd + d];
      if (dBias) dBias[d] += mem[pb + d];
    }
  }
  const R = p.row!, off = p.offset!;
  for (let i = 0; i < T; i++) {
    for (let s = 0; s < ns; s++) {
      let gb = 0, gc = 0;
      for (const t of blocks) {
        gb += mem[(t[15] >> 2) + i * Np + s];
        gc += mem[(t[16] >> 2) + i * Np + s];
      }
      dbc[i * R + off + s] = gb;
      dbc[i * R + off + ns + s] = gc;
    }
  }
}

/** Channel ranges of the conv's threads (each owns its channels' dw and dbias over every batch). */
function convJobs(p: ConvParams, scratch: number[]): [number, number, number, number][] {
  const pool = getPool();
  const threads = Math.min(scratch.length, threadsFor(pool, p.ch, p.batch * p.ch * p.len * (3 * p.k + 20)));
  return splitRange(p.ch, threads).map(([c0, c1], i) => [PARAMS, c0, c1, scratch[i]]);
}

/** conv.wat's channels-first conv + SiLU (params block as it documents); `dy` set: the backward. */
function convInMemory(
  p: ConvParams,
  b: {
    x: JsBuffer;
    w: JsBuffer;
    bias?: JsBuffer;
    y?: JsBuffer;
    dy?: JsBuffer;
    dx?: JsBuffer;
    dw?: JsBuffer;
    dbias?: JsBuffer;
  },
): void {
  const pool = getPool();
  const at = (v?: JsBuffer) => (v ? addr(v) : 0);
  // per thread: one row of dL/dpre (backward only)
  const { alloc, top } = allocator();
  const scratch = Array.from({ length: threadCount() }, () => (b.dy ? alloc(p.len) : 0));
  ensureMemory(pool, top());
  new Int32Array(pool.memory.buffer, PARAMS, 12).set([
    addr(b.x),
    addr(b.w),
    p.bias ? at(b.bias) : 0,
    at(b.y),
    p.len,
    p.ch,
    p.k,
    p.batch,
    at(b.dy),
    at(b.dx),
    at(b.dw),
    p.bias ? at(b.dbias) : 0,
  ]);
  runJobs(pool, b.dy ? Fn.ConvChBackward : Fn.ConvChForward, convJobs(p, scratch));
}

/** Writes a params block: i32 words, numbers marked `f` as float32 bits. */
function params(words: (number | { f: number })[]): void {
  const w = new Int32Array(getPool().memory.buffer, PARAMS, words.length);
  const f = new Float32Array(w.buffer, PARAMS, words.length);
  words.forEach((x, i) => typeof x === "number" ? (w[i] = x) : (f[i] = x.f));
}

/** Runs `fn` over [0, n) split between threads, with `work` per unit (rough multiply-adds). */
function rangeJobs(fn: Fn, n: number, work: number, scratch?: number[]): void {
  const pool = getPool();
  const threads = Math.min(scratch?.length ?? Infinity, threadsFor(pool, n, n * work));
  runJobs(pool, fn, splitRange(n, threads).map(([i0, i1], k) => [PARAMS, i0, i1, scratch?.[k] ?? 0]));
}

/** AdamW over [0, count) in ranges whose starts are multiples of 4 (whole vectors but the last). */
function adamwJobs(count: number): void {
  const pool = getPool();
  const quads = Math.ceil(count / 4);
  const threads = threadsFor(pool, quads, count * 20);
  runJobs(
    pool,
    Fn.AdamW,
    splitRange(quads, threads).map(([q0, q1]) => [PARAMS, 4 * q0, Math.min(count, 4 * q1), 0]),
  );
}

/**
 * The WebAssembly op set over views of the kernels' memory: products and the scan in WebAssembly, the rest
 * the js twins. `record` as in jsOps.
 */
export function wasmOps(record: OpRecorder): EngineOps<JsBuffer> {
  const ops = jsOps(record);
  return {
    ...ops,
    gemm: (p, b) =>
      record(
        p.name ? `gemm ${p.name}` : "gemm",
        () => gemmInMemory(p, b as { a: Float32Array; b: Float32Array; c: Float32Array }),
        gemmFlops(p),
      ),
    addRmsNorm: (p, b) =>
      record("addRmsNorm", () => {
        params([
          addr(b.x),
          b.delta ? addr(b.delta) : 0,
          b.res ? addr(b.res) : 0,
          addr(b.w),
          addr(b.y),
          addr(b.rstd),
          p.d,
          {
            f: p.eps,
          },
          p.add ? 1 : 0,
        ]);
        rangeJobs(Fn.AddRmsNorm, p.rows, 4 * p.d);
      }),
    rmsNormBackward: (p, b) =>
      record("rmsNormBackward", () => {
        // each thread sums its rows' dw into a partial of its own; the partials are added here
        const pool = getPool();
        const { alloc, top } = allocator();
        const parts = Array.from({ length: threadCount() }, () => alloc(p.d));
        ensureMemory(pool, top());
        params([addr(b.x), addr(b.w), addr(b.rstd), addr(b.dy), addr(b.dx), p.d, p.accumulate ? 1 : 0]);
        const threads = Math.min(parts.length, threadsFor(pool, p.rows, p.rows * 6 * p.d));
        runJobs(
          pool,
          Fn.RmsNormBackward,
          splitRange(p.rows, threads).map(([i0, i1], k) => [PARAMS, i0, i1, parts[k]]),
        );
        const mem = new Float32Array(pool.memory.buffer);
        const dw = b.dw as Float32Array;
        for (let c = 0; c < p.d; c++) {
          let s = 0;
          for (let k = 0; k < threads; k++) s += mem[(parts[k] >> 2) + c];
          dw[c] = s;
        }
      }),
    crossEntropy: (p, b) =>
      record("crossEntropy", () => {
        // a target offset shifts where each sequence's ids are read: the same as starting the ids later
        const ids = addr(b.ids) + 4 * (p.targetOffset ?? 0);
        params([addr(b.logits), ids, addr(b.loss), p.rowOffset, p.V, p.len, p.stride, {
          f: p.scale,
        }]);
        rangeJobs(Fn.CrossEntropy, p.rows, 30 * p.V);
      }),
    adamw: (p, b) =>
      record("adamw", () => {
        params([
          addr(b.param),
          addr(b.grad),
          addr(b.m),
          addr(b.v),
          addr(b.hyper),
          addr(b.state),
          p.decayEnd,
          {
            f: p.beta1,
          },
          { f: p.beta2 },
          { f: p.eps },
        ]);
        adamwJobs(p.count);
      }),
    conv: (p, b) => record("conv", () => convInMemory(p, b)),
    convBackward: (p, b) => record("convBackward", () => convInMemory(p, b)),
    packBC: (p, b) => record("packBC", () => packBCRows(p, b as { x: Float32Array; bct: Float32Array })),
    scanForward: (p, b) => record("scanForward", () => scanInMemory(p, b)),
    scanBackward: (p, b) => record("scanBackward", () => scanInMemory(p, b)),
  };
}
