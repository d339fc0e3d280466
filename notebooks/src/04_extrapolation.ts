import { code, md } from "../../lib/notebook/build.ts";

export default [
  md`
  # 04 · Length extrapolation: evaluating beyond the training context

  The paper's claim [S]: MambaByte trained on 8,192-byte sequences shows **no significant degradation on
  sequences 4x longer and more** (its Figure 3), up to 64x with a sliding window (Figure 5), while
  Transformers, limited by their position embeddings, do not extrapolate beyond their training length.
  (Tag [S]: from secondary summaries of the paper; see \`../shared/docs/PAPER.md\`.)

  \`lib/eval/extrapolation.ts\` takes a model trained at context **C** (tokens) and scores test sequences of
  1x, 2x, 4x ... 64x C, always the same test bytes (the first \`span\` tokens of the test split, a multiple of
  the longest length), so the lengths differ only in how much context the model carries:

  - **whole sequence**: Mamba (MambaByte and the subword Mamba) reads each sequence as the recurrence it is,
    chunk by chunk with its state carried (the same numbers as one pass; \`tests/eval_test.ts\` checks it).
    The byte Transformer gets the whole sequence at once: full attention, and rotary positions beyond those
    it was trained on (\`lib/models/transformer.ts\`).
  - **sliding window of C**: the Transformer never sees more than C bytes: windows of C inputs, each after
    the first starting with C/2 bytes of context only (\`slidingWindows\` in \`lib/data/bytes.ts\`), every
    byte scored once.

  Records: \`data/results/extrapolation.jsonl\`, one per (model, length, mode), written by \`deno task
  reproduce\` (or \`deno run -A lib/runs/stages.ts extrapolation --scale S\` on the recorded runs). Lengths that do
  not fit in the test split are recorded as skipped, with the reason.
  `,
  code`
  import * as mb from "../lib/mod.ts";
  const SCALE = mb.currentScale();
  // the published records, or a reproduction's own (MAMBABYTE_RESULTS: deno task reproduce sets it)
  let resultsDir = mb.resultsDir();
  let standIn = false; // records of the untrained reference model, in a temporary folder
  const recorded = (await mb.readRecords<any>("extrapolation", resultsDir)).filter((r) => r.scale === SCALE);
  if (recorded.length) {
    const models = [...new Set(recorded.map((r) => \`\${r.label} (\${r.model_kind}, \${r.parameters?.toLocaleString("en")} parameters, C = \${r.trained_context} tokens)\`))];
    console.log(\`scale \${SCALE}: \${recorded.length} records\n  \${models.join("\n  ")}\`);
  } else if (SCALE === "smoke") {
    // No trained models at this scale yet: run the evaluation on the UNTRAINED reference MambaByte of the
    // test fixtures, into a temporary results folder, so that every cell below runs. Its numbers say nothing
    // about language modelling (about 8 bits per byte: an untrained model).
    standIn = true;
    resultsDir = await Deno.makeTempDir({ prefix: "extrapolation-smoke-" });
    await mb.initBackend({});
    const dir = await mb.referenceCheckpoint();
    const model = await mb.loadModel(dir);
    await Deno.remove(dir, { recursive: true });
    const test = await mb.readSplit("../data/samples/books/test");
    // each evaluation length fills a row of the table below as soon as it is scored
    const live = mb.liveTable({ title: "Extrapolation of the reference model", unit: "lengths",
      columns: ["multiple", "eval_length", "mode", "status", "sequences", "bits_per_byte", "wall_s"] });
    const recs = await mb.extrapolationRecords(model, test, { trainedContext: 64, maxTokens: 4096, onScored: live.onProgress }, {
      scale: SCALE, model_dir: "tests/fixtures/reference", label: "reference MambaByte (untrained)", domain: "books",
      data: "data/samples/books/test",
    }, live.onRow);
    await live.finish();
    for (const r of recs) await mb.appendRecord("extrapolation", r as any, resultsDir);
    console.log(\`no extrapolation records at scale \${SCALE}: evaluated the untrained reference model instead (\${recs.length} records in \${resultsDir})\`);
  } else {
    console.log(\`no extrapolation records at scale \${SCALE}: run deno task reproduce --scale \${SCALE}\`);
  }
  `,
  md`
  ## Bits per byte against evaluation length

  Top: test bits per byte at each length. Bottom: the change from 1x on the same bytes (paired, so small
  changes are real differences of the model, not of the text). A model that extrapolates stays on or below
  zero; one that breaks beyond its training length rises.
  `,
  code`
  await mb.figures.showRegistered("extrapolation_length", { resultsDir, scale: SCALE });
  await mb.figures.showRegistered("extrapolation", { resultsDir, scale: SCALE });
  `,
  md`
  ## Bits per byte against byte position

  The loss of each prediction, by how many bytes of the sequence precede it, pooled over the evaluation
  lengths. Left of a model's dashed line it predicts with at most the context it was trained on; right of it,
  with more. Extra context should help (the curve falls) or at least not hurt; a rise right of the line is
  the failure to extrapolate.
  `,
  code`
  await mb.figures.showRegistered("extrapolation_position", { resultsDir, scale: SCALE });
  `,
  md`
  ## Long sequences on the engine

  The byte Transformer and MegaByte read whole sequences on the native engine, whose attention never stores
  the scores (\`--engine\` of the stage; on a GPU it is the default): every multiple up to 64x of the
  trained context is scored instead of stopping at TF.js's cap. The time each length takes on the H200:
  `,
  code`
  await mb.figures.showRegistered("extrapolation_engine_speed", { resultsDir });
  `,
  md`
  ## What the records say, against the paper's finding

  Computed from the records: the change in bits per byte from 1x to 4x and to the longest evaluated length,
  per model and mode.
  `,
  code`
  const recs = (await mb.readRecords<any>("extrapolation", resultsDir)).filter((r) => r.scale === SCALE && r.status === "ok");
  const latest = new Map(recs.map((r) => [\`\${r.model_dir}|\${r.mode}|\${r.multiple}\`, r]));
  const rows = [];
  for (const key of new Set(recs.map((r) => \`\${r.model_dir}|\${r.mode}\`))) {
    const at = (m: number) => latest.get(\`\${key}|\${m}\`);
    const one = at(1), four = at(4);
    const longest = [...latest.values()].filter((r) => \`\${r.model_dir}|\${r.mode}\` === key).sort((a, b) => b.multiple - a.multiple)[0];
    if (!one) continue;
    rows.push({
      model: one.label, mode: one.mode, "C (bytes)": one.trained_context_bytes, "1x bpb": one.bits_per_byte,
      "4x − 1x": four ? four.bits_per_byte - one.bits_per_byte : null,
      longest: \`\${longest.multiple}x\`, "longest − 1x": longest.bits_per_byte - one.bits_per_byte,
      verdict: longest.bits_per_byte - one.bits_per_byte <= 0.01 ? "no degradation (≤ +0.01)" : "degrades",
    });
  }
  await mb.showTable(rows, { digits: 4, caption: \`Change of test bits per byte with evaluation length (\${SCALE} scale)\` });
  if (standIn) await Deno.remove(resultsDir, { recursive: true }); // the smoke stand-in's temporary records
  `,
  md`
  Reading this at small scale: our models are trained for minutes on a few hundred kilobytes, so they use
  little long-range context; the question the experiment answers is whether **more context than seen in
  training hurts**, which the paper says it does not for MambaByte. Whether the same holds for our
  Transformer depends on its rotary positions (defined at every distance, but only trained up to C) — the
  paper's Transformers used position embeddings that do not extend at all.
  `,
];
