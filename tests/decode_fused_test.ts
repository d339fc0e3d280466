/**
 * The stepper's one-dispatch step (lib/kernels/wasm/step.wat's `stepLayers`, every thread through a whole
 * step with barriers between its phases) against the phase-by-phase step driven from JavaScript, bit for
 * bit from a random state, and against mamba.ts `step` (TF.js) within 1e-5: with and without biases,
 * float32, bfloat16 and int8 weights, 1 to 5 threads (some with no share of a phase), one memory,
 * several, and the head alone in the last; where it cannot run (widths the kernels do not take whole) the
 * stepper takes the phases. And `advance`, a step in place, against `stepSync`.
 */
import * as tf from "@tensorflow/tfjs";
import { deepStrictEqual, ok as assert, strictEqual, throws } from "node:assert/strict";
import { disposeMambaLM, initMambaLM } from "../lib/models/mamba.ts";
import { parseMambaConfig } from "../lib/models/mamba_config.ts";
import { type HostState, MambaStepper } from "../lib/decode/stepper.ts";
import { RecurrentSession } from "../lib/decode/session.ts";
import { PROBE_EVERY, PROBE_STEPS, ThreadTuner } from "../lib/decode/thread_tuner.ts";
import { liveKernelThreads } from "../lib/kernels/wasm/threads.ts";
import { useBackend } from "./helpers.ts";
import { assertStepsMatchTf } from "./decode_helpers.ts";

await useBackend("wasm");

/**
 * A random Mamba, its optional biases present and nonzero (`biases`: the plan's -1 "no bias" is the other
 * path), its head untied and random unless `tied`.
 */
function randomMamba(
  d: number,
  layers: number,
  seed: number,
  opts: { biases?: boolean; tied?: boolean; dtRank?: number } = {},
) {
  const { biases = true, tied = false, dtRank } = opts;
  const cfg = parseMambaConfig({
    d_model: d,
    n_layer: layers,
    vocab_size: 256,
    ssm_cfg: { bias: biases, conv_bias: biases, ...(dtRank ? { dt_rank: dtRank } : {}) },
    tie_embeddings: tied,
  }, "test");
  const m = initMambaLM(cfg, seed);
  let k = 0;
  for (const [name, v] of m.params) {
    if (name.endsWith(".bias") || name.endsWith("lm_head.weight")) {
      v.assign(tf.randomNormal(v.shape, 0, name.endsWith("lm_head.weight") ? 1 : 0.2, "float32", seed + ++k));
    }
  }
  return m;
}

const ids = [3, 200, 17, 99, 5, 250, 1, 128, 64, 12, 255, 0];

