/**
 * One-byte (one-token) recurrent steps of a Mamba LM at batch 1, with the state held in host arrays.
 *
 * - `MambaStepper` ("js"): the whole step in plain JS over Float32Arrays, the weights read from the
 *   variables once. At batch 1 a step is ~40 tiny ops per layer; on the cpu/wasm backends each tfjs op
 *   costs tens of microseconds of dispatch, more than its arithmetic, so fusing the step into one loop
 *   nest is what makes CPU decoding fast. The arithmetic is mamba.ts `step`'s, in the same order.
 * - `TfStepper` ("tf"): mamba.ts `step` on tensors (the right choice on webgpu, where the weights live on
 *   the GPU).
 *
 * The stepper never mutates the state it is given (callers keep old states to roll back).
 */
import * as tf from "@tensorflow/tfjs";
import { dims, disposeState, type MambaLM, type MambaState, step as tfStep } from "../models/mamba.ts";

/** A batch-1 Mamba state: per layer the conv window (e, k), oldest first, and the SSM state (e, n). */
export interface HostState {
  conv: Float32Array[];
  ssm: Float32Array[];
}

export interface Stepper {
  /** Reads one id from `state` -> logits over the padded vocabulary and the new state. */
  step(state: HostState, id: number): Promise<{ logits: Float32Array; state: HostState }>;
  dispose(): void;
}

/** The stepper `createStepper` picks on the current backend: the fused JS one on cpu/wasm, tfjs ops elsewhere. */
export function defaultStepperKind(): "js" | "tf" {
  return ["cpu", "wasm"].includes(tf.getBackend()) ? "js" : "tf";
}

/**
 * "js" on cpu/wasm, "tf" elsewhere, unless asked. The JS stepper on webgpu needs the asynchronous
 * `MambaStepper.create`.
 */
export function createStepper(model: MambaLM, kind?: "js" | "tf"): Stepper {
  const k = kind ?? defaultStepperKind();
  return k === "js" ? new MambaStepper(model) : new TfStepper(model);
}

export function hostToTensors(model: MambaLM, h: HostState): MambaState {
  const { e, n, k } = dims(model.config);
  return h.conv.map((c, i) => ({ conv: tf.tensor(c, [1, e, k]), ssm: tf.tensor(h.ssm[i], [1, e, n]) }));
}

export async function tensorsToHost(state: MambaState): Promise<HostState> {
  return {
    conv: await Promise.all(state.map((s) => s.conv.data() as Promise<Float32Array>)),
    ssm: await Promise.all(state.map((s) => s.ssm.data() as Promise<Float32Array>)),
  };
}

export class TfStepper implements Stepper {
  constructor(readonly model: MambaLM) {}
  async step(state: HostState, id: number) {
    const s = hostToTensors(this.model, state);
    const ids = tf.tensor([id], [1], "int32");
    const r = tfStep(this.model, ids, s);
    ids.dispose();
    disposeState(s);
    const logits = (await r.logits.data()) as Float32Array;
    r.logits.dispose();
    const next = await tensorsToHost(r.state);
    disposeState(r.state);
    return { logits, state: next };
  }
  dispose() {}
}

interface LayerWeights {
  norm: Float32Array; // (d)
  inProj: Float32Array; // (2e, d)
  inBias?: Float32Array; // (2e)
  convW: Float32Array; // (e, k)
  convB?: Float32Array; // (e)
  xProj: Float32Array; // (r + 2n, e)
  dtProj: Float32Array; // (e, r)
  dtBias: Float32Array; // (e)
  A: Float32Array; // (e, n) = -exp(A_log)
  D: Float32Array; // (e)
  outProj: Float32Array; // (d, e)
  outBias?: Float32Array; // (d)
}

/**
 * y (rows) = W (rows, cols) @ x (cols) (+ bias), W row-major as PyTorch stores Linear weights. Four rows
 * at a time: each x[i] is loaded once for four multiply-adds, and the four sums are independent chains
 * (about 2x faster than one row at a time in V8).
 */
