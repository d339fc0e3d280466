/**
 * Decoding: the fused JS stepper equals mamba.ts `step`; speculative decoding with beta = 1 equals plain
 * greedy decoding byte for byte for any drafter (random, deliberately wrong), prompts ending mid-UTF-8
 * character included; beta > 1 only ever emits bytes inside the verifier's top-beta; rolling the
 * verifier back equals a fresh prefill of the accepted prefix; no tensors leak.
 */
import * as tf from "@tensorflow/tfjs";
import { deepStrictEqual, match, ok as assert, strictEqual, throws } from "node:assert/strict";
/** Equality of bytes (shown as arrays) or of plain values; the message names the case. */
function assertEquals(a: unknown, b: unknown, msg?: string): void {
  const [x, y] = a instanceof Uint8Array ? [Array.from(a), Array.from(b as Uint8Array)] : [a, b];
  if (msg === undefined) deepStrictEqual(x, y);
  else deepStrictEqual(x, y, `${msg}: ${JSON.stringify(x)} !== ${JSON.stringify(y)}`);
}
import { ByteBPE, trainBpe } from "../lib/data/bpe.ts";
import { disposeMambaLM, disposeState, forward, prefill } from "../lib/models/mamba.ts";
import { generate, generateBatch, generateTokens } from "../lib/decode/sample.ts";
import { argmax, greedyDecode, rankOf, speculativeDecode } from "../lib/decode/speculative.ts";
import { MambaStepper, RUN_CHUNK, tensorsToHost } from "../lib/decode/stepper.ts";
import { relL2, useBackend } from "./helpers.ts";
import { assertStepsMatchTf, CORPUS, echoMamba, tinyMamba } from "./decode_helpers.ts";
import { RecurrentSession } from "../lib/decode/session.ts";
import { decodeKernels, decodeKernelsUnavailable } from "../lib/kernels/wasm/decode.ts";

const enc = new TextEncoder();
const bpe = trainBpe(CORPUS, { vocabSize: 320 });

Deno.test("MambaStepper (WebAssembly SIMD and plain JS) equals mamba.ts step within 1e-5, step after step", async () => {
  await useBackend("wasm");
  // d 128: every width % 8 == 0 (all SIMD)
  for (
    const [m, kernels] of [tinyMamba(256, 1), tinyMamba(320, 2, 48, 3), tinyMamba(256, 15, 128, 1)]
      .flatMap((m) => [[m, true], [m, false]] as const)
  ) {
    const js = new MambaStepper(m, undefined, { kernels });
    assert(js.simd === kernels, `simd: ${js.simd}`);
    await assertStepsMatchTf(m, js, [3, 200, 17, 99, 5, 250, 1], [12, 255, 0, 77, 130, 4], `simd ${kernels}`);
    if (!kernels) disposeMambaLM(m);
  }
});

Deno.test("rolling the verifier back gives the logits and state of a fresh prefill of the accepted prefix", async () => {
  await useBackend("wasm");
  const m = tinyMamba(256, 3);
  const prompt = Array.from(enc.encode("Hello, wor"));
  const draft = Array.from(enc.encode("ld! How"));
  const s = new RecurrentSession(m);
  await s.read(prompt);
  const before = s.state!;
  await s.read(draft); // the verification pass moves the state past the whole draft
  const accepted = [...draft.slice(0, 3), 0x3f]; // say 3 bytes accepted, then the verifier's own byte "?"
  await s.read(accepted, before); // the roll-back pass: only the accepted bytes, from the cached state
  const full = tf.tensor([[...prompt, ...accepted]], [1, prompt.length + accepted.length], "int32");
  const fresh = prefill(m, full);
  full.dispose();
  const V = 256, l = prompt.length + accepted.length;
  const want = ((await fresh.logits.data()) as Float32Array).slice((l - 1) * V, l * V);
  assert(relL2(s.next, want) < 1e-5, `rolled-back logits rel. error ${relL2(s.next, want)}`);
  const wantState = await tensorsToHost(fresh.state);
  for (let i = 0; i < wantState.ssm.length; i++) {
    assert(relL2(s.state!.ssm[i], wantState.ssm[i]) < 1e-5, `layer ${i} ssm state`);
    assert(relL2(s.state!.conv[i], wantState.conv[i]) < 1e-5, `layer ${i} conv state`);
  }
  fresh.logits.dispose();
  disposeState(fresh.state);
  // and a step from the rolled-back state continues exactly like the one-pass forward
  const nxt = await s.step(0x20);
  const ids = tf.tensor([[...prompt, ...accepted, 0x20]], [1, l + 1], "int32");
  const { logits } = forward(m, ids);
  ids.dispose();
  const want2 = ((await logits.data()) as Float32Array).slice(l * V, (l + 1) * V);
  logits.dispose();
  assert(relL2(nxt, want2) < 1e-5);
  s.dispose();
  disposeMambaLM(m);
});

