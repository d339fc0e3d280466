/**
 * Decoding MegaByte on the native engine, patch by patch (lib/models/megabyte.ts megabyteStep's math): the
 * global model steps once per patch of P bytes, its KV cache over the patches on the device; the local
 * model steps once per byte, its cache over the current patch's slots. Both stacks decode with the
 * Transformer decoder's step (transformer_decode.ts stackStepOps).
 *
 * Byte t (slot p = t mod P of patch k = floor(t / P)):
 *   if p = 0 and t > 0 (a patch completed): the global model reads patch_proj(the P byte embeddings of the
 *     completed patch) at global position k; cond (P, d_l) = LN_f(g) W_g2l^T   (the start patch at position 0,
 *     read by `reset`, conditions patch 0)
 *   slot p of the patch's byte embeddings = global.wte[id]
 *   x (d_l) = local.wte[id] + cond[p];  the local model at local position p;  logits (256) = LN_f(y) El^T
 * Which step reads the global model is known on the host (the position), so each submission's program is
 * recorded per (phase, whether it starts at byte 0) once; the positions (k, p) of each step are written
 * into ctl with the submission, as the Transformer decoder's are.
 */
import { type MegaByteConfig, megabyteShapes, stacks } from "../models/megabyte_config.ts";
import { transformerNoWeightDecay } from "../models/transformer_config.ts";
import type { EngineOps } from "../kernels/js/ops.ts";
import { ALIGN, type Backend, type Program } from "./backend.ts";
import {
  decoderArena,
  type DecoderCommon,
  gemv,
  KVCacheDecoder,
  stackDecodeBuffers,
  stackStepOps,
  writeStackTables,
} from "./transformer_decode.ts";

export interface MegaByteDecoderOptions extends DecoderCommon {
  config: MegaByteConfig;
  /** Every parameter under lib/models/megabyte.ts's names. */
  params: Map<string, Float32Array>;
}

const V = 256;

function buildMegaByteDecoder<B>(be: Backend<B>, cfg: MegaByteConfig, maxLen: number, K: number) {
  const P = cfg.patch_size, e = cfg.d_byte_global, dl = cfg.d_local, dg = cfg.d_global;
  const arena = decoderArena(be, megabyteShapes(cfg), transformerNoWeightDecay);
  const { global, local } = stacks(cfg);
  const maxPatches = Math.ceil(maxLen / P) + 1;
  const G = stackDecodeBuffers(be, arena.at, global, maxPatches);
  const Lc = stackDecodeBuffers(be, arena.at, local, P);
  const W = {
    Eg: arena.at("global.wte.weight"), // (256, e)
    patch: arena.at("global.patch_proj.weight"), // (d_g, P e)
    start: arena.at("global.start_patch"), // (d_g)
    toLocal: arena.at("global_to_local.weight"), // (P d_l, d_g)
    El: arena.at("local.wte.weight"), // (256, d_l)
  };
  const patchEmb = be.f32(P * e, "patch byte embeddings"); // the current patch's slots
  const byteEmb = be.f32(e, "byte embedding");
  const cond = be.f32(P * dl, "patch conditioning"); // (P, d_l)
  const logits = be.f32(V, "logits");
  const ctl = be.i32(Math.max(2 * K, ALIGN), "positions"); // step j: global position ctl[2j], slot ctl[2j+1]
  const rowFloats = ALIGN;
  const ring = be.i32((K + 1) * rowFloats, "ids ring");
  const row = (j: number) => be.view(ring, j * rowFloats, 1);
  const emb = (d: number) => ({ batch: 1, len: 1, stride: 1, d, V });

  /** The global model at position ctl[indexAt] over G's res; cond = LN_f(g) W_g2l^T. */
  const globalOps = (ops: EngineOps<B>, indexAt: number) => {
    stackStepOps(ops, G, ctl, indexAt);
    ops.gemm(gemv(P * dl, dg, "toLocal"), { a: G.act.a, b: W.toLocal, c: cond });
  };
  /** Byte step j at slot p (static), reading the global model first when `readGlobal`. */
  const stepOps = (
    ops: EngineOps<B>,
    j: number,
    p: number,
    readGlobal: boolean,
    to: number,
    wrap: boolean,
  ) => {
    const id = row(j);
    if (readGlobal) {
      ops.gemm(gemv(dg, P * e, "patchProj"), { a: patchEmb, b: W.patch, c: G.act.res });
      globalOps(ops, 2 * j);
    }
    ops.embedding(emb(e), { ids: id, table: W.Eg, out: byteEmb });
    ops.copy({ count: e, srcOffset: 0, dstOffset: p * e }, { src: byteEmb, dst: patchEmb });
    ops.embedding(emb(dl), { ids: id, table: W.El, out: Lc.act.res });
    ops.copy({ count: dl, srcOffset: p * dl, dstOffset: 0, accumulate: true }, {
      src: cond,
      dst: Lc.act.res,
    });
    stackStepOps(ops, Lc, ctl, 2 * j + 1);
    ops.gemm(gemv(V, dl, "head"), { a: Lc.act.a, b: W.El, c: logits }); // tied to the local embedding
    ops.argmax(
      { rows: 1, V, vocab: V, outOffset: to * rowFloats, ...(wrap ? { alsoOffset: 0 } : {}) },
      { logits, ids: ring },
    );
  };
  const start = be.record((ops) => {
    ops.copy({ count: dg, srcOffset: 0, dstOffset: 0 }, { src: W.start, dst: G.act.res });
    globalOps(ops, 0);
  });
  // programs of n steps from slot `phase`, the first step at byte 0 or not (it then skips the global read)
  const programs = new Map<string, Program>();
  const run = (phase: number, n: number, atZero: boolean) => {
    const key = `${phase}|${n}|${atZero}`;
    if (!programs.has(key)) {
      programs.set(
        key,
        be.record((ops) => {
          for (let j = 0; j < n; j++) {
            const p = (phase + j) % P;
            stepOps(ops, j, p, p === 0 && !(atZero && j === 0), j + 1, j === n - 1);
          }
        }),
      );
    }
    return programs.get(key)!;
  };
  return { arena, G, Lc, ctl, ring, rowFloats, logits, start, run, P, maxPatches };
}

