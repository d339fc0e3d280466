/**
 * Decoding on the native engine (lib/engine/decode.ts), on the kernels' plain-JS twins and on WebGPU
 * (Mesa's software adapter in CI), against mamba_ssm: the recurrent steps' logits equal mamba_ssm's
 * full-forward logits of the tiny reference model at every one of its 248 positions; greedy decoding on
 * the device (several steps per submission, ids fed back on the device) reproduces mamba_ssm's greedy
 * continuation of the trained reference model byte for byte, whatever the steps per submission; sequences
 * of a batch do not interfere; a decoded byte creates no GPU buffer.
 */
import assert from "node:assert/strict";
import { MambaDecoder } from "../lib/engine/decode.ts";
import type { EngineBackendName } from "../lib/engine/backend.ts";
import { parseMambaConfig } from "../lib/models/mamba_config.ts";
import { readSafetensors, toFloat32 } from "../lib/io/safetensors.ts";
import { REFERENCE_FIXTURES } from "../lib/paths.ts";
import { ENGINE_BACKENDS } from "./engine_helpers.ts";
import { relL2, trainedModelDir, useBackend } from "./helpers.ts";
import { loadPretrained } from "../lib/models/pretrained.ts";
import { disposeMambaLM } from "../lib/models/mamba.ts";
import { generate } from "../lib/decode/sample.ts";
import { Rng } from "../lib/util/rng.ts";

async function reference(stem: string) {
  const meta = JSON.parse(await Deno.readTextFile(`${REFERENCE_FIXTURES}${stem}.json`));
  const model = await readSafetensors(`${REFERENCE_FIXTURES}${stem}.model.safetensors`);
  const params = new Map([...model.tensors].map(([k, t]) => [k, toFloat32(t)]));
  const expected = await readSafetensors(`${REFERENCE_FIXTURES}${stem}.expected.safetensors`);
  return { meta, config: parseMambaConfig(meta.config), params, expected: expected.tensors };
}

/** The decoding backends: the twins (as "js") and WebGPU; the wasm engine's decode ops are the twins. */
const DECODE_BACKENDS = ENGINE_BACKENDS.filter((b): b is EngineBackendName => b === "js" || b === "webgpu");

