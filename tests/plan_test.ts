/**
 * Experiment plans (lib/runs/plan.ts): the `large` scale checked against what issue 6/6 asks of it, the
 * ladder / seeds / learning-rate sweep expansion and its bookkeeping, bad plan files, and a whole plan with
 * a sweep trained through `reproduce` at smoke size and resumed.
 */
import assert from "node:assert/strict";
import { InputError } from "../lib/io/errors.ts";
import { isRecorded, pickSweptLr, type Plan, planRuns, planSchedules, readPlan } from "../lib/runs/plan.ts";
import type { RunLike, RunRecord } from "../lib/results/records.ts";
import { extrapolationPrefer, NOISE_SCALES, pickRuns } from "../lib/runs/stages.ts";
import { runCli, useBackend } from "./helpers.ts";
import { presetConfig } from "../lib/models/presets.ts";
import { ladderPoints, sweepResults } from "../lib/results/ladder.ts";
import { ladderFigure } from "../lib/plot/figures/ladder.ts";
import { noiseDomain, noiseScale } from "../lib/plot/figures/noise.ts";
import { figureBuilder } from "../lib/plot/figures/mod.ts";
import { agreement, verdictRuns } from "../lib/plot/readme.ts";
import { computeMatchedTable } from "../lib/results/compute_matched.ts";
import { paperSetupTable, setupTable } from "../lib/results/setup.ts";
import { documentRows, gapSubsetSd } from "../lib/results/subsets.ts";
import { familyRate, RUN_OVERHEAD_S, secondsNeeded } from "../lib/runs/time_left.ts";
import { formatSeconds } from "../lib/util/progress.ts";
import type { RunSpec } from "../lib/runs/experiment.ts";

const SEVEN = [
  "mambabyte",
  "mambabyte_0.375",
  "transformer",
  "perceiver_ar",
  "megabyte",
  "transformer_subword",
  "mamba_subword",
];
const BYTE_MODELS = ["mambabyte", "transformer", "perceiver_ar", "megabyte"];
const short = (name: string) => name.replace(/^compute-matched\/large\//, "");

Deno.test("plan: --models names entries; a seed's or unknown name is refused in one line, not planned as nothing", async () => {
  const plan = await readPlan();
  assert.deepEqual(
    [
      ...new Set(
        planRuns(plan, "large", { models: ["megabyte"], domains: ["books"] }).map((r) => short(r.name)),
      ),
    ]
      .filter((n) => !n.includes("_b0.") && !n.includes("/sweep/")),
    ["books/megabyte", "books/megabyte_seed1", "books/megabyte_seed2"],
  );
  assert.throws(
    () => planRuns(plan, "large", { models: ["megabyte_seed2"] }),
    (e: Error) =>
      e instanceof InputError &&
      /megabyte_seed2 is not an entry .*its seeds run with their entry: --models megabyte\)/.test(e.message),
  );
  assert.throws(
    () => planRuns(plan, "large", { models: ["mambabyt"] }),
    /mambabyt is not an entry .*entries: mambabyte,/,
  );
});

Deno.test("plan: the large scale is the plan issue 6/6 asks for (steps, warm-up, budgets, bytes, seeds, sweep, pairs)", async () => {
  await useBackend("wasm");
  const plan = await readPlan();
  const s = plan.scales.large;
  const runs = planRuns(plan, "large");
  // every run's schedule as training derives it (a run under min_steps would throw here)
  const rows = new Map(planSchedules(runs).map((r) => [short(r.run), r]));
  assert.equal(s.min_steps, 1000);
  for (const [name, r] of rows) {
    assert.ok(r.steps >= 1000, `${name}: ${r.steps} steps`);
    assert.ok(r.warmup > 0 && r.warmup <= 0.05 * r.steps, `${name}: warm-up ${r.warmup} of ${r.steps}`);
  }
  // three budgets spanning at least 10x, the top one 1
  assert.equal(s.budgets!.length, 3);
  assert.ok(s.budgets!.at(-1)! / s.budgets![0] >= 10);
  // books: the seven entries at every budget, three seeds at the top
  for (const e of SEVEN) {
    for (const b of s.budgets!) {
      assert.ok(rows.has(`books/${e}${b === 1 ? "" : `_b${b}`}`), `books ${e} at ${b}`);
    }
    for (const seed of [1, 2]) assert.ok(rows.has(`books/${e}_seed${seed}`), `books ${e} seed ${seed}`);
    // the other four domains: the top budget, one seed
    for (const d of ["code", "stories", "prose", "latex"]) {
      assert.ok(rows.has(`${d}/${e}`), `${d} ${e}`);
      assert.ok(
        !rows.has(`${d}/${e}_b${s.budgets![0]}`) && !rows.has(`${d}/${e}_seed1`),
        `${d} ${e}: top only`,
      );
    }
  }
  // the byte models see at least 50M bytes at the top budget
  for (const e of BYTE_MODELS) {
    assert.ok(rows.get(`books/${e}`)!.tokens >= 50e6, `${e}: ${rows.get(`books/${e}`)!.tokens} bytes`);
  }
  // the sweep: at least 3 values per family, at the lowest budget, scored on the validation split
  const families = new Set(SEVEN.map((e) => s.models[e].model ?? e));
  for (const f of families) {
    const sweep = runs.filter((r) => r.labels?.sweep === f);
    assert.ok(sweep.length >= 3, `${f}: ${sweep.length} learning rates`);
    for (const r of sweep) {
      assert.equal(r.eval.split, "validation");
      assert.equal(r.labels?.budget, s.budgets![0]);
    }
  }
  // every other run waits for its family's sweep (no learning rate typed into a published run)
  assert.ok(runs.every((r) => r.labels?.sweep !== undefined || r.pending), "runs wait for the sweep");
  // the pairs: the subword Mamba on MambaByte's bytes; a Transformer of MambaByte's parameters
  const mb = rows.get("books/mambabyte")!;
  const eqBytes = runs.find((r) => short(r.name) === "books/mamba_subword_equal_bytes")!;
  assert.ok(Math.abs(eqBytes.train.bytes! / mb.tokens - 1) < 0.01, `${eqBytes.train.bytes} vs ${mb.tokens}`);
  const eqParams = rows.get("books/transformer_equal_params")!;
  assert.ok(
    Math.abs(eqParams.parameters / mb.parameters - 1) < 0.05,
    `${eqParams.parameters} vs ${mb.parameters}`,
  );
  // extrapolation: MambaByte and the byte Transformer trained at context 8192 on books
  for (const e of ["mambabyte_8k", "transformer_8k"]) assert.equal(rows.get(`books/${e}`)!.length, 8192);
});

/** A plan of one scale with a sweep, a ladder and an extra seed, for the bookkeeping tests. */
function ladderPlan(): Plan {
  return {
    name: "ladder",
    description: "test",
    scales: {
      smoke: {
        domains: ["books", "code"],
        flops: 4e9,
        budgets: [0.5, 1],
        extra_seeds: [1],
        lr_sweep: [0.5, 1, 2],
        batch: 2,
        length: 64,
        lr: 0.004,
        warmup: 0,
        warmup_fraction: 0.05,
        seed: 0,
        vocab: 512,
        eval: { maxBytes: 2048 },
        models: {
          mambabyte: { size: "tiny" },
          mambabyte_long: {
            model: "mambabyte",
            size: "tiny",
            length: 128,
            ladder: false,
            extra_seeds: false,
          },
          pinned: { model: "mambabyte", size: "tiny", domains: ["code"], lr: 0.001 },
        },
      },
    },
  };
}

/**
 * A sweep run's record as training would write it for ladderPlan's mambabyte sweep (the lowest budget, 2e9
 * FLOPs; rate 0.004 x multiple; scored on validation): what pickSweptLr counts.
 */
function sweepRecord(family: string, multiple: number, bpb: number, lr = 0.004 * multiple): RunRecord {
  return {
    run: `ladder/smoke/books/sweep/${family}_lr${multiple}`,
    scale: "smoke",
    batch: 2,
    length: 64,
    seed: 0,
    lr,
    train_flops: 2e9,
    config: presetConfig(family, "tiny"),
    eval: { split: "validation", bits_per_byte: bpb },
    labels: { plan: "ladder", sweep: family, lr_multiple: multiple },
  } as unknown as RunRecord;
}

