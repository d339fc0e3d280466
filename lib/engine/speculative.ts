/**
 * Speculative decoding on the native engine: a subword Mamba drafts, MambaByte verifies, and whole rounds
 * run on the device back to back. The host writes the prompt, then only reads the emitted bytes, a block
 * of rounds at a time; nothing in a round waits for the host. On Deno's WebGPU a read-back costs ~11 ms
 * whatever the work (a 10 ms sleep in `mapAsync`'s poll loop; lib/bench/readback.ts measures it), so a design that returns to
 * the host once per round could never beat greedy decoding on the device.
 *
 * One round (the kernels' rules: lib/kernels/js/speculate.ts):
 *   1. The drafter's state and logits are kept (slot 0). For j < m: draftChoose picks the drafter's best
 *      token that agrees with the pending text P (bytes the verifier has read and the drafter has not),
 *      the drafter steps on it, and its state and logits after it are kept (slot j + 1). The drafted bytes
 *      (at most `draftBytes`) are the verifier's pass ids.
 *   2. The verifier reads all of them in one pass (lib/engine/decode.ts `pass`: each weight read once, the
 *      state after every byte kept).
 *   3. acceptDraft: a drafted bytes pass the top-beta test; the verifier's own byte c (its argmax after
 *      them) is emitted too; the verifier rolls to its state after a bytes and steps on c; the drafter rolls
 *      to its state after the w tokens whose text was all emitted, and P becomes the text after them.
 * With beta = 1 every emitted byte is the verifier's greedy choice, so the output is greedy decoding's.
 *
 * Versus lib/decode/speculative.ts (the host loop, PAPER.md's scheme): no byte-by-byte correction up to a
 * word boundary, and no BPE re-encoding of corrected text. After a rejection the drafter goes on from its
 * last kept token, constrained to agree with the pending bytes (tokens that spell them, then one that
 * extends them), which a device kernel can check; BPE merges could not run there.
 */
import type { ByteBPE } from "../data/bpe.ts";
import { preSplit } from "../data/bpe.ts";
import { dims, type MambaConfig } from "../models/mamba_config.ts";
import { specLayout } from "../kernels/js/speculate.ts";
import { align, type Backend, createBackend, type EngineBackendName, type Program } from "./backend.ts";
import { buildDecoder, resetDecoderState, undecodable, writeDecoderParams } from "./decode.ts";
import type { EngineOps } from "../kernels/js/ops.ts";

export interface EngineSpeculativeOptions {
  /** MambaByte: a byte model (vocab_size 256), parameters under mamba_ssm's names. */
  verifier: { config: MambaConfig; params: Map<string, Float32Array> };
  /** The subword drafter, over `tokenizer`'s ids. */
  drafter: { config: MambaConfig; params: Map<string, Float32Array> };
  tokenizer: ByteBPE;
  /** Tokens drafted per round (default 3, the paper's). */
  draftTokens?: number;
  /** The most drafted bytes one verification pass reads (default 8, at most 8). */
  draftBytes?: number;
  /** A drafted byte is accepted while among the verifier's top beta (default 1: exact greedy). */
  beta?: number;
  /** Rounds per submission: their bytes come back together (default 16). */
  roundsPerSubmit?: number;
  backend?: EngineBackendName;
  /** webgpu: accept a software adapter (tests on machines without a GPU). */
  allowSoftwareGpu?: boolean;
}

/** What a speculative decode did (here and in lib/decode/speculative.ts's host loop). */
export interface SpeculativeStats {
  /** Bytes emitted. */
  bytes: number;
  /** Draft rounds (one verifier pass each). */
  rounds: number;
  /** Subword tokens drafted, and their bytes sent to verification. */
  draftedTokens: number;
  drafted: number;
  /** Drafted bytes accepted by the verifier (all emitted). */
  accepted: number;
  /** accepted / drafted. */
  acceptanceRate: number;
  /** Bytes emitted by the verifier itself (corrections and byte-by-byte decoding). */
  corrected: number;
  /** Parallel verifier passes (verification + roll-back), and single verifier steps. */
  verifierPasses: number;
  verifierSteps: number;
  /** Drafter passes (re-syncs) and single drafter steps. */
  drafterPasses: number;
  drafterSteps: number;
  seconds: number;
  bytesPerSecond: number;
}

export interface SpeculativeResult {
  bytes: Uint8Array;
  /** Per emitted byte: 1 = an accepted draft byte, 0 = emitted by the verifier. */
  accepted: Uint8Array;
  stats: SpeculativeStats;
}

