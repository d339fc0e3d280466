/**
 * The trainer on the native engine (TrainerConfig.engine "native", lib/train/steps.ts) and a run that moves
 * between TF.js and the engine mid-way through the trainer's own checkpoint files (model.safetensors +
 * config.json, optimizer.safetensors with m./v. per parameter, trainer_state.json): TF.js trains steps 1-4
 * and checkpoints; the trainer resumes on the engine (weights, AdamW moments and step, the batcher's
 * position and generator) for steps 5-8 and checkpoints at 8 (the engine's state copied back first); TF.js
 * resumes for steps 9-10. Losses and norms at every step and the final weights must equal an uninterrupted
 * TF.js run of 10 steps. Also: "auto" keeps TF.js on a software adapter, "native" refuses a model it
 * cannot train, and a non-finite loss on the engine stops the run as on TF.js.
 */
import assert from "node:assert/strict";
import { createMambaLM, disposeMambaLM, initParameters } from "../lib/models/mamba.ts";
import { mambaByteConfig } from "../lib/models/pretrained.ts";
import { createModel, mambaAsLanguageModel } from "../lib/models/mod.ts";
import { type LanguageModel, readParameters } from "../lib/models/lm.ts";
import { CHECKPOINT_DIR, NonFiniteLoss, train, type TrainerConfig } from "../lib/train/trainer.ts";
import type { NativeBackend } from "../lib/train/steps.ts";
import { relL2, useBackend } from "./helpers.ts";
import { ENGINE_BACKENDS, TFJS_REFERENCE_BACKEND } from "./engine_helpers.ts";

const text = new TextEncoder().encode(
  "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of " +
    "foolishness, it was the epoch of belief, it was the epoch of incredulity. 0123456789 ".repeat(6),
);
/** The engine's backends the trainer can run on (the plain-JS twins are not one). */
const NATIVE = ENGINE_BACKENDS.filter((b): b is NativeBackend => b === "webgpu" || b === "wasm");

/** Models the engine trains, each made from a seed (the same seed, the same weights). */
const FAMILIES: [string, Record<string, unknown>][] = [
  ["mambabyte", { ...mambaByteConfig(32, 2) }],
  ["transformer", { d_model: 32, n_layer: 2, n_head: 2, vocab_size: 256 }],
  ["perceiver_ar", { d_model: 32, n_layer: 2, n_head: 2, num_latents: 16 }],
  ["megabyte", {
    patch_size: 4,
    d_global: 32,
    d_local: 16,
    n_layer_global: 1,
    n_layer_local: 1,
    n_head_global: 2,
    n_head_local: 2,
  }],
];
const dispose = (lm: LanguageModel) => {
  for (const v of lm.params.values()) v.dispose();
};