Deno.test("plan: a ladder plan expands into the sweep, each budget, the extra seeds; runs wait for the sweep, then take its best rate", () => {
  const plan = ladderPlan();
  const names = (rs: { name: string }[]) => rs.map((r) => r.name.replace("ladder/smoke/", ""));
  const runs = planRuns(plan, "smoke");
  assert.deepEqual(names(runs), [
    "books/sweep/mambabyte_lr0.5",
    "books/sweep/mambabyte_lr1",
    "books/sweep/mambabyte_lr2",
    "books/mambabyte_b0.5",
    "books/mambabyte",
    "books/mambabyte_long",
    "code/mambabyte",
    "code/mambabyte_long",
    "code/pinned",
    "books/mambabyte_seed1",
  ]);
  // the sweep: the lowest budget, the entry's rate times each multiple, validation
  const sweep = runs[1];
  assert.equal(sweep.train.flops, 2e9);
  assert.equal(sweep.train.lr, 0.004);
  assert.equal(runs[2].train.lr, 0.008);
  assert.equal(sweep.eval.split, "validation");
  assert.equal(sweep.pending, undefined);
  // every budget and seed carries the scale's schedule settings
  assert.equal(runs[3].train.flops, 2e9);
  assert.equal(runs[4].train.flops, 4e9);
  assert.equal(runs[4].train.warmupFraction, 0.05);
  assert.equal(runs[9].train.seed, 1);
  assert.equal(runs[9].labels?.seed, 1);
  // mambabyte's runs wait until all three rates are recorded
  assert.match(runs[4].pending ?? "", /sweep of mambabyte \(0 of 3 recorded\)/);
  const partial = planRuns(plan, "smoke", {}, [
    sweepRecord("mambabyte", 0.5, 3.1),
    sweepRecord("mambabyte", 1, 2.9),
  ]);
  assert.match(partial[4].pending ?? "", /2 of 3 recorded/);
  // then take the multiple of lowest validation bits-per-byte (a later record of a run replaces an earlier)
  const recs = [
    sweepRecord("mambabyte", 0.5, 3.1),
    sweepRecord("mambabyte", 1, 2.7),
    sweepRecord("mambabyte", 2, 2.9),
    sweepRecord("mambabyte", 1, 2.95),
    sweepRecord("mambabyte", 2, 2.8),
  ];
  // x2 is now the best, at the sweep's edge: the sweep goes on to x4 and the runs wait for it
  const extended = planRuns(plan, "smoke", {}, recs);
  assert.deepEqual(
    names(extended.filter((r) => r.labels?.sweep)),
    [
      "books/sweep/mambabyte_lr0.5",
      "books/sweep/mambabyte_lr1",
      "books/sweep/mambabyte_lr2",
      "books/sweep/mambabyte_lr4",
    ],
  );
  assert.match(extended[5].pending ?? "", /sweep of mambabyte \(3 of 4 recorded\)/);
  // x4 is worse: x2 lies inside the sweep now, and every run takes it
  const after = planRuns(plan, "smoke", {}, [...recs, sweepRecord("mambabyte", 4, 3.0)]);
  for (const r of after.filter((r) => !r.labels?.sweep)) {
    assert.equal(r.pending, undefined, r.name);
    assert.equal(r.labels?.lr_multiple, 2, r.name);
    // each entry's own rate times the family's multiple
    assert.equal(r.train.lr, r.labels?.entry === "pinned" ? 0.002 : 0.008, r.name);
  }
  assert.deepEqual(pickSweptLr(plan, "smoke", "mambabyte", [...recs, sweepRecord("mambabyte", 4, 3.0)]), {
    multiple: 2,
    edge: false,
  });
  // a record counts for the sweep only if it is the sweep run as planned: another rate (the plan's base
  // rate changed since), another split, or a torch import of it (another name) does not
  const stale = [
    sweepRecord("mambabyte", 0.5, 3.1, 0.003),
    sweepRecord("mambabyte", 1, 2.7),
    sweepRecord("mambabyte", 2, 2.9),
  ];
  assert.match(pickSweptLr(plan, "smoke", "mambabyte", stale).pending ?? "", /2 of 3 recorded/);
  const testSplit = {
    ...sweepRecord("mambabyte", 0.5, 3.1),
    eval: { split: "test", bits_per_byte: 3.1 },
  } as RunRecord;
  assert.match(
    pickSweptLr(plan, "smoke", "mambabyte", [testSplit, ...stale.slice(1)]).pending ?? "",
    /2 of 3/,
  );
  const imported = {
    ...sweepRecord("mambabyte", 0.5, 3.1),
    run: "ladder/smoke/books/sweep/mambabyte_lr0.5_torch1gpu",
  };
  assert.match(
    pickSweptLr(plan, "smoke", "mambabyte", [imported, ...stale.slice(1)]).pending ?? "",
    /2 of 3/,
  );
  // a diverged rate is an outcome: at the top of the sweep it settles it; at every value tried the sweep
  // extends downward, and if all still diverge the family waits, saying why
  const div = (multiple: number) => ({
    run: `ladder/smoke/books/sweep/mambabyte_lr${multiple}`,
    scale: "smoke",
    model: "mambabyte",
    lr: 0.004 * multiple,
    step: 3,
    what: "loss",
  });
  const okThenDiverged = [sweepRecord("mambabyte", 0.5, 3.1), sweepRecord("mambabyte", 1, 2.7)];
  assert.deepEqual(pickSweptLr(plan, "smoke", "mambabyte", okThenDiverged, [div(2)]), {
    multiple: 1,
    edge: false,
  });
  assert.match(
    pickSweptLr(plan, "smoke", "mambabyte", [], [div(0.5), div(1), div(2)]).pending ?? "",
    /\(3 of 4 recorded\)/,
  );
  assert.match(
    pickSweptLr(plan, "smoke", "mambabyte", [], [0.125, 0.25, 0.5, 1, 2].map(div)).pending ?? "",
    /every rate tried diverged/,
  );
  // a best still at the edge after lr_sweep_extend more values is taken, flagged as such
  const falling = [0.5, 1, 2, 4, 8].map((x) => sweepRecord("mambabyte", x, 3 - x / 10));
  assert.deepEqual(pickSweptLr(plan, "smoke", "mambabyte", falling), { multiple: 8, edge: true });
  plan.scales.smoke.lr_sweep_extend = 0;
  assert.deepEqual(pickSweptLr(plan, "smoke", "mambabyte", falling.slice(0, 3)), { multiple: 2, edge: true });
  delete plan.scales.smoke.lr_sweep_extend;
  // a selection by name keeps exactly that run
  assert.deepEqual(names(planRuns(plan, "smoke", { runs: ["ladder/smoke/books/mambabyte_seed1"] }, recs)), [
    "books/mambabyte_seed1",
  ]);
  // explicit seeds replace the scale's: the top budget on every domain, no ladder for seed 3; the family's
  // sweep comes along whatever the selection (its runs wait for it), here still extending to x4
  const sweepNames = [
    "books/sweep/mambabyte_lr0.5",
    "books/sweep/mambabyte_lr1",
    "books/sweep/mambabyte_lr2",
    "books/sweep/mambabyte_lr4",
  ];
  assert.deepEqual(names(planRuns(plan, "smoke", { seeds: [3], models: ["mambabyte"] }, recs)), [
    ...sweepNames,
    "books/mambabyte_seed3",
    "code/mambabyte_seed3",
  ]);
  assert.deepEqual(names(planRuns(plan, "smoke", { domains: ["code"], models: ["pinned"] }, recs)), [
    ...sweepNames,
    "code/pinned",
  ]);
});

Deno.test("plan: isRecorded matches a byte budget by the bytes seen", () => {
  const plan = ladderPlan();
  plan.scales.smoke.models = { mb: { model: "mambabyte", size: "tiny", bytes: 1e6 } };
  delete plan.scales.smoke.lr_sweep;
  const [run] = planRuns(plan, "smoke", { runs: ["ladder/smoke/books/mb"] });
  const rec = (bytes_seen: number) =>
    ({
      run: run.name,
      scale: "smoke",
      batch: 2,
      length: 64,
      seed: 0,
      bytes_seen,
      train_flops: 123,
      config: run.config,
    }) as unknown as RunRecord;
  assert.ok(isRecorded(run, [rec(1.02e6)]));
  assert.ok(!isRecorded(run, [rec(0.5e6)]));
  // a run recorded at another learning rate (its family's sweep has since moved) is not this run
  assert.ok(isRecorded(run, [{ ...rec(1e6), lr: run.train.lr }]));
  assert.ok(!isRecorded(run, [{ ...rec(1e6), lr: run.train.lr * 2 }]));
  // nor is a run still waiting for its sweep, whatever matches it; nor a record scored on another split
  assert.ok(!isRecorded({ ...run, pending: "a sweep" }, [{ ...rec(1e6), lr: run.train.lr }]));
  const onValidation = {
    ...rec(1e6),
    lr: run.train.lr,
    eval: { split: "validation" },
  } as unknown as RunRecord;
  assert.ok(!isRecorded(run, [onValidation]));
});

