/**
 * What every training engine shares (engine/mamba.ts, engine/transformer.ts): the flat arenas of
 * parameters, gradients and AdamW moments, the optimizer program (global gradient norm, clipping, the
 * halt on a non-finite loss or norm, AdamW with a no-decay range), the loss history copied out every
 * `readbackEvery` steps, and the host side of a step (queueing it, its learning rate and bias corrections,
 * delivering its stats, checkpoint state in and out). A model's engine supplies its layout, its programs
 * (forward, head and loss, backward) and its inputs.
 */
import { HISTORY_STRIDE, HYPER } from "../kernels/js/optim.ts";
import { sortTokensById } from "../kernels/js/norm.ts";
import { align, type Backend, profileByLabel, type Program } from "./backend.ts";

/** AdamW's settings (lib/train/adamw.ts AdamWConfig, the learning rate aside: it comes with each step). */
export interface EngineOptimizer {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** clip the global gradient norm to this (0: off) */
  clipNorm: number;
}

/** lib/train/adamw.ts ADAMW_DEFAULTS (a test keeps them equal; engine/ may not import train/). */
export const ENGINE_OPTIMIZER_DEFAULTS: EngineOptimizer = {
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  weightDecay: 0.1,
  clipNorm: 1,
};

export interface StepStats {
  /** 1-based step of this engine (since creation) */
  step: number;
  /** mean next-token cross-entropy (nats) before the update */
  loss: number;
  /** global gradient norm before clipping */
  gradNorm: number;
  /** the loss or norm was not finite: no update was made, nor will be by any later step */
  halted: boolean;
  /** GPU milliseconds of the step (webgpu with timing) */
  gpuMs?: number;
}

/** Where a parameter lives in the flat arenas (parameters, gradients, m, v share the layout). */
export interface Slot {
  name: string;
  shape: number[];
  offset: number;
  size: number;
}

/** An arena layout: the decayed parameters are [0, decayEnd) (AdamW's decay is one range). */
export interface ArenaLayout {
  slots: Map<string, Slot>;
  decayEnd: number;
  total: number;
}

/**
 * Lays parameters out with the decayed ones first, each at a multiple of ALIGN floats (a binding offset any
 * device accepts); the undecayed ones `together` picks come right after the decayed ones, side by side (Mamba's
 * A_log: one dispatch for all layers), and their range is returned.
 */
/** Throws, naming `who` and the field, unless every value is a positive integer (batch, length, ...). */
export function checkPositiveIntegers(who: string, values: Record<string, number>): void {
  for (const [k, v] of Object.entries(values)) {
    if (!(Number.isInteger(v) && v >= 1)) {
      throw new Error(`${who}: ${k} must be a positive integer (got ${v})`);
    }
  }
}

export function layoutArena(
  shapes: [string, number[]][],
  noDecay: (name: string) => boolean,
  together?: (name: string) => boolean,
): ArenaLayout & { togetherStart: number; togetherFloats: number } {
  const slots = new Map<string, Slot>();
  let offset = 0;
  const place = ([name, shape]: [string, number[]]) => {
    const size = shape.reduce((a, b) => a * b, 1);
    slots.set(name, { name, shape, offset, size });
    offset += align(size);
  };
  shapes.filter(([name]) => !noDecay(name)).forEach(place);
  const decayEnd = offset;
  const kept = together ? shapes.filter(([name]) => noDecay(name) && together(name)) : [];
  const togetherStart = offset;
  kept.forEach(place);
  const togetherFloats = offset - togetherStart;
  shapes.filter(([name]) => noDecay(name) && !(together?.(name))).forEach(place);
  return { slots, decayEnd, total: offset, togetherStart, togetherFloats };
}

/** The buffers of training beside a model's own: arenas, the step's host values, the loss history. */
export function trainingBuffers<B>(be: Backend<B>, layout: ArenaLayout, readbackEvery: number) {
  const f32 = (floats: number, label: string) => be.f32(floats, label);
  return {
    arena: { P: f32(layout.total, "parameters"), G: f32(layout.total, "gradients") },
    moments: { m: f32(layout.total, "AdamW m"), v: f32(layout.total, "AdamW v") },
    hyper: f32(HYPER.SIZE, "step hyper-parameters"), // lr, bias corrections, decay, slot
    state: f32(4, "optimizer state"), // halted, clip scale, norm, loss
    history: f32(readbackEvery * HISTORY_STRIDE, "loss history"), // (N, 4)
  };
}
export type TrainingBuffers<B> = ReturnType<typeof trainingBuffers<B>>;

/**
 * The optimizer's program: the gradient's sum of squares, then the step's loss (mean of lossRows over T
 * tokens), norm, clip scale and halt flag into the history, then AdamW over the arenas, in ranges a binding
 * can hold.
 */