for (const nb of NATIVE) {
  for (const [kind, config] of FAMILIES) {
    Deno.test({
      name:
        `trainer on the engine (${nb}, ${kind}): a run moves TF.js -> engine -> TF.js through the trainer's checkpoint files`,
      async fn() {
        await useBackend(TFJS_REFERENCE_BACKEND);
        const make = (seed: number) => createModel(kind, config, seed);
        const run: TrainerConfig = {
          steps: 10,
          batch: 2,
          length: 40,
          lr: 4e-3,
          warmup: 3,
          seed: 5,
          checkpointEvery: 4,
        };
        const stopAt = (step: number) => (e: { step: number }) => {
          if (e.step === step) throw new Error("stop");
        };
        const root = await Deno.makeTempDir({ prefix: "engine-ckpt-" });
        try {
          // the reference: 10 steps of TF.js
          const refModel = make(8);
          const ref = await train(refModel, text, {
            ...run,
            engine: "tfjs",
            runDir: `${root}/ref`,
          });
          assert.equal(ref.engine, "tfjs");
          const want = await readParameters(refModel);
          dispose(refModel);
          const close = (e: { step: number; loss: number; grad_norm: number }, who: string) => {
            const r = ref.log[e.step - 1];
            assert.equal(r.step, e.step);
            assert.ok(
              Math.abs(e.loss / r.loss - 1) < 1e-3,
              `step ${e.step} (${who}): loss ${e.loss} vs ${r.loss}`,
            );
            assert.ok(Math.abs(e.grad_norm / r.grad_norm - 1) < 1e-3, `step ${e.step} (${who}): norm`);
          };

          // TF.js: steps 1-4, checkpoint at 4, stopped during step 5 (before its checkpoint)
          const runDir = `${root}/moved`;
          const a = make(8);
          await assert.rejects(
            () => train(a, text, { ...run, engine: "tfjs", runDir, onStep: stopAt(5) }),
            /stop/,
          );
          dispose(a);
          const statePath = `${runDir}/${CHECKPOINT_DIR}/trainer_state.json`;
          assert.equal(JSON.parse(await Deno.readTextFile(statePath)).step, 4);

          // the engine: resumes at 4, checkpoints at 8, stopped during step 9 (its outcome is read with step 10's)
          const b = make(99); // overwritten by the checkpoint
          const seen: { step: number; loss: number; grad_norm: number }[] = [];
          await assert.rejects(
            () =>
              train(b, text, {
                ...run,
                engine: "native",
                nativeBackend: nb,
                runDir,
                resume: true,
                onStep: (e) => {
                  seen.push(e);
                  stopAt(9)(e);
                },
              }),
            /stop/,
          );
          dispose(b);
          assert.deepEqual(seen.map((e) => e.step), [5, 6, 7, 8, 9]);
          for (const e of seen) close(e, "engine");
          const state = JSON.parse(await Deno.readTextFile(statePath));
          assert.equal(state.step, 8);
          assert.equal(state.adam_step, 8);
          assert.equal(state.tokens_seen, 8 * run.batch * run.length);

          // TF.js resumes from the engine's checkpoint
          const c = make(98);
          const resumed = await train(c, text, {
            ...run,
            engine: "tfjs",
            runDir,
            resume: true,
          });
          assert.equal(resumed.resumed_from, 8);
          assert.deepEqual(resumed.log.map((e) => e.step), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
          for (const e of resumed.log.filter((e) => e.step > 8)) close(e, "TF.js, resumed");
          const got = await readParameters(c);
          dispose(c);
          for (const [name, w] of want) {
            const err = relL2(got.get(name)!, w);
            assert.ok(err < 1e-3, `${name} after the moved run: rel err ${err}`);
          }
        } finally {
          await Deno.remove(root, { recursive: true });
        }
      },
    });
  }

  Deno.test({
    name:
      `trainer on the engine (${nb}): the whole run without a run directory leaves the trained weights in the model`,
    async fn() {
      await useBackend(TFJS_REFERENCE_BACKEND);
      const cfg = mambaByteConfig(32, 2);
      const init = initParameters(cfg, 3);
      const run: TrainerConfig = { steps: 7, batch: 2, length: 24, lr: 3e-3, warmup: 2, seed: 1 };
      const ref = createMambaLM(cfg, init), eng = createMambaLM(cfg, init);
      try {
        const r = await train(mambaAsLanguageModel(ref), text, { ...run, engine: "tfjs" });
        const e = await train(mambaAsLanguageModel(eng), text, {
          ...run,
          engine: "native",
          nativeBackend: nb,
        });
        assert.match(e.engine, new RegExp(`^native \\(${nb}: `));
        assert.equal(e.tokens_seen, r.tokens_seen);
        assert.deepEqual(e.log.map((x) => x.step), r.log.map((x) => x.step));
        for (const [i, x] of e.log.entries()) {
          assert.ok(
            Math.abs(x.loss / r.log[i].loss - 1) < 1e-3,
            `step ${x.step}: ${x.loss} vs ${r.log[i].loss}`,
          );
        }
        const want = await readParameters(ref), got = await readParameters(eng);
        for (const [name, w] of want) assert.ok(relL2(got.get(name)!, w) < 1e-3, name);
      } finally {
        disposeMambaLM(ref);
        disposeMambaLM(eng);
      }
    },
  });

  Deno.test({
    name: `trainer on the engine (${nb}): a non-finite loss stops the run with the trainer's error`,
    async fn() {
      await useBackend(TFJS_REFERENCE_BACKEND);
      const cfg = mambaByteConfig(32, 2);
      const params = initParameters(cfg, 3);
      params.set("backbone.embedding.weight", params.get("backbone.embedding.weight")!.map(() => NaN));
      const m = createMambaLM(cfg, params);
      try {
        const err = await train(mambaAsLanguageModel(m), text, {
          steps: 5,
          batch: 1,
          length: 16,
          lr: 1e-3,
          warmup: 1,
          seed: 1,
          engine: "native",
          nativeBackend: nb,
        }).catch((e) => e);
        assert.ok(err instanceof NonFiniteLoss, String(err));
        assert.equal(err.step, 1);
        assert.match(err.message, /step 1: the loss \(NaN\) is not finite/);
      } finally {
        disposeMambaLM(m);
      }
    },
  });
}

Deno.test("trainer: auto trains Mamba on the CPU engine and keeps the other families on TF.js; native trains MegaByte", async () => {
  await useBackend(TFJS_REFERENCE_BACKEND);
  const t = createModel("transformer", { d_model: 16, n_layer: 1, n_head: 2, vocab_size: 256 }, 1);
  const mb = createModel("megabyte", {
    patch_size: 4,
    d_global: 16,
    d_local: 16,
    n_layer_global: 1,
    n_layer_local: 1,
    n_head_global: 2,
    n_head_local: 2,
  }, 1);
  try {
    const base = { steps: 1, batch: 1, length: 8, lr: 1e-3, warmup: 0, seed: 1 };
    const m = createMambaLM(mambaByteConfig(16, 1), initParameters(mambaByteConfig(16, 1), 1));
    const r = await train(mambaAsLanguageModel(m), text, { ...base, engine: "auto" });
    const onTransformer = await train(t, text, { ...base, engine: "auto" });
    const onMegaByte = await train(mb, text, { ...base, engine: "native" });
    disposeMambaLM(m);
    // on a CPU TF.js backend: the WebAssembly engine; on webgpu (Mesa's software adapter here): TF.js
    assert.match(
      r.engine,
      TFJS_REFERENCE_BACKEND === "webgpu" ? /^tfjs$/ : /^native \(wasm: WebAssembly SIMD, \d+ threads/,
    );
    // auto keeps the Transformer on TF.js until its engine's speed is measured against TF.js's
    assert.equal(onTransformer.engine, "tfjs");
    assert.match(onMegaByte.engine, /^native \((wasm|webgpu): /);
  } finally {
    dispose(t);
    dispose(mb);
  }
});
