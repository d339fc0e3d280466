/**
 * One-byte (one-token) recurrent steps of a Mamba LM at batch 1, with the state held in host arrays.
 *
 * - `MambaStepper` ("js"): the whole step over Float32Arrays, the weights read from the variables once,
 *   the products and the recurrence in WebAssembly SIMD (scan.wat's decoding kernels; plain JS without
 *   SIMD). At batch 1 a step is ~40 tiny ops per layer; on the cpu/wasm backends each tfjs op costs tens
 *   of microseconds of dispatch, more than its arithmetic, so fusing the step is what makes CPU decoding
 *   fast. The arithmetic is mamba.ts `step`'s, in the same order; `read` runs several ids in one pass.
 * - `TfStepper` ("tf"): mamba.ts `step` on tensors (the right choice on webgpu, where the weights live on
 *   the GPU).
 *
 * The stepper never mutates the state it is given (callers keep old states to roll back).
 */
import * as tf from "@tensorflow/tfjs";
import { dims, disposeState, type MambaLM, type MambaState, step as tfStep } from "../models/mamba.ts";
import { DECODE_MEMORY_FLOATS, type DecodeKernels, decodeKernels, matvec } from "../kernels/mod.ts";
import type { MambaConfig } from "../models/mamba_config.ts";
import { reclaimWebGpuGarbage } from "../backend.ts";

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
    reclaimWebGpuGarbage();
    return { logits, state: next };
  }
  dispose() {}
}

interface LayerWeights {
  /** the memory (segment) holding this layer's weights and the scratch its kernels use */
  seg: number;
  norm: Float32Array; // (d)
  inProj: Float32Array; // (2e, d)
  inBias?: Float32Array; // (2e)
  convW: Float32Array; // (e, k)
  convB?: Float32Array; // (e)
  xProj: Float32Array; // (r + 2n, e)
  dtProj: Float32Array; // (e, r)
  dtBias: Float32Array; // (e)
  A: Float32Array; // (e, n) = -exp(A_log)
  A2: Float32Array; // (e, n) = A log2 e, for the kernel's 2^(dt A2)
  D: Float32Array; // (e)
  outProj: Float32Array; // (d, e)
  outBias?: Float32Array; // (d)
}

/** out = x / sqrt(mean(x^2) + eps) * w */
function rmsNormInto(x: Float32Array, w: Float32Array, out: Float32Array, eps = 1e-5) {
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += x[i] * x[i];
  const inv = 1 / Math.sqrt(ss / x.length + eps);
  for (let i = 0; i < x.length; i++) out[i] = x[i] * inv * w[i];
}

const softplusS = (v: number) => (v > 20 ? v : Math.log1p(Math.exp(v)));

/** What MambaStepper reads: a config and named parameters (a MambaLM's variables, or hostModel's arrays). */
export interface StepperModel {
  config: MambaConfig;
  params: ReadonlyMap<string, { size: number; dataSync(): unknown }>;
}

/**
 * Parameters already on the host (mamba_ssm names) as a StepperModel: for shapes whose TF.js model would
 * only duplicate them (the 972M benchmark's 3.9 GB).
 */
export function hostModel(config: MambaConfig, weights: ReadonlyMap<string, Float32Array>): StepperModel {
  return {
    config,
    params: new Map([...weights].map(([name, a]) => [name, { size: a.length, dataSync: () => a }])),
  };
}

/** Scratch rows for RUN_CHUNK ids, reused by every call: (T, width) row-major; one set per memory. */
interface Scratch {
  h: Float32Array; // (T, d) residual stream
  normed: Float32Array; // (T, d)
  xz: Float32Array; // (T, 2e): x_in, z
  x: Float32Array; // (T, e) conv + silu output
  xDbl: Float32Array; // (T, r + 2n): dt_low, B, C
  dt: Float32Array; // (T, e)
  y: Float32Array; // (T, e)
  o: Float32Array; // (T, d)
  g: Float32Array; // (T, e) sigmoids for the SiLUs
  logits: Float32Array; // (T, Vp)
  hA: Float32Array; // (e, n) running SSM state (ping-pong with hB)
  hB: Float32Array;
}

/** One WebAssembly memory of the stepper, its kernels bound to it, and the scratch placed in it. */
interface Segment {
  kern?: DecodeKernels;
  scratch: Scratch;
}