/** Submissions queued ahead of the one being read. */
const AHEAD = 2;

function build<B>(
  be: Backend<B>,
  o: EngineSpeculativeOptions,
  M: number,
  m: number,
  beta: number,
  R: number,
) {
  const vc = o.verifier.config, dc = o.drafter.config, tok = o.tokenizer;
  const v = buildDecoder(be, vc, { batch: 1, K: 1, maxPass: M }),
    dr = buildDecoder(be, dc, { batch: 1, K: 1, maxPass: 0 });
  const vd = dims(vc), dd = dims(dc);
  const L = specLayout(M, m);
  const ctl = be.i32(align(L.size), "speculation control");
  const out = be.i32(R * L.outStride, "emitted bytes");
  // the drafter's tokens as bytes: table (vocab, maxLen) and lengths
  const vocab = tok.vocabSize;
  let maxLen = 1;
  for (let t = 0; t < vocab; t++) maxLen = Math.max(maxLen, tok.tokenBytes(t).length);
  const tableHost = new Int32Array(vocab * maxLen), lensHost = new Int32Array(vocab);
  for (let t = 0; t < vocab; t++) {
    const b = tok.tokenBytes(t);
    lensHost[t] = b.length;
    tableHost.set(b, t * maxLen);
  }
  const table = be.i32(tableHost.length, "token bytes"), lens = be.i32(vocab, "token lengths");
  be.write(table, tableHost);
  be.write(lens, lensHost);
  // the verifier's logits for the next byte; the drafter's current logits and those kept in a round
  const vNext = be.f32(vd.V, "verifier logits");
  const dStride = align(dd.V);
  const dNext = be.f32(dd.V, "drafter logits");
  const dKept = be.f32((m + 1) * dStride, "drafter logits kept");
  const dConvFloats = dd.L * dr.strides.cs, dSsmFloats = dd.L * dr.strides.ss;
  const dConvKept = be.f32((m + 1) * dConvFloats, "drafter conv windows kept");
  const dSsmKept = be.f32((m + 1) * dSsmFloats, "drafter SSM states kept");
  const copy = (count: number, srcOffset: number, dstOffset: number) => ({ count, srcOffset, dstOffset });

  const roundOps = (ops: EngineOps<B>, r: number) => {
    ops.copy(copy(dd.V, 0, 0), { src: dNext, dst: dKept });
    ops.copy(copy(dConvFloats, 0, 0), { src: dr.convState, dst: dConvKept });
    ops.copy(copy(dSsmFloats, 0, 0), { src: dr.ssmState, dst: dSsmKept });
    for (let j = 0; j < m; j++) {
      ops.draftChoose({ L, j, vocab, maxLen }, {
        logits: be.view(dKept, j * dStride, dd.V),
        table,
        lens,
        ctl,
        draft: v.passIds,
        ids: dr.row(0),
      });
      dr.modelOps(ops, 1, dr.row(0), false);
      ops.copy(copy(dd.V, 0, (j + 1) * dStride), { src: dr.act.logits, dst: dKept });
      ops.copy(copy(dConvFloats, 0, (j + 1) * dConvFloats), { src: dr.convState, dst: dConvKept });
      ops.copy(copy(dSsmFloats, 0, (j + 1) * dSsmFloats), { src: dr.ssmState, dst: dSsmKept });
    }
    v.modelOps(ops, M, be.view(v.passIds, 0, M), true);
    ops.acceptDraft({ L, V: vd.V, vocab: vc.vocab_size, beta, outOffset: r * L.outStride }, {
      first: vNext,
      rows: v.act.logits,
      draft: v.passIds,
      ctl,
      out,
      ids: v.row(0),
    });
    // the verifier: back to its state after the a accepted bytes, then one step on its own byte c
    v.rollOps(ops, ctl, L.at.a);
    v.modelOps(ops, 1, v.row(0), false);
    ops.copy(copy(vd.V, 0, 0), { src: v.act.logits, dst: vNext });
    // the drafter: back to its state and logits after the w tokens it keeps
    const kept = (count: number, slotStride: number) => ({
      rows: 1,
      count,
      srcRowStride: 0,
      dstRowStride: 0,
      slotStride,
      indexAt: L.at.w,
    });
    ops.copyIndexed(kept(dConvFloats, dConvFloats), { src: dConvKept, dst: dr.convState, ctl });
    ops.copyIndexed(kept(dSsmFloats, dSsmFloats), { src: dSsmKept, dst: dr.ssmState, ctl });
    ops.copyIndexed(kept(dd.V, dStride), { src: dKept, dst: dNext, ctl });
  };
  // one recorded program of R rounds: round r writes slot r of `out`
  const rounds = be.record((ops) => {
    for (let r = 0; r < R; r++) roundOps(ops, r);
  });
  // prompt reading: the verifier by passes of up to M bytes (the last row's logits kept), the drafter a
  // token per step
  const vRead = new Map<number, Program>();
  const verifierRead = (k: number) => {
    if (!vRead.has(k)) {
      vRead.set(
        k,
        be.record((ops) => {
          v.modelOps(ops, k, be.view(v.passIds, 0, k), true);
          ops.copy(copy(vd.V, (k - 1) * vd.V, 0), { src: v.act.logits, dst: vNext });
        }),
      );
    }
    return vRead.get(k)!;
  };
  const drafterStep = be.record((ops) => {
    dr.modelOps(ops, 1, dr.row(0), false);
    ops.copy(copy(dd.V, 0, 0), { src: dr.act.logits, dst: dNext });
  });
  return { v, dr, L, ctl, out, rounds, verifierRead, drafterStep };
}

