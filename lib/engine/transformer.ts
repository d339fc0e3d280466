/**
 * The byte (and subword) Transformer, PerceiverAR and MegaByte trained on the native engine (issue 5/6):
 * pre-LayerNorm blocks, fused q | k | v and rotary positions, causal attention with the scores never
 * stored (kernels/webgpu/attention.ts), a GELU MLP, the head tied to the embedding; the math of
 * lib/models/transformer.ts (the TF.js reference it is tested against), the parameters under its nanoGPT
 * names. As engine/mamba.ts: every buffer allocated once, the kernel calls recorded once into programs.
 * Training steps (engine/training.ts ArenaEngine: AdamW with clipping, losses read back in blocks) run as
 * one submission each (lib/train/steps.ts, --engine native). PerceiverAR (`latents` N) is the same stack
 * whose layer 0 takes the last n = min(N, l) positions as queries and residual rows against keys and values
 * at every position; later layers, the head and the loss cover those n (lib/models/perceiver_ar.ts).
 * MegaByte (buildMegaByte) is two such stacks, a global one over patches and a local one inside each.
 *
 * Shapes: b batch, l length, T = b l tokens (rows, token-major), d d_model, H heads of hd, f the MLP's
 * width, V vocabulary, L layers. Per layer:
 *   a1 = LN1(res_i);  qkv = a1 W_attn^T, rotary on q and k;  o = attention(q, k, v)
 *   mid_i = res_i + o W_proj^T;  a2 = LN2(mid_i);  h = a2 W_fc^T;  res_{i+1} = mid_i + gelu(h) W_fc2^T
 * then logits = LN_f(res_L) E^T and the mean next-token cross-entropy.
 */
import {
  type StackSpec,
  type TransformerConfig,
  transformerNoWeightDecay,
  transformerShapes,
  transformerStack,
} from "../models/transformer_config.ts";
import { type MegaByteConfig, megabyteShapes, stacks } from "../models/megabyte_config.ts";
import { type GemmSpec, gemmSpec } from "../kernels/js/gemm.ts";
import type { EngineOps } from "../kernels/js/ops.ts";
import { ropeTables } from "../kernels/js/transformer.ts";
import type { AttentionParams } from "../kernels/js/attention.ts";
import { HISTORY_STRIDE } from "../kernels/js/optim.ts";
import { type Backend, createBackend, type EngineBackendName } from "./backend.ts";
import {
  ArenaEngine,
  checkPositiveIntegers,
  ENGINE_OPTIMIZER_DEFAULTS,
  type EngineOptimizer,
  layoutArena,
  recordOptimizer,
  trainingBuffers,
} from "./training.ts";

export interface TransformerEngineOptions {
  /** a Transformer's (or PerceiverAR's: see `latents`), or MegaByte's */
  config: TransformerConfig | MegaByteConfig;
  /** Every parameter under lib/models/transformer.ts's names. */
  params: Map<string, Float32Array>;
  batch: number;
  length: number;
  backend?: EngineBackendName;
  /** webgpu: accept a software adapter (tests on machines without a GPU). */
  allowSoftwareGpu?: boolean;
  optimizer?: Partial<EngineOptimizer>;
  /** Copy the steps' losses out every this many steps (default 16). */
  readbackEvery?: number;
  /** webgpu: GPU timestamps around each step (StepStats.gpuMs; the benchmark's). */
  timing?: boolean;
  /** Token rows of logits the head computes at once (default: all, up to 64M logits). */
  headChunk?: number;
  /**
   * PerceiverAR: the latents N (num_latents): layer 0 attends from the last n = min(N, length) positions to
   * all of them and the loss covers those n (lib/models/perceiver_ar.ts); absent: the Transformer.
   */
  latents?: number;
}

/** Whether a config is MegaByte's (it has patches). */
function isMegaByte(cfg: TransformerConfig | MegaByteConfig): cfg is MegaByteConfig {
  return "patch_size" in cfg;
}

