/**
 * Every decoder reproduces mamba_ssm's greedy continuation of the trained reference model
 * (tests/fixtures/reference/mambabyte-trained-public.*: 64 bytes of real text after a 64-byte prompt):
 * the recurrent JS stepper (WebAssembly SIMD and plain JS, the prompt read id by id), tfjs `step` after a
 * tfjs prefill (wasm and webgpu), RecurrentSession (its fused prompt pass, then steps), and speculative
 * decoding with beta = 1 for several drafters (random subword Mamba, one that always drafts a wrong token,
 * the verifier itself as a byte-level drafter), verified by parallel passes and by steps, and whole rounds on
 * the native engine (lib/engine/speculative.ts). The CLI's
 * `generate --greedy` is in cli_test.ts and `generate --speculative` in decode_test.ts, against the same bytes.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { FIXTURES, TEST_BACKENDS, trainedModelDir, useBackend } from "./helpers.ts";
import { loadPretrained } from "../lib/models/pretrained.ts";
import { disposeMambaLM, initMambaLM, type MambaLM } from "../lib/models/mamba.ts";
import { parseMambaConfig } from "../lib/models/mamba_config.ts";
import { generate } from "../lib/decode/sample.ts";
import { argmax, greedyDecode, speculativeDecode } from "../lib/decode/speculative.ts";
import { MambaStepper } from "../lib/decode/stepper.ts";
import { RecurrentSession } from "../lib/decode/session.ts";
import { ByteBPE, trainBpe } from "../lib/data/bpe.ts";
import { readSafetensors } from "../lib/io/safetensors.ts";

const { dir, prompt, greedy } = await trainedModelDir();
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
const N = greedy.length; // 64
const show = (b: ArrayLike<number>) => JSON.stringify(new TextDecoder().decode(Uint8Array.from(b)));

/** Equal bytes, or a message with both texts and the first difference. */
function assertGreedy(got: ArrayLike<number>, what: string) {
  const a = Array.from(got);
  const first = a.findIndex((x, i) => x !== greedy[i]);
  assert.ok(
    a.length === N && first < 0,
    `${what}: ${show(a)} differs from mamba_ssm's ${show(greedy)} at byte ${first}`,
  );
}

/** A random subword Mamba over `vocab` tokens with a random untied head (peaked, varied drafts). */
function randomDrafter(vocab: number, seed: number): MambaLM {
  const m = initMambaLM(
    parseMambaConfig({
      d_model: 32,
      n_layer: 2,
      vocab_size: vocab,
      ssm_cfg: { d_state: 8 },
      tie_embeddings: false,
    }, "drafter"),
    seed,
  );
  const head = m.params.get("lm_head.weight")!;
  head.assign(tf.randomNormal(head.shape, 0, 1, "float32", seed));
  return m;
}

// the drafter's tokenizer: BPE trained on other GPL v3 text (train3's batch)
const gpl = (await readSafetensors(`${FIXTURES}mambabyte-train3-public.expected.safetensors`)).tensors
  .get("input_ids")!.data as Int32Array;
const bpe = trainBpe(Uint8Array.from(gpl), { vocabSize: 300 });

Deno.test("the trained reference's greedy continuation is real text, not a repeated byte", () => {
  assert.equal(new Set(greedy).size, 19);
  let run = 1, longest = 1;
  for (let i = 1; i < N; i++) longest = Math.max(longest, run = greedy[i] === greedy[i - 1] ? run + 1 : 1);
  assert.ok(longest <= 4, `longest run of one byte: ${longest}`);
  // a decoder that repeats its last byte, or echoes the prompt, matches almost none of it
  assert.ok(greedy.filter((b, i) => b === (i ? greedy[i - 1] : prompt.at(-1))).length < 8);
});

Deno.test("JS stepper (WebAssembly SIMD and plain JS), prompt read id by id, reproduces the greedy continuation", async () => {
  await useBackend("wasm");
  const model = await loadPretrained(dir);
  for (const kernels of [true, false]) {
    const js = new MambaStepper(model, undefined, { kernels });
    assert.equal(js.simd, kernels);
    let st = js.emptyState();
    let logits: Float32Array = new Float32Array(0);
    for (const b of prompt) ({ logits, state: st } = js.stepSync(st, b));
    const out: number[] = [];
    for (let i = 0; i < N; i++) {
      out.push(argmax(logits, 256));
      if (i < N - 1) ({ logits, state: st } = js.stepSync(st, out[i]));
    }
    assertGreedy(out, `MambaStepper (simd ${kernels})`);
  }
  disposeMambaLM(model);
});

