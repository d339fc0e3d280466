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
  type StackSpec,
  type TransformerConfig,
  transformerNoWeightDecay,
  transformerShapes,
  transformerStack,
} from "../models/transformer_config.ts";
import { gemmSpec } from "../kernels/js/gemm.ts";
import type { EngineOps } from "../kernels/js/ops.ts";
import { NOT_FINITE_ID } from "../kernels/js/decode.ts";
import { ropeTables } from "../kernels/js/transformer.ts";
import { NonFiniteError } from "../io/errors.ts";
import { ALIGN, type Backend, createBackend, type EngineBackendName, type Program } from "./backend.ts";
import { checkPositiveIntegers, layoutArena } from "./training.ts";

export interface TransformerDecoderOptions extends DecoderCommon {
  config: TransformerConfig;
  /** Every parameter under lib/models/transformer.ts's names. */
  params: Map<string, Float32Array>;
}

/** A one-row product y (N) = x (K) W^T, W stored (N, K). */
export const gemv = (N: number, K: number, name: string, accumulate = false) =>
  gemmSpec(1, N, K, "NT", { name, ...(accumulate ? { accumulate: true } : {}) });

/**
 * One stack of pre-norm blocks decoding one position: its weights (views of the arena P by name), its KV
 * caches (per layer (maxLen, 2d) rows of k | v), its rotation tables and its activations. `res` holds the
 * position's input before `stackStepOps`; `a` holds LN_f of the output after.
 */