Deno.test("plan: a bad plan file is refused in one line naming the file and the field", async () => {
  const dir = await Deno.makeTempDir();
  const cases: [(s: Record<string, unknown>) => void, RegExp][] = [
    [
      (s) => s.budgets = [0.1, 0.5],
      /scales\.smoke\.budgets must be fractions of flops, ascending, ending at 1/,
    ],
    [(s) => s.budgets = [0.5, 0.1, 1], /scales\.smoke\.budgets/],
    [(s) => s.lr_sweep = [1, 2], /scales\.smoke\.lr_sweep must list at least 3 distinct/],
    [
      (s) => s.extra_seeds = [0],
      /scales\.smoke\.extra_seeds must be integers >= 0 other than the scale's seed 0/,
    ],
    [(s) => s.warmup_fraction = 1.5, /scales\.smoke\.warmup_fraction must be a fraction/],
    [(s) => s.min_steps = 0.5, /scales\.smoke\.min_steps must be an integer >= 1/],
    [(s) => s.eval = { valPoints: 0 }, /scales\.smoke\.eval\.valPoints must be an integer >= 1/],
    [
      (s) => s.eval = { valPoints: 6, valBytes: 1.5 },
      /scales\.smoke\.eval\.valBytes must be an integer >= 1/,
    ],
    [(s) => s.ladder_domains = ["pg19"], /scales\.smoke\.ladder_domains must list domains/],
    [(s) => s.ladder_domains = ["latex"], /scales\.smoke\.ladder_domains must be among the scale's domains/],
    [(s) => s.extra_seeds = [1, 1], /scales\.smoke\.extra_seeds lists a seed twice/],
    [
      (s) => {
        const m = s.models as Record<string, unknown>;
        m["mambabyte_b0.5"] = m.mambabyte_long;
      },
      /scales\.smoke\.models\.mambabyte_b0\.5 needs a plain name .* not ending in _b<number> or _seed<number>/,
    ],
    [
      (s) => {
        const m = s.models as Record<string, unknown>;
        m["a,b"] = m.mambabyte_long;
      },
      /scales\.smoke\.models\.a,b needs a plain name/,
    ],
    [
      (s) => {
        const m = s.models as Record<string, Record<string, unknown>>;
        m.pinned.model = "transformer";
      },
      /scales\.smoke\.models\.pinned is a transformer, whose learning-rate sweep runs on books, where no transformer entry trains/,
    ],
    [
      (s) => (s.models as Record<string, Record<string, unknown>>).mambabyte.bytes = -1,
      /scales\.smoke\.models\.mambabyte\.bytes must be > 0/,
    ],
    [
      (s) => (s.models as Record<string, Record<string, unknown>>).mambabyte.domains = ["books", "pg19"],
      /scales\.smoke\.models\.mambabyte\.domains must list domains/,
    ],
  ];
  for (const [i, [spoil, message]] of cases.entries()) {
    const plan = ladderPlan() as unknown as { scales: { smoke: Record<string, unknown> } };
    spoil(plan.scales.smoke);
    const path = `${dir}/plan${i}.json`;
    await Deno.writeTextFile(path, JSON.stringify(plan));
    await assert.rejects(readPlan(path), (e: Error) => {
      assert.match(e.message, message);
      assert.ok(e.message.startsWith(`${path}: `), e.message);
      assert.ok(!e.message.includes("\n"), e.message);
      return true;
    });
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("plan: a budget under min_steps is refused before training, naming the run", () => {
  const plan = ladderPlan();
  plan.scales.smoke.min_steps = 1000;
  delete plan.scales.smoke.lr_sweep;
  const runs = planRuns(plan, "smoke", { runs: ["ladder/smoke/books/mambabyte_b0.5"] });
  assert.throws(
    () => planSchedules(runs),
    /run ladder\/smoke\/books\/mambabyte_b0\.5: its budget buys \d+ steps of 2 x 64, fewer than the 1000 the plan asks \(min_steps\)/,
  );
});

Deno.test("cli reproduce --plan: the sweep trains first, the other runs take its best rate, and a second reproduce trains nothing", async () => {
  const tmp = await Deno.makeTempDir();
  const plan = ladderPlan();
  plan.scales.smoke.domains = ["books"];
  plan.scales.smoke.models = { mambabyte: { size: "tiny" } };
  plan.scales.smoke.lr_sweep_extend = 0; // the unit test above covers the extension
  delete plan.scales.smoke.extra_seeds;
  await Deno.writeTextFile(`${tmp}/ladder.json`, JSON.stringify(plan));
  const args = [
    "reproduce",
    "--plan",
    `${tmp}/ladder.json`,
    "--scale",
    "smoke",
    "--results",
    `${tmp}/results`,
    "--runs-dir",
    `${tmp}/runs`,
    "--no-evaluations",
    "--no-figures",
    "--no-notebooks",
  ];
  const listing = () =>
    runCli("plan", "--plan", `${tmp}/ladder.json`, "--scale", "smoke", "--results", `${tmp}/results`);
  const listed = await listing();
  assert.equal(listed.code, 0, listed.stderr);
  assert.match(
    new TextDecoder().decode(listed.stdout),
    /\| books\/mambabyte \| mambabyte \|.*\| \(swept\) \| waits for the learning-rate sweep of mambabyte \(0 of 3 recorded\) \|/,
  );
  // nothing recorded yet: no speed to reckon the time left with
  assert.match(
    new TextDecoder().decode(listed.stdout),
    /to train: 5 runs, .* FLOPs; about 0s of training and evaluation, .* \(5 with no run like them recorded not counted\)/,
  );
  const r = await runCli(...args);
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stderr,
    /5 runs in the plan at scale smoke; 0 already recorded, 3 to run, 2 waiting for a learning-rate sweep/,
  );
  assert.match(r.stderr, /2 more run\(s\) to train with their swept learning rate/);
  const recs: RunRecord[] = (await Deno.readTextFile(`${tmp}/results/runs.jsonl`)).trim().split("\n").map((
    l,
  ) => JSON.parse(l));
  assert.equal(recs.length, 5);
  const sweep = recs.filter((x) => x.labels?.sweep === "mambabyte");
  assert.equal(sweep.length, 3);
  for (const x of sweep) assert.equal(x.eval.split, "validation");
  const best = sweep.reduce((a, b) => (b.eval.bits_per_byte < a.eval.bits_per_byte ? b : a));
  const multiple = best.labels!.lr_multiple as number;
  for (const x of recs.filter((x) => x.labels?.sweep === undefined)) {
    assert.equal(x.labels?.lr_multiple, multiple, x.run);
    assert.equal(x.lr, 0.004 * multiple, x.run);
    assert.equal(x.warmup, Math.round(0.05 * x.steps), x.run);
  }
  // the lower budget is on the ladder: half the FLOPs of the top run
  const top = recs.find((x) => x.run.endsWith("books/mambabyte"))!;
  const low = recs.find((x) => x.run.endsWith("books/mambabyte_b0.5"))!;
  assert.ok(
    Math.abs(low.train_flops / top.train_flops - 0.5) < 0.05,
    `${low.train_flops} vs ${top.train_flops}`,
  );
  const again = await runCli(...args);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /5 runs in the plan at scale smoke; 5 already recorded, 0 to run/);
  assert.equal((await Deno.readTextFile(`${tmp}/results/runs.jsonl`)).trim().split("\n").length, 5);
  // and the listing says so, each run at the rate it was trained with
  const after = await listing();
  const table = new TextDecoder().decode(after.stdout);
  assert.equal(table.match(/\| recorded \|/g)?.length, 5, table);
  assert.match(table, new RegExp(`\\| books/mambabyte \\|.*\\| ${0.004 * multiple} \\| recorded \\|`));
  assert.match(table, /5 runs, .* training FLOPs in all; 5 recorded in /);
  assert.doesNotMatch(table, /to train:/);
  // the base rate changes: every run moves with it, and the run directories trained at the old rates start
  // over instead of refusing to resume
  plan.scales.smoke.lr = 0.003;
  await Deno.writeTextFile(`${tmp}/ladder.json`, JSON.stringify(plan));
  // the listing now reckons the five runs' time at the FLOP rate the family's five records show
  const trained: RunRecord[] = (await Deno.readTextFile(`${tmp}/results/runs.jsonl`)).trim().split("\n")
    .map((l) => JSON.parse(l));
  // (all five are runs of the entry mambabyte, the sweep's included: one rate, one mean evaluation time)
  assert.ok(trained.every((x) => x.labels?.entry === "mambabyte"));
  const flopsAll = trained.reduce((a, x) => a + x.train_flops, 0);
  const rate = flopsAll / trained.reduce((a, x) => a + x.train_wall_s, 0);
  const evalMean = trained.reduce((a, x) => a + x.eval.wall_s, 0) / trained.length;
  const seconds = flopsAll / rate + 5 * (evalMean + RUN_OVERHEAD_S); // the same five budgets again
  const relisted = new TextDecoder().decode((await listing()).stdout);
  assert.match(
    relisted,
    new RegExp(
      `to train: 5 runs, .* FLOPs; about ${formatSeconds(seconds)} of training and evaluation, run after run`,
    ),
  );
  assert.doesNotMatch(relisted, /not counted/);
  // and at the fastest of those five runs, with the quickest evaluation among them
  const fastest = Math.max(...trained.map((x) => x.train_flops / x.train_wall_s));
  const quickest = Math.min(...trained.map((x) => x.eval.wall_s));
  const fastSeconds = flopsAll / fastest + 5 * (quickest + RUN_OVERHEAD_S);
  assert.match(
    relisted,
    new RegExp(`At the fastest recorded run like each .*, about ${formatSeconds(fastSeconds)}`),
  );
  const moved = await runCli(...args);
  assert.equal(moved.code, 0, moved.stderr);
  assert.match(moved.stderr, /5 runs in the plan at scale smoke; 0 already recorded, 3 to run, 2 waiting/);
  assert.match(
    moved.stderr,
    /run ladder\/smoke\/books\/sweep\/mambabyte_lr0\.5: trained at learning rate 0\.002, the plan now gives 0\.0015: starting over/,
  );
  const all: RunRecord[] = (await Deno.readTextFile(`${tmp}/results/runs.jsonl`)).trim().split("\n").map((
    l,
  ) => JSON.parse(l));
  assert.equal(all.length, 10);
  for (const x of all.slice(5)) {
    assert.ok(Math.abs(x.lr! / 0.003 - (x.labels!.lr_multiple as number)) < 1e-9, x.run);
  }
  await Deno.remove(tmp, { recursive: true });
});

Deno.test("ladder: points pool seeds per budget (mean, sample s.d.), skip sweeps and one-budget entries; the sweep table takes the lowest", () => {
  const rec = (
    run: string,
    entry: string,
    budget: number | undefined,
    bpb: number,
    extra: Record<string, unknown> = {},
  ) =>
    ({
      run: `compute-matched/large/books/${run}`,
      model: "mambabyte",
      scale: "large",
      domain: "books",
      seed: (extra.seed as number) ?? 0,
      train_flops: 1e15 * (budget ?? 1),
      lr: 0.002 * ((extra.lr_multiple as number) ?? 1),
      eval: { split: "test", bits_per_byte: bpb },
      labels: {
        plan: "compute-matched",
        entry,
        label: entry,
        ...(budget !== undefined ? { budget } : {}),
        ...extra,
      },
    }) as unknown as RunRecord;
  const records = [
    rec("mambabyte_b0.1", "mambabyte", 0.1, 3.0),
    rec("mambabyte", "mambabyte", 1, 9.9), // replaced below: the latest record of a run counts
    rec("mambabyte", "mambabyte", 1, 2.0),
    rec("mambabyte_seed1", "mambabyte", 1, 2.2, { seed: 1 }),
    rec("mambabyte_seed2", "mambabyte", 1, 2.4, { seed: 2 }),
    // a torch import of seed 2's run is not a fourth seed
    {
      ...rec("mambabyte_seed2_torch1gpu", "mambabyte", 1, 9.0, { seed: 2 }),
      engine: "torch (1 GPU: mamba_ssm)",
    },
    rec("mambabyte_8k", "mambabyte_8k", undefined, 1.9), // not on the ladder
    rec("transformer", "transformer", 1, 2.5), // one budget only: no curve
    rec("sweep/mambabyte_lr0.5", "mambabyte", 0.1, 3.3, { sweep: "mambabyte", lr_multiple: 0.5 }),
    rec("sweep/mambabyte_lr1", "mambabyte", 0.1, 3.1, { sweep: "mambabyte", lr_multiple: 1 }),
    rec("sweep/mambabyte_lr2", "mambabyte", 0.1, 3.1, { sweep: "mambabyte", lr_multiple: 2 }),
  ];
  const curves = ladderPoints(records, "large", "books");
  assert.equal(curves.length, 1);
  const [low, top] = curves[0];
  assert.deepEqual([low.budget, low.bits_per_byte, low.seeds, low.sd], [0.1, 3.0, 1, undefined]);
  assert.equal(top.seeds, 3);
  assert.ok(Math.abs(top.bits_per_byte - 2.2) < 1e-12);
  assert.ok(Math.abs(top.sd! - 0.2) < 1e-12, `${top.sd}`); // sqrt(((-0.2)^2 + 0 + 0.2^2) / 2)
  const [sweep] = sweepResults(records, "large");
  assert.equal(sweep.family, "mambabyte");
  assert.deepEqual(sweep.tried.map((t) => t.multiple), [0.5, 1, 2]);
  // a tie takes the smaller multiple, in the middle of the sweep: not at its edge
  assert.deepEqual([sweep.best, sweep.edge], [1, false]);
  const fig = ladderFigure(records, "large", "books")!;
  assert.equal(fig.data.length, 1);
  assert.deepEqual((fig.data[0] as { y: number[] }).y.map((y) => +y.toFixed(6)), [3.0, 2.2]);
  assert.match(String((fig.data[0] as { name: string }).name), /^mambabyte: 2\.200 ± 0\.200$/);
});

Deno.test("README verdicts: a gap counts only beyond twice the seed s.d.; one seed says that no spread was measured", () => {
  const rec = (entry: string, domain: string, bpb: number, seed?: number) =>
    ({
      run: `compute-matched/large/${domain}/${entry}${seed ? `_seed${seed}` : ""}`,
      model: entry,
      scale: "large",
      domain,
      bytes_seen: 1e6,
      eval: { split: "test", bits_per_byte: bpb },
      labels: { plan: "compute-matched", entry, ...(seed ? { seed } : {}) },
    }) as unknown as RunRecord;
  const runs = (gap: number) => [
    // MambaByte's seeds: mean 2.1, s.d. 0.1; the baselines' seeds have s.d. 0.05
    ...[2.0, 2.1, 2.2].map((v, i) => rec("mambabyte", "books", v, i)),
    ...["transformer", "perceiver_ar", "megabyte"].flatMap((b) =>
      [-0.05, 0, 0.05].map((d, i) => rec(b, "books", 2.1 + gap + d, i))
    ),
  ];
  const line = (gap: number) => agreement(runs(gap), [], [])[2];
  // twice the larger s.d. is 0.2: a gap of 0.25 counts, 0.15 does not
  assert.match(line(0.25), /below all three beyond seed noise on 1 of 1 domains .*Agrees\./);
  assert.match(line(0.25), /Seed spread \(sample s\.d\. over seeds\): mambabyte 0\.100, transformer 0\.050/);
  assert.match(
    line(0.15),
    /below all three beyond seed noise on 0 of 1 domains, within noise on 1 .*Within noise \(seeds or test documents\) on 1 of 1 domains: not a confirmation\./,
  );
  assert.match(line(-0.25), /on 0 of 1 domains .*Does not agree\./);
  // one seed each: the sign decides, and the line says no spread was measured
  const single = [
    rec("mambabyte", "books", 2.1),
    ...["transformer", "perceiver_ar", "megabyte"].map((b) => rec(b, "books", 2.15)),
  ];
  const one = agreement(single, [], [])[2];
  assert.match(
    one,
    /Here: below all three on 1 of 1 domains .*Agrees\. One seed per run: no seed spread is measured/,
  );
});

Deno.test("README verdicts: the same-bytes claim reads the equal-bytes subword Mamba where recorded, the FLOPs-matched one beside it", () => {
  const rec = (
    entry: string,
    bpb: number,
    seed: number,
    o: { parameters: number; bytes: number; flops: number },
  ) =>
    ({
      run: `compute-matched/large/books/${entry}${seed ? `_seed${seed}` : ""}`,
      model: entry === "mambabyte" ? "mambabyte" : "mamba_subword",
      scale: "large",
      domain: "books",
      parameters: o.parameters,
      bytes_seen: o.bytes,
      train_flops: o.flops,
      eval: { split: "test", bits_per_byte: bpb },
      labels: { plan: "compute-matched", entry, ...(seed ? { seed } : {}) },
    }) as unknown as RunRecord;
  const byte = { parameters: 1.8e6, bytes: 75e6, flops: 8e14 };
  const runs = (equalBytes?: number) => [
    // MambaByte's seeds: mean 2.0, s.d. 0.05, so a gap counts beyond 0.1
    ...[1.95, 2.0, 2.05].map((v, i) => rec("mambabyte", v, i, byte)),
    rec("mamba_subword", 2.3, 0, { parameters: 6.7e6, bytes: 70e6, flops: 8e14 }),
    ...(equalBytes === undefined
      ? []
      : [rec("mamba_subword_equal_bytes", equalBytes, 0, { parameters: 2.8e6, bytes: 75e6, flops: 3.6e14 })]),
  ];
  const line = (equalBytes?: number) =>
    agreement(runs(equalBytes), [], []).find((l) => l.includes("training BYTES"))!;
  // the pair's sizes, bytes and FLOPs ratio come from the records
  assert.match(
    line(2.05),
    /MambaByte's width and depth \(2\.80M parameters against 1\.80M.*\(75\.00M against 75\.00M\) at 0\.45x MambaByte's FLOPs; MambaByte is at or below it \(within noise or better\) on 1 of 1 domains \(books 2\.000 vs 2\.050\)\. Agrees\./,
  );
  assert.match(
    line(2.2),
    /Agrees that MambaByte is not behind; here it is ahead beyond noise, where the paper finds the two similar\./,
  );
  assert.match(
    line(1.85),
    /on 0 of 1 domains .*Does not agree: the subword model is ahead beyond noise on every domain\./,
  );
  // a torch job's import of MambaByte's run is not a fourth seed: the means, sizes and spread stay
  const torch = {
    ...rec("mambabyte", 3.0, 0, { parameters: 1.8e6, bytes: 40e6, flops: 4e14 }),
    run: "compute-matched/large/books/mambabyte_torch1gpu",
    labels: { plan: "compute-matched", entry: "mambabyte", engine: "torch", partial: true },
  } as unknown as RunRecord;
  assert.equal(
    agreement([...runs(2.2), torch], [], []).find((l) => l.includes("training BYTES")),
    line(2.2),
  );
  // two domains, the subword model ahead on one: partly
  const code = (r: RunRecord) =>
    ({ ...r, domain: "code", run: r.run.replace("/books/", "/code/") }) as RunRecord;
  const twoDomains = [...runs(2.2), ...runs(1.8).map(code)];
  assert.match(
    agreement(twoDomains, [], []).find((l) => l.includes("training BYTES"))!,
    /on 1 of 2 domains .*Partly agrees: the subword model is ahead beyond noise on 1 of 2\./,
  );
  // one seed each and no document scores: the sign decides, and the line does not speak of noise
  const single = runs(2.2).filter((r) => !r.labels?.seed);
  const one = agreement(single, [], []).find((l) => l.includes("training BYTES"))!;
  assert.match(one, /here it is ahead \(no spread measured\), where the paper/);
  // without any subword run the FLOPs-matched sentence is left out, not printed empty
  const none = agreement(runs().filter((r) => r.labels?.entry === "mambabyte"), [], []).find((l) =>
    l.includes("training BYTES")
  )!;
  assert.doesNotMatch(none, /\(\)/);
  assert.match(none, /matches FLOPs instead.*Not measured yet/);
  // the FLOPs-matched model is reported beside it, and alone without the equal-bytes run
  assert.match(line(2.05), /At equal FLOPs .*books 2\.000 vs 2\.300/);
  assert.match(
    line(),
    /The plan here matches FLOPs instead, so the subword Mamba reads 0\.9x the bytes or more/,
  );
  assert.doesNotMatch(line(), /width and depth/);
});

Deno.test("test-document spread: the bootstrap s.d. of a gap matches its closed form; README verdicts count a gap only beyond twice it", () => {
  const rec = (entry: string, docs: [string, number, number][], seed?: number) =>
    ({
      run: `compute-matched/large/books/${entry}${seed ? `_seed${seed}` : ""}`,
      model: entry,
      scale: "large",
      domain: "books",
      bytes_seen: 1e6,
      eval: {
        split: "test",
        bits_per_byte: docs.reduce((s, [, b, x]) => s + b * x, 0) / docs.reduce((s, [, b]) => s + b, 0),
        documents: docs.map(([name, bytes, bits_per_byte]) => ({ name, bytes, bits_per_byte })),
      },
      labels: { plan: "compute-matched", entry, ...(seed ? { seed } : {}) },
    }) as unknown as RunRecord;
  // two documents of 100 and 300 bytes, gaps 0.4 and 0.0: a resample holds (1, 1), (2, 2) or both, so the
  // gap is 0.4, 0 or 0.1 with probabilities 1/4, 1/4, 1/2
  const a = rec("mambabyte", [["x", 100, 2.0], ["y", 300, 2.0]]);
  const b = rec("transformer", [["x", 100, 2.4], ["y", 300, 2.0]]);
  const mean = 0.4 / 4 + 0.1 / 2, exact = Math.sqrt(0.4 ** 2 / 4 + 0.1 ** 2 / 2 - mean ** 2);
  const sd = gapSubsetSd([a], [b], 40000)!;
  assert.ok(Math.abs(sd - exact) < 0.02 * exact, `${sd} vs ${exact}`);
  // the same gap on every document: no spread; one shared document, or none recorded: undefined
  assert.ok(gapSubsetSd([a], [rec("transformer", [["x", 100, 2.3], ["y", 300, 2.3]])])! < 1e-12);
  assert.equal(gapSubsetSd([a], [rec("transformer", [["x", 100, 2.3]])]), undefined);
  const bare = { ...a, eval: { ...a.eval, documents: undefined } } as RunRecord;
  assert.equal(gapSubsetSd([bare], [b]), undefined);
  // verdicts: every baseline 0.1 above MambaByte overall (one seed each), from one document alone
  const runs = [
    a,
    ...["transformer", "perceiver_ar", "megabyte"].map((e) => rec(e, [["x", 100, 2.4], ["y", 300, 2.0]])),
  ];
  const line = agreement(runs, [], [])[2];
  assert.match(
    line,
    /below all three beyond test-document noise on 0 of 1 domains, within noise on 1 .*Within noise \(seeds or test documents\) on 1 of 1 domains: not a confirmation\./,
  );
  assert.match(line, /spread over resamples of the test documents .*mambabyte vs transformer 0\.1\d\d/);
  assert.match(line, /One seed per run: no seed spread is measured\./);
  // the same gap spread evenly over both documents counts
  const even = [
    a,
    ...["transformer", "perceiver_ar", "megabyte"].map((e) => rec(e, [["x", 100, 2.1], ["y", 300, 2.1]])),
  ];
  assert.match(agreement(even, [], [])[2], /on 1 of 1 domains .*Agrees\./);
  // the per-document table: each entry's highest budget that kept the scores (megabyte's 0.1 run gives way
  // to its top-budget one, and its document z with it), the best whole score first
  const low = {
    ...rec("megabyte", [["x", 100, 3.0], ["z", 50, 3.5]]),
    labels: { plan: "compute-matched", entry: "megabyte", budget: 0.1 },
  } as unknown as RunRecord;
  const t = documentRows([low, ...even, bare], "large", "books");
  assert.deepEqual(t.documents, [{ name: "x", bytes: 100 }, { name: "y", bytes: 300 }]);
  assert.deepEqual(t.rows.map((r) => [r.entry, r.budget, r.bits_per_byte]), [
    ["mambabyte", 1, [2.0, 2.0]],
    ["megabyte", 1, [2.1, 2.1]], // ties keep the records' order (megabyte's entry was met first)
    ["transformer", 1, [2.1, 2.1]],
    ["perceiver_ar", 1, [2.1, 2.1]],
  ]);
  // alone, the lower budget stands, with every document it scored
  assert.deepEqual(documentRows([low], "large", "books").rows.map((r) => [r.budget, r.bits_per_byte]), [[
    0.1,
    [3.0, 3.5],
  ]]);
});

Deno.test("README verdicts read the top budget once every compared model has it, a lower budget of the same scale before", () => {
  const rec = (entry: string, budget: number, bpb: number, scale = "large") =>
    ({
      run: `compute-matched/${scale}/books/${entry}${budget === 1 ? "" : `_b${budget}`}`,
      model: entry,
      scale,
      domain: "books",
      bytes_seen: 1e6,
      eval: { split: "test", bits_per_byte: bpb },
      labels: { plan: "compute-matched", entry, budget },
    }) as unknown as RunRecord;
  const baselines = ["transformer", "perceiver_ar", "megabyte"];
  const ladder = [
    ...["mambabyte", ...baselines].map((e) => rec(e, 0.316, e === "mambabyte" ? 2.4 : 2.6)),
    rec("mambabyte", 1, 2.3), // the top budget: MambaByte alone so far
    ...["mambabyte", ...baselines].map((e) => rec(e, 1, 3.0, "gpu")),
  ];
  assert.deepEqual(verdictRuns(ladder), { scale: "large", budget: 0.316 });
  const lines = agreement(ladder, [], []);
  assert.match(lines[0], /large scale, at 0\.316x of its top budget/);
  assert.match(lines[2], /books 2\.400 vs best baseline 2\.600\)\. Agrees\./);
  const top = [...ladder, ...baselines.map((e) => rec(e, 1, 2.2))];
  assert.deepEqual(verdictRuns(top), { scale: "large", budget: 1 });
  assert.match(agreement(top, [], [])[2], /books 2\.300 vs best baseline 2\.200\)\. Does not agree\./);
  // a domain with MambaByte alone so far is not listed beside the one that compares
  const codeAlone = {
    ...rec("mambabyte", 1, 1.4),
    run: "compute-matched/large/code/mambabyte",
    domain: "code",
  };
  assert.match(
    agreement([...top, codeAlone], [], [])[2],
    /\(books 2\.300 vs best baseline 2\.200\)\. Does not/,
  );
  // a scale where the compared models never meet gives way to the next that has them
  assert.deepEqual(verdictRuns([rec("mambabyte", 1, 2.3), ...ladder.slice(-4)]), { scale: "gpu", budget: 1 });
});

