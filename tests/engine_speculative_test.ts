/**
 * Speculative decoding on the native engine (lib/engine/speculative.ts), on the kernels' plain-JS twins and
 * on WebGPU (Mesa's software adapter in CI): with beta = 1 the bytes equal greedy decoding's (the host JS
 * stepper's, itself tested against mamba_ssm) for random, deliberately wrong and agreeing drafters and for
 * prompts ending inside a UTF-8 character, inside a long word, or of one byte; WebGPU's rounds draft and
 * accept exactly what the twins' do; with beta = 3 every accepted byte is in the verifier's top 3 and every
 * other byte its argmax; the bookkeeping kernels follow their rules on hand-made cases; a decode creates no
 * GPU buffer.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { trainBpe } from "../lib/data/bpe.ts";
import { disposeMambaLM, type MambaLM } from "../lib/models/mamba.ts";
import { readParameters } from "../lib/models/lm.ts";
import { argmax, greedyDecode, rankOf } from "../lib/decode/speculative.ts";
import { RecurrentSession } from "../lib/decode/session.ts";
import { EngineSpeculative } from "../lib/engine/speculative.ts";
import { acceptDraft, copyIndexed, draftChoose, specLayout } from "../lib/kernels/js/speculate.ts";
import { useBackend } from "./helpers.ts";
import { ENGINE_BACKENDS } from "./engine_helpers.ts";
import { CORPUS, echoMamba, tinyMamba } from "./decode_helpers.ts";

const enc = new TextEncoder();
const bpe = trainBpe(CORPUS, { vocabSize: 320 });
const DECODE_BACKENDS = ENGINE_BACKENDS.filter((b) => b === "js" || b === "webgpu");

async function engineOf(
  verifier: MambaLM,
  drafter: MambaLM,
  backend: "js" | "webgpu",
  o: { m: number; beta?: number },
) {
  return await EngineSpeculative.create({
    verifier: { config: verifier.config, params: await readParameters(verifier) },
    drafter: { config: drafter.config, params: await readParameters(drafter) },
    tokenizer: bpe,
    draftTokens: o.m,
    beta: o.beta ?? 1,
    roundsPerSubmit: 4, // several submissions per decode
    backend,
    allowSoftwareGpu: true,
  });
}

const cafe = enc.encode("Ça va, café");
const PROMPTS: [string, Uint8Array][] = [
  ["words", enc.encode("The quick brown ")],
  ["mid-UTF-8", cafe.subarray(0, cafe.length - 1)], // ends inside "é": only 0xC3
  ["long last word", enc.encode("over the lazydogjumpsquickly")], // a pending piece longer than extendMax
  ["one byte", Uint8Array.of(0x41)],
];

for (const backend of DECODE_BACKENDS) {
  Deno.test(`engine speculative (${backend}): beta = 1 gives greedy decoding's bytes for any drafter; rounds as the twins'`, async () => {
    await useBackend("wasm");
    const verifier = tinyMamba(256, 4), random = tinyMamba(bpe.vocabSize, 5);
    const wrong = tinyMamba(bpe.vocabSize, 6); // norm_f = 0: every logit 0, always the lowest id drafted
    const nf = wrong.params.get("backbone.norm_f.weight")!;
    nf.assign(tf.zerosLike(nf));
    const echoV = echoMamba(256, 9), echoD = echoMamba(bpe.vocabSize, 10);
    const cases: [string, MambaLM, [string, MambaLM][]][] = [
      ["random", verifier, [["random", random], ["wrong", wrong]]],
      ["echo", echoV, [["echo", echoD], ["wrong", wrong]]],
    ];
    const N = 48;
    let echoAccepted = 0, echoDrafted = 0, partial = 0;
    try {
      for (const [pName, prompt] of PROMPTS) {
        for (const [vName, ver, drafters] of cases) {
          const want = (await greedyDecode(ver, prompt, N)).bytes;
          for (const [dName, drafter] of drafters) {
            // WebGPU on the software adapter is slow: one drafting width there, both with the twins
            for (const m of backend === "webgpu" ? [3] : [1, 3]) {
              const what = `${vName} verifier, ${dName} drafter, m ${m}, prompt "${pName}"`;
              const spec = await engineOf(ver, drafter, backend, { m });
              let r;
              try {
                r = await spec.decode(prompt, N);
              } finally {
                spec.destroy();
              }
              assert.deepEqual(Array.from(r.bytes), Array.from(want), what);
              const s = r.stats;
              assert.equal(s.accepted + s.corrected, N, what);
              assert.equal(r.accepted.reduce((a, b) => a + b, 0), s.accepted, what);
              assert.ok(s.accepted <= s.drafted && s.corrected <= s.rounds, `${what}: ${JSON.stringify(s)}`);
              if (dName === "wrong") assert.ok(s.acceptanceRate < 0.5, `${what}: wrong drafter accepted`);
              if (dName === "echo") (echoAccepted += s.accepted), (echoDrafted += s.drafted);
              for (let i = 1; i < N; i++) if (r.accepted[i - 1] && !r.accepted[i]) partial++;
              if (backend === "webgpu") {
                // the same rounds as the kernels' twins: what was drafted and accepted, byte for byte
                const twin = await engineOf(ver, drafter, "js", { m });
                try {
                  const t = await twin.decode(prompt, N);
                  assert.deepEqual(Array.from(r.accepted), Array.from(t.accepted), `${what}: accepted bytes`);
                  assert.equal(s.drafted, t.stats.drafted, `${what}: drafted bytes`);
                  assert.equal(s.rounds, t.stats.rounds, `${what}: rounds`);
                } finally {
                  twin.destroy();
                }
              }
            }
          }
        }
      }
      assert.ok(echoAccepted > 0.5 * echoDrafted, `echo drafter accepted ${echoAccepted} of ${echoDrafted}`);
      assert.ok(partial > 0, "no draft was rejected after accepted bytes");
    } finally {
      for (const m of [verifier, random, wrong, echoV, echoD]) disposeMambaLM(m);
    }
  });

  Deno.test(`engine speculative (${backend}): beta = 3 accepts only bytes in the verifier's top 3; no buffer per byte`, async () => {
    await useBackend("wasm");
    const ver = echoMamba(256, 9), drafter = tinyMamba(bpe.vocabSize, 5);
    const spec = await engineOf(ver, drafter, backend, { m: 3, beta: 3 });
    const session = new RecurrentSession(ver, "js");
    try {
      const prompt = enc.encode("The quick brown ");
      await spec.decode(prompt, 8); // warm: every program recorded, every pipeline made
      const before = { ...spec.backend.counters }, bytes = spec.backend.allocatedBytes;
      const r = await spec.decode(prompt, 64);
      assert.equal(spec.backend.allocatedBytes, bytes);
      if (backend === "webgpu") {
        const after = spec.backend.counters!;
        assert.equal(after.buffers, before.buffers, "buffers created while decoding");
        assert.equal(after.bindGroups, before.bindGroups, "bind groups created while decoding");
      }
      await session.prefill(prompt);
      let inTop = 0;
      for (let i = 0; i < r.bytes.length; i++) {
        const rank = rankOf(session.next, r.bytes[i]);
        if (r.accepted[i]) assert.ok(rank < 3, `accepted byte ${i} has rank ${rank}`);
        else assert.equal(r.bytes[i], argmax(session.next), `byte ${i} is the verifier's own: its argmax`);
        if (r.accepted[i] && rank > 0) inTop++;
        await session.step(r.bytes[i]);
      }
      assert.ok(r.stats.accepted > 0, "some draft bytes accepted");
      void inTop;
    } finally {
      session.dispose();
      spec.destroy();
      disposeMambaLM(ver);
      disposeMambaLM(drafter);
    }
  });
}

Deno.test("draftChoose and acceptDraft follow their rules on hand-made cases", () => {
  // a toy vocabulary: the 256 bytes, then "th" (256), "the" (257), " the" (258)
  const words = ["th", "the", " the"].map((w) => enc.encode(w));
  const vocab = 259, maxLen = 4;
  const table = new Int32Array(vocab * maxLen), lens = new Int32Array(vocab);
  for (let t = 0; t < 256; t++) (table[t * maxLen] = t), (lens[t] = 1);
  words.forEach((w, i) => (table.set(w, (256 + i) * maxLen), (lens[256 + i] = w.length)));
  const L = specLayout(4, 2, 3); // 4 draft bytes, 2 tokens, extend while at most 3 bytes are pending
  const ctl = new Int32Array(L.size), draft = new Int32Array(4), ids = new Int32Array(1);
  const setP = (p: string) => {
    ctl.fill(0);
    const b = enc.encode(p);
    ctl[L.at.pLen] = b.length;
    ctl.set(b, L.at.P);
  };
  const logits = new Float32Array(vocab);
  const choose = (j: number) =>
    draftChoose({ L, j, vocab, maxLen }, { logits, table, lens, ctl, draft, ids });
  // P = "th": " the" disagrees; "the" (best agreeing) extends P by "e"
  setP("th");
  logits.fill(0);
  logits[258] = 9, logits[257] = 5, logits[256] = 4;
  choose(0);
  assert.deepEqual([ids[0], ctl[L.at.nFull], draft[0], ctl[L.at.cov], ctl[L.at.pc]], [
    257,
    1,
    "e".charCodeAt(0),
    3,
    2,
  ]);
  // then nothing is pending: the best token overall, " the", all its 4 bytes, cut at 4 draft bytes
  choose(1);
  assert.deepEqual([ids[0], ctl[L.at.nFull], ctl[L.at.cov + 1]], [258, 5, 7]);
  assert.deepEqual(Array.from(draft), Array.from(enc.encode("e th")));
  // P = "the!" (4 > extendMax 3 pending): only tokens spelling a prefix; "the" consumes 3 bytes
  setP("the!");
  logits.fill(0);
  logits[258] = 9, logits[257] = 5;
  choose(0);
  assert.deepEqual([ids[0], ctl[L.at.pc], ctl[L.at.cov], ctl[L.at.nFull]], [257, 3, 3, 0]);
  // "!" is now the 1 pending byte: a token that starts with it extends it ("!" itself spells it: consume)
  logits[33] = 1;
  choose(1);
  assert.deepEqual([ids[0], ctl[L.at.pc], ctl[L.at.cov + 1]], [33, 4, 4]);

  // acceptDraft: P = "th" and a drafted "e" then " th" (tokens "the": cov 3, " the": cov 7); the verifier
  // (V = 256 per row) agrees with "e", " " and "t", then prefers "x", with "h" second
  const pOf = () => String.fromCharCode(...ctl.subarray(L.at.P, L.at.P + ctl[L.at.pLen]));
  const codes = (t: string) => Array.from(enc.encode(t));
  const V = 256,
    first = new Float32Array(V),
    rows = new Float32Array(4 * V),
    out = new Int32Array(L.outStride);
  draft.set(enc.encode("e th"));
  first[draft[0]] = 1;
  rows[0 * V + draft[1]] = 1, rows[1 * V + draft[2]] = 1, rows[2 * V + 120] = 1, rows[2 * V + 104] = 0.5;
  const accept = (beta: number) => {
    setP("th");
    ctl[L.at.nFull] = 5, ctl[L.at.cov] = 3, ctl[L.at.cov + 1] = 7;
    acceptDraft({ L, V, vocab: 256, beta, outOffset: 0 }, { first, rows, draft, ctl, out, ids });
  };
  accept(1);
  // a = 3 ("e", " ", "t"), c = "x"; the drafter keeps "the" (its text lies inside "th" + "e t" + "x"); P = " tx"
  assert.deepEqual(Array.from(out.subarray(0, 5)), [4, ...codes("e tx")]);
  assert.equal(out[L.draft + 2], 4, "4 bytes were drafted (5 cut to 4)");
  assert.deepEqual([ctl[L.at.a], ctl[L.at.w], ctl[L.at.c], ids[0]], [3, 1, 120, 120]);
  assert.equal(pOf(), " tx");
  assert.deepEqual([ctl[L.at.pc], ctl[L.at.nFull]], [0, 0], "the round's counters cleared");
  // beta = 2 accepts "h" (rank 1) too: all 4 drafted bytes, then c = the argmax after them (a row of zeros:
  // byte 0); " the" was cut, so the drafter still keeps only "the" and P = " th" + c
  accept(2);
  assert.deepEqual([ctl[L.at.a], ctl[L.at.w], ctl[L.at.c]], [4, 1, 0]);
  assert.deepEqual(Array.from(out.subarray(0, 6)), [5, ...codes("e th"), 0]);
  assert.equal(pOf(), " th\0");

  // copyIndexed: slot ctl[indexAt] of every block
  const src = Float32Array.from({ length: 2 * 3 * 2 }, (_, i) => i), dst = new Float32Array(4);
  ctl[L.at.w] = 2;
  copyIndexed({ rows: 2, count: 2, srcRowStride: 6, dstRowStride: 2, slotStride: 2, indexAt: L.at.w }, {
    src,
    dst,
    ctl,
  });
  assert.deepEqual(Array.from(dst), [4, 5, 10, 11]);
});
