/**
 * MambaByte (and the subword Mamba: any vocabulary, padded) trained by the native engine: the model's
 * training step written out as explicit forward and backward kernel calls over named buffers, in the
 * spirit of llm.c's train_gpt2.c. The math is lib/models/mamba.ts's (the TF.js reference, which this is
 * tested against), the optimizer lib/train/adamw.ts's, the parameters mamba_ssm's state dict.
 *
 * How it runs: every buffer is allocated once (parameters, gradients and AdamW moments in flat arenas,
 * the activations of every layer, shared scratch); the step's kernel calls are recorded once into
 * programs (forward, head + loss, backward, optimizer); a step writes the ids, their sort by id (for the
 * embedding's scatter-add) and the step's learning rate, and submits the programs, on WebGPU as one
 * command encoder, one compute pass and one queue submission. Nothing is read back per step: the loss
 * and gradient norm of each step go into a history on the device, copied out every `readbackEvery`
 * steps; a non-finite loss or norm halts all updates on the device itself. The same step runs on
 * "webgpu" (WGSL) and on "js" (the kernels' plain-JS twins).
 *
 * Shapes: b batch, l length, T = b l tokens, d d_model, e d_inner, n d_state, r dt_rank, R = r + 2n,
 * k d_conv, V padded vocabulary, L layers. Layouts: "(b l, c)" token-major (row per token), "(b, c, l)"
 * channel-major (a channel's steps contiguous, as the conv and the scan read them). The residual stream,
 * norms and projections' inputs are token-major; inside the mixer activations are channel-major, and
 * the GEMMs read and write both layouts in place (kernels/js/gemm.ts GemmLayout), so no transposes.
 */
import { dims, type MambaConfig, noWeightDecay, parameterShapes } from "../models/mamba_config.ts";
import type { EngineOps } from "../kernels/js/ops.ts";
import { gemmSpec } from "../kernels/js/gemm.ts";
import { nq4 } from "../kernels/js/scan.ts";
import { HISTORY_STRIDE } from "../kernels/js/optim.ts";
import { align, type Backend, createBackend, type EngineBackendName, type Program } from "./backend.ts";
import {
  ArenaEngine,
  checkPositiveIntegers,
  ENGINE_OPTIMIZER_DEFAULTS,
  type EngineOptimizer,
  layoutArena,
  recordOptimizer,
  trainingBuffers,
} from "./training.ts";
export { ENGINE_OPTIMIZER_DEFAULTS, type EngineOptimizer, type StepStats } from "./training.ts";

const NORM_EPS = 1e-5; // RMSNorm's epsilon (mamba_ssm's, models/mamba_config.ts NORM_EPSILON)

export interface MambaEngineOptions {
  config: MambaConfig;
  /** Every parameter under mamba_ssm's state-dict names (lm_head.weight ignored when tied). */
  params: Map<string, Float32Array>;
  batch: number;
  length: number;
  backend?: EngineBackendName;
  optimizer?: Partial<EngineOptimizer>;
  /** Copy the steps' losses out every this many steps (default 16). */
  readbackEvery?: number;
  /** webgpu: accept a software adapter (tests on machines without a GPU). */
  allowSoftwareGpu?: boolean;
  /** webgpu: time every step on the GPU with timestamp queries (StepStats.gpuMs). */
  timing?: boolean;
  /** Token rows of logits the head computes at once (default: all, up to 64M logits). */
  headChunk?: number;
  /**
   * Split k of the weight gradients' GEMMs (reductions over every token) over several workgroups
   * (default true; webgpu/gemm.ts gemmSplit).
   */
  splitK?: boolean;
}

/**
 * The arena layout: parameters with weight decay first, then the rest, so AdamW's decay is one range;
 * every layer's A_log next to each other, so A = -exp(A_log) and dA_log = dA A are one dispatch each.
 * Every tensor starts at a multiple of ALIGN floats (a binding offset any device accepts).
 */
export function arenaLayout(cfg: MambaConfig) {
  const l = layoutArena(parameterShapes(cfg), noWeightDecay, (name) => name.endsWith(".A_log"));
  return {
    slots: l.slots,
    decayEnd: l.decayEnd,
    total: l.total,
    aLogStart: l.togetherStart,
    aLogFloats: l.togetherFloats,
  };
}

