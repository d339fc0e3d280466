/**
 * Decoding the byte (or subword) Transformer on the native engine with a KV cache held on the device: one
 * sequence, each step's keys and values appended to every layer's cache at the position the device is told,
 * attention of the one query over the cache split into chunks of keys (kernels decodeAttention), the greedy
 * choice made on the device and fed to the next step, `stepsPerSubmit` steps per submission, only the
 * chosen ids read back. The math of lib/models/transformer.ts's transformerStep (tested against it).
 *
 * One step at position t (d d_model, H heads of hd, f the MLP's width, V the vocabulary):
 *   res (d) = E[id]
 *   per layer: a = LN1(res);  qkv (3d) = a W_attn^T;  q, k rotated by position t (the tables' row t, copied
 *              by the device from ctl);  cache[t] = k | v;  o = softmax(q K[0..t]^T / sqrt(hd)) V[0..t]
 *              res += o W_proj^T;  res += gelu(LN2(res) W_fc^T) W_fc2^T
 *   logits (V) = LN_f(res) E^T;  id' = argmax
 * Positions: the host writes step j's position into ctl[j] with each submission (the K steps of one
 * submission read ctl[0] .. ctl[K-1]); ids move through a ring of K + 1 rows as in lib/engine/decode.ts.
 */
import {
  type TransformerConfig,
  transformerNoWeightDecay,
  transformerShapes,
  transformerStack,
} from "../models/transformer_config.ts";
import type { GemmSpec } from "../kernels/js/gemm.ts";
import type { EngineOps } from "../kernels/js/ops.ts";
import { NOT_FINITE_ID } from "../kernels/js/decode.ts";
import { ropeTables } from "../kernels/js/transformer.ts";
import { NonFiniteError } from "../io/errors.ts";
import { ALIGN, type Backend, createBackend, type EngineBackendName } from "./backend.ts";
import { layoutArena } from "./training.ts";

export interface TransformerDecoderOptions {
  config: TransformerConfig;
  /** Every parameter under lib/models/transformer.ts's names. */
  params: Map<string, Float32Array>;
  /** The longest context: the caches hold positions 0 .. maxLen - 1. */
  maxLen: number;
  backend?: EngineBackendName;
  /** Greedy steps per submission (default 64). */
  stepsPerSubmit?: number;
  /** webgpu: accept a software adapter (tests on machines without a GPU). */
  allowSoftwareGpu?: boolean;
}

const gemv = (N: number, K: number, name: string, accumulate = false): GemmSpec => ({
  M: 1,
  N,
  K,
  transposeA: false,
  transposeB: true,
  name,
  ...(accumulate ? { accumulate: true } : {}),
});