export function recordOptimizer<B>(
  be: Backend<B>,
  t: TrainingBuffers<B>,
  layout: ArenaLayout,
  lossRows: B,
  T: number,
  o: EngineOptimizer,
): Program {
  const rangeFloats = Math.max(align(1), Math.floor(be.maxBindingFloats / align(1)) * align(1));
  const ranges: { start: number; count: number; parts: number; partOffset: number }[] = [];
  let parts = 0;
  for (let start = 0; start < layout.total; start += rangeFloats) {
    const count = Math.min(rangeFloats, layout.total - start);
    const p = Math.max(1, Math.min(1024, Math.ceil(count / 8192)));
    ranges.push({ start, count, parts: p, partOffset: parts });
    parts += p;
  }
  const partials = be.f32(parts, "gradient norm partials");
  return be.record((ops) => {
    for (const rg of ranges) {
      ops.sumSquares({ count: rg.count, parts: rg.parts, partOffset: rg.partOffset }, {
        x: be.view(t.arena.G, rg.start, rg.count),
        partials,
      });
    }
    // the loss, the norm, the clip scale, the halted flag, the step's history slot
    ops.finalizeStep({ parts, rows: T, clip: o.clipNorm }, {
      partials,
      loss: lossRows,
      hyper: t.hyper,
      state: t.state,
      history: t.history,
    });
    for (const rg of ranges) {
      const view = (buf: B) => be.view(buf, rg.start, rg.count);
      ops.adamw({
        count: rg.count,
        decayEnd: Math.max(0, Math.min(rg.count, layout.decayEnd - rg.start)),
        beta1: o.beta1,
        beta2: o.beta2,
        eps: o.eps,
      }, {
        param: view(t.arena.P),
        grad: view(t.arena.G),
        m: view(t.moments.m),
        v: view(t.moments.v),
        hyper: t.hyper,
        state: t.state,
      });
    }
  });
}

/** The host side of a training engine over arenas laid out by `layout`. */
export abstract class ArenaEngine {
  protected readonly hyper = new Float32Array(HYPER.SIZE);
  /** steps submitted by this engine, and AdamW steps counted before them (a checkpoint's) */
  protected steps = 0;
  private adamBase = 0;
  /** steps whose stats wait for the next read-back */
  private waiting: { step: number; resolve: (s: StepStats) => void; reject: (e: unknown) => void }[] = [];
  private haltedAt?: number;
  /** history slots: steps between read-backs */
  private readonly N: number;

  /** The step's ids and their sort by id (the embedding's scatter-add), as written to `tokens`' buffers. */
  private readonly host: { ids: Int32Array; order: Int32Array; rowStart: Int32Array };

  protected constructor(
    // deno-lint-ignore no-explicit-any
    readonly backend: Backend<any>,
    // deno-lint-ignore no-explicit-any
    protected readonly training: TrainingBuffers<any>,
    protected readonly layout: ArenaLayout,
    readonly optimizer: EngineOptimizer,
    readbackEvery: number,
    private readonly timing: boolean,
    /** the engine's name in messages */
    private readonly who: string,
    /** the ids' buffers, the shape of a step, the vocabulary and its padded width (logits per row) */
    private readonly tokens: {
      ids: unknown;
      order: unknown;
      rowStart: unknown;
      batch: number;
      length: number;
      vocab: number;
      V: number;
    },
    /**
     * A step's programs: forward, head and loss, backward (`gradient`), then the optimizer's
     * (recordOptimizer); and the per-token losses the head writes (`lossCount` of them).
     */
    private readonly program: {
      gradient: Program[];
      optimizer: Program;
      lossRows: unknown;
      lossCount: number;
    },
  ) {
    this.N = readbackEvery;
    const { batch, length, V } = tokens;
    this.host = {
      ids: new Int32Array(batch * (length + 1)),
      order: new Int32Array(batch * length),
      rowStart: new Int32Array(V + 1),
    };
  }

  /** A training step's programs in their order: forward, head and loss, backward, optimizer. */
  get stepPrograms(): Program[] {
    return [...this.program.gradient, this.program.optimizer];
  }

  /** Writes ids (b, l+1) (or (b, l): inputs only, for logits) and their sort by id into the host arrays. */
  protected prepare(ids: Int32Array): void {
    const { batch, length, vocab, V } = this.tokens, h = this.host;
    if (ids.length === batch * length) { // inputs only: targets unused (logits)
      for (let bb = 0; bb < batch; bb++) {
        h.ids.set(ids.subarray(bb * length, (bb + 1) * length), bb * (length + 1));
      }
    } else if (ids.length === batch * (length + 1)) h.ids.set(ids);
    else throw new RangeError(`ids: expected ${batch} x ${length + 1} values (b, l+1), got ${ids.length}`);
    sortTokensById(h.ids, { batch, len: length, stride: length + 1, d: 0, V }, vocab, h.order, h.rowStart);
  }

