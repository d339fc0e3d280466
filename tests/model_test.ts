/**
 * MambaLM against mamba_ssm's tiny reference checkpoint: logits, loss, every parameter gradient, greedy
 * decoding with the recurrent state, checkpoints, and tensor hygiene during training.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { parseMambaConfig } from "../lib/models/mamba_config.ts";
import { readSafetensors } from "../lib/io/safetensors.ts";
import { disposeMambaLM, disposeState, forward, type MambaLM, prefill, step } from "../lib/models/mamba.ts";
import { initMambaLM, loadPretrained, mambaByteConfig, saveMambaLM } from "../lib/models/pretrained.ts";
import { availableScanImpls } from "../lib/ssm/mod.ts";
import { train } from "../lib/train/trainer.ts";
import { mambaAsLanguageModel } from "../lib/models/registry.ts";
import { FIXTURES, loadFixture, relL2, relL2T, TEST_BACKENDS, tinyModelDir, useBackend } from "./helpers.ts";
import { withScanImpl } from "../lib/models/registry.ts";
import { nextTokenLoss, readParameters } from "../lib/models/lm.ts";

const reference = JSON.parse(await Deno.readTextFile(FIXTURES + "mambabyte-tiny-public.json"));

const expected = await readSafetensors(FIXTURES + "mambabyte-tiny-public.expected.safetensors");
const inputIds = expected.tensors.get("input_ids")!.data as Int32Array; // (1, 249)

for (const backend of TEST_BACKENDS) {
  Deno.test(`tiny MambaByte on ${backend}: logits, loss and every parameter gradient match mamba_ssm`, async () => {
    await useBackend(backend);
    const dir = await tinyModelDir();
    const model = await loadPretrained(dir);
    const exp = await loadFixture("mambabyte-tiny-public.expected.safetensors");
    const ids = exp.get("input_ids")!;
    // every scan implementation on the fast backends; the default one on the slow software GPU
    const impls = backend === "webgpu" ? [undefined] : availableScanImpls();
    for (const impl of impls) {
      const what = `${backend}/${impl ?? "default"}`;
      const { logits } = forward(model, ids, { impl });
      const errLogits = await relL2T(logits, exp.get("logits")!);
      assert.ok(errLogits < 1e-4, `${what}: logits rel err ${errLogits}`);
      const names = [...model.params.keys()];
      const vars = names.map((n) => model.params.get(n)!);
      const { value, grads } = tf.variableGrads(() => nextTokenLoss(withScanImpl(model, impl), ids), vars);
      const loss = (await value.data())[0];
      assert.ok(
        Math.abs(loss - reference.loss_next_byte_ce_nats) / reference.loss_next_byte_ce_nats < 1e-5,
        `${what}: loss ${loss} vs ${reference.loss_next_byte_ce_nats}`,
      );
      for (const [i, name] of names.entries()) {
        const err = await relL2T(grads[vars[i].name], exp.get(`grad.${name}`)!);
        assert.ok(err < 1e-3, `${what}: grad of ${name} rel err ${err}`);
      }
      tf.dispose([logits, value, ...Object.values(grads)]);
    }
    tf.dispose([...exp.values()]);
    disposeMambaLM(model);
    await Deno.remove(dir, { recursive: true });
  });

  Deno.test(`tiny MambaByte on ${backend}: prefill + recurrent steps give the full forward's logits`, async () => {
    await useBackend(backend);
    const dir = await tinyModelDir();
    const model = await loadPretrained(dir);
    const n = 57, split = 3; // a prompt shorter than d_conv, then steps
    const ids = tf.tensor(inputIds.slice(0, n), [1, n], "int32");
    const full = forward(model, ids).logits; // (1, n, V)
    const pre = prefill(model, tf.slice(ids, [0, 0], [1, split]));
    const parts = [pre.logits];
    let state = pre.state;
    for (let t = split; t < n; t++) {
      const r = step(model, tf.tensor([inputIds[t]], [1], "int32"), state);
      disposeState(state);
      state = r.state;
      parts.push(r.logits.expandDims(1));
    }
    const err = await relL2T(tf.concat(parts, 1), full);
    assert.ok(err < 1e-5, `${backend}: rel err ${err}`);
    disposeState(state);
    disposeMambaLM(model);
    await Deno.remove(dir, { recursive: true });
  });
}

Deno.test("save then load gives the same parameters and a file mamba_ssm's layout accepts", async () => {
  await useBackend("cpu");
  const cfg = mambaByteConfig(16, 2, { pad_vocab_size_multiple: 8 });
  const model = initMambaLM(cfg, 3);
  const dir = await Deno.makeTempDir();
  await saveMambaLM(model, dir);
  const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  assert.deepEqual(names, ["config.json", "model.safetensors"]); // no temp files left
  const back = await loadPretrained(dir);
  const a = await readParameters(model), b = await readParameters(back);
  for (const [k, v] of a) assert.equal(relL2(b.get(k)!, v), 0, k);
  const st = await readSafetensors(`${dir}/model.safetensors`);
  assert.ok(st.tensors.has("lm_head.weight"), "tied head is stored, as mamba_ssm's state_dict does");
  assert.equal(st.metadata.format, "pt");
  assert.deepEqual(parseMambaConfig(JSON.parse(await Deno.readTextFile(`${dir}/config.json`))), cfg);
  disposeMambaLM(model);
  disposeMambaLM(back);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("initialisation follows mamba_ssm: A_log = log(1..N), D = 1, dt bias in softplus^-1 range", async () => {
  await useBackend("cpu");
  const cfg = mambaByteConfig(64, 3);
  const model = initMambaLM(cfg, 0);
  const v = await readParameters(model);
  const aLog = v.get("backbone.layers.0.mixer.A_log")!;
  assert.ok(Math.abs(aLog[0] - 0) < 1e-7 && Math.abs(aLog[15] - Math.log(16)) < 1e-6);
  assert.ok(v.get("backbone.layers.2.mixer.D")!.every((x) => x === 1));
  const softplus = (x: number) => Math.log1p(Math.exp(x));
  for (const b of v.get("backbone.layers.1.mixer.dt_proj.bias")!) {
    const dt = softplus(b);
    assert.ok(dt >= 1e-3 * 0.999 && dt <= 0.1 * 1.001, `dt ${dt} outside [dt_min, dt_max]`);
  }
  const emb = v.get("backbone.embedding.weight")!;
  const std = Math.sqrt(emb.reduce((s, x) => s + x * x, 0) / emb.length);
  assert.ok(Math.abs(std - 0.02) < 0.002, `embedding std ${std}`);
  const out = v.get("backbone.layers.0.mixer.out_proj.weight")!;
  const bound = 1 / Math.sqrt(128) / Math.sqrt(3);
  assert.ok(out.every((x) => Math.abs(x) <= bound + 1e-7), "out_proj rescaled by 1/sqrt(n_layer)");
  // same seed, same parameters; another seed, others
  const again = await readParameters(initMambaLM(cfg, 0));
  assert.equal(relL2(again.get("backbone.embedding.weight")!, emb), 0);
  disposeMambaLM(model);
});

for (const backend of TEST_BACKENDS) {
  Deno.test(`training on ${backend}: loss falls and tf.memory().numTensors stays flat across steps`, async () => {
    await useBackend(backend);
    const model: MambaLM = initMambaLM(mambaByteConfig(16, 2), 1);
    const text = new TextEncoder().encode("the quick brown fox jumps over the lazy dog. ".repeat(40));
    const counts: number[] = [];
    const { log } = await train(mambaAsLanguageModel(model), text, {
      steps: 12,
      batch: 2,
      length: 32,
      lr: 1e-2,
      warmup: 2,
      seed: 0,
      onStep: () => counts.push(tf.memory().numTensors),
    });
    assert.ok(counts.slice(1).every((c) => c === counts[1]), `numTensors per step: ${counts.join(", ")}`);
    const first = log.slice(0, 3).reduce((s, e) => s + e.loss, 0) / 3;
    const last = log.slice(-3).reduce((s, e) => s + e.loss, 0) / 3;
    assert.ok(last < first - 0.3, `loss should fall: ${first.toFixed(3)} -> ${last.toFixed(3)}`);
    disposeMambaLM(model);
  });
}
