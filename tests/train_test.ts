/**
 * The trainer: a kill-and-resume run equals the uninterrupted run bit for bit (losses, weights, AdamW
 * moments, data position), in process and through the CLI (a real SIGTERM saves a checkpoint, SIGKILL at
 * any moment never leaves a half-written one); a non-finite loss stops the run before the update and keeps
 * the last good checkpoint; nextTokenLoss against a host cross-entropy; FLOP budgets; memory stays flat;
 * the CLI's train / eval commands end to end. The trainer's step against mamba_ssm: train_reference_test.ts.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { useBackend, waitUntil, withDeadline } from "./helpers.ts";
import { createModel, loadModel, mambaTrainFlopsPerToken } from "../lib/models/registry.ts";
import { disposeModel, nextTokenLoss, readParameters } from "../lib/models/lm.ts";
import { mambaByteConfig } from "../lib/models/pretrained.ts";
import { NonFiniteLoss, stepsForFlops, train, type TrainLogEntry } from "../lib/train/trainer.ts";
import { warmupCosine } from "../lib/train/adamw.ts";
import { pathExists } from "../lib/io/atomic.ts";
import { readSafetensors } from "../lib/io/safetensors.ts";

await useBackend("wasm");

const text = new TextEncoder().encode(
  "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife. "
    .repeat(20),
);
const tiny = { d_model: 16, n_layer: 2 };
const base = { batch: 2, length: 32, lr: 5e-3, warmup: 3, seed: 1 };

/** Every tensor of a checkpoint's safetensors file (weights or AdamW moments), by name. */
async function tensorsOf(file: string): Promise<Map<string, Uint8Array>> {
  const st = await readSafetensors(file);
  return new Map(
    [...st.tensors].map(([k, t]) => [k, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)]),
  );
}

/** Two checkpoints hold the same weights and AdamW moments bit for bit, and the same trainer state. */
async function assertSameCheckpoint(dir: string, want: string) {
  for (const file of ["model.safetensors", "optimizer.safetensors"]) {
    const [a, b] = [await tensorsOf(`${dir}/${file}`), await tensorsOf(`${want}/${file}`)];
    assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort(), file);
    for (const [k, v] of b) {
      assert.ok(equalBytes(a.get(k)!, v), `${file}: ${k} differs from the uninterrupted run's`);
    }
  }
  const state = async (d: string) => {
    const { wall_s: _, ...rest } = JSON.parse(await Deno.readTextFile(`${d}/trainer_state.json`));
    return rest;
  };
  // step, AdamW's step, the data position (batches drawn) and the generator's state
  assert.deepEqual(await state(dir), await state(want));
}

const equalBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

