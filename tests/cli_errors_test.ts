/**
 * The command line against hostile input, run as a user would (subprocesses): every foreseeable error is
 * one line on stderr with a non-zero exit and no stack trace; --help on every command and task names every
 * option; non-finite weights or results stop score, eval and generate with a line naming the tensor (and
 * nothing is recorded); a closed stdout ends generate quietly; score reads any family's checkpoint and
 * agrees with eval; long scoring reports progress.
 */
import assert from "node:assert/strict";
import { tinyModelDir, useBackend } from "./helpers.ts";
import "../lib/models/mod.ts";
import { createModel, saveModel } from "../lib/models/registry.ts";
import { readSafetensors, writeSafetensors } from "../lib/io/safetensors.ts";
import { domainText } from "../lib/runs/experiment.ts";
import { PRESETS } from "../lib/models/presets.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const CLI = `${ROOT}lib/cli.ts`;
const ENV = { MAMBABYTE_BACKEND: "wasm", NO_COLOR: "1" };
const dec = new TextDecoder();

interface Ran {
  code: number;
  stdout: Uint8Array;
  stderr: string;
}

async function deno(args: string[], env: Record<string, string> = {}): Promise<Ran> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: { ...ENV, ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: out.stdout, stderr: dec.decode(out.stderr) };
}

const cli = (...args: string[]) => deno(["run", "-A", CLI, ...args]);

/** stderr without the informational lines (the backend chosen, deno task's echo of the command). */
function errorLines(stderr: string): string[] {
  return stderr.split("\n").filter((l) => l.trim() && !/^backend: |^Task /.test(l));
}

/** One line on stderr starting "error: " and matching `pattern`, a non-zero exit, no stack trace. */
function assertOneLine(r: Ran, pattern: RegExp, what: string): void {
  assert.notEqual(r.code, 0, `${what}: exit status (stderr: ${r.stderr})`);
  assert.doesNotMatch(r.stderr, / {4}at |Uncaught/, `${what}: no stack trace:\n${r.stderr}`);
  const lines = errorLines(r.stderr);
  assert.equal(lines.length, 1, `${what}: one line of error, got:\n${r.stderr}`);
  assert.match(lines[0], /^error: /, what);
  assert.match(lines[0], pattern, what);
}

/** A copy of the tiny reference MambaByte whose tensor `key` has `value` at index 5 (all of it: `all`). */
async function damagedModel(key: string, value: number, all = false): Promise<string> {
  const dir = await tinyModelDir();
  const sf = await readSafetensors(`${dir}/model.safetensors`);
  const t = sf.tensors.get(key)!;
  const data = Float32Array.from(t.data as Float32Array);
  if (all) data.fill(value);
  else data[5] = value;
  const tensors = new Map([...sf.tensors].map(([k, v]) => [k, k === key ? { ...v, data } : v]));
  await writeSafetensors(`${dir}/model.safetensors`, tensors, sf.metadata);
  return dir;
}

const TENSOR = "backbone.layers.1.mixer.out_proj.weight";

