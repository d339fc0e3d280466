/**
 * Decoding on the native engine: a Mamba LM's recurrent step for a batch of sequences (1..64), the state
 * (every layer's conv window and SSM state) held in buffers on the engine's backend and updated in place,
 * the greedy choice made there too, so that greedy generation runs `stepsPerSubmit` steps per submission
 * with each step's chosen id feeding the next step on the device and only the chosen ids read back.
 *
 * One step, per sequence b (shapes for the batch: B sequences, d d_model, e d_inner, n d_state, r dt_rank,
 * R = r + 2n, k d_conv, V padded vocabulary):
 *   h (B, d) = E[id]                                   embedding
 *   per layer: x | z (B, 2e) = rmsnorm(h [+ out]) w W_in^T   the residual add, the norm and in_proj
 *                                                      in one dispatch (normGemv)
 *              u (B, e) = silu(conv(window <- x))      the window moves by one (convStep)
 *              x_dbl (B, R) = u W_xp^T
 *              y (B, e) = ssm step with delta = x_dbl[:, :r] W_dt^T computed per channel inside it,
 *                         h_ssm updated, gated by silu(z)                   (ssmStep)
 *              out (B, d) = y W_out^T
 *   logits (B, V) = rmsnorm(h + out) w_f W_head^T (normGemv);  id' = argmax over the real vocabulary
 * The math is lib/models/mamba.ts's step (tests compare the two, and the greedy bytes with mamba_ssm's).
 *
 * Ids live in a ring of stepsPerSubmit + 1 rows (each row ALIGN floats apart so that every row is a view):
 * step j of a submission reads row j and writes its choice into row j + 1; the last step also writes row 0,
 * where the next submission starts.
 */
import { dims, type MambaConfig } from "../models/mamba_config.ts";
import { gemmSpec } from "../kernels/js/gemm.ts";
import type { EngineOps } from "../kernels/js/ops.ts";
import { MAX_SAMPLE_VOCAB, NOT_FINITE_ID } from "../kernels/js/decode.ts";
import { NonFiniteError } from "../io/errors.ts";
import {
  ALIGN,
  align,
  type Backend,
  createBackend,
  type EngineBackendName,
  type LabelProfile,
  profileByLabel,
  type Program,
} from "./backend.ts";
import { arenaLayout, parameterViews } from "./mamba.ts";

const NORM_EPS = 1e-5; // RMSNorm's epsilon (models/mamba_config.ts NORM_EPSILON)
/**
 * From this d_model up, the conv step runs in in_proj's epilogue (gemvConv, the norm folded in too): one
 * dispatch where normGemv then convStep take two.
 */
export const FUSED_CONV_WIDTH = 1024;

export interface MambaDecoderOptions {
  config: MambaConfig;
  /** Every parameter under mamba_ssm's state-dict names (lm_head.weight ignored when tied). */
  params: Map<string, Float32Array>;
  /** Sequences decoded together (default 1; at most 64). */
  batch?: number;
  backend?: EngineBackendName;
  /** Greedy steps per submission (default 64): ids of that many steps come back per read-back. */
  stepsPerSubmit?: number;
  /** webgpu: accept a software adapter (tests on machines without a GPU). */
  allowSoftwareGpu?: boolean;
  /** The most ids one verification pass reads (`pass`; batch 1; at most 8; default 8; 0: no pass). */
  maxPass?: number;
  /** `sample`'s rule (lib/decode/sample.ts pickToken's), fixed when the programs are recorded. */
  sampling?: Sampling;
  /** Norm, in_proj and the conv step as one dispatch (gemvConv; default: from d_model FUSED_CONV_WIDTH up). */
  fusedConv?: boolean;
  /** webgpu: ask for timestamp queries (`profileStep`). */
  timestamps?: boolean;
}

/** Sampling on the device: temperature > 0, topK (0: all), topP in (0, 1]. */
export interface Sampling {
  temperature: number;
  topK: number;
  topP: number;
}

/**
 * Buffers and programs of a decoder on backend `be` (B its buffer type): `batch` sequences, greedy runs of
 * K steps, passes of up to maxPass ids. lib/engine/speculative.ts builds two on one backend.
 */
