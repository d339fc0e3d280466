/**
 * Plain-JS twins of webgpu/decode.ts: the recurrent step's kernels of the decoding engine
 * (lib/engine/decode.ts), one token per sequence of a batch, the state (conv window, SSM state) held in
 * buffers and updated in place. The math is lib/models/mamba.ts's `mixer` at l = 1 from a state.
 */
import { addRmsNorm } from "./norm.ts";
import { gemm } from "./gemm.ts";

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const softplus = (x: number) => (x > 20 ? x : Math.log1p(Math.exp(x)));

export interface ConvStepParams {
  batch: number;
  ch: number;
  k: number;
  bias: boolean;
  /** floats between two sequences' x rows (x is in_proj's (B, 2e) output: its first ch columns) */
  xStride: number;
}

/**
 * The conv window (batch, ch, k), oldest first, moves by one and takes x (batch, ch) as its newest input;
 * y = silu(bias + sum_j w[c, j] window[c, j]).
 */
export function convStep(
  p: ConvStepParams,
  b: { x: Float32Array; window: Float32Array; w: Float32Array; bias?: Float32Array; y: Float32Array },
): void {
  const { k } = p;
  for (let i = 0; i < p.batch * p.ch; i++) {
    const c = i % p.ch, o = i * k;
    for (let j = 0; j < k - 1; j++) b.window[o + j] = b.window[o + j + 1];
    b.window[o + k - 1] = b.x[Math.floor(i / p.ch) * p.xStride + c];
    let s = p.bias ? b.bias![c] : 0;
    for (let j = 0; j < k; j++) s = Math.fround(s + Math.fround(b.window[o + j] * b.w[c * k + j]));
    b.y[i] = s * sigmoid(s);
  }
}

export interface SsmStepParams {
  batch: number;
  dim: number;
  ns: number;
  softplus: boolean;
  /** floats per row of x_dbl (dt_rank + 2 ns); its first `rank` values are dt, then B (ns), then C (ns) */
  row: number;
  rank: number;
  /** z of sequence b, channel c at z[b zStride + zOffset + c] (in_proj's (B, 2e) output: its second half) */
  zStride: number;
  zOffset: number;
}

/**
 * One step of the selective SSM per (sequence, channel), dt_proj fused in, the state h (batch, dim, ns)
 * updated in place:
 *   delta = <dt, W_dt[c, :]>;  dt' = softplus(delta + bias);  h = exp(dt' A) h + dt' B u;
 *   y = (<h, C> + D u) silu(z)
 * with dt, B, C from x_dbl's row of the sequence.
 */
/** The SSM step's buffers: inputs, the weights it reads, the state h, the output y. */
export interface SsmIo {
  u: Float32Array;
  dtW: Float32Array;
  deltaBias?: Float32Array;
  A: Float32Array;
  xdbl: Float32Array;
  D?: Float32Array;
  z?: Float32Array;
  h: Float32Array;
  y: Float32Array;
}

export function ssmStep(p: SsmStepParams, b: SsmIo): void {
  const { dim, ns } = p;
  for (let i = 0; i < p.batch * dim; i++) {
    const bb = Math.floor(i / dim), c = i % dim;
    let delta = 0;
    for (let j = 0; j < p.rank; j++) {
      delta = Math.fround(delta + Math.fround(b.xdbl[bb * p.row + j] * b.dtW[c * p.rank + j]));
    }
    const raw = delta + (b.deltaBias ? b.deltaBias[c] : 0);
    const dt = p.softplus ? softplus(raw) : raw;
    const u = b.u[i], bo = bb * p.row + p.rank;
    let acc = 0;
    for (let s = 0; s < ns; s++) {
      const h = Math.exp(dt * b.A[c * ns + s]) * b.h[i * ns + s] + dt * b.xdbl[bo + s] * u;
      b.h[i * ns + s] = h;
      acc += h * b.xdbl[bo + ns + s];
    }
    let y = acc + (b.D ? b.D[c] * u : 0);
    if (b.z) {
      const z = b.z[bb * p.zStride + p.zOffset + c];
      y *= z * sigmoid(z);
    }
    b.y[i] = y;
  }
}

export interface ArgmaxParams {
  rows: number;
  /** floats per logits row (the padded vocabulary) */
  V: number;
  /** the ids taking part: [0, vocab) (the padding rows of the head are not tokens) */
  vocab: number;
  /** ids[outOffset + row] = the row's argmax (and ids[alsoOffset + row], when given) */
  outOffset: number;
  alsoOffset?: number;
}

