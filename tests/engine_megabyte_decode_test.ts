/**
 * MegaByte's patch-wise decoder on the engine (lib/engine/megabyte_decode.ts) against TF.js's whole forward
 * (lib/models/megabyte.ts megabyteForward: patches batched, attention over materialised scores): the logits
 * of every step, across several patches, equal the forward's at that position; greedy bytes (submissions
 * that start mid-patch and end mid-patch) equal the forward's greedy continuation; on every tested engine
 * backend.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { relL2, useBackend } from "./helpers.ts";
import { ENGINE_BACKENDS, TFJS_REFERENCE_BACKEND } from "./engine_helpers.ts";
import "../lib/models/mod.ts";
import { createModel } from "../lib/models/registry.ts";
import { disposeModel, readParameters } from "../lib/models/lm.ts";
import { asMegaByte, megabyteForward } from "../lib/models/megabyte.ts";
import { MegaByteDecoder } from "../lib/engine/megabyte_decode.ts";
import { Rng } from "../lib/util/rng.ts";

const CONFIG = { patch_size: 4, d_global: 64, n_layer_global: 2, d_local: 32, n_layer_local: 2 };

/** TF.js's logits (n, 256) of one byte sequence, through the whole forward (zeros pad the last patch). */
async function fullLogits(model: ReturnType<typeof createModel>, ids: number[]): Promise<Float32Array> {
  const P = CONFIG.patch_size, padded = Math.ceil(ids.length / P) * P;
  const input = [...ids, ...new Array(padded - ids.length).fill(0)];
  const t = tf.tidy(() => megabyteForward(asMegaByte(model), tf.tensor([input], [1, padded], "int32")));
  const v = (await t.data()) as Float32Array;
  t.dispose();
  return v.subarray(0, ids.length * 256);
}

for (const backend of ENGINE_BACKENDS) {
  Deno.test(`megabyte decoder (${backend}): step logits and greedy bytes equal TF.js's forward`, async () => {
    await useBackend(TFJS_REFERENCE_BACKEND);
    const model = createModel("megabyte", CONFIG, 9);
    const dec = await MegaByteDecoder.create({
      config: asMegaByte(model).config,
      params: await readParameters(model),
      maxLen: 64,
      backend,
      stepsPerSubmit: 7, // not a multiple of the patch: submissions start and end mid-patch
      allowSoftwareGpu: true,
    });
    try {
      const rng = new Rng(4);
      const prompt = Array.from({ length: 11 }, () => rng.int(256)); // three patches begun
      const want = await fullLogits(model, prompt);
      for (let t = 0; t < prompt.length; t++) {
        const got = await dec.step(prompt[t]);
        const err = relL2(got, want.subarray(t * 256, (t + 1) * 256));
        assert.ok(err < 1e-5, `${backend}: step ${t} logits rel err ${err}`);
      }
      // greedy: 18 bytes in submissions of 7, 7, 4 after the prompt's last byte (fed again at position 11)
      dec.seek(prompt.length - 1);
      const greedy = await dec.greedy(prompt.at(-1)!, 18);
      let cur = [...prompt];
      for (let i = 0; i < 18; i++) {
        const lg = (await fullLogits(model, cur)).subarray((cur.length - 1) * 256);
        let best = 0;
        for (let v = 1; v < 256; v++) if (lg[v] > lg[best]) best = v;
        assert.equal(greedy[i], best, `${backend}: greedy byte ${i}`);
        cur = [...cur, best];
      }
      assert.equal(dec.position, prompt.length + 17);
      await assert.rejects(() => dec.greedy(1, 60), /exceed the context's 64 \(maxLen\)/);
    } finally {
      dec.destroy();
      disposeModel(model);
    }
  });
}