Deno.test("MambaStepper.read: one pass equals id-by-id steps bit for bit (logits, the state after every id), SIMD and plain JS; a prefill (blocked GEMM) equals them within 1e-5", async () => {
  await useBackend("wasm");
  // d 128: every product in SIMD (mv4 and mv); d 48: dt_rank 3, so the dt product runs the JS loop
  for (const m of [tinyMamba(256, 11, 128, 2), tinyMamba(320, 12, 48, 2)]) {
    for (const kernels of [true, false]) {
      const js = new MambaStepper(m, undefined, { kernels });
      if (kernels) assert(js.simd, "WebAssembly SIMD kernels expected here");
      let st = js.emptyState();
      for (const id of [5, 17, 200]) st = js.stepSync(st, id).state;
      const copy = structuredClone(st);
      const ids = Array.from({ length: RUN_CHUNK + 14 }, (_, i) => (i * 37 + 11) % m.config.vocab_size); // > one chunk
      const pass = js.read(st, ids);
      const last = js.read(st, ids, "last");
      assertEquals(pass.states.length, ids.length);
      assertEquals(last.states.length, 1);
      const Vp = pass.logits.length / ids.length;
      let cur = st;
      for (let t = 0; t < ids.length; t++) {
        const got = js.stepSync(cur, ids[t]);
        cur = got.state;
        assertEquals(
          pass.logits.subarray(t * Vp, (t + 1) * Vp),
          got.logits,
          `logits after id ${t} (kernels ${kernels})`,
        );
        for (let l = 0; l < cur.ssm.length; l++) {
          assertEquals(pass.states[t].ssm[l], cur.ssm[l], `ssm state, layer ${l}, id ${t}`);
          assertEquals(pass.states[t].conv[l], cur.conv[l], `conv state, layer ${l}, id ${t}`);
        }
      }
      // a prefill's float32 products of 24 ids or more run through the GEMM (fused multiply-adds, other sums)
      const near = (a: Float32Array, b: Float32Array, what: string) =>
        assert(relL2(a, b) < 1e-5, `${what} (kernels ${kernels}): ${relL2(a, b)}`);
      near(last.logits, pass.logits, "prefill logits");
      for (let l = 0; l < cur.ssm.length; l++) {
        near(last.states[0].ssm[l], cur.ssm[l], `prefill ssm state, layer ${l}`);
        near(last.states[0].conv[l], cur.conv[l], `prefill conv state, layer ${l}`);
      }
      if (!kernels) assertEquals(last.logits, pass.logits, "without SIMD a prefill is the steps' arithmetic");
      assertEquals(st, copy, "the input state is never mutated");
      throws(() => js.read(st, []), /no ids/);
      throws(() => js.read(st, [m.config.vocab_size]), /outside the vocabulary/);
    }
    disposeMambaLM(m);
  }
});

