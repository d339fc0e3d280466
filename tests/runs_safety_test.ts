/**
 * Runs that cannot be destroyed and data that cannot silently change: the run directory's lock (two
 * processes, three concurrent --resume), reruns without --resume (refused, nothing changed on disk),
 * --overwrite, run names, a resume with changed settings, a damaged trainer_state.json, read-only
 * checkpoint and results directories, another process's temporary checkpoint, a torn runs.jsonl line, a
 * corrupt manifest, a modified or truncated corpus file, an empty split, batch-1 attention models, and a
 * killed-and-resumed run equal to an uninterrupted one bit for bit.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { useBackend } from "./helpers.ts";
import { createModel } from "../lib/models/registry.ts";
import { disposeModel } from "../lib/models/lm.ts";
import { RunExistsError, train } from "../lib/train/trainer.ts";
import { acquireDirLock, LOCK_FILE, LockHeldError } from "../lib/io/lock.ts";
import { InputError } from "../lib/io/errors.ts";
import { readSafetensors } from "../lib/io/safetensors.ts";
import { appendRecord, readRecords } from "../lib/results/store.ts";
import { domainText, runExperiment, type RunSpec } from "../lib/runs/experiment.ts";
import { SAMPLES_DIR } from "../lib/paths.ts";
import { presetConfig } from "../lib/models/presets.ts";

await useBackend("wasm");

const CLI = new URL("../lib/cli.ts", import.meta.url).pathname;
const text = new TextEncoder().encode(
  "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife. "
    .repeat(20),
);
const tiny = { d_model: 16, n_layer: 2 };
const base = { batch: 2, length: 32, lr: 5e-3, warmup: 3, seed: 1, handleSignals: false };
/** One generous deadline for everything a test waits on (events, never fixed sleeps). */
const DEADLINE_MS = 120_000;

// ---------------------------------------------------------------------------------------------------
// helpers

/** Captures console.error while `fn` runs. */
async function captureStderr<T>(
  fn: () => Promise<T>,
): Promise<{ value?: T; error?: unknown; lines: string[] }> {
  const lines: string[] = [];
  const original = console.error;
  console.error = (...a: unknown[]) => void lines.push(a.map(String).join(" "));
  try {
    return { value: await fn(), lines };
  } catch (error) {
    return { error, lines };
  } finally {
    console.error = original;
  }
}

/** Every file below `dir` (relative path -> sha256), directories as "dir": what "nothing changed" compares. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string, rel: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = `${d}/${e.name}`, r = `${rel}${e.name}`;
      if (e.isDirectory) {
        out[r] = "dir";
        await walk(p, `${r}/`);
      } else out[r] = createHash("sha256").update(await Deno.readFile(p)).digest("hex");
    }
  };
  await walk(dir, "");
  return out;
}

function trainArgs(root: string, extra: string[]): string[] {
  return [
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
    "1024",
    "--runs-dir",
    `${root}/runs`,
    "--results",
    `${root}/results`,
    ...extra,
  ];
}

const ENV = { MAMBABYTE_BACKEND: "wasm", NO_COLOR: "1" };

function spawnTrain(root: string, extra: string[]) {
  return new Deno.Command(Deno.execPath(), {
    args: trainArgs(root, extra),
    env: ENV,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

async function runTrain(root: string, extra: string[]) {
  const out = await spawnTrain(root, extra).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Reads a child's stderr as it comes; `until(re)` resolves when the text so far matches. */