/**
 * A stack's buffers and its forward and backward kernel calls, over `seqs` sequences of `len` rows each
 * (token-major). The caller fills `res0` before `forward` and `dOut` (the gradient of `out`, the final
 * LayerNorm's rows) before `backward`, which leaves the gradient of `res0` in `dRes0`. With `latents` N
 * (PerceiverAR), layer 0 takes the last n = min(N, len) rows of each sequence as queries and residual rows
 * against keys and values at every row; later layers and `out` cover those n.
 */
function recordStack<B>(
  be: Backend<B>,
  s: StackSpec,
  P: (name: string) => B,
  G: (name: string) => B,
  seqs: number,
  len: number,
  latents?: number,
) {
  const { d, f, eps } = s, H = s.nHead, hd = d / H, L = s.nLayer, b = seqs, l = len, T = b * l;
  const n = Math.min(latents ?? l, l), Tn = b * n, cross = n < l;
  const rowsIn = (i: number) => (i === 0 ? T : Tn); // rows a layer's LayerNorm 1 and q | k | v cover
  const f32 = (floats: number, label: string) => be.f32(floats, `${s.prefix}${label}`);
  const weights = (at: (name: string) => B) => ({
    lnFw: at(`${s.prefix}ln_f.weight`),
    lnFb: at(`${s.prefix}ln_f.bias`),
    layers: Array.from({ length: L }, (_, i) => {
      const h = (name: string) => at(`${s.prefix}h.${i}.${name}`);
      return {
        ln1w: h("ln_1.weight"),
        ln1b: h("ln_1.bias"),
        attn: h("attn.c_attn.weight"), // (3d, d): rows q, k, v
        proj: h("attn.c_proj.weight"), // (d, d)
        ln2w: h("ln_2.weight"),
        ln2b: h("ln_2.bias"),
        fc: h("mlp.c_fc.weight"), // (f, d)
        fc2: h("mlp.c_proj.weight"), // (d, f)
      };
    }),
  });
  const W = weights(P), dW = weights(G);

  // the rotation tables: rows 0 .. l-1, and the latents' l-n .. l-1 (written once by the engine)
  const tables = { cos: f32(l * hd / 2, "rotary cos"), sin: f32(l * hd / 2, "rotary sin") }; // (l, hd/2)
  const latentTables = cross
    ? { cos: f32(n * hd / 2, "rotary cos, latents"), sin: f32(n * hd / 2, "rotary sin, latents") }
    : tables;
  const all = ropeTables(l, hd, s.ropeTheta);
  const tableWrites: [B, Float32Array][] = [[tables.cos, all.cos], [tables.sin, all.sin]];
  if (cross) {
    const lat = ropeTables(n, hd, s.ropeTheta, l - n);
    tableWrites.push([latentTables.cos, lat.cos], [latentTables.sin, lat.sin]);
  }

  // ---- activations kept for the backward; res_0 (T, d), later residuals (Tn, d)
  const res = Array.from({ length: L + 1 }, (_, i) => f32((i === 0 ? T : Tn) * d, `residual ${i}`));
  const stats = (rows: number, label: string) => ({
    mean: f32(rows, `${label} mean`),
    rstd: f32(rows, `${label} rstd`),
  });
  const acts = Array.from({ length: L }, (_, i) => ({
    a1: f32(rowsIn(i) * d, `ln1 ${i}`),
    s1: stats(rowsIn(i), `ln1 ${i}`),
    qkv: f32(rowsIn(i) * 3 * d, `qkv ${i}`), // q | k (rotated) | v
    o: f32(Tn * d, `attention ${i}`),
    lse: f32(b * H * n, `attention lse ${i}`), // (b, H, n)
    mid: f32(Tn * d, `mid ${i}`), // the residual rows + attention's projection
    a2: f32(Tn * d, `ln2 ${i}`),
    s2: stats(Tn, `ln2 ${i}`),
    h: f32(Tn * f, `mlp in ${i}`), // before GELU
    g: f32(Tn * f, `mlp act ${i}`), // gelu(h)
  }));
  const out = f32(Tn * d, "final norm"), sF = stats(Tn, "final norm");
  const dres = f32(Tn * d, "d residual"), da = f32(T * d, "d normed"), dO = f32(Tn * d, "d attention");
  const dRes0 = cross ? f32(T * d, "d residual 0") : dres; // d res_0 over every row
  const dqkv = f32(T * 3 * d, "d qkv"), dh = f32(Tn * f, "d mlp");

  const gemms = (i: number) => {
    const R = rowsIn(i);
    return {
      qkv: mm(R, 3 * d, d, "NT", "qkv"), // qkv = a1 W_attn^T
      proj: mm(Tn, d, d, "NT", "proj", { accumulate: true }), // mid += o W_proj^T
      fc: mm(Tn, f, d, "NT", "fc"), // h = a2 W_fc^T
      fc2: mm(Tn, d, f, "NT", "fc2", { accumulate: true }), // res_{i+1} += g W_fc2^T
      fc2Dw: mm(d, f, Tn, "TN", "fc2Dw"), // dW_fc2 = dres^T g
      fc2Dx: mm(Tn, f, d, "NN", "fc2Dx"), // dg = dres W_fc2
      fcDw: mm(f, d, Tn, "TN", "fcDw"), // dW_fc = dh^T a2
      fcDx: mm(Tn, d, f, "NN", "fcDx"), // d a2 = dh W_fc
      projDw: mm(d, d, Tn, "TN", "projDw"), // dW_proj = dmid^T o
      projDx: mm(Tn, d, d, "NN", "projDx"), // do = dmid W_proj
      qkvDw: mm(3 * d, d, R, "TN", "qkvDw"), // dW_attn = dqkv^T a1
      qkvDx: mm(R, d, 3 * d, "NN", "qkvDx"), // d a1 = dqkv W_attn
    };
  };
  /** Layer i's attention: q | k | v rows of 3d; layer 0 of PerceiverAR takes the last n rows as queries. */
  const att = (i: number): AttentionParams => {
    const packed = {
      qStride: 3 * d,
      kStride: 3 * d,
      vStride: 3 * d,
      oStride: d,
      kOff: d,
      vOff: 2 * d,
      oOff: 0,
    };
    const shape = { batch: b, heads: H, hd, window: 0, ...packed };
    if (i === 0 && cross) {
      const seq = l * 3 * d;
      return {
        ...shape,
        lq: n,
        lk: l,
        qPos0: l - n,
        kPos0: 0,
        qOff: (l - n) * 3 * d,
        qBatch: seq,
        kBatch: seq,
        vBatch: seq,
      };
    }
    return { ...shape, lq: n, lk: n, qPos0: l - n, kPos0: l - n, qOff: 0 };
  };
  // q and k are adjacent in a qkv row: one rotation over 2H heads from offset 0
  const rope = (i: number, inverse: boolean) => ({
    batch: b,
    len: i === 0 ? l : n,
    heads: 2 * H,
    hd,
    stride: 3 * d,
    offset: 0,
    inverse,
  });
  const ropeTablesOf = (i: number) => (i === 0 ? tables : latentTables);
  const ln = (rows: number) => ({ rows, d, eps });
  /** Per sequence, the last n rows of res_0 (T, d) <-> rows of a (Tn, d) buffer. */
  const latentRows = (accumulate: boolean) =>
    Array.from({ length: b }, (_, bb) => ({
      count: n * d,
      srcOffset: (bb * l + l - n) * d,
      dstOffset: bb * n * d,
      accumulate,
    }));

  const forward = (ops: EngineOps<B>) => {
    for (let i = 0; i < L; i++) {
      const w = W.layers[i], a = acts[i], g = gemms(i), R = rowsIn(i);
      ops.layerNorm(ln(R), { x: res[i], w: w.ln1w, bias: w.ln1b, y: a.a1, ...a.s1 });
      ops.gemm(g.qkv, { a: a.a1, b: w.attn, c: a.qkv });
      ops.rope(rope(i, false), { x: a.qkv, ...ropeTablesOf(i) });
      ops.attention(att(i), { q: a.qkv, k: a.qkv, v: a.qkv, o: a.o, lse: a.lse });
      // mid = the residual rows (PerceiverAR's layer 0: the latents' rows of res_0) + o W_proj^T
      if (i === 0 && cross) { for (const c of latentRows(false)) ops.copy(c, { src: res[0], dst: a.mid }); }
      else ops.copy({ count: Tn * d, srcOffset: 0, dstOffset: 0 }, { src: res[i], dst: a.mid });
      ops.gemm(g.proj, { a: a.o, b: w.proj, c: a.mid });
      ops.layerNorm(ln(Tn), { x: a.mid, w: w.ln2w, bias: w.ln2b, y: a.a2, ...a.s2 });
      ops.gemm(g.fc, { a: a.a2, b: w.fc, c: a.h });
      ops.gelu({ count: Tn * f }, { x: a.h, y: a.g });
      ops.copy({ count: Tn * d, srcOffset: 0, dstOffset: 0 }, { src: a.mid, dst: res[i + 1] });
      ops.gemm(g.fc2, { a: a.g, b: w.fc2, c: res[i + 1] });
    }
    ops.layerNorm(ln(Tn), { x: res[L], w: W.lnFw, bias: W.lnFb, y: out, ...sF });
  };

  const backward = (ops: EngineOps<B>) => {
    ops.layerNormBackward({ ...ln(Tn), accumulate: false }, {
      x: res[L],
      w: W.lnFw,
      ...sF,
      dy: da,
      dx: dres,
      dw: dW.lnFw,
      db: dW.lnFb,
    });
    for (let i = L - 1; i >= 0; i--) {
      const w = W.layers[i], gw = dW.layers[i], a = acts[i], g = gemms(i), R = rowsIn(i);
      // res_{i+1} = mid + gelu(h) W_fc2^T: dres is d res_{i+1}
      ops.gemm(g.fc2Dw, { a: dres, b: a.g, c: gw.fc2 });
      ops.gemm(g.fc2Dx, { a: dres, b: w.fc2, c: dh });
      ops.geluBackward({ count: Tn * f }, { x: a.h, d: dh }); // dh = dg gelu'(h)
      ops.gemm(g.fcDw, { a: dh, b: a.a2, c: gw.fc });
      ops.gemm(g.fcDx, { a: dh, b: w.fc, c: da });
      // dres += LN2's backward: now d mid
      ops.layerNormBackward({ ...ln(Tn), accumulate: true }, {
        x: a.mid,
        w: w.ln2w,
        ...a.s2,
        dy: da,
        dx: dres,
        dw: gw.ln2w,
        db: gw.ln2b,
      });
      ops.gemm(g.projDw, { a: dres, b: a.o, c: gw.proj });
      ops.gemm(g.projDx, { a: dres, b: w.proj, c: dO });
      // PerceiverAR's layer 0 writes dq for its query rows only: the other rows' must be zero for dW_attn
      if (i === 0 && cross) ops.fill({ count: T * 3 * d, value: 0 }, { x: dqkv });
      const kv = { q: a.qkv, k: a.qkv, v: a.qkv, o: a.o, lse: a.lse, dO };
      ops.attentionBackward(att(i), { ...kv, dq: dqkv, dk: dqkv, dv: dqkv });
      ops.rope(rope(i, true), { x: dqkv, ...ropeTablesOf(i) }); // back through the rotation of q and k
      ops.gemm(g.qkvDw, { a: dqkv, b: a.a1, c: gw.attn });
      ops.gemm(g.qkvDx, { a: dqkv, b: w.attn, c: da });
      const ln1 = { x: res[i], w: w.ln1w, ...a.s1, dy: da, dw: gw.ln1w, db: gw.ln1b };
      if (i === 0 && cross) {
        // d res_0 = LN1's backward over every row, plus d mid on the latents' rows
        ops.layerNormBackward({ ...ln(R), accumulate: false }, { ...ln1, dx: dRes0 });
        for (const c of latentRows(true)) {
          ops.copy({ ...c, srcOffset: c.dstOffset, dstOffset: c.srcOffset }, { src: dres, dst: dRes0 });
        }
      } else ops.layerNormBackward({ ...ln(R), accumulate: true }, { ...ln1, dx: dres }); // now d res_i
    }
  };

  return { res0: res[0], out, dOut: da, dRes0, rows: T, rowsOut: Tn, n, tableWrites, forward, backward };
}

