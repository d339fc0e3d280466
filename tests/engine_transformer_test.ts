/**
 * The byte Transformer's forward and backward on the native engine (lib/engine/transformer.ts) against
 * the TF.js model (lib/models/transformer.ts, itself tested against PyTorch in
 * baselines_reference_test.ts): the loss and the gradient of every parameter, and 30 AdamW steps of the
 * project's trainer (loss and norm each step, final weights), on each engine backend; PerceiverAR (the same
 * stack, layer 0 attending from the last N positions, the loss over them) and MegaByte (a global stack over
 * patches, a local one inside each) likewise.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { TransformerEngine } from "../lib/engine/transformer.ts";
import { nextTokenLoss, readParameters } from "../lib/models/lm.ts";
import { train } from "../lib/train/trainer.ts";
import { buildTransformer, initTransformer, type TransformerConfig } from "../lib/models/transformer.ts";
import { buildPerceiverAR, initPerceiverAR } from "../lib/models/perceiver_ar.ts";
import { buildMegaByte, initMegaByte, type MegaByteConfig } from "../lib/models/megabyte.ts";
import type { LanguageModel } from "../lib/models/lm.ts";
import { relL2, useBackend } from "./helpers.ts";
import { ENGINE_BACKENDS, expectTrainerSteps, TFJS_REFERENCE_BACKEND } from "./engine_helpers.ts";

const CONFIG: TransformerConfig = {
  vocab_size: 256,
  d_model: 32,
  n_layer: 2,
  n_head: 2,
  mlp_ratio: 4,
  rope_theta: 10000,
  norm_eps: 1e-5,
};

/** Text with structure to learn: a pangram and digits, repeated with a varying stride. */
function trainingText(): Uint8Array {
  const line = new TextEncoder().encode("Pack my box with five dozen liquor jugs. 0123456789 ");
  return Uint8Array.from({ length: 8192 }, (_, i) => line[(i + Math.floor(i / 97)) % line.length]);
}