Deno.test("README verdicts: the parameter-matched line reads the Transformer of MambaByte's size at the top budget and on every rung", () => {
  const rec = (entry: string, bpb: number, o: { seed?: number; budget?: number } = {}) =>
    ({
      run: `compute-matched/large/books/${entry}${o.budget ? `_b${o.budget}` : ""}${
        o.seed ? `_seed${o.seed}` : ""
      }`,
      model: entry === "mambabyte" ? "mambabyte" : "transformer",
      scale: "large",
      domain: "books",
      parameters: 1.82e6,
      bytes_seen: 1e6,
      eval: { split: "test", bits_per_byte: bpb },
      labels: {
        plan: "compute-matched",
        entry,
        ...(o.seed ? { seed: o.seed } : {}),
        ...(o.budget ? { budget: o.budget } : {}),
      },
    }) as unknown as RunRecord;
  const entry = "transformer_equal_params";
  // a torch job's import at a rung is the same run on another engine, not the plan's: never read
  const torch = {
    ...rec("mambabyte", 1.0, { budget: 0.1 }),
    run: "compute-matched/large/books/mambabyte_b0.1_torch1gpu",
    labels: { plan: "compute-matched", entry: "mambabyte", budget: 0.1, engine: "torch" },
  } as unknown as RunRecord;
  const runs = (top?: number, rung = 2.25) => [
    torch,
    // MambaByte's seeds at the top: mean 2.0, s.d. 0.05, so a gap counts beyond 0.1
    ...[1.95, 2.0, 2.05].map((v, seed) => rec("mambabyte", v, { seed })),
    rec("mambabyte", 2.6, { budget: 0.1 }),
    rec(entry, 2.8, { budget: 0.1 }),
    rec("mambabyte", 2.3, { budget: 0.316 }),
    rec(entry, rung, { budget: 0.316 }), // 2.25: the Transformer ahead on this rung
    ...(top === undefined ? [] : [rec(entry, top)]),
  ];
  const line = (rs: RunRecord[]) => agreement(rs, [], []).find((l) => l.includes("matched parameters"));
  const rungs =
    "on books MambaByte is lower at 2 of 3 budgets \\(0\\.1x 2\\.600 vs 2\\.800, 0\\.316x 2\\.300 vs 2\\.250, " +
    "1x 1\\.950 vs 2\\.200; the plan's seed, one run each\\)";
  // beyond noise at the top budget, but not on every rung: the curve claim is not confirmed whole
  assert.match(
    line(runs(2.2))!,
    new RegExp(
      `MambaByte is below it beyond seed noise on 1 of 1 domains \\(books 2\\.000 vs 2\\.200\\); ${rungs}\\. ` +
        "Agrees at the verdicts' budget, not on every rung below it\\.",
    ),
  );
  // below on every rung too: agrees
  assert.match(line(runs(2.2, 2.35))!, /lower at 3 of 3 budgets .*\)\. Agrees\. /);
  assert.match(
    line(runs(2.05))!,
    /below it beyond seed noise on 0 of 1 domains, within noise on 1 .*Within noise \(seeds or test documents\) on 1 of 1 domains: not a confirmation\./,
  );
  assert.match(line(runs(1.8))!, /on 0 of 1 domains \(books 2\.000 vs 1\.800\).*Does not agree\./);
  // one budget only: no rung list; one seed each and no document scores: the sign decides, and no noise is claimed
  const topOnly = [rec("mambabyte", 2.0), rec(entry, 2.2)];
  assert.match(
    line(topOnly)!,
    /MambaByte is below it on 1 of 1 domains \(books 2\.000 vs 2\.200\)\. Agrees\./,
  );
  // without the top budget's run there is no line (the rungs alone do not make the verdict)
  assert.equal(line(runs()), undefined);
});