/**
 * A named product of the step (kernels/js/gemm.ts gemmSpec). The weight gradients ("TN": activations^T
 * times output gradients, k = every token) split their k range over several workgroups (GemmSpec.splitK),
 * as MambaByte's engine does: unsplit, the d256 x 4 step's 256 x 256 projection gradient ran as 16
 * workgroups of 4,096 steps of k, and each weight gradient there took about 0.33 ms whatever its size
 * (H200, engine.jsonl).
 */
const mm = (
  M: number,
  N: number,
  K: number,
  op: "NN" | "NT" | "TN",
  name: string,
  rest: Partial<GemmSpec> = {},
) => gemmSpec(M, N, K, op, { name, ...(op === "TN" ? { splitK: true } : {}), ...rest });

/** The head over `rows` rows of `x` (d wide) from r0: logits = x E^T; dx = dlogits E; dE (+)= dlogits^T x. */
function headGemms(V: number, d: number, r0: number, rows: number) {
  return {
    logits: mm(rows, V, d, "NT", "headLogits", { offA: r0 * d }),
    dx: mm(rows, d, V, "NN", "headDx", { offC: r0 * d }),
    dw: mm(V, d, rows, "TN", "headDw", { offB: r0 * d, accumulate: r0 > 0 }),
  };
}