export function buildDecoder<B>(
  be: Backend<B>,
  cfg: MambaConfig,
  o: { batch: number; K: number; maxPass: number; sampling?: Sampling; fusedConv?: boolean },
) {
  const { batch, K, maxPass, sampling } = o;
  const { d, e, n, r, k, V, L } = dims(cfg);
  const Bq = batch, R = r + 2 * n, convBias = cfg.ssm_cfg.conv_bias;
  const rows = Math.max(Bq, maxPass); // activation rows: the batch's sequences, or a pass's positions
  const fusedConv = o.fusedConv ?? d >= FUSED_CONV_WIDTH;
  const layout = arenaLayout(cfg);
  const f32 = (floats: number, label: string) => be.f32(floats, label);
  const P = f32(layout.total, "parameters");
  const W = parameterViews(be, P, cfg, layout);
  // the state: per layer the conv window (B, e, k), oldest input first, and the SSM state (B, e, n)
  const cs = align(Bq * e * k), ss = align(Bq * e * n);
  const convState = f32(L * cs, "conv windows"), ssmState = f32(L * ss, "SSM states");
  const window = (i: number) => be.view(convState, i * cs, Bq * e * k);
  const hState = (i: number) => be.view(ssmState, i * ss, Bq * e * n);
  const aStride = align(e * n);
  const A = f32(L * aStride, "A = -exp(A_log)"); // (L, e, n), computed once after the weights are written
  const rowFloats = align(Bq);
  const ring = be.i32((K + 1) * rowFloats, "ids ring"); // (K + 1) rows of B ids
  const row = (j: number) => be.view(ring, j * rowFloats, Bq);
  const act = {
    res: f32(rows * d, "residual stream"), // (rows, d)
    xz: f32(rows * 2 * e, "x | z"), // (rows, 2e): in_proj's output, x then the gate z
    u: f32(rows * e, "u"),
    xdbl: f32(rows * R, "x_dbl"),
    y: f32(rows * e, "y"),
    logits: f32(rows * V, "logits"),
  };
  // products, token-major (one row per sequence or position): C (M, N) = A (M, K) . W^T, W stored (N, K)
  const nt = (M: number, N: number, Kd: number, name: string) => gemmSpec(M, N, Kd, "NT", { name });
  // a pass: the ids it reads, and per layer the conv window and SSM state before it and after each id
  const passIds = be.i32(align(Math.max(1, maxPass)), "pass ids");
  const cSnap = align((maxPass + 1) * e * k), hSnap = align((maxPass + 1) * e * n);
  const convSnaps = maxPass ? f32(L * cSnap, "conv windows of a pass") : undefined;
  const ssmSnaps = maxPass ? f32(L * hSnap, "SSM states of a pass") : undefined;
  // A (L, e, n) = -exp(A_log): every layer's A_log lies together in the arena (arenaLayout)
  const prepare = be.record((ops) =>
    ops.negExp({ count: layout.aLogFloats }, { x: be.view(P, layout.aLogStart, layout.aLogFloats), y: A })
  );

  /**
   * The model over M rows: M sequences one step each (`pass` false), or M positions of one sequence read
   * in one pass (the conv and the SSM carried from position to position, snapshots kept); logits (M, V).
   */
  const modelOps = (ops: EngineOps<B>, M: number, ids: B, pass: boolean) => {
    const g = { xProj: nt(M, R, e, "xProj"), outProj: { ...nt(M, d, e, "outProj"), accumulate: true } };
    const emb = pass ? { batch: 1, len: M, stride: M, d, V } : { batch: M, len: 1, stride: 1, d, V };
    ops.embedding(emb, { ids, table: W.E, out: act.res });
    // the residual stream h lives in one buffer: each out_proj adds its product to it in place (one lane per
    // element), and each norm is folded into the product that reads h
    const norm = { eps: NORM_EPS };
    for (let i = 0; i < L; i++) {
      const w = W.layers[i];
      const snaps = pass ? be.view(convSnaps!, i * cSnap, cSnap) : undefined;
      if (fusedConv) {
        // norm, in_proj and the conv step in one dispatch: u = silu(conv(window <- x)), x | z = rmsnorm(h) w in_proj^T
        ops.gemvConv({ rows: M, K: d, ch: e, k, bias: convBias, pass, norm }, {
          a: act.res,
          gain: w.norm,
          W: w.inW,
          c: act.xz,
          window: window(i),
          w: w.convW,
          bias: w.convB,
          u: act.u,
          snaps,
        });
      } else {
        // x | z (B, 2e) = rmsnorm(h) w in_proj^T, then the conv step its own dispatch
        ops.normGemv({ rows: M, d, N: 2 * e, ...norm }, { x: act.res, w: w.norm, W: w.inW, c: act.xz });
        const conv = { ch: e, k, bias: convBias, xStride: 2 * e };
        const convIo = { x: act.xz, window: window(i), w: w.convW, bias: w.convB, y: act.u };
        if (pass) ops.convScan({ ...conv, len: M }, { ...convIo, snaps: snaps! });
        else ops.convStep({ ...conv, batch: M }, convIo);
      }
      ops.gemm(g.xProj, { a: act.u, b: w.xpW, c: act.xdbl }); // dt | B | C (B, R)
      // dt_proj inside the step: delta = x_dbl[:, 0:r] W_dt^T, per channel
      const ssm = { dim: e, ns: n, softplus: true, row: R, rank: r, zStride: 2 * e, zOffset: e };
      const ssmIo = {
        u: act.u,
        dtW: w.dtW,
        deltaBias: w.dtB,
        A: be.view(A, i * aStride, e * n),
        xdbl: act.xdbl,
        D: w.D,
        z: act.xz,
        h: hState(i),
        y: act.y,
      };
      if (pass) ops.ssmScan({ ...ssm, len: M }, { ...ssmIo, snaps: be.view(ssmSnaps!, i * hSnap, hSnap) });
      else ops.ssmStep({ ...ssm, batch: M }, ssmIo);
      ops.gemm(g.outProj, { a: act.y, b: w.outW, c: act.res }); // h (B, d) += y out_proj^T
    }
    // logits (M, V) = rmsnorm(h) w_f head^T
    ops.normGemv({ rows: M, d, N: V, ...norm }, { x: act.res, w: W.normF, W: W.head, c: act.logits });
  };
  // sampling's uniforms: one row of B per step of a submission, written by the host (its seeded Rng)
  const uniforms = sampling ? f32(K * rowFloats, "uniforms") : undefined;
  /** One step: ids from ring row `from`, choice into row `to` (and row 0 when `wrap`), greedy or sampled. */
  const stepOps = (ops: EngineOps<B>, from: number, to: number, wrap: boolean, sampled = false) => {
    modelOps(ops, Bq, row(from), false);
    const choice = {
      rows: Bq,
      V,
      vocab: cfg.vocab_size,
      outOffset: to * rowFloats,
      ...(wrap ? { alsoOffset: 0 } : {}),
    };
    if (sampled) {
      ops.sample({ ...choice, ...sampling!, uOffset: from * rowFloats }, {
        logits: act.logits,
        u: uniforms!,
        ids: ring,
      });
    } else ops.argmax(choice, { logits: act.logits, ids: ring });
  };
  const single = be.record((ops) => stepOps(ops, 0, 1, false));
  const singleSampled = sampling ? be.record((ops) => stepOps(ops, 0, 1, false, true)) : undefined;
  const sampled = sampling
    ? be.record((ops) => {
      for (let j = 0; j < K; j++) stepOps(ops, j, j + 1, j === K - 1, true);
    })
    : undefined;
  // passes of 1..maxPass ids, and roll-backs to the state after a of them (0..maxPass), made when first used
  const passes = new Map<number, Program>();
  const pass = (m: number) => {
    if (!passes.has(m)) passes.set(m, be.record((ops) => modelOps(ops, m, be.view(passIds, 0, m), true)));
    return passes.get(m)!;
  };
  /**
   * Every layer's conv window and SSM state back to those a pass kept after slot[at] of its ids (0: before
   * it); the slot is read on the device, so one recording serves every roll-back (`rollTo` writes the slot,
   * a speculative round's acceptance kernel does).
   */
  const rollOps = (ops: EngineOps<B>, slot: B, at: number) => {
    const layers = { rows: L, indexAt: at };
    ops.copyIndexed(
      { ...layers, count: e * k, srcRowStride: cSnap, dstRowStride: cs, slotStride: e * k },
      { src: convSnaps!, dst: convState, ctl: slot },
    );
    ops.copyIndexed(
      { ...layers, count: e * n, srcRowStride: hSnap, dstRowStride: ss, slotStride: e * n },
      { src: ssmSnaps!, dst: ssmState, ctl: slot },
    );
  };
  const rollSlot = be.i32(ALIGN, "roll-back slot");
  const roll = maxPass ? be.record((ops) => rollOps(ops, rollSlot, 0)) : undefined;
  const greedy = be.record((ops) => {
    for (let j = 0; j < K; j++) stepOps(ops, j, j + 1, j === K - 1);
  });
  return {
    layout,
    P,
    convState,
    ssmState,
    /** floats between two layers' conv windows and SSM states */
    strides: { cs, ss },
    modelOps,
    rollOps,
    rollSlot,
    ring,
    row,
    rowFloats,
    act,
    passIds,
    uniforms,
    programs: { prepare, single, greedy, pass, roll, singleSampled, sampled },
    V,
  };
}

