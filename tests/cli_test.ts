/**
 * The command line, run as a user would (a subprocess): generate and score against the reference
 * fixtures, info, and bad input that must fail with one clear line naming the file and key.
 */
import assert from "node:assert/strict";
import { FIXTURES, runCli, tinyModelDir, trainedModelDir } from "./helpers.ts";
import { readSafetensors } from "../lib/io/safetensors.ts";
import { withDeadline } from "./deadline.ts";

const CLI = new URL("../lib/cli.ts", import.meta.url).pathname;
const reference = JSON.parse(await Deno.readTextFile(FIXTURES + "mambabyte-tiny-public.json"));
const inputIds = (await readSafetensors(FIXTURES + "mambabyte-tiny-public.expected.safetensors"))
  .tensors.get("input_ids")!.data as Int32Array;

const cli = runCli;

Deno.test("cli generate --greedy reproduces the trained reference's greedy continuation (raw bytes on stdout)", async () => {
  const { dir, prompt, greedy } = await trainedModelDir();
  const promptFile = `${dir}/prompt.bin`;
  await Deno.writeFile(promptFile, prompt);
  const r = await cli(
    "generate",
    "--model",
    dir,
    "--prompt-file",
    promptFile,
    "--max-bytes",
    "64",
    "--greedy",
  );
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual([...r.stdout], greedy);
  assert.match(r.stderr, /backend: wasm/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("cli generate with sampling is seeded: same seed, same bytes", async () => {
  const dir = await tinyModelDir();
  const prompt = `${dir}/prompt.txt`;
  await Deno.writeTextFile(prompt, "Once upon a time");
  const args = [
    "generate",
    "--model",
    dir,
    "--prompt-file",
    prompt,
    "--max-bytes",
    "20",
    "--temperature",
    "0.8",
    "--top-k",
    "40",
    "--top-p",
    "0.95",
    "--seed",
    "7",
  ];
  const a = await cli(...args), b = await cli(...args);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(a.stdout.length, 20);
  assert.deepEqual(a.stdout, b.stdout);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("cli score reproduces loss_next_byte_ce_nats", async () => {
  const dir = await tinyModelDir();
  const text = `${dir}/text.bin`;
  await Deno.writeFile(text, Uint8Array.from(inputIds));
  const r = await cli("score", "--model", dir, "--text", text);
  assert.equal(r.code, 0, r.stderr);
  const s = JSON.parse(new TextDecoder().decode(r.stdout));
  assert.equal(s.bytes, inputIds.length - 1);
  assert.ok(
    Math.abs(s.ce_nats - reference.loss_next_byte_ce_nats) < 1e-5 * reference.loss_next_byte_ce_nats,
    `${s.ce_nats} vs ${reference.loss_next_byte_ce_nats}`,
  );
  assert.ok(Math.abs(s.bits_per_byte - s.ce_nats / Math.LN2) < 1e-9);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("cli info prints the config and the parameter count", async () => {
  const dir = await tinyModelDir();
  const r = await cli("info", "--model", dir);
  assert.equal(r.code, 0, r.stderr);
  const info = JSON.parse(new TextDecoder().decode(r.stdout));
  assert.equal(info.config.d_model, 32);
  const expectedCount = Object.entries(reference.keys as Record<string, number[]>)
    .filter(([k]) => k !== "lm_head.weight") // tied to the embedding
    .reduce((s, [, shape]) => s + shape.reduce((a, b) => a * b, 1), 0);
  assert.equal(info.parameters, expectedCount);
  await Deno.remove(dir, { recursive: true });
});

/** Runs `score` on a damaged checkpoint; expects exit 2 and one line naming `file` (and `key`). */
async function expectCleanFailure(dir: string, file: RegExp, key?: RegExp) {
  const text = `${dir}/../text-${crypto.randomUUID()}.txt`;
  await Deno.writeTextFile(text, "hello world");
  const before = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  const r = await cli("score", "--model", dir, "--text", text);
  await Deno.remove(text);
  assert.equal(r.code, 2, `exit code (stderr: ${r.stderr})`);
  const lines = r.stderr.trim().split("\n").filter((l) => !l.startsWith("backend:"));
  assert.equal(lines.length, 1, `one line of error, got:\n${r.stderr}`);
  assert.match(lines[0], /^error: /);
  assert.match(lines[0], file);
  if (key) assert.match(lines[0], key);
  assert.doesNotMatch(r.stderr, / {4}at /, "no stack trace");
  assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), before, "nothing written");
}

Deno.test("cli: bad checkpoints fail with one clear message naming the file and key", async (t) => {
  await t.step("non-existent directory", async () => {
    const r = await cli("score", "--model", "/nonexistent/model", "--text", "/etc/hostname");
    assert.equal(r.code, 2);
    assert.match(r.stderr, /\/nonexistent\/model/);
  });
  await t.step("truncated safetensors", async () => {
    const dir = await tinyModelDir();
    const bytes = await Deno.readFile(`${dir}/model.safetensors`);
    await Deno.writeFile(`${dir}/model.safetensors`, bytes.subarray(0, bytes.length - 1000));
    await expectCleanFailure(dir, /model\.safetensors/, /truncated|past the end/);
    await Deno.remove(dir, { recursive: true });
  });
  await t.step("corrupt header", async () => {
    const dir = await tinyModelDir();
    const bytes = await Deno.readFile(`${dir}/model.safetensors`);
    bytes[10] = "#".charCodeAt(0); // inside the JSON header
    await Deno.writeFile(`${dir}/model.safetensors`, bytes);
    await expectCleanFailure(dir, /model\.safetensors/);
    await Deno.remove(dir, { recursive: true });
  });
  await t.step("unknown config field", async () => {
    const dir = await tinyModelDir();
    await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify({ ...reference.config, d_modle: 32 }));
    await expectCleanFailure(dir, /config\.json/, /d_modle/);
    await Deno.remove(dir, { recursive: true });
  });
  await t.step("mis-shaped key", async () => {
    const dir = await tinyModelDir();
    await Deno.writeTextFile(
      `${dir}/config.json`,
      JSON.stringify({ ...reference.config, ssm_cfg: { ...reference.config.ssm_cfg, d_state: 8 } }),
    );
    await expectCleanFailure(dir, /model\.safetensors|config\.json/, /A_log|x_proj/);
    await Deno.remove(dir, { recursive: true });
  });
  await t.step("missing key", async () => {
    const dir = await tinyModelDir();
    await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify({ ...reference.config, n_layer: 3 }));
    await expectCleanFailure(dir, /model\.safetensors/, /backbone\.layers\.2\./);
    await Deno.remove(dir, { recursive: true });
  });
  await t.step("missing text file", async () => {
    const dir = await tinyModelDir();
    const r = await cli("score", "--model", dir, "--text", `${dir}/nope.txt`);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /nope\.txt/);
    await Deno.remove(dir, { recursive: true });
  });
  await t.step("unknown option", async () => {
    const r = await cli("generate", "--model", "x", "--temprature", "1");
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown option --temprature/);
  });
});

Deno.test("cli reproduce --scale smoke runs the plan, records every run, prints the table, skips recorded runs", async () => {
  const tmp = await Deno.makeTempDir();
  const args = [
    "reproduce",
    "--scale",
    "smoke",
    "--results",
    `${tmp}/results`,
    "--runs-dir",
    `${tmp}/runs`,
    "--models",
    "mambabyte,mamba_subword",
    "--no-figures",
    "--no-notebooks",
  ];
  const r = await cli(...args);
  assert.equal(r.code, 0, r.stderr);
  const out = new TextDecoder().decode(r.stdout);
  // († after a value: within a bit per byte of the unigram entropy, as a smoke-sized model is)
  assert.match(out, /\| MambaByte \|.*\| \d\.\d{3}( †)? \(0\.930\) \|/, out);
  assert.match(out, /\| Mamba \(subword\) \|/);
  assert.match(r.stderr, /run 1\/2/);
  // then this reproduction's numbers beside the published records of the same runs
  assert.match(out, /This reproduction against the published records:/);
  assert.match(
    out,
    /\| MambaByte \| books \| \d\.\d{4} \| \d\.\d{4} \| [+−]\d\.\d{4} \| [^|]+ \| (within seed noise|differs|no seed spread) \|/,
  );
  const recs = (await Deno.readTextFile(`${tmp}/results/runs.jsonl`)).trim().split("\n").map((l) =>
    JSON.parse(l)
  );
  assert.deepEqual(recs.map((x) => x.labels.entry).sort(), ["mamba_subword", "mambabyte"]);
  for (const rec of recs) {
    assert.equal(rec.scale, "smoke");
    assert.equal(rec.eval.bytes, rec.model === "mambabyte" ? 16383 : rec.eval.bytes);
    assert.ok(rec.eval.bits_per_byte > 0 && rec.eval.bits_per_byte < 8, "a trained model beats 8 bits/byte");
    assert.ok(Math.abs(rec.train_flops / 2e10 - 1) < 0.1, `train FLOPs ${rec.train_flops} ~ the plan's 2e10`);
    for (const k of ["commit", "backend", "device", "time"]) assert.ok(rec.provenance[k], `provenance.${k}`);
    assert.equal(rec.provenance.backend, "wasm");
  }
  // the reproduction records its own time, stage by stage
  const [rep] = (await Deno.readTextFile(`${tmp}/results/reproduce.jsonl`)).trim().split("\n").map((l) =>
    JSON.parse(l)
  );
  assert.equal(rep.scale, "smoke");
  assert.equal(rep.runs_trained, 2);
  assert.ok(rep.stage_wall_s.training > 0 && rep.wall_s >= rep.stage_wall_s.training, JSON.stringify(rep));
  assert.ok(rep.provenance.commit);
  // the trained model is loadable
  const info = await cli("info", "--model", `${tmp}/runs/compute-matched/smoke/books/mambabyte/model`);
  assert.equal(info.code, 0, info.stderr);
  // a second reproduce skips the recorded runs
  const again = await cli(...args);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /2 already recorded, 0 to run/);
  assert.equal((await Deno.readTextFile(`${tmp}/results/runs.jsonl`)).trim().split("\n").length, 2);
  await Deno.remove(tmp, { recursive: true });
});

