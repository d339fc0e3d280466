/**
 * A training run moves between the project's TF.js trainer and the native engine mid-way, through the
 * trainer's own checkpoint files (model.safetensors + config.json, optimizer.safetensors with m./v. per
 * parameter, trainer_state.json): TF.js trains 4 steps and checkpoints; the engine loads that checkpoint
 * (weights, AdamW moments and step, the batcher's position and generator) and trains steps 5-7; it
 * writes a checkpoint in the same format; the trainer resumes from it for steps 8-10. Losses at every
 * step and the final weights must equal an uninterrupted TF.js run of 10 steps.
 */
import assert from "node:assert/strict";
import { readSafetensors, toFloat32, writeSafetensors } from "../lib/io/safetensors.ts";
import { createMambaLM, disposeMambaLM, initParameters } from "../lib/models/mamba.ts";
import { mambaByteConfig } from "../lib/models/pretrained.ts";
import { mambaAsLanguageModel, saveModel } from "../lib/models/registry.ts";
import { readParameters } from "../lib/models/lm.ts";
import { warmupCosine } from "../lib/train/adamw.ts";
import { CHECKPOINT_DIR, train, type TrainerConfig } from "../lib/train/trainer.ts";
import { ByteBatcher } from "../lib/data/bytes.ts";
import { MambaEngine, type StepStats } from "../lib/engine/mamba.ts";
import { relL2, useBackend } from "./helpers.ts";
import { ENGINE_BACKENDS, TFJS_REFERENCE_BACKEND } from "./engine_helpers.ts";

const text = new TextEncoder().encode(
  "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of " +
    "foolishness, it was the epoch of belief, it was the epoch of incredulity. 0123456789 ".repeat(6),
);

for (const backend of ENGINE_BACKENDS) {
  Deno.test(`engine (${backend}): a run moves TF.js -> engine -> TF.js through the trainer's checkpoint files`, async () => {
    await useBackend(TFJS_REFERENCE_BACKEND);
    const cfg = mambaByteConfig(32, 2);
    const init = initParameters(cfg, 8);
    const run: TrainerConfig = {
      steps: 10,
      batch: 2,
      length: 40,
      lr: 4e-3,
      warmup: 3,
      seed: 5,
      checkpointEvery: 4,
    };
    const root = await Deno.makeTempDir({ prefix: "engine-ckpt-" });
    try {
      // the reference: 10 steps of TF.js
      const refModel = createMambaLM(cfg, init);
      const ref = await train(mambaAsLanguageModel(refModel), text, { ...run, runDir: `${root}/ref` });
      const want = await readParameters(refModel);
      disposeMambaLM(refModel);

      // TF.js: steps 1-4, checkpoint at 4, stopped during step 5 (before its checkpoint)
      const runDir = `${root}/moved`;
      const a = createMambaLM(cfg, init);
      await assert.rejects(() =>
        train(mambaAsLanguageModel(a), text, {
          ...run,
          runDir,
          onStep: (e) => {
            if (e.step === 5) throw new Error("stop");
          },
        }), /stop/);
      disposeMambaLM(a);
      const dir = `${runDir}/${CHECKPOINT_DIR}`;
      const state = JSON.parse(await Deno.readTextFile(`${dir}/trainer_state.json`));
      assert.equal(state.step, 4);

      // the engine reads the checkpoint: weights, moments, AdamW's step, the batcher
      const weights = await readSafetensors(`${dir}/model.safetensors`);
      const moments = await readSafetensors(`${dir}/optimizer.safetensors`);
      const byPrefix = (prefix: string) =>
        new Map(
          [...moments.tensors].filter(([k]) => k.startsWith(prefix)).map((
            [k, t],
          ) => [k.slice(prefix.length), toFloat32(t)]),
        );
      const eng = await MambaEngine.create({
        config: cfg,
        params: new Map([...weights.tensors].map(([k, t]) => [k, toFloat32(t)])),
        batch: run.batch,
        length: run.length,
        backend,
        allowSoftwareGpu: true,
        readbackEvery: 3,
      });
      try {
        await eng.setState({ m: byPrefix("m."), v: byPrefix("v."), step: state.adam_step });
        const batcher = new ByteBatcher(text, run.batch, run.length, run.seed);
        batcher.restore(state.batcher_rng, state.batcher_position);
        const stats: Promise<StepStats>[] = [];
        for (let s = 4; s < 7; s++) {
          stats.push((await eng.step(batcher.next(), warmupCosine(s, run.steps, run.lr, run.warmup))).stats);
        }
        await eng.flush();
        for (const [i, st] of (await Promise.all(stats)).entries()) {
          const r = ref.log[4 + i];
          assert.ok(
            Math.abs(st.loss / r.loss - 1) < 1e-3,
            `step ${r.step} (engine): loss ${st.loss} vs ${r.loss}`,
          );
          assert.ok(Math.abs(st.gradNorm / r.grad_norm - 1) < 1e-3, `step ${r.step} (engine): norm`);
        }

        // the engine writes the checkpoint of step 7 as the trainer does, and the trainer resumes from it
        const params = await eng.parameters(), opt = await eng.optimizerState();
        assert.equal(opt.step, 7);
        const tmp = `${runDir}/${CHECKPOINT_DIR}.next`;
        const asModel = createMambaLM(cfg, params);
        await saveModel(mambaAsLanguageModel(asModel), tmp, { step: "7" });
        disposeMambaLM(asModel);
        const tensors = new Map<string, { dtype: "F32"; shape: number[]; data: Float32Array }>();
        for (const [name, w] of params) {
          const shape = [...weights.tensors.get(name)!.shape];
          tensors.set(`m.${name}`, { dtype: "F32", shape, data: opt.m.get(name)! });
          tensors.set(`v.${name}`, { dtype: "F32", shape, data: opt.v.get(name)! });
          assert.equal(w.length, shape.reduce((x, y) => x * y, 1));
        }
        await writeSafetensors(`${tmp}/optimizer.safetensors`, tensors, { format: "mambabyte-lab-adamw" });
        const next = {
          ...state,
          step: 7,
          adam_step: opt.step,
          batcher_position: batcher.position,
          batcher_rng: batcher.state(),
          tokens_seen: 7 * run.batch * run.length,
        };
        await Deno.writeTextFile(`${tmp}/trainer_state.json`, JSON.stringify(next, null, 2));
        await Deno.remove(dir, { recursive: true });
        await Deno.rename(tmp, dir);
      } finally {
        eng.destroy();
      }
      const b = createMambaLM(cfg, initParameters(cfg, 99)); // overwritten by the checkpoint
      const resumed = await train(mambaAsLanguageModel(b), text, { ...run, runDir, resume: true });
      assert.equal(resumed.resumed_from, 7);
      assert.equal(resumed.log.filter((e) => e.step > 7).length, 3);
      for (const e of resumed.log.filter((e) => e.step > 7)) {
        const r = ref.log[e.step - 1];
        assert.ok(
          Math.abs(e.loss / r.loss - 1) < 1e-3,
          `step ${e.step} (TF.js, resumed): loss ${e.loss} vs ${r.loss}`,
        );
      }
      const got = await readParameters(b);
      disposeMambaLM(b);
      for (const [name, w] of want) {
        const err = relL2(got.get(name)!, w);
        assert.ok(err < 1e-3, `${name} after the moved run: rel err ${err}`);
      }
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  });
}