Deno.test("kill and resume equals the uninterrupted run bit for bit: losses, weights, AdamW moments, data position", async () => {
  const fullDir = await Deno.makeTempDir({ prefix: "train-full-" });
  const full = createModel("mambabyte", tiny, 0);
  const a = await train(full, text, { ...base, steps: 12, runDir: fullDir, handleSignals: false });
  disposeModel(full);

  const runDir = await Deno.makeTempDir({ prefix: "train-resume-" });
  const first = createModel("mambabyte", tiny, 0);
  // the process "dies" after step 7: the last checkpoint is step 6
  await assert.rejects(
    train(first, text, {
      ...base,
      steps: 12,
      runDir,
      checkpointEvery: 3,
      handleSignals: false,
      onStep: (e) => {
        if (e.step === 7) throw new Error("simulated crash");
      },
    }),
    /simulated crash/,
  );
  disposeModel(first);
  const second = createModel("mambabyte", tiny, 99); // different init: everything must come from the checkpoint
  const b = await train(second, text, {
    ...base,
    steps: 12,
    runDir,
    checkpointEvery: 3,
    resume: true,
    handleSignals: false,
  });
  assert.equal(b.resumed_from, 6);
  assert.deepEqual(b.log.map((e) => e.step), Array.from({ length: 12 }, (_, i) => i + 1));
  for (let i = 0; i < 12; i++) {
    assert.equal(b.log[i].loss, a.log[i].loss, `step ${i + 1}: loss`);
    assert.equal(b.log[i].grad_norm, a.log[i].grad_norm, `step ${i + 1}: gradient norm`);
  }
  // the JSONL log on disk holds each step once, in order
  const onDisk = (await Deno.readTextFile(`${runDir}/train_log.jsonl`)).trim().split("\n").map((l) =>
    JSON.parse(l).step
  );
  assert.deepEqual(onDisk, Array.from({ length: 12 }, (_, i) => i + 1));
  // the final checkpoints of the two runs: same weights and AdamW moments bit for bit, same data position
  await assertSameCheckpoint(`${runDir}/checkpoint`, `${fullDir}/checkpoint`);
  // and the resumed model in memory holds them
  const loaded = await loadModel(`${fullDir}/checkpoint`);
  const [w1, w2] = [await readParameters(second), await readParameters(loaded)];
  for (const [k, v] of w2) assert.deepEqual(w1.get(k), v, k);
  disposeModel(second);
  disposeModel(loaded);
  // resuming with different settings is refused, naming the field
  const third = createModel("mambabyte", tiny, 0);
  await assert.rejects(
    train(third, text, { ...base, lr: 1e-3, steps: 12, runDir, resume: true, handleSignals: false }),
    /differ.*lr/,
  );
  disposeModel(third);
  await Deno.remove(runDir, { recursive: true });
  await Deno.remove(fullDir, { recursive: true });
});

Deno.test("a non-finite loss stops before the update and keeps the last good checkpoint", async () => {
  const runDir = await Deno.makeTempDir({ prefix: "train-nan-" });
  const model = createModel("mambabyte", tiny, 0);
  const W = model.params.get("backbone.layers.0.mixer.in_proj.weight")!;
  let saved4: Float32Array | undefined;
  const err = await train(model, text, {
    ...base,
    steps: 10,
    runDir,
    checkpointEvery: 2,
    handleSignals: false,
    engine: "tfjs", // the NaN goes into the TF.js variables (the engine's own case: engine_checkpoint_test.ts)
    onStep: (e) => {
      if (e.step === 4) saved4 = W.dataSync().slice() as Float32Array; // what the step-4 checkpoint holds
      if (e.step === 5) tf.tidy(() => W.assign(tf.fill(W.shape, NaN)));
    },
  }).catch((e) => e);
  assert.ok(err instanceof NonFiniteLoss, String(err));
  assert.match(err.message, /step 6.*not finite.*checkpoint/);
  const state = JSON.parse(await Deno.readTextFile(`${runDir}/checkpoint/trainer_state.json`));
  assert.equal(state.step, 4);
  const saved = await loadModel(`${runDir}/checkpoint`);
  const values = await readParameters(saved);
  for (const [k, v] of values) assert.ok(v.every(Number.isFinite), `${k} has non-finite values`);
  assert.deepEqual(values.get("backbone.layers.0.mixer.in_proj.weight"), saved4);
  disposeModel(saved);
  disposeModel(model);
  await Deno.remove(runDir, { recursive: true });
});

Deno.test("tensor count stays flat across training steps", async () => {
  const model = createModel("mambabyte", tiny, 0);
  const counts: number[] = [];
  await train(model, text, { ...base, steps: 6, onStep: () => counts.push(tf.memory().numTensors) });
  assert.ok(counts.slice(1).every((c) => c === counts[1]), `tensors per step: ${counts}`);
  disposeModel(model);
});