/** A state of uniform values in [-0.5, 0.5) (not the empty one: every window and state entry matters). */
function randomState(s: MambaStepper, seed: number): HostState {
  const st = s.emptyState();
  let x = seed;
  for (const a of [...st.conv, ...st.ssm]) {
    for (let i = 0; i < a.length; i++) {
      a[i] = (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5;
    }
  }
  return st;
}

/** Steps through `ids` from `start`: the logits and state after each id. */
function walk(s: MambaStepper, start: HostState): { logits: Float32Array[]; states: HostState[] } {
  const logits: Float32Array[] = [], states: HostState[] = [];
  let st = start;
  for (const id of ids) {
    const r = s.stepSync(st, id);
    logits.push(r.logits);
    states.push(r.state);
    st = r.state;
  }
  return { logits, states };
}

/** Each case: a model, its weight formats, memory sizes (undefined: one memory), thread counts. */
const cases = () =>
  [
    // every bias, an untied head; one memory, and three (950K floats hold two of these layers in float32)
    {
      what: "d128 x 5, biases",
      m: randomMamba(128, 5, 3),
      formats: ["f32", "bf16"],
      memories: [undefined, 950_000],
      threads: [1, 2, 3],
      headOnly: false,
    },
    // int8 (its inputs rounded to int16 in the kernel, as in JavaScript; the dt product, 8 columns, stays
    // float32): the layers fit one memory
    {
      what: "d128 x 5, biases",
      m: randomMamba(128, 5, 3),
      formats: ["int8"],
      memories: [undefined],
      threads: [1, 2, 3],
      headOnly: false,
    },
    // no biases, a tied head, d 64 with dt_rank 8: four runs of 16 rows of d and three of x_proj's 40, so 5
    // threads leave some threads no share of a phase
    {
      what: "d64 x 2, no biases, tied",
      m: randomMamba(64, 2, 5, { biases: false, tied: true, dtRank: 8 }),
      formats: ["f32", "bf16", "int8"],
      memories: [undefined],
      threads: [1, 5],
      headOnly: false,
    },
    // 830K floats hold one of these layers: the last memory holds the embedding and head alone
    {
      what: "d128 x 3, head alone",
      m: randomMamba(128, 3, 4),
      formats: ["f32"],
      memories: [830_000],
      threads: [1, 3],
      headOnly: true,
    },
  ] as const;

Deno.test("the one-dispatch step equals the phase-by-phase step bit for bit (logits, conv windows, states) from a random state: with and without biases, f32, bf16 and int8, 1-5 threads (some with no share), one memory, several, the head alone", () => {
  const threadsBefore = liveKernelThreads();
  for (const { what: model, m, formats, memories, threads: counts, headOnly } of cases()) {
    for (const weights of formats) {
      for (const memoryFloats of memories) {
        const phases = new MambaStepper(m, undefined, { weights, memoryFloats, fused: false, threads: 1 });
        assert(phases.simd && !phases.fused, "the phase-by-phase stepper (WebAssembly SIMD) expected");
        const start = randomState(phases, 11), copy = structuredClone(start);
        const want = walk(phases, start);
        phases.dispose();
        for (const threads of counts) {
          const one = new MambaStepper(m, undefined, { weights, memoryFloats, threads });
          const what = `${model}, ${weights}, memories ${
            JSON.stringify(one.memoryLayers)
          }, ${threads} threads`;
          assert(one.fused, `${what}: the one-dispatch step expected`);
          if (memoryFloats) assert(one.memories >= 2, `${what}: several memories expected`);
          if (headOnly) {
            assert(one.memoryLayers.at(-1) === 0, `${what}: the head alone in the last memory expected`);
          }
          const got = walk(one, start);
          deepStrictEqual(start, copy, `${what}: the input state is never mutated`);
          got.logits.forEach((l, t) => deepStrictEqual(l, want.logits[t], `${what}: logits after id ${t}`));
          got.states.forEach((s, t) => deepStrictEqual(s, want.states[t], `${what}: state after id ${t}`));
          throws(() => one.stepSync(start, 256), /outside the vocabulary/);
          one.dispose();
        }
      }
    }
    disposeMambaLM(m);
  }
  strictEqual(liveKernelThreads(), threadsBefore, "dispose ends the gangs' threads");
});

Deno.test("the one-dispatch step equals mamba.ts step (TF.js) within 1e-5 after a prefill, with biases; d 48 (dt_rank 3) takes the phases", async () => {
  const m = randomMamba(128, 2, 7);
  const js = new MambaStepper(m);
  assert(js.fused, "the one-dispatch step expected");
  await assertStepsMatchTf(m, js, [7, 99, 180, 3], [12, 255, 0, 77, 130], "one-dispatch step");
  js.dispose();
  disposeMambaLM(m);
  const narrow = randomMamba(48, 1, 9);
  const s = new MambaStepper(narrow);
  assert(s.simd && !s.fused, "dt_rank 3: the dt product is not the kernels' (phase by phase)");
  s.dispose();
  disposeMambaLM(narrow);
});

Deno.test("advance (a step in place) equals stepSync bit for bit, also with other steps and a pass between, on the one-dispatch path and the phases; a session never writes a state read from it", async () => {
  const m = randomMamba(128, 2, 13);
  for (const fused of [true, false]) {
    const weights = fused ? "f32" : "int8";
    const s = new MambaStepper(m, undefined, { weights, fused });
    strictEqual(s.fused, fused);
    const start = randomState(s, 5);
    const mine = structuredClone(start);
    let ref = start;
    for (const [t, id] of ids.entries()) {
      const want = s.stepSync(ref, id);
      ref = want.state;
      if (t === 4) s.stepSync(randomState(s, 9), 77); // another state through the stepper's memory
      if (t === 7) s.read(mine, [1, 2, 3]); // a pass from the state being advanced
      const logits = s.advance(mine, id);
      deepStrictEqual(logits, want.logits, `${weights}: logits after id ${t}`);
      deepStrictEqual(mine, want.state, `${weights}: state after id ${t}`);
    }
    s.dispose();
  }
  // a session steps its own state in place, but not one that was read from it (speculative decoding keeps
  // the drafter's state that way to restore it)
  const session = await RecurrentSession.onCpu(m);
  await session.read([5, 6, 7]);
  await session.step(8); // a new state, held by the session alone
  await session.step(9); // in place
  const kept = session.state!, copy = structuredClone(kept);
  await session.step(10);
  await session.step(11);
  deepStrictEqual(kept, copy, "a state read from the session is never written");
  const plain = new MambaStepper(m);
  let st = plain.read(plain.emptyState(), [5, 6, 7], "all").states[2];
  for (const id of [8, 9, 10, 11]) st = plain.stepSync(st, id).state;
  deepStrictEqual(session.state, st, "the session's steps equal the stepper's");
  plain.dispose();
  session.dispose();
  disposeMambaLM(m);
});

Deno.test("ThreadTuner: keeps every thread while they are faster, takes one when a probe finds it 10% faster (another process on the cores), and goes back when all threads are faster again", () => {
  const t = new ThreadTuner(2);
  // a quiet machine: 2 threads 1 ms a step, 1 thread 1.7 ms
  const quiet = (r: number) => (r === 2 ? 1 : 1.7), busy = (r: number) => (r === 2 ? 8 : 1.2);
  const run = (steps: number, cost: (r: number) => number) => {
    const used: number[] = [];
    for (let i = 0; i < steps; i++) {
      const r = t.next();
      used.push(r);
      t.record(r, cost(r));
    }
    return used;
  };
  const a = run(2 * (PROBE_EVERY + PROBE_STEPS), quiet);
  strictEqual(t.ranks, 2, "quiet: two threads kept");
  strictEqual(a.filter((r) => r === 1).length, 2 * PROBE_STEPS, "two probes of one thread, PROBE_STEPS each");
  run(PROBE_EVERY + PROBE_STEPS, busy); // a busy machine: the next probe finds one thread faster
  strictEqual(t.ranks, 1, "busy: one thread");
  const b = run(PROBE_EVERY + PROBE_STEPS, quiet); // quiet again: the next probe finds two threads faster
  strictEqual(t.ranks, 2, "quiet again: two threads");
  strictEqual(
    b.filter((r) => r === 2).length,
    PROBE_STEPS,
    "only the probe ran two threads before the switch",
  );
  // nearly equal timings (within 10%) do not switch
  const c = new ThreadTuner(2);
  for (let i = 0; i < 3 * (PROBE_EVERY + PROBE_STEPS); i++) {
    const r = c.next();
    c.record(r, r === 2 ? 1 : 0.95);
  }
  strictEqual(c.ranks, 2, "one thread 5% faster: no switch");
  const one = new ThreadTuner(1);
  for (let i = 0; i < 2 * PROBE_EVERY; i++) strictEqual(one.next(), 1);
});
