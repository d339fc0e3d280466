/**
 * The matrix product of matmul_op.ts (`fastMatMul`, TF.js op `WasmMatMul`) on webgpu: one WGSL GEMM,
 * C (M, N) = op(A) op(B), either operand transposed in place (no transpose pass), which is what a Linear
 * layer's forward (x W^T) and its two gradients (dy W, dy^T x) need. `recordGemm` writes its passes over
 * a Dispatcher, so the same GEMM also serves the native engine, where GemmLayout (leading dimensions,
 * offsets, batches, segmented k, accumulation) lets it read channel-major activations in place.
 *
 * Why not tf.matMul: on the H200 tfjs-webgpu's BatchMatMul ran the MambaByte training step's products at
 * about 1 TFLOP/s (93% of the step's GPU time, data/results/bench/gpu.jsonl `train_profile`), reading B
 * transposed (a Linear layer's forward x W^T) at 0.5. Its tiles are 32 x 32 with 4 x 4 outputs per
 * thread; here a workgroup of 256 threads computes a 128 x 128 (or 64 x 64) tile with 8 x 8 (4 x 4)
 * outputs per thread.
 *
 * Layout: A tile and B tile staged in workgroup memory k-major as vec4s ([BK][BM / 4 + 1], [BK][BN / 4 +
 * 1]; one vec4 of padding per k-row puts the staging stores of consecutive k on distinct banks). Thread
 * (tx, ty) of the 16 x 16 grid owns rows 64 g + 4 ty + r and columns 64 h + 4 tx + c (r, c < 4), so for
 * each k one vec4 read of A per 64 rows and one of B per 64 columns feed 16 fmas each. Global loads are
 * arranged so consecutive threads read consecutive addresses of whichever axis is contiguous in memory, and
 * the next k step's tiles are loaded into registers while the current step is multiplied (their latency
 * hides behind the fmas). Edges (M, N, K not multiples of the tile) load zeros and skip stores.
 * Accumulation is a plain fp32 fma chain over k, like tfjs's.
 *
 * Measured on the H200 inside the engine's d512x8 b16 l2048 step (lib/bench/engine.ts --profile, the same
 * run): the earlier version of this kernel (scalar reads of workgroup memory, one float per 8 fmas: those
 * reads, not the fmas, set its speed; no prefetch) ran the forward products at 15.8 TFLOP/s, the input
 * gradients at 13.2-15.9 and the weight gradients (k = 32768, split) at 10.3; this one at 25.1, 23.3-26.3
 * and 17.7 (the step: 212 -> 126 ms of products). WGSL's fp32 fma ceiling on that GPU is 52 TFLOP/s.
 *
 * Shapes are written into the shader (one pipeline per (M, N, K, transposes), cached), as the scan's are.
 */
import * as tf from "@tensorflow/tfjs";
import { type Backend, newTensor, tfjsDispatcher } from "./runtime.ts";
import { type Dispatcher, flatGroups } from "./dispatcher.ts";
import { type Gemm, gemmLayout, type GemmSpec } from "../js/gemm.ts";

export type { Gemm, GemmLayout, GemmSpec } from "../js/gemm.ts";

/** Every layout field filled in, and the split setting resolved against the global one. */
function fullLayout(g: GemmSpec): Required<Omit<GemmSpec, "name">> {
  return { ...gemmLayout(g), splitK: g.splitK ?? gemmConfig.splitK };
}

/**
 * The product's implementation on webgpu. impl "wgsl": the GEMM below, with the large tile side (128 or
 * 64) and the k step staged per barrier (8 or 16). impl "tfjs-b" / "tfjs-ab": tfjs's own BatchMatMul
 * kernel with B (and A) transposed first by its Transpose kernel when the product reads them transposed
 * (tfjs's kernels are much slower reading B transposed, measured on the H200).
 */
export interface GemmConfig {
  impl: "wgsl" | "tfjs-b" | "tfjs-ab";
  tile: 64 | 128;
  bk: 8 | 16;
  /** The large tile is used when the output makes at least this many workgroups with it (see gemmTiles). */
  minGroups: number;
  /** Split a long k range over several workgroups per tile when the output makes few tiles (see gemmSplit). */
  splitK: boolean;
  /** The shortest k slice a split makes (see gemmSplit). */
  splitMinK: number;
}
// splitK is off by default for TF.js's products (fastMatMul); the engine turns it on for its weight gradients
// (GemmSpec.splitK), where it was timed on the H200 (see gemmTiles)
let gemmConfig: GemmConfig = {
  impl: "wgsl",
  tile: 128,
  bk: 16,
  minGroups: 512,
  splitK: false,
  splitMinK: 1024,
};
/**
 * "impl[,tile[,bk[,split[,minGroups[,splitMinK]]]]]" (e.g. "tfjs-b", "wgsl,64,16", "wgsl,128,16,1",
 * "wgsl,128,16,1,64", "wgsl,128,16,0,512,256") -> the settings it names.
 */
