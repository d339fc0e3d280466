/**
 * Shared by the engine's tests: which engine backends to test, following tests/helpers.ts's conventions
 * (MAMBABYTE_TEST_BACKENDS): "js" (the kernels' plain-JS twins) runs wherever a CPU TF.js backend is
 * tested (cpu or wasm), "wasm" (the WebAssembly kernels, the CPU engine) where TF.js's wasm backend is,
 * "webgpu" where webgpu is (Mesa's software adapter in CI, allowed explicitly). "js" may also be named
 * directly, and the wasm engine as "wasm-engine".
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { type LanguageModel, nextTokenLoss } from "../lib/models/lm.ts";
import { relL2, TEST_BACKENDS } from "./helpers.ts";
import type { EngineBackendName } from "../lib/engine/backend.ts";
import type { ArenaEngine, StepStats } from "../lib/engine/training.ts";
import { ByteBatcher } from "../lib/data/bytes.ts";
import { warmupCosine } from "../lib/train/adamw.ts";

const named = (Deno.env.get("MAMBABYTE_TEST_BACKENDS") ?? "").split(",");

export const ENGINE_BACKENDS: EngineBackendName[] = [
  ...(TEST_BACKENDS.some((b) => b === "cpu" || b === "wasm") || named.includes("js") ? ["js" as const] : []),
  ...(TEST_BACKENDS.includes("wasm") || named.includes("wasm-engine") ? ["wasm" as const] : []),
  ...(TEST_BACKENDS.includes("webgpu") ? ["webgpu" as const] : []),
];

/** The TF.js backend the engine is compared with: a CPU one when tested, else webgpu. */
export const TFJS_REFERENCE_BACKEND = TEST_BACKENDS.find((b) => b === "cpu" || b === "wasm") ??
  TEST_BACKENDS[0] ?? "cpu";

/**
 * Trains `eng` for `run.steps` steps on the trainer's batches and learning-rate schedule, then checks every
 * step's loss and gradient norm against the TF.js trainer's `log` and the final weights against `want`
 * (relative 1e-3 each). The run must learn (its loss falls by half a nat).
 */
export async function expectTrainerSteps(
  eng: ArenaEngine,
  data: Uint8Array,
  run: { steps: number; batch: number; length: number; lr: number; warmup: number; seed: number },
  log: { loss: number; grad_norm: number }[],
  want: Map<string, Float32Array>,
): Promise<void> {
  const batcher = new ByteBatcher(data, run.batch, run.length, run.seed);
  const stats: Promise<StepStats>[] = [];
  for (let s = 0; s < run.steps; s++) {
    stats.push((await eng.step(batcher.next(), warmupCosine(s, run.steps, run.lr, run.warmup))).stats);
  }
  await eng.flush();
  for (const [i, st] of (await Promise.all(stats)).entries()) {
    const errLoss = Math.abs(st.loss / log[i].loss - 1),
      errNorm = Math.abs(st.gradNorm / log[i].grad_norm - 1);
    assert.ok(errLoss < 1e-3, `step ${i + 1}: loss ${st.loss} vs TF.js ${log[i].loss}`);
    assert.ok(errNorm < 1e-3, `step ${i + 1}: grad norm ${st.gradNorm} vs TF.js ${log[i].grad_norm}`);
  }
  assert.ok(log[run.steps - 1].loss < log[0].loss - 0.5, "the run learns something");
  const got = await eng.parameters();
  for (const [name, w] of want) {
    const err = relL2(got.get(name)!, w);
    assert.ok(err < 1e-3, `${name} after ${run.steps} steps rel err ${err}`);
  }
}

/**
 * The engine's mean next-token loss and every parameter's gradient on ids (batch, length + 1) against
 * the TF.js model's (nextTokenLoss differentiated by tf.variableGrads): relative 1e-5 and 1e-4.
 */
export async function expectTfjsGradients(
  eng: ArenaEngine,
  model: LanguageModel,
  ids: Int32Array,
  batch: number,
  length: number,
): Promise<void> {
  const idsT = tf.tensor(ids, [batch, length + 1], "int32");
  const names = [...model.params.keys()];
  const vars = names.map((n) => model.params.get(n)!);
  const { value, grads } = tf.variableGrads(() => nextTokenLoss(model, idsT), vars);
  try {
    const wantLoss = (await value.data())[0];
    const got = await eng.gradients(ids);
    assert.ok(Math.abs(got.loss / wantLoss - 1) < 1e-5, `loss ${got.loss} vs ${wantLoss}`);
    for (const [i, name] of names.entries()) {
      const err = relL2(got.grads.get(name)!, await grads[vars[i].name].data() as Float32Array);
      assert.ok(err < 1e-4, `grad of ${name} rel err ${err}`);
    }
  } finally {
    tf.dispose([idsT, value, ...Object.values(grads)]);
  }
}