/** Writes every parameter into the decoder's arena and computes A; names a missing or mis-sized one. */
export async function writeDecoderParams<B>(
  be: Backend<B>,
  s: ReturnType<typeof buildDecoder<B>>,
  params: Map<string, Float32Array>,
  who: string,
): Promise<void> {
  for (const slot of s.layout.slots.values()) {
    const v = params.get(slot.name);
    if (!v || v.length !== slot.size) {
      throw new Error(
        `${who}: params "${slot.name}": ${v ? `${v.length} values, expected ${slot.size}` : "missing"}`,
      );
    }
    be.write(s.P, v, slot.offset);
  }
  await be.submit([s.programs.prepare]);
  await be.finish();
}

/**
 * Stops decoding at an id the device marked NOT_FINITE_ID (its logits held NaN or an infinity: a model
 * whose state or weights overflowed), as the host path's checkLogits does: no token is emitted from them.
 */
function refuseNotFinite(ids: Int32Array, firstStep: number, B: number): void {
  const i = ids.indexOf(NOT_FINITE_ID);
  if (i < 0) return;
  throw new NonFiniteError(
    `the model's logits are not finite at generated token ${firstStep + Math.floor(i / B)}` +
      `${B > 1 ? ` of sequence ${i % B}` : ""}; no token is emitted from them`,
  );
}

