/**
 * The torch engine (lib/runs/job.ts, lib/torch/, lib/runs/import_job.ts) on CPU processes over gloo with
 * Debian's python3-torch (deno task setup --with-torch):
 *  - the PyTorch MambaByte and train.py's own step against mamba_ssm's outputs (the fixtures);
 *  - a job trained by two processes equals one process with gradient accumulation (same global batch) and
 *    the lab's own trainer on the same run, step by step;
 *  - a two-process job killed mid-run (SIGKILL to the whole process group) and started again continues the
 *    curve exactly;
 *  - `import` scores the job's checkpoint in the lab with the loss the job reported, and records it;
 *  - bad input is one line and writes nothing.
 */
import * as assert from "node:assert/strict";
import { runCli } from "./helpers.ts";
import { torchPython } from "../lib/setup.ts";
import { REPO_ROOT } from "../lib/paths.ts";

async function python(): Promise<string> {
  const p = await torchPython();
  if (!p) throw new Error("no python with torch: deno task setup --with-torch (Debian's python3-torch)");
  return p;
}

function decode(b: Uint8Array): string {
  return new TextDecoder().decode(b);
}

Deno.test("torch: the PyTorch MambaByte and train.py's step match mamba_ssm (logits, gradients, three AdamW steps)", async () => {
  const out = await new Deno.Command(await python(), {
    args: [`${REPO_ROOT}tests/reference/check_torch_trainer.py`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, decode(out.stderr));
  const r = JSON.parse(decode(out.stdout));
  assert.ok(r.tiny_logits_rel < 1e-5, `logits rel L2 ${r.tiny_logits_rel}`);
  assert.ok(r.tiny_grad_rel_max < 1e-4, `gradient rel L2 ${r.tiny_grad_rel_max}`);
  assert.ok(Math.abs(r.tiny_loss - r.tiny_loss_expected) < 1e-5);
  for (let i = 0; i < 3; i++) {
    assert.ok(Math.abs(r.train3_losses[i] - r.train3_losses_expected[i]) < 1e-5, `step ${i + 1} loss`);
    assert.ok(Math.abs(r.train3_norms[i] / r.train3_norms_expected[i] - 1) < 1e-5, `step ${i + 1} norm`);
  }
  assert.ok(r.train3_after_rel_max < 1e-4, `parameters after 3 steps: rel L2 ${r.train3_after_rel_max}`);
});

interface LogEntry {
  step: number;
  loss: number;
  lr: number;
  processes?: number;
}

async function readLog(path: string): Promise<LogEntry[]> {
  return (await Deno.readTextFile(path)).split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
}

const RUN = ["--model", "mambabyte", "--size", "tiny", "--data", "books", "--scale", "smoke"];
const STEPS = 60;
const SETTINGS = [
  "--steps",
  String(STEPS),
  "--batch",
  "4",
  "--length",
  "64",
  "--eval-bytes",
  "8192",
  "--name",
  "t",
];

/** `job` for the test's run on CPU processes, with `extra` options last. */
function jobCli(out: string, ...extra: string[]) {
  return runCli("job", "--engine", "torch", "--device", "cpu", ...RUN, ...SETTINGS, ...extra, "--out", out);
}

async function writeJob(out: string, ...extra: string[]): Promise<void> {
  const r = await jobCli(out, ...extra);
  assert.equal(r.code, 0, r.stderr);
}

/** Starts the job's run.sh in its own process group (so a kill reaches torchrun and every worker). */
async function startJob(dir: string, port: number): Promise<Deno.ChildProcess> {
  return new Deno.Command("setsid", {
    args: ["bash", `${dir}/run.sh`],
    env: { PYTHON: await python(), RDZV_ENDPOINT: `localhost:${port}` },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Runs the job to its end; its stderr (the trainer's progress lines). */
async function runJob(dir: string, port: number): Promise<string> {
  const out = await (await startJob(dir, port)).output();
  assert.equal(out.code, 0, decode(out.stderr).slice(-3000));
  return decode(out.stderr);
}

Deno.test("torch: 2 gloo processes = 1 process with accumulation = the lab's trainer; a job killed (SIGKILL) or stopped (SIGTERM) resumes exactly; import scores as the job did", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "torch-job-" });
  try {
    await writeJob(`${tmp}/one`, "--gpus", "1", "--micro-batch", "2"); // 2 micro-batches of 2 rows
    // 2 processes, each its 2 rows in micro-batches of 1 (DDP's no_sync on the first)
    await writeJob(`${tmp}/two`, "--gpus", "2", "--micro-batch", "1");
    // a checkpoint every 5 steps (the default would be every 3 of 60)
    await writeJob(`${tmp}/killed`, "--gpus", "2", "--micro-batch", "1", "--checkpoint-every", "5");
    await writeJob(`${tmp}/stopped`, "--gpus", "2", "--micro-batch", "1");
    const job = JSON.parse(await Deno.readTextFile(`${tmp}/two/job.json`));
    assert.equal(job.gpus, 2);
    assert.equal(job.device, "cpu");
    const log = (name: string) => readLog(`${tmp}/${name}/runs/t/train_log.jsonl`);

    await runJob(`${tmp}/one`, 29611);
    await runJob(`${tmp}/two`, 29612);

    // `signal` to the job's whole process group as soon as a few steps are logged; its stderr
    const interrupt = async (name: string, signal: Deno.Signal, port: number) => {
      const child = await startJob(`${tmp}/${name}`, port);
      const logPath = `${tmp}/${name}/runs/t/train_log.jsonl`;
      const t0 = Date.now();
      while (true) {
        const n = (await Deno.readTextFile(logPath).catch(() =>
          ""
        )).split("\n").filter((l) => l.trim()).length;
        if (n >= 12) break;
        if (Date.now() - t0 > 120_000) throw new Error("the job logged no steps in 120 s");
        await new Promise((r) => setTimeout(r, 10));
      }
      Deno.kill(-child.pid, signal);
      const out = await child.output();
      const before = await log(name);
      assert.ok(before.length < STEPS, `the job finished (${before.length} steps) before ${signal}`);
      return decode(out.stderr);
    };
    const resumes = async (name: string, port: number, every?: number) => {
      const resumed = /resuming at step (\d+) of 60/.exec(await runJob(`${tmp}/${name}`, port));
      assert.ok(
        resumed && Number(resumed[1]) > 0 && (!every || Number(resumed[1]) % every === 0),
        `${name}: the second start did not resume from a checkpoint${
          every ? ` at a multiple of ${every}` : ""
        }`,
      );
    };
    const killedRun = JSON.parse(await Deno.readTextFile(`${tmp}/killed/runs/t/run.json`));
    assert.equal(killedRun.checkpoint_every, 5);
    // killed outright: it continues from its last periodic checkpoint
    await interrupt("killed", "SIGKILL", 29613);
    await resumes("killed", 29614, 5);
    // SIGTERM (what a scheduler sends): the processes finish the step, save it, and stop
    const termed = await interrupt("stopped", "SIGTERM", 29615);
    assert.match(termed, /stopped at step \d+; checkpoint saved/);
    const saved = JSON.parse(await Deno.readTextFile(`${tmp}/stopped/runs/t/checkpoint/trainer_state.json`));
    assert.equal(saved.step, (await log("stopped")).length, "the checkpoint is the last logged step");
    await resumes("stopped", 29616);

    const [one, two, killed, stopped] = [
      await log("one"),
      await log("two"),
      await log("killed"),
      await log("stopped"),
    ];
    for (const l of [one, two, killed, stopped]) {
      assert.deepEqual(
        l.map((e) => e.step),
        [...Array(STEPS)].map((_, i) => i + 1),
      );
    }
    assert.equal(two[0].processes, 2);
    for (let i = 0; i < STEPS; i++) {
      assert.ok(
        Math.abs(one[i].loss - two[i].loss) < 1e-4,
        `step ${i + 1}: 1 process ${one[i].loss}, 2: ${two[i].loss}`,
      );
      assert.equal(killed[i].loss, two[i].loss, `step ${i + 1}: the curve resumed after SIGKILL differs`);
      assert.equal(stopped[i].loss, two[i].loss, `step ${i + 1}: the curve resumed after SIGTERM differs`);
    }

    // the lab's own trainer on the same run (same initial weights and batches)
    const lab = await runCli(
      "train",
      ...RUN,
      ...SETTINGS,
      "--runs-dir",
      `${tmp}/lab`,
      "--results",
      `${tmp}/lab`,
    );
    assert.equal(lab.code, 0, lab.stderr);
    const labLog = await readLog(`${tmp}/lab/t/train_log.jsonl`);
    for (let i = 0; i < STEPS; i++) {
      assert.ok(
        Math.abs(labLog[i].loss - two[i].loss) < 1e-4,
        `step ${i + 1}: lab ${labLog[i].loss}, torch ${two[i].loss}`,
      );
      assert.ok(Math.abs(labLog[i].lr - two[i].lr) <= 1e-15 * labLog[i].lr, `step ${i + 1}: learning rate`);
    }

    // import: the lab scores the checkpoint on the job's test bytes as the job did
    const importKilled = () =>
      runCli("import", `${tmp}/killed`, "--results", `${tmp}/results`, "--runs-dir", `${tmp}/runs`);
    const imp = await importKilled();
    assert.equal(imp.code, 0, imp.stderr);
    const line = JSON.parse(decode(imp.stdout).trim());
    assert.equal(line.status, "imported");
    assert.equal(line.run, "t_torch2cpu");
    assert.ok(Math.abs(line.bits_per_byte - line.job_bits_per_byte) < 1e-4, JSON.stringify(line));
    const record = JSON.parse((await Deno.readTextFile(`${tmp}/results/runs.jsonl`)).trim());
    assert.match(record.engine, /^torch \(2 CPU processes: /);
    assert.equal(record.labels.processes, 2);
    assert.equal(record.labels.label, "mambabyte (torch, 2 CPU processes)");
    assert.equal(record.steps, STEPS);
    assert.equal(record.labels.job_commit, job.lab_commit);
    assert.equal(record.final_train_bpb, killed.at(-1)!.loss / Math.LN2);
    const again = await importKilled();
    assert.equal(JSON.parse(decode(again.stdout).trim()).status, "already imported");
    assert.equal((await Deno.readTextFile(`${tmp}/results/runs.jsonl`)).trim().split("\n").length, 1);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("torch: MegaByte and PerceiverAR jobs: the job's test score (every position, a partial last window) is the lab's", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "torch-job-baselines-" });
  try {
    for (const [i, kind] of ["megabyte", "perceiver_ar"].entries()) {
      const dir = `${tmp}/${kind}`;
      const w = await runCli(
        "job",
        "--engine",
        "torch",
        "--device",
        "cpu",
        "--model",
        kind,
        "--size",
        "tiny",
        "--data",
        "books",
        "--scale",
        "smoke",
        "--steps",
        "4",
        "--batch",
        "2",
        "--length",
        "64",
        "--eval-bytes",
        "1000", // windows of 64: the last holds 39 predictions, not a multiple of MegaByte's patch
        "--name",
        "b",
        "--out",
        dir,
      );
      assert.equal(w.code, 0, w.stderr);
      await runJob(dir, 29621 + i);
      const imp = await runCli("import", dir, "--results", `${tmp}/results`, "--runs-dir", `${tmp}/runs`);
      assert.equal(imp.code, 0, imp.stderr);
      const line = JSON.parse(decode(imp.stdout).trim());
      assert.ok(
        Math.abs(line.bits_per_byte - line.job_bits_per_byte) < 1e-4,
        `${kind}: ${JSON.stringify(line)}`,
      );
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("torch: an --fsdp job trains like DDP where torch has fully_shard, and where it has none (Debian's 1.13) stops in one line before writing anything", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "torch-job-fsdp-" });
  try {
    await writeJob(`${tmp}/fsdp`, "--gpus", "2", "--fsdp");
    const run = JSON.parse(await Deno.readTextFile(`${tmp}/fsdp/runs/t/run.json`));
    assert.equal(run.parallel, "fsdp");
    const probe = await new Deno.Command(await python(), {
      args: ["-c", "from torch.distributed.fsdp import fully_shard"],
      stdout: "null",
      stderr: "null",
    }).output();
    if (probe.code === 0) {
      // the same run, its processes holding copies (DDP) or shards (FSDP): the same curve
      await writeJob(`${tmp}/ddp`, "--gpus", "2");
      await runJob(`${tmp}/ddp`, 29641);
      await runJob(`${tmp}/fsdp`, 29642);
      const ddp = await readLog(`${tmp}/ddp/runs/t/train_log.jsonl`);
      const fsdp = await readLog(`${tmp}/fsdp/runs/t/train_log.jsonl`);
      assert.equal(fsdp.length, STEPS);
      fsdp.forEach((e, i) => assert.ok(Math.abs(e.loss - ddp[i].loss) < 1e-4, `step ${e.step}: ${e.loss}`));
      return;
    }
    const out = await (await startJob(`${tmp}/fsdp`, 29643)).output();
    const stderr = decode(out.stderr).trim();
    assert.equal(out.code, 2, stderr);
    assert.equal(stderr.split("\n").length, 1, stderr);
    assert.match(
      stderr,
      /^error: run\.json: parallel is fsdp, which needs PyTorch's fully_shard \(torch 2\.6/,
    );
    assert.deepEqual([...Deno.readDirSync(`${tmp}/fsdp/runs/t`)].map((e) => e.name).sort(), [
      "init",
      "offsets.u64",
      "run.json",
    ]);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("torch: job and import refuse bad input in one line and write nothing", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "torch-job-bad-" });
  try {
    const cases: [string[], RegExp][] = [
      [["--batch", "3", "--gpus", "2"], /--gpus 2/],
      [["--gpus", "2", "--micro-batch", "3"], /--micro-batch 3 must divide the 2 rows/],
      [["--model", "mamba_subword"], /cannot run on the torch engine/],
    ];
    for (const [extra, message] of cases) {
      const r = await jobCli(`${tmp}/job`, "--batch", "4", ...extra);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    }
    assert.deepEqual([...Deno.readDirSync(tmp)], []);
    const engine = await runCli(
      "job",
      "--engine",
      "deepspeed",
      ...RUN,
      "--steps",
      "1",
      "--out",
      `${tmp}/job`,
    );
    assert.equal(engine.code, 2);
    assert.match(engine.stderr, /--engine must be torch/);
    const imp = await runCli("import", tmp, "--results", `${tmp}/results`);
    assert.equal(imp.code, 2);
    assert.match(imp.stderr, /job\.json: cannot read/);
    assert.equal(imp.stderr.trim().split("\n").length, 1, imp.stderr);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