function buildTransformerDecoder<B>(be: Backend<B>, cfg: TransformerConfig, maxLen: number, K: number) {
  const s = transformerStack(cfg);
  const d = s.d, f = s.f, H = s.nHead, hd = d / H, L = s.nLayer, V = cfg.vocab_size, eps = s.eps;
  const layout = layoutArena(transformerShapes(cfg), transformerNoWeightDecay);
  const P = be.f32(layout.total, "parameters");
  const at = (name: string) => {
    const slot = layout.slots.get(name)!;
    return be.view(P, slot.offset, slot.size);
  };
  const E = at("wte.weight"), lnFw = at("ln_f.weight"), lnFb = at("ln_f.bias");
  const W = Array.from({ length: L }, (_, i) => {
    const h = (name: string) => at(`h.${i}.${name}`);
    return {
      ln1w: h("ln_1.weight"),
      ln1b: h("ln_1.bias"),
      attn: h("attn.c_attn.weight"),
      proj: h("attn.c_proj.weight"),
      ln2w: h("ln_2.weight"),
      ln2b: h("ln_2.bias"),
      fc: h("mlp.c_fc.weight"),
      fc2: h("mlp.c_proj.weight"),
    };
  });
  // per layer, the cache: (maxLen, 2d) rows of k | v
  const caches = Array.from({ length: L }, (_, i) => be.f32(maxLen * 2 * d, `KV cache ${i}`));
  const tables = ropeTables(maxLen, hd, s.ropeTheta);
  const cos = be.f32(maxLen * hd / 2, "rotary cos"), sin = be.f32(maxLen * hd / 2, "rotary sin");
  const ctl = be.i32(Math.max(K, ALIGN), "positions"); // step j of a submission is at position ctl[j]
  const rowFloats = ALIGN;
  const ring = be.i32((K + 1) * rowFloats, "ids ring");
  const row = (j: number) => be.view(ring, j * rowFloats, 1);
  const act = {
    res: be.f32(d, "residual stream"),
    a: be.f32(d, "normed"),
    mean: be.f32(1, "norm mean"),
    rstd: be.f32(1, "norm rstd"),
    qkv: be.f32(3 * d, "q | k | v"),
    o: be.f32(d, "attention"),
    h: be.f32(f, "mlp in"),
    g: be.f32(f, "mlp act"),
    cosRow: be.f32(hd / 2, "rotary cos row"),
    sinRow: be.f32(hd / 2, "rotary sin row"),
    logits: be.f32(V, "logits"),
  };
  const ln = { rows: 1, d, eps };
  /** One step: the id in ring row `from`, at position ctl[j]; the choice into row `to` (and 0 when `wrap`). */
  const stepOps = (ops: EngineOps<B>, j: number, from: number, to: number, wrap: boolean) => {
    ops.embedding({ batch: 1, len: 1, stride: 1, d, V }, { ids: row(from), table: E, out: act.res });
    // this position's rotation: row ctl[j] of the tables
    const tableRow = {
      rows: 1,
      count: hd / 2,
      srcRowStride: 0,
      dstRowStride: 0,
      slotStride: hd / 2,
      indexAt: j,
    };
    ops.copyIndexed(tableRow, { src: cos, dst: act.cosRow, ctl });
    ops.copyIndexed(tableRow, { src: sin, dst: act.sinRow, ctl });
    for (let i = 0; i < L; i++) {
      const w = W[i];
      ops.layerNorm(ln, { x: act.res, w: w.ln1w, bias: w.ln1b, y: act.a, mean: act.mean, rstd: act.rstd });
      ops.gemm(gemv(3 * d, d, "qkv"), { a: act.a, b: w.attn, c: act.qkv });
      // q and k are adjacent: one rotation over 2H heads
      ops.rope({ batch: 1, len: 1, heads: 2 * H, hd, stride: 3 * d, offset: 0, inverse: false }, {
        x: act.qkv,
        cos: act.cosRow,
        sin: act.sinRow,
      });
      // cache row ctl[j] = k | v
      ops.copyIndexed(
        {
          rows: 1,
          count: 2 * d,
          srcRowStride: 0,
          dstRowStride: 0,
          slotStride: 2 * d,
          indexAt: j,
          slotInDst: true,
          srcOffset: d,
        },
        { src: act.qkv, dst: caches[i], ctl },
      );
      ops.decodeAttention({ heads: H, hd, maxLen, kvStride: 2 * d, vOffset: d, indexAt: j, qOffset: 0 }, {
        q: act.qkv,
        kv: caches[i],
        ctl,
        o: act.o,
      });
      ops.gemm(gemv(d, d, "proj", true), { a: act.o, b: w.proj, c: act.res }); // res += o W_proj^T
      ops.layerNorm(ln, { x: act.res, w: w.ln2w, bias: w.ln2b, y: act.a, mean: act.mean, rstd: act.rstd });
      ops.gemm(gemv(f, d, "fc"), { a: act.a, b: w.fc, c: act.h });
      ops.gelu({ count: f }, { x: act.h, y: act.g });
      ops.gemm(gemv(d, f, "fc2", true), { a: act.g, b: w.fc2, c: act.res }); // res += gelu(h) W_fc2^T
    }
    ops.layerNorm(ln, { x: act.res, w: lnFw, bias: lnFb, y: act.a, mean: act.mean, rstd: act.rstd });
    ops.gemm(gemv(V, d, "head"), { a: act.a, b: E, c: act.logits }); // tied head
    ops.argmax(
      { rows: 1, V, vocab: V, outOffset: to * rowFloats, ...(wrap ? { alsoOffset: 0 } : {}) },
      { logits: act.logits, ids: ring },
    );
  };
  const single = be.record((ops) => stepOps(ops, 0, 0, 1, false));
  const greedy = be.record((ops) => {
    for (let j = 0; j < K; j++) stepOps(ops, j, j, j + 1, j === K - 1);
  });
  return {
    layout,
    P,
    caches,
    cos,
    sin,
    tables,
    ctl,
    ring,
    rowFloats,
    act,
    V,
    d,
    programs: { single, greedy },
  };
}

/** The KV-cache decoder of a Transformer LM on the native engine (one sequence). */
export class TransformerDecoder {
  /** tokens in the caches: the next step's position */
  private pos = 0;

  private constructor(
    // deno-lint-ignore no-explicit-any
    readonly backend: Backend<any>,
    // deno-lint-ignore no-explicit-any
    private readonly s: ReturnType<typeof buildTransformerDecoder<any>>,
    readonly maxLen: number,
    readonly stepsPerSubmit: number,
  ) {}