Deno.test("rollTo after a fused pass gives the logits and state of a fresh prefill of the accepted prefix", async () => {
  await useBackend("wasm");
  const m = tinyMamba(256, 3);
  const prompt = Array.from(enc.encode("Hello, wor"));
  const draft = Array.from(enc.encode("ld! How"));
  const s = new RecurrentSession(m, "js");
  await s.prefill(prompt);
  const before = s.state!, beforeNext = s.next;
  await s.read(draft);
  assert(s.canRoll);
  for (const a of [0, 3, draft.length]) {
    s.rollTo(a, before, beforeNext);
    await s.step(0x3f); // the verifier's own byte "?"
    const ids = [...prompt, ...draft.slice(0, a), 0x3f];
    const full = tf.tensor([ids], [1, ids.length], "int32");
    const fresh = prefill(m, full);
    full.dispose();
    const l = ids.length, V = 256;
    const want = ((await fresh.logits.data()) as Float32Array).slice((l - 1) * V, l * V);
    assert(relL2(s.next, want) < 1e-5, `a = ${a}: rolled-back logits rel. error ${relL2(s.next, want)}`);
    const wantState = await tensorsToHost(fresh.state);
    for (let i = 0; i < wantState.ssm.length; i++) {
      assert(relL2(s.state!.ssm[i], wantState.ssm[i]) < 1e-5, `a = ${a}: layer ${i} ssm state`);
      assert(relL2(s.state!.conv[i], wantState.conv[i]) < 1e-5, `a = ${a}: layer ${i} conv state`);
    }
    fresh.logits.dispose();
    disposeState(fresh.state);
  }
  s.dispose();
  disposeMambaLM(m);
});

Deno.test("speculative decoding with beta = 1 equals plain greedy decoding byte for byte, for any drafter", async () => {
  await useBackend("wasm");
  const verifier = tinyMamba(256, 4);
  const random = tinyMamba(bpe.vocabSize, 5);
  // a deliberately wrong drafter: norm_f = 0 makes every logit 0, so it always drafts the lowest-id token
  const wrong = tinyMamba(bpe.vocabSize, 6);
  const nf = wrong.params.get("backbone.norm_f.weight")!;
  nf.assign(tf.zerosLike(nf));
  const cafe = enc.encode("Ça va, café");
  const prompts: Uint8Array[] = [
    enc.encode("The quick brown "),
    enc.encode("Über"),
    cafe.subarray(0, cafe.length - 1), // ends inside "é" (0xC3 0xA9): only 0xC3
    enc.encode("東京").subarray(0, 4), // ends inside the second character
    Uint8Array.of(0x41),
  ];
  const echoV = echoMamba(256, 9), echoD = echoMamba(bpe.vocabSize, 10);
  const always = () => true; // resume drafting after every corrected byte: many rounds
  const numTensors = tf.memory().numTensors;
  let echoAccepted = 0, echoDrafted = 0, partial = 0;
  for (const prompt of prompts) {
    for (
      const [vName, ver, drafters] of [
        ["random", verifier, [["random", random], ["wrong", wrong]]],
        ["echo", echoV, [["echo", echoD], ["wrong", wrong]]],
      ] as const
    ) {
      const want = await generate(ver, prompt, 60, { greedy: true });
      const plain = await greedyDecode(ver, prompt, 60);
      assertEquals(plain.bytes, want, "greedyDecode (JS stepper) vs generate");
      for (const [name, drafter] of drafters) {
        for (const m of [1, 3]) {
          for (
            const [boundary, verify] of [[undefined, "pass"], [always, "pass"], [undefined, "steps"], [
              always,
              "steps",
            ]] as const
          ) {
            const r = await speculativeDecode(ver, drafter, bpe, prompt, 60, {
              draftTokens: m,
              beta: 1,
              boundary,
              verify,
            });
            const what = `${vName} verifier, ${name} drafter, m ${m}, ${verify}, prompt ${
              JSON.stringify(Array.from(prompt))
            }`;
            assertEquals(r.bytes, want, what);
            const s = r.stats;
            assertEquals(s.accepted + s.corrected, 60);
            assertEquals(r.accepted.reduce((a, b) => a + b, 0), s.accepted);
            assert(s.accepted <= s.drafted && s.verifierPasses <= 2 * s.rounds + 1, JSON.stringify(s));
            if (name === "wrong") {
              assert(s.acceptanceRate < 0.5, `${what}: the wrong drafter was accepted ${s.acceptanceRate}`);
            }
            if (name === "echo") (echoAccepted += s.accepted), (echoDrafted += s.drafted);
            for (let i = 1; i < 60; i++) if (r.accepted[i - 1] && !r.accepted[i]) partial++;
          }
        }
      }
      // the tf stepper path gives the same bytes too
      const rt = await speculativeDecode(ver, drafters[0][1], bpe, prompt, 30, {
        draftTokens: 2,
        stepper: "tf",
      });
      assertEquals(rt.bytes, want.subarray(0, 30));
    }
  }
  // the accept and reject-after-accept paths were exercised, not only rejections
  assert(echoAccepted > 0.5 * echoDrafted, `echo drafter accepted ${echoAccepted} of ${echoDrafted}`);
  assert(partial > 0, "no draft was rejected after accepted bytes");
  assertEquals(tf.memory().numTensors, numTensors, "tensors leaked");
  for (const m of [verifier, random, wrong, echoV, echoD]) disposeMambaLM(m);
});

