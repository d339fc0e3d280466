/**
 * `export --format f16` (lib/models/half_precision.ts): the trained reference MambaByte (mamba_ssm's
 * checkpoint, tests/fixtures/reference) copied with float16 weights. Each stored value is the source weight
 * rounded as JavaScript's own Float16Array rounds it (V8's conversion: an implementation independent of
 * lib/io/half.ts); the copy loads, and scores a text within the rounding's effect of the float32 model;
 * a subword model keeps its tokenizer; bad input is one line, exit 2, and nothing written or replaced.
 */
import assert from "node:assert/strict";
import { main } from "../lib/cli.ts";
import { readSafetensors, toFloat32, writeSafetensors } from "../lib/io/safetensors.ts";
import { loadModel, saveModel } from "../lib/models/registry.ts";
import { createModel } from "../lib/models/mod.ts";
import { disposeModel } from "../lib/models/lm.ts";
import { scoreText } from "../lib/eval/score.ts";
import { trainBpe } from "../lib/data/bpe.ts";
import { readSplit } from "../lib/data/bytes.ts";
import { findTrainedModel, findTrainedPair } from "../lib/models/trained.ts";
import { writeHalfModel } from "../lib/models/half_precision.ts";
import { runCli, trainedModelDir, useBackend } from "./helpers.ts";

const SAMPLE = await readSplit(new URL("../data/samples/books/test", import.meta.url).pathname);