/**
 * The head and the loss in chunks of token rows: logits (chunk, V) = x E^T, the cross-entropy (its
 * gradient in place, scale 1/rows), then dx and the head's dE. `targets`: the rows' targets (a sequence's
 * `len` rows predict ids[b (l+1) + offset + t + 1]).
 */
function recordHead<B>(
  be: Backend<B>,
  o: {
    rows: number;
    V: number;
    d: number;
    headChunk?: number;
    len: number;
    stride: number;
    targetOffset: number;
  },
  b: { x: B; E: B; dE: B; dx: B; ids: B; loss: B },
) {
  const { rows: Tn, V, d } = o;
  // at most 64M floats (256 MiB) a chunk, and what one binding may hold
  const chunk = Math.min(
    Tn,
    o.headChunk ?? Math.max(1, Math.floor(Math.min(1 << 26, be.maxBindingFloats) / V)),
  );
  const logits = be.f32(chunk * V, "logits chunk"); // (chunk, V), then dL/dlogits in place
  return be.record((ops) => {
    for (let r0 = 0; r0 < Tn; r0 += chunk) {
      const rows = Math.min(chunk, Tn - r0), hg = headGemms(V, d, r0, rows);
      ops.gemm(hg.logits, { a: b.x, b: b.E, c: logits });
      const ce = {
        rows,
        rowOffset: r0,
        V,
        len: o.len,
        stride: o.stride,
        targetOffset: o.targetOffset,
        scale: 1 / Tn,
      };
      ops.crossEntropy(ce, { logits, ids: b.ids, loss: b.loss });
      ops.gemm(hg.dx, { a: logits, b: b.E, c: b.dx });
      ops.gemm(hg.dw, { a: logits, b: b.x, c: b.dE });
    }
  });
}

