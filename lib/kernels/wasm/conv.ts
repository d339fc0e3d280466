/**
 * The causal depthwise conv1d + SiLU in front of a Mamba block's scan, channels last, forward and
 * backward: the WebAssembly kernels of scan.wat (convForward, convBackward), split by channel ranges over
 * the kernels' threads (wasm/pool.ts), and their slow twins in plain JS (`convSiluReference`,
 * `convSiluBackwardReference`), which tests compare them with.
 *
 *   pre[b, t, e] = bias[e] + sum_j w[e, j] x[b, t - k + 1 + j, e]   (x = 0 before t = 0)
 *   y = silu(pre) = pre sigmoid(pre)
 * x, y, dy, dx: (b, l, e); w: (e, k) (PyTorch's conv1d weight (e, 1, k)); bias: (e).
 */
import { allocator, ensureMemory, Fn, getPool, PARAMS, runJobs, threadsFor } from "./pool.ts";

export interface ConvDims {
  batch: number;
  length: number;
  channels: number;
  k: number;
}

export interface ConvGradients {
  x: Float32Array;
  w: Float32Array;
  bias: Float32Array;
}

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

function preReference(
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array | undefined,
  dims: ConvDims,
  b: number,
  t: number,
  e: number,
) {
  const { length: L, channels: E, k } = dims;
  let s = bias ? bias[e] : 0;
  for (let j = Math.max(0, k - 1 - t); j < k; j++) s += w[e * k + j] * x[(b * L + t - k + 1 + j) * E + e];
  return s;
}

/** Reference forward, float64 arithmetic: y = silu(causal conv(x)). */
export function convSiluReference(
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array | undefined,
  dims: ConvDims,
  y: Float32Array,
): void {
  const { batch, length: L, channels: E } = dims;
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < L; t++) {
      for (let e = 0; e < E; e++) {
        const pre = preReference(x, w, bias, dims, b, t, e);
        y[(b * L + t) * E + e] = pre * sigmoid(pre);
      }
    }
  }
}

/** Reference backward: dL/dx, dL/dw (e, k), dL/dbias given dy = dL/dy. */
export function convSiluBackwardReference(
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array | undefined,
  dims: ConvDims,
  dy: Float32Array,
): ConvGradients {
  const { batch, length: L, channels: E, k } = dims;
  const g = new Float64Array(x.length);
  const out = { x: new Float32Array(x.length), w: new Float32Array(E * k), bias: new Float32Array(E) };
  const gw = new Float64Array(E * k), gb = new Float64Array(E);
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < L; t++) {
      for (let e = 0; e < E; e++) {
        const i = (b * L + t) * E + e;
        const pre = preReference(x, w, bias, dims, b, t, e);
        const s = sigmoid(pre);
        const gi = dy[i] * s * (1 + pre * (1 - s));
        g[i] = gi;
        gb[e] += gi;
        for (let j = Math.max(0, k - 1 - t); j < k; j++) {
          gw[e * k + j] += gi * x[(b * L + t - k + 1 + j) * E + e];
        }
      }
    }
  }
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < L; t++) {
      for (let e = 0; e < E; e++) {
        let s = 0;
        for (let j = Math.max(0, t + k - L); j < k; j++) {
          s += w[e * k + j] * g[(b * L + t + k - 1 - j) * E + e];
        }
        out.x[(b * L + t) * E + e] = s;
      }
    }
  }
  out.w.set(gw);
  out.bias.set(gb);
  return out;
}

/** The WebAssembly kernels need whole vectors of channels. */
export function convWasmSupports(dims: ConvDims): boolean {
  return dims.channels % 4 === 0 && dims.k >= 1 && dims.batch * dims.length * dims.channels * 4 * 4 < 2 ** 30;
}

function stage(
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array | undefined,
  dims: ConvDims,
  backward: boolean,
) {
  const { batch, length: L, channels: E, k } = dims;
  const p = getPool();
  const n = batch * L * E;
  const { alloc, top } = allocator();
  const lay = {
    x: alloc(n),
    w: alloc(k * E),
    bias: alloc(E),
    y: backward ? 0 : alloc(n),
    dy: backward ? alloc(n) : 0,
    g: backward ? alloc(n) : 0,
    dx: backward ? alloc(n) : 0,
    dw: backward ? alloc(k * E) : 0,
    dbias: backward ? alloc(E) : 0,
  };
  const mem = ensureMemory(p, top());
  mem.set(x.subarray(0, n), lay.x >> 2);
  for (let e = 0; e < E; e++) for (let j = 0; j < k; j++) mem[(lay.w >> 2) + j * E + e] = w[e * k + j];
  if (bias) mem.set(bias.subarray(0, E), lay.bias >> 2);
  else mem.fill(0, lay.bias >> 2, (lay.bias >> 2) + E);
  new Int32Array(p.memory.buffer, PARAMS, 13).set([
    lay.x,
    lay.w,
    lay.bias,
    lay.y,
    L,
    E,
    k,
    batch,
    lay.dy,
    lay.g,
    lay.dx,
    lay.dw,
    lay.dbias,
  ]);
  return { p, mem, lay };
}

/** Channel ranges (multiples of 4) for the threads. */
function channelJobs(
  p: ReturnType<typeof getPool>,
  dims: ConvDims,
  work: number,
): [number, number, number, number][] {
  const groups = dims.channels / 4;
  const threads = threadsFor(p, groups, work);
  return Array.from({ length: threads }, (_, i) => [
    PARAMS,
    4 * Math.floor(groups * i / threads),
    4 * Math.floor(groups * (i + 1) / threads),
    0,
  ]);
}

/** y = silu(causal conv(x)) (requires convWasmSupports(dims)). */
export function convSilu(
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array | undefined,
  dims: ConvDims,
  y: Float32Array,
): void {
  const { p, mem, lay } = stage(x, w, bias, dims, false);
  const n = dims.batch * dims.length * dims.channels;
  runJobs(p, Fn.ConvForward, channelJobs(p, dims, n * (dims.k + 20)));
  y.set(mem.subarray(lay.y >> 2, (lay.y >> 2) + n));
}

/** Gradients of convSilu; `out` may supply the arrays to write into. */
export function convSiluBackward(
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array | undefined,
  dims: ConvDims,
  dy: Float32Array,
  out: Partial<ConvGradients> = {},
): ConvGradients {
  const { p, mem, lay } = stage(x, w, bias, dims, true);
  const { channels: E, k } = dims;
  const n = dims.batch * dims.length * E;
  mem.set(dy.subarray(0, n), lay.dy >> 2);
  runJobs(p, Fn.ConvBackward, channelJobs(p, dims, n * (3 * dims.k + 20)));
  const g = {
    x: out.x ?? new Float32Array(n),
    w: out.w ?? new Float32Array(E * k),
    bias: out.bias ?? new Float32Array(E),
  };
  g.x.set(mem.subarray(lay.dx >> 2, (lay.dx >> 2) + n));
  for (let e = 0; e < E; e++) for (let j = 0; j < k; j++) g.w[e * k + j] = mem[(lay.dw >> 2) + j * E + e];
  g.bias.set(mem.subarray(lay.dbias >> 2, (lay.dbias >> 2) + E));
  return g;
}