Deno.test("export --format f16: every weight rounded as Float16Array rounds it; the copy loads and scores as the model", async () => {
  await useBackend("wasm");
  const { dir } = await trainedModelDir();
  const out = `${dir}-f16`;
  try {
    assert.equal(await main(["export", "--model", dir, "--format", "f16", "--out", out]), 0);
    const src = await readSafetensors(`${dir}/model.safetensors`);
    const half = await readSafetensors(`${out}/model.safetensors`);
    // mamba_ssm's checkpoint stores the tied head beside the embedding; the copy stores it once (below)
    assert.ok(src.tensors.has("lm_head.weight"));
    assert.deepEqual([...half.tensors.keys()], [...src.tensors.keys()].filter((k) => k !== "lm_head.weight"));
    for (const [name, t] of src.tensors) {
      if (name === "lm_head.weight") continue;
      const h = half.tensors.get(name)!;
      assert.equal(h.dtype, "F16", name);
      assert.deepEqual(h.shape, t.shape);
      const want = Float32Array.from(Float16Array.from(toFloat32(t)));
      assert.deepEqual(toFloat32(h), want, `${name}: the nearest float16 of each weight`);
    }
    const bytes = (f: string) => Deno.statSync(f).size;
    assert.ok(bytes(`${out}/model.safetensors`) < 0.55 * bytes(`${dir}/model.safetensors`));
    assert.equal(
      await Deno.readTextFile(`${out}/config.json`),
      await Deno.readTextFile(`${dir}/config.json`),
    );
    // the copy scores like the float32 model: rounding each weight by at most 2^-11 of it moves the loss
    // by a few thousandths of a bit at most
    const text = SAMPLE.subarray(0, 4096);
    const [a, b] = [await loadModel(dir), await loadModel(out)];
    const [sa, sb] = [await scoreText(a, text, { window: 1024 }), await scoreText(b, text, { window: 1024 })];
    assert.ok(
      Math.abs(sa.bits_per_byte - sb.bits_per_byte) < 5e-3,
      `${sa.bits_per_byte} vs ${sb.bits_per_byte}`,
    );
    assert.notEqual(sa.bits_per_byte, sb.bits_per_byte, "the copy's weights are not the float32 ones");
    disposeModel(a);
    disposeModel(b);
    // exporting again replaces the earlier copy
    assert.equal(await main(["export", "--model", dir, "--format", "f16", "--out", out]), 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(out, { recursive: true }).catch(() => {});
  }
});

Deno.test("export --format f16: a tied head's second copy is left out; a head that differs is kept", async () => {
  await useBackend("wasm");
  const { dir } = await trainedModelDir();
  const [withHead, changed] = [`${dir}-head`, `${dir}-changed`];
  try {
    const src = await readSafetensors(`${dir}/model.safetensors`);
    const emb = src.tensors.get("backbone.embedding.weight")!;
    // the same model stored three ways: the head once (the embedding alone), beside the embedding as
    // mamba_ssm's state_dict and the lab's saveMambaLM store it, and a head that differs in one weight
    const config = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
    const save = async (out: string, head?: Float32Array, tied = true) => {
      await Deno.mkdir(out, { recursive: true });
      await Deno.writeTextFile(`${out}/config.json`, JSON.stringify({ ...config, tie_embeddings: tied }));
      const tensors = new Map([...src.tensors].filter(([k]) => k !== "lm_head.weight"));
      if (head) tensors.set("lm_head.weight", { dtype: "F32", shape: emb.shape, data: head });
      await writeSafetensors(`${out}/model.safetensors`, tensors);
    };
    const once = `${dir}-once`;
    await save(once);
    await save(withHead, Float32Array.from(toFloat32(emb)));
    const moved = Float32Array.from(toFloat32(emb));
    moved[101 * emb.shape[1] + 3] += 0.25; // the row of "e", which the text holds
    await save(changed, moved);
    // an untied config whose head happens to equal the embedding: the head is a parameter of its own
    const untied = `${dir}-untied`;
    await save(untied, Float32Array.from(toFloat32(emb)), false);
    const untiedCopy = await writeHalfModel(untied, `${untied}-f16`);
    assert.deepEqual(untiedCopy.dropped, []);
    const u = await loadModel(`${untied}-f16`);
    disposeModel(u);
    const copies = [`${once}-f16`, `${withHead}-f16`, `${changed}-f16`];
    const summaries = [];
    for (const [i, from] of [once, withHead, changed].entries()) {
      summaries.push(await writeHalfModel(from, copies[i]));
    }
    assert.deepEqual(summaries.map((s) => s.dropped), [[], ["lm_head.weight"], []]);
    const [plain, dropped, kept] = await Promise.all(
      copies.map((c) => readSafetensors(`${c}/model.safetensors`)),
    );
    assert.deepEqual([...dropped.tensors.keys()], [...plain.tensors.keys()], "the duplicate is not stored");
    assert.equal(
      Deno.statSync(`${copies[1]}/model.safetensors`).size,
      Deno.statSync(`${copies[0]}/model.safetensors`).size,
    );
    assert.deepEqual(
      toFloat32(kept.tensors.get("lm_head.weight")!),
      Float32Array.from(Float16Array.from(moved)),
    );
    // the copy without the duplicate loads as the same model; the one whose head differs scores otherwise
    const text = SAMPLE.subarray(0, 2048);
    const scores = [];
    for (const c of copies) {
      const m = await loadModel(c);
      scores.push((await scoreText(m, text, { window: 1024 })).bits_per_byte);
      disposeModel(m);
    }
    assert.equal(scores[1], scores[0]);
    assert.notEqual(scores[2], scores[0]);
  } finally {
    for (const d of [dir, `${dir}-once`, withHead, changed, `${dir}-untied`]) {
      for (const x of [d, `${d}-f16`]) await Deno.remove(x, { recursive: true }).catch(() => {});
    }
  }
});

Deno.test("export --format f16: a subword model keeps its tokenizer; bad input is one line and writes nothing", async () => {
  await useBackend("wasm");
  const tmp = await Deno.makeTempDir({ prefix: "half-" });
  try {
    const bpe = trainBpe(SAMPLE.subarray(0, 20000), { vocabSize: 300 });
    const m = createModel("mamba_subword", { d_model: 16, n_layer: 1, vocab_size: bpe.vocabSize }, 0);
    await saveModel(m, `${tmp}/sub`);
    await Deno.writeTextFile(`${tmp}/sub/tokenizer.json`, JSON.stringify(bpe.toJSON()) + "\n");
    disposeModel(m);
    assert.equal(
      await main(["export", "--model", `${tmp}/sub`, "--format", "f16", "--out", `${tmp}/sub16`]),
      0,
    );
    const loaded = await loadModel(`${tmp}/sub16`);
    assert.equal(loaded.tokenizer?.vocabSize, bpe.vocabSize);
    disposeModel(loaded);

    // an existing folder that is not an earlier copy is never replaced
    await Deno.mkdir(`${tmp}/mine`);
    await Deno.writeTextFile(`${tmp}/mine/notes.txt`, "keep me");
    let r = await runCli("export", "--model", `${tmp}/sub`, "--format", "f16", "--out", `${tmp}/mine`);
    assert.equal(r.code, 2);
    assert.match(r.stderr.trim(), /^error: .*mine exists and is not a float16 copy written by this command/);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.equal(await Deno.readTextFile(`${tmp}/mine/notes.txt`), "keep me");

    // a weight beyond float16's range: refused, naming the tensor, and no folder left behind
    const big = await readSafetensors(`${tmp}/sub/model.safetensors`);
    const [name, t] = [...big.tensors].find(([, t]) => t.dtype === "F32")!;
    (t.data as Float32Array)[0] = 1e6;
    await writeSafetensors(`${tmp}/sub/model.safetensors`, big.tensors, big.metadata);
    r = await runCli("export", "--model", `${tmp}/sub`, "--format", "f16", "--out", `${tmp}/big16`);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      new RegExp(`tensor "${name.replace(/\./g, "\\.")}" holds 1000000, beyond float16's range`),
    );
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.deepEqual((await Array.fromAsync(Deno.readDir(tmp))).map((e) => e.name).sort(), [
      "mine",
      "sub",
      "sub16",
    ]);

    // no model there; an unknown format
    r = await runCli("export", "--model", `${tmp}/none`, "--format", "f16", "--out", `${tmp}/x`);
    assert.equal(r.code, 2);
    assert.match(r.stderr.trim(), /^error: .*none\/config\.json does not exist/);
    r = await runCli("export", "--model", `${tmp}/sub`, "--format", "f8", "--out", `${tmp}/x`);
    assert.match(r.stderr, /--format must be gguf or f16, got "f8"/);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("findTrainedModel: the largest scale first, a committed copy before a local run, entries in order", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "trained-" });
  const o = { modelsDir: `${tmp}/models`, runs: `${tmp}/runs` };
  const put = (dir: string) =>
    Deno.mkdir(dir, { recursive: true }).then(() => Deno.writeTextFile(`${dir}/config.json`, "{}"));
  try {
    assert.equal(await findTrainedModel("mambabyte", o), undefined);
    await put(`${tmp}/runs/compute-matched/small/books/mambabyte/model`);
    assert.equal((await findTrainedModel("mambabyte", o))?.scale, "small");
    await put(`${tmp}/runs/compute-matched/large/books/mambabyte/model`);
    assert.equal((await findTrainedModel("mambabyte", o))?.source, "local run");
    await put(`${tmp}/models/large/books/mambabyte`);
    const found = (await findTrainedModel("mambabyte", o))!;
    assert.deepEqual([found.scale, found.source, found.dir], [
      "large",
      "committed, float16",
      `${tmp}/models/large/books/mambabyte`,
    ]);
    // several entries: each scale tries them in order before the next scale
    await put(`${tmp}/runs/compute-matched/small/books/mamba_subword/model`);
    await put(`${tmp}/models/large/books/mamba_subword_equal_bytes`);
    const drafter = await findTrainedModel(["mamba_subword_equal_bytes", "mamba_subword"], o);
    assert.equal(drafter?.dir, `${tmp}/models/large/books/mamba_subword_equal_bytes`);
    assert.equal(await findTrainedModel(["mamba_subword"], { ...o, scales: ["large"] }), undefined);
    assert.equal(await findTrainedModel("mambabyte", { ...o, domain: "code" }), undefined);
    // a pair: the largest scale holding both (large has no compute-matched subword Mamba, small does)
    const pair = await findTrainedPair("mambabyte", ["mamba_subword"], o);
    assert.deepEqual(pair?.map((p) => [p.scale, p.source]), [["small", "local run"], ["small", "local run"]]);
    assert.equal((await findTrainedPair("mambabyte", ["mamba_subword_equal_bytes"], o))?.[0].scale, "large");
    assert.equal(await findTrainedPair("mambabyte", ["transformer"], o), undefined);
    // another seed of an entry serves where seed 0 is absent, named as what it is; seed 0 first
    await put(`${tmp}/models/large/books/transformer_seed2`);
    assert.equal(
      (await findTrainedModel("transformer", o))?.dir,
      `${tmp}/models/large/books/transformer_seed2`,
    );
    assert.match((await findTrainedModel("transformer", o))!.label, /^transformer_seed2, large scale/);
    await put(`${tmp}/models/large/books/transformer_seed1`);
    assert.equal(
      (await findTrainedModel("transformer", o))?.dir,
      `${tmp}/models/large/books/transformer_seed1`,
    );
    await put(`${tmp}/runs/compute-matched/large/books/transformer/model`);
    assert.equal((await findTrainedModel("transformer", o))?.source, "local run");
    assert.equal(await findTrainedModel("transformer_seed", o), undefined);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