for (const backend of DECODE_BACKENDS) {
  const create = (o: Omit<Parameters<typeof MambaDecoder.create>[0], "backend">) =>
    MambaDecoder.create({ ...o, backend, allowSoftwareGpu: true });

  Deno.test(`decode engine (${backend}): step by step, the logits of mamba_ssm's full forward at all 248 positions (the conv its own dispatch, and in in_proj's)`, async () => {
    const ref = await reference("mambabyte-tiny-public");
    const ids = ref.expected.get("input_ids")!.data as Int32Array; // (1, 249)
    const want = toFloat32(ref.expected.get("logits")!); // (1, 249, 256)
    for (const fusedConv of [false, true]) {
      const dec = await create({ config: ref.config, params: ref.params, fusedConv });
      try {
        let worst = 0;
        for (let t = 0; t < 248; t++) {
          const got = await dec.step([ids[t]]);
          const err = relL2(got, want.subarray(t * 256, (t + 1) * 256));
          worst = Math.max(worst, err);
          assert.ok(err < 1e-4, `position ${t}: logits rel err ${err} (conv in in_proj ${fusedConv})`);
        }
        assert.ok(worst > 0, "compared");
      } finally {
        dec.destroy();
      }
    }
  });

  Deno.test(`decode engine (${backend}): greedy on the device reproduces mamba_ssm's continuation (1, 5 and 8 steps per submission; batch 3)`, async () => {
    const ref = await reference("mambabyte-trained-public");
    const input = ref.expected.get("input_ids")!.data as Int32Array;
    const prompt = Array.from(input.subarray(0, ref.meta.prompt_bytes));
    const want = ref.meta.greedy_continuation as number[];
    for (const K of [1, 5, 8]) {
      const dec = await create({ config: ref.config, params: ref.params, stepsPerSubmit: K });
      try {
        for (const id of prompt.slice(0, -1)) await dec.feed([id]);
        const chunks: number[] = [];
        const got = await dec.greedy([prompt.at(-1)!], want.length, (ids) => void chunks.push(ids.length));
        assert.deepEqual(Array.from(got), want, `${K} steps per submission`);
        assert.equal(chunks.reduce((a, b) => a + b, 0), want.length, "every id streamed once");
      } finally {
        dec.destroy();
      }
    }
    // three sequences at once: the prompt, the prompt without its first 8 bytes, and the first row again;
    // rows 0 and 2 equal the single-sequence bytes, row 1 its own single-sequence decode
    const rows = [prompt, [...prompt.slice(8), ...Array(8).fill(32)], prompt];
    const one = async (p: number[]) => {
      const d = await create({ config: ref.config, params: ref.params, stepsPerSubmit: 4 });
      try {
        for (const id of p.slice(0, -1)) await d.feed([id]);
        return Array.from(await d.greedy([p.at(-1)!], 20));
      } finally {
        d.destroy();
      }
    };
    const dec = await create({ config: ref.config, params: ref.params, batch: 3, stepsPerSubmit: 4 });
    try {
      for (let t = 0; t < prompt.length - 1; t++) await dec.feed(rows.map((r) => r[t]));
      const got = await dec.greedy(rows.map((r) => r.at(-1)!), 20); // (20, 3)
      const column = (c: number) => Array.from({ length: 20 }, (_, t) => got[t * 3 + c]);
      assert.deepEqual(column(0), want.slice(0, 20));
      assert.deepEqual(column(2), want.slice(0, 20));
      assert.deepEqual(column(1), await one(rows[1]));
    } finally {
      dec.destroy();
    }
  });

  Deno.test(`decode engine (${backend}): reset returns to the empty state; a decoded byte creates no buffer`, async () => {
    const ref = await reference("mambabyte-tiny-public");
    const ids = ref.expected.get("input_ids")!.data as Int32Array;
    const dec = await create({ config: ref.config, params: ref.params, stepsPerSubmit: 4 });
    try {
      const first = await dec.step([ids[0]]);
      await dec.greedy([ids[1]], 12);
      dec.reset();
      assert.deepEqual(await dec.step([ids[0]]), first, "after reset, the first step's logits again");
      const before = { ...dec.backend.counters }, bytes = dec.backend.allocatedBytes;
      await dec.greedy([ids[1]], 40);
      assert.equal(dec.backend.allocatedBytes, bytes);
      if (backend === "webgpu") {
        const after = dec.backend.counters!;
        assert.equal(after.buffers, before.buffers, "buffers created while decoding 40 bytes");
        assert.equal(after.bindGroups, before.bindGroups, "bind groups created while decoding");
        assert.equal(after.submits - before.submits!, 10, "one submission per 4 bytes");
      }
    } finally {
      dec.destroy();
    }
  });

  Deno.test(`decode engine (${backend}): a pass of k ids equals k steps (logits and the state after); roll-back equals a fresh read of the prefix`, async () => {
    const ref = await reference("mambabyte-tiny-public");
    const ids = Array.from(ref.expected.get("input_ids")!.data as Int32Array);
    const want = toFloat32(ref.expected.get("logits")!); // mamba_ssm's logits at every position
    const dec = await create({ config: ref.config, params: ref.params });
    const fresh = await create({ config: ref.config, params: ref.params });
    try {
      for (const id of ids.slice(0, 20)) await dec.feed([id]);
      for (const k of [1, 5, 8]) {
        // a pass over ids 20 .. 20+k-1 from the state after 20 ids: row j = the logits after id 20 + j
        const got = await dec.pass(ids.slice(20, 20 + k));
        for (let j = 0; j < k; j++) {
          const err = relL2(
            got.subarray(j * 256, (j + 1) * 256),
            want.subarray((20 + j) * 256, (21 + j) * 256),
          );
          assert.ok(err < 1e-4, `pass of ${k}, row ${j}: rel err ${err}`);
        }
        // the state after the pass is the state after those k ids: the next step gives position 20 + k's logits
        const next = await dec.step([ids[20 + k]]);
        assert.ok(
          relL2(next, want.subarray((20 + k) * 256, (21 + k) * 256)) < 1e-4,
          `step after a pass of ${k}`,
        );
        // roll back into the pass: after a of its ids, the next step equals a fresh reader's
        for (const a of [0, Math.floor(k / 2), k]) {
          dec.reset();
          for (const id of ids.slice(0, 20)) await dec.feed([id]);
          await dec.pass(ids.slice(20, 20 + k));
          await dec.rollTo(a);
          const after = await dec.step([ids[20 + a]]);
          fresh.reset();
          for (const id of ids.slice(0, 20 + a)) await fresh.feed([id]);
          const base = await fresh.step([ids[20 + a]]);
          assert.ok(relL2(after, base) < 1e-5, `roll back to ${a} of ${k}: rel err ${relL2(after, base)}`);
        }
        dec.reset();
        for (const id of ids.slice(0, 20)) await dec.feed([id]);
      }
      await assert.rejects(() => dec.pass([]), /pass: 1\.\.8 ids/);
      await assert.rejects(() => dec.rollTo(9), /rollTo: 0\.\.\d+/);
    } finally {
      dec.destroy();
      fresh.destroy();
    }
  });

  Deno.test(`decode engine (${backend}): sampling on the device draws the CPU stepper's bytes for the same seed (temperature, top-k, top-p)`, async () => {
    await useBackend("wasm");
    const { dir, prompt } = await trainedModelDir();
    const model = await loadPretrained(dir);
    const ref = await reference("mambabyte-trained-public");
    try {
      const rules = [
        { temperature: 1, topK: 0, topP: 1, seed: 1 },
        { temperature: 0.7, topK: 20, topP: 1, seed: 2 },
        { temperature: 1.3, topK: 0, topP: 0.9, seed: 3 },
        { temperature: 1, topK: 40, topP: 0.95, seed: 4 },
      ];
      let distinct = 0;
      for (const rule of rules) {
        // the host path: the fused CPU stepper's logits, pickToken with the seeded Rng
        const want = Array.from(await generate(model, prompt, 30, { ...rule, stepper: "js" }));
        const { seed, ...sampling } = rule;
        const dec = await create({ config: ref.config, params: ref.params, stepsPerSubmit: 8, sampling });
        try {
          for (const id of prompt.subarray(0, -1)) await dec.feed([id]);
          const rng = new Rng(seed);
          const got = await dec.sample([prompt.at(-1)!], 30, () => rng.uniform()); // 3 submissions + 6 steps
          assert.deepEqual(Array.from(got), want, JSON.stringify(rule));
        } finally {
          dec.destroy();
        }
        const greedy = Array.from(await generate(model, prompt, 30, { greedy: true, stepper: "js" }));
        if (want.some((b, i) => b !== greedy[i])) distinct++;
      }
      assert.ok(distinct >= 3, "sampled text differs from greedy text (the rules were exercised)");
    } finally {
      disposeMambaLM(model);
      await Deno.remove(dir, { recursive: true });
    }
  });

  Deno.test(`decode engine (${backend}): logits that overflow stop greedy and sampled decoding with NonFiniteError`, async () => {
    const ref = await reference("mambabyte-tiny-public");
    const params = new Map(ref.params);
    // a final norm weight of 1e38 and a head 1e4 times larger: finite weights whose logits overflow
    params.set("backbone.norm_f.weight", params.get("backbone.norm_f.weight")!.map(() => 1e38));
    for (const name of ["backbone.embedding.weight", "lm_head.weight"]) {
      if (params.has(name)) params.set(name, params.get(name)!.map((x) => x * 1e4));
    }
    for (const sampling of [undefined, { temperature: 1, topK: 0, topP: 1 }]) {
      const dec = await create({ config: ref.config, params, stepsPerSubmit: 4, sampling });
      try {
        const run = sampling ? dec.sample([65], 10, () => 0.5) : dec.greedy([65], 10);
        await assert.rejects(run, (e: Error) => {
          assert.equal(e.name, "NonFiniteError");
          assert.match(e.message, /not finite at generated token 0; no token is emitted/);
          return true;
        });
      } finally {
        dec.destroy();
      }
    }
  });
}