export function parseGemmConfig(spec: string): Partial<GemmConfig> {
  const [impl, tile, bk, split, minGroups, splitMinK] = spec.split(",");
  return {
    impl: impl as GemmConfig["impl"],
    ...(tile ? { tile: Number(tile) as GemmConfig["tile"] } : {}),
    ...(bk ? { bk: Number(bk) as GemmConfig["bk"] } : {}),
    ...(split ? { splitK: split !== "0" } : {}),
    ...(minGroups ? { minGroups: Number(minGroups) } : {}),
    ...(splitMinK ? { splitMinK: Number(splitMinK) } : {}),
  };
}
export function setGemmConfig(c: Partial<GemmConfig>): void {
  const next = { ...gemmConfig, ...c };
  if (
    ![64, 128].includes(next.tile) || ![8, 16].includes(next.bk) ||
    !["wgsl", "tfjs-b", "tfjs-ab"].includes(next.impl) ||
    !(Number.isInteger(next.minGroups) && next.minGroups >= 1) || typeof next.splitK !== "boolean" ||
    !(Number.isInteger(next.splitMinK) && next.splitMinK >= 16)
  ) {
    throw new Error(
      `setGemmConfig: impl wgsl, tfjs-b or tfjs-ab, tile 64 or 128, bk 8 or 16; minGroups an integer >= 1; splitMinK an integer >= 16; got ${
        JSON.stringify(next)
      }`,
    );
  }
  gemmConfig = next;
}
// MAMBABYTE_GEMM="impl[,tile[,bk[,split[,minGroups[,splitMinK]]]]]" sets the default
if (Deno.env.get("MAMBABYTE_GEMM")) setGemmConfig(parseGemmConfig(Deno.env.get("MAMBABYTE_GEMM")!));

export function getGemmConfig(): GemmConfig {
  return { ...gemmConfig };
}

/**
 * Tile sizes: the large tile (8 x 8 outputs per thread at 128) when the output still makes at least
 * `minGroups` (512) workgroups with it, or would once its k range is split (a product over many tokens
 * with split-k on), else 64 x 64 (4 x 4 per thread). On the H200 (132 SMs) a weight gradient (2048 x 512
 * outputs, k = 32768) ran at 3.9 TFLOP/s in 64 unsplit workgroups of 128 x 128 and at 7.4 in 256 of 64 x 64
 * (the first, scalar kernel); with split k the engine's weight gradients ran at 17.6-17.8 TFLOP/s in 64 x 64
 * tiles and 22.5-23.0 in 128 x 128 tiles (lib/bench/engine.ts --profile, d512x8 and d1024x16 steps, same
 * session; data/results/bench/engine.jsonl). A batch of products counts all its tiles.
 */
export function gemmTiles(g: GemmSpec): { BM: number; BN: number } {
  const big = gemmConfig.tile;
  const batch = g.batch ?? 1;
  const tiles = Math.ceil(g.M / 128) * Math.ceil(g.N / 128) * batch;
  const splits = (g.splitK ?? gemmConfig.splitK) && batch === 1 ? maxSplit(g.K) : 1;
  if (big === 128 && tiles * splits >= gemmConfig.minGroups) return { BM: 128, BN: 128 };
  return { BM: 64, BN: 64 };
}

/** The most k slices a product of depth K may be split into (slices of at least gemmConfig.splitMinK). */
function maxSplit(K: number): number {
  return Math.max(1, Math.min(Math.floor(K / gemmConfig.splitMinK), 64));
}

/**
 * Into how many k slices a product is split (1: none). A weight gradient reduces over every token (k =
 * batch x length) into few outputs: the output of x_proj's (64 x 1024) makes 16 tiles of 64 x 64, so 16
 * workgroups would each run all 32768 steps of k on a GPU of 132 SMs. Split, each of S workgroups per tile
 * runs a slice of k into its own partial tile, and a second pass adds the S partials in order. S is chosen
 * to bring the workgroups to about SPLIT_TARGET_GROUPS, with slices of at least splitMinK. Batched
 * products are not split (the batch already makes the workgroups).
 */