  static async create(o: TransformerDecoderOptions): Promise<TransformerDecoder> {
    const K = o.stepsPerSubmit ?? 64;
    for (const [k, v] of Object.entries({ maxLen: o.maxLen, stepsPerSubmit: K })) {
      if (!(Number.isInteger(v) && v >= 1)) {
        throw new Error(`TransformerDecoder: ${k} must be a positive integer (got ${v})`);
      }
    }
    // deno-lint-ignore no-explicit-any
    const be: Backend<any> = await createBackend(o.backend ?? "webgpu", {
      allowSoftware: o.allowSoftwareGpu,
      readbackFloats: Math.max(o.config.vocab_size, (K + 1) * ALIGN),
    });
    try {
      const s = buildTransformerDecoder(be, o.config, o.maxLen, K);
      for (const slot of s.layout.slots.values()) {
        const v = o.params.get(slot.name);
        if (!v || v.length !== slot.size) {
          throw new Error(
            `TransformerDecoder: parameter "${slot.name}" ${v ? `has ${v.length} values` : "is missing"}, ` +
              `expected [${slot.shape}] = ${slot.size}`,
          );
        }
        be.write(s.P, v, slot.offset);
      }
      be.write(s.cos, s.tables.cos);
      be.write(s.sin, s.tables.sin);
      await be.finish(); // compilation and validation errors surface here
      return new TransformerDecoder(be, s, o.maxLen, K);
    } catch (e) {
      be.destroy();
      throw e;
    }
  }

  /** Tokens in the cache (the position the next id is read at). */
  get position(): number {
    return this.pos;
  }

  /** Back to an empty cache (the caches' rows are overwritten as positions come again). */
  reset(): void {
    this.pos = 0;
  }

  /**
   * Moves to `position`: the next id is read there, against the cache's rows before it as they are (a
   * benchmark decodes the same stretch again; a caller rewinding keeps the prefix it means).
   */
  seek(position: number): void {
    if (!(Number.isInteger(position) && position >= 0 && position <= this.maxLen)) {
      throw new Error(`TransformerDecoder.seek: position ${position} outside 0 .. ${this.maxLen}`);
    }
    this.pos = position;
  }

  private room(n: number): void {
    if (this.pos + n > this.maxLen) {
      throw new Error(
        `TransformerDecoder: ${n} more positions after ${this.pos} exceed the cache's ${this.maxLen} (maxLen)`,
      );
    }
  }

  /** The host values of a submission of `steps` steps from the current position, the first id in row 0. */
  // deno-lint-ignore no-explicit-any
  private writes(first: number | undefined, steps: number): [any, Int32Array][] {
    const positions = new Int32Array(steps);
    for (let j = 0; j < steps; j++) positions[j] = this.pos + j;
    // deno-lint-ignore no-explicit-any
    const w: [any, Int32Array][] = [[this.s.ctl, positions]];
    if (first !== undefined) w.push([this.s.ring, Int32Array.of(first)]);
    return w;
  }

  /** Reads `id` at the current position; the logits (V) of the next token. */
  async step(id: number): Promise<Float32Array> {
    this.room(1);
    const { readback } = await this.backend.submit([this.s.programs.single], {
      writes: this.writes(id, 1),
      readback: { from: this.s.act.logits, floats: this.s.V },
    });
    this.pos++;
    return (await readback!).floats;
  }

  /**
   * `count` greedy ids after `first` (read at the current position): whole submissions of stepsPerSubmit
   * steps queued ahead, each one's last id carried in the ring's row 0 to the next; the rest step by step.
   */
  async greedy(first: number, count: number): Promise<Int32Array> {
    this.room(count);
    const K = this.stepsPerSubmit, rf = this.s.rowFloats, out = new Int32Array(count);
    const pending: Promise<{ floats: Float32Array }>[] = [];
    const whole = Math.floor(count / K);
    for (let sub = 0; sub < whole; sub++) {
      const { readback } = await this.backend.submit([this.s.programs.greedy], {
        writes: this.writes(sub === 0 ? first : undefined, K),
        readback: { from: this.backend.view(this.s.ring, rf, K * rf), floats: K * rf },
      });
      this.pos += K;
      pending.push(readback!);
    }
    let at = 0;
    try {
      for (const r of pending) {
        const ids = new Int32Array((await r).floats.buffer);
        for (let j = 0; j < K; j++) out[at + j] = ids[j * rf];
        at += K;
      }
    } catch (e) {
      await Promise.allSettled(pending);
      throw e;
    }
    let last = at ? out[at - 1] : first;
    for (; at < count; at++) {
      const logits = await this.step(last);
      let best = 0;
      for (let v = 1; v < logits.length; v++) if (logits[v] > logits[best]) best = v;
      if (!logits.every(Number.isFinite)) out[at] = NOT_FINITE_ID;
      else out[at] = best;
      last = out[at];
    }
    const bad = out.indexOf(NOT_FINITE_ID);
    if (bad >= 0) throw new NonFiniteError(`TransformerDecoder: the logits of step ${bad} are not finite`);
    return out;
  }

  /**
   * Fills the caches' rows 0 .. position - 1 with `values()` and moves to `position` (benchmarks: a step's
   * cost depends on how many keys it reads, not on their values).
   */
  fillCache(position: number, values: (n: number) => Float32Array): void {
    if (!(Number.isInteger(position) && position >= 0 && position <= this.maxLen)) {
      throw new Error(`TransformerDecoder.fillCache: position ${position} outside 0 .. ${this.maxLen}`);
    }
    for (const c of this.s.caches) this.backend.write(c, values(position * 2 * this.s.d));
    this.seek(position);
  }

  destroy(): void {
    this.backend.destroy();
  }
}
