/**
 * The native Mamba training engine (lib/engine/mamba.ts) on each engine backend (webgpu on Mesa's
 * software adapter in CI, and js, the kernels' plain-JS twins), against:
 *  (a) mamba_ssm's tiny reference model: logits, loss, every parameter gradient;
 *  (b) three AdamW steps of mamba_ssm on 2 x 2048 bytes: loss and gradient norm per step, the first
 *      step's gradients, the weights after the third step;
 *  (c) the TF.js model trained by the project's trainer (its AdamW, clipping, schedule, batches) for 30
 *      steps from the same initialisation: loss and norm at every step, weights at the end; a subword
 *      Mamba (padded vocabulary, untied head, no conv bias, head in chunks) against the TF.js model;
 *  (d) the buffers, bind groups and pipelines a step creates: none;
 *  (e) parameters and AdamW moments moved into TF.js's AdamW mid-run and back.
 * Tolerances are the fixtures' (fp32) or stated per check; errors are relative L2 norms.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { readSafetensors } from "../lib/io/safetensors.ts";
import { parseMambaConfig } from "../lib/models/mamba_config.ts";
import { createMambaLM, disposeMambaLM, initParameters, type MambaLM } from "../lib/models/mamba.ts";
import { mambaByteConfig } from "../lib/models/pretrained.ts";
import { mambaAsLanguageModel } from "../lib/models/registry.ts";
import { nextTokenLoss, readParameters } from "../lib/models/lm.ts";
import { AdamW, ADAMW_DEFAULTS } from "../lib/train/adamw.ts";
import { train } from "../lib/train/trainer.ts";
import { ByteBatcher } from "../lib/data/bytes.ts";
import {
  ENGINE_OPTIMIZER_DEFAULTS,
  MambaEngine,
  type MambaEngineOptions,
  type StepStats,
} from "../lib/engine/mamba.ts";
import type { EngineBackendName } from "../lib/engine/backend.ts";
import { getPool, reservedBytes } from "../lib/kernels/wasm/pool.ts";
import { FIXTURES, relL2, useBackend } from "./helpers.ts";
import {
  ENGINE_BACKENDS,
  expectTfjsGradients,
  expectTrainerSteps,
  TFJS_REFERENCE_BACKEND,
} from "./engine_helpers.ts";

const fixture = async (name: string) => {
  const st = await readSafetensors(FIXTURES + name);
  return new Map([...st.tensors].map(([k, t]) => [k, t.data as Float32Array | Int32Array]));
};
const asF32 = (m: Map<string, Float32Array | Int32Array>) =>
  new Map([...m].filter(([, v]) => v instanceof Float32Array) as [string, Float32Array][]);

function engine(backend: EngineBackendName, o: Omit<MambaEngineOptions, "backend">): Promise<MambaEngine> {
  return MambaEngine.create({ ...o, backend, allowSoftwareGpu: true });
}

/** Some English text for training windows (bytes of the tiny fixture's input, a pangram, digits). */
async function trainingText(): Promise<Uint8Array> {
  const ids = (await fixture("mambabyte-tiny-public.expected.safetensors")).get("input_ids") as Int32Array;
  const prose = new TextEncoder().encode(
    "Pack my box with five dozen liquor jugs. 0123456789 How vexingly quick daft zebras jump! ",
  );
  const out = new Uint8Array(4 * (ids.length + prose.length));
  for (let i = 0; i < 4; i++) {
    out.set(Uint8Array.from(ids), i * (ids.length + prose.length));
    out.set(prose, i * (ids.length + prose.length) + ids.length);
  }
  return out;
}

Deno.test("engine: AdamW defaults are the trainer's", () => {
  const { lr: _lr, ...rest } = ADAMW_DEFAULTS;
  assert.deepEqual(ENGINE_OPTIMIZER_DEFAULTS, rest);
});