export function gemmSplit(g: GemmSpec): number {
  if (!(g.splitK ?? gemmConfig.splitK) || (g.batch ?? 1) > 1) return 1;
  const { BM, BN } = gemmTiles(g);
  const tiles = Math.ceil(g.M / BM) * Math.ceil(g.N / BN);
  if (tiles >= SPLIT_TARGET_GROUPS / 2) return 1;
  return Math.max(1, Math.min(Math.ceil(SPLIT_TARGET_GROUPS / tiles), maxSplit(g.K)));
}
const SPLIT_TARGET_GROUPS = 512;

/** Whether the WGSL GEMM is used for these sizes (smaller products: tf.matMul, where launch cost dominates). */
export function gemmWorthwhile(M: number, N: number, K: number): boolean {
  return M >= 64 && N >= 64 && K >= 16 && M * N * K >= 1 << 22;
}

const codes = new Map<string, string>();

/** WGSL for `base + k * kStride` (or its segmented form) + `m * mStride`, terms of 0 left out. */
function address(
  base: string,
  mStride: number,
  kStride: number,
  kSeg: number,
  seg: number,
  K: number,
): string {
  const terms = [base];
  const inSegment = kStride === 1 ? `(k % ${kSeg}u)` : `(k % ${kSeg}u) * ${kStride}u`;
  const kTerms = kSeg >= K
    ? [kStride === 1 ? "k" : `k * ${kStride}u`]
    : [`(k / ${kSeg}u) * ${seg}u`, inSegment];
  terms.push(...kTerms);
  terms.push(mStride === 1 ? "mm_" : `mm_ * ${mStride}u`);
  return terms.join(" + ");
}