for (const backend of ENGINE_BACKENDS) {
  // the byte model; a subword one (vocabulary 300, one head, MLP ratio 2) with the head in chunks of 13 rows
  const cases: [string, TransformerConfig, number | undefined][] = [
    ["transformer", CONFIG, undefined],
    ["transformer_subword", { ...CONFIG, vocab_size: 300, n_head: 1, mlp_ratio: 2 }, 13],
  ];
  for (const [kind, cfg, headChunk] of cases) {
    Deno.test(`engine ${kind} (${backend}): loss and every parameter gradient equal the TF.js model`, async () => {
      await useBackend(TFJS_REFERENCE_BACKEND);
      // larger than default initial weights, so that attention is far from uniform and every term counts
      const init = initTransformer(cfg, 3);
      for (const [name, v] of init) if (!/ln_|bias/.test(name)) init.set(name, v.map((x) => x * 10));
      const batch = 2, length = 29, V = cfg.vocab_size;
      const ids = Int32Array.from({ length: batch * (length + 1) }, (_, i) => (i * 7919 + 13) % V);
      const model = buildTransformer(kind as "transformer" | "transformer_subword", cfg, init);
      const idsT = tf.tensor(ids, [batch, length + 1], "int32");
      const names = [...model.params.keys()];
      const vars = names.map((n) => model.params.get(n)!);
      const { value, grads } = tf.variableGrads(() => nextTokenLoss(model, idsT), vars);
      const wantLoss = (await value.data())[0];
      const eng = await TransformerEngine.create({
        config: cfg,
        params: init,
        batch,
        length,
        backend,
        allowSoftwareGpu: true,
        headChunk,
      });
      try {
        const got = await eng.gradients(ids);
        assert.ok(Math.abs(got.loss / wantLoss - 1) < 1e-5, `loss ${got.loss} vs ${wantLoss}`);
        for (const [i, name] of names.entries()) {
          const err = relL2(got.grads.get(name)!, await grads[vars[i].name].data() as Float32Array);
          assert.ok(err < 1e-4, `grad of ${name} rel err ${err}`);
        }
      } finally {
        eng.destroy();
        tf.dispose([idsT, value, ...Object.values(grads), ...vars]);
      }
    });
  }

  Deno.test(`engine transformer (${backend}): 30 steps equal the TF.js model trained by the project's trainer`, async () => {
    await useBackend(TFJS_REFERENCE_BACKEND);
    const init = initTransformer(CONFIG, 11);
    const data = trainingText();
    const run = { steps: 30, batch: 2, length: 48, lr: 3e-3, warmup: 5, seed: 7 };
    const model = buildTransformer("transformer", CONFIG, init);
    const { log } = await train(model, data, run);
    const want = await readParameters(model);
    tf.dispose([...model.params.values()]);
    const eng = await TransformerEngine.create({
      config: CONFIG,
      params: init,
      batch: run.batch,
      length: run.length,
      backend,
      allowSoftwareGpu: true,
      readbackEvery: 7,
    });
    try {
      await expectTrainerSteps(eng, data, run, log, want);
    } finally {
      eng.destroy();
    }
  });

  Deno.test(`engine perceiver_ar (${backend}): loss and gradients, and 30 trainer steps, equal the TF.js model`, async () => {
    await useBackend(TFJS_REFERENCE_BACKEND);
    const cfg = { ...CONFIG, vocab_size: 256 as const, num_latents: 11 };
    const init = initPerceiverAR(cfg, 4);
    for (const [name, v] of init) if (!/ln_|bias/.test(name)) init.set(name, v.map((x) => x * 10));
    const batch = 2, length = 29; // 11 latents of 29 positions: layer 0 is a cross-attention
    const ids = Int32Array.from({ length: batch * (length + 1) }, (_, i) => (i * 7919 + 13) % 256);
    const model = buildPerceiverAR(cfg, init);
    const idsT = tf.tensor(ids, [batch, length + 1], "int32");
    const names = [...model.params.keys()];
    const vars = names.map((x) => model.params.get(x)!);
    const { value, grads } = tf.variableGrads(() => nextTokenLoss(model, idsT), vars);
    const wantLoss = (await value.data())[0];
    const opts = { config: cfg, latents: cfg.num_latents, backend, allowSoftwareGpu: true };
    const eng = await TransformerEngine.create({ ...opts, params: init, batch, length });
    try {
      const got = await eng.gradients(ids);
      assert.ok(Math.abs(got.loss / wantLoss - 1) < 1e-5, `loss ${got.loss} vs ${wantLoss}`);
      for (const [i, name] of names.entries()) {
        const err = relL2(got.grads.get(name)!, await grads[vars[i].name].data() as Float32Array);
        assert.ok(err < 1e-4, `grad of ${name} rel err ${err}`);
      }
    } finally {
      eng.destroy();
      tf.dispose([idsT, value, ...Object.values(grads), ...vars]);
    }
    // 30 steps of the trainer (its loss: the latents')
    const init2 = initPerceiverAR(cfg, 12), data = trainingText();
    const run = { steps: 30, batch: 2, length: 48, lr: 3e-3, warmup: 5, seed: 7 };
    const ref: LanguageModel = buildPerceiverAR(cfg, init2);
    const { log } = await train(ref, data, run);
    const want = await readParameters(ref);
    tf.dispose([...ref.params.values()]);
    const eng2 = await TransformerEngine.create({
      ...opts,
      params: init2,
      batch: 2,
      length: 48,
      readbackEvery: 7,
    });
    try {
      await expectTrainerSteps(eng2, data, run, log, want);
    } finally {
      eng2.destroy();
    }
  });

  Deno.test(`engine megabyte (${backend}): loss and gradients, and 30 trainer steps, equal the TF.js model`, async () => {
    await useBackend(TFJS_REFERENCE_BACKEND);
    const cfg: MegaByteConfig = {
      vocab_size: 256,
      patch_size: 4,
      d_global: 32,
      n_layer_global: 2,
      n_head_global: 2,
      d_local: 16,
      n_layer_local: 2,
      n_head_local: 2,
      d_byte_global: 6,
      mlp_ratio: 2,
      rope_theta: 10000,
      norm_eps: 1e-5,
    };
    const init = initMegaByte(cfg, 4);
    for (const [name, v] of init) if (!/ln_|bias/.test(name)) init.set(name, v.map((x) => x * 10));
    const batch = 2, length = 28; // 7 patches of 4 bytes
    const ids = Int32Array.from({ length: batch * (length + 1) }, (_, i) => (i * 7919 + 13) % 256);
    const model = buildMegaByte(cfg, init);
    const idsT = tf.tensor(ids, [batch, length + 1], "int32");
    const names = [...model.params.keys()];
    const vars = names.map((x) => model.params.get(x)!);
    const { value, grads } = tf.variableGrads(() => nextTokenLoss(model, idsT), vars);
    const wantLoss = (await value.data())[0];
    const opts = { config: cfg, backend, allowSoftwareGpu: true };
    const eng = await TransformerEngine.create({ ...opts, params: init, batch, length });
    try {
      const got = await eng.gradients(ids);
      assert.ok(Math.abs(got.loss / wantLoss - 1) < 1e-5, `loss ${got.loss} vs ${wantLoss}`);
      for (const [i, name] of names.entries()) {
        const err = relL2(got.grads.get(name)!, await grads[vars[i].name].data() as Float32Array);
        assert.ok(err < 1e-4, `grad of ${name} rel err ${err}`);
      }
    } finally {
      eng.destroy();
      tf.dispose([idsT, value, ...Object.values(grads), ...vars]);
    }
    const init2 = initMegaByte(cfg, 12), data = trainingText();
    const run = { steps: 30, batch: 2, length: 48, lr: 2e-3, warmup: 5, seed: 7 };
    const ref: LanguageModel = buildMegaByte(cfg, init2);
    const { log } = await train(ref, data, run);
    const want = await readParameters(ref);
    tf.dispose([...ref.params.values()]);
    const eng2 = await TransformerEngine.create({
      ...opts,
      params: init2,
      batch: 2,
      length: 48,
      readbackEvery: 7,
    });
    try {
      await expectTrainerSteps(eng2, data, run, log, want);
    } finally {
      eng2.destroy();
    }
  });
}