Deno.test("cli: a NaN weight stops score, eval and generate with one line naming the tensor; nothing is recorded", async () => {
  const dir = await damagedModel(TENSOR, NaN);
  const text = `${dir}/text.txt`, prompt = `${dir}/prompt.txt`, results = `${dir}/results`;
  await Deno.writeTextFile(text, "hello world, a text to score");
  await Deno.writeTextFile(prompt, "Once upon a time");
  try {
    const named = new RegExp(
      `model\\.safetensors: tensor "${TENSOR.replaceAll(".", "\\.")}" holds 1 non-finite`,
    );
    const score = await cli("score", "--model", dir, "--text", text);
    assertOneLine(score, named, "score");
    assert.equal(score.stdout.length, 0, "score prints no result");
    const gen = await cli("generate", "--model", dir, "--prompt-file", prompt, "--max-bytes", "5");
    assertOneLine(gen, named, "generate");
    assert.equal(gen.stdout.length, 0, "generate emits no byte");
    const ev = await cli(
      "eval",
      "--model",
      dir,
      "--data",
      "books",
      "--scale",
      "smoke",
      "--max-bytes",
      "300",
      "--results",
      results,
    );
    assertOneLine(ev, named, "eval");
    assert.equal(await exists(`${results}/eval.jsonl`), false, "eval appends no record");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: finite weights whose outputs overflow: score and eval refuse the NaN loss, generate the NaN logits", async () => {
  const dir = await damagedModel(TENSOR, 3e38, true);
  const text = `${dir}/text.txt`, prompt = `${dir}/prompt.txt`, results = `${dir}/results`;
  await Deno.writeTextFile(text, "hello world, a text to score");
  await Deno.writeTextFile(prompt, "Once upon a time");
  try {
    const score = await cli("score", "--model", dir, "--text", text);
    assertOneLine(score, /loss is NaN on window 1 of 1/, "score");
    assert.equal(score.stdout.length, 0, "no JSON with bits_per_byte null");
    const ev = await cli(
      "eval",
      "--model",
      dir,
      "--data",
      "books",
      "--scale",
      "smoke",
      "--max-bytes",
      "300",
      "--results",
      results,
    );
    assertOneLine(ev, /loss is NaN/, "eval");
    assert.equal(await exists(`${results}/eval.jsonl`), false, "eval appends no record");
    const gen = await cli(
      "generate",
      "--model",
      dir,
      "--prompt-file",
      prompt,
      "--max-bytes",
      "5",
      "--greedy",
    );
    assertOneLine(gen, /logits are not finite/, "generate");
    assert.equal(gen.stdout.length, 0, "no byte drawn from NaN logits");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("cli: bad numbers, unknown options, missing values, wrong files and models are one line each", async () => {
  const dir = await tinyModelDir();
  const text = `${dir}/text.txt`, prompt = `${dir}/prompt.txt`, empty = `${dir}/empty.txt`;
  await Deno.writeTextFile(text, "hello world");
  await Deno.writeTextFile(prompt, "Once");
  await Deno.writeTextFile(empty, "");
  const notJson = await Deno.makeTempDir();
  await Deno.writeTextFile(`${notJson}/config.json`, "{ not json");
  const gen = ["generate", "--model", dir, "--prompt-file", prompt];
  const score = ["score", "--model", dir, "--text", text];
  const cases: [string[], RegExp, Record<string, string>?][] = [
    [[...gen, "--max-bytes", "abc"], /--max-bytes must be an integer from 1 to 1e\+12 \(got "abc"\)/],
    [[...gen, "--max-bytes", "-1"], /--max-bytes must be .* \(got "-1"\)/],
    [[...gen, "--max-bytes", "1e15"], /--max-bytes must be .* \(got "1e15"\)/],
    [[...gen, "--max-bytes", "2.5"], /--max-bytes must be/],
    [[...gen], /--max-bytes is required/],
    [[...gen, "--max-bytes", "5", "--top-p", "2"], /--top-p must be in \(0, 1\]/],
    [[...gen, "--max-bytes", "5", "--temperature", "0"], /--temperature must be a number > 0/],
    [[...gen, "--max-bytes", "5", "--seed", "1e300"], /--seed must be an integer/],
    [[...gen, "--max-bytes", "5", "--temprature", "1"], /unknown option --temprature \(known: /],
    [[...gen, "--max-bytes"], /--max-bytes needs a value/],
    [[...gen, "--max-bytes", "5", "--greedy=yes"], /--greedy takes no value/],
    [["generate", "--model", dir, "--prompt-file", empty, "--max-bytes", "5"], /empty\.txt is empty/],
    [
      ["generate", "--model", dir, "--prompt-file", dir, "--max-bytes", "5"],
      /cannot read the prompt: is a directory/,
    ],
    [
      ["generate", "--model", dir, "--prompt-file", `${dir}/nope`, "--max-bytes", "5"],
      /nope: cannot read the prompt: no such file/,
    ],
    [
      ["generate", "--model", text, "--prompt-file", prompt, "--max-bytes", "5"],
      /text\.txt: not a directory/,
    ],
    [[...score, "--window", "abc"], /score: --window must be a positive integer \(got "abc"\)/],
    [[...score, "--window", "0"], /--window must be a positive integer/],
    [[...score, "--batch", "-3"], /--batch must be a positive integer/],
    [[...score, "--progress-every", "x"], /--progress-every must be a number of seconds/],
    [[...score, "extra"], /unexpected argument "extra"/],
    [["score", "--model", "--text", text], /--model needs a value/],
    [["score", "--model", dir, "--text", dir], /cannot read the text: is a directory/],
    [["score", "--model", dir, "--text", empty], /needs at least 2 bytes/],
    [
      ["score", "--model", `${dir}/nope`, "--text", text],
      /nope: cannot open the model directory: no such file/,
    ],
    [["score", "--model", notJson, "--text", text], /config\.json: invalid JSON/],
    [["score", "--model", dir], /--text is required/],
    [[...score, "--backend", "foo"], /--backend must be one of .* \(got "foo"\)|unknown backend "foo"/],
    [[...score], /unknown backend "foo"/, { MAMBABYTE_BACKEND: "foo" }],
    [["info", "--model", `${dir}/nope`], /nope: cannot open checkpoint directory/],
    [["eval", "--model", dir, "--data", "nope"], /--data must be one of books, stories, prose, latex, code/],
    [
      ["eval", "--model", dir, "--data", "books", "--scale", "toString"],
      /--scale \(or SCALE\) must be one of/,
    ],
    [["eval", "--model", dir, "--data", "books", "--split", "train"], /--split must be test or validation/],
    [["eval", "--model", dir, "--data", "books", "--max-bytes", "1"], /--max-bytes must be an integer >= 2/],
    [
      ["train", "--model", "mambabyte", "--size", "huge", "--data", "books", "--steps", "1"],
      /has no size "huge"/,
    ],
    [
      ["train", "--model", "mambabyte", "--size", "tiny", "--data", "books", "--steps", "abc"],
      /--steps must be/,
    ],
    [["reproduce", "--scale", "huge"], /--scale \(or SCALE\) must be one of/],
    [["bogus"], /unknown command "bogus"/],
  ];
  try {
    for (const [args, pattern, env] of cases) {
      const r = await deno(["run", "-A", CLI, ...args], env);
      assertOneLine(r, pattern, args.join(" "));
      assert.equal(r.code, 2, `${args.join(" ")}: a usage or input error exits 2`);
    }
    // a byte Transformer generates (on the engine); with --speculative it is refused, as is PerceiverAR
    const tdir = await trainedTransformer();
    const ok = await cli(
      "generate",
      "--model",
      tdir,
      "--prompt-file",
      prompt,
      "--max-bytes",
      "5",
      "--greedy",
    );
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout.length, 5, "five bytes on stdout");
    const spec = await cli(
      "generate",
      ...["--model", tdir, "--prompt-file", prompt, "--max-bytes", "5", "--speculative", "--drafter", tdir],
    );
    assertOneLine(
      spec,
      /--speculative verifies with MambaByte; .* holds a transformer/,
      "speculative transformer",
    );
    const sdir = await Deno.makeTempDir({ prefix: "cli-errors-perceiver-" });
    await useBackend("cpu");
    await saveModel(createModel("perceiver_ar", { d_model: 16, n_layer: 1, num_latents: 4 }), sdir);
    const r = await cli("generate", "--model", sdir, "--prompt-file", prompt, "--max-bytes", "5");
    assertOneLine(
      r,
      /holds a perceiver_ar model; generate decodes byte models: mambabyte, transformer/,
      "perceiver",
    );
    await Deno.remove(sdir, { recursive: true });
    const debug = await cli("score", "--model", dir, "--text", text, "--window", "x", "--debug");
    assert.match(debug.stderr, /UsageError: score: --window must be/);
    assert.match(debug.stderr, / {4}at /, "--debug prints the stack");
  } finally {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(notJson, { recursive: true });
  }
});

/** A help text's option entries: "--name" -> its lines (the option's line and the wrapped ones under it). */
function optionBlocks(help: string): Map<string, string> {
  const blocks = new Map<string, string>();
  let current: string | undefined;
  for (const line of help.split("\n")) {
    const m = /^ {2}(--[a-z][a-z0-9-]*)/.exec(line);
    if (m) {
      current = m[1];
      blocks.set(current, line);
    } else if (current && /^ {4,}\S/.test(line)) blocks.set(current, `${blocks.get(current)}\n${line}`);
    else current = undefined;
  }
  return blocks;
}

/** Options a command accepts, read from its own "unknown option" error (so the test cannot drift). */
async function acceptedOptions(command: string): Promise<string[]> {
  const r = await cli(command, "--zzz-not-an-option");
  const known = /\(known: (.*)\)/.exec(r.stderr)?.[1];
  assert.ok(known, `${command}: the unknown-option error lists the known options:\n${r.stderr}`);
  return known.split(", ");
}

Deno.test("cli: --help and -h on every subcommand name every option it accepts; train lists the presets", async () => {
  for (const command of ["info", "score", "generate", "train", "eval", "reproduce"]) {
    const options = await acceptedOptions(command);
    for (const flag of ["--help", "-h"]) {
      const r = await cli(command, flag);
      assert.equal(r.code, 0, `${command} ${flag}: ${r.stderr}`);
      const help = dec.decode(r.stdout);
      assert.match(help, new RegExp(`^usage: deno task mambabyte ${command}`), command);
      const blocks = optionBlocks(help);
      for (const o of [...options, "--debug"]) {
        const block = blocks.get(o);
        assert.ok(block, `${command} --help lists ${o}`);
        // "--name ARG  text...": described, and an option that takes a value says its default
        assert.match(block, new RegExp(`^  ${o}( \\S+)? {2,}\\S`), `${command} --help describes ${o}`);
        if (/^ {2}--\S+ [A-Z]/.test(block)) {
          assert.match(block, /default|required/, `${command} --help gives ${o}'s default:\n${block}`);
        }
      }
    }
  }
  const train = dec.decode((await cli("train", "--help")).stdout);
  for (const [kind, sizes] of Object.entries(PRESETS)) {
    assert.match(train, new RegExp(`^  ${kind}:$`, "m"), `train --help lists ${kind}'s presets`);
    for (const size of Object.keys(sizes!)) {
      assert.match(train, new RegExp(`^    ${size} +\\w+ \\d+`, "m"), `${kind} ${size}`);
    }
  }
  const top = await cli("--help");
  assert.equal(top.code, 0);
  assert.match(dec.decode(top.stdout), /--debug/);
});

/** Every task and script entry point: --help exits 0 naming each option; an unknown option is one line. */
Deno.test("tasks: --help on bench, figures, data, notebooks, setup, the stages and the bench scripts", async () => {
  const entries: [string[], string[]][] = [
    [["task", "mambabyte", "--help"], ["--backend", "--debug"]],
    [["task", "bench", "--help"], [
      "--suite",
      "--backends",
      "--impls",
      "--passes",
      "--shape",
      "--repeats",
      "--budget",
      "--total-budget",
      "--probe-length",
      "--quick",
      "--out",
    ]],
    [["task", "figures", "--help"], ["--results", "--out", "--scale", "--only", "--list", "--no-readme"]],
    [["task", "data", "--help"], [
      "--domain",
      "--force",
      "--verify-sources",
      "--check",
      "--write-sample",
      "--out",
      "--cache",
      "--samples",
    ]],
    [["task", "notebooks", "--help"], ["--scale", "--timeout", "--out", "--no-html", "--force"]],
    [["task", "setup", "--help"], [
      "--quiet",
      "--with-chromium",
      "--with-notebooks",
      "--with-lab",
      "--with-webgpu",
    ]],
    [["run", "-A", "lib/runs/stages.ts", "--help"], [
      "--scale",
      "--results",
      "--runs-dir",
      "--domain",
      "--kinds",
      "--force",
      "--max-tokens",
      "--batch-tokens",
      "--max-bytes",
      "--engine",
    ]],
    [["run", "-A", "lib/bench/train.ts", "--help"], ["--backend", "--shape", "--steps"]],
    [["run", "-A", "lib/bench/decode.ts", "-h"], [
      "--backend",
      "--contexts",
      "--steps",
      "--models",
      "--budget-s",
      "--verifier",
      "--drafter",
      "--spec-bytes",
      "--prompt-file",
      "--engine-only",
      "--no-record",
    ]],
    [["run", "-A", "lib/bench/golden.ts", "--help"], ["--backends", "--out"]],
    [["run", "-A", "lib/bench/gpu.ts", "--help"], [
      "--quick",
      "--out",
      "--shapes",
      "--fwd-only",
      "--no-scan",
      "--no-train",
      "--variants",
      "--profile-train",
      "--gemm",
      "--models",
      "--engines",
    ]],
    [["run", "-A", "lib/bench/gpu_host_profile.ts", "--help"], ["--backend", "--shapes", "--calls", "--out"]],
    [["run", "-A", "lib/bench/engine.ts", "--help"], [
      "--shape",
      "--steps",
      "--warmup",
      "--readback-every",
      "--profile",
      "--backend",
      "--allow-software",
      "--vocab",
      "--split-k",
      "--lr",
      "--out",
      "--model",
      "--attention",
    ]],
    [["run", "-A", "lib/bench/extrapolation_engine.ts", "--help"], [
      "--model",
      "--shape",
      "--context",
      "--multiples",
      "--max-tokens",
      "--text",
      "--backend",
      "--out",
    ]],
  ];
  for (const [args, options] of entries) {
    const r = await deno(args);
    const what = args.join(" ");
    assert.equal(r.code, 0, `${what}: ${r.stderr}`);
    const help = dec.decode(r.stdout);
    for (const o of options) assert.match(help, new RegExp(`${o}\\b`), `${what} names ${o}`);
    if (!what.includes("setup")) assert.match(help, /default/, `${what} gives defaults`); // setup: switches only
    // an option the help does not name is refused in one line
    const bad = await deno([...args.slice(0, -1), "--zzz-not-an-option"]);
    assert.notEqual(bad.code, 0, `${what}: an unknown option fails`);
    assert.doesNotMatch(bad.stderr, / {4}at |Uncaught/, `${what}: no stack trace`);
    assert.equal(errorLines(bad.stderr).length, 1, `${what}: one line:\n${bad.stderr}`);
    assert.match(bad.stderr, /--zzz-not-an-option/);
  }
});

Deno.test("lib/runs/stages.ts: a bad --batch-tokens, --max-tokens or --scale is one line naming it", async () => {
  const cases: [string[], RegExp][] = [
    [["--batch-tokens", "0"], /--batch-tokens must be a positive integer \(got "0"\)/],
    [["--batch-tokens", "2.5"], /--batch-tokens must be a positive integer \(got "2.5"\)/],
    [["--max-tokens", "x"], /--max-tokens must be a positive integer \(got "x"\)/],
    [["--scale", "huge"], /--scale must be one of smoke, small, gpu, large \(got "huge"\)/],
  ];
  for (const [args, pattern] of cases) {
    const r = await deno(["run", "-A", "lib/runs/stages.ts", "extrapolation", ...args]);
    const what = args.join(" ");
    assert.equal(r.code, 2, `${what}: exit status (stderr: ${r.stderr})`);
    assert.doesNotMatch(r.stderr, / {4}at |Uncaught/, `${what}: no stack trace`);
    const lines = errorLines(r.stderr);
    assert.equal(lines.length, 1, `${what}: one line:\n${r.stderr}`);
    assert.match(lines[0], pattern, what);
  }
});

Deno.test("cli generate: a reader that closes the pipe (| head -c 10) ends it quietly, without allocating --max-bytes", async () => {
  const dir = await tinyModelDir();
  const prompt = `${dir}/prompt.txt`;
  await Deno.writeTextFile(prompt, "Once upon a time");
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", CLI, "generate", "--model", dir, "--prompt-file", prompt, "--max-bytes", "1e12"],
      env: ENV,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(child.stderr).text();
    const reader = child.stdout.getReader();
    let got = 0;
    while (got < 10) {
      const { value, done } = await reader.read();
      if (done) break;
      got += value.length;
    }
    await reader.cancel(); // the reader goes away, as head does
    const timer = setTimeout(() => child.kill("SIGKILL"), 300_000); // one generous bound, never expected
    const status = await child.status;
    clearTimeout(timer);
    const err = await stderr;
    assert.ok(got >= 10, `bytes streamed before the pipe closed (stderr: ${err})`);
    assert.ok(status.code === 0 || status.code === 141, `exit ${status.code}: ${err}`);
    assert.doesNotMatch(err, /Uncaught|BrokenPipe| {4}at /, err);
    assert.deepEqual(errorLines(err), [], `nothing but the backend line on stderr:\n${err}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A tiny byte Transformer trained for 2 steps by `train` (its model/ directory, as train writes it). */
let trained: Promise<string> | undefined;
function trainedTransformer(): Promise<string> {
  return trained ??= (async () => {
    const tmp = await Deno.makeTempDir({ prefix: "cli-errors-train-" });
    const r = await cli(
      "train",
      "--model",
      "transformer",
      "--size",
      "tiny",
      "--data",
      "books",
      "--scale",
      "smoke",
      "--steps",
      "2",
      "--batch",
      "2",
      "--length",
      "64",
      "--warmup",
      "1",
      "--eval-bytes",
      "600",
      "--name",
      "t",
      "--runs-dir",
      `${tmp}/runs`,
      "--results",
      `${tmp}/results`,
    );
    assert.equal(r.code, 0, r.stderr);
    return `${tmp}/runs/t/model`;
  })();
}

Deno.test("cli score reads a baseline checkpoint written by train and equals eval's bits per byte on the same text", async () => {
  const model = await trainedTransformer();
  const tmp = await Deno.makeTempDir();
  try {
    const bytes = 3000, window = 64;
    const ev = await cli(
      "eval",
      "--model",
      model,
      "--data",
      "books",
      "--scale",
      "smoke",
      "--max-bytes",
      String(bytes),
      "--window",
      String(window),
      "--results",
      tmp,
    );
    assert.equal(ev.code, 0, ev.stderr);
    const evalRecord = JSON.parse(dec.decode(ev.stdout));
    const file = `${tmp}/test.bin`;
    await Deno.writeFile(file, (await domainText("books", "smoke", "test")).test.subarray(0, bytes));
    const sc = await cli("score", "--model", model, "--text", file, "--window", String(window));
    assert.equal(sc.code, 0, sc.stderr);
    const s = JSON.parse(dec.decode(sc.stdout));
    assert.equal(s.model_kind, "transformer");
    assert.equal(s.bytes, evalRecord.bytes);
    assert.ok(Number.isFinite(s.bits_per_byte) && s.bits_per_byte > 0);
    assert.ok(
      Math.abs(s.bits_per_byte - evalRecord.bits_per_byte) <= 1e-12 * evalRecord.bits_per_byte,
      `score ${s.bits_per_byte} vs eval ${evalRecord.bits_per_byte}`,
    );
    const recorded = (await Deno.readTextFile(`${tmp}/eval.jsonl`)).trim().split("\n").map((l) =>
      JSON.parse(l)
    );
    assert.equal(recorded.length, 1);
    assert.equal(recorded[0].bits_per_byte, evalRecord.bits_per_byte);
    const info = await cli("info", "--model", model);
    assert.equal(info.code, 0, info.stderr);
    assert.equal(JSON.parse(dec.decode(info.stdout)).kind, "transformer");
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("cli score shows progress on stderr for a multi-window text (windows done / total, bytes/s, ETA)", async () => {
  const dir = await tinyModelDir();
  const text = `${dir}/text.txt`;
  // 1537 bytes: 6 full windows of 256 predicted bytes
  await Deno.writeTextFile(text, "The quick brown fox jumps over the lazy dog. ".repeat(40).slice(0, 1537));
  try {
    const r = await cli(
      "score",
      "--model",
      dir,
      "--text",
      text,
      "--window",
      "256",
      "--batch",
      "2",
      "--progress-every",
      "0",
    );
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stderr.split("\n").filter((l) => l.startsWith("score "));
    // 6 windows of 256 bytes in batches of 2: a line per batch, the last one says how long it took
    assert.deepEqual(lines.map((l) => /: (\d+\/\d+) windows/.exec(l)?.[1]), ["2/6", "4/6", "6/6"], r.stderr);
    for (const l of lines.slice(0, -1)) assert.match(l, /\d+(\.\d)? (B|kB|MB)\/s, ETA \S+$/, l);
    assert.match(lines.at(-1)!, /\(100\.0%\), .*\/s, done in \S+$/);
    // the default off a terminal: a line every 10 s, none for a run this short; the score is unchanged
    const quiet = await cli("score", "--model", dir, "--text", text, "--window", "256");
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.deepEqual(quiet.stderr.split("\n").filter((l) => l.startsWith("score ")), []);
    const a = JSON.parse(dec.decode(r.stdout)), b = JSON.parse(dec.decode(quiet.stdout));
    // the same sum up to float32 rounding (each pass sums its windows in float32)
    assert.ok(
      Math.abs(a.bits_per_byte - b.bits_per_byte) < 1e-5 * b.bits_per_byte,
      "batching changes no score",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