/** Speculative decoding with both models on the native engine (module comment). */
export class EngineSpeculative {
  private constructor(
    // deno-lint-ignore no-explicit-any
    readonly backend: Backend<any>,
    // deno-lint-ignore no-explicit-any
    private s: ReturnType<typeof build<any>>,
    private tokenizer: ByteBPE,
    readonly draftTokens: number,
    readonly draftBytes: number,
    readonly beta: number,
    readonly roundsPerSubmit: number,
  ) {}

  static async create(o: EngineSpeculativeOptions): Promise<EngineSpeculative> {
    const m = o.draftTokens ?? 3, M = o.draftBytes ?? 8, beta = o.beta ?? 1, R = o.roundsPerSubmit ?? 16;
    const int = (x: number, lo: number, hi: number) => Number.isInteger(x) && x >= lo && x <= hi;
    if (!int(m, 1, 64)) {
      throw new Error(`EngineSpeculative: draftTokens must be an integer in [1, 64] (got ${m})`);
    }
    if (!int(M, 1, 8)) {
      throw new Error(`EngineSpeculative: draftBytes must be an integer in [1, 8] (got ${M})`);
    }
    if (!int(beta, 1, 256)) {
      throw new Error(`EngineSpeculative: beta must be an integer in [1, 256] (got ${beta})`);
    }
    if (!int(R, 1, 256)) throw new Error(`EngineSpeculative: roundsPerSubmit must be in [1, 256] (got ${R})`);
    if (o.verifier.config.vocab_size !== 256) {
      throw new Error(
        `EngineSpeculative: the verifier must be a byte model (vocab_size 256, got ${o.verifier.config.vocab_size})`,
      );
    }
    if (o.drafter.config.vocab_size < o.tokenizer.vocabSize) {
      throw new Error(
        `EngineSpeculative: the drafter's vocab_size ${o.drafter.config.vocab_size} is smaller than the tokenizer's ${o.tokenizer.vocabSize}`,
      );
    }
    for (const [who, c] of [["verifier", o.verifier.config], ["drafter", o.drafter.config]] as const) {
      const why = undecodable(c);
      if (why) throw new Error(`EngineSpeculative: the ${who}: ${why}`);
    }
    const L = specLayout(M, m);
    // deno-lint-ignore no-explicit-any
    const be: Backend<any> = await createBackend(o.backend ?? "webgpu", {
      allowSoftware: o.allowSoftwareGpu,
      readbackFloats: R * L.outStride,
    });
    try {
      const s = build(be, o, M, m, beta, R);
      await writeDecoderParams(be, s.v, o.verifier.params, "EngineSpeculative verifier");
      await writeDecoderParams(be, s.dr, o.drafter.params, "EngineSpeculative drafter");
      return new EngineSpeculative(be, s, o.tokenizer, m, M, beta, R);
    } catch (e) {
      be.destroy();
      throw e;
    }
  }

  /** Dispatches (webgpu) or op calls of one round. */
  dispatchesPerRound(): number {
    return this.s.rounds.labels.length / this.roundsPerSubmit;
  }