/** Ids per `run` chunk: the scratch rows (longer reads go chunk by chunk, the state carried). */
const RUN_CHUNK = 64;

/**
 * mamba.ts `step` at batch 1 as one JS loop nest over the weights, read once at construction, with the
 * matrix-vector products and the recurrence in WebAssembly SIMD (scan.wat's decoding kernels) where
 * available. `read` runs several ids in one pass: each weight matrix is streamed once per four ids (mv4)
 * instead of once per id, and the pass keeps the state after every id, so a speculative verifier can take
 * the state after its last accepted byte without re-reading anything. A pass and the same ids stepped one
 * at a time give bit-for-bit the same logits and states (the kernels do identical arithmetic per id).
 */
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
  /**
   * The WebAssembly memories: the layers in order, split where the next would not fit in one memory
   * (DECODE_MEMORY_FLOATS; tests lower it); the embedding, final norm and head in the last. One, holding plain arrays,
   * without WebAssembly SIMD.
   */
  private segs: Segment[] = [];
  /** the segment of the final norm and head, whose scratch holds the logits */
  private headSeg = 0;
  /** Whether the products and the recurrence run in WebAssembly SIMD. */
  get simd(): boolean {
    return this.segs.every((s) => s.kern !== undefined);
  }
  /** How many WebAssembly memories hold the model (1 unless it exceeds one memory). */
  get memories(): number {
    return this.segs.length;
  }
  private get logits(): Float32Array {
    return this.segs[this.headSeg].scratch.logits;
  }

  /**
   * Y (T, rows) = X (T, cols) W^T (+ bias), row t of X starting at t xStride: mv4 over groups of four rows
   * of X, mv for the rest (the plain JS loop without SIMD or when cols % 8 != 0).
   */
  private mm(
    kern: DecodeKernels | undefined,
    W: Float32Array,
    X: Float32Array,
    Y: Float32Array,
    T: number,
    rows: number,
    cols: number,
    bias?: Float32Array,
    xStride = cols,
  ) {
    const xs = xStride * 4, ys = rows * 4;
    if (kern && cols % 8 === 0) {
      let t = 0;
      for (; t + 3 < T; t += 4) {
        kern.mv4(W.byteOffset, X.byteOffset + t * xs, xs, Y.byteOffset + t * ys, ys, rows, cols);
      }
      for (; t < T; t++) kern.mv(W.byteOffset, X.byteOffset + t * xs, Y.byteOffset + t * ys, rows, cols);
    } else {
      for (let t = 0; t < T; t++) {
        matvec(
          W,
          X.subarray(t * xStride, t * xStride + cols),
          Y.subarray(t * rows, (t + 1) * rows),
          rows,
          cols,
        );
      }
    }
    if (bias) { for (let t = 0; t < T; t++) for (let o = 0; o < rows; o++) Y[t * rows + o] += bias[o]; }
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

  /**
   * `weights`: the parameters already on the host (see `create`); read synchronously otherwise (cpu, wasm).
   * `kernels: false` runs plain JS even where WebAssembly SIMD is available (tests compare the two).
   */
  constructor(
    model: StepperModel,
    weights?: Map<string, Float32Array>,
    opts: { kernels?: boolean; memoryFloats?: number } = {},
  ) {
    const cfg = model.config;
    const { d, e, n, r, k, V } = dims(cfg);
    Object.assign(this, { d, e, n, r, k, Vp: V });
    const T = RUN_CHUNK;
    const param = (name: string) => {
      const p = model.params.get(name);
      if (!p) throw new Error(`MambaStepper: model has no parameter "${name}"`);
      return p;
    };
    const floatsOf = (names: string[]) => names.reduce((s, name) => s + param(name).size + 4, 0);
    // Every weight and scratch row of a layer is placed in one WebAssembly memory (when SIMD is available),
    // so the kernels can read them; the layers go in order, a new memory started where the next layer would
    // not fit (the paper's 972M model: 3.9 GB of weights over two memories of 2 GiB)
    const layerNames = (i: number) =>
      [...model.params.keys()].filter((k) => k.startsWith(`backbone.layers.${i}.`));
    const headNames = [...model.params.keys()].filter((k) => !k.startsWith("backbone.layers."));
    const scratchFloats = T * (4 * d + 6 * e + r + 2 * n + V) + 2 * e * n + 12 * 4 + 64;
    const items = [
      ...Array.from({ length: cfg.n_layer }, (_, i) => floatsOf(layerNames(i)) + e * n + 4), // + A2
      floatsOf(headNames),
    ];
    const capacity = (opts.memoryFloats ?? DECODE_MEMORY_FLOATS) - scratchFloats;
    const segOf: number[] = [], segFloats: number[] = [];
    for (const size of items) {
      const last = segFloats.length - 1;
      if (last >= 0 && segFloats[last] + size <= capacity) {
        segFloats[last] += size;
      } else {
        segFloats.push(size);
      }
      segOf.push(segFloats.length - 1);
    }
    const useKernels = opts.kernels !== false && segFloats.every((f) => f <= capacity);
    // a layer larger than one memory: decodeKernels names why and the plain-JS stepper runs
    const kerns = useKernels
      ? segFloats.map((f) => decodeKernels(f + scratchFloats))
      : [opts.kernels === false ? undefined : decodeKernels(Math.max(...segFloats) + scratchFloats)];
    const simd = kerns.every((x) => x !== undefined);
    if (!simd) segOf.fill(0);
    const ats = kerns.map(() => 0);
    const place = (seg: number, a: Float32Array): Float32Array => {
      const kern = simd ? kerns[seg] : undefined;
      if (!kern) return a;
      const view = new Float32Array(kern.mem.buffer, ats[seg] * 4, a.length);
      view.set(a);
      ats[seg] += Math.ceil(a.length / 4) * 4;
      return view;
    };
    const get = (seg: number, name: string) => {
      const p = param(name);
      const host = weights?.get(name);
      if (!host && tf.getBackend() === "webgpu") {
        throw new Error(
          "MambaStepper on webgpu: build it with `await MambaStepper.create(model)` (no synchronous reads there)",
        );
      }
      return place(seg, host ?? (p.dataSync() as Float32Array));
    };
    const opt = (seg: number, name: string) => (model.params.has(name) ? get(seg, name) : undefined);
    this.headSeg = segOf[cfg.n_layer];
    this.E = get(this.headSeg, "backbone.embedding.weight");
    this.head = cfg.tie_embeddings ? this.E : get(this.headSeg, "lm_head.weight");
    this.normF = get(this.headSeg, "backbone.norm_f.weight");
    for (let i = 0; i < cfg.n_layer; i++) {
      const seg = segOf[i];
      const p = (s: string) => get(seg, `backbone.layers.${i}.mixer.${s}`);
      const q = (s: string) => opt(seg, `backbone.layers.${i}.mixer.${s}`);
      const A = p("A_log").map((v) => -Math.exp(v));
      this.layers.push({
        seg,
        norm: get(seg, `backbone.layers.${i}.norm.weight`),
        inProj: p("in_proj.weight"),
        inBias: cfg.ssm_cfg.bias ? q("in_proj.bias") : undefined,
        convW: p("conv1d.weight"), // (e, 1, k) = (e, k)
        convB: cfg.ssm_cfg.conv_bias ? q("conv1d.bias") : undefined,
        xProj: p("x_proj.weight"),
        dtProj: p("dt_proj.weight"),
        dtBias: p("dt_proj.bias"),
        A,
        A2: place(seg, A.map((v) => v * Math.LOG2E)), // the kernel's decay is 2^(dt A log2 e)
        D: p("D"),
        outProj: p("out_proj.weight"),
        outBias: cfg.ssm_cfg.bias ? q("out_proj.bias") : undefined,
      });
    }
    this.segs = (simd ? kerns : [undefined]).map((kern, seg) => {
      const rows = (w: number) => place(seg, new Float32Array(T * w));
      const scratch: Scratch = {
        h: rows(d),
        normed: rows(d),
        xz: rows(2 * e),
        x: rows(e),
        xDbl: rows(r + 2 * n),
        dt: rows(e),
        y: rows(e),
        o: rows(d),
        g: rows(e),
        logits: rows(V),
        hA: place(seg, new Float32Array(e * n)),
        hB: place(seg, new Float32Array(e * n)),
      };
      return { kern, scratch };
    });
  }

  /**
   * Reads ids[0, T) (T <= RUN_CHUNK) from `state`: the logits after each id stay in this.logits (T, Vp);
   * returns the state after each id (`keep` "all") or after the last one only.
   */
  private run(state: HostState, ids: ArrayLike<number>, keep: "all" | "last"): HostState[] {
    const { d, e, n, r, k, Vp } = this;
    const T = ids.length;
    for (let t = 0; t < T; t++) {
      const id = ids[t];
      if (!(Number.isInteger(id) && id >= 0 && id < Vp)) {
        throw new Error(`MambaStepper: id ${id} outside the vocabulary (0..${Vp - 1})`);
      }
    }
    const w = r + 2 * n;
    // the residual stream moves with the layers from memory to memory (T d floats copied at a boundary)
    let seg = this.segs[this.layers.length ? this.layers[0].seg : this.headSeg];
    const moveTo = (next: Segment) => {
      if (next !== seg) next.scratch.h.set(seg.scratch.h.subarray(0, T * d));
      seg = next;
    };
    for (let t = 0; t < T; t++) seg.scratch.h.set(this.E.subarray(ids[t] * d, (ids[t] + 1) * d), t * d); // (T, d)
    const states: HostState[] = Array.from({ length: keep === "all" ? T : 1 }, () => ({ conv: [], ssm: [] }));
    for (let li = 0; li < this.layers.length; li++) {
      const L = this.layers[li];
      moveTo(this.segs[L.seg]);
      const { h, normed, xz, x, xDbl, dt, y, o } = seg.scratch, kern = seg.kern;
      for (let t = 0; t < T; t++) {
        rmsNormInto(h.subarray(t * d, (t + 1) * d), L.norm, normed.subarray(t * d, (t + 1) * d));
      }
      this.mm(kern, L.inProj, normed, xz, T, 2 * e, d, L.inBias); // (T, 2e): x_in = xz[t, 0:e), z = xz[t, e:2e)
      // conv window (e, k), oldest first: shift left by one, append x_in; x = silu(sum_j window[j] w[j] + bias)
      let win = state.conv[li];
      for (let t = 0; t < T; t++) {
        const next = new Float32Array(e * k), xin = t * 2 * e, xt = t * e;
        for (let c = 0; c < e; c++) {
          const b = c * k;
          let s = L.convB ? L.convB[c] : 0;
          for (let j = 0; j < k - 1; j++) {
            const v = win[b + j + 1];
            next[b + j] = v;
            s += v * L.convW[b + j];
          }
          next[b + k - 1] = xz[xin + c];
          s += xz[xin + c] * L.convW[b + k - 1];
          x[xt + c] = s;
        }
        win = next;
        if (keep === "all") states[t].conv.push(next);
      }
      if (keep === "last") states[0].conv.push(win);
      this.silu(seg, x, 0, e, T); // x = silu(conv)
      this.mm(kern, L.xProj, x, xDbl, T, w, e); // (T, r + 2n): dt_low, B, C
      // dt = softplus(dt_low @ dt_proj^T + bias)   (T, e); dt_low = xDbl[t, 0:r)
      this.mm(kern, L.dtProj, xDbl, dt, T, e, r, L.dtBias, w);
      this.softplus(kern, dt, T * e);
      // h = exp(dt A) h + dt B x ;  y = <h, C> + D x ;  y *= silu(z)   (one id after another)
      let hOld = seg.scratch.hA, hNew = seg.scratch.hB;
      hOld.set(state.ssm[li]);
      for (let t = 0; t < T; t++) {
        const xt = t * e, Bo = t * w + r, Co = Bo + n;
        this.ssmStep(
          kern,
          L,
          hOld,
          hNew,
          dt.subarray(xt, xt + e),
          x.subarray(xt, xt + e),
          xDbl.subarray(Bo, Bo + n),
          xDbl.subarray(Co, Co + n),
          y.subarray(xt, xt + e),
        );
        for (let c = 0; c < e; c++) y[xt + c] += L.D[c] * x[xt + c];
        if (keep === "all") states[t].ssm.push(hNew.slice());
        [hOld, hNew] = [hNew, hOld];
      }
      if (keep === "last") states[0].ssm.push(hOld.slice());
      this.silu(seg, xz, e, 2 * e, T, y); // y *= silu(z)
      this.mm(kern, L.outProj, y, o, T, d, e, L.outBias); // (T, d)
      for (let i = 0; i < T * d; i++) h[i] += o[i];
    }
    moveTo(this.segs[this.headSeg]);
    const { h, normed, logits } = seg.scratch;
    for (let t = 0; t < T; t++) {
      rmsNormInto(h.subarray(t * d, (t + 1) * d), this.normF, normed.subarray(t * d, (t + 1) * d));
    }
    this.mm(seg.kern, this.head, normed, logits, T, Vp, d);
    return states;
  }
  /**
   * SiLU of e values per row of X (T rows of `stride` values, starting at column `from`), in place, or,
   * with `into`, multiplied into `into` (T, e) (the gate y *= silu(z)). The vector sigmoid of scan.wat when
   * e % 4 == 0 (the kernels present), else Math.exp.
   */
  private silu(seg: Segment, X: Float32Array, from: number, stride: number, T: number, into?: Float32Array) {
    const e = this.e, g = seg.scratch.g, kern = seg.kern;
    if (kern && e % 4 === 0) {
      for (let t = 0; t < T; t++) {
        kern.map(3, X.byteOffset + (t * stride + from) * 4, g.byteOffset + t * e * 4, e);
      }
    } else {
      for (let t = 0; t < T; t++) {
        for (let c = 0; c < e; c++) g[t * e + c] = 1 / (1 + Math.exp(-X[t * stride + from + c]));
      }
    }
    for (let t = 0; t < T; t++) {
      for (let c = 0; c < e; c++) {
        const v = X[t * stride + from + c] * g[t * e + c];
        if (into) into[t * e + c] *= v;
        else X[t * stride + from + c] = v;
      }
    }
  }

  /** softplus of X[0, count) in place (scan.wat's vector softplus when count % 4 == 0). */
  private softplus(kern: DecodeKernels | undefined, X: Float32Array, count: number) {
    if (kern && count % 4 === 0) kern.map(2, X.byteOffset, X.byteOffset, count);
    else for (let i = 0; i < count; i++) X[i] = softplusS(X[i]);
  }

  /** s[c] = <h[c], C> after h = exp(dt A) hOld + (dt x) B, for one id (the kernel, or the same in JS). */
  private ssmStep(
    kern: DecodeKernels | undefined,
    L: LayerWeights,
    hOld: Float32Array,
    hNew: Float32Array,
    dt: Float32Array,
    x: Float32Array,
    B: Float32Array,
    C: Float32Array,
    s: Float32Array,
  ) {
    const { e, n } = this;
    if (kern && n % 4 === 0) {
      kern.ssmStep(
        hOld.byteOffset,
        hNew.byteOffset,
        L.A2.byteOffset,
        dt.byteOffset,
        x.byteOffset,
        B.byteOffset,
        C.byteOffset,
        s.byteOffset,
        e,
        n,
      );
      return;
    }
    for (let c = 0; c < e; c++) {
      const b = c * n, dtc = dt[c], dx = dtc * x[c];
      let acc = 0;
      for (let j = 0; j < n; j++) {
        const v = hOld[b + j] * Math.exp(dtc * L.A[b + j]) + dx * B[j];
        hNew[b + j] = v;
        acc += v * C[j];
      }
      s[c] = acc;
    }
  }

  /** One id from `state` (never mutated): the logits (padded vocabulary) and the new state. */
  stepSync(state: HostState, id: number): { logits: Float32Array; state: HostState } {
    const [next] = this.run(state, [id], "last");
    return { logits: this.logits.slice(0, this.Vp), state: next };
  }

  step(state: HostState, id: number) {
    return Promise.resolve(this.stepSync(state, id));
  }

  /**
   * Reads ids in one pass from `state` (never mutated): logits (T, Vp) row-major, and the state after
   * every id (`keep` "all": what a verifier rolls back to) or after the last one only (a prefill). Equal
   * bit for bit to stepping through the ids one at a time.
   */
  read(
    state: HostState,
    ids: ArrayLike<number>,
    keep: "all" | "last" = "all",
  ): { logits: Float32Array; states: HostState[] } {
    if (ids.length === 0) throw new Error("MambaStepper.read: no ids");
    const all = Array.from(ids), Vp = this.Vp;
    const logits = new Float32Array(all.length * Vp);
    const states: HostState[] = [];
    let s = state;
    for (let a = 0; a < all.length; a += RUN_CHUNK) {
      const part = all.slice(a, a + RUN_CHUNK);
      const got = this.run(s, part, keep);
      logits.set(this.logits.subarray(0, part.length * Vp), a * Vp);
      s = got[got.length - 1];
      if (keep === "all") states.push(...got);
    }
    if (keep === "last") states.push(s);
    return { logits, states };
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