/** Zeroes a decoder's state: every layer's conv window and SSM state (before any input). */
export function resetDecoderState<B>(be: Backend<B>, s: ReturnType<typeof buildDecoder<B>>): void {
  // deno-lint-ignore no-explicit-any
  const floats = (buf: any) => (buf instanceof Float32Array ? buf.length : buf.size / 4);
  for (const buf of [s.convState, s.ssmState]) be.write(buf, new Float32Array(floats(buf)));
}

/** Why a Mamba config cannot be decoded on the engine (the engine's blocks: RMSNorm, no projection biases). */
export function undecodable(cfg: MambaConfig): string | undefined {
  return !cfg.rms_norm || cfg.ssm_cfg.bias
    ? "RMSNorm models without in/out projection biases only"
    : undefined;
}

/** A Mamba LM decoded on the native engine (module comment). */
export class MambaDecoder {
  private host: Int32Array;
  private constructor(
    // deno-lint-ignore no-explicit-any
    readonly backend: Backend<any>,
    // deno-lint-ignore no-explicit-any
    private s: ReturnType<typeof buildDecoder<any>>,
    readonly config: MambaConfig,
    readonly batch: number,
    readonly stepsPerSubmit: number,
    readonly maxPass: number,
  ) {
    this.host = new Int32Array(s.rowFloats);
  }

  static async create(o: MambaDecoderOptions): Promise<MambaDecoder> {
    const cfg = o.config, batch = o.batch ?? 1, K = o.stepsPerSubmit ?? 64;
    const maxPass = o.maxPass ?? (batch === 1 ? 8 : 0);
    if (!(Number.isInteger(maxPass) && maxPass >= 0 && maxPass <= 8) || (maxPass > 0 && batch !== 1)) {
      throw new Error(
        `MambaDecoder: maxPass must be 0..8, and a pass reads one sequence (batch 1); got ${maxPass}`,
      );
    }
    const why = undecodable(cfg);
    if (why) throw new Error(`MambaDecoder: ${why} (as MambaEngine)`);
    if (!(Number.isInteger(batch) && batch >= 1 && batch <= 64)) {
      throw new Error(`MambaDecoder: batch must be an integer in [1, 64] (got ${batch})`);
    }
    if (!(Number.isInteger(K) && K >= 1)) throw new Error(`MambaDecoder: stepsPerSubmit ${K}`);
    const sm = o.sampling;
    if (
      sm && !(sm.temperature > 0 && Number.isInteger(sm.topK) && sm.topK >= 0 && sm.topP > 0 && sm.topP <= 1)
    ) {
      throw new Error(
        `MambaDecoder: sampling needs temperature > 0, topK >= 0, topP in (0, 1]: ${JSON.stringify(sm)}`,
      );
    }
    if (sm && cfg.vocab_size > MAX_SAMPLE_VOCAB) {
      throw new Error(
        `MambaDecoder: sampling on the device sorts at most ${MAX_SAMPLE_VOCAB} ids (vocab ${cfg.vocab_size})`,
      );
    }
    // deno-lint-ignore no-explicit-any
    const be: Backend<any> = await createBackend(o.backend ?? "webgpu", {
      allowSoftware: o.allowSoftwareGpu,
      timestamps: o.timestamps,
      timestampSlots: o.timestamps ? 1 : 0,
      readbackFloats: Math.max(align(batch) * K, Math.max(batch, maxPass) * dims(cfg).V),
    });
    try {
      const s = buildDecoder(be, cfg, { batch, K, maxPass, sampling: o.sampling, fusedConv: o.fusedConv });
      await writeDecoderParams(be, s, o.params, "MambaDecoder");
      return new MambaDecoder(be, s, cfg, batch, K, maxPass);
    } catch (e) {
      be.destroy();
      throw e;
    }
  }