/** The id a choice kernel writes for a row holding NaN or an infinity: no token is chosen from it. */
export const NOT_FINITE_ID = -1;

/**
 * Greedy choice per row: the first index of the largest logit among the real vocabulary (NOT_FINITE_ID when
 * a logit is not finite).
 */
export function argmax(p: ArgmaxParams, b: { logits: Float32Array; ids: Int32Array }): void {
  for (let r = 0; r < p.rows; r++) {
    let best = 0, max = -Infinity;
    for (let j = 0; j < p.vocab; j++) {
      const v = b.logits[r * p.V + j];
      if (!Number.isFinite(v)) {
        best = NOT_FINITE_ID;
        break;
      }
      if (v > max) [max, best] = [v, j];
    }
    b.ids[p.outOffset + r] = best;
    if (p.alsoOffset !== undefined) b.ids[p.alsoOffset + r] = best;
  }
}

export interface GemvConvParams {
  /** rows: sequences one step each, or (pass) positions of one sequence */
  rows: number;
  /** the product's k (d_model) */
  K: number;
  /** conv channels (d_inner): the product's N is 2 ch (x then the gate z) */
  ch: number;
  k: number;
  bias: boolean;
  pass: boolean;
  /** the layer's RMSNorm folded in (a: the residual stream) */
  norm?: { eps: number };
}

/** gemvConv's buffers; gain (the norm's weight) only with a folded norm. */
export type GemvConvBuffers<B> = {
  a: B;
  W: B;
  c: B;
  gain?: B;
  window: B;
  w: B;
  bias?: B;
  u: B;
  snaps?: B;
};

/**
 * in_proj and the conv step fused: c (rows, 2ch) = a W^T (with `norm`: c = rmsnorm(a) gain W^T, as
 * normGemv), then the conv window of each channel takes x = c[:, :ch] (convStep over the rows as sequences,
 * or convScan over them as one sequence's positions with snapshots), u = silu(conv). The same arithmetic as
 * the GEMM (or normGemv) then the conv twin.
 */
export function gemvConv(p: GemvConvParams, b: GemvConvBuffers<Float32Array>): void {
  const N = 2 * p.ch;
  if (p.norm) normGemv({ rows: p.rows, d: p.K, N, eps: p.norm.eps }, { x: b.a, w: b.gain!, W: b.W, c: b.c });
  else gemm({ M: p.rows, N, K: p.K, transposeA: false, transposeB: true }, { a: b.a, b: b.W, c: b.c });
  const conv = { ch: p.ch, k: p.k, bias: p.bias, xStride: 2 * p.ch };
  const io = { x: b.c, window: b.window, w: b.w, bias: b.bias, y: b.u };
  if (p.pass) convScan({ ...conv, len: p.rows }, { ...io, snaps: b.snaps! });
  else convStep({ ...conv, batch: p.rows }, io);
}

export interface SampleParams {
  rows: number;
  /** floats per logits row (the padded vocabulary) */
  V: number;
  /** the ids taking part: [0, vocab), at most MAX_SAMPLE_VOCAB */
  vocab: number;
  temperature: number;
  /** keep the topK most likely ids (0: all) */
  topK: number;
  /** then the smallest head of them whose probability reaches topP (1: all) */
  topP: number;
  /** the row's uniform in [0, 1) is u[uOffset + row]; its id goes to ids[outOffset + row] (and alsoOffset) */
  uOffset: number;
  outOffset: number;
  alsoOffset?: number;
}

/** The largest vocabulary the device sampler sorts in one workgroup (bytes: 256). */
export const MAX_SAMPLE_VOCAB = 1024;

/**
 * Sampling per row, the rule of lib/decode/sample.ts `pickToken` with the uniform given: the ids sorted by
 * logit (descending, ties by id), the first topK kept, softmax at the temperature, cut at the first
 * cumulative probability >= topP, then the id where u times the kept mass is used up. float32 arithmetic in
 * the order the WGSL kernel uses.
 */