Deno.test("README verdicts: a flat Transformer extrapolation is blamed on training only where the run is within a bit of the unigram entropy", () => {
  const run = (entry: string, bpb: number) =>
    ({
      run: `compute-matched/large/books/${entry}`,
      model: entry,
      scale: "large",
      domain: "books",
      bytes_seen: 1e6,
      eval: { split: "test", bits_per_byte: bpb, unigram_bpb: 4.5 },
      labels: { plan: "compute-matched", entry },
    }) as unknown as RunRecord;
  const curve = (bpbs: number[]) =>
    bpbs.map((b, i) => ({
      run: "compute-matched/large/books/transformer",
      model_kind: "transformer",
      scale: "large",
      mode: "whole",
      status: "ok",
      multiple: 2 ** i,
      bits_per_byte: b,
    }));
  const line = (trained: number, bpbs: number[]) =>
    agreement([run("mambabyte", 2.0), run("transformer", trained)], curve(bpbs), []).find((l) =>
      l.includes("the Transformer does not extrapolate")
    )!;
  // learned (2.4 is 2.1 bits below 4.5) and flat: the paper's claim is not borne out
  assert.match(
    line(2.4, [2.4, 2.41]),
    /2\.400 at 1x, 2\.410 at 2x: no degradation is visible\. Does not agree\.$/,
  );
  // within a bit of the unigram entropy: flat says nothing, and the line says why
  assert.match(
    line(4.0, [4.0, 4.0]),
    /within a bit per byte of its test bytes' unigram entropy \(4\.000 against 4\.500\)/,
  );
  // degrading past the training length: agrees, whatever the training
  assert.match(line(2.4, [2.4, 3.1]), /2\.400 at 1x, 3\.100 at 2x: agrees\.$/);
  // a run recorded twice (an older, unlearned record first): the latest decides
  const again = [run("mambabyte", 2.0), run("transformer", 4.0), run("transformer", 2.4)];
  const flat = curve([2.4, 2.41]);
  const read = (runs: RunRecord[], ext: Record<string, unknown>[]) =>
    agreement(runs, ext, []).find((l) => l.includes("the Transformer does not extrapolate"))!;
  assert.match(read(again, flat), /Does not agree\.$/);
  // an evaluation forced again appends: the latest record at each length is read, and only the run's own
  const other = { ...flat[1], run: "compute-matched/large/code/transformer", multiple: 4, bits_per_byte: 9 };
  assert.match(
    read(again, [...curve([2.5, 3.1]), ...flat, other]),
    /2\.400 at 1x, 2\.410 at 2x: no degradation/,
  );
  // no unigram entropy recorded for the run: the line says it cannot tell
  const unknown = again.map((r) => ({ ...r, eval: { split: "test", bits_per_byte: r.eval.bits_per_byte } }));
  assert.match(read(unknown as RunRecord[], flat), /whether this Transformer learned is not recorded/);
});