/** The arenas, the step's ids and their sort, for a layout; parameter views by name. */
function engineBase<B>(
  be: Backend<B>,
  shapes: [string, number[]][],
  b: number,
  l: number,
  V: number,
  readbackEvery: number,
) {
  // the decayed matrices first (AdamW's decay is one range), each tensor ALIGN-aligned
  const layout = layoutArena(shapes, transformerNoWeightDecay);
  const training = trainingBuffers(be, layout, readbackEvery);
  const view = (buf: B) => (name: string) => {
    const s = layout.slots.get(name);
    if (!s) throw new Error(`engine: no parameter "${name}" in the layout`);
    return be.view(buf, s.offset, s.size);
  };
  const inputs = {
    ids: be.i32(b * (l + 1), "ids"), // (b, l+1): inputs ids[:, :l], targets ids[:, 1:]
    order: be.i32(b * l, "token rows sorted by id"),
    rowStart: be.i32(V + 1, "first sorted row of each id"),
  };
  return { layout, training, P: view(training.arena.P), G: view(training.arena.G), inputs };
}

interface BuildOptions {
  optimizer: EngineOptimizer;
  readbackEvery: number;
  headChunk?: number;
}

/** The Transformer (and PerceiverAR with `latents`): embedding, one stack, the tied head. */
function build<B>(
  be: Backend<B>,
  cfg: TransformerConfig,
  b: number,
  l: number,
  o: BuildOptions & { latents?: number },
) {
  const d = cfg.d_model, V = cfg.vocab_size;
  const base = engineBase(be, transformerShapes(cfg), b, l, V, o.readbackEvery);
  const { P, G, inputs } = base;
  const stack = recordStack(
    be,
    transformerStack(cfg),
    P,
    G,
    b,
    l,
    o.latents,
  );
  const lossRows = be.f32(stack.rowsOut, "loss per token");
  const forward = be.record((ops) => {
    ops.embedding({ batch: b, len: l, stride: l + 1, d, V }, {
      ids: inputs.ids,
      table: P("wte.weight"),
      out: stack.res0,
    });
    stack.forward(ops);
  });
  // the latents' targets are each sequence's last n
  const head = recordHead(be, {
    rows: stack.rowsOut,
    V,
    d,
    headChunk: o.headChunk,
    len: stack.n,
    stride: l + 1,
    targetOffset: l - stack.n,
  }, {
    x: stack.out,
    E: P("wte.weight"),
    dE: G("wte.weight"),
    dx: stack.dOut,
    ids: inputs.ids,
    loss: lossRows,
  });
  const backward = be.record((ops) => {
    stack.backward(ops);
    // the embedding's rows, added onto the tied head's gradient
    ops.embeddingBackward({ tokens: b * l, d, V, accumulate: true }, {
      ...inputs,
      dOut: stack.dRes0,
      dTable: G("wte.weight"),
    });
  });
  const optimizer = recordOptimizer(be, base.training, base.layout, lossRows, stack.rowsOut, o.optimizer);
  return {
    ...base,
    tableWrites: stack.tableWrites,
    lossRows,
    T: stack.rowsOut,
    V,
    programs: { forward, head, backward, optimizer },
  };
}