function matvec(
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

/**
 * The matrix-vector product as a WebAssembly SIMD kernel (f32x4, two accumulators, 8 columns per
 * iteration; about 7x the scalar JS loop here). Hand-assembled; the function, in WAT:
 *   (func (export "mv") (param $W i32) (param $x i32) (param $y i32) (param $rows i32) (param $cols i32)
 *     $bytes = $cols << 2
 *     loop over rows: a0 = a1 = 0; for (i = 0; i < $bytes; i += 32) {
 *       a0 += v128.load($W + i) * v128.load($x + i); a1 += v128.load($W + i + 16) * v128.load($x + i + 16) }
 *     f32.store($y, sum of the lanes of a0 + a1); $W += $bytes; $y += 4)
 * It reads and writes one imported memory (pointers are byte offsets), so the weights, inputs and outputs
 * all live in that memory. Needs cols % 8 == 0 (every Mamba width here; otherwise the JS loop runs).
 * Sums in float32 (the JS loop sums in float64): equal to `step` within 1e-5 relative (tested).
 */
const MV_WASM =
  "AGFzbQEAAAABCQFgBX9/f39/AAIMAQNlbnYDbWVtAgABAwIBAAcGAQJtdgAACsgBAcUBAgJ/AnsgBEECdCEGAkADQCADRQ0B/QwAAAAAAAAAAAAAAAAAAAAAIQf9DAAAAAAAAAAAAAAAAAAAAAAhCEEAIQUDQCAHIAAgBWr9AAAAIAEgBWr9AAAA/eYB/eQBIQcgCCAAIAVq/QAAECABIAVq/QAAEP3mAf3kASEIIAVBIGoiBSAGSQ0ACyACIAcgCP3kASIH/R8AIAf9HwGSIAf9HwKSIAf9HwOSOAIAIAAgBmohACACQQRqIQIgA0EBayEDDAALCws=";

type MvFn = (W: number, x: number, y: number, rows: number, cols: number) => void;

/** A memory holding `floats` float32 values and the SIMD kernel bound to it; undefined without wasm SIMD. */
function simdArena(floats: number): { mem: WebAssembly.Memory; mv: MvFn } | undefined {
  try {
    const bytes = Uint8Array.from(atob(MV_WASM), (c) => c.charCodeAt(0));
    if (!WebAssembly.validate(bytes)) return undefined;
    const mem = new WebAssembly.Memory({ initial: Math.ceil((floats * 4 + 64) / 65536) });
    const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { mem } });
    return { mem, mv: inst.exports.mv as unknown as MvFn };
  } catch {
    return undefined;
  }
}

/** out = x / sqrt(mean(x^2) + eps) * w */
function rmsNormInto(x: Float32Array, w: Float32Array, out: Float32Array, eps = 1e-5) {
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += x[i] * x[i];
  const inv = 1 / Math.sqrt(ss / x.length + eps);
  for (let i = 0; i < x.length; i++) out[i] = x[i] * inv * w[i];
}

const siluS = (v: number) => v / (1 + Math.exp(-v));
const softplusS = (v: number) => (v > 20 ? v : Math.log1p(Math.exp(v)));

/** mamba.ts `step` at batch 1 as one JS loop nest over the weights, read once at construction. */
export class MambaStepper implements Stepper {
  private E: Float32Array; // (Vp, d)
  private head: Float32Array; // (Vp, d)
  private normF: Float32Array;
  private layers: LayerWeights[] = [];
  private d!: number;
  private e!: number;
  private n!: number;
  private r!: number;
  private k!: number;
  private Vp!: number;
  // scratch buffers, reused every step
  private h: Float32Array;
  private normed: Float32Array;
  private xz: Float32Array;
  private x: Float32Array;
  private xDbl: Float32Array;
  private dt: Float32Array;
  private y: Float32Array;
  private o: Float32Array;
  private logits: Float32Array;
  private mvSimd?: MvFn;
  /** Whether the matrix-vector products run in WebAssembly SIMD. */
  get simd(): boolean {
    return this.mvSimd !== undefined;
  }