  /** Back to the empty state (before any input): every conv window and SSM state zero. */
  reset(): void {
    resetDecoderState(this.backend, this.s);
  }

  private idsWrite(ids: ArrayLike<number>): [unknown, Int32Array][] {
    if (ids.length !== this.batch) {
      throw new RangeError(`expected ${this.batch} ids (one per sequence), got ${ids.length}`);
    }
    this.host.set(ids);
    return [[this.s.row(0), this.host.subarray(0, this.batch)]];
  }

  /** Reads one id per sequence; returns the logits (B, V padded) for the next one. */
  async step(ids: ArrayLike<number>): Promise<Float32Array> {
    const p = this.s.programs;
    const { readback } = await this.backend.submit([p.single], {
      writes: this.idsWrite(ids),
      readback: { from: this.s.act.logits, floats: this.batch * this.s.V },
    });
    return (await readback!).floats;
  }

  /** Reads one id per sequence without reading anything back (a prompt's bytes but its last). */
  async feed(ids: ArrayLike<number>): Promise<void> {
    await this.backend.submit([this.s.programs.single], { writes: this.idsWrite(ids) });
  }

  /**
   * Greedy decoding: reads `first` (one id per sequence: the prompt's last), then generates `count` ids per
   * sequence, each the argmax of the logits after the one before, on the device. Returns them (count, B)
   * row-major; `onIds` receives each submission's ids as they arrive. The state ends after the last id read.
   */
  async greedy(
    first: ArrayLike<number>,
    count: number,
    onIds?: (ids: Int32Array) => void | Promise<void>,
  ): Promise<Int32Array> {
    return await this.run(first, count, undefined, onIds);
  }

  /**
   * As `greedy`, each id sampled on the device by the decoder's `sampling` rule, with uniforms drawn from
   * `uniform` (step by step, sequence by sequence; written with each submission, never read back).
   */
  async sample(
    first: ArrayLike<number>,
    count: number,
    uniform: () => number,
    onIds?: (ids: Int32Array) => void | Promise<void>,
  ): Promise<Int32Array> {
    if (!this.s.uniforms) throw new Error("MambaDecoder.sample: create the decoder with `sampling`");
    return await this.run(first, count, uniform, onIds);
  }

