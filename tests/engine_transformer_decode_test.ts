/**
 * The byte Transformer's KV-cache decoder on the engine (lib/engine/transformer_decode.ts) against TF.js's
 * model (an independent implementation: whole-sequence attention over materialised scores): the logits of
 * every step equal those of the full forward at that position, greedy ids (whole submissions and single
 * steps) equal TF.js's greedy continuation, on every tested engine backend; the decode attention kernel
 * equals its twin at lengths across chunks; a full cache is refused, naming it; generation (greedy and
 * seeded sampling, the byte Transformer and MegaByte) equals TF.js's logits under pickToken's rule.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { relL2, useBackend } from "./helpers.ts";
import { ENGINE_BACKENDS, TFJS_REFERENCE_BACKEND } from "./engine_helpers.ts";
import { check } from "./kernel_check.ts";
import "../lib/models/mod.ts";
import { createModel } from "../lib/models/registry.ts";
import { disposeModel, readParameters } from "../lib/models/lm.ts";
import type { TransformerConfig } from "../lib/models/transformer_config.ts";
import { TransformerDecoder } from "../lib/engine/transformer_decode.ts";
import { Rng } from "../lib/util/rng.ts";
import { streamAttentionBytes } from "../lib/decode/attention_sample.ts";
import { pickToken } from "../lib/decode/sample.ts";

const CONFIG = { d_model: 64, n_layer: 2 }; // one head of 64

/** TF.js's logits (n, V) of one sequence, whole. */
async function fullLogits(model: ReturnType<typeof createModel>, ids: number[]): Promise<Float32Array> {
  const t = tf.tidy(() => model.logits(tf.tensor([ids], [1, ids.length], "int32")));
  const v = (await t.data()) as Float32Array;
  t.dispose();
  return v;
}

for (const backend of ENGINE_BACKENDS) {
  Deno.test(`transformer decoder (${backend}): step logits and greedy ids equal TF.js's model`, async () => {
    await useBackend(TFJS_REFERENCE_BACKEND);
    const model = createModel("transformer", CONFIG, 7);
    const V = model.config.vocab_size;
    const dec = await TransformerDecoder.create({
      config: model.config as unknown as TransformerConfig,
      params: await readParameters(model),
      maxLen: 90,
      backend,
      stepsPerSubmit: 16,
      allowSoftwareGpu: true,
    });
    try {
      const rng = new Rng(3);
      const prompt = Array.from({ length: 12 }, () => rng.int(V));
      const want = await fullLogits(model, prompt);
      for (let t = 0; t < prompt.length; t++) {
        const got = await dec.step(prompt[t]);
        const err = relL2(got, want.subarray(t * V, (t + 1) * V));
        assert.ok(err < 1e-5, `${backend}: step ${t} logits rel err ${err}`);
      }
      // 40 greedy ids: two submissions of 16, then 8 single steps; TF.js: the argmax of the whole forward
      const last = prompt.at(-1)!;
      const seq = prompt.slice(0, -1);
      const greedy = await dec.greedy(last, 40);
      let cur = [...prompt];
      for (let i = 0; i < 40; i++) {
        const lg = (await fullLogits(model, cur)).subarray((cur.length - 1) * V, cur.length * V);
        let best = 0;
        for (let v = 1; v < V; v++) if (lg[v] > lg[best]) best = v;
        assert.equal(greedy[i], best, `${backend}: greedy id ${i}`);
        cur = [...cur, best];
      }
      assert.equal(dec.position, seq.length + 1 + 40);
      await assert.rejects(() => dec.greedy(greedy.at(-1)!, 50), /exceed the cache's 90 \(maxLen\)/);
    } finally {
      dec.destroy();
      disposeModel(model);
    }
  });
}

Deno.test("decode attention: the split-and-combine kernel equals its twin across chunks of keys", async () => {
  const rng = new Rng(5);
  const heads = 3, hd = 12, maxLen = 200, d = heads * hd;
  for (const pos of [0, 63, 64, 150, 199]) {
    await check(`decode attention at position ${pos}`, {
      inputs: {
        qkv: rng.normalArray(3 * d, 1),
        kv: rng.normalArray(maxLen * 2 * d, 1),
        ctl: Int32Array.of(7, pos),
        o: new Float32Array(d),
      },
      outputs: { o: 1e-5 },
      run: (ops, b) =>
        ops.decodeAttention({ heads, hd, maxLen, kvStride: 2 * d, vOffset: d, indexAt: 1, qOffset: 0 }, {
          q: b.qkv,
          kv: b.kv,
          ctl: b.ctl,
          o: b.o,
        }),
    });
  }
});

Deno.test("generation from the byte Transformer and MegaByte: greedy and seeded sampling equal TF.js's logits and pickToken", async () => {
  await useBackend(TFJS_REFERENCE_BACKEND);
  const models = [
    createModel("transformer", CONFIG, 8),
    createModel(
      "megabyte",
      { patch_size: 4, d_global: 32, n_layer_global: 1, d_local: 16, n_layer_local: 1 },
      8,
    ),
  ];
  const P = 4;
  try {
    for (const model of models) {
      const prompt = [...new TextEncoder().encode("Once upon a")];
      // TF.js: the whole forward's last row (zeros pad MegaByte's last patch), then pickToken
      const next = async (ids: number[]) => {
        const n = model.kind === "megabyte" ? Math.ceil(ids.length / P) * P : ids.length;
        const input = [...ids, ...new Array(n - ids.length).fill(0)];
        const t = tf.tidy(() => model.logits(tf.tensor([input], [1, n], "int32")));
        const v = (await t.data()) as Float32Array;
        t.dispose();
        return v.slice((ids.length - 1) * 256, ids.length * 256);
      };
      for (const opts of [{ greedy: true }, { temperature: 0.9, topK: 20, seed: 3 }]) {
        const got: number[] = [];
        await streamAttentionBytes(model, prompt, 70, opts, (b) => void got.push(b));
        const rng = new Rng(opts.seed ?? 0);
        const cur = [...prompt];
        for (let i = 0; i < 70; i++) {
          const b = pickToken(await next(cur), opts, rng);
          assert.equal(got[i], b, `${model.kind} ${JSON.stringify(opts)}: byte ${i}`);
          cur.push(b);
        }
      }
    }
  } finally {
    models.forEach(disposeModel);
  }
});