  /** y = W x (+ bias): the SIMD kernel when W, x, y are in its memory and cols % 8 == 0, else JS. */
  private mv(
    W: Float32Array,
    x: Float32Array,
    y: Float32Array,
    rows: number,
    cols: number,
    bias?: Float32Array,
  ) {
    if (this.mvSimd && cols % 8 === 0) {
      this.mvSimd(W.byteOffset, x.byteOffset, y.byteOffset, rows, cols);
      if (bias) { for (let o = 0; o < rows; o++) y[o] += bias[o]; }
    } else matvec(W, x, y, rows, cols, bias);
  }

  /**
   * Reads the weights asynchronously first: the only way on webgpu, whose synchronous reads go through a
   * canvas that Deno does not have.
   */
  static async create(model: MambaLM): Promise<MambaStepper> {
    const weights = new Map<string, Float32Array>();
    for (const [name, v] of model.params) weights.set(name, (await v.data()) as Float32Array);
    return new MambaStepper(model, weights);
  }

  /** `weights`: the parameters already on the host (see `create`); read synchronously otherwise (cpu, wasm). */
  constructor(model: MambaLM, weights?: Map<string, Float32Array>) {
    const cfg = model.config;
    const { d, e, n, r, k, V } = dims(cfg);
    Object.assign(this, { d, e, n, r, k, Vp: V });
    // Every weight and scratch vector is placed in one WebAssembly memory (when SIMD is available), so
    // the SIMD kernel can read them; `place` copies an array in, 16-byte aligned.
    let total = 0;
    for (const v of model.params.values()) total += v.size + 4;
    total += (4 + 8) * (d + 2 * e + r + 2 * n + V) + 64;
    const arena = simdArena(total);
    this.mvSimd = arena?.mv;
    let at = 0;
    const place = (a: Float32Array): Float32Array => {
      if (!arena) return a;
      const view = new Float32Array(arena.mem.buffer, at * 4, a.length);
      view.set(a);
      at += Math.ceil(a.length / 4) * 4;
      return view;
    };
    const get = (name: string) => {
      const p = model.params.get(name);
      if (!p) throw new Error(`MambaStepper: model has no parameter "${name}"`);
      const host = weights?.get(name);
      if (!host && tf.getBackend() === "webgpu") {
        throw new Error("MambaStepper on webgpu: build it with `await MambaStepper.create(model)` (no synchronous reads there)");
      }
      return place(host ?? (p.dataSync() as Float32Array));
    };
    const opt = (name: string) => (model.params.has(name) ? get(name) : undefined);
    this.E = get("backbone.embedding.weight");
    this.head = cfg.tie_embeddings ? this.E : get("lm_head.weight");
    this.normF = get("backbone.norm_f.weight");
    for (let i = 0; i < cfg.n_layer; i++) {
      const p = (s: string) => get(`backbone.layers.${i}.mixer.${s}`);
      const q = (s: string) => opt(`backbone.layers.${i}.mixer.${s}`);
      const Alog = p("A_log");
      this.layers.push({
        norm: get(`backbone.layers.${i}.norm.weight`),
        inProj: p("in_proj.weight"),
        inBias: cfg.ssm_cfg.bias ? q("in_proj.bias") : undefined,
        convW: p("conv1d.weight"), // (e, 1, k) = (e, k)
        convB: cfg.ssm_cfg.conv_bias ? q("conv1d.bias") : undefined,
        xProj: p("x_proj.weight"),
        dtProj: p("dt_proj.weight"),
        dtBias: p("dt_proj.bias"),
        A: Alog.map((v) => -Math.exp(v)),
        D: p("D"),
        outProj: p("out_proj.weight"),
        outBias: cfg.ssm_cfg.bias ? q("out_proj.bias") : undefined,
      });
    }
    this.h = place(new Float32Array(d));
    this.normed = place(new Float32Array(d));
    this.xz = place(new Float32Array(2 * e));
    this.x = place(new Float32Array(e));
    this.xDbl = place(new Float32Array(r + 2 * n));
    this.dt = place(new Float32Array(e));
    this.y = place(new Float32Array(e));
    this.o = place(new Float32Array(d));
    this.logits = place(new Float32Array(V));
  }