  /**
   * Decodes `maxBytes` bytes after `prompt` (at least one byte). `onBytes` receives each block of emitted
   * bytes as it arrives, with per byte 1 for an accepted draft byte and 0 for the verifier's own.
   */
  async decode(
    prompt: Uint8Array,
    maxBytes: number,
    onBytes?: (bytes: Uint8Array, accepted: Uint8Array) => void | Promise<void>,
  ): Promise<SpeculativeResult> {
    if (prompt.length === 0) throw new Error("EngineSpeculative: the prompt must hold at least one byte");
    if (!(Number.isInteger(maxBytes) && maxBytes >= 0)) {
      throw new Error(`EngineSpeculative: maxBytes must be a non-negative integer (got ${maxBytes})`);
    }
    const be = this.backend, s = this.s, L = s.L, M = this.draftBytes, R = this.roundsPerSubmit;
    const t0 = performance.now();
    // empty states: every conv window and SSM state zero, and the control buffer cleared
    resetDecoderState(be, s.v);
    resetDecoderState(be, s.dr);
    // the verifier reads the whole prompt; the drafter its complete pre-split pieces (all of it when it is
    // one piece), the rest is pending
    for (let i = 0; i < prompt.length; i += M) {
      const chunk = prompt.subarray(i, Math.min(i + M, prompt.length));
      await be.submit([s.verifierRead(chunk.length)], { writes: [[s.v.passIds, Int32Array.from(chunk)]] });
    }
    let lastStart = 0;
    preSplit(prompt, (start) => (lastStart = start));
    // (a last piece longer than extendMax is cut: the drafter reads its head as tokens too)
    const cut = Math.max(lastStart > 0 ? lastStart : prompt.length, prompt.length - L.extendMax);
    const tokens = this.tokenizer.encode(prompt.subarray(0, cut));
    for (const t of tokens) await be.submit([s.drafterStep], { writes: [[s.dr.row(0), Int32Array.of(t)]] });
    const ctl = new Int32Array(align(L.size));
    const pending = prompt.subarray(cut);
    ctl[L.at.pLen] = pending.length;
    ctl.set(pending, L.at.P);
    be.write(s.ctl, ctl);

    const bytes = new Uint8Array(maxBytes), accepted = new Uint8Array(maxBytes);
    const st = { rounds: 0, drafted: 0, accepted: 0, corrected: 0 };
    let end = 0;
    const queue: Promise<{ floats: Float32Array }>[] = [];
    const more = async () => {
      const { readback } = await be.submit([s.rounds], {
        readback: { from: s.out, floats: R * L.outStride },
      });
      queue.push(readback!);
    };
    try {
      if (maxBytes > 0) { for (let i = 0; i < AHEAD; i++) await more(); }
      while (end < maxBytes) {
        const out = new Int32Array((await queue.shift()!).floats.buffer);
        if (end + R * (M + 1) < maxBytes) await more(); // may still be needed: keep the device busy
        const from = end;
        for (let r = 0; r < R && end < maxBytes; r++) {
          const o = r * L.outStride, count = out[o], n = out[o + M + 2];
          st.rounds++;
          st.drafted += n;
          for (let q = 0; q < count && end < maxBytes; q++) {
            const own = q === count - 1;
            bytes[end] = out[o + 1 + q];
            accepted[end++] = own ? 0 : 1;
            if (own) st.corrected++;
            else st.accepted++;
          }
        }
        await onBytes?.(bytes.subarray(from, end), accepted.subarray(from, end));
        if (end < maxBytes && queue.length === 0) await more();
      }
    } finally {
      await Promise.allSettled(queue); // submissions still in flight finish, also when a callback threw
    }
    const seconds = (performance.now() - t0) / 1000;
    const stats: SpeculativeStats = {
      bytes: maxBytes,
      rounds: st.rounds,
      draftedTokens: st.rounds * this.draftTokens,
      drafted: st.drafted,
      accepted: st.accepted,
      acceptanceRate: st.drafted ? st.accepted / st.drafted : 0,
      corrected: st.corrected,
      verifierPasses: st.rounds,
      verifierSteps: st.rounds,
      drafterPasses: 0,
      drafterSteps: st.rounds * this.draftTokens + tokens.length,
      seconds,
      bytesPerSecond: maxBytes / seconds,
    };
    return { bytes, accepted, stats };
  }

  /**
   * Benchmarks: queues `submissions` more blocks of rounds after a `decode`, reading nothing back, and waits
   * for the device (their bytes are discarded; the state moves on as decoding would).
   */
  async runRounds(submissions: number): Promise<void> {
    for (let i = 0; i < submissions; i++) await this.backend.submit([this.s.rounds]);
    await this.backend.finish();
  }

  destroy(): void {
    this.backend.destroy();
  }
}
