/**
 * The byte (and subword) Transformer, and PerceiverAR, trained on the native engine (issue 5/6):
 * pre-LayerNorm blocks, fused q | k | v and rotary positions, causal attention with the scores never
 * stored (kernels/webgpu/attention.ts), a GELU MLP, the head tied to the embedding; the math of
 * lib/models/transformer.ts (the TF.js reference it is tested against), the parameters under its nanoGPT
 * names. As engine/mamba.ts: every buffer allocated once, the kernel calls recorded once into programs.
 * Training steps (engine/training.ts ArenaEngine: AdamW with clipping, losses read back in blocks) run as
 * one submission each (lib/train/steps.ts, --engine native). PerceiverAR (`latents` N) is the same stack
 * whose layer 0 takes the last n = min(N, l) positions as queries and residual rows against keys and values
 * at every position; later layers, the head and the loss cover those n (lib/models/perceiver_ar.ts).
 *
 * Shapes: b batch, l length, T = b l tokens (rows, token-major), d d_model, H heads of hd, f the MLP's
 * width, V vocabulary, L layers. Per layer:
 *   a1 = LN1(res_i);  qkv = a1 W_attn^T, rotary on q and k;  o = attention(q, k, v)
 *   mid_i = res_i + o W_proj^T;  a2 = LN2(mid_i);  h = a2 W_fc^T;  res_{i+1} = mid_i + gelu(h) W_fc2^T
 * then logits = LN_f(res_L) E^T and the mean next-token cross-entropy.
 */
import {
  type TransformerConfig,
  transformerNoWeightDecay,
  transformerShapes,
} from "../models/transformer_config.ts";
import type { GemmSpec } from "../kernels/js/gemm.ts";
import { ropeTables } from "../kernels/js/transformer.ts";
import type { AttentionParams } from "../kernels/js/attention.ts";
import { HISTORY_STRIDE } from "../kernels/js/optim.ts";
import { type Backend, createBackend, type EngineBackendName, type Program } from "./backend.ts";
import {
  ArenaEngine,
  ENGINE_OPTIMIZER_DEFAULTS,
  type EngineOptimizer,
  layoutArena,
  recordOptimizer,
  trainingBuffers,
} from "./training.ts";

export interface TransformerEngineOptions {
  config: TransformerConfig;
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
  /** Token rows of logits the head computes at once (default: all, up to 64M logits). */
  headChunk?: number;
  /**
   * PerceiverAR: the latents N (num_latents): layer 0 attends from the last n = min(N, length) positions to
   * all of them and the loss covers those n (lib/models/perceiver_ar.ts); absent: the Transformer.
   */
  latents?: number;
}