Deno.test("cli reproduce: SIGINT reaches the run's process, which saves a checkpoint; the plan stops with 130 and resumes next time", async () => {
  const tmp = await Deno.makeTempDir();
  const args = [
    "run",
    "-A",
    CLI,
    "reproduce",
    "--scale",
    "smoke",
    "--results",
    `${tmp}/results`,
    "--runs-dir",
    `${tmp}/runs`,
    "--models",
    "transformer,mambabyte",
    "--no-figures",
    "--no-notebooks",
    "--no-evaluations",
  ];
  const env = { MAMBABYTE_BACKEND: "wasm", NO_COLOR: "1" };
  const child = new Deno.Command(Deno.execPath(), { args, env, stdout: "null", stderr: "piped" }).spawn();
  // wait for the first training progress line of the first run (an event: a line), then interrupt the
  // parent only; one overall deadline for the interrupted part
  let stderr = "";
  const decoder = new TextDecoder();
  const reader = child.stderr.getReader();
  const status = await withDeadline("reproduce interrupted by SIGINT", 15 * 60_000, async () => {
    while (!/\nstep\s+\d+\//.test(stderr)) {
      const { value, done } = await reader.read();
      if (done) break;
      stderr += decoder.decode(value, { stream: true });
    }
    child.kill("SIGINT");
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      stderr += decoder.decode(value, { stream: true });
    }
    return await child.status;
  }).catch((e) => {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
    throw e;
  });
  assert.equal(status.code, 130, stderr);
  assert.match(
    stderr,
    /run compute-matched\/smoke\/books\/mambabyte: interrupted at step \d+; checkpoint saved/,
  );
  assert.match(stderr, /reproduce: interrupted during compute-matched\/smoke\/books\/mambabyte/);
  assert.doesNotMatch(stderr, /run 2\/2/, "the plan stops: the next run does not start");
  const run = `${tmp}/runs/compute-matched/smoke/books/mambabyte`;
  assert.ok(
    (await Deno.stat(`${run}/checkpoint/trainer_state.json`)).isFile,
    "the interrupted run saved its checkpoint",
  );
  // the next reproduce resumes it and finishes the plan
  const again = await cli(...args.slice(3));
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /resuming from step \d+/);
  const recs = (await Deno.readTextFile(`${tmp}/results/runs.jsonl`)).trim().split("\n").map((l) =>
    JSON.parse(l)
  );
  assert.deepEqual(recs.map((x) => x.labels.entry).sort(), ["mambabyte", "transformer"]);
  await Deno.remove(tmp, { recursive: true });
});

