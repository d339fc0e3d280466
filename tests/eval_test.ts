/**
 * The evaluations of issue 7: length extrapolation (chunked recurrent evaluation equals one pass, sliding
 * windows score every byte once at the right position, every length scores the same bytes, capped lengths
 * are reported), noise robustness (p = 0 changes nothing, the word-perplexity denominator), and the
 * figure registry / `deno task figures` on a small records folder (Chromium needed: without it this FAILS).
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { trainBpe } from "../lib/data/bpe.ts";
import { countWords, documentSpans, joinDocuments, readSplit, slidingWindows } from "../lib/data/bytes.ts";
import { NOISE_KINDS } from "../lib/data/noise.ts";
import {
  evaluateExtrapolation,
  extrapolationRecords,
  PositionLoss,
  recurrentNats,
  sequenceNats,
} from "../lib/eval/extrapolation.ts";
import { evaluateNoise, NOISE_SETTINGS } from "../lib/eval/noise.ts";
import { loadTrained, runExperiment } from "../lib/runs/experiment.ts";
import { type ScoreOptions, scoreText, tokenNats } from "../lib/eval/score.ts";
import { disposeModel, type LanguageModel } from "../lib/models/lm.ts";
import { disposeState, prefill } from "../lib/models/mamba.ts";
import { asMamba, createModel } from "../lib/models/mod.ts";
import { buildFigure, exportFigures, figureBuilders } from "../lib/plot/figures/mod.ts";
import { appendRecord } from "../lib/results/store.ts";
import { setDefaultScanImpl } from "../lib/ssm/mod.ts";
import { Rng } from "../lib/util/rng.ts";
import { useBackend } from "./helpers.ts";
import { extrapolationStage, noiseStage } from "../lib/runs/stages.ts";
import { writeHalfModel } from "../lib/models/half_precision.ts";

/** The tracked books test sample (Project Gutenberg text). */
const SAMPLE = await readSplit(new URL("../data/samples/books/test", import.meta.url).pathname);

/** A tiny random-init MambaByte (d_model 16, 2 layers). */
const tinyMamba = (seed = 1) => createModel("mambabyte", { d_model: 16, n_layer: 2 }, seed);

/**
 * A non-recurrent byte model whose prediction depends on the previous byte only (a bigram table), so its
 * loss at a position does not depend on how much context a window gives: the sliding-window and the
 * whole-sequence evaluations must agree position by position.
 */
function bigramModel(seed = 0): LanguageModel {
  const table = tf.variable(tf.tensor2d(new Rng(seed).normalArray(256 * 256), [256, 256]));
  return {
    kind: "transformer",
    config: { vocab_size: 256 },
    params: new Map([["table", table]]),
    logits: (ids) => tf.tidy(() => tf.gather(table, ids.toInt())), // (b, l, 256)
    noWeightDecay: () => false,
    trainFlopsPerToken: () => 0,
  };
}

Deno.test("extrapolation: chunked recurrent evaluation (state carried) equals one pass, on cpu and wasm, fused and sequential scans", async () => {
  for (const backend of ["cpu", "wasm"] as const) {
    await useBackend(backend);
    const model = tinyMamba();
    const core = asMamba(model);
    const rows = [Int32Array.from(SAMPLE.subarray(0, 201)), Int32Array.from(SAMPLE.subarray(500, 701))];
    for (const impl of ["fused", "sequential"] as const) {
      setDefaultScanImpl(impl);
      try {
        const t = tokenNats(model, rows); // (2, 200): the ordinary forward pass over the whole rows
        const onePass = (await t.data()) as Float32Array;
        t.dispose();
        const before = tf.memory().numTensors;
        for (const chunk of [200, 64, 7, 1]) {
          const chunked = await recurrentNats(core, rows, chunk);
          let worst = 0;
          for (let i = 0; i < onePass.length; i++) worst = Math.max(worst, Math.abs(chunked[i] - onePass[i]));
          assert.ok(
            worst < 1e-4,
            `${backend}/${impl}, chunk ${chunk}: max |chunked - one pass| = ${worst} nats`,
          );
        }
        assert.equal(tf.memory().numTensors, before, `${backend}/${impl}: tensors leaked by recurrentNats`);
      } finally {
        setDefaultScanImpl(undefined);
      }
    }
    disposeModel(model);
  }
});

Deno.test("prefill from a state continues a prefill exactly (logits and final state)", async () => {
  await useBackend("wasm");
  const model = tinyMamba(2);
  const core = asMamba(model);
  const ids = Int32Array.from(SAMPLE.subarray(0, 90));
  const whole = prefill(core, tf.tensor(ids, [1, 90], "int32")); // logits (1, 90, V), final state
  const a = prefill(core, tf.tensor(ids.subarray(0, 37), [1, 37], "int32"));
  const b = prefill(core, tf.tensor(ids.subarray(37), [1, 53], "int32"), a.state);
  const joined = tf.concat([a.logits, b.logits], 1);
  const diff = (x: tf.Tensor, y: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(x, y))).dataSync()[0]);
  assert.ok(diff(joined, whole.logits) < 1e-4, `logits differ by ${diff(joined, whole.logits)}`);
  for (let i = 0; i < whole.state.length; i++) {
    assert.ok(diff(b.state[i].ssm, whole.state[i].ssm) < 1e-4, `layer ${i}: SSM state differs`);
    assert.ok(diff(b.state[i].conv, whole.state[i].conv) < 1e-6, `layer ${i}: conv state differs`);
  }
  tf.dispose([joined, a.logits, b.logits, whole.logits]);
  [a.state, b.state, whole.state].forEach(disposeState);
  disposeModel(model);
});