  protected writes(): [unknown, Float32Array | Int32Array][] {
    const t = this.tokens, h = this.host;
    return [[t.ids, h.ids], [t.order, h.order], [t.rowStart, h.rowStart], [this.training.hyper, this.hyper]];
  }

  /** Writes host tensors into an arena (every parameter of the layout required). */
  protected upload(buf: unknown, values: Map<string, Float32Array>, what: string): void {
    for (const slot of this.layout.slots.values()) {
      const v = values.get(slot.name);
      if (!v) throw new Error(`${this.who}: ${what} lacks "${slot.name}"`);
      if (v.length !== slot.size) {
        throw new Error(
          `${this.who}: ${what} "${slot.name}" has ${v.length} values, ` +
            `expected [${slot.shape}] = ${slot.size}`,
        );
      }
      this.backend.write(buf, v, slot.offset);
    }
  }

  protected async download(buf: unknown): Promise<Map<string, Float32Array>> {
    const all = await this.backend.read(buf, 0, this.layout.total);
    const out = new Map<string, Float32Array>();
    for (const slot of this.layout.slots.values()) {
      out.set(slot.name, all.slice(slot.offset, slot.offset + slot.size));
    }
    return out;
  }

  /**
   * Queues one training step on ids (b, l+1) (inputs ids[:, :l], next-token targets ids[:, 1:]) with
   * learning rate `lr`: forward, backward, clipping and AdamW, as one submission. Resolves once queued
   * (waiting only when `readback` slots are all in flight); `stats` resolves when the step's loss has
   * been read back (every readbackEvery steps, or at `flush`).
   */
  async step(ids: Int32Array, lr: number): Promise<{ step: number; stats: Promise<StepStats> }> {
    if (this.haltedAt !== undefined) {
      throw new Error(
        `${this.who}: halted at step ${this.haltedAt} (non-finite loss or gradient norm); ` +
          "no update was made since",
      );
    }
    this.prepare(ids);
    const slot = this.nextStep(lr);
    const step = this.steps;
    const stats = new Promise<StepStats>((resolve, reject) => this.waiting.push({ step, resolve, reject }));
    const { readback } = await this.backend.submit(this.stepPrograms, {
      writes: this.writes(),
      readback: slot === this.N - 1
        ? { from: this.training.history, floats: this.N * HISTORY_STRIDE }
        : undefined,
      timestampSlot: this.timing ? slot : undefined,
    });
    if (readback) this.deliver(readback).catch(() => {}); // failures reach the steps' stats
    return { step, stats };
  }

  /** Fills the step's host values (learning rate, AdamW's bias corrections, history slot); counts it. */
  protected nextStep(lr: number): number {
    const t = this.adamBase + this.steps + 1, o = this.optimizer, h = this.hyper;
    h[HYPER.LR] = lr;
    h[HYPER.BC1] = 1 - o.beta1 ** t;
    h[HYPER.BC2] = 1 - o.beta2 ** t;
    h[HYPER.DECAY] = 1 - lr * o.weightDecay;
    const slot = this.steps % this.N;
    h[HYPER.SLOT] = slot;
    this.steps++;
    return slot;
  }

  /** Resolves the waiting steps' stats from a read-back of the history; resolves when they are. */
  private deliver(readback: Promise<{ floats: Float32Array; gpuMs?: Float64Array }>): Promise<void> {
    const batch = this.waiting.splice(0);
    return readback.then(({ floats, gpuMs }) => {
      for (const w of batch) {
        const slot = (w.step - 1) % this.N, o = slot * HISTORY_STRIDE;
        const halted = floats[o + 2] !== 0;
        if (halted && (this.haltedAt === undefined || w.step < this.haltedAt)) this.haltedAt = w.step;
        w.resolve({ step: w.step, loss: floats[o], gradNorm: floats[o + 1], halted, gpuMs: gpuMs?.[slot] });
      }
    }, (e) => {
      for (const w of batch) w.reject(e);
      throw e;
    });
  }

  /** Reads back the stats of every step queued so far and waits for them and for the device. */
  async flush(): Promise<void> {
    if (this.waiting.length) {
      const { readback } = await this.backend.submit([], {
        readback: { from: this.training.history, floats: this.N * HISTORY_STRIDE },
      });
      await this.deliver(readback!);
    }
    await this.backend.finish();
  }

  /** The step at which updates stopped (non-finite loss or norm), if they did (known after a read-back). */
  get halted(): number | undefined {
    return this.haltedAt;
  }

  /** Parameters by name, after every queued step. */
  async parameters(): Promise<Map<string, Float32Array>> {
    await this.flush();
    return this.download(this.training.arena.P);
  }