export function sample(p: SampleParams, b: { logits: Float32Array; u: Float32Array; ids: Int32Array }): void {
  const f = Math.fround;
  for (let r = 0; r < p.rows; r++) {
    const row = b.logits.subarray(r * p.V, r * p.V + p.vocab);
    if (!row.every(Number.isFinite)) {
      b.ids[p.outOffset + r] = NOT_FINITE_ID;
      if (p.alsoOffset !== undefined) b.ids[p.alsoOffset + r] = NOT_FINITE_ID;
      continue;
    }
    const order = Array.from(row.keys()).sort((x, y) => row[y] - row[x] || x - y);
    const k = p.topK > 0 ? Math.min(p.topK, p.vocab) : p.vocab;
    const probs = new Float32Array(k);
    let sum = 0;
    for (let i = 0; i < k; i++) {
      sum = f(sum + (probs[i] = f(Math.exp(f(f(row[order[i]] - row[order[0]]) / p.temperature)))));
    }
    let cut = k, acc = 0;
    if (p.topP < 1) {
      for (let i = 0; i < k; i++) {
        acc = f(acc + f(probs[i] / sum));
        if (acc >= f(p.topP)) {
          cut = i + 1;
          break;
        }
      }
    }
    let kept = 0;
    for (let i = 0; i < cut; i++) kept = f(kept + f(probs[i] / sum));
    let left = f(b.u[p.uOffset + r] * kept), id = order[cut - 1];
    for (let i = 0; i < cut; i++) {
      left = f(left - f(probs[i] / sum));
      if (left <= 0) {
        id = order[i];
        break;
      }
    }
    b.ids[p.outOffset + r] = id;
    if (p.alsoOffset !== undefined) b.ids[p.alsoOffset + r] = id;
  }
}

/** normGemv's float32 scratch: the normed rows and their rstd (addRmsNorm's outputs). */
let normed = new Float32Array(0), rstds = new Float32Array(0);

export interface NormGemvParams {
  /** rows (sequences), at most 8 */
  rows: number;
  /** the residual stream's width (the product's k) */
  d: number;
  /** output columns: rows of W (stored (N, d)) */
  N: number;
  eps: number;
}

/**
 * RMSNorm and the product that follows it, fused for decoding:  hn = rmsnorm(x) w;  c (rows, N) = hn W^T,
 * the same arithmetic as addRmsNorm then the GEMM (norm.ts, gemm.ts), which this twin runs in turn.
 */
export function normGemv(
  p: NormGemvParams,
  b: { x: Float32Array; w: Float32Array; W: Float32Array; c: Float32Array },
): void {
  if (normed.length < p.rows * p.d) normed = new Float32Array(p.rows * p.d); // grown once, then reused
  if (rstds.length < p.rows) rstds = new Float32Array(p.rows);
  const hn = normed.subarray(0, p.rows * p.d), rstd = rstds.subarray(0, p.rows);
  addRmsNorm({ rows: p.rows, d: p.d, eps: p.eps, add: false }, { x: b.x, w: b.w, y: hn, rstd });
  gemm({ M: p.rows, N: p.N, K: p.d, transposeA: false, transposeB: true }, { a: hn, b: b.W, c: b.c });
}

export interface ConvScanParams extends Omit<ConvStepParams, "batch"> {
  /** positions of the one sequence read in the pass (rows of x, at xStride floats apart) */
  len: number;
}

/**
 * convStep over `len` positions of one sequence, the window carried from each to the next; snaps (len + 1,
 * ch, k) receives the window before the pass (slot 0) and after each position (slot t + 1).
 */
export function convScan(
  p: ConvScanParams,
  b: {
    x: Float32Array;
    window: Float32Array;
    snaps: Float32Array;
    w: Float32Array;
    bias?: Float32Array;
    y: Float32Array;
  },
): void {
  const { k, ch } = p, size = ch * k;
  b.snaps.set(b.window.subarray(0, size), 0);
  for (let t = 0; t < p.len; t++) {
    convStep({ ...p, batch: 1 }, {
      x: b.x.subarray(t * p.xStride),
      window: b.window,
      w: b.w,
      bias: b.bias,
      y: b.y.subarray(t * ch),
    });
    b.snaps.set(b.window.subarray(0, size), (t + 1) * size);
  }
}

export interface SsmScanParams extends Omit<SsmStepParams, "batch"> {
  len: number;
}

/** ssmStep over `len` positions of one sequence; snaps (len + 1, dim, ns) as convScan's. */
export function ssmScan(p: SsmScanParams, b: SsmIo & { snaps: Float32Array }): void {
  const size = p.dim * p.ns;
  b.snaps.set(b.h.subarray(0, size), 0);
  for (let t = 0; t < p.len; t++) {
    ssmStep({ ...p, batch: 1 }, {
      ...b,
      u: b.u.subarray(t * p.dim),
      xdbl: b.xdbl.subarray(t * p.row),
      z: b.z?.subarray(t * p.zStride),
      y: b.y.subarray(t * p.dim),
    });
    b.snaps.set(b.h.subarray(0, size), (t + 1) * size);
  }
}