Deno.test("setup tables: each entry's parameters, seeds, steps, warm-up, rates, bytes and FLOPs from its runs; the paper's recipe beside MambaByte's", () => {
  const rec = (domain: string, seed: number, steps: number, lr?: number) =>
    ({
      run: `compute-matched/large/${domain}/mambabyte${seed ? `_seed${seed}` : ""}`,
      model: "mambabyte",
      scale: "large",
      domain,
      config: { d_model: 256, n_layer: 4 },
      parameters: 1817856,
      steps,
      warmup: Math.round(0.02 * steps),
      ...(lr !== undefined ? { lr } : {}),
      batch: 4,
      length: 1024,
      seed,
      bytes_seen: steps * 4096,
      train_flops: steps * 4096 * 11.6e6,
      eval: { split: "test", bits_per_byte: 2 },
      labels: { plan: "compute-matched", entry: "mambabyte", label: "MambaByte", ...(seed ? { seed } : {}) },
    }) as unknown as RunRecord;
  const runs = [rec("books", 0, 1000, 0.004), rec("books", 1, 1000, 0.004), rec("code", 0, 1200, 0.004)];
  const t = setupTable(runs, "large");
  assert.deepEqual(t.rows, [[
    "MambaByte",
    "1,817,856",
    "3",
    "2",
    "1000-1200",
    "20-24",
    "0.004",
    "4 x 1024",
    "4.10e6-4.92e6",
    "4.75e13-5.70e13",
  ]]);
  const p = paperSetupTable(runs, "large", { beta1: 0.9, beta2: 0.95, clipNorm: 1, minLrRatio: 0.1 })!;
  const row = (name: string) => p.rows.find((r) => r[0] === name)!;
  assert.deepEqual(row("parameters"), [
    "parameters",
    "353M (d 1024 x 53 layers)",
    "1,817,856 (d 256 x 4 layers)",
  ]);
  assert.equal(row("seeds")[2], "2 on books");
  assert.match(row("optimizer and schedule")[2], /peak lr 0\.004, 20-24 warm-up steps/);
});

Deno.test("README verdicts: nothing to compare yet says so instead of agreeing", () => {
  const rec = {
    run: "compute-matched/large/books/mambabyte",
    model: "mambabyte",
    scale: "large",
    domain: "books",
    bytes_seen: 1e6,
    eval: { split: "test", bits_per_byte: 2 },
    labels: { plan: "compute-matched", entry: "mambabyte" },
  } as unknown as RunRecord;
  const lines = agreement([rec], [], []);
  assert.match(
    lines[2],
    /on 0 of 0 domains .*Not measured yet: no domain has all of these models recorded\./,
  );
  assert.doesNotMatch(lines.join("\n"), /Agrees|Infinity/);
});

Deno.test("evaluation stages pick, per family: extrapolation the longest trained context, noise the principal entry on every domain where asked", () => {
  const run = (
    entry: string,
    model: string,
    domain: string,
    length: number,
    extra: Record<string, unknown> = {},
  ) =>
    ({
      run: `compute-matched/large/${domain}/${entry}`,
      model,
      domain,
      scale: "large",
      length,
      train_flops: 8.7e14,
      labels: { entry, budget_ratio: 1, ...extra },
    }) as RunLike;
  const runs = [
    run("mambabyte", "mambabyte", "books", 1024),
    run("mambabyte_8k", "mambabyte", "books", 8192),
    run("mambabyte_0.375", "mambabyte", "books", 1024, { budget_ratio: 0.375 }),
    run("transformer_equal_params", "transformer", "books", 1024),
    run("transformer", "transformer", "books", 1024),
    run("transformer_8k", "transformer", "books", 8192),
    run("mambabyte", "mambabyte", "code", 1024),
    run("transformer", "transformer", "code", 1024),
  ];
  const names = (rs: RunLike[]) => rs.map((r) => r.run.replace("compute-matched/large/", ""));
  assert.deepEqual(names(pickRuns(runs, ["mambabyte", "transformer"], undefined, extrapolationPrefer)), [
    "books/mambabyte_8k",
    "books/transformer_8k",
  ]);
  // the default preference: the entry named as its family, not a variant of equal budget
  assert.deepEqual(names(pickRuns(runs, ["mambabyte", "transformer"], "all")), [
    "books/mambabyte",
    "books/transformer",
    "code/mambabyte",
    "code/transformer",
  ]);
  assert.equal(NOISE_SCALES.large.allDomains, true);
});

Deno.test("cli reproduce --plan: a sweep rate that diverges is recorded as an outcome, not retried, and the family takes the best of the others", async () => {
  const tmp = await Deno.makeTempDir();
  const plan = ladderPlan();
  plan.scales.smoke.domains = ["books"];
  plan.scales.smoke.models = { mambabyte: { size: "tiny" } };
  plan.scales.smoke.lr_sweep = [0.5, 1, 100000]; // 400: the loss is NaN within a few steps
  plan.scales.smoke.lr_sweep_extend = 0;
  delete plan.scales.smoke.extra_seeds;
  await Deno.writeTextFile(`${tmp}/div.json`, JSON.stringify(plan));
  const args = ["reproduce", "--plan", `${tmp}/div.json`, "--scale", "smoke", "--results", `${tmp}/results`];
  const reproduce = () =>
    runCli(...args, "--runs-dir", `${tmp}/runs`, "--no-evaluations", "--no-figures", "--no-notebooks");
  const r = await reproduce();
  assert.equal(r.code, 0, r.stderr);
  assert.equal(
    r.stderr.match(/sweep\/mambabyte_lr100000 diverged: its sweep counts the rate as too high/g)?.length,
    1,
  );
  const [div] = (await Deno.readTextFile(`${tmp}/results/diverged.jsonl`)).trim().split("\n").map((l) =>
    JSON.parse(l)
  );
  assert.equal(div.run, "ladder/smoke/books/sweep/mambabyte_lr100000");
  assert.equal(div.lr, 400);
  const recs: RunRecord[] = (await Deno.readTextFile(`${tmp}/results/runs.jsonl`)).trim().split("\n").map((
    l,
  ) => JSON.parse(l));
  const sweep = recs.filter((x) => x.labels?.sweep);
  const best =
    sweep.reduce((a, b) => (b.eval.bits_per_byte < a.eval.bits_per_byte ? b : a)).labels!.lr_multiple;
  for (const x of recs.filter((x) => !x.labels?.sweep)) assert.equal(x.labels?.lr_multiple, best, x.run);
  const listed = new TextDecoder().decode(
    (await runCli("plan", "--plan", `${tmp}/div.json`, "--scale", "smoke", "--results", `${tmp}/results`))
      .stdout,
  );
  assert.match(listed, /\| books\/sweep\/mambabyte_lr100000 \|.*\| diverged \(counted by its sweep\) \|/);
  const again = await reproduce();
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /5 runs in the plan at scale smoke; 5 already recorded, 0 to run/);
  await Deno.remove(tmp, { recursive: true });
});