/** The WGSL of one GEMM (shape and layout written in as constants; see the file's comment). */
export function gemmShader(spec: GemmSpec): string {
  const g = fullLayout(spec);
  const key = JSON.stringify([g, gemmConfig]);
  const hit = codes.get(key);
  if (hit) return hit;
  const { M, N, K, transposeA, transposeB } = g;
  const { BM, BN } = gemmTiles(g);
  const S = gemmSplit(g), KS = Math.ceil(K / S / gemmConfig.bk) * gemmConfig.bk; // k slice of workgroup z
  const BK = gemmConfig.bk;
  // A(m, k) at offA + z strideA + k kA + m mA (k segmented if kSeg < K); B(k, n) likewise with n
  const [mA, kA] = transposeA ? [1, g.lda] : [g.lda, 1];
  const [nB, kB] = transposeB ? [g.ldb, 1] : [1, g.ldb];
  const aIndex = address("aBase", mA, kA, g.kSeg, g.segA, K).replace("mm_", "m");
  const bIndex = address("bBase", nB, kB, g.kSeg, g.segB, K).replace("mm_", "n");
  // staging loads: consecutive threads along the axis contiguous in memory
  const aLoad = mA === 1 ? "let mm = e % BM; let kk = e / BM;" : "let kk = e % BK; let mm = e / BK;";
  const bLoad = nB === 1 ? "let nn = e % BN; let kk = e / BN;" : "let kk = e % BK; let nn = e / BK;";
  // split: workgroup z writes its partial tile into a dense (S, M, N) buffer; else z is the batch index
  const split = S > 1;
  const GA = BM / 64, GB = BN / 64; // vec4 groups per thread along m and n
  const SA4 = BM / 4 + 1, SB4 = BN / 4 + 1; // row strides in vec4s (padded: staging stores on distinct banks)
  const LA = (BM * BK) / 256, LB = (BN * BK) / 256; // prefetched floats per thread
  const lines = (n: number, f: (i: number) => string, sep = " ") => [...Array(n).keys()].map(f).join(sep);
  // prefetch registers pa*, pb*: element e = tid + 256 j of the (BM or BN) x BK tile at k step `kb`
  const fetch = (which: "a" | "b", n: number, load: string, index: string, kb: string) => {
    const [edge, bound, src] = which === "a" ? ["m", "M", "A"] : ["n", "N", "B"];
    return lines(
      n,
      (j) =>
        `{ let e = tid + ${256 * j}u; ${load} let ${edge} = ${edge}0 + ${edge}${edge}; let k = ${kb} + kk; ` +
        `p${which}${j} = 0.0; if (${edge} < ${bound} && k < kEnd) { p${which}${j} = ${src}[${index}]; } }`,
      "\n    ",
    );
  };
  const stage = (which: "a" | "b", n: number, load: string, stride: number) => {
    const [tile, idx] = which === "a" ? ["As", "mm"] : ["Bs", "nn"];
    return lines(
      n,
      (j) =>
        `{ let e = tid + ${
          256 * j
        }u; ${load} ${tile}[kk * ${stride}u + ${idx} / 4u][${idx} % 4u] = p${which}${j}; }`,
      "\n    ",
    );
  };
  // everything per thread is straight-line code over scalars (acc, a, b): arrays indexed in loops were
  // kept in local memory by the shader compiler on the H200 (0.2-0.7 TFLOP/s, measured)
  const acc = lines(GA * 4, (i) => lines(GB * 4, (j) => `var c${i}_${j} = 0.0;`), "\n  ");
  const fmas = lines(
    GA * 4,
    (i) => lines(GB * 4, (j) => `c${i}_${j} = fma(a${i >> 2}[${i & 3}], b${j >> 2}[${j & 3}], c${i}_${j});`),
    "\n      ",
  );
  const store = (v: string, at: string) =>
    split || !g.accumulate ? `C[${at}] = ${v};` : `C[${at}] = C[${at}] + ${v};`;
  const stores = lines(
    GA * 4,
    (i) =>
      `{ let m = m0 + ${64 * (i >> 2) + (i & 3)}u + 4u * ty; if (m < M) { let row = cBase + m * LDC;\n    ` +
      lines(GB * 4, (j) => {
        const n = `n0 + ${64 * (j >> 2) + (j & 3)}u + 4u * tx`;
        return `if (${n} < N) { ${store(`c${i}_${j}`, `row + ${n}`)} }`;
      }) + " } }",
    "\n  ",
  );
  const text = `
@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> B: array<f32>;
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
const M = ${M}u; const N = ${N}u; const K = ${K}u; const KS = ${KS}u;
const BM = ${BM}u; const BN = ${BN}u; const BK = ${BK}u;
const LDC = ${split ? N : g.ldc}u;
var<workgroup> As: array<vec4<f32>, ${BK * SA4}>; // [k][m / 4], row stride ${SA4}
var<workgroup> Bs: array<vec4<f32>, ${BK * SB4}>; // [k][n / 4], row stride ${SB4}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let m0 = wg.y * BM;
  let n0 = wg.x * BN;
  let tx = tid % 16u;
  let ty = tid / 16u;
  // split k: workgroup z runs k in [kBegin, kEnd) into partial tile z (S x M x N); else z is the batch
  let kBegin = ${split ? "wg.z * KS" : "0u"};
  let kEnd = min(K, kBegin + KS);
  let aBase = ${g.offA}u${split ? "" : ` + wg.z * ${g.strideA}u`};
  let bBase = ${g.offB}u${split ? "" : ` + wg.z * ${g.strideB}u`};
  let cBase = ${split ? "wg.z * M * N" : `${g.offC}u + wg.z * ${g.strideC}u`};
  ${acc}
  ${lines(LA, (j) => `var pa${j}: f32;`)} ${lines(LB, (j) => `var pb${j}: f32;`)}
  ${fetch("a", LA, aLoad, aIndex, "kBegin")}
  ${fetch("b", LB, bLoad, bIndex, "kBegin")}
  for (var k0 = kBegin; k0 < kEnd; k0 += BK) {
    ${stage("a", LA, aLoad, SA4)}
    ${stage("b", LB, bLoad, SB4)}
    workgroupBarrier();
    let kn = k0 + BK; // the next step's tiles, in flight during this step's products
    if (kn < kEnd) {
    ${fetch("a", LA, aLoad, aIndex, "kn")}
    ${fetch("b", LB, bLoad, bIndex, "kn")}
    }
    for (var kk = 0u; kk < BK; kk++) {
      ${lines(GA, (h) => `let a${h} = As[kk * ${SA4}u + ${16 * h}u + ty];`)}
      ${lines(GB, (h) => `let b${h} = Bs[kk * ${SB4}u + ${16 * h}u + tx];`)}
      ${fmas}
    }
    workgroupBarrier();
  }
  ${stores}
}
`;
  codes.set(key, text);
  return text;
}

