/**
 * C = op(A) op(B) in float32 with the WebAssembly GEMM of matmul.wat, split by rows of C over the
 * kernels' threads (wasm/pool.ts). `matMulReference` is its slow twin in plain JS (float64 accumulation),
 * for tests.
 *
 * Shapes, row-major: A is (M, K), or (K, M) when transposeA; B is (K, N), or (N, K) when transposeB;
 * C is (M, N).
 */
import { allocator, ensureMemory, Fn, getPool, PARAMS, runJobs, splitRange, threadsFor } from "./pool.ts";

export { wasmKernelsAvailable as wasmMatMulAvailable } from "./pool.ts";

export interface MatMulDims {
  M: number;
  K: number;
  N: number;
  transposeA: boolean;
  transposeB: boolean;
}

/** Below this many multiply-adds per extra thread a call stays on one thread. */
const MIN_PARALLEL_WORK = 1 << 20;

/** Writes op(A) op(B) into c. */
export function matMul(a: Float32Array, b: Float32Array, dims: MatMulDims, c: Float32Array): void {
  const { M, K, N, transposeA, transposeB } = dims;
  if (a.length < M * K || b.length < K * N || c.length < M * N) {
    throw new Error(`matMul: arrays too short for M=${M}, K=${K}, N=${N}`);
  }
  if (M === 0 || N === 0) return;
  if (K === 0) {
    c.fill(0, 0, M * N);
    return;
  }
  const p = getPool();
  const M6 = Math.ceil(M / 6) * 6, N8 = Math.ceil(N / 8) * 8;
  const { alloc, top } = allocator();
  // A row-major is read in place (row i, column k at A + i rs + k ks; the rows past M, up to M6, read
  // zero padding); A^T is packed into panels of 6 rows first.
  const aFloats = transposeA ? M * K : M6 * K;
  const A = alloc(aFloats), Ap = transposeA ? alloc(M6 * K) : 0;
  const Bsrc = alloc(K * N), Bp = alloc(N8 * K), C = alloc(M6 * N8);
  const mem = ensureMemory(p, top());
  mem.set(a.subarray(0, M * K), A >> 2);
  mem.fill(0, (A >> 2) + M * K, (A >> 2) + aFloats);
  if (transposeA) p.matmul.packAT(A, K, M, Ap);
  mem.set(b.subarray(0, K * N), Bsrc >> 2);
  p.matmul.pack(Bsrc, K, N, transposeB ? 1 : 0, Bp);
  const params = transposeA
    ? [Ap, 4, 24, Bp, K, C, 4 * N8, N8, 24 * K, 0] // panels: rows 4 bytes apart, k 24 bytes, tiles 6 K floats
    : [A, 4 * K, 4, Bp, K, C, 4 * N8, N8, 24 * K, 0]; // row-major: rows K floats apart, tiles 6 rows
  new Int32Array(p.memory.buffer, PARAMS, 10).set(params);
  const tiles = M6 / 6;
  const threads = threadsFor(p, tiles, M * K * N, MIN_PARALLEL_WORK);
  runJobs(p, Fn.Gemm, splitRange(tiles, threads).map(([t0, t1]) => [PARAMS, t0, t1, 0]));
  const out = new Float32Array(p.memory.buffer, C, M6 * N8);
  if (N8 === N) {
    c.set(out.subarray(0, M * N));
  } else {
    for (let i = 0; i < M; i++) c.set(out.subarray(i * N8, i * N8 + N), i * N);
  }
}

/** The reference twin: the same product by the textbook triple loop, accumulating in float64. */
export function matMulReference(a: Float32Array, b: Float32Array, dims: MatMulDims, c: Float32Array): void {
  const { M, K, N, transposeA, transposeB } = dims;
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) {
        s += a[transposeA ? k * M + i : i * K + k] * b[transposeB ? j * K + k : k * N + j];
      }
      c[i * N + j] = s;
    }
  }
}
