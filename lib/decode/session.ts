/**
 * `RecurrentSession`: a Mamba model decoded at batch 1 with its recurrent state on the host, the unit that
 * plain sampling, greedy decoding and speculative verification share (read a prompt, read a draft in one
 * pass, step one id, roll back to a state kept by the last pass).
 */
import * as tf from "@tensorflow/tfjs";
import {
  createStepper,
  type HostState,
  hostToTensors,
  MambaStepper,
  type Stepper,
  type StepperOptions,
  tensorsToHost,
} from "./stepper.ts";
import { disposeState, type MambaLM, prefill } from "../models/mamba.ts";
import { findNonFinite, NonFiniteError } from "../io/errors.ts";
import { reclaimWebGpuGarbage } from "../backend.ts";

/**
 * Refuses logits holding NaN or an infinity (a model whose state or weights overflowed): decoding stops
 * with a NonFiniteError instead of emitting tokens drawn from them. One pass over the row(s).
 */
export function checkLogits(logits: Float32Array): void {
  const bad = findNonFinite(logits);
  if (bad) {
    throw new NonFiniteError(
      `the model's logits are not finite (${bad.count} of ${logits.length} values; the first, ` +
        `${logits[bad.first]}, at index ${bad.first}); no token is emitted from them`,
    );
  }
}

/**
 * A Mamba model decoded at batch 1 with its state held on the host: `read` runs a parallel pass
 * (mamba.ts `prefill` from a state) over several ids from the current state, `step` one id with the stepper. Both return
 * logits over the real vocabulary (no padding rows).
 */
export class RecurrentSession {
  /**
   * The current state. `step` updates it in place (the JS stepper's `advance`) while no one else can hold
   * it: any read of `state` from outside, or a state that came from a pass (kept for `rollTo`) or was
   * assigned, makes the next step build a new state instead.
   */
  get state(): HostState | undefined {
    this.shared = true;
    return this.current;
  }
  set state(s: HostState | undefined) {
    this.current = s;
    this.shared = true;
  }
  private current: HostState | undefined;
  /** whether anything but this session may hold `current` (then a step must not write its arrays) */
  private shared = true;
  /** Logits for the next id after everything read so far. */
  next: Float32Array = new Float32Array(0);
  passes = 0;
  steps = 0;
  /** The state after each id, and the logits rows, of the last fused `read` (for `rollTo`). */
  private passStates?: HostState[];
  private passRows?: Float32Array;
  readonly V: number;
  private stepper: Stepper;
  /**
   * `opts`: the JS stepper's options (its weight format and threads; lib/decode/stepper.ts); `stepper`:
   * one already built (see `onCpu`), used instead of creating one.
   */
  constructor(readonly model: MambaLM, kind?: "js" | "tf", opts: StepperOptions = {}, stepper?: Stepper) {
    this.V = model.config.vocab_size;
    this.stepper = stepper ?? createStepper(model, kind, opts);
  }

  /**
   * A session on the JS (CPU) stepper on any backend: its weights read asynchronously
   * (`MambaStepper.create`), the only way on webgpu, where a compressed format (`opts.weights`) still
   * decodes on the CPU.
   */
  static async onCpu(model: MambaLM, opts: StepperOptions = {}): Promise<RecurrentSession> {
    const weights = opts.weights ?? model.decodeWeights;
    return new RecurrentSession(model, "js", opts, await MambaStepper.create(model, { ...opts, weights }));
  }

  /**
   * Reads ids in one pass from `from` (default: the current state); returns all l rows of logits (l, V)
   * row-major. With the JS stepper the pass is its fused `read`, which also keeps the state after every
   * id for `rollTo`; otherwise tfjs ops (mamba.ts `prefill` from a state).
   */
  async read(ids: ArrayLike<number>, from: HostState | undefined = this.current): Promise<Float32Array> {
    if (ids.length === 0) throw new Error("RecurrentSession.read: no ids");
    if (this.stepper instanceof MambaStepper) {
      const r = this.stepper.read(from ?? this.stepper.emptyState(), ids, "all");
      this.passStates = r.states;
      return this.took(r.logits, ids.length, r.states[ids.length - 1]);
    }
    const r = await this.tfPass(ids, from);
    this.passStates = undefined;
    return this.took(r.logits, ids.length, r.state);
  }