Deno.test("extrapolation: sliding windows score every byte once, at its own position", async () => {
  await useBackend("wasm");
  // alignment: a previous-byte model gives the same loss at every position whatever the window
  const bigram = bigramModel();
  const seqs = [Int32Array.from(SAMPLE.subarray(0, 301)), Int32Array.from(SAMPLE.subarray(301, 602))];
  const whole = await sequenceNats(bigram, seqs, "whole", { trainedContext: 32 });
  for (const context of [0, 16, 31]) {
    const sliding = await sequenceNats(bigram, seqs, "sliding", {
      trainedContext: 32,
      slidingContext: context,
    });
    for (let s = 0; s < seqs.length; s++) {
      assert.equal(sliding[s].length, 300);
      for (let p = 0; p < 300; p++) {
        assert.ok(
          Math.abs(sliding[s][p] - whole[s][p]) < 1e-4,
          `context ${context}, sequence ${s}, target ${p + 1}: ${sliding[s][p]} vs ${whole[s][p]}`,
        );
      }
    }
  }
  // coverage and context: with a model that uses context, each target's loss is that of a window holding
  // between `context` and C-1 bytes before it (or the whole prefix, at the start)
  const mamba = tinyMamba(3);
  const C = 16, context = 6;
  const seq = Int32Array.from(SAMPLE.subarray(1000, 1061)); // 60 targets
  const [got] = await sequenceNats(mamba, [seq], "sliding", { trainedContext: C, slidingContext: context });
  let scored = 0;
  for (const w of slidingWindows(Uint8Array.from(seq), C, context)) scored += w.bytes.length - 1 - w.skip;
  assert.equal(scored, 60, "slidingWindows' windows score 60 predictions in all");
  for (let p = 1; p <= 60; p++) {
    const candidates: Int32Array[] = [];
    for (let k = Math.min(p, context); k <= Math.min(p, C); k++) candidates.push(seq.slice(p - k, p + 1)); // k bytes of context
    const matches = await Promise.all(candidates.map(async (w) => {
      const t = tokenNats(mamba, [w]);
      const v = (await t.data())[w.length - 2];
      t.dispose();
      return Math.abs(v - got[p - 1]) < 1e-4;
    }));
    assert.ok(
      matches.some(Boolean),
      `target ${p}: its loss is not that of any window with ${context}..${C} bytes of context`,
    );
  }
  disposeModel(bigram);
  disposeModel(mamba);
});

Deno.test("extrapolation on webgpu: each length's buffers leave TF.js's pool before the next length", async () => {
  await useBackend("webgpu");
  const pool = (tf.backend() as unknown as {
    bufferManager: { getNumFreeBuffers(): number; numBytesAllocated: number };
  }).bufferManager;
  const mamba = tinyMamba(4);
  const pooledAfter: number[] = [], pooledAtStart: number[] = [];
  try {
    await evaluateExtrapolation(mamba, SAMPLE.subarray(0, 600), {
      trainedContext: 32,
      multiples: [1, 2, 4],
      chunk: 50,
      // the pool as each length's result is reported (before its release) ...
      onProgress: (l) => void (/bits\/byte/.test(l) && pooledAfter.push(pool.getNumFreeBuffers())),
      // ... and as the next length starts (asked whether to skip it): empty
      skip: (m) => (m > 1 && pooledAtStart.push(pool.getNumFreeBuffers()), false),
    });
    assert.deepEqual(pooledAtStart, [0, 0], "2x and 4x start from an empty pool");
    // ... held buffers of that length's shapes; after the last length's release it holds none
    assert.equal(pooledAfter.length, 3);
    assert.ok(pooledAfter.every((n) => n > 0), `pooled while scoring: ${pooledAfter}`);
    assert.equal(pool.getNumFreeBuffers(), 0, "nothing pooled after the extrapolation");
  } finally {
    disposeModel(mamba);
  }
});

Deno.test("extrapolation: every length scores the same bytes; capped and attention-limited lengths are reported", async () => {
  await useBackend("wasm");
  const mamba = tinyMamba(4);
  const text = SAMPLE.subarray(0, 2100);
  const before = tf.memory().numTensors;
  const res = await evaluateExtrapolation(mamba, text, {
    trainedContext: 32,
    multiples: [1, 2, 4, 8, 16, 32, 64, 128],
    chunk: 100,
  });
  assert.equal(tf.memory().numTensors, before, "no tensors leaked");
  const ok = res.filter((r) => r.status === "ok");
  assert.deepEqual(ok.map((r) => r.multiple), [1, 2, 4, 8, 16, 32, 64]);
  for (const r of ok) {
    assert.equal(r.bytes, 2048, `${r.multiple}x scores the same 2,048 bytes`);
    assert.equal(r.position_bins.reduce((s, b) => s + b.bytes, 0), r.bytes, "position bins hold every byte");
    assert.ok(
      Math.abs(r.position_bins.reduce((s, b) => s + b.nats, 0) - r.nats) < 1e-2,
      "position bins hold every nat",
    );
    assert.equal(
      Math.max(...r.position_bins.map((b) => b.hi)),
      r.multiple * 32,
      "positions reach the sequence length",
    );
  }
  const capped = res.find((r) => r.multiple === 128)!;
  assert.equal(capped.status, "skipped");
  assert.match(capped.reason!, /capped.*test split \(2100 tokens\).*4097 tokens.*longest evaluated is 64x/);
  // a non-recurrent model: whole sequences beyond maxAttentionLength are skipped, saying why; sliding runs
  const bigram = bigramModel(1);
  const progress: { windows: number; totalWindows: number; tokens: number; totalTokens: number }[] = [];
  const res2 = await evaluateExtrapolation(bigram, text, {
    trainedContext: 32,
    multiples: [1, 4, 16],
    maxAttentionLength: 128,
    batchTokens: 256, // several batches per length: progress between results
    onScored: (p) => void progress.push(p),
  });
  // progress: evaluations and predictions only grow, and end at all of them; the predictions are the
  // results' own tokens, a skipped evaluation counting its span (every length scores the same span)
  const span = res2.find((r) => r.status === "ok")!.tokens;
  const expected = res2.reduce((a, r) => a + (r.status === "ok" ? r.tokens : span), 0);
  for (let i = 1; i < progress.length; i++) {
    assert.ok(progress[i].tokens >= progress[i - 1].tokens && progress[i].windows >= progress[i - 1].windows);
  }
  assert.ok(progress.length > res2.length, `${progress.length} reports for ${res2.length} results`);
  assert.deepEqual(progress.at(-1), { windows: 6, totalWindows: 6, tokens: expected, totalTokens: expected });
  const at16 = res2.filter((r) => r.multiple === 16);
  assert.deepEqual(at16.map((r) => [r.mode, r.status]), [["sliding", "ok"], ["whole", "skipped"]]);
  assert.match(at16[1].reason!, /maxAttentionLength 128/);
  // and for it, whole and sliding agree (previous-byte model)
  const at4 = res2.filter((r) => r.multiple === 4);
  assert.ok(Math.abs(at4[0].bits_per_byte - at4[1].bits_per_byte) < 1e-5);
  disposeModel(mamba);
  disposeModel(bigram);
});