  private async run(
    first: ArrayLike<number>,
    count: number,
    uniform: (() => number) | undefined,
    onIds?: (ids: Int32Array) => void | Promise<void>,
  ): Promise<Int32Array> {
    const K = this.stepsPerSubmit, B = this.batch, rf = this.s.rowFloats, p = this.s.programs;
    const out = new Int32Array(count * B);
    if (count === 0) {
      await this.feed(first);
      return out;
    }
    let writes: [unknown, Float32Array | Int32Array][] = this.idsWrite(first);
    // the uniforms of `steps` steps, row j for step j (the host's generator, in step order)
    const draws = (steps: number): [unknown, Float32Array][] => {
      if (!uniform) return [];
      const u = new Float32Array(steps * rf);
      for (let j = 0; j < steps; j++) for (let b = 0; b < B; b++) u[j * rf + b] = uniform();
      return [[this.s.uniforms, u]];
    };
    // whole submissions of K steps, queued ahead (the ring's row 0 carries the last id between them);
    // the last id each produces is read by the next one, so a count not a multiple of K ends with single steps
    const pending: Promise<{ floats: Float32Array }>[] = [];
    const whole = Math.floor(count / K);
    for (let s = 0; s < whole; s++) {
      const { readback } = await this.backend.submit([uniform ? p.sampled! : p.greedy], {
        writes: [...writes, ...draws(K)],
        readback: { from: this.backend.view(this.s.ring, rf, K * rf), floats: K * rf },
      });
      writes = [];
      pending.push(readback!);
    }
    let at = 0;
    try {
      for (const r of pending) {
        const ids = new Int32Array((await r).floats.buffer);
        for (let j = 0; j < K; j++) out.set(ids.subarray(j * rf, j * rf + B), (at + j) * B);
        refuseNotFinite(out.subarray(at * B, (at + K) * B), at, B);
        await onIds?.(out.subarray(at * B, (at + K) * B));
        at += K;
      }
    } catch (e) {
      await Promise.allSettled(pending); // read-backs still in flight finish before anything is released
      throw e;
    }
    for (; at < count; at++) {
      // one step: its choice (ring row 1) is both this output and the next step's input (row 0)
      const { readback } = await this.backend.submit([uniform ? p.singleSampled! : p.single], {
        writes: [...writes, ...draws(1)],
        readback: { from: this.s.row(1), floats: B },
      });
      const ids = new Int32Array((await readback!).floats.buffer).slice(0, B);
      refuseNotFinite(ids, at, B);
      out.set(ids, at * B);
      writes = [[this.s.row(0), ids]];
      await onIds?.(ids);
    }
    return out;
  }

  /**
   * The verification pass: reads `ids` (1..maxPass of them, one sequence) from the current state in one pass
   * (each weight matrix read once for all of them) and returns their logits (ids.length, V padded); the
   * state after each id is kept, so `rollTo` can stop after any prefix without reading anything again.
   */
  async pass(ids: ArrayLike<number>): Promise<Float32Array>;
  /** With `read: false`, only queued: nothing read back (timing the pass itself). */
  async pass(ids: ArrayLike<number>, o: { read: false }): Promise<undefined>;
  async pass(ids: ArrayLike<number>, o: { read?: boolean } = {}): Promise<Float32Array | undefined> {
    const m = ids.length;
    if (!(m >= 1 && m <= this.maxPass)) throw new RangeError(`pass: 1..${this.maxPass} ids (got ${m})`);
    const { readback } = await this.backend.submit([this.s.programs.pass(m)], {
      writes: [[this.s.passIds, Int32Array.from(ids)]],
      readback: o.read === false ? undefined : { from: this.s.act.logits, floats: m * this.s.V },
    });
    this.passed = m;
    return readback ? (await readback).floats : undefined;
  }
  private passed = 0;

  /** The state after the first `a` ids of the last pass (0: before it). */
  async rollTo(a: number): Promise<void> {
    if (!(Number.isInteger(a) && a >= 0 && a <= this.passed)) {
      throw new RangeError(`rollTo: 0..${this.passed} (ids of the last pass), got ${a}`);
    }
    const roll = this.s.programs.roll;
    if (!roll) throw new RangeError("rollTo: this decoder reads no passes (maxPass 0)");
    await this.backend.submit([roll], { writes: [[this.s.rollSlot, Int32Array.of(a)]] });
  }

  /**
   * Device milliseconds of one step's dispatches (webgpu: timestamps per dispatch), summed by kernel; with
   * `passOf`, those of a verification pass of that many ids instead.
   */
  async profileStep(passOf?: number): Promise<LabelProfile[]> {
    const p = this.s.programs;
    return await profileByLabel(this.backend, [passOf ? p.pass(passOf) : p.single]);
  }

  /**
   * Device milliseconds per step of one whole greedy submission (stepsPerSubmit steps in one pass, timed
   * by timestamps at its ends; decoder created with `timestamps`): what generation costs the GPU, beside
   * `profileStep`'s dispatches timed one by one. Decodes stepsPerSubmit ids from the current state.
   */
  async greedySubmissionMs(): Promise<number> {
    const { readback } = await this.backend.submit([this.s.programs.greedy], {
      timestampSlot: 0,
      readback: { from: this.s.row(1), floats: this.batch },
    });
    const ms = (await readback!).gpuMs?.[0];
    if (ms === undefined) {
      throw new Error("greedySubmissionMs: create the decoder with `timestamps` (webgpu)");
    }
    return ms / this.stepsPerSubmit;
  }

  /** Dispatches (webgpu) or op calls of one step. */
  dispatchesPerStep(): number {
    return this.s.programs.single.labels.length;
  }

  destroy(): void {
    this.backend.destroy();
  }
}