/** Views of every parameter of a Mamba LM in an arena laid out by `arenaLayout` (mamba_ssm's names). */
export function parameterViews<B>(
  be: Backend<B>,
  buf: B,
  cfg: MambaConfig,
  layout: ReturnType<typeof arenaLayout>,
) {
  const { L } = dims(cfg);
  const tied = cfg.tie_embeddings, convBias = cfg.ssm_cfg.conv_bias;
  const at = (buf: B, name: string) => {
    const s = layout.slots.get(name)!;
    return be.view(buf, s.offset, s.size);
  };
  const lk = (i: number, name: string) => `backbone.layers.${i}.${name}`;
  return {
    E: at(buf, "backbone.embedding.weight"), // (V, d)
    head: at(buf, tied ? "backbone.embedding.weight" : "lm_head.weight"), // (V, d)
    normF: at(buf, "backbone.norm_f.weight"), // (d)
    layers: Array.from({ length: L }, (_, i) => ({
      norm: at(buf, lk(i, "norm.weight")), // (d)
      inW: at(buf, lk(i, "mixer.in_proj.weight")), // (2e, d)
      convW: at(buf, lk(i, "mixer.conv1d.weight")), // (e, 1, k)
      convB: convBias ? at(buf, lk(i, "mixer.conv1d.bias")) : undefined, // (e)
      xpW: at(buf, lk(i, "mixer.x_proj.weight")), // (R, e)
      dtW: at(buf, lk(i, "mixer.dt_proj.weight")), // (e, r)
      dtB: at(buf, lk(i, "mixer.dt_proj.bias")), // (e)
      aLog: at(buf, lk(i, "mixer.A_log")), // (e, n)
      D: at(buf, lk(i, "mixer.D")), // (e)
      outW: at(buf, lk(i, "mixer.out_proj.weight")), // (d, e)
    })),
  };
}