/**
 * Records C = op(A) op(B) (or C += with `accumulate`) on `d`: one dispatch, or with k split a partial
 * product per slice and the pass that sums them (its scratch from d.alloc, released after).
 */
/**
 * Whether a product is a few rows against a weight matrix stored (N, K), the decoding engine's case
 * (one row per sequence): then a GEMV kernel reads the weights once, coalesced, instead of tiles meant
 * for many rows (at 1 row, 128-row tiles waste 127/128 of their work).
 */
function isGemv(g: Required<Omit<GemmSpec, "name">>): boolean {
  return g.M <= GEMV_MAX_ROWS && !g.transposeA && g.transposeB && g.batch === 1 && g.kSeg >= g.K;
}
const GEMV_MAX_ROWS = 8;
/**
 * Threads per GEMV output column (a workgroup of 256 computes 256 / lanes columns): 32 (a pass:
 * gemvTuning.passMinLanes), doubled while the product would run fewer than gemvTuning.minGroups
 * (passMinGroups) workgroups and every lane still gets a vector of k. At the 972M shape x_proj (144
 * columns) ran as 18 workgroups of 8 columns, on 18 of the H200's 132 SMs, before lanes could double.
 */
function gemvLanes(g: { M: number; N: number; K: number }, C = 1): number {
  const minGroups = g.M > 1 ? gemvTuning.passMinGroups : gemvTuning.minGroups;
  let lanes = g.M > 1 ? gemvTuning.passMinLanes : 32;
  if (![4, 8, 16, 32].includes(lanes)) {
    throw new Error(`gemvTuning.passMinLanes: 4, 8, 16 or 32 (got ${lanes})`);
  }
  while (lanes < 256 && Math.ceil(g.N / (C * 256 / lanes)) < minGroups && lanes * 2 <= g.K / 4) {
    lanes *= 2;
  }
  return lanes;
}
/**
 * The GEMV's settings: the fewest workgroups a product should run (lanes per group double until it does);
 * for products of several rows (a verification pass) passMinGroups, and lanes per column starting at
 * passMinLanes (a power of two from 4 to 32; 16 lanes still read a weight row's 256 contiguous bytes at
 * once): every workgroup of a pass reads all of A once, so fewer, wider workgroups read less of it; the
 * weight vectors each lane loads before using them; and the columns each group computes in a pass,
 * passNormColumns for a product with a norm folded in (in_proj, the head) and passColumns for the others.
 * Benchmarks may change them (lib/bench/decode_engine.ts --gemv) before any program is recorded.
 * Measured on the H200 at the 972M shape, a pass of 8 bytes over a step (sweep/decode_gemv_pass.jsonl,
 * 2026-12-05, one call): 1.88 with passMinGroups 512 and 32 lanes (the settings of steps), 1.65 with 256,
 * 1.50 with 256 and 16 lanes (in_proj 2.23 -> 1.78 ms, out_proj 1.22 -> 1.00 ms over 48 layers), 2.03
 * with 128 and 8 lanes. A second kernel for several rows, each thread holding A's rows at its vectors of k
 * in registers and walking the weights in batches of columns, was measured on the H200 and removed: a pass
 * of 8 at the 972M shape took 14.6 ms with it against 5.3 ms here, and 0.63 against 0.50 ms at d256 x 4
 * (data/results/bench/sweep/decode_gemv_rows.jsonl, decode_engine.jsonl).
 */
export const gemvTuning = {
  minGroups: 512,
  passMinGroups: 256,
  passMinLanes: 16,
  unroll: 4,
  passColumns: 1,
  passNormColumns: 1,
};

/** Columns per group of lanes: in a pass (several rows) passNormColumns or passColumns, else one. */
function gemvColumnsPerGroup(g: { M: number }, norm?: GemvNorm): number {
  return g.M > 1 ? (norm ? gemvTuning.passNormColumns : gemvTuning.passColumns) : 1;
}

/**
 * More work in a GEMV's epilogue (the decoding engine's fused in_proj + conv): bindings after A, B, C and
 * code that lane 0 of column n's group runs after storing the column, `v(m)` its value for row m.
 */
export interface GemvEpilogue {
  key: string;
  bindings: [string, "read" | "read_write", string][];
  after: (v: (m: number) => string) => string;
  /** WGSL functions the epilogue calls */
  helpers?: string;
}