/**
 * MegaByte (lib/models/megabyte.ts): a global stack over patches of P bytes (the start patch, then each
 * patch's byte embeddings concatenated and projected, shifted by one patch), a local stack inside each
 * patch whose input is the byte's embedding plus its slice of the global output's projection, and the
 * local embedding as the head. K = l / P patches.
 */
function buildMegaByte<B>(be: Backend<B>, cfg: MegaByteConfig, b: number, l: number, o: BuildOptions) {
  const Pz = cfg.patch_size, K = l / Pz, dg = cfg.d_global, dl = cfg.d_local, e = cfg.d_byte_global, V = 256;
  const base = engineBase(be, megabyteShapes(cfg), b, l, V, o.readbackEvery);
  const { P, G, inputs } = base;
  const stackSpecs = stacks(cfg);
  const global = recordStack(
    be,
    stackSpecs.global,
    P,
    G,
    b,
    K,
  );
  const local = recordStack(
    be,
    stackSpecs.local,
    P,
    G,
    b * K,
    Pz,
  );
  const T = b * l;
  const gEmb = be.f32(T * e, "patch bytes"), dgEmb = be.f32(T * e, "d patch bytes"); // (b l, e): (b, K, P e)
  const lossRows = be.f32(T, "loss per token");
  // patches 0 .. K-2 of each sequence -> global rows 1 .. K-1: (K-1, P e) . W_patch^T, one product per sequence
  const perSeq = { batch: b, strideA: l * e, strideB: 0, strideC: K * dg };
  const patchProj = mm(K - 1, dg, Pz * e, "NT", "patchProj", { ...perSeq, offC: dg });
  const patchDx = mm(K - 1, Pz * e, dg, "NN", "patchDx", {
    batch: b,
    strideA: K * dg,
    strideB: 0,
    strideC: l * e,
    offA: dg,
  });
  const patchDw = (bb: number) =>
    mm(dg, Pz * e, K - 1, "TN", "patchDw", { offA: (bb * K + 1) * dg, offB: bb * l * e, accumulate: bb > 0 });
  // the local input's conditioning: (b K, P d_l) += G (b K, d_g) W_gl^T, and its gradients
  const toLocal = mm(b * K, Pz * dl, dg, "NT", "toLocal", { accumulate: true });
  const toLocalDx = mm(b * K, dg, Pz * dl, "NN", "toLocalDx");
  const toLocalDw = mm(Pz * dl, dg, b * K, "TN", "toLocalDw");
  const start = (bb: number, accumulate = false) => ({
    count: dg,
    srcOffset: 0,
    dstOffset: bb * K * dg,
    accumulate,
  });

  const forward = be.record((ops) => {
    ops.embedding({ batch: b, len: l, stride: l + 1, d: e, V }, {
      ids: inputs.ids,
      table: P("global.wte.weight"),
      out: gEmb,
    });
    for (let bb = 0; bb < b; bb++) ops.copy(start(bb), { src: P("global.start_patch"), dst: global.res0 });
    if (K > 1) ops.gemm(patchProj, { a: gEmb, b: P("global.patch_proj.weight"), c: global.res0 });
    global.forward(ops);
    ops.embedding({ batch: b, len: l, stride: l + 1, d: dl, V }, {
      ids: inputs.ids,
      table: P("local.wte.weight"),
      out: local.res0,
    });
    ops.gemm(toLocal, { a: global.out, b: P("global_to_local.weight"), c: local.res0 });
    local.forward(ops);
  });
  const head = recordHead(be, {
    rows: T,
    V,
    d: dl,
    headChunk: o.headChunk,
    len: l,
    stride: l + 1,
    targetOffset: 0,
  }, {
    x: local.out,
    E: P("local.wte.weight"),
    dE: G("local.wte.weight"),
    dx: local.dOut,
    ids: inputs.ids,
    loss: lossRows,
  });
  const backward = be.record((ops) => {
    local.backward(ops);
    ops.gemm(toLocalDw, { a: local.dRes0, b: global.out, c: G("global_to_local.weight") });
    ops.gemm(toLocalDx, { a: local.dRes0, b: P("global_to_local.weight"), c: global.dOut });
    ops.embeddingBackward({ tokens: T, d: dl, V, accumulate: true }, {
      ...inputs,
      dOut: local.dRes0,
      dTable: G("local.wte.weight"),
    });
    global.backward(ops);
    // the start patch: its rows' gradients summed over the batch
    for (let bb = 0; bb < b; bb++) {
      ops.copy({ count: dg, srcOffset: bb * K * dg, dstOffset: 0, accumulate: bb > 0 }, {
        src: global.dRes0,
        dst: G("global.start_patch"),
      });
    }
    // the patch embedder; the last patch of each sequence feeds no global row
    ops.fill({ count: T * e, value: 0 }, { x: dgEmb });
    if (K > 1) {
      for (let bb = 0; bb < b; bb++) {
        ops.gemm(patchDw(bb), { a: global.dRes0, b: gEmb, c: G("global.patch_proj.weight") });
      }
      ops.gemm(patchDx, { a: global.dRes0, b: P("global.patch_proj.weight"), c: dgEmb });
    } else ops.fill({ count: dg * Pz * e, value: 0 }, { x: G("global.patch_proj.weight") });
    ops.embeddingBackward({ tokens: T, d: e, V, accumulate: false }, {
      ...inputs,
      dOut: dgEmb,
      dTable: G("global.wte.weight"),
    });
  });
  const optimizer = recordOptimizer(be, base.training, base.layout, lossRows, T, o.optimizer);
  return {
    ...base,
    tableWrites: [...global.tableWrites, ...local.tableWrites],
    lossRows,
    T,
    V,
    programs: { forward, head, backward, optimizer },
  };
}