Deno.test("FLOP budget: steps from FLOPs, and the Mamba count by hand", () => {
  // d 16, 2 layers: e 32, n 16, r 1, k 4, V 256.
  // per layer matmul weights: in_proj 2*32*16 = 1024, x_proj (1+32)*32 = 1056, dt_proj 32*1 = 32,
  // out_proj 16*32 = 512 -> 2624; x2 layers = 5248; head 256*16 = 4096 -> 9344 multiply-adds = 18688 FLOPs.
  // other per layer: conv 2*4*32 = 256, scan 9*32*16 = 4608, gating 5*32 = 160 -> 5024; x2 = 10048.
  // forward 28736; training = 3x = 86208 FLOPs per byte.
  assert.equal(mambaTrainFlopsPerToken(mambaByteConfig(16, 2)), 86208);
  const model = createModel("mambabyte", tiny, 0);
  assert.equal(model.trainFlopsPerToken(32), 86208);
  assert.equal(stepsForFlops(model, 86208 * 2 * 32 * 10, 2, 32), 10);
  assert.equal(stepsForFlops(model, 1, 2, 32), 1);
  disposeModel(model);
});

Deno.test("warm-up then cosine schedule", () => {
  assert.equal(warmupCosine(0, 100, 1, 10), 0.1);
  assert.equal(warmupCosine(9, 100, 1, 10), 1);
  assert.ok(Math.abs(warmupCosine(10, 100, 1, 10) - 1) < 1e-12);
  assert.ok(Math.abs(warmupCosine(99, 100, 1, 10, 0.1) - 0.1) < 1e-3);
  const mid = warmupCosine(55, 100, 1, 10, 0.1);
  assert.ok(Math.abs(mid - 0.55) < 1e-9, String(mid));
});

Deno.test("nextTokenLoss is the mean cross-entropy of logits[t] against ids[t + 1] (computed on the host in float64)", async () => {
  const model = createModel("mambabyte", tiny, 0);
  // a model that is not near-uniform: every target shift or off-by-one moves its loss
  for (const v of model.params.values()) v.assign(tf.mul(v, 3));
  const [b, l] = [2, 40];
  const ids = tf.tensor(Int32Array.from(text.subarray(0, b * (l + 1))), [b, l + 1], "int32");
  const loss = (await nextTokenLoss(model, ids).data())[0];
  const logits = model.logits(tf.slice(ids, [0, 0], [b, l]));
  const V = logits.shape[2]!, L = (await logits.data()) as Float32Array, I = (await ids.data()) as Int32Array;
  let sum = 0;
  for (let r = 0; r < b; r++) {
    for (let t = 0; t < l; t++) {
      const row = L.subarray((r * l + t) * V, (r * l + t + 1) * V);
      const max = row.reduce((m, x) => Math.max(m, x), -Infinity);
      const lse = max + Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0));
      sum += lse - row[I[r * (l + 1) + t + 1]];
    }
  }
  const want = sum / (b * l);
  assert.ok(Math.abs(loss - want) < 1e-5 * want, `nextTokenLoss ${loss} vs ${want}`);
  tf.dispose([ids, logits]);
  disposeModel(model);
});

// ---------------------------------------------------------------------------------------------------
// The CLI in a subprocess: real signals

const CLI = new URL("../lib/cli.ts", import.meta.url).pathname;