/**
 * An RMSNorm folded into a GEMV (decoding's norm + in_proj, and the final norm + head): A holds the residual
 * stream's rows h, each workgroup computes every row's rstd itself (d values a row, from cache: cheaper than
 * a dispatch of its own), the loop multiplies each weight by the norm's gain (once for all rows), and each
 * column ends scaled by its row's rstd:
 *   C[m, n] = rstd[m] sum_k h[m, k] gain[k] B[n, k]
 * Its one binding, gain, follows A, B and C (before an epilogue's).
 */
export interface GemvNorm {
  eps: number;
}

/** C[m, n] (+)= sum_k A[m, k] B[n, k] for m < M <= 8: one group of lanes per column n, k strided over it. */
function gemvShader(g: Required<Omit<GemmSpec, "name">>, epi?: GemvEpilogue, norm?: GemvNorm): string {
  const key = `gemv ${JSON.stringify(g)} ${epi?.key ?? ""} ${JSON.stringify(norm ?? {})} ${
    JSON.stringify(gemvTuning)
  }`;
  let text = codes.get(key);
  if (text) return text;
  const rows = [...Array(g.M).keys()];
  // whole vectors of four along k when B's rows allow it (16-byte loads: four times the bytes per request),
  // and A's rows too when they allow it; the loop takes UNROLL vectors per lane before its FMAs, so that
  // several loads are in flight per thread (one at a time left the H200's memory idle)
  const v4 = g.K % 4 === 0 && g.ldb % 4 === 0 && g.offB % 4 === 0;
  const av4 = v4 && g.lda % 4 === 0 && g.offA % 4 === 0;
  const a4 = (m: number, k: string) => {
    if (av4) return `A[${(g.offA + m * g.lda) / 4}u + ${k}]`;
    const at = `${g.offA + m * g.lda}u + 4u * (${k})`;
    return `vec4<f32>(A[${at}], A[${at} + 1u], A[${at} + 2u], A[${at} + 3u])`;
  };
  // a weight as the loop uses it: a folded norm's gain multiplies the weight (once for all rows)
  const w = (at: string, k: string) => norm ? `B[${at}] * G[${k}]` : `B[${at}]`;
  // with several rows (a verification pass), each group of lanes computes C columns, so that every A load
  // serves C weights (one column per group read 8 A vectors per weight vector: the loop was bound by the
  // loads from cache, not by memory); C loads are then in flight per lane, so the unrolling shrinks by C
  const C = gemvColumnsPerGroup(g, norm), L = gemvLanes(g, C);
  const U = Math.max(1, Math.floor(gemvTuning.unroll / C));
  const K4 = g.K / 4, unrolled = [...Array(U).keys()], cols = [...Array(C).keys()];
  const rowStride = v4 ? g.ldb / 4 : g.ldb, rowStart = v4 ? g.offB / 4 : g.offB;
  const wrows = cols.map((c) => `let wrow${c} = ${rowStart}u + min(n0 + ${c}u, ${g.N - 1}u) * ${rowStride}u;`)
    .join(" ");
  // one block of FMAs: weights loaded (tag t), then each row's A vector once for all C columns
  const fmas = (
    k: string,
    t: string,
    a: (m: number, k: string) => string,
    mul: (a: string, w: string) => string,
  ) =>
    `${cols.map((c) => `let w${c}_${t} = ${w(`wrow${c} + ${k}`, k)};`).join(" ")}
      ${
      rows.map((m) =>
        `{ let a = ${a(m, k)}; ${cols.map((c) => `acc${m}_${c} += ${mul("a", `w${c}_${t}`)};`).join(" ")} }`
      ).join("\n      ")
    }`;
  const dot = (a: string, b: string) => `dot(${a}, ${b})`, mul = (a: string, b: string) => `${a} * ${b}`;
  const loop = v4
    ? `${wrows}
    var k = lane;
    for (; k + ${L * (U - 1)}u < ${K4}u; k += ${L * U}u) {
      ${unrolled.map((u) => fmas(`k + ${L * u}u`, `${u}`, a4, dot)).join("\n      ")}
    }
    for (; k < ${K4}u; k += ${L}u) {
      ${fmas("k", "r", a4, dot)}
    }`
    : `${wrows}
    for (var k = lane; k < ${g.K}u; k += ${L}u) {
      ${fmas("k", "s", (m, k) => `A[${g.offA + m * g.lda}u + ${k}]`, mul)}
    }`;
  const aType = av4 ? "vec4<f32>" : "f32";
  const normBindings: [string, "read", string][] = norm ? [["G", "read", v4 ? "vec4<f32>" : "f32"]] : [];
  // a column's value for row m: the sum, scaled by the row's rstd when a norm is folded in
  const value = (m: number) => norm ? `(part[${m * 256}u + lid] * rstd[${m}u])` : `part[${m * 256}u + lid]`;
  text = `
@group(0) @binding(0) var<storage, read> A: array<${aType}>;
@group(0) @binding(1) var<storage, read> B: array<${v4 ? "vec4<f32>" : "f32"}>;
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
${
    [...normBindings, ...(epi?.bindings ?? [])].map(([name, access, type], i) =>
      `@group(0) @binding(${3 + i}) var<storage, ${access}> ${name}: array<${type}>;`
    ).join("\n")
  }
${epi?.helpers ?? ""}
var<workgroup> part: array<f32, ${256 * g.M}>;
${norm ? `var<workgroup> rstd: array<f32, ${g.M}>;` : ""}
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wg: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let grp = lid / ${L}u; let lane = lid % ${L}u;
  // the group's first column: uniform within the group, not the workgroup
  let n0 = ((wg.x + wg.y * nwg.x) * ${256 / L}u + grp) * ${C}u;
  ${norm ? normPrologue(g.M, g.K, av4, norm.eps) : ""}
  ${rows.map((m) => cols.map((c) => `var acc${m}_${c} = 0.0;`).join(" ")).join(" ")}
  if (n0 < ${g.N}u) {
    ${loop}
  }
  ${
    cols.map((c) => {
      const stores = rows.map((m) => {
        const o = `${g.offC + m * g.ldc}u + n`;
        return `C[${o}] = ${g.accumulate ? `C[${o}] + ` : ""}${value(m)};`;
      }).join("\n      ");
      // column n0 + c: its lanes' partial sums reduced in part, then stored (and the epilogue run) by lane 0
      return `${rows.map((m) => `part[${m * 256}u + lid] = acc${m}_${c};`).join(" ")}
  workgroupBarrier();
  for (var s = ${L / 2}u; s >= 1u; s = s / 2u) {
    if (lane < s) { ${rows.map((m) => `part[${m * 256}u + lid] += part[${m * 256}u + lid + s];`).join(" ")} }
    workgroupBarrier();
  }
  if (lane == 0u && n0 + ${c}u < ${g.N}u) {
    let n = n0 + ${c}u;
    ${stores}
    ${epi ? epi.after(value) : ""}
  }
  workgroupBarrier();`;
    }).join("\n  ")
  }
}
`;
  codes.set(key, text);
  return text;
}

