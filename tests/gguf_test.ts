/**
 * `export --format gguf`: the trained reference MambaByte (mamba_ssm's checkpoint, tests/fixtures/reference)
 * written as GGUF, then (1) read back: the metadata llama.cpp's mamba needs and every tensor as llama.cpp's
 * converter maps it; (2) run by llama.cpp itself (node-llama-cpp's prebuilt library through
 * tests/reference/llama_logits.c, installed by `deno task setup --with-llama`, which the test task runs):
 * its logits over the fixture's 64 bytes equal mamba_ssm's own (the fixture's expected logits) to 1e-5
 * relative L2. llama.cpp is an implementation independent of this project and of the fixture's generator.
 */
import assert from "node:assert/strict";
import { main } from "../lib/cli.ts";
import { decodeGguf, encodeGguf, GgmlType, GgufValueType } from "../lib/io/gguf.ts";
import { byteCharacters } from "../lib/models/gguf_export.ts";
import { readCheckpoint } from "../lib/models/checkpoint.ts";
import { readSafetensors, toFloat32 } from "../lib/io/safetensors.ts";
import { llamaPaths } from "../lib/setup.ts";
import { FIXTURES, relL2, trainedModelDir } from "./helpers.ts";

const STEM = "mambabyte-trained-public";

/** The trained reference checkpoint in a temporary directory and the CLI's export of it to `tmp`. */
async function exportTrained(tmp: string): Promise<{ model: string; gguf: string }> {
  const gguf = `${tmp}/model.gguf`;
  const model = (await trainedModelDir()).dir;
  await Deno.rename(model, `${tmp}/checkpoint`);
  const code = await main(["export", "--model", `${tmp}/checkpoint`, "--format", "gguf", "--out", gguf]);
  assert.equal(code, 0);
  return { model: `${tmp}/checkpoint`, gguf };
}