/** A noise record of `kind` on `domain` at `scale` whose word perplexity grows `ratio` times (clean: 100). */
const noiseRecord = (
  scale: string,
  domain: string,
  kind: string,
  noise: string,
  p: number,
  ratio: number,
) => ({
  experiment: "noise",
  scale,
  domain,
  model_kind: kind,
  model_dir: `runs/${scale}/${domain}/${kind}/model`,
  label: kind === "mambabyte" ? "MambaByte" : "Mamba (subword)",
  noise,
  p,
  bits_per_byte: 2,
  delta_bits_per_byte: 0,
  word_perplexity: 100 * ratio,
  delta_word_perplexity: 100 * (ratio - 1),
  ratio_word_perplexity: ratio,
  words: 1000,
  seed: 0,
});

Deno.test("noise on several domains: the noise table keeps books, noise_domains counts each domain's settings", async () => {
  const rec = (domain: string, kind: string, noise: string, p: number, ratio: number) =>
    noiseRecord("large", domain, kind, noise, p, ratio);
  const noise = ["books", "code"].flatMap((d) => [
    rec(d, "mambabyte", "none", 0, 1),
    rec(d, "mamba_subword", "none", 0, 1),
    rec(d, "mambabyte", "drop", 0.05, d === "books" ? 1.5 : 3),
    rec(d, "mamba_subword", "drop", 0.05, 2),
    rec(d, "mambabyte", "swap", 0.05, 1.2),
    rec(d, "mamba_subword", "swap", 0.05, 4),
  ]);
  const ctx = { anchorsDir: "/nonexistent" };
  const built = await figureBuilder("noise_domains").build({ noise }, ctx);
  assert.ok(built && "table" in built);
  assert.deepEqual(built.table.rows.map((r) => r.slice(0, 2)), [["books", "2 of 2"], ["code", "1 of 2"]]);
  // the mean ln ratio, by hand: books MambaByte (ln 1.5 + ln 1.2) / 2
  assert.equal(built.table.rows[0][2], ((Math.log(1.5) + Math.log(1.2)) / 2).toFixed(2));
  const table = await figureBuilder("noise").build({ noise }, ctx);
  assert.ok(table && "table" in table);
  assert.match(table.table.note ?? "", /^Noise robustness on books/);
  // one column pair per model of books (the noise, the two models' two quantities, the paper's two)
  assert.equal(table.table.columns.length, 1 + 2 * 2 + 2, table.table.columns.join(" | "));
  assert.ok(
    table.table.rows.every((r) => !r.join(" ").includes("×3")),
    "code's records stay out of the books table",
  );
  assert.match(built.table.note ?? "", /the noise table shows books setting by setting/);
  // a domain with MambaByte's records alone compares nothing: not a row (books here, its subword Mamba
  // not evaluated); the note names code, the domain the noise table then shows
  const later = [
    ...noise.filter((r) => !(r.domain === "books" && r.model_kind === "mamba_subword")),
    ...noise.filter((r) => r.domain === "code").map((r) => ({
      ...r,
      domain: "latex",
      model_dir: r.model_dir.replace("/code/", "/latex/"),
    })),
  ];
  const some = await figureBuilder("noise_domains").build({ noise: later }, ctx);
  assert.ok(some && "table" in some);
  assert.deepEqual(some.table.rows.map((r) => r[0]), ["code", "latex"]);
  assert.match(some.table.note ?? "", /the noise table shows code setting by setting/);
});

Deno.test("noise: the figures and the README's verdict read the largest scale comparing MambaByte with the subword Mamba", async () => {
  const rec = (scale: string, kind: string, noise: string, p: number, ratio: number) =>
    noiseRecord(scale, "books", kind, noise, p, ratio);
  // gpu: both models, MambaByte growing less in 1 of 2 settings; large: MambaByte alone (its copy came back
  // first), growing less than the gpu subword Mamba everywhere, which must not count
  const gpu = [
    rec("gpu", "mambabyte", "none", 0, 1),
    rec("gpu", "mamba_subword", "none", 0, 1),
    rec("gpu", "mambabyte", "drop", 0.05, 1.5),
    rec("gpu", "mamba_subword", "drop", 0.05, 2),
    rec("gpu", "mambabyte", "swap", 0.05, 5),
    rec("gpu", "mamba_subword", "swap", 0.05, 4),
  ];
  const large = [rec("large", "mambabyte", "none", 0, 1), rec("large", "mambabyte", "drop", 0.05, 1.1)];
  const runs = ["mambabyte", "transformer", "perceiver_ar", "megabyte"].map((entry, i) =>
    ({
      run: `compute-matched/large/books/${entry}`,
      model: entry,
      scale: "large",
      domain: "books",
      bytes_seen: 1e6,
      eval: { split: "test", bits_per_byte: 2 + i / 10 },
      labels: { plan: "compute-matched", entry },
    }) as unknown as RunRecord
  );
  const verdict = (noise: Record<string, unknown>[]) =>
    agreement(runs, [], noise).find((l) => l.includes("grows less under noise"));
  assert.equal(noiseScale([...gpu, ...large]), "gpu");
  // half of the settings is neither agreement nor its opposite; no other domain is compared there
  assert.match(
    verdict([...gpu, ...large])!,
    /Here \(gpu scale, books\) .* smaller in 1 of 2 settings \(not in: swap p=0\.05\)\. Half of the settings: not a confirmation\.$/,
  );
  const ctx = { anchorsDir: "/nonexistent" };
  const fig = await figureBuilder("noise_word_ppl").build({ noise: [...gpu, ...large] }, ctx);
  assert.ok(fig && "figure" in fig);
  assert.match(JSON.stringify(fig.figure.layout), /gpu scale/);
  // once the large scale compares the two, it is read
  const both = [
    ...large,
    rec("large", "mamba_subword", "none", 0, 1),
    rec("large", "mamba_subword", "drop", 0.05, 1.4),
  ];
  assert.equal(noiseScale([...gpu, ...both]), "large");
  assert.match(verdict([...gpu, ...both])!, /Here \(large scale, books\) .* smaller in 1 of 1 settings/);
  // at large, books holds MambaByte alone (a seed's copy) and code holds both: the verdict and the figures
  // read code there, not books
  const code = [
    noiseRecord("large", "code", "mambabyte", "none", 0, 1),
    noiseRecord("large", "code", "mambabyte", "drop", 0.05, 3),
    noiseRecord("large", "code", "mamba_subword", "none", 0, 1),
    noiseRecord("large", "code", "mamba_subword", "drop", 0.05, 2),
  ];
  assert.equal(noiseScale([...gpu, ...large, ...code]), "large");
  assert.equal(noiseDomain([...large, ...code]), "code");
  assert.match(
    verdict([...gpu, ...large, ...code])!,
    /Here \(large scale, code\) .* smaller in 0 of 1 settings/,
  );
  const codeFig = await figureBuilder("noise_word_ppl").build({ noise: [...gpu, ...large, ...code] }, ctx);
  assert.ok(codeFig && "figure" in codeFig);
  assert.match(JSON.stringify(codeFig.figure.layout), /\(code, large scale\)/);
  // books comparing too: the verdict reads books, and names code's count beside it
  assert.match(
    verdict([...gpu, ...both, ...code])!,
    /Here \(large scale, books\) .* smaller in 1 of 1 settings \(not in: none\)\. Agrees\. On the other domains compared \(the noise_domains table\): code 0 of 1\.$/,
  );
  // no scale compares them: the largest with records (its table alone), and no verdict line
  assert.equal(noiseScale(large), "large");
  assert.equal(verdict(large), undefined);
});