/** The native training engine of a Transformer LM (byte or subword) for one (batch, length). */
export class TransformerEngine extends ArenaEngine {
  private constructor(
    // deno-lint-ignore no-explicit-any
    backend: Backend<any>,
    // deno-lint-ignore no-explicit-any
    s: ReturnType<typeof build<any>> | ReturnType<typeof buildMegaByte<any>>,
    readonly config: TransformerConfig | MegaByteConfig,
    readonly batch: number,
    readonly length: number,
    optimizer: EngineOptimizer,
    readbackEvery: number,
    timing: boolean,
  ) {
    super(backend, s.training, s.layout, optimizer, readbackEvery, timing, "TransformerEngine", {
      ids: s.inputs.ids,
      order: s.inputs.order,
      rowStart: s.inputs.rowStart,
      batch,
      length,
      vocab: config.vocab_size,
      V: s.V,
    }, {
      gradient: [s.programs.forward, s.programs.head, s.programs.backward],
      optimizer: s.programs.optimizer,
      lossRows: s.lossRows,
      lossCount: s.T,
    });
  }

  static async create(o: TransformerEngineOptions): Promise<TransformerEngine> {
    const cfg = o.config, readbackEvery = o.readbackEvery ?? 16;
    checkPositiveIntegers("TransformerEngine", { batch: o.batch, length: o.length, readbackEvery });
    const optimizer = { ...ENGINE_OPTIMIZER_DEFAULTS, ...o.optimizer };
    // deno-lint-ignore no-explicit-any
    const be: Backend<any> = await createBackend(o.backend ?? "webgpu", {
      allowSoftware: o.allowSoftwareGpu,
      timestamps: o.timing,
      timestampSlots: o.timing ? readbackEvery : 0,
      readbackFloats: readbackEvery * HISTORY_STRIDE,
    });
    try {
      const opts = { optimizer, readbackEvery, headChunk: o.headChunk };
      let s;
      if (isMegaByte(cfg)) {
        if (o.length % cfg.patch_size !== 0) {
          throw new Error(
            `TransformerEngine: MegaByte's length ${o.length} must be a multiple of patch_size ${cfg.patch_size}`,
          );
        }
        s = buildMegaByte(be, cfg, o.batch, o.length, opts);
      } else s = build(be, cfg, o.batch, o.length, { ...opts, latents: o.latents });
      const engine = new TransformerEngine(
        be,
        s,
        cfg,
        o.batch,
        o.length,
        optimizer,
        readbackEvery,
        !!o.timing && be.name === "webgpu",
      );
      engine.upload(s.training.arena.P, o.params, "params");
      for (const [buf, data] of s.tableWrites) be.write(buf, data);
      await be.finish(); // compilation and validation errors surface here, not in the first step
      return engine;
    } catch (e) {
      be.destroy();
      throw e;
    }
  }
}