Deno.test("RecurrentSession with the JS stepper (fused prompt pass, then steps) and generate reproduce it (wasm)", async () => {
  await useBackend("wasm");
  const model = await loadPretrained(dir);
  const s = new RecurrentSession(model, "js");
  await s.prefill(prompt);
  const out: number[] = [];
  for (let i = 0; i < N; i++) {
    out.push(argmax(s.next));
    if (i < N - 1) await s.step(out[i]);
  }
  s.dispose();
  assertGreedy(out, "RecurrentSession js");
  assertGreedy((await greedyDecode(model, prompt, N, { stepper: "js" })).bytes, "greedyDecode js");
  const streamed: number[] = [];
  assertGreedy(
    await generate(model, prompt, N, { greedy: true, stepper: "js" }, (b) => void streamed.push(b)),
    "generate js",
  );
  assertGreedy(streamed, "generate js, streamed");
  disposeMambaLM(model);
});

Deno.test({
  name:
    "generate on webgpu decodes on the native engine: greedy on the device reproduces it; sampling equals the CPU stepper's",
  ignore: !TEST_BACKENDS.includes("webgpu"),
  async fn() {
    await useBackend("webgpu");
    const model = await loadPretrained(dir);
    try {
      const streamed: number[] = [];
      // the default on webgpu is the engine (greedy ids chosen on the device, 64 steps per submission)
      assertGreedy(
        await generate(model, prompt, N, { greedy: true }, (b) => void streamed.push(b)),
        "generate engine",
      );
      assertGreedy(streamed, "generate engine, streamed");
      // sampling: on the device, by pickToken's rule with the uniforms of the same seeded generator
      const opts = { temperature: 0.8, topP: 0.95, seed: 3 };
      const onEngine = await generate(model, prompt, 40, { ...opts, stepper: "engine" });
      await useBackend("wasm");
      const onCpu = await generate(model, prompt, 40, { ...opts, stepper: "js" });
      assert.deepEqual(Array.from(onEngine), Array.from(onCpu));
    } finally {
      disposeMambaLM(model);
    }
  },
});

for (const backend of TEST_BACKENDS.filter((b) => b === "wasm" || b === "webgpu")) {
  Deno.test(`tfjs step after a tfjs prefill, and RecurrentSession on tfjs, reproduce it (${backend})`, async () => {
    await useBackend(backend);
    const model = await loadPretrained(dir);
    assertGreedy(
      await generate(model, prompt, N, { greedy: true, stepper: "tf" }),
      `generate tf (${backend})`,
    );
    assertGreedy(
      (await greedyDecode(model, prompt, N, { stepper: "tf" })).bytes,
      `RecurrentSession tf (${backend})`,
    );
    disposeMambaLM(model);
  });

  Deno.test(`speculative decoding with beta = 1 reproduces it for every drafter (${backend})`, async () => {
    await useBackend(backend);
    const model = await loadPretrained(dir);
    const random = randomDrafter(bpe.vocabSize, 5);
    const wrong = randomDrafter(bpe.vocabSize, 6);
    const nf = wrong.params.get("backbone.norm_f.weight")!;
    nf.assign(tf.zerosLike(nf)); // every logit 0: always drafts token 0
    const self = await loadPretrained(dir); // the verifier's own weights, drafting bytes
    const bytesOnly = new ByteBPE([]);
    const stepper = backend === "webgpu" ? "tf" as const : undefined;
    const cases: [string, MambaLM, ByteBPE][] = [["random subword", random, bpe], ["wrong", wrong, bpe], [
      "self, bytes",
      self,
      bytesOnly,
    ]];
    // the software GPU runs each tfjs pass slowly: there, the random drafter and the verifier itself (the
    // reject and accept paths), verified by passes
    if (backend === "webgpu") cases.splice(1, 1);
    const modes = backend === "webgpu" ? ["pass"] as const : ["pass", "steps"] as const;
    for (const [name, drafter, tok] of cases) {
      for (const verify of modes) {
        const r = await speculativeDecode(model, drafter, tok, prompt, N, {
          beta: 1,
          draftTokens: 3,
          verify,
          stepper,
          boundary: () => true, // resume drafting after every corrected byte: many rounds
        });
        assertGreedy(r.bytes, `${backend}: ${name} drafter, verify ${verify}`);
        if (name === "self, bytes") {
          assert.ok(r.stats.acceptanceRate > 0.9, `self-drafting accepted ${r.stats.acceptanceRate}`);
        }
        if (name === "wrong") assert.ok(r.stats.acceptanceRate < 0.5, JSON.stringify(r.stats));
      }
    }
    // on the native engine (WebGPU, or the kernels' twins on the CPU): whole rounds on the device
    for (
      const [name, drafter, tok] of [["random subword", random, bpe], [
        "self, bytes",
        self,
        bytesOnly,
      ]] as const
    ) {
      const r = await speculativeDecode(model, drafter, tok, prompt, N, {
        beta: 1,
        draftTokens: 3,
        stepper: "engine",
      });
      assertGreedy(r.bytes, `${backend} engine: ${name} drafter`);
      if (name === "self, bytes") {
        assert.ok(r.stats.acceptanceRate > 0.9, `engine self-drafting accepted ${r.stats.acceptanceRate}`);
      }
    }
    for (const m of [model, random, wrong, self]) disposeMambaLM(m);
  });
}