/** The patch-wise decoder of a MegaByte LM on the native engine (one sequence). */
export class MegaByteDecoder extends KVCacheDecoder {
  private constructor(
    // deno-lint-ignore no-explicit-any
    backend: Backend<any>,
    // deno-lint-ignore no-explicit-any
    private readonly s: ReturnType<typeof buildMegaByteDecoder<any>>,
    maxLen: number,
    stepsPerSubmit: number,
  ) {
    super(backend, { ...s, V }, maxLen, stepsPerSubmit, {
      who: "MegaByteDecoder",
      ids: "bytes",
      context: "context",
    });
  }

  static create(o: MegaByteDecoderOptions): Promise<MegaByteDecoder> {
    return KVCacheDecoder.open("MegaByteDecoder", o, V, async (be, K) => {
      const s = buildMegaByteDecoder(be, o.config, o.maxLen, K);
      s.arena.write(o.params, "MegaByteDecoder");
      writeStackTables(be, s.G);
      writeStackTables(be, s.Lc);
      const dec = new MegaByteDecoder(be, s, o.maxLen, K);
      await dec.reset(); // compilation and validation errors surface here
      return dec;
    });
  }

  /** Step j's global position (its patch) and its slot: ctl[2j], ctl[2j + 1]. */
  protected positions(n: number): Int32Array {
    const P = this.s.P, positions = new Int32Array(2 * n);
    for (let j = 0; j < n; j++) {
      const t = this.pos + j;
      positions[2 * j] = Math.floor(t / P);
      positions[2 * j + 1] = t % P;
    }
    return positions;
  }

  protected program(n: number): Program {
    return this.s.run(this.pos % this.s.P, n, this.pos === 0);
  }

  /** An empty context: the global model reads the start patch at position 0, conditioning patch 0. */
  async reset(): Promise<void> {
    await this.backend.submit([this.s.start], { writes: [[this.s.ctl, Int32Array.of(0)]] });
    await this.backend.finish();
    this.pos = 0;
  }

  /** Fills the global caches' rows of the patches before `position` with `values()` and moves there. */
  fillCache(position: number, values: (n: number) => Float32Array): void {
    this.seek(position);
    const rows = Math.ceil(position / this.s.P) + 1, d = this.s.G.spec.d;
    for (const c of this.s.G.caches) this.backend.write(c, values(rows * 2 * d));
  }
}