/** A GEMV (a few rows, weights stored (N, K)) with an epilogue and its extra buffers, one dispatch. */
export function recordGemv<B>(
  d: Dispatcher<B>,
  label: string,
  spec: GemmSpec,
  bufs: [B, B, B, ...B[]],
  epi?: GemvEpilogue,
  norm?: GemvNorm,
): void {
  const g = fullLayout(spec);
  if (!isGemv(g)) throw new Error(`recordGemv: not a GEMV: ${JSON.stringify(spec)}`);
  if (norm && !(g.offA === 0 && g.lda === g.K)) {
    throw new Error(`gemv: a folded norm reads whole rows of A (offA 0, lda K): ${JSON.stringify(g)}`);
  }
  const C = gemvColumnsPerGroup(g, norm);
  const wgs = Math.ceil(g.N / (C * 256 / gemvLanes(g, C)));
  const groups: [number, number, number] = [Math.min(wgs, 65535), Math.ceil(wgs / 65535), 1];
  const code = gemvShader(g, epi, norm);
  d.dispatch(label, code, bufs, groups, 2 * g.M * g.N * g.K);
}

/**
 * WGSL computing rstd[m] for every row of A in each workgroup (`part` is free until the loop): each thread's
 * share of every row's sum of squares, then one tree for all rows at once. A tree a row in turn cost a pass
 * of 8 rows 72 barriers a workgroup where the weights took 14 vector loads a thread (in_proj, 972M shape).
 * Each row's sum is added in the same order either way.
 */
