import { code, md } from "../../lib/notebook/build.ts";

export default [
  md`
  # 05 · Robustness to synthetic noise: MambaByte against subword Mamba

  The paper's claim [S]: corrupting PG19 with character-level noise hurts the subword Mamba far more than
  MambaByte — a byte model has no tokenizer whose segmentation the noise breaks. Its table (increase of
  word-level perplexity, subword Mamba-1.03B vs MambaByte-972M, numbers from one secondary copy) is shown
  beside ours below.

  \`lib/eval/noise.ts\` applies the six transforms of \`lib/data/noise.ts\` at the paper's probabilities to the
  test split (the same seed, so every model reads the same noisy texts) and scores every text with every
  model through the one scorer (\`lib/eval/score.ts\`: a subword model's nats are spread over the bytes of
  its tokens, so all models are measured per byte of the same text).

  **Word-level perplexity of a noisy text** = exp(total nats of the noisy text / number of words of the
  CLEAN text). The denominator stays the clean word count for every version of the text, so an increase is
  extra information per original word. With the noisy text's own word count, antspeak (a space between all
  characters, about five times the words) would make perplexity *fall*; the paper's antspeak row only makes
  sense with a fixed denominator [U: the paper does not spell this out]. Bits per byte of a noisy text are
  per byte of that text.
  `,
  code`
  import * as mb from "../lib/mod.ts";
  const SCALE = mb.currentScale();
  const example = "The quick brown fox jumps over the lazy dog.";
  await mb.showTable([
    { noise: "clean", p: "", definition: "", example },
    ...mb.NOISE_SETTINGS.map(({ kind, p }) => ({ noise: kind, p, definition: mb.NOISE_DEFINITIONS[kind], example: mb.addNoiseText(example, kind, p, 3) })),
  ], { caption: "The noise transforms at the paper's probabilities (lib/data/noise.ts; one character = one UTF-8 code point)" });
  `,
  code`
  // the published records, or a reproduction's own (MAMBABYTE_RESULTS: deno task reproduce sets it)
  let resultsDir = mb.resultsDir();
  let standIn = false; // records of the untrained reference model, in a temporary folder
  const recorded = (await mb.readRecords<any>("noise", resultsDir)).filter((r) => r.scale === SCALE);
  // each domain's records: the models evaluated there and the clean bytes they read
  for (const [domain, rs] of Map.groupBy(recorded, (r) => r.domain)) {
    const models = [...new Set(rs.map((r) => \`\${r.label} (\${r.model_kind}, \${r.parameters?.toLocaleString("en")} parameters)\`))];
    console.log(\`scale \${SCALE}, \${domain}: \${rs.length} records on \${rs[0].clean.bytes} clean bytes of \${rs[0].data}\n  \${models.join("\n  ")}\`);
  }
  if (!recorded.length && SCALE === "smoke") {
    // No trained models at this scale yet: evaluate the UNTRAINED reference MambaByte of the test fixtures
    // into a temporary folder so every cell below runs; its numbers say nothing about language modelling.
    standIn = true;
    resultsDir = await Deno.makeTempDir({ prefix: "noise-smoke-" });
    await mb.initBackend({});
    const dir = await mb.referenceCheckpoint();
    const model = await mb.loadModel(dir);
    await Deno.remove(dir, { recursive: true });
    const clean = (await mb.readSplit("../data/samples/books/test")).subarray(0, 2048);
    // each setting fills a row of the table below as soon as it is scored
    const live = mb.liveTable({ title: "Noise on the reference model", total: 1 + mb.NOISE_SETTINGS.length, unit: "settings",
      columns: ["noise", "p", "bits_per_byte", "delta_bits_per_byte", "word_perplexity", "wall_s"] });
    const results = await mb.evaluateNoise(model, clean, { window: 256, onResult: live.onRow });
    await live.finish();
    for (const r of results) {
      await mb.appendRecord("noise", {
        experiment: "noise", scale: SCALE, model_dir: "tests/fixtures/reference", model_kind: model.kind,
        label: "reference MambaByte (untrained)", unit: "byte", domain: "books", data: "data/samples/books/test", ...r,
      }, resultsDir);
    }
    console.log(\`no noise records at scale \${SCALE}: evaluated the untrained reference model instead (\${resultsDir})\`);
  } else if (!recorded.length) {
    console.log(\`no noise records at scale \${SCALE}: run deno task reproduce --scale \${SCALE}\`);
  }
  `,
  md`
  ## The table beside the paper's

  Ours: bits per byte and word perplexity of each noisy text, with the increase over the clean text (Δ) and
  the ratio (×). The paper's columns are its increases of PG19 word perplexity for models four orders of
  magnitude larger (clean perplexity about 33-35): **this project's numbers are small-scale** — our clean
  perplexities are in the thousands or more, so absolute increases are not comparable; compare which model
  suffers less under each noise.
  `,
  code`
  await mb.figures.showRegistered("noise", { resultsDir, scale: SCALE });
  `,
  md`
  ## Increases on comparable scales

  Bits per byte (noisy − clean), and the log of the word-perplexity ratio, ln(noisy / clean) = extra nats per
  clean word, with the paper's increases put on the same scale (ln(1 + increase / clean perplexity), taking
  its clean test perplexity).
  `,
  code`
  await mb.figures.showRegistered("noise_bpb", { resultsDir, scale: SCALE });
  await mb.figures.showRegistered("noise_word_ppl", { resultsDir, scale: SCALE });
  `,
  md`
  ## Which model suffers less, per noise (ours and the paper's)
  `,
  code`
  const recs = (await mb.readRecords<any>("noise", resultsDir)).filter((r) => r.scale === SCALE && r.noise !== "none");
  const latest = new Map(recs.map((r) => [\`\${r.model_kind}|\${r.noise}|\${r.p}\`, r]));
  const rows = mb.NOISE_SETTINGS.map(({ kind, p }) => {
    const byte = latest.get(\`mambabyte|\${kind}|\${p}\`), sub = latest.get(\`mamba_subword|\${kind}|\${p}\`);
    const paper = mb.paper.PAPER_NOISE.find((q) => q.noise === kind && (q.p === null || q.p === p));
    return {
      noise: kind, p,
      "MambaByte ln PPL ratio": byte ? Math.log(byte.ratio_word_perplexity) : null,
      "subword ln PPL ratio": sub ? Math.log(sub.ratio_word_perplexity) : null,
      "ours: less hurt": byte && sub ? (Math.log(byte.ratio_word_perplexity) < Math.log(sub.ratio_word_perplexity) ? "MambaByte" : "subword") : "—",
      "paper: less hurt": paper ? (paper.mambabyte < paper.subword ? "MambaByte" : "subword") : "—",
    };
  });
  await mb.showTable(rows, { digits: 4, caption: \`Extra nats per clean word under each noise (\${SCALE} scale) and which model suffers less\` });
  if (standIn) await Deno.remove(resultsDir, { recursive: true }); // the smoke stand-in's temporary records
  `,
  md`
  At \`smoke\` the models are barely trained (about 3-4 bits per byte), so these rows say more about the
  pipeline than about robustness; read them at \`small\` and \`gpu\`. The paper's largest gap (antspeak,
  +58,300 for the subword model) comes from a subword vocabulary badly matched to corrupted text, which
  needs a vocabulary and a model large enough to rely on it.
  `,
];
