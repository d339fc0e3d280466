/**
 * The byte Transformer's forward and backward on the native engine (lib/engine/transformer.ts) against
 * the TF.js model (lib/models/transformer.ts, itself tested against PyTorch in
 * baselines_reference_test.ts): the loss and the gradient of every parameter, on each engine backend.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { TransformerEngine } from "../lib/engine/transformer.ts";
import { nextTokenLoss } from "../lib/models/lm.ts";
import { buildTransformer, initTransformer, type TransformerConfig } from "../lib/models/transformer.ts";
import { relL2, useBackend } from "./helpers.ts";
import { ENGINE_BACKENDS, TFJS_REFERENCE_BACKEND } from "./engine_helpers.ts";

for (const backend of ENGINE_BACKENDS) {
  Deno.test(`engine transformer (${backend}): loss and every parameter gradient equal the TF.js model`, async () => {
    await useBackend(TFJS_REFERENCE_BACKEND);
    const cfg: TransformerConfig = {
      vocab_size: 256,
      d_model: 32,
      n_layer: 2,
      n_head: 2,
      mlp_ratio: 4,
      rope_theta: 10000,
      norm_eps: 1e-5,
    };
    // larger than default initial weights, so that attention is far from uniform and every term counts
    const init = initTransformer(cfg, 3);
    for (const [name, v] of init) if (!/ln_|bias/.test(name)) init.set(name, v.map((x) => x * 10));
    const batch = 2, length = 29;
    const ids = Int32Array.from({ length: batch * (length + 1) }, (_, i) => (i * 7919 + 13) % 256);
    const model = buildTransformer("transformer", cfg, init);
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
