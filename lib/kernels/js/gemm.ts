/**
 * The GEMM of webgpu/gemm.ts (`recordGemm`) in plain JS: C = op(A) op(B) (or C +=) with the same layouts
 * (leading dimensions, offsets, batches, segmented k; see GemmLayout), accumulated in float64 and stored
 * as float32. The twin each WGSL product is tested against, and the engine's "js" execution.
 */
import { scratch } from "./scratch.ts";

/** C (M, N) = op(A) op(B), op = transpose where asked: the product as a Linear layer names it. */
export interface Gemm {
  M: number;
  N: number;
  K: number;
  transposeA: boolean;
  transposeB: boolean;
}

/**
 * Where the operands of a product live, so that one GEMM reads slices, strided views and batches of
 * larger buffers in place (the engine's activations are channel-major (b, c, l) inside the mixer and
 * token-major (b l, c) outside it; no transpose or copy pass between them). All in float elements;
 * every field is optional, the defaults being dense row-major matrices at offset 0 and one product.
 *   lda, ldb, ldc   row strides of A, B, C as stored (A stored (M, K), or (K, M) when transposed)
 *   offA, offB, offC  first element
 *   batch, strideA, strideB, strideC   `batch` products, product z reading A at offA + z strideA, ...
 *   kSeg, segA, segB  k runs over segments of kSeg consecutive values; segment s of A (B) starts
 *                     s segA (s segB) elements further: a reduction over (batch, length) of a
 *                     channel-major (b, c, l) array, whose l runs are contiguous but its batches are not
 *   accumulate      C += op(A) op(B) instead of C = op(A) op(B)
 *   splitK          (WGSL only) override the global setting of splitting k (webgpu/gemm.ts gemmSplit)
 *   name            what the product is (e.g. "inX", in_proj's x half): labels its dispatches "gemm inX"
 */
export interface GemmLayout {
  lda?: number;
  ldb?: number;
  ldc?: number;
  offA?: number;
  offB?: number;
  offC?: number;
  batch?: number;
  strideA?: number;
  strideB?: number;
  strideC?: number;
  kSeg?: number;
  segA?: number;
  segB?: number;
  accumulate?: boolean;
  splitK?: boolean;
  name?: string;
}

export type GemmSpec = Gemm & GemmLayout;

/**
 * A product C (M, N) = op(A) op(B) over depth K: `op` names each operand as stored ("N") or read transposed
 * ("T"), A's first ("NT": a Linear layer's forward x W^T); `rest` the layout and name.
 */
export function gemmSpec(
  M: number,
  N: number,
  K: number,
  op: "NN" | "NT" | "TN" | "TT",
  rest: Partial<GemmSpec> = {},
): GemmSpec {
  return { M, N, K, transposeA: op[0] === "T", transposeB: op[1] === "T", ...rest };
}

/** Every layout field filled in (the defaults of GemmLayout), splitK and name aside. */
export function gemmLayout(g: GemmSpec): Required<Omit<GemmSpec, "splitK" | "name">> {
  const lda = g.lda ?? (g.transposeA ? g.M : g.K);
  const ldb = g.ldb ?? (g.transposeB ? g.K : g.N);
  const kSeg = g.kSeg ?? g.K;
  return {
    M: g.M,
    N: g.N,
    K: g.K,
    transposeA: g.transposeA,
    transposeB: g.transposeB,
    lda,
    ldb,
    ldc: g.ldc ?? g.N,
    offA: g.offA ?? 0,
    offB: g.offB ?? 0,
    offC: g.offC ?? 0,
    batch: g.batch ?? 1,
    strideA: g.strideA ?? 0,
    strideB: g.strideB ?? 0,
    strideC: g.strideC ?? 0,
    kSeg,
    segA: g.segA ?? kSeg * (g.transposeA ? lda : 1),
    segB: g.segB ?? kSeg * (g.transposeB ? 1 : ldb),
    accumulate: g.accumulate ?? false,
  };
}

/** Per k: the offset of A(., k) and B(k, .) from their row/column start, for a spec (made once per spec). */
const kOffsets = new WeakMap<GemmSpec, { a: Int32Array; b: Int32Array }>();

function offsetsOf(spec: GemmSpec, g: ReturnType<typeof gemmLayout>) {
  let o = kOffsets.get(spec);
  if (!o) {
    const kA = g.transposeA ? g.lda : 1, kB = g.transposeB ? 1 : g.ldb;
    const a = new Int32Array(g.K), b = new Int32Array(g.K);
    for (let k = 0; k < g.K; k++) {
      const s = Math.floor(k / g.kSeg), r = k % g.kSeg;
      a[k] = s * g.segA + r * kA;
      b[k] = s * g.segB + r * kB;
    }
    kOffsets.set(spec, o = { a, b });
  }
  return o;
}

/**
 * C (M, N) = op(A) op(B) as `recordGemm` computes it. `spec` should be the same object at every call (its
 * k offsets are cached per object); the split setting does not change the result beyond rounding.
 */
export function gemm(spec: GemmSpec, b: { a: Float32Array; b: Float32Array; c: Float32Array }): void {
  const g = gemmLayout(spec);
  const { a: kOffA, b: kOffB } = offsetsOf(spec, g);
  const mA = g.transposeA ? 1 : g.lda;
  const nB = g.transposeB ? g.ldb : 1;
  const A = b.a, B = b.b, C = b.c;
  const row = scratch("gemm row", g.N);
  for (let z = 0; z < g.batch; z++) {
    const aBase = g.offA + z * g.strideA, bBase = g.offB + z * g.strideB, cBase = g.offC + z * g.strideC;
    for (let m = 0; m < g.M; m++) {
      const am = aBase + m * mA;
      row.fill(0);
      if (nB === 1) {
        // B's rows are contiguous in n: C[m, :] += A[m, k] B[k, :]
        for (let k = 0; k < g.K; k++) {
          const a = A[am + kOffA[k]];
          if (a === 0) continue;
          const bk = bBase + kOffB[k];
          for (let n = 0; n < g.N; n++) row[n] += a * B[bk + n];
        }
      } else {
        for (let n = 0; n < g.N; n++) {
          const bn = bBase + n * nB;
          let s = 0;
          for (let k = 0; k < g.K; k++) s += A[am + kOffA[k]] * B[bn + kOffB[k]];
          row[n] = s;
        }
      }
      const cm = cBase + m * g.ldc;
      for (let n = 0; n < g.N; n++) C[cm + n] = g.accumulate ? C[cm + n] + row[n] : row[n];
    }
  }
}