Deno.test("beta = 1 with a byte-level drafter: the verifier itself is always accepted, a noisy copy (near misses) never changes the output", async () => {
  await useBackend("wasm");
  const bytesOnly = new ByteBPE([]); // no merges: tokens are bytes, so a byte model can draft
  const verifier = tinyMamba(256, 11);
  const self = tinyMamba(256, 11); // the same weights
  const noisy = tinyMamba(256, 11);
  const head = noisy.params.get("lm_head.weight")!;
  head.assign(tf.tidy(() => tf.add(head, tf.randomNormal(head.shape, 0, 0.3, "float32", 12))));
  const prompt = enc.encode("déjà");
  const want = await generate(verifier, prompt, 80, { greedy: true });
  for (const verify of ["pass", "steps"] as const) {
    const a = await speculativeDecode(verifier, self, bytesOnly, prompt, 80, { draftTokens: 4, verify });
    assertEquals(a.bytes, want);
    assert(a.stats.acceptanceRate > 0.95, `self-drafting accepted ${a.stats.acceptanceRate}`);
  }
  let nearMisses = 0;
  for (const [m, verify] of [[2, "pass"], [4, "pass"], [8, "pass"], [3, "steps"], [8, "steps"]] as const) {
    const b = await speculativeDecode(verifier, noisy, bytesOnly, prompt, 80, {
      draftTokens: m,
      boundary: () => true,
      verify,
    });
    assertEquals(b.bytes, want, `noisy drafter, m ${m}`);
    nearMisses += b.stats.drafted - b.stats.accepted;
    assert(b.stats.accepted > 0, JSON.stringify(b.stats));
  }
  assert(nearMisses > 0, "the noisy drafter was never rejected");
  for (const m of [verifier, self, noisy]) disposeMambaLM(m);
});

Deno.test("speculative decoding with beta = 3 emits accepted bytes within the verifier's top 3, its own bytes otherwise", async () => {
  await useBackend("wasm");
  const verifier = tinyMamba(256, 7);
  const drafter = echoMamba(bpe.vocabSize, 8); // drafts repeats of the last token: some within the top 3
  const prompt = enc.encode("A stitch in ");
  for (const verify of ["pass", "steps"] as const) {
    const r = await speculativeDecode(verifier, drafter, bpe, prompt, 50, {
      draftTokens: 3,
      beta: 3,
      boundary: () => true,
      verify,
    });
    assert(r.stats.accepted > 0 && r.stats.corrected > 0, JSON.stringify(r.stats));
    const all = Uint8Array.from([...prompt, ...r.bytes]);
    const ids = tf.tensor(Int32Array.from(all), [1, all.length], "int32");
    const { logits } = forward(verifier, ids);
    ids.dispose();
    const L = (await logits.data()) as Float32Array;
    logits.dispose();
    const V = 256;
    for (let i = 0; i < r.bytes.length; i++) {
      const row = L.subarray((prompt.length + i - 1) * V, (prompt.length + i) * V);
      if (r.accepted[i]) {
        assert(rankOf(row, r.bytes[i]) < 3, `accepted byte ${i} has rank ${rankOf(row, r.bytes[i])}`);
      } else assertEquals(r.bytes[i], argmax(row), `verifier byte ${i} is not the argmax`);
    }
  }
  disposeMambaLM(verifier);
  disposeMambaLM(drafter);
});