  /** Synchronous step (the async `step` wraps it). */
  stepSync(state: HostState, id: number): { logits: Float32Array; state: HostState } {
    const { d, e, n, r, k, Vp } = this;
    if (!(id >= 0 && id < Vp)) {
      throw new Error(`MambaStepper: id ${id} outside the vocabulary (0..${Vp - 1})`);
    }
    const h = this.h,
      normed = this.normed,
      xz = this.xz,
      x = this.x,
      xDbl = this.xDbl,
      dt = this.dt,
      y = this.y;
    h.set(this.E.subarray(id * d, (id + 1) * d)); // (d): the residual stream
    const next: HostState = { conv: [], ssm: [] };
    for (let li = 0; li < this.layers.length; li++) {
      const L = this.layers[li];
      rmsNormInto(h, L.norm, normed);
      this.mv(L.inProj, normed, xz, 2 * e, d, L.inBias); // (2e): x_in = xz[0, e), z = xz[e, 2e)
      // conv window (e, k): shift left by one, append x_in; x = silu(sum_j window[j] w[j] + bias)
      const conv = new Float32Array(e * k), old = state.conv[li];
      for (let c = 0; c < e; c++) {
        const b = c * k;
        let s = L.convB ? L.convB[c] : 0;
        for (let j = 0; j < k - 1; j++) {
          const v = old[b + j + 1];
          conv[b + j] = v;
          s += v * L.convW[b + j];
        }
        conv[b + k - 1] = xz[c];
        s += xz[c] * L.convW[b + k - 1];
        x[c] = siluS(s);
      }
      this.mv(L.xProj, x, xDbl, r + 2 * n, e); // (r + 2n): dt_low, B, C
      // dt = softplus(dt_low @ dt_proj^T + bias)   (e)
      this.mv(L.dtProj, xDbl, dt, e, r, L.dtBias); // reads xDbl[0, r) = dt_low
      for (let c = 0; c < e; c++) dt[c] = softplusS(dt[c]);
      // h_ssm = exp(dt A) h_ssm + dt B x ;  y = <h_ssm, C> + D x ;  y *= silu(z)
      const ssm = new Float32Array(e * n), oldS = state.ssm[li];
      const Bo = r, Co = r + n;
      for (let c = 0; c < e; c++) {
        const b = c * n, dtc = dt[c], dx = dtc * x[c];
        let s = 0;
        for (let j = 0; j < n; j++) {
          const v = oldS[b + j] * Math.exp(dtc * L.A[b + j]) + dx * xDbl[Bo + j];
          ssm[b + j] = v;
          s += v * xDbl[Co + j];
        }
        y[c] = (s + L.D[c] * x[c]) * siluS(xz[e + c]);
      }
      this.mv(L.outProj, y, this.o, d, e, L.outBias);
      for (let i = 0; i < d; i++) h[i] += this.o[i];
      next.conv.push(conv);
      next.ssm.push(ssm);
    }
    rmsNormInto(h, this.normF, normed);
    this.mv(this.head, normed, this.logits, Vp, d);
    return { logits: this.logits.slice(), state: next };
  }

  step(state: HostState, id: number) {
    return Promise.resolve(this.stepSync(state, id));
  }

  /** An all-zero state (before any input). */
  emptyState(): HostState {
    return {
      conv: this.layers.map(() => new Float32Array(this.e * this.k)),
      ssm: this.layers.map(() => new Float32Array(this.e * this.n)),
    };
  }

  dispose() {}
}