function spawnTrain(args: string[]) {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      CLI,
      "train",
      "--model",
      "mambabyte",
      "--size",
      "tiny",
      "--data",
      "books",
      "--scale",
      "smoke",
      "--batch",
      "2",
      "--length",
      "64",
      "--warmup",
      "2",
      "--eval-bytes",
      "2048",
      ...args,
    ],
    env: { MAMBABYTE_BACKEND: "wasm", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Steps in a run's JSONL log (0 before it exists). */
async function loggedSteps(runDir: string): Promise<number> {
  try {
    return (await Deno.readTextFile(`${runDir}/train_log.jsonl`)).trim().split("\n").filter(Boolean).length;
  } catch {
    return 0; // not yet created
  }
}

/**
 * Waits until the run's log holds n steps (an event: the file), or fails at once if the process exits
 * first. No time limit of its own: the test has one overall deadline.
 */
async function waitForSteps(p: Deno.ChildProcess, runDir: string, n: number, signal: AbortSignal) {
  let exited = false;
  p.status.then(() => exited = true);
  await waitUntil(async () => {
    if (exited) throw new Error(`the run exited before logging ${n} steps in ${runDir}`);
    return (await loggedSteps(runDir)) >= n; // how long it takes does not matter
  }, signal);
}

Deno.test("CLI train: SIGTERM saves a checkpoint, --resume finishes, SIGKILL never leaves a torn checkpoint; the result equals an uninterrupted run's bit for bit", async () => {
  const root = await Deno.makeTempDir({ prefix: "train-cli-" });
  const argsIn = (
    dir: string,
  ) => ["--steps", "400", "--name", "run", "--runs-dir", dir, "--results", `${dir}/results`];
  const args = argsIn(root);
  const runDir = `${root}/run`;
  const children: Deno.ChildProcess[] = [];
  const spawn = (a: string[]) => {
    const p = spawnTrain(a);
    children.push(p);
    return p;
  };
  await withDeadline("CLI kill and resume", 20 * 60_000, async (signal) => {
    // 1. SIGTERM: the run saves and exits with 130, saying how to continue
    let p = spawn(args);
    await waitForSteps(p, runDir, 5, signal);
    p.kill("SIGTERM");
    let out = await p.output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 130, stderr);
    assert.match(stderr, /interrupted at step \d+; checkpoint saved.*--resume/);
    const stopped = JSON.parse(await Deno.readTextFile(`${runDir}/checkpoint/trainer_state.json`)).step;
    assert.ok(stopped >= 5);
    // 2. SIGKILL at arbitrary moments (checkpoints every 20 steps): whatever is on disk is complete
    for (const waitSteps of [stopped + 13, stopped + 41]) {
      p = spawn([...args, "--resume"]);
      await waitForSteps(p, runDir, waitSteps, signal);
      p.kill("SIGKILL");
      await p.output();
      const dir = (await pathExists(`${runDir}/checkpoint`))
        ? `${runDir}/checkpoint`
        : `${runDir}/checkpoint.old`;
      const state = JSON.parse(await Deno.readTextFile(`${dir}/trainer_state.json`));
      assert.ok(state.step >= stopped, `checkpoint step ${state.step}`);
      const m = await loadModel(dir); // complete weights: loads and checks every tensor
      disposeModel(m);
    }
    // 3. resume to the end: evaluation runs and the run is recorded
    p = spawn([...args, "--resume"]);
    out = await p.output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const summary = JSON.parse(new TextDecoder().decode(out.stdout));
    assert.equal(summary.run, "run");
    assert.ok(summary.test_bits_per_byte > 0 && summary.test_bits_per_byte < 8);
    const log = (await Deno.readTextFile(`${runDir}/train_log.jsonl`)).trim().split("\n").map((l) =>
      JSON.parse(l) as TrainLogEntry
    );
    assert.deepEqual(log.map((e) => e.step), Array.from({ length: 400 }, (_, i) => i + 1));
    const rec = JSON.parse((await Deno.readTextFile(`${root}/results/runs.jsonl`)).trim());
    assert.equal(rec.steps, 400);
    assert.equal(rec.bytes_seen, 400 * 2 * 64);
    assert.ok(rec.provenance.commit);
    // leftovers: no temporary checkpoint directories
    for await (const e of Deno.readDir(runDir)) {
      assert.ok(!e.name.includes(".tmp-"), `left behind: ${e.name}`);
    }
    // 4. the same command without interruptions: the same final checkpoint (weights, AdamW moments, data
    // position) bit for bit, the same loss at every step, the same evaluation
    const again = `${root}/uninterrupted`;
    const u = await spawn(argsIn(again)).output();
    assert.equal(u.code, 0, new TextDecoder().decode(u.stderr));
    await assertSameCheckpoint(`${runDir}/checkpoint`, `${again}/run/checkpoint`);
    const uLog = (await Deno.readTextFile(`${again}/run/train_log.jsonl`)).trim().split("\n").map((l) =>
      JSON.parse(l) as TrainLogEntry
    );
    assert.deepEqual(log.map((e) => e.loss), uLog.map((e) => e.loss), "losses step by step");
    assert.equal(
      JSON.parse(new TextDecoder().decode(u.stdout)).test_bits_per_byte,
      summary.test_bits_per_byte,
    );
    // 5. eval command on the trained model
    const ev = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        CLI,
        "eval",
        "--model",
        `${runDir}/model`,
        "--data",
        "books",
        "--scale",
        "smoke",
        "--max-bytes",
        "4096",
        "--results",
        `${root}/results`,
      ],
      env: { MAMBABYTE_BACKEND: "wasm", NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(ev.code, 0, new TextDecoder().decode(ev.stderr));
    const score = JSON.parse(new TextDecoder().decode(ev.stdout));
    assert.equal(score.bytes, 4095);
    assert.equal(score.model, "mambabyte");
  }).finally(async () => {
    for (const c of children) {
      try {
        c.kill("SIGKILL");
      } catch { /* exited */ }
      await c.status;
    }
    await Deno.remove(root, { recursive: true });
  });
});