function watchStderr(child: Deno.ChildProcess) {
  let text = "";
  const waiters: { re: RegExp; resolve: () => void }[] = [];
  const done = (async () => {
    const dec = new TextDecoder();
    for await (const chunk of child.stderr) {
      text += dec.decode(chunk, { stream: true });
      for (const w of waiters.filter((w) => w.re.test(text))) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  })();
  return {
    get text() {
      return text;
    },
    done,
    until(re: RegExp, deadline: number): Promise<void> {
      if (re.test(text)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no ${re} on stderr in time; stderr so far:\n${text}`)),
          Math.max(0, deadline - Date.now()),
        );
        waiters.push({
          re,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      });
    },
  };
}

/** Runs `fn`; if it throws while `child` still runs, kills the child (no stray training process) and rethrows. */
async function killOnFailure<T>(child: Deno.ChildProcess, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await child.status;
    throw e;
  }
}

function logSteps(runDir: string): number[] {
  return Deno.readTextFileSync(`${runDir}/train_log.jsonl`).trim().split("\n").map((l) => JSON.parse(l).step);
}

function errorLine(stderr: string): string {
  const lines = stderr.trim().split("\n").filter((l) => l.startsWith("error:"));
  assert.equal(lines.length, 1, `one error line expected:\n${stderr}`);
  assert.doesNotMatch(stderr, /^\s+at /m, `no stack trace expected:\n${stderr}`);
  return lines[0];
}

/**
 * Makes a directory tree unwritable: chmod when that binds (not root), else the immutable attribute
 * (root: chmod does not bind). Returns the undo, or undefined when neither mechanism works here.
 */
async function makeUnwritable(dir: string): Promise<(() => Promise<void>) | undefined> {
  const blocked = async () => {
    try {
      await Deno.writeTextFile(`${dir}/.probe`, "");
      await Deno.remove(`${dir}/.probe`);
      return false;
    } catch {
      return true;
    }
  };
  const chmodTree = async (d: string, dirMode: number, fileMode: number) => {
    for await (const e of Deno.readDir(d)) {
      if (e.isDirectory) await chmodTree(`${d}/${e.name}`, dirMode, fileMode);
      else await Deno.chmod(`${d}/${e.name}`, fileMode);
    }
    await Deno.chmod(d, dirMode);
  };
  await chmodTree(dir, 0o555, 0o444);
  const undoChmod = () => chmodTree(dir, 0o755, 0o644);
  if (await blocked()) return undoChmod;
  await undoChmod();
  const chattr = (flag: string) =>
    new Deno.Command("chattr", { args: ["-R", flag, dir], stdout: "null", stderr: "null" }).output()
      .then((o) => o.success, () => false);
  if (await chattr("+i")) {
    if (await blocked()) return async () => void (await chattr("-i"));
    await chattr("-i");
  }
  return undefined;
}

/** Whether this machine can make a directory unwritable for this user at all (decided once). */
const CAN_MAKE_UNWRITABLE = await (async () => {
  const d = await Deno.makeTempDir({ prefix: "ro-probe-" });
  const undo = await makeUnwritable(d);
  await undo?.();
  await Deno.remove(d, { recursive: true });
  return !!undo;
})();

// ---------------------------------------------------------------------------------------------------
// the lock

Deno.test("lock: a second taker gets LockHeldError naming the holder; a dead holder's lock is stale", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lock-" });
  const first = await acquireDirLock(dir);
  const err = await acquireDirLock(dir).catch((e) => e);
  assert.ok(err instanceof LockHeldError, String(err));
  assert.match(err.message, new RegExp(`in use by process ${Deno.pid} on `));
  await first.release();
  assert.ok(!(await exists(`${dir}/${LOCK_FILE}`)), "released: the lock file is gone");
  // a lock left by a process that died
  const dead = new Deno.Command(Deno.execPath(), { args: ["eval", ""] }).spawn();
  await dead.status;
  await Deno.writeTextFile(
    `${dir}/${LOCK_FILE}`,
    JSON.stringify({ pid: dead.pid, host: Deno.hostname(), started: new Date().toISOString(), token: "x" }),
  );
  const second = await acquireDirLock(dir);
  assert.equal(JSON.parse(await Deno.readTextFile(`${dir}/${LOCK_FILE}`)).pid, Deno.pid);
  await second.release();
  assert.deepEqual([...Deno.readDirSync(dir)], [], "no temporary files left");
  await Deno.remove(dir, { recursive: true });
});

async function exists(p: string) {
  try {
    await Deno.stat(p);
    return true;
  } catch {
    return false;
  }
}

Deno.test("CLI: a second process on a running run gets one line naming the holder's pid; the first is untouched", async () => {
  const deadline = Date.now() + DEADLINE_MS;
  const root = await Deno.makeTempDir({ prefix: "runs-two-" });
  const runDir = `${root}/runs/run`;
  const first = spawnTrain(root, ["--steps", "400", "--name", "run"]);
  const watch = watchStderr(first);
  const status = await killOnFailure(first, async () => {
    await watch.until(/\nstep\s+\d+\/400/, deadline); // training has started
    const second = await runTrain(root, ["--steps", "400", "--name", "run"]);
    assert.notEqual(second.code, 0);
    assert.equal(second.stderr.trim().split("\n").length, 1, second.stderr);
    assert.match(second.stderr, new RegExp(`^error: .*run is in use by process ${first.pid} on .*since`));
    const third = await runTrain(root, ["--steps", "400", "--name", "run", "--resume"]);
    assert.notEqual(third.code, 0);
    assert.match(third.stderr.trim(), new RegExp(`^error: .*in use by process ${first.pid} on [^\\n]*$`));
    // the first run goes on, then saves on SIGTERM: its log has every step once, its checkpoint is whole
    first.kill("SIGTERM");
    return await first.status;
  });
  await watch.done;
  assert.equal(status.code, 130, watch.text);
  const steps = logSteps(runDir);
  assert.deepEqual(steps, Array.from({ length: steps.length }, (_, i) => i + 1));
  const state = JSON.parse(await Deno.readTextFile(`${runDir}/checkpoint/trainer_state.json`));
  assert.equal(state.step, steps.length);
  assert.deepEqual(Object.keys(await snapshot(runDir)).filter((p) => !p.startsWith("checkpoint/")).sort(), [
    "checkpoint",
    "train_log.jsonl",
  ]);
  // an interrupted run is not started over by a rerun without --resume: refused, nothing changes
  const before = await snapshot(root);
  const rerun = await runTrain(root, ["--steps", "400", "--name", "run"]);
  assert.equal(rerun.code, 2);
  assert.equal(rerun.stderr.trim().split("\n").length, 1, rerun.stderr);
  assert.match(
    rerun.stderr,
    new RegExp(
      `^error: .*/run already holds an interrupted run \\(checkpoint at step ${steps.length} of 400, ${steps.length} steps logged\\); continue it with --resume, or start over with --overwrite`,
    ),
  );
  assert.deepEqual(await snapshot(root), before);
  await Deno.remove(root, { recursive: true });
});

Deno.test("CLI: three --resume at once write one record; a later --resume of the finished run writes none", async () => {
  const root = await Deno.makeTempDir({ prefix: "runs-three-" });
  const args = ["--steps", "30", "--name", "run", "--resume"];
  const outs = await Promise.all([0, 1, 2].map(() => runTrain(root, args)));
  for (const o of outs) {
    if (o.code !== 0) {
      assert.equal(o.code, 2, o.stderr);
      assert.match(o.stderr.trim(), /^error: .*\/run is in use by process \d+ on [^\n]*$/);
    }
  }
  assert.ok(outs.some((o) => o.code === 0), outs.map((o) => o.stderr).join("\n---\n"));
  assert.equal((await readRecords("runs", `${root}/results`)).length, 1);
  const again = await runTrain(root, args);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /run run: already finished \(30 steps\); its record is in .*runs\.jsonl/);
  assert.equal(JSON.parse(again.stdout).run, "run");
  assert.equal((await readRecords("runs", `${root}/results`)).length, 1);

  // a rerun without --resume is refused and changes nothing (directory listings and file hashes)
  const before = await snapshot(root);
  const rerun = await runTrain(root, ["--steps", "30", "--name", "run"]);
  assert.equal(rerun.code, 2);
  assert.match(
    errorLine(rerun.stderr),
    /\/run already holds a finished run \(30 steps, test bits-per-byte \d\.\d{4}, recorded .*\); train it again with --overwrite, or choose another --name$/,
  );
  assert.equal(rerun.stderr.trim().split("\n").length, 1, rerun.stderr);
  assert.deepEqual(await snapshot(root), before);

  // --overwrite starts over: a fresh log and checkpoint, a second record
  const oldRecord = JSON.parse(await Deno.readTextFile(`${root}/runs/run/record.json`));
  const over = await runTrain(root, ["--steps", "30", "--name", "run", "--overwrite"]);
  assert.equal(over.code, 0, over.stderr);
  assert.deepEqual(logSteps(`${root}/runs/run`), Array.from({ length: 30 }, (_, i) => i + 1));
  const records = await readRecords<{ provenance: { time: string } }>("runs", `${root}/results`);
  assert.equal(records.length, 2);
  assert.notEqual(records[1].provenance.time, oldRecord.provenance.time);
  assert.ok(!(await exists(`${root}/runs/run/${LOCK_FILE}`)), "the lock is released at the end");
  await Deno.remove(root, { recursive: true });
});

Deno.test("CLI: run names: --name is checked, default names tell budgets and learning rates apart", async () => {
  const root = await Deno.makeTempDir({ prefix: "runs-name-" });
  // "../../x" from the runs directory is the temp dir's sibling x: shared, so only checked when absent
  const outside = `${root}/../x`, outsideBefore = await exists(outside);
  for (const bad of ["../../x", "a/b", ".hidden", "..", "a\\b"]) {
    const r = await runTrain(root, ["--steps", "2", "--name", bad]);
    assert.equal(r.code, 2);
    assert.equal(
      r.stderr.trim(),
      `error: train: --name must be a plain name: no "/" or "\\", no "..", not starting with "." (got ${
        JSON.stringify(bad)
      })`,
    );
  }
  assert.ok(!(await exists(`${root}/runs`)), "nothing was written");
  if (!outsideBefore) assert.ok(!(await exists(outside)), "nothing was written outside the runs directory");
  const a = await runTrain(root, ["--steps", "2"]);
  const b = await runTrain(root, ["--steps", "3", "--lr", "0.001"]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);
  assert.equal(JSON.parse(a.stdout).run, "smoke-books-mambabyte-tiny-2steps-lr0.002-b2-l64-w2-s0");
  assert.equal(JSON.parse(b.stdout).run, "smoke-books-mambabyte-tiny-3steps-lr0.001-b2-l64-w2-s0");
  await Deno.remove(root, { recursive: true });
});

Deno.test("runExperiment: a run name cannot leave the runs directory", async () => {
  const root = await Deno.makeTempDir({ prefix: "runs-libname-" });
  for (const name of ["../x", "a/../../x", "/abs", ".hidden/x", "a//b", "a\\b"]) {
    const spec: RunSpec = {
      name,
      model: "mambabyte",
      config: tiny,
      domain: "books",
      scale: "smoke",
      train: { batch: 2, length: 32, lr: 1e-3, warmup: 1, seed: 0, steps: 1 },
      eval: {},
    };
    const err = await runExperiment(spec, { runsDir: `${root}/runs`, resultsDir: `${root}/results` }).catch((
      e,
    ) => e);
    assert.ok(err instanceof InputError, `${name}: ${err}`);
    assert.match(err.message, /^run name ".*": use plain names separated by "\/"/);
  }
  assert.deepEqual([...Deno.readDirSync(root)], [], "nothing was created");
  await Deno.remove(root, { recursive: true });
});

Deno.test("CLI: --resume with a changed lr names only lr, old -> new; a damaged trainer_state.json is one line", async () => {
  const root = await Deno.makeTempDir({ prefix: "runs-resume-" });
  const first = await runTrain(root, ["--steps", "4", "--name", "run"]);
  assert.equal(first.code, 0, first.stderr);
  const before = await snapshot(root);
  const r = await runTrain(root, ["--steps", "4", "--name", "run", "--resume", "--lr", "0.001"]);
  assert.equal(r.code, 2);
  assert.equal(
    errorLine(r.stderr),
    `error: ${root}/runs/run: cannot resume, the settings differ from the checkpoint's: lr 0.002 -> 0.001 ` +
      `(resume with the checkpoint's settings, or start over with --overwrite)`,
  );
  assert.deepEqual(await snapshot(root), before);
  const state = `${root}/runs/run/checkpoint/trainer_state.json`;
  await Deno.writeTextFile(state, '{"format": "mambabyte-lab-trainer/1", "step": ');
  const corrupt = await runTrain(root, ["--steps", "4", "--name", "run", "--resume"]);
  assert.equal(corrupt.code, 2);
  assert.match(
    errorLine(corrupt.stderr),
    /trainer_state\.json: not valid JSON \(.*\); the checkpoint cannot be resumed: start over with --overwrite$/,
  );
  await Deno.remove(state);
  const missing = await runTrain(root, ["--steps", "4", "--name", "run", "--resume"]);
  assert.equal(missing.code, 2);
  assert.match(
    errorLine(missing.stderr),
    /trainer_state\.json: no such file or directory; the checkpoint cannot be resumed: start over with --overwrite$/,
  );
  // --debug shows the stack
  const debug = await runTrain(root, ["--steps", "4", "--name", "run", "--resume", "--debug"]);
  assert.equal(debug.code, 2);
  assert.match(debug.stderr, /^\s+at /m);
  await Deno.remove(root, { recursive: true });
});

Deno.test({
  name: "CLI: a read-only checkpoint directory fails before training, naming it; nothing changes",
  ignore: !CAN_MAKE_UNWRITABLE,
  fn: async () => {
    const root = await Deno.makeTempDir({ prefix: "runs-ro-ckpt-" });
    const runDir = `${root}/runs/run`;
    const first = spawnTrain(root, ["--steps", "400", "--name", "run"]);
    const watch = watchStderr(first);
    await killOnFailure(first, () => watch.until(/\nstep\s+\d+\/400/, Date.now() + DEADLINE_MS));
    first.kill("SIGTERM");
    assert.equal((await first.status).code, 130);
    await watch.done;
    const undo = (await makeUnwritable(`${runDir}/checkpoint`))!;
    try {
      const before = await snapshot(root);
      for (let i = 0; i < 2; i++) {
        const r = await runTrain(root, ["--steps", "400", "--name", "run", "--resume"]);
        assert.equal(r.code, 2);
        assert.match(
          errorLine(r.stderr),
          new RegExp(
            `^error: ${runDir}/checkpoint: cannot write in the checkpoint directory: permission denied; the run replaces its checkpoint as it trains: make it writable \\(chmod -R u\\+w ${runDir}/checkpoint\\)$`,
          ),
        );
        assert.doesNotMatch(r.stderr, /\nstep /, "no training step ran");
        assert.deepEqual(await snapshot(root), before);
      }
    } finally {
      await undo();
    }
    await Deno.remove(root, { recursive: true });
  },
});

Deno.test("CLI: a results directory that cannot take the record fails before training", async () => {
  const root = await Deno.makeTempDir({ prefix: "runs-ro-results-" });
  // a path whose parent is a file: works for every user, root included
  await Deno.writeTextFile(`${root}/file`, "");
  const r = await new Deno.Command(Deno.execPath(), {
    args: [...trainArgs(root, ["--steps", "4", "--name", "run"]), "--results", `${root}/file/results`],
    env: ENV,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(r.stderr);
  assert.equal(r.code, 2);
  assert.match(
    errorLine(stderr),
    /file\/results: cannot create the results directory: .*; the run's record could not be saved: make it writable or choose another results directory \(--results DIR\)$/,
  );
  assert.ok(!(await exists(`${root}/runs/run`)), "no run directory, nothing trained");
  if (CAN_MAKE_UNWRITABLE) {
    await Deno.mkdir(`${root}/results`);
    const undo = (await makeUnwritable(`${root}/results`))!;
    try {
      const ro = await runTrain(root, ["--steps", "4", "--name", "run"]);
      assert.equal(ro.code, 2);
      assert.match(
        errorLine(ro.stderr),
        /results: cannot write in the results directory: permission denied; the run's record could not be saved/,
      );
      assert.ok(!(await exists(`${root}/runs/run`)), "no run directory, nothing trained");
    } finally {
      await undo();
    }
  }
  await Deno.remove(root, { recursive: true });
});

Deno.test({
  name:
    "CLI: a results directory that turns read-only during training keeps the record; --resume appends it once",
  ignore: !CAN_MAKE_UNWRITABLE,
  fn: async () => {
    const root = await Deno.makeTempDir({ prefix: "runs-ro-late-" });
    await Deno.mkdir(`${root}/results`);
    const child = spawnTrain(root, ["--steps", "200", "--name", "run"]);
    const watch = watchStderr(child);
    await killOnFailure(child, () => watch.until(/\nstep\s+\d+\/200/, Date.now() + DEADLINE_MS));
    const undo = (await makeUnwritable(`${root}/results`))!;
    let code: number;
    try {
      code = (await child.status).code;
      await watch.done;
    } finally {
      await undo();
    }
    assert.equal(code, 2, watch.text);
    assert.match(
      errorLine(watch.text),
      new RegExp(
        `runs\\.jsonl: cannot append a record: permission denied; the run's record is kept in ${root}/runs/run/record\\.json, and \`--resume\` with the same settings appends it$`,
      ),
    );
    const kept = JSON.parse(await Deno.readTextFile(`${root}/runs/run/record.json`));
    const r = await runTrain(root, ["--steps", "200", "--name", "run", "--resume"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /already finished .*\(appended now: it was missing\)/);
    const again = await runTrain(root, ["--steps", "200", "--name", "run", "--resume"]);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(await readRecords("runs", `${root}/results`), [kept]);
    await Deno.remove(root, { recursive: true });
  },
});

// ---------------------------------------------------------------------------------------------------
// the trainer

Deno.test("trainer: a rerun without resume is refused; overwrite starts over", async () => {
  const runDir = await Deno.makeTempDir({ prefix: "train-exists-" });
  const m = createModel("mambabyte", tiny, 0);
  await train(m, text, { ...base, steps: 3, runDir });
  const before = await snapshot(runDir);
  const err = await train(m, text, { ...base, steps: 3, runDir }).catch((e) => e);
  assert.ok(err instanceof RunExistsError, String(err));
  assert.equal(
    err.message,
    `${runDir} already holds a finished run (checkpoint at step 3 of 3, 3 steps logged); continue it with --resume, or start over with --overwrite`,
  );
  assert.deepEqual(await snapshot(runDir), before);
  const r = await train(m, text, { ...base, steps: 2, runDir, overwrite: true });
  assert.equal(r.resumed_from, 0);
  assert.deepEqual(logSteps(runDir), [1, 2]);
  disposeModel(m);
  await Deno.remove(runDir, { recursive: true });
});

Deno.test("trainer: another live process's checkpoint.tmp-* is left alone; a dead one's is removed", async () => {
  const runDir = await Deno.makeTempDir({ prefix: "train-tmp-" });
  const live = new Deno.Command("sleep", { args: ["600"] }).spawn();
  const dead = new Deno.Command(Deno.execPath(), { args: ["eval", ""] }).spawn();
  await dead.status;
  const liveTmp = `${runDir}/checkpoint.tmp-${live.pid}-0a1b2c3d`;
  const deadTmp = `${runDir}/checkpoint.tmp-${dead.pid}-0a1b2c3d`;
  for (const d of [liveTmp, deadTmp]) {
    await Deno.mkdir(d);
    await Deno.writeTextFile(`${d}/model.safetensors`, "a save in progress");
  }
  try {
    const m = createModel("mambabyte", tiny, 0);
    await train(m, text, { ...base, steps: 2, runDir, checkpointEvery: 1 });
    disposeModel(m);
    assert.equal(await Deno.readTextFile(`${liveTmp}/model.safetensors`), "a save in progress");
    assert.ok(!(await exists(deadTmp)), "the dead process's temporary checkpoint is removed");
    const left = [...Deno.readDirSync(runDir)].map((e) => e.name).sort();
    assert.deepEqual(left, ["checkpoint", `checkpoint.tmp-${live.pid}-0a1b2c3d`, "train_log.jsonl"]);
  } finally {
    live.kill("SIGKILL");
    await live.status;
  }
  await Deno.remove(runDir, { recursive: true });
});

Deno.test("trainer: a killed and resumed run equals the uninterrupted one bit for bit (weights, AdamW moments, data position)", async () => {
  const full = await Deno.makeTempDir({ prefix: "train-exact-a-" });
  const parted = await Deno.makeTempDir({ prefix: "train-exact-b-" });
  const cfg = { ...base, steps: 12, checkpointEvery: 3 };
  const a = createModel("mambabyte", tiny, 0);
  await train(a, text, { ...cfg, runDir: full });
  disposeModel(a);
  const b1 = createModel("mambabyte", tiny, 0);
  await assert.rejects(
    train(b1, text, {
      ...cfg,
      runDir: parted,
      onStep: (e) => {
        if (e.step === 7) throw new Error("simulated crash");
      },
    }),
    /simulated crash/,
  );
  disposeModel(b1);
  const b2 = createModel("mambabyte", tiny, 99); // a different init: everything comes from the checkpoint
  const r = await train(b2, text, { ...cfg, runDir: parted, resume: true });
  disposeModel(b2);
  assert.equal(r.resumed_from, 6);
  for (const file of ["model.safetensors", "optimizer.safetensors"]) {
    const [x, y] = [
      await readSafetensors(`${full}/checkpoint/${file}`),
      await readSafetensors(`${parted}/checkpoint/${file}`),
    ];
    assert.deepEqual([...y.tensors.keys()].sort(), [...x.tensors.keys()].sort());
    for (const [k, t] of x.tensors) {
      const u = y.tensors.get(k)!;
      const bytes = (v: typeof t) => new Uint8Array(v.data.buffer, v.data.byteOffset, v.data.byteLength);
      assert.ok(
        bytes(t).length === bytes(u).length && bytes(t).every((v, i) => v === bytes(u)[i]),
        `${file} ${k} differs`,
      );
    }
  }
  const [sa, sb] = [full, parted].map((d) =>
    JSON.parse(Deno.readTextFileSync(`${d}/checkpoint/trainer_state.json`))
  );
  for (const k of ["step", "adam_step", "batcher_position", "batcher_rng", "tokens_seen", "fingerprint"]) {
    assert.deepEqual(sb[k], sa[k], k);
  }
  await Deno.remove(full, { recursive: true });
  await Deno.remove(parted, { recursive: true });
});

Deno.test("trainer: attention models train with batch 1 (tf.unstack of one entry has no working gradient)", async () => {
  // the tiny preset at length 64 takes attention's per-entry fast path with one entry (one head, batch 1)
  for (const kind of ["transformer", "perceiver_ar"]) {
    const m = createModel(kind, presetConfig(kind, "tiny"), 0);
    const r = await train(m, text, { ...base, batch: 1, length: 64, steps: 2 });
    assert.ok(r.log.every((e) => Number.isFinite(e.loss)), kind);
    disposeModel(m);
  }
});

// ---------------------------------------------------------------------------------------------------
// results

Deno.test("results: a torn last line of runs.jsonl never swallows the next record; readers name its line", async () => {
  const dir = await Deno.makeTempDir({ prefix: "results-torn-" });
  await Deno.writeTextFile(
    `${dir}/runs.jsonl`,
    JSON.stringify({ run: "a" }) + "\n" + '{"run": "b", "eval": {"bi',
  );
  const append = await captureStderr(() => appendRecord("runs", { run: "c" }, dir));
  assert.equal(append.error, undefined);
  assert.deepEqual(append.lines, [
    `${dir}/runs.jsonl:2: the last line is torn (an interrupted write); it is kept on its own line, which readers skip`,
  ]);
  const read = await captureStderr(() => readRecords<{ run: string }>("runs", dir));
  assert.deepEqual(read.value!.map((r) => r.run), ["a", "c"]);
  assert.deepEqual(read.lines, [
    `${dir}/runs.jsonl:2: skipping a torn or unparsable line (not a JSON record)`,
  ]);
  await Deno.remove(dir, { recursive: true });
});

// ---------------------------------------------------------------------------------------------------
// data

/** A data/ folder whose corpora/ is a copy of the tracked sample (same manifest format). */
async function corpusCopy(): Promise<string> {
  const data = await Deno.makeTempDir({ prefix: "data-" });
  await new Deno.Command("cp", { args: ["-r", SAMPLES_DIR, `${data}/corpora`] }).output();
  await Deno.symlink(SAMPLES_DIR, `${data}/samples`);
  return data;
}

Deno.test("data: a corrupt manifest is an error naming it; the sample is used only when no corpus was built, and said", async () => {
  const data = await corpusCopy();
  const ok = await domainText("books", "small", "test", data);
  assert.equal(ok.source, `${data}/corpora`);
  await Deno.writeTextFile(`${data}/corpora/manifest.json`, '{"format": "mambabyte-corpora", "vers');
  const err = await domainText("books", "small", "test", data).catch((e) => e);
  assert.ok(err instanceof InputError, String(err));
  assert.match(
    err.message,
    new RegExp(
      `^${data}/corpora/manifest\\.json: not valid JSON \\(.*\\); remove it and run \`deno task data\` to rebuild the corpus$`,
    ),
  );
  await Deno.remove(`${data}/corpora/manifest.json`);
  const orphan = await domainText("books", "small", "test", data).catch((e) => e);
  assert.match(orphan.message, /manifest\.json: missing, but .*corpora holds built domains \(books, /);
  // never built: the sample, said on stderr
  await Deno.remove(`${data}/corpora`, { recursive: true });
  const fallback = await captureStderr(() => domainText("books", "small", "test", data));
  assert.equal(fallback.value!.source, `${data}/samples`);
  assert.equal(fallback.lines.length, 1);
  assert.match(
    fallback.lines[0],
    /corpora was never built, so the tracked sample .* is used; run `deno task data`/,
  );
  await Deno.remove(data, { recursive: true });
});

Deno.test("data: a truncated, modified or unlisted corpus file is an error naming it when a run reads it", async () => {
  const data = await corpusCopy();
  const loc = `${data}/corpora/books/train`;
  const file = `${loc}/${[...Deno.readDirSync(loc)].map((e) => e.name).sort()[0]}`;
  const original = await Deno.readFile(file);
  await domainText("books", "small", "test", data); // verified once (sha256), then only sizes unless changed
  await Deno.writeFile(file, original.subarray(0, original.length - 100));
  const truncated = await domainText("books", "small", "test", data).catch((e) => e);
  assert.ok(truncated instanceof InputError, String(truncated));
  assert.equal(
    truncated.message,
    `${file}: ${original.length - 100} bytes, but ${data}/corpora/manifest.json says ${original.length} ` +
      "(modified or truncated); run `deno task data --check` (and `deno task data` to rebuild what changed)",
  );
  // same size, one byte changed (and a new mtime): the hash is checked again
  const changed = original.slice();
  changed[10] ^= 1;
  await Deno.writeFile(file, changed);
  await Deno.utime(file, new Date(), new Date(Date.now() + 5000));
  const modified = await domainText("books", "small", "test", data).catch((e) => e);
  assert.match(
    modified.message,
    /: its sha256 differs from .*manifest\.json \(modified\); run `deno task data --check`/,
  );
  await Deno.writeFile(file, original);
  await Deno.writeTextFile(`${loc}/extra.txt`, "not in the manifest");
  const extra = await domainText("books", "small", "test", data).catch((e) => e);
  assert.match(extra.message, /extra\.txt: not listed in .*manifest\.json/);
  await Deno.remove(`${loc}/extra.txt`);
  await domainText("books", "small", "test", data); // whole again
  // a run reading it fails before training, naming the file
  await Deno.writeFile(file, original.subarray(0, 10));
  const root = await Deno.makeTempDir({ prefix: "runs-data-" });
  const spec: RunSpec = {
    name: "run",
    model: "mambabyte",
    config: tiny,
    domain: "books",
    scale: "small",
    train: { batch: 2, length: 32, lr: 1e-3, warmup: 1, seed: 0, steps: 2 },
    eval: { maxBytes: 256 },
  };
  const run = await runExperiment(spec, {
    dataDir: data,
    runsDir: root,
    resultsDir: `${root}/results`,
    quiet: true,
  }).catch((e) => e);
  assert.match(run.message, /bytes, but .*manifest\.json says .*deno task data --check/);
  assert.ok(!(await exists(`${root}/run/train_log.jsonl`)), "nothing trained");
  await Deno.remove(root, { recursive: true });
  await Deno.remove(data, { recursive: true });
});

Deno.test("data: an empty training split is one clear error", async () => {
  const data = await Deno.makeTempDir({ prefix: "data-empty-" });
  await Deno.mkdir(`${data}/samples/books/train`, { recursive: true });
  await Deno.mkdir(`${data}/samples/books/test`, { recursive: true });
  await Deno.writeTextFile(`${data}/samples/books/test/t.txt`, "some test text");
  const root = await Deno.makeTempDir({ prefix: "runs-empty-" });
  const spec: RunSpec = {
    name: "run",
    model: "mambabyte",
    config: tiny,
    domain: "books",
    scale: "smoke",
    train: { batch: 2, length: 32, lr: 1e-3, warmup: 1, seed: 0, steps: 2 },
    eval: {},
  };
  const opts = { dataDir: data, runsDir: root, resultsDir: `${root}/results`, quiet: true };
  const none = await runExperiment(spec, opts).catch((e) => e);
  assert.ok(none instanceof InputError, String(none));
  assert.equal(none.message, `${data}/samples/books/train: no files found (the split is empty)`);
  await Deno.writeTextFile(`${data}/samples/books/train/empty.txt`, "");
  const empty = await runExperiment(spec, opts).catch((e) => e);
  assert.ok(empty instanceof InputError, String(empty));
  assert.equal(
    empty.message,
    `${data}/samples/books/train: the training split has 0 bytes (0 bytes), fewer than one training window of 33; add data or lower --length`,
  );
  await Deno.remove(root, { recursive: true });
  await Deno.remove(data, { recursive: true });
});