Deno.test("reproduce --time-left: a run that the speed recorded for runs like it says cannot finish is not started; one that can is trained", async () => {
  // the estimate: FLOPs still to do (after a checkpoint it resumes from) at the FLOP rate of runs like it,
  // plus their evaluation's mean time and a process's start (RUN_OVERHEAD_S)
  const rec = (entry: string, flops: number, seconds: number, bytes: number, evalS: number, batch = 4) =>
    ({
      model: "mambabyte",
      scale: "smoke",
      batch,
      length: 64,
      train_flops: flops,
      train_wall_s: seconds,
      bytes_seen: bytes,
      eval: { wall_s: evalS },
      labels: { entry },
    }) as unknown as RunRecord;
  const records = [
    rec("mambabyte", 4e9, 2, 1e6, 3),
    rec("mambabyte", 8e9, 6, 3e6, 5),
    // another entry of the family, at half the batch and half the speed
    rec("mambabyte_half", 1e9, 2, 1e6, 1, 2),
  ];
  assert.deepEqual(familyRate(records, "mambabyte", "smoke"), {
    flopsPerSecond: 13e9 / 10,
    flopsPerByte: 13e9 / 5e6,
    evalSeconds: 3,
  });
  assert.equal(familyRate(records, "megabyte", "smoke"), undefined);
  const tmp = await Deno.makeTempDir();
  try {
    const spec = (entry: string, train: Record<string, unknown>, batch = 4) =>
      ({
        name: `t/smoke/books/${entry}`,
        model: "mambabyte",
        scale: "smoke",
        train: { batch, length: 64, lr: 0.004, ...train },
        labels: { entry },
      }) as unknown as RunSpec;
    // its own entry's rate: 12e9 FLOPs in 8 s, evaluations of 4 s on average
    assert.equal(
      await secondsNeeded(spec("mambabyte", { flops: 3e9 }), records, `${tmp}/none`),
      2 + 4 + RUN_OVERHEAD_S,
    );
    // the other entry at its own, slower rate (its records alone: 1e9 FLOPs in 2 s)
    assert.equal(
      await secondsNeeded(spec("mambabyte_half", { flops: 1e9 }, 2), records, `${tmp}/none`),
      2 + 1 + RUN_OVERHEAD_S,
    );
    // a new entry of that batch: the family's records of the same batch and length
    assert.equal(
      await secondsNeeded(spec("other", { flops: 1e9 }, 2), records, `${tmp}/none`),
      2 + 1 + RUN_OVERHEAD_S,
    );
    // a checkpoint halfway, at the spec's learning rate: half the training left; at another rate: all of it
    await Deno.mkdir(`${tmp}/run/checkpoint`, { recursive: true });
    const state = (lr: number) =>
      Deno.writeTextFile(
        `${tmp}/run/checkpoint/trainer_state.json`,
        JSON.stringify({ step: 6, fingerprint: { steps: 12, lr } }),
      );
    await state(0.004);
    assert.equal(
      await secondsNeeded(spec("mambabyte", { flops: 3e9 }), records, `${tmp}/run`),
      1 + 4 + RUN_OVERHEAD_S,
    );
    await state(0.002);
    assert.equal(
      await secondsNeeded(spec("mambabyte", { flops: 3e9 }), records, `${tmp}/run`),
      2 + 4 + RUN_OVERHEAD_S,
    );
    // a byte budget at its own entry's FLOPs per byte (12e9 / 4e6); with no record of its entry, no estimate
    assert.equal(
      await secondsNeeded(spec("mambabyte", { bytes: 1e6 }), records, `${tmp}/none`),
      2 + 4 + RUN_OVERHEAD_S,
    );
    assert.equal(await secondsNeeded(spec("other", { bytes: 1e6 }), records, `${tmp}/none`), undefined);
    assert.equal(
      await secondsNeeded({ ...spec("x", { flops: 1e9 }), model: "megabyte" }, records, `${tmp}/none`),
      undefined,
    );

    // the command: a slow recorded speed for the family (another plan's run) keeps the run from starting
    const plan = ladderPlan();
    plan.scales.smoke.domains = ["books"];
    plan.scales.smoke.models = { mambabyte: { size: "tiny" } };
    delete plan.scales.smoke.lr_sweep;
    delete plan.scales.smoke.budgets;
    delete plan.scales.smoke.extra_seeds;
    await Deno.writeTextFile(`${tmp}/one.json`, JSON.stringify(plan));
    await Deno.mkdir(`${tmp}/results`);
    const slow = {
      run: "other/smoke/books/mambabyte",
      model: "mambabyte",
      domain: "books",
      scale: "smoke",
      train_flops: 1e9,
      train_wall_s: 1e6,
      bytes_seen: 1e6,
      eval: { split: "test", bits_per_byte: 3 },
      labels: { plan: "other" },
    };
    await Deno.writeTextFile(`${tmp}/results/runs.jsonl`, JSON.stringify(slow) + "\n");
    const args = (left: string) => [
      "reproduce",
      "--plan",
      `${tmp}/one.json`,
      "--scale",
      "smoke",
      "--results",
      `${tmp}/results`,
      "--runs-dir",
      `${tmp}/runs`,
      "--no-evaluations",
      "--no-figures",
      "--no-notebooks",
      "--time-left",
      left,
    ];
    let r = await runCli(...args("600"));
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      /run ladder\/smoke\/books\/mambabyte: not started: about .* of training and evaluation left at the speed recorded for runs like it/,
    );
    assert.match(
      r.stderr,
      /1 run\(s\) not started for lack of time \(--time-left\): ladder\/smoke\/books\/mambabyte/,
    );
    assert.equal((await Deno.readTextFile(`${tmp}/results/runs.jsonl`)).trim().split("\n").length, 1);
    // at the speed the run itself records once it is trained, the same limit lets it start
    await Deno.writeTextFile(
      `${tmp}/results/runs.jsonl`,
      JSON.stringify({ ...slow, train_wall_s: 1e-3 }) + "\n",
    );
    r = await runCli(...args("600"));
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /not started/);
    assert.equal((await Deno.readTextFile(`${tmp}/results/runs.jsonl`)).trim().split("\n").length, 2);
    r = await runCli(...args("0"));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--time-left must be a positive number of seconds, got "0"/);
    // a sweep left for lack of time: the runs waiting on it are not started either, and that is no failure
    const swept = ladderPlan();
    swept.scales.smoke.domains = ["books"];
    swept.scales.smoke.models = { mambabyte: { size: "tiny" } };
    delete swept.scales.smoke.budgets;
    delete swept.scales.smoke.extra_seeds;
    await Deno.writeTextFile(`${tmp}/one.json`, JSON.stringify(swept));
    await Deno.writeTextFile(`${tmp}/results/runs.jsonl`, JSON.stringify(slow) + "\n");
    r = await runCli(...args("600"));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /3 run\(s\) not started for lack of time/);
    assert.match(
      r.stderr,
      /ladder\/smoke\/books\/mambabyte: not started: it waits for the learning-rate sweep/,
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("compute-matched table: a cell is its seeds' mean; a model's order, bytes and FLOPs weigh each domain once", () => {
  const row = (model: string, domain: string, bpb: number, bytes: number) => ({
    model,
    kind: "mambabyte",
    domain,
    parameters: 1e6,
    bytes_seen: bytes,
    train_flops: bytes * 10,
    train_bytes_per_s: 1e3,
    bits_per_byte: bpb,
    word_perplexity: NaN,
    eval_bytes: 1e5,
  });
  const rows = [
    // A: three seeds on books (mean 1.0, s.d. 0.1), one run on code; over domains (1.0 + 3.0) / 2 = 2.0
    row("A", "books", 0.9, 10e6),
    row("A", "books", 1.0, 10e6),
    row("A", "books", 1.1, 10e6),
    row("A", "code", 3.0, 50e6),
    // B: (1.2 + 2.6) / 2 = 1.9, so B is listed first; a seed without a finite score is left out
    row("B", "books", 1.2, 10e6),
    row("B", "code", 2.6, 50e6),
    row("B", "code", NaN, 50e6),
    // C: books only (0.5): below both there, but listed after the models of both domains
    row("C", "books", 0.5, 10e6),
  ];
  const t = computeMatchedTable(rows, "large");
  assert.deepEqual(t.rows.map((r) => r[0]), ["B", "A", "C"]);
  assert.match(t.note, /those on fewer domains \(the plan's variants\) after those on all/);
  const a = t.rows[1], b = t.rows[0];
  assert.equal(a[t.columns.indexOf("bytes seen")], "30.0M"); // (10M + 50M) / 2, not (3 x 10M + 50M) / 4
  assert.equal(a[t.columns.indexOf("train FLOPs")], "300M");
  assert.match(a[t.columns.findIndex((c) => c.startsWith("books"))], /^1\.000 ± 0\.100, 3 seeds/);
  assert.match(a[t.columns.findIndex((c) => c.startsWith("code"))], /^3\.000( |$)/);
  assert.match(b[t.columns.findIndex((c) => c.startsWith("code"))], /^2\.600( |$)/);
  assert.match(t.note, /its cell is their mean ± sample s\.d\./);
});

Deno.test("gpu_plan.sh: the results directory starts from the scale's published records, less the runs GPU_PLAN_RETRAIN names", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gpu-plan-" });
  try {
    const rec = (run: string, scale = "large", time = "old") =>
      JSON.stringify({ run: `compute-matched/${scale}/${run}`, scale, time });
    const published = [
      rec("books/transformer_8k"),
      rec("books/transformer_8k_b0.1"), // a name the retrained one begins: kept
      rec("books/mambabyte"),
      rec("books/mambabyte", "gpu"), // another scale: never copied
    ];
    await Deno.mkdir(`${dir}/data/results`, { recursive: true });
    await Deno.writeTextFile(`${dir}/data/results/runs.jsonl`, published.join("\n") + "\n");
    await Deno.writeTextFile(`${dir}/data/results/diverged.jsonl`, "");
    const results = `${dir}/data/tmp/gpu/results-large/runs.jsonl`;
    const script = new URL("../lib/gpu_plan.sh", import.meta.url).pathname;
    // no processes to start: the call seeds the results directory, then finds nothing to run (and no logs
    // to pack, so its exit status says nothing here)
    const call = async (retrain: string) =>
      new TextDecoder().decode(
        (await new Deno.Command("bash", {
          args: [script, "1"],
          cwd: dir,
          env: { GPU_PLAN_SCALE: "large", GPU_PLAN_RETRAIN: retrain, OUT: `${dir}/out` },
          stdout: "null",
          stderr: "piped",
        }).output()).stderr,
      );
    const seeded = async () => (await Deno.readTextFile(results)).trim().split("\n");
    await call("books/transformer_8k");
    assert.deepEqual(await seeded(), [published[1], published[2]]);
    // a warm machine: an earlier call without the variable copied the published record in, and this
    // machine's own retrained record arrives later; the published one goes, the machine's stays
    await Deno.writeTextFile(results, published.slice(0, 3).join("\n") + "\n");
    await call("books/transformer_8k");
    assert.deepEqual(await seeded(), [published[1], published[2]]);
    const retrained = rec("books/transformer_8k", "large", "new");
    await Deno.writeTextFile(results, retrained + "\n", { append: true });
    await call("books/transformer_8k");
    assert.deepEqual(await seeded(), [published[1], published[2], retrained]);
    // a name with no published record is said on one line
    assert.match(
      await call("books:transformer_8k"),
      /GPU_PLAN_RETRAIN: no published record of books:transformer_8k at scale large/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