Deno.test("CLI train rejects bad input with one clear line", async () => {
  const cases: [string[], RegExp][] = [
    [["--steps", "5", "--flops", "1e9"], /exactly one of --steps N and --flops F/],
    [["--steps", "0"], /--steps must be a positive integer/],
  ];
  for (const [args, re] of cases) {
    const out = await spawnTrain(args).output();
    assert.equal(out.code, 2);
    assert.match(new TextDecoder().decode(out.stderr), re);
  }
  const bad = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, "train", "--model", "gpt9", "--size", "tiny", "--data", "books", "--steps", "1"],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(bad.code, 2);
  assert.match(new TextDecoder().decode(bad.stderr), /unknown model "gpt9"|no size presets for model "gpt9"/);
});

Deno.test("validation time is not training time: the wall time and bytes/s a run records leave it out", async () => {
  await useBackend("cpu");
  const data = new Uint8Array(4096).map((_, i) => (i * 31) % 251);
  const model = createModel("mambabyte", { d_model: 16, n_layer: 1 }, 0);
  try {
    const pause = 600; // ms each validation takes, two of them (steps 2 and 4)
    const t0 = performance.now();
    const run = await train(model, data, {
      steps: 4,
      batch: 2,
      length: 32,
      lr: 1e-3,
      warmup: 1,
      seed: 0,
      validate: { every: 2, score: () => new Promise((ok) => setTimeout(() => ok(1), pause)) },
    });
    const outside = (performance.now() - t0) / 1000;
    // timers never fire early, so the 1.2 s of validation are at least that much of what passed outside
    assert.ok(run.wall_s <= outside - 2 * pause / 1000, `wall ${run.wall_s} s against ${outside} s outside`);
    assert.ok(run.log.every((e) => e.wall_s <= run.wall_s));
  } finally {
    disposeModel(model);
  }
});

Deno.test("validation is told where the native engine runs (so it can score there), and nothing on TF.js", async () => {
  await useBackend("wasm");
  const data = new Uint8Array(4096).map((_, i) => (i * 31) % 251);
  for (const engine of ["native", "tfjs"] as const) {
    const model = createModel("transformer", { d_model: 32, n_layer: 1 }, 0);
    try {
      const told: unknown[] = [];
      const run = await train(model, data, {
        steps: 2,
        batch: 2,
        length: 16,
        lr: 1e-3,
        warmup: 1,
        seed: 0,
        engine,
        validate: {
          every: 1,
          score: (_m, native) => {
            told.push(native);
            return Promise.resolve(1);
          },
        },
      });
      const want = engine === "native" ? { backend: "wasm", allowSoftwareGpu: true } : undefined;
      assert.deepEqual(told, [want, want]);
      assert.deepEqual(run.native, want);
    } finally {
      disposeModel(model);
    }
  }
});
