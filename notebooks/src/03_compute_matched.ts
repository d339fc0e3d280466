import { code, md } from "../../lib/notebook/build.ts";

export default [
  md`
  # 03 · The compute-matched comparison (the paper's Table 1 and Figure 1, at this lab's scales)

  The paper's main claim: at matched training compute, MambaByte beats byte-level Transformers, PerceiverAR
  and MegaByte, and is competitive with subword models. Here every model is trained by the same trainer
  (\`lib/train/trainer.ts\`) and evaluated by the same scorer (\`lib/eval/score.ts\`: total negative
  log-likelihood of the test split divided by its bytes, so subword models are scored in bits per BYTE of the
  same text).

  The plan (\`data/plans/compute-matched.json\`) gives every byte-level baseline the same training FLOPs
  (forward + backward, counted per model in \`lib/models/\`, attention and scan terms included); MambaByte runs
  twice, on the same FLOPs and on 0.375x of them, as the paper trained MambaByte-353M on 30B bytes against the
  baselines' 80B at about equal FLOPs per byte. \`deno task reproduce --scale S\` runs the plan and writes one
  record per run to \`data/results/runs.jsonl\`; this notebook reads those records only.
  `,
  code`
  import * as mb from "../lib/mod.ts";
  const SCALE = mb.currentScale();
  const all = await mb.readRecords<mb.RunRecord>("runs", mb.resultsDir());
  const runs = mb.latestRuns(all, SCALE);
  const domains = [...new Set(runs.map((r) => r.domain))];
  console.log(runs.length
    ? \`scale \${SCALE}: \${runs.length} runs on \${domains.join(", ")} (commits \${[...new Set(runs.map((r: any) => r.provenance.commit))].join(", ")})\`
    : \`no compute-matched runs recorded at scale \${SCALE}: run deno task reproduce --scale \${SCALE}\`);
  `,
  md`
  ## Test bits-per-byte per domain, beside the paper

  Ours first, the paper's Table 1 value in parentheses for the matching model family and the paper's domain
  this one stands in for (books → PG19, stories → Stories, prose → Books, latex → ArXiv, code → Code).
  **The scales differ by five orders of magnitude** (see the parameters and bytes columns): compare the ordering.
  `,
  code`
  // every seed's run: a cell with several seeds shows their mean ± sample s.d.
  const table = mb.computeMatchedTable(mb.matchedRows(mb.latestRuns(all, SCALE, undefined, true)), SCALE);
  if (runs.length) await mb.showTable(table.rows.map((r) => Object.fromEntries(table.columns.map((c, i) => [c, r[i]]))), { caption: table.note });
  `,
  md`
  ## The budget ladder, the learning-rate sweeps and the test documents

  At a scale whose plan has a budget ladder (\`large\`): test bits-per-byte at each rung against its FLOPs, one
  curve per entry with seeds' error bars; each family's sweep of learning rates at the lowest rung (validation
  split), which set the rate of its other runs; and each model's bits-per-byte on each books test document, the
  spread the README's verdicts count gaps against. Other scales say there is nothing recorded.
  `,
  code`
  for (const name of ["compute_matched_ladder_books", "lr_sweep", "test_documents_books"]) {
    await mb.figures.showRegistered(name, { resultsDir: mb.resultsDir(), scale: SCALE });
  }
  `,
  md`
  ## Bits-per-byte against training FLOPs (the paper's Figure 1 analogue)

  Lines: the training loss (bits per byte of the random training windows, averaged over about 2% of the run
  per point) against the FLOPs spent so far; diamonds: the test bits-per-byte at the end of training.
  `,
  code`
  for (const d of domains) {
    // where the scale has a budget ladder, its entries; then the single-budget variants beside their families
    const { ladder, variants } = mb.splitByLadder(all, runs, SCALE, d);
    await mb.showFigure(mb.computeMatchedFigure(ladder, d, SCALE));
    if (variants.length) await mb.showFigure(mb.computeMatchedFigure(variants, d, SCALE, [], "variants"));
  }
  `,
  md`
  ## Training throughput on this run's hardware

  Bytes per second of whole training steps (AdamW included), from the same records; \`engine\` is what ran
  the steps: the lab's native engine, TF.js, or PyTorch's distributed engine (a torch job, with its GPU or
  process count). Each record's provenance names the machine.
  `,
  code`
  if (runs.length) await mb.showTable(runs.map((r: any) => ({
    run: r.run.split("/").slice(-2).join("/"), model: r.labels?.label ?? r.model, parameters: r.parameters,
    "FLOPs/byte": r.train_flops_per_token / r.bytes_per_token, steps: r.steps, "bytes seen": r.bytes_seen,
    "train bytes/s": r.train_bytes_per_s, "test bpb": r.eval.bits_per_byte, engine: r.engine ?? "tfjs",
  })), { digits: 3 });
  `,
  md`
  ## Runs trained on PyTorch's distributed engine

  A plan's run can also be trained outside the lab: \`deno task mambabyte job --engine torch --gpus N --plan
  compute-matched --scale S --out DIR\` writes a torchrun job (the lab's initial weights, batches, schedule and
  AdamW; docs/ENGINES.md), and \`deno task mambabyte import DIR\` brings its checkpoint back, scored by the
  lab on the job's test bytes. Those runs are in the table and figure above under their own label (engine
  and GPU or process count); here beside the test bits per byte the job itself reported.
  `,
  code`
  const torchRuns = runs.filter((r: any) => r.labels?.engine === "torch");
  if (torchRuns.length) await mb.showTable(torchRuns.map((r: any) => ({
    run: r.run.split("/").slice(-2).join("/"), model: r.labels.label, GPUs: r.labels.gpus, processes: r.labels.processes,
    steps: r.steps, "test bpb (lab)": r.eval.bits_per_byte, "test bpb (job)": r.labels.job_test_bits_per_byte,
    "job written at": r.labels.job_commit, "train bytes/s": r.train_bytes_per_s,
  })), { digits: 5 });
  else console.log(\`no torch runs recorded at scale \${SCALE}\`);
  `,
  md`
  ## Watching one run of the plan train

  The plan's MambaByte run on books at this scale, trained here from scratch while the chart draws itself
  (training loss per step against bytes seen, then the final figure). It goes to a temporary folder, run
  directory and record alike: the records above are \`deno task reproduce\`'s, and this one changes none of
  them. At \`smoke\` it takes seconds, at \`small\` and \`gpu\` a few minutes; at \`large\` (75M bytes, hours without
  a GPU) the cell says so and trains nothing.
  `,
  code`
  if (SCALE === "large") {
    console.log("not trained here: the large scale's MambaByte reads 75M bytes (hours on a CPU); its recorded run is in the tables above, and deno task reproduce --scale large on a GPU trains it");
  } else {
    await mb.initBackend({ quiet: true });
    const [spec] = mb.planRuns(await mb.readPlan(), SCALE, { domains: ["books"], models: ["mambabyte"] });
    const here = await Deno.makeTempDir({ prefix: "notebook-03-" });
    const live = mb.liveTraining({ title: \`\${spec.name}, trained in this notebook\` });
    const record = await live.watch(mb.runExperiment(spec, { runsDir: here, resultsDir: here, quiet: true, onStart: live.plan, onStep: live.onStep }));
    console.log(\`test: \${record.eval.bits_per_byte.toFixed(3)} bits per byte (\${record.eval.bytes} bytes); the plan's recorded run: \${
      runs.find((r) => r.run === record.run)?.eval.bits_per_byte.toFixed(3) ?? "not recorded at this scale"}\`);
    await Deno.remove(here, { recursive: true });
  }
  `,
];