Deno.test("extrapolation: subword models are evaluated in tokens and scored per byte of the same text", async () => {
  await useBackend("wasm");
  const text = SAMPLE.subarray(0, 3000);
  const bpe = trainBpe(SAMPLE.subarray(0, 20000), { vocabSize: 300 });
  const model = createModel("mamba_subword", { d_model: 16, n_layer: 1, vocab_size: bpe.vocabSize }, 0);
  const streamed: unknown[] = [];
  const recs = await extrapolationRecords(model, text, {
    trainedContext: 16,
    multiples: [1, 4],
    tokenizer: bpe,
  }, {
    scale: "test",
    model_dir: "(test)",
    domain: "books",
    data: "(test)",
  }, (r) => void streamed.push(r));
  // each record is handed over as soon as its length is done (the stage appends it at once), complete
  assert.deepEqual(streamed, recs);
  const ids = bpe.encode(text);
  const span = Math.floor((ids.length - 1) / 64) * 64;
  const expectBytes = [...ids.subarray(1, span + 1)].reduce((s, id) => s + bpe.tokenBytes(id).length, 0);
  for (const r of recs) {
    assert.equal(r.status, "ok");
    assert.equal(r.unit, "subword");
    assert.equal(r.tokens, span);
    assert.equal(r.bytes, expectBytes, "bytes of the predicted tokens");
    assert.ok(r.trained_context_bytes > 16, "C in bytes is larger than C in tokens");
  }
  disposeModel(model);
});

Deno.test("noise: p = 0 changes nothing; perplexity is per CLEAN word; subword models too", async () => {
  await useBackend("wasm");
  const clean = SAMPLE.subarray(0, 1500);
  const mamba = tinyMamba(5);
  const zero = await evaluateNoise(mamba, clean, {
    window: 256,
    settings: NOISE_KINDS.map((kind) => ({ kind, p: 0 })),
  });
  assert.equal(zero.length, 1 + NOISE_KINDS.length);
  for (const r of zero) {
    assert.equal(r.delta_bits_per_byte, 0, `${r.noise}: bits-per-byte increase`);
    assert.equal(r.delta_word_perplexity, 0, `${r.noise}: word-perplexity increase`);
    assert.equal(r.ratio_word_perplexity, 1);
  }
  const noisy = await evaluateNoise(mamba, clean, { window: 256, settings: NOISE_SETTINGS, seed: 7 });
  const ant = noisy.find((r) => r.noise === "antspeak")!;
  assert.equal(ant.words, countWords(clean));
  assert.ok(ant.words_noisy > 3 * ant.words, "antspeak multiplies the words");
  assert.ok(
    Math.abs(ant.word_perplexity - Math.exp(ant.nats / ant.words)) <= 1e-9 * ant.word_perplexity,
    "denominator: clean words",
  );
  assert.ok(ant.text_bytes > clean.length && ant.delta_bits_per_byte !== 0);
  assert.ok(noisy.find((r) => r.noise === "drop" && r.p === 0.3)!.text_bytes < clean.length * 0.8);
  // a subword model reads the noisy bytes through its tokenizer
  const bpe = trainBpe(SAMPLE.subarray(0, 20000), { vocabSize: 300 });
  const sub = createModel("mamba_subword", { d_model: 16, n_layer: 1, vocab_size: bpe.vocabSize }, 0);
  const subZero = await evaluateNoise(sub, clean, {
    window: 64,
    tokenizer: bpe,
    settings: [{ kind: "swap", p: 0 }],
  });
  assert.equal(subZero[1].delta_bits_per_byte, 0);
  disposeModel(mamba);
  disposeModel(sub);
});