Deno.test({
  name: "cli train --engine native trains MambaByte on the engine and records it, and MegaByte too",
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "cli-engine-" });
    try {
      const base = ["train", "--model", "mambabyte", "--size", "tiny", "--data", "books", "--scale", "smoke"];
      const rest = ["--batch", "2", "--length", "64", "--warmup", "1", "--eval-bytes", "600", "--name", "e"];
      const dirs = ["--runs-dir", `${tmp}/runs`, "--results", `${tmp}/results`];
      const r = await cli(...base, "--steps", "4", ...rest, ...dirs, "--engine", "native");
      assert.equal(r.code, 0, r.stderr);
      // the command line's default backend on a machine without a GPU is wasm: the CPU engine
      assert.match(r.stderr, /training on the native \(wasm: WebAssembly SIMD, \d+ threads\) engine/);
      const rec = JSON.parse((await Deno.readTextFile(`${tmp}/results/runs.jsonl`)).trim());
      assert.match(rec.engine, /^native \(wasm: /);
      assert.equal(rec.steps, 4);
      assert.ok(rec.eval.bits_per_byte > 0 && rec.eval.bits_per_byte < 9, `bpb ${rec.eval.bits_per_byte}`);
      const state = JSON.parse(await Deno.readTextFile(`${tmp}/runs/e/checkpoint/trainer_state.json`));
      assert.equal(state.adam_step, 4);
      // MegaByte trains on the engine too (every family does)
      const t = await cli(
        "train",
        "--model",
        "megabyte",
        "--size",
        "tiny",
        "--data",
        "books",
        "--scale",
        "smoke",
        "--steps",
        "1",
        ...dirs,
        "--name",
        "t",
        "--engine",
        "native",
      );
      assert.equal(t.code, 0, t.stderr);
      assert.match(t.stderr, /training on the native \(wasm: WebAssembly SIMD, \d+ threads\) engine/);
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