function build<B>(
  be: Backend<B>,
  cfg: TransformerConfig,
  b: number,
  l: number,
  o: { optimizer: EngineOptimizer; readbackEvery: number; headChunk?: number; latents?: number },
) {
  const d = cfg.d_model, H = cfg.n_head, hd = d / H, f = cfg.mlp_ratio * d, V = cfg.vocab_size;
  const L = cfg.n_layer, T = b * l, eps = cfg.norm_eps;
  // PerceiverAR: layer 0's queries and residual rows are the last n positions, later layers run on them
  const n = Math.min(o.latents ?? l, l), Tn = b * n, cross = n < l;
  const rowsIn = (i: number) => (i === 0 ? T : Tn); // rows a layer's LayerNorm 1 and q | k | v cover
  // the decayed matrices first (AdamW's decay is one range), each tensor ALIGN-aligned
  const layout = layoutArena(transformerShapes(cfg), transformerNoWeightDecay);
  const f32 = (floats: number, label: string) => be.f32(floats, label);
  const training = trainingBuffers(be, layout, o.readbackEvery);
  const arena = training.arena;
  const views = (buf: B) => {
    const at = (name: string) => {
      const s = layout.slots.get(name)!;
      return be.view(buf, s.offset, s.size);
    };
    const h = (i: number, name: string) => at(`h.${i}.${name}`);
    return {
      E: at("wte.weight"), // (V, d), also the head
      lnFw: at("ln_f.weight"),
      lnFb: at("ln_f.bias"),
      layers: Array.from({ length: L }, (_, i) => ({
        ln1w: h(i, "ln_1.weight"),
        ln1b: h(i, "ln_1.bias"),
        attn: h(i, "attn.c_attn.weight"), // (3d, d): rows q, k, v
        proj: h(i, "attn.c_proj.weight"), // (d, d)
        ln2w: h(i, "ln_2.weight"),
        ln2b: h(i, "ln_2.bias"),
        fc: h(i, "mlp.c_fc.weight"), // (f, d)
        fc2: h(i, "mlp.c_proj.weight"), // (d, f)
      })),
    };
  };
  const P = views(arena.P), G = views(arena.G);

  // ---- host inputs of a step, and the rotation tables: positions 0 .. l-1, and the latents' l-n .. l-1
  const ids = be.i32(b * (l + 1), "ids"); // (b, l+1): inputs ids[:, :l], targets ids[:, 1:]
  const order = be.i32(T, "token rows sorted by id");
  const rowStart = be.i32(V + 1, "first sorted row of each id");
  const tables = { cos: f32(l * hd / 2, "rotary cos"), sin: f32(l * hd / 2, "rotary sin") }; // (l, hd/2)
  const latentTables = cross
    ? { cos: f32(n * hd / 2, "rotary cos, latents"), sin: f32(n * hd / 2, "rotary sin, latents") }
    : tables;

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
  const af = f32(Tn * d, "final norm"), sF = stats(Tn, "final norm");
  // the head's logits chunk: at most 64M floats (256 MiB) and what one binding may hold
  const chunk = Math.min(
    Tn,
    o.headChunk ?? Math.max(1, Math.floor(Math.min(1 << 26, be.maxBindingFloats) / V)),
  );
  const logits = f32(chunk * V, "logits chunk"); // (chunk, V), then dL/dlogits in place
  const lossRows = f32(Tn, "loss per token");
  const dres = f32(Tn * d, "d residual"), da = f32(T * d, "d normed"), dO = f32(Tn * d, "d attention");
  const dres0 = cross ? f32(T * d, "d residual 0") : dres; // d res_0 over every position
  const dqkv = f32(T * 3 * d, "d qkv"), dh = f32(Tn * f, "d mlp");

  const mm = (
    M: number,
    N: number,
    K: number,
    op: "NN" | "NT" | "TN",
    name: string,
    rest: Partial<GemmSpec> = {},
  ) => ({ M, N, K, transposeA: op[0] === "T", transposeB: op[1] === "T", name, ...rest }) as GemmSpec;
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
  // the head over `rows` token rows from r0: logits = af[r0:] E^T;  d af[r0:] = dlogits E;
  // dE (+)= dlogits^T af[r0:] (the embedding's rows are added after the backward)
  const headGemms = (r0: number, rows: number) => ({
    logits: mm(rows, V, d, "NT", "headLogits", { offA: r0 * d }),
    dx: mm(rows, d, V, "NN", "headDx", { offC: r0 * d }),
    dw: mm(V, d, rows, "TN", "headDw", { offB: r0 * d, accumulate: r0 > 0 }),
  });
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
    if (i === 0 && cross) {
      const seq = l * 3 * d;
      return {
        batch: b,
        heads: H,
        lq: n,
        lk: l,
        hd,
        qPos0: l - n,
        kPos0: 0,
        window: 0,
        ...packed,
        qOff: (l - n) * 3 * d,
        qBatch: seq,
        kBatch: seq,
        vBatch: seq,
      };
    }
    return {
      batch: b,
      heads: H,
      lq: n,
      lk: n,
      hd,
      qPos0: l - n,
      kPos0: l - n,
      window: 0,
      ...packed,
      qOff: 0,
    };
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

  const forward = be.record((ops) => {
    ops.embedding({ batch: b, len: l, stride: l + 1, d, V }, { ids, table: P.E, out: res[0] }); // res_0 = E[ids]
    for (let i = 0; i < L; i++) {
      const w = P.layers[i], a = acts[i], g = gemms(i), R = rowsIn(i);
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
    ops.layerNorm(ln(Tn), { x: res[L], w: P.lnFw, bias: P.lnFb, y: af, ...sF });
  });

  /** The head and the loss chunk by chunk, and each chunk's share of d af and of the head's dE. */
  const head = be.record((ops) => {
    for (let r0 = 0; r0 < Tn; r0 += chunk) {
      const rows = Math.min(chunk, Tn - r0), hg = headGemms(r0, rows);
      ops.gemm(hg.logits, { a: af, b: P.E, c: logits }); // logits (rows, V)
      // loss per token; logits <- dL/dlogits = (softmax - onehot(target)) / Tn; the targets of PerceiverAR's
      // latents are each sequence's last n
      const ce = { rows, rowOffset: r0, V, len: n, stride: l + 1, targetOffset: l - n, scale: 1 / Tn };
      ops.crossEntropy(ce, { logits, ids, loss: lossRows });
      ops.gemm(hg.dx, { a: logits, b: P.E, c: da }); // d af[r0:] (rows, d)
      ops.gemm(hg.dw, { a: logits, b: af, c: G.E }); // dE (V, d)
    }
  });

  const backward = be.record((ops) => {
    ops.layerNormBackward({ ...ln(Tn), accumulate: false }, {
      x: res[L],
      w: P.lnFw,
      ...sF,
      dy: da,
      dx: dres,
      dw: G.lnFw,
      db: G.lnFb,
    });
    for (let i = L - 1; i >= 0; i--) {
      const w = P.layers[i], gw = G.layers[i], a = acts[i], g = gemms(i), R = rowsIn(i);
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
      if (i === 0 && cross) {
        // d res_0 = LN1's backward over every position, plus d mid on the latents' rows
        ops.layerNormBackward({ ...ln(R), accumulate: false }, {
          x: res[0],
          w: w.ln1w,
          ...a.s1,
          dy: da,
          dx: dres0,
          dw: gw.ln1w,
          db: gw.ln1b,
        });
        for (const c of latentRows(true)) {
          ops.copy({ ...c, srcOffset: c.dstOffset, dstOffset: c.srcOffset }, { src: dres, dst: dres0 });
        }
      } else {
        // dres += LN1's backward: now d res_i
        ops.layerNormBackward({ ...ln(R), accumulate: true }, {
          x: res[i],
          w: w.ln1w,
          ...a.s1,
          dy: da,
          dx: dres,
          dw: gw.ln1w,
          db: gw.ln1b,
        });
      }
    }
    // the embedding's rows, added onto the tied head's gradient
    ops.embeddingBackward({ tokens: T, d, V, accumulate: true }, {
      order,
      rowStart,
      dOut: dres0,
      dTable: G.E,
    });
  });

  const optimizer = recordOptimizer(be, training, layout, lossRows, Tn, o.optimizer);
  return {
    layout,
    training,
    inputs: { ids, order, rowStart, tables, latentTables },
    lossRows,
    T: Tn,
    V,
    n,
    programs: { forward, head, backward, optimizer },
  };
}

/** The native training engine of a Transformer LM (byte or subword) for one (batch, length). */
export class TransformerEngine extends ArenaEngine {
  private constructor(
    // deno-lint-ignore no-explicit-any
    backend: Backend<any>,
    // deno-lint-ignore no-explicit-any
    private s: ReturnType<typeof build<any>>,
    readonly config: TransformerConfig,
    readonly batch: number,
    readonly length: number,
    optimizer: EngineOptimizer,
    readbackEvery: number,
  ) {
    super(backend, s.training, s.layout, optimizer, readbackEvery, false, "TransformerEngine", {
      ids: s.inputs.ids,
      order: s.inputs.order,
      rowStart: s.inputs.rowStart,
      batch,
      length,
      vocab: config.vocab_size,
      V: s.V,
    });
  }

  static async create(o: TransformerEngineOptions): Promise<TransformerEngine> {
    const cfg = o.config, readbackEvery = o.readbackEvery ?? 16;
    for (const [k, v] of Object.entries({ batch: o.batch, length: o.length, readbackEvery })) {
      if (!(Number.isInteger(v) && v >= 1)) {
        throw new Error(`TransformerEngine: ${k} must be a positive integer (got ${v})`);
      }
    }
    const optimizer = { ...ENGINE_OPTIMIZER_DEFAULTS, ...o.optimizer };
    // deno-lint-ignore no-explicit-any
    const be: Backend<any> = await createBackend(o.backend ?? "webgpu", {
      allowSoftware: o.allowSoftwareGpu,
      readbackFloats: readbackEvery * HISTORY_STRIDE,
    });
    try {
      const s = build(be, cfg, o.batch, o.length, {
        optimizer,
        readbackEvery,
        headChunk: o.headChunk,
        latents: o.latents,
      });
      const engine = new TransformerEngine(be, s, cfg, o.batch, o.length, optimizer, readbackEvery);
      engine.upload(s.training.arena.P, o.params, "params");
      const hd = cfg.d_model / cfg.n_head, t = s.inputs;
      const all = ropeTables(o.length, hd, cfg.rope_theta);
      be.write(t.tables.cos, all.cos);
      be.write(t.tables.sin, all.sin);
      if (t.latentTables !== t.tables) {
        const lat = ropeTables(s.n, hd, cfg.rope_theta, o.length - s.n); // positions l-n .. l-1
        be.write(t.latentTables.cos, lat.cos);
        be.write(t.latentTables.sin, lat.sin);
      }
      await be.finish(); // compilation and validation errors surface here, not in the first step
      return engine;
    } catch (e) {
      be.destroy();
      throw e;
    }
  }

  protected gradientPrograms(): Program[] {
    const p = this.s.programs;
    return [p.forward, p.head, p.backward];
  }

  protected optimizerProgram(): Program {
    return this.s.programs.optimizer;
  }

  /** Forward and backward without an update: the mean next-token loss on ids (b, l+1) and every gradient. */
  async gradients(ids: Int32Array): Promise<{ loss: number; grads: Map<string, Float32Array> }> {
    await this.flush();
    this.prepare(ids);
    await this.backend.submit(this.gradientPrograms(), { writes: this.writes() });
    const rows = await this.backend.read(this.s.lossRows, 0, this.s.T);
    return {
      loss: rows.reduce((a, x) => a + x, 0) / rows.length,
      grads: await this.download(this.s.training.arena.G),
    };
  }
}
