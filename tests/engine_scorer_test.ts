/**
 * Scoring on the native engine (lib/eval/engine_scorer.ts): the byte Transformer's, MegaByte's and
 * PerceiverAR's per-token nats through the engine's forward and head equal TF.js's tokenNats (an
 * independent implementation: whole tensors, scores materialised; PerceiverAR's nested passes in TF.js ops)
 * on every tested engine backend, including MegaByte's padding to whole patches and rows of PerceiverAR
 * longer than two passes; a split scored through scoreText with the scorer (as a run's test score is) gives
 * TF.js's bits per byte and per-document scores; and the extrapolation reads lengths past TF.js's attention
 * cap through the scorer, with the same numbers where both run.
 */
import assert from "node:assert/strict";
import { relL2, useBackend } from "./helpers.ts";
import { ENGINE_BACKENDS, TFJS_REFERENCE_BACKEND } from "./engine_helpers.ts";
import "../lib/models/mod.ts";
import { createModel } from "../lib/models/registry.ts";
import { disposeModel } from "../lib/models/lm.ts";
import { scoreText, tokenNats } from "../lib/eval/score.ts";
import { EngineScorer } from "../lib/eval/engine_scorer.ts";
import { evaluateExtrapolation } from "../lib/eval/extrapolation.ts";
import { Rng } from "../lib/util/rng.ts";

// heads of 64 and rows longer than 32: the tiled attention kernels on WebGPU; MegaByte: patches of 4
const MODELS: Record<string, Record<string, unknown>> = {
  transformer: { d_model: 64, n_layer: 2 },
  megabyte: { patch_size: 4, d_global: 64, n_layer_global: 2, d_local: 32, n_layer_local: 1 },
  // 32 latents: rows of 70 take passes ending at 70, 38 and 6; rows of 45 at 45 and 13; rows of 20, one
  perceiver_ar: { d_model: 64, n_layer: 2, num_latents: 32 },
  // token ids past the bytes' 256
  transformer_subword: { d_model: 64, n_layer: 2, vocab_size: 300 },
};

for (const backend of ENGINE_BACKENDS) {
  for (const [kind, config] of Object.entries(MODELS)) {
    Deno.test(`engine scorer (${backend}): ${kind}'s per-token nats equal TF.js's tokenNats`, async () => {
      await useBackend(TFJS_REFERENCE_BACKEND);
      const model = createModel(kind, config, 3);
      const rng = new Rng(11);
      const scorer = await EngineScorer.create(model, { backend, allowSoftwareGpu: true });
      try {
        // 70 inputs: not a multiple of MegaByte's patch (the scorer pads); two row counts reuse/rebuild the engine
        const vocab = (config.vocab_size as number | undefined) ?? 256;
        for (const [b, n] of [[2, 70], [2, 70], [1, 45], [2, 20]]) {
          const rows = Array.from(
            { length: b },
            () => Int32Array.from({ length: n + 1 }, () => rng.int(vocab)),
          );
          const got = await scorer.nats(rows);
          const t = tokenNats(model, rows);
          const want = (await t.data()) as Float32Array;
          t.dispose();
          assert.equal(got.length, b * n);
          const err = relL2(got, want);
          assert.ok(err < 1e-5, `${kind} (${backend}) ${b}x${n}: nats rel err ${err}`);
        }
        // one engine per (rows, length), built once: the repeated 2 x 70 builds none; PerceiverAR's
        // passes end at 70, 38, 6 / 45, 13 / 20, MegaByte pads 70 and 45 to 72 and 48
        const lengths = { perceiver_ar: 6, megabyte: 3 }[kind] ?? 3;
        assert.equal(scorer.enginesBuilt, lengths);
      } finally {
        scorer.destroy();
        disposeModel(model);
      }
    });
  }
}

for (const kind of ["transformer", "perceiver_ar"]) {
  Deno.test(`engine scorer: scoreText through it gives TF.js's score and per-document scores (${kind})`, async () => {
    await useBackend(TFJS_REFERENCE_BACKEND);
    const model = createModel(kind, MODELS[kind], 7);
    const text = new TextEncoder().encode(
      "The first document, short. ".repeat(5) + "A second one, longer still. ".repeat(9),
    );
    const opts = { window: 64, batch: 2, documents: [135, text.length - 135] };
    const scorer = await EngineScorer.create(model, {
      backend: ENGINE_BACKENDS.at(-1),
      allowSoftwareGpu: true,
    });
    try {
      const want = await scoreText(model, text, opts);
      const got = await scoreText(model, text, { ...opts, scorer });
      assert.equal(got.tokens, want.tokens);
      assert.ok(
        Math.abs(got.bits_per_byte - want.bits_per_byte) < 1e-5 * want.bits_per_byte,
        "bits per byte",
      );
      assert.equal(got.documents!.length, 2);
      got.documents!.forEach((d, i) => {
        assert.equal(d.bytes, want.documents![i].bytes);
        assert.ok(
          Math.abs(d.nats - want.documents![i].nats) < 1e-5 * want.documents![i].nats,
          `document ${i}`,
        );
      });
    } finally {
      scorer.destroy();
      disposeModel(model);
    }
  });
}

Deno.test("engine scorer: the extrapolation reads lengths past TF.js's attention cap, equal where both run", async () => {
  await useBackend(TFJS_REFERENCE_BACKEND);
  const model = createModel("transformer", MODELS.transformer, 5);
  const test = new TextEncoder().encode("a long test text of bytes, with some repetition in it. ".repeat(12));
  const opts = {
    trainedContext: 32,
    multiples: [1, 2, 4],
    modes: ["whole" as const],
    maxAttentionLength: 64,
  };
  const scorer = await EngineScorer.create(model, {
    backend: ENGINE_BACKENDS.at(-1),
    allowSoftwareGpu: true,
  });
  try {
    const tfjs = await evaluateExtrapolation(model, test, opts);
    const engine = await evaluateExtrapolation(model, test, { ...opts, scorer });
    for (const m of [1, 2]) {
      const [a, b] = [tfjs, engine].map((rs) => rs.find((r) => r.multiple === m)!);
      assert.equal(a.status, "ok");
      assert.equal(b.status, "ok");
      assert.equal(b.scored_by, scorer.name);
      assert.ok(Math.abs(a.bits_per_byte - b.bits_per_byte) < 1e-5 * a.bits_per_byte, `${m}x: bits per byte`);
    }
    // 4x = 128 tokens > maxAttentionLength: TF.js skips it, the engine scores it
    assert.equal(tfjs.find((r) => r.multiple === 4)!.status, "skipped");
    const far = engine.find((r) => r.multiple === 4)!;
    assert.equal(far.status, "ok");
    assert.ok(far.bits_per_byte > 0 && far.tokens === far.sequences * 128);
    // one engine per length (each length's rows fit one batch), released before the next length's: kept,
    // a context-8192 Transformer's engines for 1x-64x ran an H100 out of memory
    assert.equal(scorer.enginesBuilt, 3);
    assert.equal(scorer.peakEngines, 1);
  } finally {
    scorer.destroy();
    disposeModel(model);
  }
});