Deno.test("stages: evaluate a recorded run from its checkpoint, record with provenance, skip it the next time", async () => {
  await useBackend("wasm");
  const results = await Deno.makeTempDir({ prefix: "eval-test-results-" });
  const runsDir = await Deno.makeTempDir({ prefix: "eval-test-runs-" });
  try {
    const run = await runExperiment({
      name: "t/smoke/books/mambabyte",
      model: "mambabyte",
      config: { d_model: 16, n_layer: 1 },
      domain: "books",
      scale: "smoke",
      train: { batch: 2, length: 32, lr: 1e-3, warmup: 1, seed: 0, steps: 2 },
      eval: { maxBytes: 512 },
      labels: { label: "MB-test", budget_ratio: 1 },
    }, { resultsDir: results, runsDir, quiet: true });
    // the sanity check's reference: the scored bytes' unigram entropy, in the run's record
    const u = run.eval.unigram_bpb!;
    assert.ok(u > 3 && u < 6, `unigram entropy of English-like test bytes: ${u}`);
    // the per-document scores: the 512 bytes scored lie in the split's first document, which holds them all
    const docs = run.eval.documents!;
    assert.equal(docs.length, 1);
    assert.equal(docs[0].bytes, run.eval.bytes);
    assert.ok(Math.abs(docs[0].bits_per_byte - run.eval.bits_per_byte) < 1e-5);
    const first = (await Array.fromAsync(Deno.readDir("data/samples/books/test"))).map((e) =>
      e.name
    ).sort()[0];
    assert.ok(docs[0].name.startsWith(first), `${docs[0].name} is under ${first}`);
    const runs = [{ ...run, provenance: { time: "t0" } }];
    const opts = { scale: "smoke", resultsDir: results, runsDir, quiet: true };
    const exSettings = { maxTokens: 1024, multiples: [1, 2, 4] };
    const ex = await extrapolationStage(runs, { ...opts, settings: exSettings });
    assert.deepEqual(ex.map((r) => [r.multiple, r.mode, r.status]), [[1, "whole", "ok"], [2, "whole", "ok"], [
      4,
      "whole",
      "ok",
    ]]);
    assert.equal(ex[0].trained_context, 32);
    assert.equal(ex[0].label, "MB-test");
    const no = await noiseStage(runs, { ...opts, maxBytes: 600 });
    assert.equal(no.length, 1 + NOISE_SETTINGS.length);
    assert.equal(no[0].window, 32, "scored in windows of the training length");
    // a pass cut by a time limit after the clean text and three settings (their records kept) is finished
    // by the next one, which scores only the settings left, to the same values
    const cut = await Deno.makeTempDir({ prefix: "stages-cut-" });
    try {
      for (const r of no.slice(0, 4)) {
        await appendRecord("noise", r as unknown as Record<string, unknown>, cut);
      }
      const rest = await noiseStage(runs, { ...opts, resultsDir: cut, maxBytes: 600 });
      assert.deepEqual(
        rest.map((r) => [r.noise, r.p, r.bits_per_byte]),
        no.slice(4).map((r) => [r.noise, r.p, r.bits_per_byte]),
      );
      assert.equal(
        (await noiseStage(runs, { ...opts, resultsDir: cut, maxBytes: 600 })).length,
        0,
        "complete",
      );
      // and the extrapolation, cut after its first length
      await appendRecord("extrapolation", ex[0] as unknown as Record<string, unknown>, cut);
      const exRest = await extrapolationStage(runs, { ...opts, resultsDir: cut, settings: exSettings });
      assert.deepEqual(
        exRest.map((r) => [r.multiple, r.mode, r.bits_per_byte]),
        ex.slice(1).map((r) => [r.multiple, r.mode, r.bits_per_byte]),
      );
      assert.equal(
        (await extrapolationStage(runs, { ...opts, resultsDir: cut, settings: exSettings })).length,
        0,
      );
      // a pass asking for a length more under another token budget scores over another span: every length
      // again, not a mix of spans (a pass whose lengths are all recorded evaluates nothing, as above)
      const narrower = await extrapolationStage(runs, {
        ...opts,
        resultsDir: cut,
        settings: { maxTokens: 512, multiples: [1, 2, 4, 8] },
      });
      assert.deepEqual(narrower.map((r) => [r.multiple, r.tokens]), [[1, 512], [2, 512], [4, 512], [8, 512]]);
      // records without the model here (a run trained on another machine) stay as they are, without error
      const elsewhere = await Deno.makeTempDir({ prefix: "stages-nomodel-" });
      try {
        const away = { ...opts, resultsDir: cut, runsDir: elsewhere };
        assert.deepEqual(
          await extrapolationStage(runs, { ...away, settings: { ...exSettings, multiples: [1, 16] } }),
          [],
        );
      } finally {
        await Deno.remove(elsewhere, { recursive: true });
      }
      // a noise pass finishing a cut one on other clean bytes (another --max-bytes) scores every setting
      // again, so a model's column holds one clean text
      const other = await Deno.makeTempDir({ prefix: "stages-cut2-" });
      try {
        for (const r of no.slice(0, 4)) {
          await appendRecord("noise", r as unknown as Record<string, unknown>, other);
        }
        const again = await noiseStage(runs, { ...opts, resultsDir: other, maxBytes: 500 });
        assert.equal(again.length, 1 + NOISE_SETTINGS.length);
        assert.ok(again.every((r) => r.words === again[0].words && r.words !== no[0].words));
      } finally {
        await Deno.remove(other, { recursive: true });
      }
      assert.equal(
        (await noiseStage(runs, { ...opts, resultsDir: cut, maxBytes: 500, force: false })).length,
        0,
        "a complete model is not evaluated again",
      );
    } finally {
      await Deno.remove(cut, { recursive: true });
    }
    const written = (await Deno.readTextFile(`${results}/extrapolation.jsonl`)).trim().split("\n").map((l) =>
      JSON.parse(l)
    );
    assert.equal(written.length, 3);
    assert.ok(
      written.every((r) => r.provenance?.commit && r.run_time === "t0"),
      "records carry provenance and the run's time",
    );
    // a second pass finds them and evaluates nothing; a re-trained run (new time) is evaluated again; a pass
    // asking for more lengths evaluates those only
    assert.equal((await extrapolationStage(runs, { ...opts, settings: exSettings })).length, 0);
    const more = await extrapolationStage(runs, {
      ...opts,
      settings: { ...exSettings, multiples: [1, 2, 4, 8] },
    });
    assert.deepEqual(more.map((r) => r.multiple), [8]);
    assert.equal((await noiseStage(runs, { ...opts, maxBytes: 600 })).length, 0);
    assert.ok(written.every((r) => r.weights === undefined), "the run's own float32 model");
    const retrained = [{ ...run, provenance: { time: "t1" } }];
    assert.equal(
      (await extrapolationStage(retrained, { ...opts, settings: { maxTokens: 1024, multiples: [1] } }))
        .length,
      1,
    );
    // a float16 copy in the run's place (a device's run brought back by export --format f16) is evaluated
    // as such, and its records say so
    const dir = `${runsDir}/${run.run}/model`;
    await Deno.rename(dir, `${dir}.f32`);
    await writeHalfModel(`${dir}.f32`, dir);
    // (the same run and run time as the float32 records: the copy's records are its own)
    const half = await noiseStage(runs, { ...opts, maxBytes: 600 });
    assert.equal(half.length, 1 + NOISE_SETTINGS.length);
    assert.ok(half.every((r) => r.weights === "float16 copy"), "float16 copy recorded");
    // and the tables built from the records say which models were copies: the noise table (its latest
    // records are the copy's), not the extrapolation table (float32 records only)
    const note = async (name: string) => {
      const built = await buildFigure(name, { resultsDir: results, scale: "smoke" });
      assert.ok(built && "table" in built, `${name}: a table`);
      return built.table.note ?? "";
    };
    assert.match(await note("noise"), /Evaluated from float16 copies of the trained weights .*: MB-test\./);
    assert.doesNotMatch(await note("extrapolation"), /float16/);
  } finally {
    await Deno.remove(results, { recursive: true });
    await Deno.remove(runsDir, { recursive: true });
  }
});