/** Buffers and programs of one engine; B is the backend's buffer type. */
function build<B>(
  be: Backend<B>,
  cfg: MambaConfig,
  batch: number,
  length: number,
  o: BuildOptions,
) {
  const { d, e, n, r, k, V, L } = dims(cfg);
  const b = batch, l = length, T = b * l, R = r + 2 * n;
  const tied = cfg.tie_embeddings, convBias = cfg.ssm_cfg.conv_bias;
  const layout = arenaLayout(cfg);
  const f32 = (floats: number, label: string) => be.f32(floats, label);

  // ---- parameters, gradients, AdamW moments: flat arenas; views per tensor
  const training = trainingBuffers(be, layout, o.readbackEvery);
  const { arena } = training;
  const weights = (buf: B) => parameterViews(be, buf, cfg, layout);
  const P = weights(arena.P), G = weights(arena.G);
  const aLogAll = {
    P: be.view(arena.P, layout.aLogStart, layout.aLogFloats),
    G: be.view(arena.G, layout.aLogStart, layout.aLogFloats),
  };

  // ---- host inputs of a step
  const ids = be.i32(b * (l + 1), "ids"); // (b, l+1): inputs ids[:, :l], targets ids[:, 1:]
  const order = be.i32(T, "token rows sorted by id"); // (T)
  const rowStart = be.i32(V + 1, "first sorted row of each id"); // (V+1)

  // ---- activations kept for the backward, per layer
  const aStride = align(e * n);
  const A = f32(L * aStride, "A = -exp(A_log)"); // (L, e, n)
  const res = Array.from({ length: L + 1 }, (_, i) => f32(T * d, `residual ${i}`)); // (b l, d) each
  const rstd = Array.from({ length: L }, (_, i) => f32(T, `rstd ${i}`)); // (b l)
  const acts = Array.from({ length: L }, (_, i) => ({
    hn: f32(T * d, `hn ${i}`), // (b l, d) normed input of the mixer
    x: f32(T * e, `x ${i}`), // (b, e, l) in_proj, x half
    z: f32(T * e, `z ${i}`), // (b, e, l) in_proj, z half (the gate)
    u: f32(T * e, `u ${i}`), // (b, e, l) silu(conv(x))
    xdbl: f32(T * R, `x_dbl ${i}`), // (b l, R): dt (r) | B (n) | C (n)
    delta: f32(T * e, `delta ${i}`), // (b, e, l) dt_proj(dt), bias and softplus inside the scan
    bct: f32(T * 2 * nq4(n), `B C ${i}`), // (b l, 2, nq4) packed for the scan
    y: f32(T * e, `y ${i}`), // (b, e, l) gated scan output
  }));
  const rstdF = f32(T, "rstd final"); // (b l)
  const hf = f32(T * d, "final norm"); // (b l, d)
  const out = f32(T * d, "mixer output"); // (b l, d) shared: consumed by the next add
  const last = f32(b * e * n, "scan last state (unused)"); // (b, e, n)
  // the head's logits chunk: at most 64M floats (256 MiB) and what one binding may hold
  const chunk = Math.min(
    T,
    o.headChunk ?? Math.max(1, Math.floor(Math.min(1 << 26, be.maxBindingFloats) / V)),
  );
  const logits = f32(chunk * V, "logits chunk"); // (chunk, V), then dL/dlogits in place
  const lossRows = f32(T, "loss per token"); // (b l)

  // ---- gradients of activations (shared by all layers)
  const dact = {
    res: f32(T * d, "d residual"), // (b l, d)
    hf: f32(T * d, "d final norm"), // (b l, d)
    hn: f32(T * d, "d hn"), // (b l, d)
    y: f32(T * e, "dy"), // (b, e, l)
    u: f32(T * e, "du"), // (b, e, l)
    delta: f32(T * e, "d delta"), // (b, e, l)
    z: f32(T * e, "dz"), // (b, e, l)
    x: f32(T * e, "dx"), // (b, e, l)
    xdbl: f32(T * R, "d x_dbl"), // (b l, R)
  };

  // ---- the products. GEMM layouts (kernels/js/gemm.ts) read channel-major views in place: a batch of
  // one product per sequence where a side is channel-major; weight gradients reduce over all b l tokens,
  // k running over (sequence, step) in segments of l. op: "NT" = A as stored, B transposed, ...
  const mm = gemmSpec;
  const perSeq = (strideA: number, strideB: number, strideC: number) => ({
    batch: b,
    strideA,
    strideB,
    strideC,
  });
  const overTokens = (operand: "A" | "B", ld: number) =>
    operand === "A"
      ? { kSeg: l, lda: ld, segA: e * l, splitK: o.splitK }
      : { kSeg: l, ldb: ld, segB: e * l, splitK: o.splitK };
  const gemms = {
    // x[b] (e, l) = W_in[0:e] (e, d) . hn[b]^T;  z[b] likewise with W_in[e:2e]
    inX: mm(e, l, d, "NT", perSeq(0, l * d, e * l)),
    inZ: mm(e, l, d, "NT", { ...perSeq(0, l * d, e * l), offA: e * d }),
    // x_dbl[b] (l, R) = u[b]^T (l, e) . W_xp^T (e, R)
    xProj: mm(l, R, e, "TT", perSeq(e * l, 0, l * R)),
    // delta[b] (e, l) = W_dt (e, r) . dt[b]^T (r, l), dt = x_dbl[:, 0:r]
    dtProj: mm(e, l, r, "NT", { ...perSeq(0, l * R, e * l), ldb: R }),
    // out[b] (l, d) = y[b]^T (l, e) . W_out^T (e, d)
    outProj: mm(l, d, e, "TT", perSeq(e * l, 0, l * d)),
    // dy[b] (e, l) = W_out^T (e, d) . dout[b]^T (d, l)
    outProjDx: mm(e, l, d, "TT", perSeq(0, l * d, e * l)),
    // dW_out (d, e) = sum over tokens of dout^T (d, T) . y^T (T, e)
    outProjDw: mm(d, e, T, "TT", overTokens("B", l)),
    // d dt[b] (l, r) = d delta[b]^T (l, e) . W_dt (e, r), into d x_dbl[:, 0:r]
    dtProjDx: mm(l, r, e, "TN", { ...perSeq(e * l, 0, l * R), ldc: R }),
    // dW_dt (e, r) = d delta (e, T) . dt (T, r)
    dtProjDw: mm(e, r, T, "NN", { ...overTokens("A", l), ldb: R }),
    // du[b] (e, l) += W_xp^T (e, R) . d x_dbl[b]^T (R, l)
    xProjDx: mm(e, l, R, "TT", { ...perSeq(0, l * R, e * l), accumulate: true }),
    // dW_xp (R, e) = d x_dbl^T (R, T) . u^T (T, e)
    xProjDw: mm(R, e, T, "TT", overTokens("B", l)),
    // d hn[b] (l, d) = dx[b]^T (l, e) . W_in[0:e] (e, d)  (+= dz[b]^T . W_in[e:2e])
    inDxX: mm(l, d, e, "TN", perSeq(e * l, 0, l * d)),
    inDxZ: mm(l, d, e, "TN", { ...perSeq(e * l, 0, l * d), offB: e * d, accumulate: true }),
    // dW_in[0:e] (e, d) = dx (e, T) . hn (T, d);  dW_in[e:2e] likewise with dz
    inDwX: mm(e, d, T, "NN", overTokens("A", l)),
    inDwZ: mm(e, d, T, "NN", { ...overTokens("A", l), offC: e * d }),
  };
  for (const [name, g] of Object.entries(gemms)) g.name = name; // dispatch labels "gemm inX", ... (profiles)
  // the head, one chunk of `rows` token rows from row r0: logits (rows, V) = hf[r0:] . W_head^T;
  // d hf[r0:] = dlogits . W_head;  dW_head (V, d) (+)= dlogits^T . hf[r0:]
  const headGemms = (r0: number, rows: number) => ({
    logits: mm(rows, V, d, "NT", { offA: r0 * d, name: "headLogits" }),
    dx: mm(rows, d, V, "NN", { offC: r0 * d, name: "headDx" }),
    dw: mm(V, d, rows, "TN", { offB: r0 * d, accumulate: r0 > 0, splitK: o.splitK, name: "headDw" }),
  });

  const embedP = { batch: b, len: l, stride: l + 1, d, V };
  const norm = (add: boolean) => ({ rows: T, d, eps: NORM_EPS, add });
  const normOut = (i: number) => ({ w: P.layers[i].norm, y: acts[i].hn, rstd: rstd[i] });
  const conv = { batch: b, ch: e, len: l, k, bias: convBias };
  const scan = { batch: b, dim: e, len: l, ns: n, softplus: true };
  const A_ = (i: number) => be.view(A, i * aStride, e * n); // layer i's A (e, n)
  const scanIn = (i: number) => {
    const w = P.layers[i], a = acts[i];
    return { u: a.u, delta: a.delta, A: A_(i), bct: a.bct, D: w.D, z: a.z, deltaBias: w.dtB };
  };

  const forward = be.record((ops) => {
    ops.embedding(embedP, { ids, table: P.E, out: res[0] }); // res_0 (b l, d) = E[ids]
    ops.negExp({ count: L * aStride }, { x: aLogAll.P, y: A }); // A (L, e, n) = -exp(A_log)
    for (let i = 0; i < L; i++) {
      const w = P.layers[i], a = acts[i];
      // hn (b l, d) = rmsnorm(res_i) w_i, res_i = res_{i-1} + out (the residual add, fused; none at layer 0)
      if (i === 0) ops.addRmsNorm(norm(false), { x: res[0], ...normOut(0) });
      else ops.addRmsNorm(norm(true), { x: res[i - 1], delta: out, res: res[i], ...normOut(i) });
      ops.gemm(gemms.inX, { a: w.inW, b: a.hn, c: a.x }); // in_proj: x (b, e, l)
      ops.gemm(gemms.inZ, { a: w.inW, b: a.hn, c: a.z }); // in_proj: z (b, e, l), the gate
      ops.conv(conv, { x: a.x, w: w.convW, bias: w.convB, y: a.u }); // u (b, e, l) = silu(conv(x) + bias)
      ops.gemm(gemms.xProj, { a: a.u, b: w.xpW, c: a.xdbl }); // x_proj: x_dbl (b l, R) = dt | B | C
      ops.gemm(gemms.dtProj, { a: w.dtW, b: a.xdbl, c: a.delta }); // dt_proj: delta (b, e, l)
      ops.packBC({ rows: T, row: R, offset: r, ns: n, len: l }, { x: a.xdbl, bct: a.bct }); // B, C packed
      // y (b, e, l) = (scan(u, softplus(delta + dt_bias), A, B, C) + D u) silu(z)
      ops.scanForward(scan, { ...scanIn(i), y: a.y, last });
      ops.gemm(gemms.outProj, { a: a.y, b: w.outW, c: out }); // out_proj: out (b l, d)
    }
    // hf (b l, d) = rmsnorm(res_L) w_f, res_L = res_{L-1} + out
    ops.addRmsNorm(norm(true), { x: res[L - 1], delta: out, res: res[L], w: P.normF, y: hf, rstd: rstdF });
  });

  /** The head and the loss, chunk by chunk; with `train` also d hf and the head's weight gradient. */
  const head = (ops: EngineOps<B>, train: boolean) => {
    for (let r0 = 0; r0 < T; r0 += chunk) {
      const rows = Math.min(chunk, T - r0), hg = headGemms(r0, rows);
      ops.gemm(hg.logits, { a: hf, b: P.head, c: logits }); // logits (rows, V)
      // loss per token; logits <- dL/dlogits = (softmax - onehot(target)) / T
      const ce = { rows, rowOffset: r0, V, len: l, stride: l + 1, scale: 1 / T };
      ops.crossEntropy(ce, { logits, ids, loss: lossRows });
      if (!train) continue;
      ops.gemm(hg.dx, { a: logits, b: P.head, c: dact.hf }); // d hf[r0:] (rows, d)
      ops.gemm(hg.dw, { a: logits, b: hf, c: G.head }); // dW_head (V, d)
    }
  };
  const headTrain = be.record((ops) => head(ops, true));
  const headLoss = be.record((ops) => head(ops, false));

  const backward = be.record((ops) => {
    // d res_L (b l, d) and d w_f: the final norm's backward
    const normF = { x: res[L], w: P.normF, rstd: rstdF, dy: dact.hf, dx: dact.res, dw: G.normF };
    ops.rmsNormBackward({ rows: T, d, accumulate: false }, normF);
    for (let i = L - 1; i >= 0; i--) {
      const w = P.layers[i], g = G.layers[i], a = acts[i];
      // out_proj, with d out = d res_{i+1}: dy (b, e, l), dW_out
      ops.gemm(gemms.outProjDx, { a: w.outW, b: dact.res, c: dact.y });
      ops.gemm(gemms.outProjDw, { a: dact.res, b: a.y, c: g.outW });
      // scan: du, d delta, dz (b, e, l); dA (e, n) (dA_log below), dD, d dt_bias; dB, dC -> d x_dbl[:, r:R]
      const dIn = { dy: dact.y, du: dact.u, ddelta: dact.delta, dz: dact.z };
      const dParams = { dA: g.aLog, dD: g.D, dDeltaBias: g.dtB, dbc: dact.xdbl };
      ops.scanBackward({ ...scan, row: R, offset: r }, { ...scanIn(i), ...dIn, ...dParams });
      // dt_proj: d dt (b l, r) -> d x_dbl[:, 0:r], dW_dt
      ops.gemm(gemms.dtProjDx, { a: dact.delta, b: w.dtW, c: dact.xdbl });
      ops.gemm(gemms.dtProjDw, { a: dact.delta, b: a.xdbl, c: g.dtW });
      // x_proj: du (b, e, l) += ..., dW_xp
      ops.gemm(gemms.xProjDx, { a: w.xpW, b: dact.xdbl, c: dact.u });
      ops.gemm(gemms.xProjDw, { a: dact.xdbl, b: a.u, c: g.xpW });
      // conv: dx (b, e, l), d conv weight (e, k), d conv bias (e)
      const dConv = { dy: dact.u, dx: dact.x, dw: g.convW, dbias: g.convB };
      ops.convBackward(conv, { x: a.x, w: w.convW, bias: w.convB, ...dConv });
      // in_proj: d hn (b l, d) from dx and dz; dW_in (2e, d)
      ops.gemm(gemms.inDxX, { a: dact.x, b: w.inW, c: dact.hn });
      ops.gemm(gemms.inDxZ, { a: dact.z, b: w.inW, c: dact.hn });
      ops.gemm(gemms.inDwX, { a: dact.x, b: a.hn, c: g.inW });
      ops.gemm(gemms.inDwZ, { a: dact.z, b: a.hn, c: g.inW });
      // d res_i = d res_{i+1} + the norm's backward (the residual's two paths); d w_i
      const dNorm = { x: res[i], w: w.norm, rstd: rstd[i], dy: dact.hn, dx: dact.res, dw: g.norm };
      ops.rmsNormBackward({ rows: T, d, accumulate: true }, dNorm);
    }
    // dA_log = dA dA/dA_log = dA A, every layer at once
    ops.mulInPlace({ count: L * aStride }, { x: aLogAll.G, y: A });
    // embedding: dE (V, d) (+)= d res_0's rows summed by id (onto the tied head's gradient)
    const embedGrad = { tokens: T, d, V, accumulate: tied };
    ops.embeddingBackward(embedGrad, { order, rowStart, dOut: dact.res, dTable: G.E });
  });

  const optimizer = recordOptimizer(be, training, layout, lossRows, T, o.optimizer);

  // logits for tests and evaluation: copied chunk by chunk into one (b l, V) buffer made on first use
  let logitsProgram: { program: Program; all: B } | undefined;
  const logitsAll = () => {
    if (!logitsProgram) {
      const all = f32(T * V, "all logits");
      const program = be.record((ops) => {
        for (let r0 = 0; r0 < T; r0 += chunk) {
          const rows = Math.min(chunk, T - r0);
          ops.gemm(headGemms(r0, rows).logits, { a: hf, b: P.head, c: logits });
          ops.copy({ count: rows * V, srcOffset: 0, dstOffset: r0 * V }, { src: logits, dst: all });
        }
      });
      logitsProgram = { program, all };
    }
    return logitsProgram;
  };

  return {
    layout,
    training,
    inputs: { ids, order, rowStart },
    lossRows,
    programs: { forward, headTrain, headLoss, backward, optimizer },
    logitsAll,
    V,
    T,
  };
}

