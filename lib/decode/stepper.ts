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
import {
  DECODE_MEMORY_FLOATS,
  DECODE_THREAD_KERNELS,
  DecodeFn,
  type DecodeKernels,
  decodeKernels,
  decodeKernelsUnavailable,
  formatFits,
  kernelModules,
  KernelThreads,
  matvec,
  matvecBf16,
  matvecQ8,
  plainStepperInstead,
  Q8_BLOCK,
  quantizeQ8,
  quantizeX16,
  splitAligned,
  threadCount,
  toBf16,
  WEIGHT_FORMATS,
  type WeightFormat,
} from "../kernels/mod.ts";
import type { MambaConfig } from "../models/mamba_config.ts";
import { reclaimWebGpuGarbage } from "../backend.ts";
import { ThreadTuner } from "./thread_tuner.ts";

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
export function createStepper(model: MambaLM, kind?: "js" | "tf", opts: StepperOptions = {}): Stepper {
  const k = kind ?? defaultStepperKind();
  return k === "js"
    ? new MambaStepper(model, undefined, { ...opts, weights: opts.weights ?? model.decodeWeights })
    : new TfStepper(model);
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

/**
 * A weight matrix (rows, cols) in the stepper's format: float32, bfloat16 bits, or int8 with a float32
 * scale per row and block of Q8_BLOCK columns (decode.ts). In a WebAssembly memory where the kernels run.
 */
interface Matrix {
  format: WeightFormat;
  rows: number;
  cols: number;
  f32?: Float32Array;
  bf16?: Uint16Array;
  q?: Int8Array;
  scales?: Float32Array;
}

interface LayerWeights {
  /** the memory (segment) holding this layer's weights and the scratch its kernels use */
  seg: number;
  norm: Float32Array; // (d)
  inProj: Matrix; // (2e, d)
  inBias?: Float32Array; // (2e)
  convW: Float32Array; // (e, k)
  convB?: Float32Array; // (e)
  xProj: Matrix; // (r + 2n, e)
  dtProj: Matrix; // (e, r)
  dtBias: Float32Array; // (e)
  A: Float32Array; // (e, n) = -exp(A_log)
  A2: Float32Array; // (e, n) = A log2 e, for the kernel's 2^(dt A2)
  D: Float32Array; // (e)
  outProj: Matrix; // (d, e)
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

/** MambaStepper's options (see its constructor). */
export interface StepperOptions {
  kernels?: boolean;
  memoryFloats?: number;
  weights?: WeightFormat;
  threads?: number;
  fused?: boolean;
}

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
  xq: Int16Array; // (T, max(d, e)) an int8 product's input rounded to int16
  xScale: Float32Array; // (T) its scales
  convWindow: Float32Array; // (e, k): a prefill's conv windows, for convRows
  packed: Float32Array; // a panel of 8 rows of a float32 matrix per thread, packed by the prefill's GEMM
  gemmParams: Int32Array; // the GEMM's parameter block
}

/** One WebAssembly memory of the stepper, its kernels bound to it, and the scratch placed in it. */
interface Segment {
  /** its index among the stepper's memories (the thread gang's memory index) */
  index: number;
  kern?: DecodeKernels;
  scratch: Scratch;
  /** the plan of its layers for step.wat's one-dispatch step (set where that step can run) */
  plan?: StepPlan;
}

/**
 * A memory's layers as step.wat's `stepLayers` reads them: the plan's words (addresses and sizes, laid out
 * as step.wat's header says), and each layer's conv window (e, k) and state (e, n), which a step updates in
 * place between copying the caller's state in and a new state out.
 */
interface StepPlan {
  words: Int32Array;
  /** the barrier's two words (arrivals, generation) */
  barrier: Int32Array;
  layers: number[];
  windows: Float32Array[];
  states: Float32Array[];
}
/** Words of step.wat's plan header and of each layer's record. */
const PLAN_HEADER = 24, PLAN_LAYER = 22;

/**
 * Ids per `run` chunk: the scratch rows (longer reads go chunk by chunk, the state carried). A multiple of 6
 * (the GEMM's row tiles write whole tiles) and of 4 (mv4). A prefill reads every weight matrix once per
 * chunk, so longer chunks read less often: chunks of 256 against 96 read a 2,048-byte prompt 12% faster at
 * d768x24 and 23% at d256x4, and the 972M shape's 128-byte prompt in one chunk instead of two (+15%)
 * (scratch timings, 2 threads, when the GEMM still packed whole matrices; the bench's records are the
 * measurement).
 */
export const RUN_CHUNK = 264;
/**
 * A prefill (`read` keeping only the last state) of at least this many ids computes its float32 products
 * with the blocked GEMM of matmul.wat (each panel of 8 weight rows packed in cache, then reused across
 * the chunk's ids) instead of mv4 (each weight reused by four ids).
 */
const GEMM_MIN_IDS = 24;
/**
 * Elementwise work (the gates' sigmoid, softplus) counted as this many multiply-adds per value when deciding
 * whether to split it over the threads (SPLIT_WORK): a vector exp costs about that much.
 */
const ELEMENTWISE_COST = 16;

/**
 * Multiply-adds below which a product runs on one thread: waking a worker and waiting for it costs 3-6 us
 * (measured on 2 cores), which a product of 65K multiply-adds (about 8 us on one thread) pays back: d256's
 * decoding step took 319 us split from 2^16 up, 336 us from 2^18 up.
 */
const SPLIT_WORK = 1 << 16;
/** A state element of the recurrence costs about as much as this many multiply-adds (the exp2 polynomial). */
const STATE_WORK = 32;
/** Rows of a split product start at multiples of this (each thread writes whole cache lines of y). */
const SPLIT_ALIGN = 16;

/** Ends a dropped stepper's threads (dispose() does it at once). */
const gangs = new FinalizationRegistry<KernelThreads>((g) => g.close());

/** Bytes of a (rows, cols) matrix stored in `format`. */
export function matrixBytes(format: WeightFormat, rows: number, cols: number): number {
  if (format === "int8") return rows * cols + rows * cols / Q8_BLOCK * 4;
  return rows * cols * (format === "bf16" ? 2 : 4);
}

/**
 * mamba.ts `step` at batch 1 as one JS loop nest over the weights, read once at construction, with the
 * matrix-vector products and the recurrence in WebAssembly SIMD (scan.wat's decoding kernels) where
 * available. `read` runs several ids in one pass: each weight matrix is streamed once per four ids (mv4)
 * instead of once per id, and the pass keeps the state after every id, so a speculative verifier can take
 * the state after its last accepted byte without re-reading anything. Such a pass and the same ids stepped
 * one at a time give bit-for-bit the same logits and states (the kernels do identical arithmetic per id).
 * A prefill (`keep` "last", at least GEMM_MIN_IDS ids) computes its float32 products with a GEMM instead:
 * equal to the steps up to rounding.
 *
 * Threads: each product (and the recurrence) is split by rows over up to `threads` threads (default
 * MAMBABYTE_THREADS, else every logical CPU; lib/kernels/wasm/threads.ts); every row is computed exactly as
 * on one thread, so the results do not depend on the thread count. Weights: `weights` "bf16" or "int8"
 * store the products' matrices compressed (decode.ts WEIGHT_FORMATS): a step streams 2x or 3.8x fewer bytes;
 * a matrix whose columns the format's kernel cannot take stays float32 (`formats` says which).
 */
export class MambaStepper implements Stepper {
  private E: Float32Array; // (Vp, d)
  private head!: Matrix; // (Vp, d)
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
  /** the threads the products are split over (undefined without the kernels) */
  private gang?: KernelThreads;
  /** The conv windows a read that keeps only its last state alternates between (e, k each). */
  private convWindows!: [Float32Array, Float32Array];
  /** Picks the one-dispatch step's thread count from its timings (fewer when other processes want cores). */
  private tuner?: ThreadTuner;
  /** The state last updated in place by `advance` while the plans' windows and states still hold it. */
  private resident?: HostState;
  /** set while a prefill (keep "last") runs: float32 products of enough ids go through the GEMM */
  private blocked = false;
  /** The weight format asked for. */
  readonly format: WeightFormat;
  /**
   * Bytes of the weights a step reads: every matrix (in its format) and vector once, one row of the
   * embedding (all of it when it is also the float32 head, which the head counts).
   */
  readonly weightBytes: number;
  /** Whether the products and the recurrence run in WebAssembly SIMD. */
  get simd(): boolean {
    return this.segs.every((s) => s.kern !== undefined);
  }
  /**
   * Whether a step runs as one dispatch per memory (step.wat's `stepLayers` on every thread at once): with
   * the kernels, in every weight format, for widths the kernels take whole (d and dt_rank multiples of 8,
   * d_inner of 16, d_state of 4, 4 taps).
   */
  get fused(): boolean {
    return this.segs[0]?.plan !== undefined;
  }
  /** Layers in each WebAssembly memory, in order (the last memory also holds the embedding and head). */
  get memoryLayers(): number[] {
    return this.segs.map((s) => this.layers.filter((L) => L.seg === s.index).length);
  }
  /** How many WebAssembly memories hold the model (1 unless it exceeds one memory). */
  get memories(): number {
    return this.segs.length;
  }
  /** The threads a product may be split over (1 without the kernels, or once workers failed to start). */
  get threads(): number {
    return this.gang?.usable ?? 1;
  }
  /** How many of the matrices are stored in each format ({"int8": 96, "f32": 49}, say). */
  get formats(): Record<string, number> {
    const count: Record<string, number> = {};
    for (const M of this.matrices()) {
      count[M.format] = (count[M.format] ?? 0) + 1;
    }
    return count;
  }
  /** Every weight matrix of the products: each layer's four, then the head. */
  private matrices(): Matrix[] {
    return [...this.layers.flatMap((L) => [L.inProj, L.xProj, L.dtProj, L.outProj]), this.head];
  }
  private get logits(): Float32Array {
    return this.segs[this.headSeg].scratch.logits;
  }

  /**
   * Ranges of `units` (rows of a product, or the GEMM's panels and tiles with align 1) that a product of
   * `work` multiply-adds is split into: one without threads or below SPLIT_WORK.
   */
  private parts(units: number, work: number, align = SPLIT_ALIGN): [number, number][] {
    const t = this.gang?.usable ?? 1;
    return t > 1 && work >= SPLIT_WORK ? splitAligned(units, t, align) : [[0, units]];
  }

  /**
   * Y (T, rows) = X (T, cols) M^T (+ bias), row t of X starting at t xStride: a prefill's float32 products
   * of enough ids by the GEMM, everything else by `mv`.
   */
  private mm(
    seg: Segment,
    M: Matrix,
    X: Float32Array,
    Y: Float32Array,
    T: number,
    bias?: Float32Array,
    xStride = M.cols,
  ) {
    const { rows, cols, format } = M;
    if (this.blocked && format === "f32" && seg.kern && this.gang && rows % 8 === 0 && T >= GEMM_MIN_IDS) {
      this.gemm(seg, M.f32!, X, Y, T, rows, cols, xStride);
    } else {
      this.mv(seg, M, X, Y, T, xStride);
    }
    if (bias) { for (let t = 0; t < T; t++) for (let o = 0; o < rows; o++) Y[t * rows + o] += bias[o]; }
  }

  /**
   * mm's products by the 4-vector kernel over groups of four rows of X and the 1-vector one for the rest,
   * each split by rows of M over the threads; the plain-JS twins without SIMD or when cols % 8 != 0. int8:
   * X's rows are rounded to int16 first, Y scaled back after.
   */
  private mv(seg: Segment, M: Matrix, X: Float32Array, Y: Float32Array, T: number, xStride: number) {
    const { rows, cols, format } = M;
    const { xq, xScale } = seg.scratch;
    if (format === "int8") {
      for (let t = 0; t < T; t++) {
        xScale[t] = quantizeX16(X.subarray(t * xStride), xq.subarray(t * cols), cols);
      }
    }
    const ys = rows * 4;
    if (seg.kern && this.gang && cols % 8 === 0) {
      const g = this.gang, parts = this.parts(rows, T * rows * cols);
      const xs = format === "int8" ? cols * 2 : xStride * 4;
      const x0 = format === "int8" ? xq.byteOffset : X.byteOffset;
      // per format: the kernels, W's address of row a, the 4-vector and 1-vector arguments before (y, ...)
      let one: number, four: number, w: (a: number) => number[];
      if (format === "int8") {
        [one, four] = [DecodeFn.mvQ8, DecodeFn.mv4Q8];
        w = (a) => [M.q!.byteOffset + a * cols, M.scales!.byteOffset + a * cols / Q8_BLOCK * 4];
      } else if (format === "bf16") {
        [one, four] = [DecodeFn.mvBf16, DecodeFn.mv4Bf16];
        w = (a) => [M.bf16!.byteOffset + a * cols * 2];
      } else {
        [one, four] = [DecodeFn.mv, DecodeFn.mv4];
        w = (a) => [M.f32!.byteOffset + a * cols * 4];
      }
      const y0 = Y.byteOffset;
      let t = 0;
      for (; t + 3 < T; t += 4) {
        g.run(
          seg.index,
          four,
          parts.map(([a, b]) => [...w(a), x0 + t * xs, xs, y0 + t * ys + a * 4, ys, b - a, cols]),
        );
      }
      for (; t < T; t++) {
        g.run(
          seg.index,
          one,
          parts.map(([a, b]) => [...w(a), x0 + t * xs, y0 + t * ys + a * 4, b - a, cols]),
        );
      }
    } else {
      for (let t = 0; t < T; t++) {
        const y = Y.subarray(t * rows, (t + 1) * rows);
        if (format === "int8") matvecQ8(M.q!, M.scales!, xq.subarray(t * cols), y, rows, cols);
        else if (format === "bf16") matvecBf16(M.bf16!, X.subarray(t * xStride), y, rows, cols);
        else matvec(M.f32!, X.subarray(t * xStride, t * xStride + cols), y, rows, cols);
      }
    }
    if (format === "int8") {
      for (let t = 0; t < T; t++) for (let o = 0; o < rows; o++) Y[t * rows + o] *= xScale[t];
    }
  }

  /**
   * Y (T, rows) = X (T, cols) W^T by matmul.wat's blocked GEMM (`gemmPanels`): the threads split W's panels
   * of 8 rows; each thread packs a panel into its own slice of the scratch (it stays in cache), then runs
   * every tile of 6 ids against it. Rows of Y past T, up to a multiple of 6, get padding results (the
   * scratch holds RUN_CHUNK rows). Fused multiply-adds and another order of sums than mv: not bit for bit
   * a step's.
   */
  private gemm(
    seg: Segment,
    W: Float32Array,
    X: Float32Array,
    Y: Float32Array,
    T: number,
    rows: number,
    cols: number,
    xStride: number,
  ) {
    const g = this.gang!, { packed, gemmParams } = seg.scratch;
    // A = X (rows xStride floats apart, 6-row tiles), W (rows, cols), C = Y (T rows, rows floats apart)
    gemmParams.set([
      X.byteOffset,
      xStride * 4,
      4,
      W.byteOffset,
      cols,
      Y.byteOffset,
      rows * 4,
      rows,
      24 * xStride,
      0,
      Math.ceil(T / 6),
    ]);
    const jobs = this.parts(rows / 8, T * rows * cols, 1).map(([a, b], i) => [
      gemmParams.byteOffset,
      a,
      b,
      packed.byteOffset + i * 8 * cols * 4, // this thread's packed panel
    ]);
    g.run(seg.index, DecodeFn.gemmPanels, jobs);
  }

  /**
   * Reads the weights asynchronously first: the only way on webgpu, whose synchronous reads go through a
   * canvas that Deno does not have.
   */
  static async create(model: MambaLM, opts: StepperOptions = {}): Promise<MambaStepper> {
    const weights = new Map<string, Float32Array>();
    for (const [name, v] of model.params) weights.set(name, (await v.data()) as Float32Array);
    return new MambaStepper(model, weights, opts);
  }

  /**
   * `weights`: the parameters already on the host (see `create`); read synchronously otherwise (cpu, wasm).
   * Options: `kernels: false` runs plain JS even where WebAssembly SIMD is available (tests compare the
   * two); `memoryFloats` lowers the size of one memory (tests of the split); `weights` the matrices'
   * format; `threads` the most threads a product is split over; `fused: false` runs a step phase by phase
   * from JavaScript even where step.wat's one-dispatch step can (tests compare the two).
   */
  constructor(model: StepperModel, weights?: Map<string, Float32Array>, opts: StepperOptions = {}) {
    const cfg = model.config;
    const { d, e, n, r, k, V } = dims(cfg);
    this.convWindows = [new Float32Array(e * k), new Float32Array(e * k)];
    Object.assign(this, { d, e, n, r, k, Vp: V });
    const format = opts.weights ?? "f32";
    if (!WEIGHT_FORMATS.includes(format)) {
      throw new Error(`weights: expected one of ${WEIGHT_FORMATS.join(", ")}, got "${format}"`);
    }
    this.format = format;
    const T = RUN_CHUNK;
    const param = (name: string) => {
      const p = model.params.get(name);
      if (!p) throw new Error(`MambaStepper: model has no parameter "${name}"`);
      return p;
    };
    // the products' matrices by name suffix: (rows, cols)
    const matrixShapes: Record<string, [number, number]> = {
      "mixer.in_proj.weight": [2 * e, d],
      "mixer.x_proj.weight": [r + 2 * n, e],
      "mixer.dt_proj.weight": [e, r],
      "mixer.out_proj.weight": [d, e],
      "lm_head.weight": [V, d],
    };
    const formatOf = (cols: number): WeightFormat => (formatFits(format, cols) ? format : "f32");
    const shapeOf = (name: string) => Object.entries(matrixShapes).find(([s]) => name.endsWith(s))?.[1];
    const bytesOf = (name: string) => {
      const shape = shapeOf(name);
      return (shape ? matrixBytes(formatOf(shape[1]), ...shape) : param(name).size * 4) + 64;
    };
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    // Every weight and scratch row of a layer is placed in one WebAssembly memory (when SIMD is available),
    // so the kernels can read them; the layers go in order, a new memory started where the next layer would
    // not fit (the paper's 972M model: 3.9 GB of float32 weights over two memories of 2 GiB)
    const layerNames = (i: number) =>
      [...model.params.keys()].filter((k) => k.startsWith(`backbone.layers.${i}.`));
    const headNames = [...model.params.keys()].filter((k) => !k.startsWith("backbone.layers."));
    const tiedCopy = cfg.tie_embeddings && formatOf(d) !== "f32"; // the head compressed beside the embedding
    // the prefill's GEMM packs a panel of 8 rows of a float32 matrix per thread: room for the widest
    const threads = opts.threads ?? threadCount();
    const packFloats = threads * 8 * Math.max(
      0,
      ...Object.values(matrixShapes).filter(([rows, cols]) => formatOf(cols) === "f32" && rows % 8 === 0)
        .map(([, cols]) => cols),
    );
    const scratchBytes = 4 * (T * (4 * d + 6 * e + r + 2 * n + V + 1) + 2 * e * n + e * k + packFloats + 16) +
      2 * T * Math.max(d, e) + 19 * 64 + 4 * (PLAN_HEADER + PLAN_LAYER * cfg.n_layer) + 2 * 64;
    const items = [
      // + A2, and the one-dispatch step's conv window and state
      ...Array.from(
        { length: cfg.n_layer },
        (_, i) => sum(layerNames(i).map(bytesOf)) + 4 * e * n + 64 + 4 * (e * k + e * n) + 2 * 64,
      ),
      sum(headNames.map(bytesOf)) + (tiedCopy ? matrixBytes(formatOf(d), V, d) + 64 : 0),
    ];
    const capacity = (opts.memoryFloats ?? DECODE_MEMORY_FLOATS) * 4 - scratchBytes;
    const segOf: number[] = [], segBytes: number[] = [];
    for (const size of items) {
      const last = segBytes.length - 1;
      if (last >= 0 && segBytes[last] + size <= capacity) {
        segBytes[last] += size;
      } else {
        segBytes.push(size);
      }
      segOf.push(segBytes.length - 1);
    }
    const floats = (bytes: number) => Math.ceil((bytes + scratchBytes) / 4);
    const useKernels = opts.kernels !== false && segBytes.every((f) => f <= capacity);
    // a layer larger than one memory: no memory is made, and the plain-JS stepper runs, saying why (the
    // kernels' own limit, or a lowered memoryFloats, a test's)
    const largest = Math.max(...segBytes);
    const kerns = useKernels ? segBytes.map((b) => decodeKernels(floats(b))) : [
      opts.kernels === false ? undefined : plainStepperInstead(
        decodeKernelsUnavailable(floats(largest)) ??
          `a layer needs ${largest} bytes, more than a memory of ${capacity} holds (memoryFloats)`,
      ),
    ];
    const simd = kerns.every((x) => x !== undefined);
    if (!simd) segOf.fill(0);
    const tops = kerns.map(() => 0);
    const place = <A extends Float32Array | Uint16Array | Int16Array | Int8Array | Int32Array>(
      seg: number,
      a: A,
    ): A => {
      const kern = simd ? kerns[seg] : undefined;
      if (!kern) return a;
      const view = new (a.constructor as new (b: ArrayBufferLike, at: number, n: number) => A)(
        kern.mem.buffer,
        tops[seg],
        a.length,
      );
      view.set(a as never);
      tops[seg] += Math.ceil(a.byteLength / 64) * 64;
      return view;
    };
    /** n zero floats of memory `seg`, placed like `place` without a host copy to start from */
    const region = (seg: number, n: number) => {
      const view = new Float32Array(kerns[seg]!.mem.buffer, tops[seg], n);
      tops[seg] += Math.ceil(n * 4 / 64) * 64;
      return view;
    };
    const host = (name: string) => {
      const p = param(name);
      const have = weights?.get(name);
      if (!have && tf.getBackend() === "webgpu") {
        throw new Error(
          "MambaStepper on webgpu: build it with `await MambaStepper.create(model)` (no synchronous reads there)",
        );
      }
      return have ?? (p.dataSync() as Float32Array);
    };
    const get = (seg: number, name: string) => place(seg, host(name));
    const opt = (seg: number, name: string) => (model.params.has(name) ? get(seg, name) : undefined);
    const matrix = (
      seg: number,
      a: Float32Array,
      rows: number,
      cols: number,
      placed?: Float32Array,
    ): Matrix => {
      const f = formatOf(cols);
      if (f === "bf16") return { format: f, rows, cols, bf16: place(seg, toBf16(a)) };
      if (f === "int8") {
        const { q, scales } = quantizeQ8(a, rows, cols);
        return { format: f, rows, cols, q: place(seg, q), scales: place(seg, scales) };
      }
      return { format: f, rows, cols, f32: placed ?? place(seg, a) };
    };
    this.headSeg = segOf[cfg.n_layer];
    this.E = get(this.headSeg, "backbone.embedding.weight");
    this.head = cfg.tie_embeddings
      ? matrix(this.headSeg, host("backbone.embedding.weight"), V, d, this.E)
      : matrix(this.headSeg, host("lm_head.weight"), V, d);
    this.normF = get(this.headSeg, "backbone.norm_f.weight");
    for (let i = 0; i < cfg.n_layer; i++) {
      const seg = segOf[i];
      const name = (s: string) => `backbone.layers.${i}.mixer.${s}`;
      const p = (s: string) => get(seg, name(s));
      const q = (s: string) => opt(seg, name(s));
      const m = (s: string) => matrix(seg, host(name(s)), ...shapeOf(name(s))!);
      const A = host(name("A_log")).map((v) => -Math.exp(v));
      this.layers.push({
        seg,
        norm: get(seg, `backbone.layers.${i}.norm.weight`),
        inProj: m("in_proj.weight"),
        inBias: cfg.ssm_cfg.bias ? q("in_proj.bias") : undefined,
        convW: p("conv1d.weight"), // (e, 1, k) = (e, k)
        convB: cfg.ssm_cfg.conv_bias ? q("conv1d.bias") : undefined,
        xProj: m("x_proj.weight"),
        dtProj: m("dt_proj.weight"),
        dtBias: p("dt_proj.bias"),
        A,
        A2: place(seg, A.map((v) => v * Math.LOG2E)), // the kernel's decay is 2^(dt A log2 e)
        D: p("D"),
        outProj: m("out_proj.weight"),
        outBias: cfg.ssm_cfg.bias ? q("out_proj.bias") : undefined,
      });
    }
    const vectors = (...vs: (Float32Array | undefined)[]) => sum(vs.map((v) => (v ? v.byteLength : 0)));
    this.weightBytes = sum(this.matrices().map((m) => matrixBytes(m.format, m.rows, m.cols))) +
      vectors(this.normF) + 4 * d +
      sum(
        this.layers.map((L) => vectors(L.norm, L.inBias, L.convW, L.convB, L.dtBias, L.A2, L.D, L.outBias)),
      );
    this.segs = (simd ? kerns : [undefined]).map((kern, index) => {
      const rows = (w: number) => place(index, new Float32Array(T * w));
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
        hA: place(index, new Float32Array(e * n)),
        hB: place(index, new Float32Array(e * n)),
        xq: place(index, new Int16Array(T * Math.max(d, e))),
        xScale: place(index, new Float32Array(T)),
        packed: simd ? region(index, packFloats) : new Float32Array(0),
        convWindow: place(index, new Float32Array(e * k)),
        gemmParams: place(index, new Int32Array(16)),
      };
      return { index, kern, scratch };
    });
    if (simd) {
      this.gang = new KernelThreads(
        kernelModules(),
        kerns.map((k) => k!.mem),
        DECODE_THREAD_KERNELS,
        threads,
      );
      gangs.register(this, this.gang, this);
      const fusable = k === 4 && n % 4 === 0 && e % 16 === 0 && d % 8 === 0 && r % 8 === 0;
      if (opts.fused !== false && fusable) this.planSteps(place, region);
    }
  }

  /**
   * Writes each memory's plan for step.wat's `stepLayers` (the layout its header gives): the addresses of
   * the layers' weights, of the scratch rows and of a conv window and a state per layer placed here.
   */
  private planSteps(
    place: (seg: number, a: Int32Array) => Int32Array,
    region: (seg: number, n: number) => Float32Array,
  ) {
    const { d, e, n, r, k, Vp } = this;
    const at = (a?: { byteOffset: number }) => (a ? a.byteOffset : -1);
    // a matrix's three words: weights, format (0 float32, 1 bfloat16, 2 int8), int8 scales
    const matrix = (M: Matrix) =>
      M.format === "int8"
        ? [M.q!.byteOffset, 2, M.scales!.byteOffset]
        : M.format === "bf16"
        ? [M.bf16!.byteOffset, 1, 0]
        : [M.f32!.byteOffset, 0, 0];
    for (const seg of this.segs) {
      const layers = this.layers.flatMap((L, i) => (L.seg === seg.index ? [i] : []));
      const plan: StepPlan = {
        words: place(seg.index, new Int32Array(PLAN_HEADER + PLAN_LAYER * layers.length)),
        barrier: place(seg.index, new Int32Array(16)).subarray(0, 2), // a cache line of its own
        layers,
        windows: layers.map(() => region(seg.index, e * k)),
        states: layers.map(() => region(seg.index, e * n)),
      };
      const { h, normed, xz, x, xDbl, dt, y, o, logits, xq } = seg.scratch;
      const hasHead = seg.index === this.headSeg;
      const words = [
        ...[layers.length, d, e, n, r, plan.barrier.byteOffset],
        ...[h, normed, xz, x, xDbl, dt, y, o].map((a) => a.byteOffset),
        ...(hasHead
          ? [1, this.normF.byteOffset, ...matrix(this.head), Vp, logits.byteOffset]
          : [0, 0, 0, 0, 0, 0, 0]),
        ...[xq.byteOffset, Math.max(d, e), 0], // each thread's row of xq: an int8 product's input
        ...layers.flatMap((i, j) => {
          const L = this.layers[i];
          return [
            ...[L.norm.byteOffset, ...matrix(L.inProj), at(L.inBias), L.convW.byteOffset, at(L.convB)],
            ...[
              ...matrix(L.xProj),
              ...matrix(L.dtProj),
              L.dtBias.byteOffset,
              L.A2.byteOffset,
              L.D.byteOffset,
            ],
            ...[...matrix(L.outProj), at(L.outBias), plan.windows[j].byteOffset, plan.states[j].byteOffset],
          ];
        }),
      ];
      if (words.length !== plan.words.length) {
        throw new Error(`step plan: ${words.length} words, not ${plan.words.length}`);
      }
      plan.words.set(words);
      seg.plan = plan;
    }
  }

  /**
   * One id as one dispatch per memory (step.wat's `stepLayers` on every thread at once): the caller's
   * state copied into the plans' windows and states (unless they hold it already: `resident`), the new
   * state copied out, into new arrays or, with `into`, into its arrays. The same logits and state as
   * `run`'s phase-by-phase step, bit for bit.
   */
  private stepFused(
    state: HostState,
    id: number,
    into?: HostState,
  ): { logits: Float32Array; state: HostState } {
    const { d, Vp } = this, g = this.gang!;
    this.checkId(id);
    const next: HostState = into ?? { conv: [], ssm: [] };
    const copyIn = state !== this.resident; // `resident` is what the plans' windows and states hold
    this.resident = undefined; // the plans' windows and states are about to change
    // the tuner's thread count (each thread normalizes into its own row of `normed`: at most RUN_CHUNK);
    // every rank must run at once (they meet at barriers): workers that cannot start leave one rank
    this.tuner ??= new ThreadTuner(Math.min(g.usable, RUN_CHUNK));
    let ranks = this.tuner.next();
    if (ranks > 1 && !g.start(ranks - 1)) ranks = 1;
    const t0 = performance.now();
    let from = this.E.subarray(id * d, (id + 1) * d);
    for (const seg of this.segs) {
      const plan = seg.plan!;
      seg.scratch.h.set(from);
      if (copyIn) {
        plan.layers.forEach((li, j) => {
          plan.windows[j].set(state.conv[li]);
          plan.states[j].set(state.ssm[li]);
        });
      }
      plan.barrier.fill(0); // arrivals and generation: a step that trapped part way leaves them set
      const words = plan.words.byteOffset;
      g.run(seg.index, DecodeFn.stepLayers, Array.from({ length: ranks }, (_, rank) => [words, rank, ranks]));
      plan.layers.forEach((li, j) => {
        if (into) {
          next.conv[li].set(plan.windows[j]);
          next.ssm[li].set(plan.states[j]);
        } else {
          next.conv[li] = plan.windows[j].slice();
          next.ssm[li] = plan.states[j].slice();
        }
      });
      from = seg.scratch.h.subarray(0, d);
    }
    this.tuner.record(ranks, performance.now() - t0);
    if (into) this.resident = into;
    return { logits: this.logits.slice(0, Vp), state: next };
  }

  /**
   * One id from `state`, updating it in place: its arrays then hold the state after `id` (the caller hands
   * the state over for the call and must not write its arrays). Returns the logits (padded vocabulary). The
   * same numbers as `stepSync`, without allocating a state: on the one-dispatch path the windows and states
   * also stay in the stepper's memory, so the next `advance` of the same state copies nothing in (at the
   * 972M shape a state is 13.8 MB, and copying it out into new arrays took 2-9 ms of a 126 ms step).
   */
  advance(state: HostState, id: number): Float32Array {
    if (this.fused) return this.stepFused(state, id, state).logits;
    const r = this.stepSync(state, id);
    state.conv.forEach((a, l) => a.set(r.state.conv[l]));
    state.ssm.forEach((a, l) => a.set(r.state.ssm[l]));
    return r.logits;
  }

  /**
   * Reads ids[0, T) (T <= RUN_CHUNK) from `state`: the logits after each id stay in this.logits (T, Vp);
   * returns the state after each id (`keep` "all") or after the last one only.
   */
  private run(state: HostState, ids: ArrayLike<number>, keep: "all" | "last"): HostState[] {
    this.blocked = keep === "last";
    try {
      return this.runChunk(state, ids, keep);
    } finally {
      this.blocked = false;
    }
  }

  /** Throws unless `id` is an id of the (padded) vocabulary. */
  private checkId(id: number) {
    if (!(Number.isInteger(id) && id >= 0 && id < this.Vp)) {
      throw new Error(`MambaStepper: id ${id} outside the vocabulary (0..${this.Vp - 1})`);
    }
  }

  private runChunk(state: HostState, ids: ArrayLike<number>, keep: "all" | "last"): HostState[] {
    const { d, e, n, r, k } = this;
    const T = ids.length;
    for (let t = 0; t < T; t++) this.checkId(ids[t]);
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
      this.mm(seg, L.inProj, normed, xz, T, L.inBias); // (T, 2e): x_in = xz[t, 0:e), z = xz[t, e:2e)
      // conv window (e, k), oldest first: shift left by one, append x_in; x = silu(sum_j window[j] w[j] + bias)
      let win = state.conv[li];
      if (keep === "last" && kern && this.gang && k === 4 && e % 2 === 0) {
        // decode.wat's convRows (this loop's results bit for bit), the channels split over the threads
        const cw = seg.scratch.convWindow;
        cw.set(win);
        const jobs = this.parts(e, T * e * k, 2).map(([a, b]) => [
          xz.byteOffset + a * 4,
          2 * e * 4,
          x.byteOffset + a * 4,
          e * 4,
          cw.byteOffset + a * k * 4,
          L.convW.byteOffset + a * k * 4,
          L.convB ? L.convB.byteOffset + a * 4 : 0,
          L.convB ? 1 : 0,
          b - a,
          T,
        ]);
        this.gang.run(seg.index, DecodeFn.convRows, jobs);
        win = cw;
      } else {
        for (let t = 0; t < T; t++) {
          // a new window per id when every state is kept; else two reused ones, alternately
          const next = keep === "all" ? new Float32Array(e * k) : this.convWindows[t & 1],
            xin = t * 2 * e,
            xt = t * e;
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
      }
      if (keep === "last") states[0].conv.push(win === state.conv[li] ? win : win.slice());
      this.silu(seg, x, 0, e, T); // x = silu(conv)
      this.mm(seg, L.xProj, x, xDbl, T); // (T, r + 2n): dt_low, B, C
      // dt = softplus(dt_low @ dt_proj^T + bias)   (T, e); dt_low = xDbl[t, 0:r)
      this.mm(seg, L.dtProj, xDbl, dt, T, L.dtBias, w);
      this.softplus(seg, dt, T * e);
      // h = exp(dt A) h + dt B x ;  y = <h, C> + D x ;  y *= silu(z)   (one id after another)
      const hOld = seg.scratch.hA;
      hOld.set(state.ssm[li]);
      if (keep === "last" && kern && this.gang && n % 4 === 0) this.ssmScan(seg, L, hOld, T);
      else this.ssmSteps(seg, L, T, keep === "all" ? states : undefined);
      if (keep === "last") states[0].ssm.push(hOld.slice());
      this.silu(seg, xz, e, 2 * e, T, y); // y *= silu(z)
      this.mm(seg, L.outProj, y, o, T, L.outBias); // (T, d)
      for (let i = 0; i < T * d; i++) h[i] += o[i];
    }
    moveTo(this.segs[this.headSeg]);
    const { h, normed, logits } = seg.scratch;
    for (let t = 0; t < T; t++) {
      rmsNormInto(h.subarray(t * d, (t + 1) * d), this.normF, normed.subarray(t * d, (t + 1) * d));
    }
    this.mm(seg, this.head, normed, logits, T);
    return states;
  }
  /**
   * SiLU of e values per row of X (T rows of `stride` values, starting at column `from`), in place, or,
   * with `into`, multiplied into `into` (T, e) (the gate y *= silu(z)). decode.wat's siluRows when e % 4 ==
   * 0 (the kernels present: then so are the threads), else Math.exp.
   */
  private silu(seg: Segment, X: Float32Array, from: number, stride: number, T: number, into?: Float32Array) {
    const e = this.e, g = seg.scratch.g;
    if (seg.kern && this.gang && e % 4 === 0) {
      // decode.wat's siluRows, the rows split over the threads
      const x0 = X.byteOffset + from * 4, xs = stride * 4;
      const [y0, ys] = into ? [into.byteOffset, e * 4] : [x0, xs];
      const jobs = this.parts(T, T * e * ELEMENTWISE_COST, 1).map(([a, b]) => [
        x0 + a * xs,
        xs,
        y0 + a * ys,
        ys,
        e,
        b - a,
        into ? 1 : 0,
      ]);
      this.gang.run(seg.index, DecodeFn.siluRows, jobs);
      return;
    }
    for (let t = 0; t < T; t++) {
      for (let c = 0; c < e; c++) g[t * e + c] = 1 / (1 + Math.exp(-X[t * stride + from + c]));
    }
    for (let t = 0; t < T; t++) {
      for (let c = 0; c < e; c++) {
        const v = X[t * stride + from + c] * g[t * e + c];
        if (into) into[t * e + c] *= v;
        else X[t * stride + from + c] = v;
      }
    }
  }

  /** softplus of X[0, count) in place (math.wat's vector softplus over the threads when count % 4 == 0). */
  private softplus(seg: Segment, X: Float32Array, count: number) {
    if (seg.kern && this.gang && count % 4 === 0) {
      // the vector softplus (map's f = 2), the values split over the threads in whole vectors
      const jobs = this.parts(count / 4, count * ELEMENTWISE_COST, 1).map(([a, b]) => [
        2,
        X.byteOffset + a * 16,
        X.byteOffset + a * 16,
        (b - a) * 4,
      ]);
      this.gang.run(seg.index, DecodeFn.map, jobs);
    } else for (let i = 0; i < count; i++) X[i] = softplusS(X[i]);
  }

  /**
   * The recurrence over the chunk's T ids, one id after another from the state in scratch hA, which holds
   * the state after the last id at the end: h = exp(dt A) h + dt B x ; y = <h, C> + D x. With `states`,
   * the state after every id is kept there.
   */
  private ssmSteps(seg: Segment, L: LayerWeights, T: number, states?: HostState[]) {
    const { e, n, r } = this, w = r + 2 * n;
    const { dt, x, xDbl, y } = seg.scratch;
    let hOld = seg.scratch.hA, hNew = seg.scratch.hB;
    for (let t = 0; t < T; t++) {
      const xt = t * e, Bo = t * w + r, Co = Bo + n;
      this.ssmStep(
        seg,
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
      states?.[t].ssm.push(hNew.slice());
      [hOld, hNew] = [hNew, hOld];
    }
    if (hOld !== seg.scratch.hA) seg.scratch.hA.set(hOld);
  }

  /**
   * ssmSteps for a prefill: every id's recurrence in one call per thread, split by channels (ssmScan: the
   * same arithmetic as ssmStep, so the same state and outputs, the state updated in place in `h`).
   */
  private ssmScan(seg: Segment, L: LayerWeights, h: Float32Array, T: number) {
    const { e, n, r } = this, w = r + 2 * n;
    const { dt, x, xDbl, y } = seg.scratch;
    const jobs = this.parts(e, STATE_WORK * e * n * T, 1).map(([a, b]) => [
      h.byteOffset + a * n * 4,
      L.A2.byteOffset + a * n * 4,
      dt.byteOffset + a * 4,
      x.byteOffset + a * 4,
      y.byteOffset + a * 4,
      xDbl.byteOffset + r * 4,
      b - a,
      n,
      T,
      e * 4,
      w * 4,
    ]);
    this.gang!.run(seg.index, DecodeFn.ssmScan, jobs);
    for (let t = 0; t < T; t++) for (let c = 0; c < e; c++) y[t * e + c] += L.D[c] * x[t * e + c];
  }

  /** s[c] = <h[c], C> after h = exp(dt A) hOld + (dt x) B, for one id (the kernel, or the same in JS). */
  private ssmStep(
    seg: Segment,
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
    if (seg.kern && this.gang && n % 4 === 0) {
      // split by channels
      const jobs = this.parts(e, STATE_WORK * e * n).map(([a, b]) => [
        hOld.byteOffset + a * n * 4,
        hNew.byteOffset + a * n * 4,
        L.A2.byteOffset + a * n * 4,
        dt.byteOffset + a * 4,
        x.byteOffset + a * 4,
        B.byteOffset,
        C.byteOffset,
        s.byteOffset + a * 4,
        b - a,
        n,
      ]);
      this.gang.run(seg.index, DecodeFn.ssmStep, jobs);
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
    if (this.fused) return this.stepFused(state, id);
    const [next] = this.run(state, [id], "last");
    return { logits: this.logits.slice(0, this.Vp), state: next };
  }

  step(state: HostState, id: number) {
    return Promise.resolve(this.stepSync(state, id));
  }

  /**
   * Reads ids in one pass from `state` (never mutated): logits (T, Vp) row-major, and the state after
   * every id (`keep` "all": what a verifier rolls back to) or after the last one only (a prefill). "all" is
   * equal bit for bit to stepping through the ids one at a time; a prefill's float32 products go through
   * the GEMM (equal up to rounding).
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

  /** Ends the threads (the stepper still runs, on one thread). */
  dispose() {
    if (this.gang) {
      gangs.unregister(this);
      this.gang.close();
    }
  }
}