  /** One pass of tfjs ops (mamba.ts `prefill` from a state) over ids from `from`: logits (l, Vp) and the state after. */
  private async tfPass(ids: ArrayLike<number>, from: HostState | undefined) {
    const input = tf.tensor(Int32Array.from(ids), [1, ids.length], "int32");
    const s0 = from ? hostToTensors(this.model, from) : undefined;
    const { logits, state } = prefill(this.model, input, s0);
    input.dispose();
    if (s0) disposeState(s0);
    const all = (await logits.data()) as Float32Array; // (1, l, Vp)
    logits.dispose();
    const host = await tensorsToHost(state);
    disposeState(state);
    reclaimWebGpuGarbage();
    return { logits: all, state: host };
  }

  /**
   * Takes the result of a pass over l ids: the state after it, its logits rows without the vocabulary's
   * padding (kept for `rollTo`, and returned), the next-id logits; counts the pass.
   */
  private took(all: Float32Array, l: number, state: HostState): Float32Array {
    const V = this.V, Vp = all.length / l;
    const out = new Float32Array(l * V);
    for (let t = 0; t < l; t++) out.set(all.subarray(t * Vp, t * Vp + V), t * V);
    checkLogits(out);
    this.state = state;
    this.passRows = out;
    this.next = out.slice((l - 1) * V);
    this.passes++;
    return out;
  }

  /** Whether `rollTo` can take a state kept by the last `read` (the JS stepper's fused pass). */
  get canRoll(): boolean {
    return this.passStates !== undefined;
  }

  /**
   * Rolls back to the state after the first `a` ids of the last `read` (a = 0: its starting state
   * `from`, whose next-id logits were `fromNext`), without reading anything again.
   */
  rollTo(a: number, from: HostState, fromNext: Float32Array): void {
    if (!this.passStates || !this.passRows) {
      throw new Error("RecurrentSession.rollTo: no fused pass to roll back in");
    }
    this.state = a === 0 ? from : this.passStates[a - 1];
    this.next = a === 0 ? fromNext : this.passRows.slice((a - 1) * this.V, a * this.V);
  }

  /**
   * Reads a prompt in passes of `chunk` ids (memory bounded by the chunk): the JS stepper's prefill (its
   * blocked GEMM and channel-parallel recurrence; same numbers as tfjs ops up to rounding) when the session
   * has one, tfjs passes otherwise. Nothing is kept for `rollTo`.
   */
  async prefill(ids: ArrayLike<number>, chunk = 4096): Promise<void> {
    const a = Array.from(ids);
    if (a.length === 0) return;
    for (let s = 0; s < a.length; s += chunk) {
      const part = a.slice(s, s + chunk);
      if (this.stepper instanceof MambaStepper) {
        const r = this.stepper.read(this.current ?? this.stepper.emptyState(), part, "last");
        this.took(r.logits, part.length, r.states[0]);
      } else {
        const r = await this.tfPass(part, this.current);
        this.took(r.logits, part.length, r.state);
      }
    }
    this.passStates = this.passRows = undefined;
  }

  /** One recurrent step on `id` from the current state; returns (and caches) the next logits. */
  async step(id: number): Promise<Float32Array> {
    if (!this.current) throw new Error("RecurrentSession.step: read at least one id first");
    let logits: Float32Array;
    if (!this.shared && this.stepper instanceof MambaStepper) {
      logits = this.stepper.advance(this.current, id); // only this session holds the state
    } else {
      const r = await this.stepper.step(this.current, id);
      this.current = r.state; // new arrays, held by this session alone
      this.shared = false;
      logits = r.logits;
    }
    this.next = logits.subarray(0, this.V).slice();
    checkLogits(this.next);
    this.steps++;
    return this.next;
  }

  dispose(): void {
    this.stepper.dispose();
  }
}