Deno.test("export --format gguf: llama.cpp's mamba metadata, byte vocabulary and tensors as its converter maps them", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "gguf-" });
  try {
    const { model, gguf } = await exportTrained(tmp);
    const file = decodeGguf(await Deno.readFile(gguf));
    const meta = (k: string) => file.metadata.get(k)?.value;
    assert.equal(meta("general.architecture"), "mamba");
    assert.equal([...file.metadata.keys()][0], "general.architecture");
    assert.equal(meta("mamba.embedding_length"), 64);
    assert.equal(meta("mamba.block_count"), 2);
    assert.equal(meta("mamba.ssm.inner_size"), 128);
    assert.equal(meta("mamba.ssm.state_size"), 16);
    assert.equal(meta("mamba.ssm.conv_kernel"), 4);
    assert.equal(meta("mamba.ssm.time_step_rank"), 4); // ceil(64 / 16)
    assert.equal(file.metadata.get("mamba.block_count")?.type, GgufValueType.UINT32);
    assert.equal(meta("tokenizer.ggml.model"), "gpt2");
    // every byte a token of its own: GPT-2's printable character of the byte (space is "Ġ", U+0120)
    const tokens = meta("tokenizer.ggml.tokens") as unknown as string[];
    assert.equal(tokens.length, 256);
    assert.equal(new Set(tokens).size, 256);
    assert.equal(tokens[32], "\u0120");
    assert.equal(tokens[65], "A");
    assert.deepEqual(tokens, byteCharacters());
    assert.equal(meta("tokenizer.ggml.add_bos_token"), false);

    assert.equal(meta("general.name"), "checkpoint");
    const ckpt = await readCheckpoint(model);
    const want = (key: string) => toFloat32(ckpt.tensors.get(key)!);
    const byName = new Map(file.tensors.map((t) => [t.name, t]));
    assert.equal(file.tensors.length, 1 + 2 * 10 + 1); // tied head: no output.weight
    assert.ok(file.tensors.every((t) => t.type === GgmlType.F32));
    assert.deepEqual(byName.get("token_embd.weight")!.shape, [256, 64]);
    assert.deepEqual(byName.get("token_embd.weight")!.data, want("backbone.embedding.weight"));
    assert.deepEqual(byName.get("blk.1.ssm_in.weight")!.shape, [256, 64]);
    assert.deepEqual(byName.get("blk.1.ssm_in.weight")!.data, want("backbone.layers.1.mixer.in_proj.weight"));
    assert.deepEqual(byName.get("blk.0.ssm_conv1d.weight")!.shape, [128, 4]); // (e, 1, k) squeezed
    assert.deepEqual(
      byName.get("blk.0.ssm_conv1d.weight")!.data,
      want("backbone.layers.0.mixer.conv1d.weight"),
    );
    // A = -exp(A_log), rounded once to float32
    const aLog = want("backbone.layers.1.mixer.A_log");
    assert.deepEqual(byName.get("blk.1.ssm_a")!.data, aLog.map((x) => -Math.exp(x)));
    assert.deepEqual(byName.get("output_norm.weight")!.data, want("backbone.norm_f.weight"));
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("export --format gguf: llama.cpp runs the file and its logits equal mamba_ssm's (1e-5 relative L2)", async () => {
  const { bins, driver } = llamaPaths();
  assert.ok(
    await Deno.stat(driver).then(() => true, () => false),
    `${driver} is missing: run deno task setup --with-llama (the test task does)`,
  );
  const tmp = await Deno.makeTempDir({ prefix: "gguf-llama-" });
  try {
    const { gguf } = await exportTrained(tmp);
    const expected = await readSafetensors(`${FIXTURES}${STEM}.expected.safetensors`);
    const ids = expected.tensors.get("input_ids")!.data as Int32Array;
    const mambaSsm = toFloat32(expected.tensors.get("logits")!);
    await Deno.writeFile(`${tmp}/ids.i32`, new Uint8Array(ids.buffer, ids.byteOffset, ids.byteLength));
    const run = await new Deno.Command(driver, {
      args: ["logits", bins, gguf, `${tmp}/ids.i32`, `${tmp}/out.f32`],
    })
      .output();
    assert.equal(run.code, 0, new TextDecoder().decode(run.stderr));
    const llama = new Float32Array((await Deno.readFile(`${tmp}/out.f32`)).buffer);
    assert.equal(llama.length, mambaSsm.length); // (64 positions, 256 bytes)
    const err = relL2(llama, mambaSsm);
    assert.ok(err < 1e-5, `llama.cpp vs mamba_ssm logits: relative L2 ${err}`);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("gguf: the reader refuses a damaged file with one line naming it; scalar and array values round-trip", () => {
  const metadata = new Map(
    [
      ["general.architecture", { type: GgufValueType.STRING, value: "mamba" }],
      ["x.u64", { type: GgufValueType.UINT64, value: 5n }],
      ["x.f64", { type: GgufValueType.FLOAT64, value: 0.1 }],
      ["x.list", { type: GgufValueType.ARRAY, elementType: GgufValueType.INT32, value: [-1, 2] }],
    ] as const,
  );
  const tensors = [{ name: "t", shape: [2, 3], type: GgmlType.F32, data: Float32Array.of(1, 2, 3, 4, 5, 6) }];
  // deno-lint-ignore no-explicit-any
  const bytes = encodeGguf(new Map(metadata as any), tensors);
  // the tensor's dims are stored fastest axis first: ne = [3, 2]; its data starts 32-byte aligned
  const back = decodeGguf(bytes);
  assert.deepEqual(back.tensors[0].shape, [2, 3]);
  assert.deepEqual(back.tensors[0].data, tensors[0].data);
  assert.equal(back.metadata.get("x.u64")?.value, 5n);
  assert.equal(back.metadata.get("x.f64")?.value, 0.1);
  assert.deepEqual(back.metadata.get("x.list")?.value, [-1, 2]);
  assert.throws(
    () => decodeGguf(bytes.subarray(0, bytes.length - 20), "cut.gguf"),
    /^Error: cut\.gguf: .*runs past/,
  );
  const bad = bytes.slice();
  bad[0] = 0;
  assert.throws(() => decodeGguf(bad, "bad.gguf"), /bad\.gguf: not a readable GGUF file: magic/);
});