/** A smoke run on books with a validation curve of 2 points over the validation split's first 300 bytes. */
const curveSpec = (name: string, model: string, config: Record<string, number>, steps: number) => ({
  name,
  model,
  config,
  domain: "books" as const,
  scale: "smoke",
  train: { batch: 2, length: 32, lr: 3e-3, warmup: 1, seed: 0, steps },
  eval: { maxBytes: 256, valPoints: 2, valBytes: 300 },
});

Deno.test("a run's validation curve: held-out bits per byte at every steps/curve steps and the last, on the validation split's first bytes", async () => {
  await useBackend("wasm");
  const results = await Deno.makeTempDir({ prefix: "eval-test-results-" });
  const runsDir = await Deno.makeTempDir({ prefix: "eval-test-runs-" });
  try {
    const spec = curveSpec("t/smoke/books/mambabyte_curve", "mambabyte", { d_model: 16, n_layer: 1 }, 5);
    const run = await runExperiment(spec, { resultsDir: results, runsDir, quiet: true });
    const flopsPerStep = run.train_flops / 5;
    // every ceil(5 / 2) = 3 steps, and the last
    assert.deepEqual(run.val_curve!.map(([s, f]) => [s, f]), [[3, 3 * flopsPerStep], [5, 5 * flopsPerStep]]);
    assert.equal(run.val_curve_bytes, 300);
    // the last point is the trained model's score of the validation split's first 300 bytes, scored as the
    // run scores (windows of the training length, the run's evaluation batch; a subword model through its
    // tokenizer)
    const validation = (await readSplit("data/samples/books/validation")).subarray(0, 300);
    const savedScore = async (r: { run: string; eval: { batch?: number } }) => {
      const { model, tokenizer } = await loadTrained(`${runsDir}/${r.run}/model`);
      try {
        return (await scoreText(model, validation, { window: 32, batch: r.eval.batch, tokenizer }))
          .bits_per_byte;
      } finally {
        disposeModel(model);
      }
    };
    const bpb = await savedScore(run);
    assert.ok(Math.abs(run.val_curve![1][2] - bpb) < 1e-6, `${run.val_curve![1][2]} against ${bpb}`);
    assert.notEqual(run.val_curve![0][2], run.val_curve![1][2], "two states of the model");
    // a run stopped at its last step (before that step's checkpoint: the last one is step 4's) and resumed
    // records the same curve, its step-3 point read back from the run's log
    const stopped = {
      ...spec,
      name: "t/smoke/books/mambabyte_curve_resumed",
      train: { ...spec.train, checkpointEvery: 2 },
    };
    await assert.rejects(() =>
      runExperiment(stopped, {
        resultsDir: results,
        runsDir,
        quiet: true,
        onStep: (e) => {
          if (e.step === 5) throw new Error("stop here");
        },
      }), /stop here/);
    const resumed = await runExperiment(stopped, { resultsDir: results, runsDir, quiet: true });
    assert.equal(resumed.val_curve!.length, 2);
    for (const [i, p] of resumed.val_curve!.entries()) {
      assert.deepEqual(p.slice(0, 2), run.val_curve![i].slice(0, 2));
      assert.ok(
        Math.abs(p[2] - run.val_curve![i][2]) < 1e-6,
        `point ${i}: ${p[2]} against ${run.val_curve![i][2]}`,
      );
    }
    // a subword model: its points score the same bytes through its tokenizer, its FLOPs count tokens
    const sub = await runExperiment({
      ...spec,
      name: "t/smoke/books/mamba_subword_curve",
      model: "mamba_subword",
      vocab: 300,
    }, { resultsDir: results, runsDir, quiet: true });
    assert.equal(sub.val_curve!.at(-1)![1], sub.train_flops);
    const subBpb = await savedScore(sub);
    assert.ok(
      Math.abs(sub.val_curve!.at(-1)![2] - subBpb) < 1e-6,
      `${sub.val_curve!.at(-1)![2]} against ${subBpb}`,
    );
    // a run scored on the validation split (a sweep's) takes no curve
    const sweep = await runExperiment(
      {
        ...spec,
        name: "t/smoke/books/sweep/mambabyte_curve",
        eval: { ...spec.eval, split: "validation" as const },
      },
      { resultsDir: results, runsDir, quiet: true },
    );
    assert.equal(sweep.val_curve, undefined);
  } finally {
    await Deno.remove(results, { recursive: true });
    await Deno.remove(runsDir, { recursive: true });
  }
});