  /**
   * AdamW's moments by parameter name and its step count (AdamW.step of lib/train/adamw.ts: the bias
   * corrections' exponent), after every queued step: what optimizer.safetensors and trainer_state.json hold.
   */
  async optimizerState(): Promise<
    { m: Map<string, Float32Array>; v: Map<string, Float32Array>; step: number }
  > {
    await this.flush();
    const applied = this.haltedAt !== undefined ? this.haltedAt - 1 : this.steps;
    return {
      m: await this.download(this.training.moments.m),
      v: await this.download(this.training.moments.v),
      step: this.adamBase + applied,
    };
  }

  /**
   * Replaces parameters and / or AdamW state (a checkpoint, or a run moving over from TF.js); `step` is
   * AdamW's step count so far. Clears a halt.
   */
  async setState(
    s: {
      params?: Map<string, Float32Array>;
      m?: Map<string, Float32Array>;
      v?: Map<string, Float32Array>;
      step?: number;
    },
  ): Promise<void> {
    await this.flush();
    if (s.params) this.upload(this.training.arena.P, s.params, "params");
    if (s.m) this.upload(this.training.moments.m, s.m, "AdamW m");
    if (s.v) this.upload(this.training.moments.v, s.v, "AdamW v");
    if (s.step !== undefined) {
      this.adamBase = s.step - this.steps;
    }
    this.haltedAt = undefined;
    this.backend.write(this.training.state, new Float32Array(4));
    await this.backend.finish();
  }

  /**
   * Forward and backward without an update: the mean loss and every parameter's gradient (a tied
   * embedding's gradient holds both uses). For tests and checks, not for training.
   */
  async gradients(ids: Int32Array): Promise<{ loss: number; grads: Map<string, Float32Array> }> {
    await this.flush();
    this.prepare(ids);
    await this.backend.submit(this.program.gradient, { writes: this.writes() });
    const loss = await this.meanLoss();
    return { loss, grads: await this.download(this.training.arena.G) };
  }

  /**
   * Per-token losses (nats) of ids (b, l+1) without an update: the forward and the head only, in the head's
   * row order (b, then position; PerceiverAR: its last n positions). For evaluation.
   */
  async tokenLosses(ids: Int32Array): Promise<Float32Array> {
    await this.flush();
    this.prepare(ids);
    await this.backend.submit(this.program.gradient.slice(0, 2), { writes: this.writes() });
    return await this.backend.read(this.program.lossRows, 0, this.program.lossCount);
  }

  /** The mean of the per-token losses the last submitted head wrote. */
  protected async meanLoss(): Promise<number> {
    const rows = await this.backend.read(this.program.lossRows, 0, this.program.lossCount);
    return rows.reduce((a, x) => a + x, 0) / rows.length;
  }

  /** Dispatches (webgpu) or op calls (js) of one training step, by kind, and in all. */
  dispatches(): { total: number; byLabel: Record<string, number> } {
    const labels = this.stepPrograms.flatMap((x) => x.labels);
    const byLabel: Record<string, number> = {};
    for (const l of labels.map((x) => x.split(" ")[0])) byLabel[l] = (byLabel[l] ?? 0) + 1; // by kernel
    return { total: labels.length, byLabel };
  }

  /**
   * One training step with every dispatch in a submission of its own, the GPU awaited after each and
   * `before(label, i)` called first (webgpu): names the kernel a device hangs on. Updates the parameters.
   */
  async stepOneByOne(
    ids: Int32Array,
    lr: number,
    before: (label: string, index: number) => void,
  ): Promise<void> {
    if (!this.backend.runEach) throw new Error("stepOneByOne: only on webgpu");
    await this.flush();
    this.prepare(ids);
    this.nextStep(lr);
    await this.backend.submit([], { writes: this.writes() });
    await this.backend.runEach(this.stepPrograms, before);
  }

  /**
   * GPU milliseconds of one training step per dispatch label (each dispatch in its own timed pass; makes
   * an update), with the bytes bound to those dispatches and, for the GEMMs, their FLOPs: bound bytes / ms
   * is an upper estimate of a kernel's memory traffic rate (each binding read or written once), FLOPs / ms
   * its arithmetic rate.
   */
  async profile(
    ids: Int32Array,
    lr: number,
  ): Promise<{ label: string; ms: number; count: number; boundBytes: number; flops: number }[]> {
    if (!this.backend.profile) throw new Error(`profile: not on the ${this.backend.name} backend`);
    await this.flush();
    this.prepare(ids);
    // the step's host values first (a submission with no programs), then the programs one pass per dispatch
    this.nextStep(lr);
    await this.backend.submit([], { writes: this.writes() });
    return await profileByLabel(this.backend, this.stepPrograms);
  }

  destroy(): void {
    this.backend.destroy();
  }
}