export function stackDecodeBuffers<B>(
  be: Backend<B>,
  at: (name: string) => B,
  s: StackSpec,
  maxLen: number,
) {
  const d = s.d, f = s.f, H = s.nHead, hd = d / H;
  const tag = (label: string) => `${s.prefix}${label}`;
  const W = Array.from({ length: s.nLayer }, (_, i) => {
    const h = (name: string) => at(`${s.prefix}h.${i}.${name}`);
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
  const tables = ropeTables(maxLen, hd, s.ropeTheta);
  return {
    spec: s,
    maxLen,
    W,
    lnFw: at(`${s.prefix}ln_f.weight`),
    lnFb: at(`${s.prefix}ln_f.bias`),
    caches: Array.from({ length: s.nLayer }, (_, i) => be.f32(maxLen * 2 * d, tag(`KV cache ${i}`))),
    tables,
    cos: be.f32(maxLen * hd / 2, tag("rotary cos")),
    sin: be.f32(maxLen * hd / 2, tag("rotary sin")),
    act: {
      res: be.f32(d, tag("residual stream")),
      a: be.f32(d, tag("normed")),
      mean: be.f32(1, tag("norm mean")),
      rstd: be.f32(1, tag("norm rstd")),
      qkv: be.f32(3 * d, tag("q | k | v")),
      o: be.f32(d, tag("attention")),
      h: be.f32(f, tag("mlp in")),
      g: be.f32(f, tag("mlp act")),
      cosRow: be.f32(hd / 2, tag("rotary cos row")),
      sinRow: be.f32(hd / 2, tag("rotary sin row")),
    },
  };
}
export type StackDecode<B> = ReturnType<typeof stackDecodeBuffers<B>>;

/** The rotation tables' host values (written once). */
export function writeStackTables<B>(be: Backend<B>, st: StackDecode<B>): void {
  be.write(st.cos, st.tables.cos);
  be.write(st.sin, st.tables.sin);
}

/**
 * The stack over one position, ctl[indexAt]: per layer LN1, q | k | v, rotation at that position, k | v
 * appended to the cache there, attention over the cache up to it, the projection and the MLP added to
 * `res`; then a = LN_f(res).
 */
export function stackStepOps<B>(ops: EngineOps<B>, st: StackDecode<B>, ctl: B, indexAt: number): void {
  const { d, f, nHead: H, eps } = st.spec, hd = d / H, act = st.act;
  const ln = { rows: 1, d, eps };
  const norm = (w: B, bias: B) => ({ x: act.res, w, bias, y: act.a, mean: act.mean, rstd: act.rstd });
  const tableRow = { rows: 1, count: hd / 2, srcRowStride: 0, dstRowStride: 0, slotStride: hd / 2, indexAt };
  ops.copyIndexed(tableRow, { src: st.cos, dst: act.cosRow, ctl });
  ops.copyIndexed(tableRow, { src: st.sin, dst: act.sinRow, ctl });
  const append = {
    rows: 1,
    count: 2 * d,
    srcRowStride: 0,
    dstRowStride: 0,
    slotStride: 2 * d,
    indexAt,
    slotInDst: true,
    srcOffset: d,
  };
  st.W.forEach((w, i) => {
    ops.layerNorm(ln, norm(w.ln1w, w.ln1b));
    ops.gemm(gemv(3 * d, d, "qkv"), { a: act.a, b: w.attn, c: act.qkv });
    // q and k are adjacent: one rotation over 2H heads
    ops.rope({ batch: 1, len: 1, heads: 2 * H, hd, stride: 3 * d, offset: 0, inverse: false }, {
      x: act.qkv,
      cos: act.cosRow,
      sin: act.sinRow,
    });
    ops.copyIndexed(append, { src: act.qkv, dst: st.caches[i], ctl }); // cache row ctl[indexAt] = k | v
    ops.decodeAttention(
      { heads: H, hd, maxLen: st.maxLen, kvStride: 2 * d, vOffset: d, indexAt, qOffset: 0 },
      { q: act.qkv, kv: st.caches[i], ctl, o: act.o },
    );
    ops.gemm(gemv(d, d, "proj", true), { a: act.o, b: w.proj, c: act.res }); // res += o W_proj^T
    ops.layerNorm(ln, norm(w.ln2w, w.ln2b));
    ops.gemm(gemv(f, d, "fc"), { a: act.a, b: w.fc, c: act.h });
    ops.gelu({ count: f }, { x: act.h, y: act.g });
    ops.gemm(gemv(d, f, "fc2", true), { a: act.g, b: w.fc2, c: act.res }); // res += gelu(h) W_fc2^T
  });
  ops.layerNorm(ln, norm(st.lnFw, st.lnFb));
}

/** The parameter arena of `shapes`, its views by name, and a writer naming what is missing. */
export function decoderArena<B>(
  be: Backend<B>,
  shapes: [string, number[]][],
  noDecay: (n: string) => boolean,
) {
  const layout = layoutArena(shapes, noDecay);
  const P = be.f32(layout.total, "parameters");
  const at = (name: string) => {
    const slot = layout.slots.get(name);
    if (!slot) throw new Error(`decoder: no parameter "${name}" in the layout`);
    return be.view(P, slot.offset, slot.size);
  };
  const write = (params: Map<string, Float32Array>, who: string) => {
    for (const slot of layout.slots.values()) {
      const v = params.get(slot.name);
      if (!v || v.length !== slot.size) {
        throw new Error(
          `${who}: parameter "${slot.name}" ${v ? `has ${v.length} values` : "is missing"}, ` +
            `expected [${slot.shape}] = ${slot.size}`,
        );
      }
      be.write(P, v, slot.offset);
    }
  };
  return { at, write };
}

function buildTransformerDecoder<B>(be: Backend<B>, cfg: TransformerConfig, maxLen: number, K: number) {
  const arena = decoderArena(be, transformerShapes(cfg), transformerNoWeightDecay);
  const st = stackDecodeBuffers(be, arena.at, transformerStack(cfg), maxLen);
  const V = cfg.vocab_size, d = st.spec.d, E = arena.at("wte.weight");
  const ctl = be.i32(Math.max(K, ALIGN), "positions"); // step j of a submission is at position ctl[j]
  const rowFloats = ALIGN;
  const ring = be.i32((K + 1) * rowFloats, "ids ring");
  const row = (j: number) => be.view(ring, j * rowFloats, 1);
  const logits = be.f32(V, "logits");
  /** One step: the id in ring row `from`, at position ctl[j]; the choice into row `to` (and 0 when `wrap`). */
  const stepOps = (ops: EngineOps<B>, j: number, from: number, to: number, wrap: boolean) => {
    ops.embedding({ batch: 1, len: 1, stride: 1, d, V }, { ids: row(from), table: E, out: st.act.res });
    stackStepOps(ops, st, ctl, j);
    ops.gemm(gemv(V, d, "head"), { a: st.act.a, b: E, c: logits }); // tied head
    ops.argmax(
      { rows: 1, V, vocab: V, outOffset: to * rowFloats, ...(wrap ? { alsoOffset: 0 } : {}) },
      { logits, ids: ring },
    );
  };
  // programs of n = 1 .. K steps, recorded when first used
  const programs = new Map<number, Program>();
  const run = (n: number) => {
    if (!programs.has(n)) {
      programs.set(
        n,
        be.record((ops) => {
          for (let j = 0; j < n; j++) stepOps(ops, j, j, j + 1, j === n - 1);
        }),
      );
    }
    return programs.get(n)!;
  };
  return { arena, st, ctl, ring, rowFloats, logits, V, d, run };
}

/** The options both attention decoders take beside their config and parameters. */
export interface DecoderCommon {
  maxLen: number;
  backend?: EngineBackendName;
  stepsPerSubmit?: number;
  allowSoftwareGpu?: boolean;
}

/**
 * The host side both attention models' decoders share (this file's and megabyte_decode.ts's): the position,
 * the room left in the context, and submissions of n steps (each step's positions and the first id written
 * with it, the position moved on). `step` reads one id and returns the logits; `greedy` queues submissions
 * of at most stepsPerSubmit steps back to back (the ring's row 0 carries each one's last id to the next),
 * reads each one's ids from ring rows 1 .. n and refuses a non-finite step (NonFiniteError) once every
 * read-back has landed. A subclass gives its programs and the positions its steps read (`positions`).
 */
export abstract class KVCacheDecoder {
  /** ids read: the position of the next one */
  protected pos = 0;

  protected constructor(
    // deno-lint-ignore no-explicit-any
    readonly backend: Backend<any>,
    // deno-lint-ignore no-explicit-any
    private readonly io: { ctl: any; ring: any; rowFloats: number; logits: any; V: number },
    readonly maxLen: number,
    readonly stepsPerSubmit: number,
    /** the class's name, and how its room error names the ids and the context, in messages */
    private readonly names: { who: string; ids: string; context: string },
  ) {}

  /**
   * The checked stepsPerSubmit (K) and a backend whose read-back holds `V` logits or K + 1 ring rows;
   * `build` records the decoder on it (the backend is destroyed when it throws).
   */
  protected static async open<T>(
    who: string,
    o: DecoderCommon,
    V: number,
    // deno-lint-ignore no-explicit-any
    build: (be: Backend<any>, K: number) => Promise<T>,
  ): Promise<T> {
    const K = o.stepsPerSubmit ?? 64;
    checkPositiveIntegers(who, { maxLen: o.maxLen, stepsPerSubmit: K });
    // deno-lint-ignore no-explicit-any
    const be: Backend<any> = await createBackend(o.backend ?? "webgpu", {
      allowSoftware: o.allowSoftwareGpu,
      readbackFloats: Math.max(V, (K + 1) * ALIGN),
    });
    try {
      return await build(be, K);
    } catch (e) {
      be.destroy();
      throw e;
    }
  }

  /** The positions steps pos .. pos + n - 1 read, as written to ctl. */
  protected abstract positions(n: number): Int32Array;
  /** The program of n steps from the current position. */
  protected abstract program(n: number): Program;

  /** Ids read (the position the next one is read at). */
  get position(): number {
    return this.pos;
  }

  /**
   * Moves to `position`: the next id is read there, against the context before it as it is (a benchmark
   * decodes the same stretch again; a caller rewinding keeps the prefix it means).
   */
  seek(position: number): void {
    if (!(Number.isInteger(position) && position >= 0 && position <= this.maxLen)) {
      throw new Error(`${this.names.who}.seek: position ${position} outside 0 .. ${this.maxLen}`);
    }
    this.pos = position;
  }

  private room(n: number): void {
    if (this.pos + n > this.maxLen) {
      throw new Error(
        `${this.names.who}: ${n} more ${this.names.ids} after ${this.pos} exceed the ${this.names.context}'s ${this.maxLen} (maxLen)`,
      );
    }
  }

  /** Program and host values of `n` steps from the current position (the first id in row 0); moves on. */
  private submission(first: number | undefined, n: number) {
    // deno-lint-ignore no-explicit-any
    const writes: [any, Int32Array][] = [[this.io.ctl, this.positions(n)]];
    if (first !== undefined) writes.push([this.io.ring, Int32Array.of(first)]);
    const program = this.program(n);
    this.pos += n;
    return { program, writes };
  }

  /** Reads `id` at the current position; the logits (V) of the next one. */
  async step(id: number): Promise<Float32Array> {
    this.room(1);
    const { program, writes } = this.submission(id, 1);
    const { readback } = await this.backend.submit([program], {
      writes,
      readback: { from: this.io.logits, floats: this.io.V },
    });
    return (await readback!).floats;
  }

  /** `count` greedy ids after `first` (read at the current position), stepsPerSubmit per submission. */
  async greedy(first: number, count: number): Promise<Int32Array> {
    this.room(count);
    const K = this.stepsPerSubmit, rf = this.io.rowFloats, out = new Int32Array(count);
    const pending: [number, Promise<{ floats: Float32Array }>][] = [];
    for (let at = 0; at < count; at += K) {
      const n = Math.min(K, count - at);
      const { program, writes } = this.submission(at === 0 ? first : undefined, n);
      const { readback } = await this.backend.submit([program], {
        writes,
        readback: { from: this.backend.view(this.io.ring, rf, n * rf), floats: n * rf },
      });
      pending.push([n, readback!]);
    }
    let at = 0;
    try {
      for (const [n, r] of pending) {
        const ids = new Int32Array((await r).floats.buffer);
        for (let j = 0; j < n; j++) out[at + j] = ids[j * rf];
        at += n;
      }
    } catch (e) {
      await Promise.allSettled(pending.map(([, r]) => r)); // read-backs in flight land before anything is released
      throw e;
    }
    const bad = out.indexOf(NOT_FINITE_ID);
    if (bad >= 0) throw new NonFiniteError(`${this.names.who}: the logits of step ${bad} are not finite`);
    return out;
  }

  destroy(): void {
    this.backend.destroy();
  }
}

/** The KV-cache decoder of a Transformer LM on the native engine (one sequence). */
export class TransformerDecoder extends KVCacheDecoder {
  private constructor(
    // deno-lint-ignore no-explicit-any
    backend: Backend<any>,
    // deno-lint-ignore no-explicit-any
    private readonly s: ReturnType<typeof buildTransformerDecoder<any>>,
    maxLen: number,
    stepsPerSubmit: number,
  ) {
    super(backend, s, maxLen, stepsPerSubmit, {
      who: "TransformerDecoder",
      ids: "positions",
      context: "cache",
    });
  }

  static create(o: TransformerDecoderOptions): Promise<TransformerDecoder> {
    return KVCacheDecoder.open("TransformerDecoder", o, o.config.vocab_size, async (be, K) => {
      const s = buildTransformerDecoder(be, o.config, o.maxLen, K);
      s.arena.write(o.params, "TransformerDecoder");
      writeStackTables(be, s.st);
      await be.finish(); // compilation and validation errors surface here
      return new TransformerDecoder(be, s, o.maxLen, K);
    });
  }

  protected positions(n: number): Int32Array {
    return Int32Array.from({ length: n }, (_, j) => this.pos + j);
  }

  protected program(n: number): Program {
    return this.s.run(n);
  }

  /** Back to an empty cache (the caches' rows are overwritten as positions come again). */
  reset(): void {
    this.pos = 0;
  }

  /**
   * Fills the caches' rows 0 .. position - 1 with `values()` and moves to `position` (benchmarks: a step's
   * cost depends on how many keys it reads, not on their values).
   */
  fillCache(position: number, values: (n: number) => Float32Array): void {
    if (!(Number.isInteger(position) && position >= 0 && position <= this.maxLen)) {
      throw new Error(`TransformerDecoder.fillCache: position ${position} outside 0 .. ${this.maxLen}`);
    }
    for (const c of this.s.st.caches) this.backend.write(c, values(position * 2 * this.s.d));
    this.seek(position);
  }
}