Deno.test("an attention model trained on the native engine is scored on it: its test score and validation curve are TF.js's scores of the saved model, and the record says which scored", async () => {
  await useBackend("wasm");
  const results = await Deno.makeTempDir({ prefix: "eval-test-results-" });
  const runsDir = await Deno.makeTempDir({ prefix: "eval-test-runs-" });
  try {
    const spec = curveSpec("t/smoke/books/transformer_engine_scored", "transformer", {
      d_model: 32,
      n_layer: 1,
    }, 4);
    const native = await runExperiment(spec, { resultsDir: results, runsDir, quiet: true, engine: "native" });
    // scored on the backend and device that trained it: "native (wasm: X)" -> "native engine (wasm: X)"
    assert.match(native.engine ?? "", /^native \(wasm: /);
    assert.equal(native.eval.scored_by, native.engine!.replace(/^native \(/, "native engine ("));
    // TF.js's forward pass over the saved model (an independent implementation of the scoring)
    const tfjsScore = async (text: Uint8Array) => {
      const { model } = await loadTrained(`${runsDir}/${native.run}/model`);
      try {
        return (await scoreText(model, text, { window: 32, batch: native.eval.batch })).bits_per_byte;
      } finally {
        disposeModel(model);
      }
    };
    const test = (await readSplit("data/samples/books/test")).subarray(0, 256);
    const want = await tfjsScore(test);
    assert.ok(
      Math.abs(native.eval.bits_per_byte - want) < 1e-5 * want,
      `${native.eval.bits_per_byte} against ${want}`,
    );
    const validation = (await readSplit("data/samples/books/validation")).subarray(0, 300);
    const last = native.val_curve!.at(-1)![2], wantLast = await tfjsScore(validation);
    assert.ok(Math.abs(last - wantLast) < 1e-5 * wantLast, `${last} against ${wantLast}`);
    // trained on TF.js, scored by it
    const tfjs = await runExperiment({ ...spec, name: "t/smoke/books/transformer_tfjs_scored" }, {
      resultsDir: results,
      runsDir,
      quiet: true,
      engine: "tfjs",
    });
    assert.equal(tfjs.eval.scored_by, "TF.js (wasm)");
  } finally {
    await Deno.remove(results, { recursive: true });
    await Deno.remove(runsDir, { recursive: true });
  }
});

Deno.test("stages: a run whose model is not here gives way to another seed of its entry whose model is", async () => {
  await useBackend("wasm");
  const results = await Deno.makeTempDir({ prefix: "eval-test-results-" });
  const runsDir = await Deno.makeTempDir({ prefix: "eval-test-runs-" });
  try {
    const train = async (seed: number) => {
      const name = `t/smoke/books/mambabyte${seed ? `_seed${seed}` : ""}`;
      const run = await runExperiment({
        name,
        model: "mambabyte",
        config: { d_model: 16, n_layer: 1 },
        domain: "books",
        scale: "smoke",
        train: { batch: 2, length: 32, lr: 1e-3, warmup: 1, seed, steps: 2 },
        eval: { maxBytes: 256 },
        labels: { label: "MB-seeds", entry: "mambabyte", budget_ratio: 1, ...(seed ? { seed } : {}) },
      }, { resultsDir: results, runsDir, quiet: true });
      return { ...run, provenance: { time: `t${seed}` } };
    };
    const runs = [await train(0), await train(1), await train(2)];
    const opts = { scale: "smoke", resultsDir: results, runsDir, quiet: true };
    const settings = { maxTokens: 256, multiples: [1] };
    // seed 0's model went with its machine; seed 1's did too; seed 2's is here: it stands in
    await Deno.remove(`${runsDir}/${runs[0].run}/model`, { recursive: true });
    await Deno.remove(`${runsDir}/${runs[1].run}/model`, { recursive: true });
    const ex = await extrapolationStage(runs, { ...opts, settings });
    assert.deepEqual(ex.map((r) => [r.run, r.label]), [["t/smoke/books/mambabyte_seed2", "MB-seeds"]]);
    // seed 2 evaluated before keeps standing in when seed 1's model comes back (one seed per entry in a
    // table): a pass asking for one more length scores seed 2 again
    await Deno.mkdir(`${runsDir}/${runs[1].run}/model`);
    for (const f of ["config.json", "model.safetensors"]) {
      await Deno.copyFile(`${runsDir}/${runs[2].run}/model/${f}`, `${runsDir}/${runs[1].run}/model/${f}`);
    }
    const again = await extrapolationStage(runs, {
      ...opts,
      settings: { maxTokens: 256, multiples: [1, 2] },
    });
    assert.deepEqual(again.map((r) => [r.run, r.multiple]), [["t/smoke/books/mambabyte_seed2", 2]]);
    // with no records, the lowest seed with a model comes first (seeds 1 and 2 both have one); and a seed-0
    // run that has records of its own keeps them (left as they are, as for any run whose model is elsewhere)
    const other = await Deno.makeTempDir({ prefix: "stages-seeds-" });
    try {
      const ex1 = await extrapolationStage(runs, { ...opts, resultsDir: other, settings });
      assert.deepEqual(ex1.map((r) => r.run), ["t/smoke/books/mambabyte_seed1"]);
      await appendRecord("extrapolation", { ...ex1[0], run: runs[0].run, run_time: "t0" }, other);
      const more = await extrapolationStage(runs, {
        ...opts,
        resultsDir: other,
        settings: { maxTokens: 256, multiples: [1, 2] },
      });
      assert.deepEqual(more, [], "seed 0's records stay; no stand-in added beside them");
      // no model of any seed here and no records: not evaluated, and no error (the other runs go on)
      await Deno.remove(`${runsDir}/${runs[1].run}/model`, { recursive: true });
      await Deno.remove(`${runsDir}/${runs[2].run}/model`, { recursive: true });
      // --force with no model here: seed 0's records are still reported as kept (not "not evaluated")
      const said: string[] = [], original = console.error;
      console.error = (...a: unknown[]) => said.push(a.map(String).join(" "));
      try {
        await extrapolationStage(runs, { ...opts, quiet: false, resultsDir: other, settings, force: true });
      } finally {
        console.error = original;
      }
      assert.ok(
        said.some((l) => /mambabyte has 1 records and its model is not in .*: left as they are$/.test(l)),
        said.join("\n"),
      );
      const none = await Deno.makeTempDir({ prefix: "stages-none-" });
      try {
        assert.deepEqual(await extrapolationStage(runs, { ...opts, resultsDir: none, settings }), []);
      } finally {
        await Deno.remove(none, { recursive: true });
      }
    } finally {
      await Deno.remove(other, { recursive: true });
    }
  } finally {
    await Deno.remove(results, { recursive: true });
    await Deno.remove(runsDir, { recursive: true });
  }
});

Deno.test("stages: the byte Transformer's extrapolation on the engine reads past TF.js's cap, equal where both read", async () => {
  await useBackend("wasm");
  const results = await Deno.makeTempDir({ prefix: "eval-test-results-" });
  const runsDir = await Deno.makeTempDir({ prefix: "eval-test-runs-" });
  try {
    const run = await runExperiment({
      name: "t/smoke/books/transformer",
      model: "transformer",
      config: { d_model: 32, n_layer: 1 },
      domain: "books",
      scale: "smoke",
      train: { batch: 2, length: 32, lr: 1e-3, warmup: 1, seed: 0, steps: 2 },
      eval: { maxBytes: 512 },
    }, { resultsDir: results, runsDir, quiet: true });
    const runs = [{ ...run, provenance: { time: "t0" } }];
    const settings = {
      maxTokens: 512,
      multiples: [1, 2, 4],
      modes: ["whole" as const],
      maxAttentionLength: 64,
    };
    const opts = { scale: "smoke", resultsDir: results, runsDir, quiet: true, settings };
    const tfjs = await extrapolationStage(runs, { ...opts, engine: "tfjs" });
    const engine = await extrapolationStage(runs, { ...opts, engine: "native", force: true });
    assert.deepEqual(tfjs.map((r) => r.status), ["ok", "ok", "skipped"], "TF.js stops at maxAttentionLength");
    assert.deepEqual(engine.map((r) => r.status), ["ok", "ok", "ok"], "the engine reads 4x too");
    assert.ok(
      engine.every((r) => String(r.scored_by).startsWith("native engine")),
      "records name the scorer",
    );
    for (const i of [0, 1]) {
      const [a, b] = [tfjs[i].bits_per_byte, engine[i].bits_per_byte];
      assert.ok(Math.abs(a - b) < 1e-5 * a, `${tfjs[i].multiple}x: ${a} (TF.js) vs ${b} (engine)`);
    }
  } finally {
    await Deno.remove(results, { recursive: true });
    await Deno.remove(runsDir, { recursive: true });
  }
});

Deno.test("PositionLoss: log-spaced bins, every byte in one bin", () => {
  const pos = new PositionLoss(2);
  for (let p = 1; p <= 100; p++) pos.add(p, 0.5, 1);
  const bins = pos.result();
  assert.equal(bins.reduce((s, b) => s + b.bytes, 0), 100);
  for (let i = 1; i < bins.length; i++) {
    assert.equal(bins[i].lo, bins[i - 1].hi + 1, "bins tile the positions");
  }
  assert.deepEqual(bins.slice(0, 4).map((b) => [b.lo, b.hi]), [[1, 1], [2, 2], [3, 3], [4, 5]]);
  assert.ok(bins.every((b) => Math.abs(b.bits_per_byte - 0.5 / Math.LN2) < 1e-12));
});

Deno.test("figures: the registry builds from a records folder and `figures` exports SVG, PNG and markdown", async () => {
  await useBackend("wasm");
  const results = await Deno.makeTempDir({ prefix: "eval-test-results-" });
  const out = await Deno.makeTempDir({ prefix: "eval-test-figures-" });
  try {
    // nothing recorded: every builder says so, nothing is written
    const empty = await exportFigures({ resultsDir: results, outDir: out, quiet: true, anchorsDir: results });
    assert.equal(empty.written.length, 0);
    assert.equal(empty.skipped.length, figureBuilders().length);
    // small real records from a tiny model
    const mamba = tinyMamba(6);
    const text = SAMPLE.subarray(0, 1100);
    const about = {
      scale: "smoke",
      model_dir: "tiny",
      label: "tiny-MambaByte",
      domain: "books",
      data: "sample",
    };
    for (
      const r of await extrapolationRecords(
        mamba,
        text,
        { trainedContext: 16, multiples: [1, 2, 4, 8] },
        about,
      )
    ) {
      await appendRecord("extrapolation", r as unknown as Record<string, unknown>, results);
    }
    for (
      const r of await evaluateNoise(mamba, text.subarray(0, 600), {
        window: 128,
        settings: NOISE_SETTINGS.slice(0, 3),
      })
    ) {
      await appendRecord("noise", {
        ...r,
        ...about,
        experiment: "noise",
        model_kind: "mambabyte",
        unit: "byte",
      }, results);
    }
    disposeModel(mamba);
    const built = await buildFigure("extrapolation_length", { resultsDir: results });
    assert.ok(built && "figure" in built);
    assert.equal((built.figure.data[0] as { x: number[] }).x.length, 4, "one point per evaluated length");
    assert.equal(
      await buildFigure("extrapolation_length", { resultsDir: results, scale: "gpu" }),
      undefined,
      "no gpu records",
    );
    const report = await exportFigures({
      resultsDir: results,
      outDir: out,
      only: ["extrapolation_length", "extrapolation", "noise"],
      quiet: true,
    });
    assert.deepEqual(report.written.map((w) => w.name), ["extrapolation_length", "extrapolation", "noise"]);
    const png = await Deno.readFile(`${out}/extrapolation_length.png`);
    assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47], "a PNG");
    assert.match(
      await Deno.readTextFile(`${out}/extrapolation_length.svg`),
      /^<svg[\s\S]*tiny-MambaByte[\s\S]*<\/svg>\s*$/,
    );
    const table = await Deno.readTextFile(`${out}/extrapolation.md`);
    assert.match(
      table,
      /\| tiny-MambaByte \| whole sequence \| 16 \| \d\.\d{3} \| \d\.\d{3} \| \d\.\d{3} \| \d\.\d{3} \|/,
    );
    const noise = await Deno.readTextFile(`${out}/noise.md`);
    assert.match(noise, /\| drop p=0\.05 \| .* \| \+16\.9 \| \+8\.5 \|/, "the paper's values beside ours");
  } finally {
    await Deno.remove(results, { recursive: true });
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("scoreText per document: each document's bytes and nats are its tokens', scored one window at a time by hand", async () => {
  await useBackend("wasm");
  // three documents: pieces of the books sample
  const docs = [[0, 150], [5000, 5091], [9000, 9203]].map(([a, b]) => SAMPLE.subarray(a, b));
  const text = joinDocuments(docs);
  const spans = documentSpans(docs.map((d) => d.length));
  const bpe = trainBpe(SAMPLE.subarray(0, 20000), { vocabSize: 300 });
  const cases: [string, LanguageModel, ScoreOptions][] = [
    ["mambabyte", tinyMamba(), { window: 64, batch: 3 }],
    ["mambabyte, CPU stepper", tinyMamba(), { window: 64, batch: 3, weights: "f32" }],
    ["transformer", createModel("transformer", { d_model: 16, n_layer: 1, n_head: 2 }, 0), { window: 50 }],
    [
      "mamba_subword",
      createModel("mamba_subword", { d_model: 16, n_layer: 1, vocab_size: bpe.vocabSize }, 0),
      { window: 40, batch: 2, tokenizer: bpe },
    ],
  ];
  for (const [name, model, opts] of cases) {
    const whole = await scoreText(model, text, opts);
    const parts = await scoreText(model, text, { ...opts, documents: spans });
    assert.equal(parts.nats, whole.nats, `${name}: the score is the same with parts`);
    // by hand: every window alone, each predicted token's first byte placed in the document spans
    const ids = opts.tokenizer ? opts.tokenizer.encode(text) : Int32Array.from(text);
    const starts = [0];
    for (const id of ids) {
      starts.push(starts.at(-1)! + (opts.tokenizer ? opts.tokenizer.tokenBytes(id).length : 1));
    }
    const ends = spans.map((_, i) => spans.slice(0, i + 1).reduce((s, n) => s + n, 0));
    const want = spans.map(() => ({ bytes: 0, nats: 0 }));
    const w = opts.window!;
    for (let k0 = 0; k0 < ids.length - 1; k0 += w) {
      const win = ids.subarray(k0, Math.min(ids.length, k0 + w + 1));
      const t = tokenNats(model, [win]);
      const nats = await t.data();
      t.dispose();
      nats.forEach((x, j) => {
        const k = k0 + j + 1, d = ends.findIndex((e) => starts[k] < e);
        want[d].bytes += starts[k + 1] - starts[k];
        want[d].nats += x;
      });
    }
    assert.equal(parts.documents!.length, 3);
    assert.deepEqual(parts.documents!.map((d) => d.bytes), want.map((d) => d.bytes), name);
    assert.equal(want.reduce((s, d) => s + d.bytes, 0), whole.bytes);
    parts.documents!.forEach((d, i) =>
      assert.ok(
        Math.abs(d.nats - want[i].nats) < 1e-4 * want[i].nats,
        `${name} document ${i}: ${d.nats} vs ${want[i].nats}`,
      )
    );
    disposeModel(model);
  }
  const m = tinyMamba();
  await assert.rejects(
    scoreText(m, text, { documents: [10, 20] }),
    /documents must be byte lengths summing to/,
  );
  disposeModel(m);
});