for (const backend of ENGINE_BACKENDS) {
  Deno.test(`engine (${backend}): tiny MambaByte logits, loss and every parameter gradient match mamba_ssm`, async () => {
    const reference = JSON.parse(await Deno.readTextFile(FIXTURES + "mambabyte-tiny-public.json"));
    const cfg = parseMambaConfig(reference.config);
    const exp = await fixture("mambabyte-tiny-public.expected.safetensors");
    const ids = exp.get("input_ids") as Int32Array; // (1, 249): 248 inputs, 248 targets
    const l = ids.length - 1;
    const params = asF32(await fixture("mambabyte-tiny-public.model.safetensors"));
    const eng = await engine(backend, { config: cfg, params, batch: 1, length: l });
    try {
      const logits = await eng.logits(ids.subarray(0, l));
      const want = (exp.get("logits") as Float32Array).subarray(0, l * 256);
      const errLogits = relL2(logits, want);
      assert.ok(errLogits < 1e-4, `logits rel err ${errLogits}`);
      // the fixture's loss and gradients are over all 249 positions' logits but 248 targets: the same
      const { loss, grads } = await eng.gradients(ids);
      const errLoss = Math.abs(loss - reference.loss_next_byte_ce_nats) / reference.loss_next_byte_ce_nats;
      assert.ok(errLoss < 1e-4, `loss ${loss} vs ${reference.loss_next_byte_ce_nats}`);
      assert.equal(grads.size, params.size - 1, "every parameter but the tied head");
      for (const [name, g] of grads) {
        const err = relL2(g, exp.get(`grad.${name}`) as Float32Array);
        assert.ok(err < 1e-3, `grad of ${name} rel err ${err}`);
      }
      assert.ok(Math.abs(await eng.loss(ids) - loss) < 1e-6, "forward-only loss = training loss");
    } finally {
      eng.destroy();
    }
  });

  Deno.test(`engine (${backend}): three AdamW steps on 2 x 2048 bytes match mamba_ssm (loss, norm, gradients, weights)`, async () => {
    const ref = JSON.parse(await Deno.readTextFile(FIXTURES + "mambabyte-train3-public.json"));
    assert.equal(
      ref.no_weight_decay,
      "(A_log|\\.D|norm(_f)?\\.weight|\\.bias)$",
      "the fixture decays what the trainer decays",
    );
    const exp = await fixture("mambabyte-train3-public.expected.safetensors");
    const ids = exp.get("input_ids") as Int32Array;
    const a = ref.adamw;
    const eng = await engine(backend, {
      config: parseMambaConfig(ref.config),
      params: asF32(await fixture("mambabyte-train3-public.model.safetensors")),
      batch: ref.batch,
      length: ref.length,
      optimizer: {
        beta1: a.beta1,
        beta2: a.beta2,
        eps: a.eps,
        weightDecay: a.weight_decay,
        clipNorm: a.clip_norm,
      },
      readbackEvery: 2, // one window read back by the engine, the last step by flush
    });
    try {
      const { grads } = await eng.gradients(ids);
      for (const [name, g] of grads) {
        const err = relL2(g, exp.get(`grad.${name}`) as Float32Array);
        assert.ok(err < 1e-4, `step 1 grad of ${name} rel err ${err}`);
      }
      const stats: Promise<StepStats>[] = [];
      for (let s = 0; s < 3; s++) stats.push((await eng.step(ids, ref.lr)).stats);
      await eng.flush();
      for (const [i, st] of (await Promise.all(stats)).entries()) {
        assert.equal(st.step, i + 1);
        assert.ok(!st.halted);
        const errLoss = Math.abs(st.loss / ref.loss_before_step_nats[i] - 1);
        const errNorm = Math.abs(st.gradNorm / ref.grad_norm_before_clip[i] - 1);
        assert.ok(errLoss < 1e-5, `step ${i + 1} loss ${st.loss} vs ${ref.loss_before_step_nats[i]}`);
        assert.ok(errNorm < 1e-5, `step ${i + 1} norm ${st.gradNorm} vs ${ref.grad_norm_before_clip[i]}`);
      }
      const after = await eng.parameters();
      for (const [name, w] of after) {
        const err = relL2(w, exp.get(`after3.${name}`) as Float32Array);
        assert.ok(err < 1e-5, `${name} after 3 steps rel err ${err}`);
      }
      assert.equal((await eng.optimizerState()).step, 3);
    } finally {
      eng.destroy();
    }
  });

  Deno.test(`engine (${backend}): 30 steps equal the TF.js model trained by the project's trainer (loss and norm each step, final weights)`, async () => {
    await useBackend(TFJS_REFERENCE_BACKEND);
    const cfg = mambaByteConfig(32, 2);
    const init = initParameters(cfg, 11);
    const data = await trainingText();
    const run = { steps: 30, batch: 2, length: 64, lr: 3e-3, warmup: 5, seed: 7 };
    const model = createMambaLM(cfg, init);
    const lm = mambaAsLanguageModel(model);
    const { log } = await train(lm, data, run);
    const want = await readParameters(model);
    disposeMambaLM(model);

    const eng = await engine(backend, {
      config: cfg,
      params: init,
      batch: run.batch,
      length: run.length,
      readbackEvery: 7,
    });
    try {
      await expectTrainerSteps(eng, data, run, log, want);
    } finally {
      eng.destroy();
    }
  });

  Deno.test(`engine (${backend}): subword Mamba (vocab 300 padded to 304, untied head, no conv bias, head in chunks) equals TF.js`, async () => {
    await useBackend(TFJS_REFERENCE_BACKEND);
    const cfg = parseMambaConfig({
      d_model: 24,
      n_layer: 2,
      vocab_size: 300,
      tie_embeddings: false,
      ssm_cfg: { d_state: 8, conv_bias: false, d_conv: 3 },
    });
    const init = initParameters(cfg, 5);
    const batch = 3, length = 37;
    const ids = Int32Array.from({ length: batch * (length + 1) }, (_, i) => (i * 7919 + 13) % 300);
    const model = createMambaLM(cfg, init);
    const lm = mambaAsLanguageModel(model, "mamba_subword");
    const inputsT = tf.tensor(ids, [batch, length + 1], "int32").slice([0, 0], [batch, length]);
    const logitsT = lm.logits(inputsT);
    const wantLogits = await logitsT.data() as Float32Array;
    const eng = await engine(backend, { config: cfg, params: init, batch, length, headChunk: 40 });
    try {
      assert.ok(relL2(await eng.logits(ids), wantLogits) < 1e-5, "logits");
      await expectTfjsGradients(eng, lm, ids, batch, length);
    } finally {
      eng.destroy();
      tf.dispose([inputsT, logitsT]);
      disposeMambaLM(model);
    }
  });

  Deno.test(`engine (${backend}): a training step creates no buffer, bind group or pipeline, and submits once`, async () => {
    const cfg = mambaByteConfig(32, 2);
    const eng = await engine(backend, {
      config: cfg,
      params: initParameters(cfg, 1),
      batch: 2,
      length: 33,
      readbackEvery: 3,
    });
    try {
      const data = await trainingText();
      const batcher = new ByteBatcher(data, 2, 33, 3);
      // warm: a first window of 3 steps (its read-back included); the 6 below are two more windows
      for (let s = 0; s < 3; s++) await eng.step(batcher.next(), 1e-3);
      await eng.flush();
      const before = { ...eng.backend.counters }, bytes = eng.backend.allocatedBytes;
      const kernelMemory = getPool().memory.buffer.byteLength, held = reservedBytes();
      const stats: Promise<StepStats>[] = [];
      for (let s = 0; s < 6; s++) stats.push((await eng.step(batcher.next(), 1e-3)).stats);
      await Promise.all(stats); // two read-backs, no flush needed
      await eng.backend.finish();
      assert.equal(eng.backend.allocatedBytes, bytes, "memory held");
      if (backend === "wasm") {
        // the kernels' memory neither grows nor gains reserved regions: each step's scratch is reused
        assert.equal(getPool().memory.buffer.byteLength, kernelMemory, "WebAssembly memory grew");
        assert.equal(reservedBytes(), held, "regions reserved during 6 steps");
      }
      if (backend === "webgpu") {
        const after = eng.backend.counters!;
        assert.equal(after.buffers, before.buffers, "buffers created during 6 steps");
        assert.equal(after.bindGroups, before.bindGroups!, "bind groups created during 6 steps");
        assert.equal(after.pipelines, before.pipelines!, "pipelines created during 6 steps");
        assert.equal(after.encoders - before.encoders!, 6, "one command encoder per step");
        assert.equal(after.submits - before.submits!, 6, "one queue submission per step");
      }
      assert.ok(eng.dispatches().total > 40);
    } finally {
      eng.destroy();
    }
    if (backend === "wasm") assert.equal(reservedBytes(), 0, "the engine's regions given back");
  });

  Deno.test(`engine (${backend}): parameters and AdamW moments move to TF.js's AdamW mid-run and back`, async () => {
    await useBackend(TFJS_REFERENCE_BACKEND);
    const cfg = mambaByteConfig(32, 2);
    const init = initParameters(cfg, 21);
    const data = await trainingText();
    const batch = 2, length = 48, lrs = [2e-3, 3e-3, 3e-3, 2e-3, 1e-3, 1e-3, 5e-4, 5e-4, 2e-4];
    const batches = (() => {
      const b = new ByteBatcher(data, batch, length, 9);
      return lrs.map(() => b.next());
    })();
    const tfStep = async (m: MambaLM, opt: AdamW, ids: Int32Array, lr: number) => {
      const lm = mambaAsLanguageModel(m);
      const idsT = tf.tensor(ids, [batch, length + 1], "int32");
      const names = [...m.params.keys()], vars = names.map((n) => m.params.get(n)!);
      const { value, grads } = tf.variableGrads(() => nextTokenLoss(lm, idsT), vars);
      const loss = (await value.data())[0];
      await opt.apply(new Map(names.map((n, i) => [n, grads[vars[i].name]])), lr);
      tf.dispose([idsT, value, ...Object.values(grads)]);
      return loss;
    };
    // the reference: TF.js all the way
    const ref = createMambaLM(cfg, init);
    const refOpt = new AdamW(
      ref.params,
      { ...ADAMW_DEFAULTS },
      (n) => !mambaAsLanguageModel(ref).noWeightDecay(n),
    );
    const refLoss: number[] = [];
    for (const [i, ids] of batches.entries()) refLoss.push(await tfStep(ref, refOpt, ids, lrs[i]));
    const want = await readParameters(ref);

    // engine 3 steps -> TF.js 3 steps -> engine 3 steps
    const eng = await engine(backend, { config: cfg, params: init, batch, length, readbackEvery: 4 });
    const m = createMambaLM(cfg, init);
    const opt = new AdamW(m.params, { ...ADAMW_DEFAULTS }, (n) => !mambaAsLanguageModel(m).noWeightDecay(n));
    try {
      const losses: number[] = [];
      const run = async (from: number, to: number) => {
        const s: Promise<StepStats>[] = [];
        for (let i = from; i < to; i++) s.push((await eng.step(batches[i], lrs[i])).stats);
        await eng.flush();
        losses.push(...(await Promise.all(s)).map((x) => x.loss));
      };
      await run(0, 3);
      const params = await eng.parameters(), st = await eng.optimizerState();
      assert.equal(st.step, 3);
      for (const [name, p] of m.params) {
        p.assign(tf.tensor(params.get(name)!, p.shape));
        opt.m.get(name)!.assign(tf.tensor(st.m.get(name)!, p.shape));
        opt.v.get(name)!.assign(tf.tensor(st.v.get(name)!, p.shape));
      }
      opt.step = st.step;
      for (let i = 3; i < 6; i++) losses.push(await tfStep(m, opt, batches[i], lrs[i]));
      // and back: what the engine is given, it gives back exactly
      const back = {
        params: await readParameters(m),
        m: new Map(
          await Promise.all([...opt.m].map(async ([n, t]) => [n, await t.data() as Float32Array] as const)),
        ),
        v: new Map(
          await Promise.all([...opt.v].map(async ([n, t]) => [n, await t.data() as Float32Array] as const)),
        ),
        step: opt.step,
      };
      await eng.setState(back);
      const again = await eng.optimizerState(), againParams = await eng.parameters();
      assert.equal(again.step, 6);
      for (const [name, p] of back.params) {
        assert.equal(relL2(againParams.get(name)!, p), 0, `${name} round trip`);
        assert.equal(relL2(again.m.get(name)!, back.m.get(name)!), 0, `m of ${name} round trip`);
        assert.equal(relL2(again.v.get(name)!, back.v.get(name)!), 0, `v of ${name} round trip`);
      }
      await run(6, 9);
      for (const [i, l] of losses.entries()) {
        assert.ok(Math.abs(l / refLoss[i] - 1) < 1e-3, `step ${i + 1}: loss ${l} vs TF.js ${refLoss[i]}`);
      }
      const got = await eng.parameters();
      for (const [name, w] of want) {
        const err = relL2(got.get(name)!, w);
        assert.ok(err < 1e-3, `${name} after the mixed run rel err ${err}`);
      }
      assert.equal((await eng.optimizerState()).step, 9);
    } finally {
      eng.destroy();
      refOpt.dispose();
      opt.dispose();
      disposeMambaLM(ref);
      disposeMambaLM(m);
    }
  });

  Deno.test(`engine (${backend}): a non-finite loss halts every update on the device, later steps included; the engine then refuses steps`, async () => {
    // untied head: a NaN embedding row then poisons only batches that contain its id
    const cfg = mambaByteConfig(32, 2, { tie_embeddings: false });
    const init = initParameters(cfg, 4);
    const length = 40;
    // readbackEvery 8: every step below is queued before the host could know of the halt
    const eng = await engine(backend, { config: cfg, params: init, batch: 1, length, readbackEvery: 8 });
    try {
      const clean = () => Int32Array.from({ length: length + 1 }, (_, i) => 97 + (i * 5) % 26); // no 255
      const withBad = clean();
      withBad[17] = 255;
      const first = (await eng.step(clean(), 1e-3)).stats;
      const good = await eng.parameters(); // after step 1
      const emb = Float32Array.from(good.get("backbone.embedding.weight")!);
      emb.fill(NaN, 255 * 32, 256 * 32); // byte 255's row
      await eng.setState({ params: new Map(good).set("backbone.embedding.weight", emb) });
      const second = (await eng.step(withBad, 1e-3)).stats; // NaN loss
      const third = (await eng.step(clean(), 1e-3)).stats; // finite, but after a halt
      await eng.flush();
      assert.ok(!(await first).halted);
      assert.ok(!Number.isFinite((await second).loss) && (await second).halted);
      assert.ok(Number.isFinite((await third).loss) && (await third).halted, "the halt is sticky");
      assert.equal(eng.halted, 2);
      const after = await eng.parameters();
      for (const [name, p] of good) {
        if (name !== "backbone.embedding.weight") {
          assert.equal(relL2(after.get(name)!, p), 0, `${name} changed`);
        }
      }
      assert.equal((await eng.optimizerState()).step, 1);
      await assert.rejects(() => eng.step(clean(), 1e-3), /halted at step 2/);
    } finally {
      eng.destroy();
    }
  });
}