Deno.test("generate: the JS stepper and tfjs step agree; a batch of prompts of different lengths equals one prompt at a time", async () => {
  await useBackend("wasm");
  const m = tinyMamba(256, 13);
  const prompts = [enc.encode("Hi"), enc.encode("A longer prompt"), enc.encode("é").subarray(0, 1)];
  await generateBatch(m, prompts, 2, { greedy: true, stepper: "tf" }); // warm-up: kernels' persistent constants
  const numTensors = tf.memory().numTensors;
  for (const opts of [{ greedy: true, seed: 0 }, { temperature: 0.7, topK: 20, seed: 5 }]) {
    const batched = await generateBatch(m, prompts, 40, { ...opts, stepper: "tf" });
    const js = await generateBatch(m, prompts, 40, { ...opts, stepper: "js" });
    for (let i = 0; i < prompts.length; i++) {
      const one = await generate(m, prompts[i], 40, { ...opts, seed: opts.seed + i, stepper: "tf" });
      assertEquals(
        Uint8Array.from(batched[i]),
        one,
        `row ${i}, ${JSON.stringify(opts)}: batched vs one prompt`,
      );
      assertEquals(Uint8Array.from(js[i]), one, `row ${i}, ${JSON.stringify(opts)}: js stepper vs tf`);
    }
  }
  assertEquals(tf.memory().numTensors, numTensors, "tensors leaked");
  // a subword model: token ids beyond 255
  const sub = tinyMamba(bpe.vocabSize, 14);
  const toks = await generateTokens(sub, bpe.encode(enc.encode("The quick ")), 20, { greedy: true });
  assert(toks.every((t) => t >= 0 && t < bpe.vocabSize) && toks.some((t) => t > 255), `subword ids ${toks}`);
  disposeMambaLM(m);
  disposeMambaLM(sub);
});

Deno.test("cli generate --speculative: the trained reference's greedy bytes on stdout, statistics as JSON on stderr, clear errors", async () => {
  await useBackend("wasm");
  const { trainedModelDir } = await import("./helpers.ts");
  const { saveModel, mambaAsLanguageModel } = await import("../lib/models/registry.ts");
  const { dir: verifierDir, prompt, greedy } = await trainedModelDir();
  const drafterDir = await Deno.makeTempDir({ prefix: "drafter-" });
  const drafter = tinyMamba(bpe.vocabSize, 16);
  await saveModel(mambaAsLanguageModel(drafter, "mamba_subword"), drafterDir);
  await bpe.save(`${drafterDir}/tokenizer.json`);
  const promptFile = await Deno.makeTempFile();
  await Deno.writeFile(promptFile, prompt);
  const cli = async (...args: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../lib/cli.ts", import.meta.url).pathname,
        "generate",
        "--model",
        verifierDir,
        "--prompt-file",
        promptFile,
        ...args,
      ],
      env: { MAMBABYTE_BACKEND: "wasm", NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    return { code: out.code, stdout: out.stdout, stderr: new TextDecoder().decode(out.stderr) };
  };
  try {
    const plain = await cli("--max-bytes", "64", "--greedy");
    assertEquals(plain.code, 0, plain.stderr);
    assertEquals(Array.from(plain.stdout), greedy, "plain greedy vs mamba_ssm");
    const spec = await cli(
      "--max-bytes",
      "64",
      "--speculative",
      "--drafter",
      drafterDir,
      "--draft-tokens",
      "2",
    );
    assertEquals(spec.code, 0, spec.stderr);
    assertEquals(Array.from(spec.stdout), greedy, "speculative vs mamba_ssm's greedy bytes");
    const stats = JSON.parse(spec.stderr.trim().split("\n").at(-1)!).speculative;
    assertEquals(stats.bytes, 64);
    assertEquals(stats.draftTokens, 2);
    assert(stats.drafted >= stats.accepted && typeof stats.bytesPerSecond === "number");
    const noDrafter = await cli("--max-bytes", "4", "--speculative");
    assert(noDrafter.code !== 0 && noDrafter.stderr.includes("--drafter"), noDrafter.stderr);
    const noTok = await cli("--max-bytes", "4", "--speculative", "--drafter", verifierDir);
    assert(noTok.code !== 0 && noTok.stderr.includes("tokenizer.json"), noTok.stderr);
  } finally {
    for (const p of [verifierDir, drafterDir, promptFile]) await Deno.remove(p, { recursive: true });
    disposeMambaLM(drafter);
  }
});

