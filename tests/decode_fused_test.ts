/**
 * The stepper's one-dispatch step (lib/kernels/wasm/step.wat's `stepLayers`, every thread through a whole
 * step with barriers between its phases) against the phase-by-phase step driven from JavaScript, bit for
 * bit, and against mamba.ts `step` (TF.js) within 1e-5: with biases, float32 and bfloat16 weights, 1 to 3
 * threads, one memory and several; where it cannot run (int8 weights, widths the kernels do not take whole)
 * the stepper takes the phases.
 */
import * as tf from "@tensorflow/tfjs";
import { deepStrictEqual, ok as assert, strictEqual, throws } from "node:assert/strict";
import { disposeMambaLM, initMambaLM } from "../lib/models/mamba.ts";
import { parseMambaConfig } from "../lib/models/mamba_config.ts";
import { type HostState, MambaStepper } from "../lib/decode/stepper.ts";
import { liveKernelThreads } from "../lib/kernels/wasm/threads.ts";
import { useBackend } from "./helpers.ts";
import { assertStepsMatchTf } from "./decode_helpers.ts";

await useBackend("wasm");

/** A random Mamba with every optional bias present and nonzero (the plan's -1 "no bias" is the other path). */
function biasedMamba(d: number, layers: number, seed: number) {
  const cfg = parseMambaConfig({
    d_model: d,
    n_layer: layers,
    vocab_size: 256,
    ssm_cfg: { bias: true, conv_bias: true },
    tie_embeddings: false,
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

/** Steps through `ids` from the empty state: the logits and state after each id. */
function walk(s: MambaStepper): { logits: Float32Array[]; states: HostState[] } {
  const logits: Float32Array[] = [], states: HostState[] = [];
  let st = s.emptyState();
  for (const id of ids) {
    const r = s.stepSync(st, id);
    logits.push(r.logits);
    states.push(r.state);
    st = r.state;
  }
  return { logits, states };
}

Deno.test("the one-dispatch step equals the phase-by-phase step bit for bit (logits, conv windows, states): biases, f32 and bf16, 1-3 threads, one memory and several", () => {
  const m = biasedMamba(128, 5, 3);
  const threadsBefore = liveKernelThreads();
  for (const weights of ["f32", "bf16"] as const) {
    // 950K floats a memory hold two of these layers in float32 (three memories, as in decode_test.ts), more in bf16
    for (const memoryFloats of [undefined, 950_000]) {
      const phases = new MambaStepper(m, undefined, { weights, memoryFloats, fused: false, threads: 1 });
      assert(phases.simd && !phases.fused, "the phase-by-phase stepper (WebAssembly SIMD) expected");
      const want = walk(phases);
      phases.dispose();
      for (const threads of [1, 2, 3]) {
        const one = new MambaStepper(m, undefined, { weights, memoryFloats, threads });
        const what = `${weights}, ${one.memories} memories, ${threads} threads`;
        assert(one.fused, `${what}: the one-dispatch step expected`);
        if (memoryFloats) assert(one.memories >= 2, `${what}: several memories expected`);
        const start = one.emptyState(), copy = structuredClone(start);
        const got = walk(one);
        deepStrictEqual(start, copy, "the input state is never mutated");
        got.logits.forEach((l, t) => deepStrictEqual(l, want.logits[t], `${what}: logits after id ${t}`));
        got.states.forEach((s, t) => deepStrictEqual(s, want.states[t], `${what}: state after id ${t}`));
        throws(() => one.stepSync(start, 256), /outside the vocabulary/);
        one.dispose();
      }
    }
  }
  strictEqual(liveKernelThreads(), threadsBefore, "dispose ends the gangs' threads");
  disposeMambaLM(m);
});

Deno.test("the one-dispatch step equals mamba.ts step (TF.js) within 1e-5 after a prefill, with biases; int8 weights and d 48 (dt_rank 3) take the phases", async () => {
  const m = biasedMamba(128, 2, 7);
  const js = new MambaStepper(m);
  assert(js.fused, "the one-dispatch step expected");
  await assertStepsMatchTf(m, js, [7, 99, 180, 3], [12, 255, 0, 77, 130], "one-dispatch step");
  js.dispose();
  const int8 = new MambaStepper(m, undefined, { weights: "int8" });
  assert(!int8.fused, "int8 weights run phase by phase");
  int8.dispose();
  disposeMambaLM(m);
  const narrow = biasedMamba(48, 1, 9);
  const s = new MambaStepper(narrow);
  assert(s.simd && !s.fused, "dt_rank 3: the dt product is not the kernels' (phase by phase)");
  s.dispose();
  disposeMambaLM(narrow);
});
