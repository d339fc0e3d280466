/**
 * The trainer's own step (lib/train/trainer.ts `train`, the function the CLI's `train` runs, with its AdamW
 * and schedule) against mamba_ssm's three AdamW steps (tests/fixtures/reference/mambabyte-train3-public.*):
 * the loss and gradient norm before each step, every gradient of the first step, every weight after the
 * third. The fixture's batch goes in through the trainer's `batches` hook; its constant learning rate is
 * the trainer's warm-up/cosine schedule with no warm-up and a floor equal to the peak (minLrRatio 1).
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { FIXTURES, relL2, TEST_BACKENDS, useBackend } from "./helpers.ts";
import { readSafetensors } from "../lib/io/safetensors.ts";
import { loadModel } from "../lib/models/registry.ts";
import { disposeModel, nextTokenLoss, readParameters } from "../lib/models/lm.ts";
import { train } from "../lib/train/trainer.ts";

const STEM = "mambabyte-train3-public";
const ref = JSON.parse(await Deno.readTextFile(`${FIXTURES}${STEM}.json`));
const expected = await readSafetensors(`${FIXTURES}${STEM}.expected.safetensors`);
const inputIds = expected.tensors.get("input_ids")!; // (batch, length + 1), the batch of every step
const f32 = (key: string) => expected.tensors.get(key)!.data as Float32Array;

/** A checkpoint directory holding the fixture's initial parameters. */
async function initialModelDir(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "train3-" });
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(ref.config));
  await Deno.copyFile(`${FIXTURES}${STEM}.model.safetensors`, `${dir}/model.safetensors`);
  return dir;
}

const TRAIN3_BACKENDS = TEST_BACKENDS.filter((b) => b === "wasm" || b === "webgpu");

for (const backend of TRAIN3_BACKENDS) {
  Deno.test(`trainer: three AdamW steps reproduce mamba_ssm's (train3) on ${backend}`, async () => {
    await useBackend(backend);
    assert.deepEqual(inputIds.shape, [ref.batch, ref.length + 1]);
    const batch = Int32Array.from(inputIds.data as Int32Array);
    const dir = await initialModelDir();
    const model = await loadModel(dir);
    try {
      // the model's no-decay rule is the reference's regex, parameter by parameter
      const noDecay = new RegExp(ref.no_weight_decay);
      for (const name of model.params.keys()) {
        assert.equal(model.noWeightDecay(name), noDecay.test(name), `weight decay of ${name}`);
      }

      // first-step gradients: the loss the trainer differentiates, at the initial weights
      const names = [...model.params.keys()];
      const vars = names.map((n) => model.params.get(n)!);
      const ids = tf.tensor(batch, inputIds.shape, "int32");
      const { value, grads } = tf.variableGrads(() => nextTokenLoss(model, ids), vars);
      const errors: Record<string, number> = {};
      let worstGrad = 0;
      for (const [i, name] of names.entries()) {
        const err = relL2((await grads[vars[i].name].data()) as Float32Array, f32(`grad.${name}`));
        worstGrad = Math.max(worstGrad, err);
        assert.ok(err < 1e-4, `${backend}: step-1 gradient of ${name}: rel. L2 error ${err}`);
      }
      errors.grad_rel_l2_max = worstGrad;
      tf.dispose([ids, value, ...Object.values(grads)]);

      // the trainer's three steps
      const { adamw } = ref;
      // the data only sizes the (unused) random windows: every step reads the fixture's batch
      const result = await train(model, Uint8Array.from(batch.subarray(0, ref.length + 1)), {
        steps: 3,
        batch: ref.batch,
        length: ref.length,
        lr: ref.lr,
        warmup: 0,
        minLrRatio: 1,
        seed: 0,
        optimizer: {
          beta1: adamw.beta1,
          beta2: adamw.beta2,
          eps: adamw.eps,
          weightDecay: adamw.weight_decay,
          clipNorm: adamw.clip_norm,
        },
        batches: () => batch,
      });
      assert.deepEqual(result.log.map((e) => e.step), [1, 2, 3]);
      for (const [s, e] of result.log.entries()) {
        assert.equal(e.lr, ref.lr, `step ${s + 1}: lr`);
        const wantLoss = ref.loss_before_step_nats[s], wantNorm = ref.grad_norm_before_clip[s];
        const errLoss = Math.abs(e.loss - wantLoss) / wantLoss;
        const errNorm = Math.abs(e.grad_norm - wantNorm) / wantNorm;
        errors[`loss_rel_${s + 1}`] = errLoss;
        errors[`norm_rel_${s + 1}`] = errNorm;
        assert.ok(errLoss < 1e-5, `${backend} step ${s + 1}: loss ${e.loss} vs ${wantLoss} (rel ${errLoss})`);
        assert.ok(
          errNorm < 1e-5,
          `${backend} step ${s + 1}: gradient norm ${e.grad_norm} vs ${wantNorm} (rel ${errNorm})`,
        );
      }
      const after = await readParameters(model);
      let worstW = 0;
      for (const [name, w] of after) {
        const err = relL2(w, f32(`after3.${name}`));
        worstW = Math.max(worstW, err);
        assert.ok(err < 1e-5, `${backend}: ${name} after 3 steps: rel. L2 error ${err}`);
      }
      errors.weights_rel_l2_max = worstW;
      console.log(`train3 on ${backend}: ${JSON.stringify(errors)}`);
    } finally {
      disposeModel(model);
      await Deno.remove(dir, { recursive: true });
    }
  });
}