Deno.test("the SIMD stepper names why it cannot hold a model (the 972M shape: 3.9 GB of weights, one 2 GiB memory) instead of falling back silently", () => {
  const floats = 972e6; // the paper's largest MambaByte, float32
  const why = decodeKernelsUnavailable(floats);
  match(why ?? "", /holds at most 2 GiB .* this model needs 3\.62 GiB/);
  strictEqual(decodeKernelsUnavailable(3.3e6), undefined); // d256x4
  strictEqual(decodeKernels(floats), undefined); // refused before any memory is asked for
});

Deno.test("MambaStepper over several WebAssembly memories (a model larger than one, split by layers) equals one memory bit for bit", async () => {
  await useBackend("wasm");
  const m = tinyMamba(256, 11, 128, 5); // 5 layers
  const one = new MambaStepper(m);
  // a layer is about 120K floats (in_proj 65.5K, out_proj 32.8K, ...), the scratch of RUN_CHUNK (264) ids
  // about 0.66M (with the GEMM's panel of 8 rows per thread: 4K floats on 2 threads, 33K on 16) and the
  // embedding, head and final norm 66K: 950K floats a memory hold two layers, so three memories
  const split = new MambaStepper(m, undefined, { memoryFloats: 950_000 });
  assert(one.simd && split.simd, "WebAssembly SIMD kernels expected here");
  strictEqual(one.memories, 1);
  strictEqual(split.memories, 3);
  const ids = Array.from({ length: RUN_CHUNK + 14 }, (_, i) => (i * 53 + 7) % 256); // > one chunk
  const a = one.read(one.emptyState(), ids), b = split.read(split.emptyState(), ids);
  const pa = one.read(one.emptyState(), ids, "last"), pb = split.read(split.emptyState(), ids, "last");
  assertEquals(pb.logits, pa.logits, "prefill (GEMM) over three memories");
  assertEquals(b.logits, a.logits);
  assertEquals(b.states, a.states);
  // and the plain-JS stepper (no memory of its own; its sums run in another order) within 1e-5
  const plain = new MambaStepper(m, undefined, { kernels: false });
  strictEqual(plain.memories, 1);
  const err = relL2(plain.read(plain.emptyState(), ids.slice(0, 5)).logits, a.logits.subarray(0, 5 * 256));
  assert(err < 1e-5, `plain JS vs SIMD: ${err}`);
  // memories too small for one layer (the scratch alone fills 700K floats): the plain-JS stepper, named as
  // such, with the same logits
  const tooSmall = new MambaStepper(m, undefined, { memoryFloats: 700_000 });
  assert(!tooSmall.simd, "a layer larger than a memory: no SIMD kernels");
  strictEqual(tooSmall.memories, 1);
  assertEquals(
    tooSmall.read(tooSmall.emptyState(), ids.slice(0, 5)).logits,
    plain.read(plain.emptyState(), ids.slice(0, 5)).logits,
  );
  disposeMambaLM(m);
});