interface BuildOptions {
  optimizer: EngineOptimizer;
  readbackEvery: number;
  headChunk?: number;
  splitK: boolean;
}

/** The native training engine of a Mamba LM for one (batch, length). */
export class MambaEngine extends ArenaEngine {
  private constructor(
    // deno-lint-ignore no-explicit-any
    backend: Backend<any>,
    // deno-lint-ignore no-explicit-any
    private s: ReturnType<typeof build<any>>,
    readonly config: MambaConfig,
    readonly batch: number,
    readonly length: number,
    opts: BuildOptions,
    timing: boolean,
  ) {
    super(backend, s.training, s.layout, opts.optimizer, opts.readbackEvery, timing, "MambaEngine", {
      ...s.inputs,
      batch,
      length,
      vocab: config.vocab_size,
      V: s.V,
    }, {
      gradient: [s.programs.forward, s.programs.headTrain, s.programs.backward],
      optimizer: s.programs.optimizer,
      lossRows: s.lossRows,
      lossCount: s.T,
    });
  }

  static async create(o: MambaEngineOptions): Promise<MambaEngine> {
    const cfg = o.config;
    if (!cfg.rms_norm) throw new Error("MambaEngine: only RMSNorm models (rms_norm true) are supported");
    if (cfg.ssm_cfg.bias) {
      throw new Error("MambaEngine: in_proj / out_proj biases (ssm_cfg.bias true) are not supported");
    }
    checkPositiveIntegers("MambaEngine", { batch: o.batch, length: o.length });
    const readbackEvery = o.readbackEvery ?? 16;
    if (!(Number.isInteger(readbackEvery) && readbackEvery >= 1)) {
      throw new Error(`MambaEngine: readbackEvery ${readbackEvery}`);
    }
    const opts: BuildOptions = {
      optimizer: { ...ENGINE_OPTIMIZER_DEFAULTS, ...o.optimizer },
      readbackEvery,
      headChunk: o.headChunk,
      splitK: o.splitK ?? true,
    };
    // deno-lint-ignore no-explicit-any
    const be: Backend<any> = await createBackend(o.backend ?? "webgpu", {
      allowSoftware: o.allowSoftwareGpu,
      timestamps: o.timing,
      timestampSlots: o.timing ? readbackEvery : 0,
      readbackFloats: readbackEvery * HISTORY_STRIDE,
    });
    try {
      const s = build(be, cfg, o.batch, o.length, opts);
      const engine = new MambaEngine(be, s, cfg, o.batch, o.length, opts, !!o.timing && be.name === "webgpu");
      engine.upload(s.training.arena.P, o.params, "params");
      await be.finish(); // compilation and validation errors surface here, not in the first step
      return engine;
    } catch (e) {
      be.destroy();
      throw e;
    }
  }

  /** Mean next-token loss of ids (b, l+1) (forward only). */
  async loss(ids: Int32Array): Promise<number> {
    await this.flush();
    this.prepare(ids);
    const p = this.s.programs;
    await this.backend.submit([p.forward, p.headLoss], { writes: this.writes() });
    return await this.meanLoss();
  }

  /** Logits (b, l, V) of ids (b, l) or (b, l+1) (forward only; allocates the full logits once). */
  async logits(ids: Int32Array): Promise<Float32Array> {
    await this.flush();
    this.prepare(ids);
    const { program, all } = this.s.logitsAll();
    await this.backend.submit([this.s.programs.forward, program], { writes: this.writes() });
    return await this.backend.read(all, 0, this.s.T * this.s.V);
  }
}