function normPrologue(M: number, K: number, v4: boolean, eps: number): string {
  const rows = [...Array(M).keys()], K4 = v4 ? K / 4 : K;
  return `${
    rows.map((m) =>
      `{
    var ss = 0.0;
    for (var k = lid; k < ${K4}u; k += 256u) {
      let v = A[${m * K4}u + k];
      ss += ${v4 ? "dot(v, v)" : "v * v"};
    }
    part[${m * 256}u + lid] = ss;
  }`
    ).join("\n  ")
  }
  workgroupBarrier();
  for (var s = 128u; s >= 1u; s = s / 2u) {
    if (lid < s) { ${rows.map((m) => `part[${m * 256}u + lid] += part[${m * 256}u + lid + s];`).join(" ")} }
    workgroupBarrier();
  }
  if (lid < ${M}u) { rstd[lid] = 1.0 / sqrt(part[lid * 256u] / ${K}.0 + ${eps}); }
  workgroupBarrier();`;
}

export function recordGemm<B>(d: Dispatcher<B>, spec: GemmSpec, a: B, b: B, c: B): void {
  const g = fullLayout(spec);
  if (isGemv(g)) {
    recordGemv(d, `gemv${spec.name ? ` ${spec.name}` : ""}`, spec, [a, b, c]);
    return;
  }
  const { BM, BN } = gemmTiles(g);
  const S = gemmSplit(g);
  if (g.batch > 65535) throw new Error(`gemm: a batch of ${g.batch} products exceeds 65535`);
  const groups: [number, number, number] = [Math.ceil(g.N / BN), Math.ceil(g.M / BM), S > 1 ? S : g.batch];
  const suffix = spec.name ? ` ${spec.name}` : "";
  const flops = 2 * g.M * g.N * g.K * g.batch;
  if (S === 1) {
    d.dispatch("gemm" + suffix, gemmShader(g), [a, b, c], groups, flops);
    return;
  }
  const partial = d.alloc(S * g.M * g.N, "gemm split partials");
  d.dispatch("gemm" + suffix, gemmShader(g), [a, b, partial], groups, flops);
  d.dispatch("splitSum" + suffix, splitSumShader(S, g), [partial, c], flatGroups(g.M * g.N, 256));
  d.release(partial);
}

/** C = op(A) op(B) on the webgpu backend (matrices, float32). */
export function gemmWebGPU(be: Backend, a: tf.TensorInfo, b: tf.TensorInfo, g: Gemm): tf.TensorInfo {
  if (gemmConfig.impl !== "wgsl") {
    const kernel = (name: string) => tf.getKernel(name, "webgpu")!.kernelFunc;
    const transposed = (x: tf.TensorInfo) =>
      kernel("Transpose")({ inputs: { x }, backend: be, attrs: { perm: [1, 0] } }) as tf.TensorInfo;
    const firstA = g.transposeA && gemmConfig.impl === "tfjs-ab";
    const A = firstA ? transposed(a) : a, B = g.transposeB ? transposed(b) : b;
    const c = kernel("BatchMatMul")({
      inputs: { a: A, b: B },
      backend: be,
      attrs: { transposeA: g.transposeA && !firstA, transposeB: false },
    }) as tf.TensorInfo;
    for (const t of [A, B]) if (t !== a && t !== b) be.disposeData(t.dataId);
    return c;
  }
  const c = newTensor(be, [g.M, g.N]);
  recordGemm(tfjsDispatcher(be, "MatMul:"), g, a, b, c);
  return c;
}

/**
 * C[offC + m ldc + n] (+)= sum over s of P[s, m, n], s in order (the k slices' partial tiles of a split
 * product).
 */
function splitSumShader(S: number, g: Required<Omit<GemmSpec, "name">>): string {
  const key = `splitSum ${S} ${g.M} ${g.N} ${g.ldc} ${g.offC} ${g.accumulate}`;
  let text = codes.get(key);
  if (text) return text;
  const count = g.M * g.N;
  text = `
@group(0) @binding(0) var<storage, read> P: array<f32>;
@group(0) @binding(1) var<storage, read_write> C: array<f32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = id.x + id.y * nwg.x * 256u;
  if (i >= ${count}u) { return; }
  var sum = 0.0;
  for (var s = 0u; s < ${S}u; s++) { sum += P[s * ${count}u + i]; }
  let o = ${g.offC}u + (i / ${g.N}u) * ${g.ldc}u + i % ${g.N}u;
  C[o] = ${g.accumulate ? "C[o] + " : ""}sum;
}
`;
  codes.set(key, text);
  return text;
}
