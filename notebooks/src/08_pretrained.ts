import { code, md } from "../../lib/notebook/build.ts";

export default [
  md`
  # 08 · The authors' released MambaByte checkpoints

  The authors released MambaByte on Hugging Face as \`JunxiongWang/MambaByte_{PG19_972M, PG19_353M, Books,
  Stories, Arxiv, Code}\`, in \`mamba_ssm\`'s format (\`MambaLMHeadModel\`: config.json and the state dict).
  This project's models use the same names, shapes and arithmetic (\`lib/models/mamba.ts\`, checked against
  \`mamba_ssm\`'s outputs in \`tests/model_test.ts\`), so \`loadModel(dir)\` reads them as they are.

  **Getting one** (on a machine with internet; these machines have none):

  \`\`\`
  pip install -U huggingface_hub
  huggingface-cli download JunxiongWang/MambaByte_PG19_972M --local-dir data/checkpoints/MambaByte_PG19_972M
  \`\`\`

  If the download holds \`pytorch_model.bin\` rather than \`model.safetensors\`, convert it once with PyTorch:
  \`loadModel\` fails with an error that prints the exact one-line Python command (it drops the tied
  \`lm_head.weight\` copy and writes \`model.safetensors\`). Then set \`MAMBABYTE_CHECKPOINT\` to the directory
  or leave it under \`data/checkpoints/\`, where this notebook looks for the six names above.

  At \`smoke\` scale (and whenever no checkpoint is found) the notebook uses the tiny **untrained** reference
  model of \`tests/fixtures/reference\` (d_model 32, 2 layers), whose outputs \`mamba_ssm\` computed: the path
  is the same, the text it writes is noise.
  `,
  code`
  import * as mb from "../lib/mod.ts";
  const SCALE = mb.currentScale();
  const exists = async (p: string) => { try { await Deno.stat(p); return true; } catch { return false; } };
  const RELEASED = ["PG19_972M", "PG19_353M", "Books", "Stories", "Arxiv", "Code"].map((n) => \`MambaByte_\${n}\`);
  const candidates = [
    Deno.env.get("MAMBABYTE_CHECKPOINT"),
    ...RELEASED.flatMap((n) => [\`../data/checkpoints/\${n}\`, \`../data/checkpoints/pretrained/\${n}\`]),
  ].filter((p): p is string => !!p);
  // MAMBABYTE_CHECKPOINT is used at any scale; the known places are searched except at smoke (CI)
  let dir: string | undefined;
  for (const c of SCALE === "smoke" ? candidates.slice(0, Deno.env.get("MAMBABYTE_CHECKPOINT") ? 1 : 0) : candidates) {
    if (await exists(\`\${c}/config.json\`)) { dir = c; break; }
  }
  const usingReference = !dir;
  if (!dir) {
    if (SCALE !== "smoke") {
      console.log(\`no released checkpoint found (looked at MAMBABYTE_CHECKPOINT and data/checkpoints/{\${RELEASED.join(",")}}): see above how to get one; using the untrained reference model\`);
    }
    dir = await mb.referenceCheckpoint();
  }
  await mb.initBackend({});
  const t0 = performance.now();
  const model = await mb.loadModel(dir); // a mamba_ssm checkpoint loads as a MambaByte LanguageModel
  const lm = mb.asMamba(model); // its Mamba internals (config, parameters)
  if (usingReference) await Deno.remove(dir, { recursive: true }); // a temporary copy of the fixture
  console.log(\`\${usingReference ? "reference model (untrained, tests/fixtures/reference)" : dir}: d_model \${lm.config.d_model}, \` +
    \`\${lm.config.n_layer} layers, vocab \${lm.config.vocab_size}, \${mb.countParameters(lm).toLocaleString("en")} parameters, \` +
    \`loaded in \${((performance.now() - t0) / 1000).toFixed(1)} s on \${mb.backendInfo()?.backend}\`);
  `,
  md`
  ## Scoring a text

  Bits per byte and word-level perplexity (exp(total nats / words), PAPER.md) of the held-out books sample
  (Project Gutenberg, like PG19), read in windows of 2,048 bytes. The paper reports 0.930 bits per byte on PG19
  for MambaByte-353M (Table 1); the untrained reference model scores about 8 (uniform over 256 bytes is 8).
  `,
  code`
  const text = (await mb.readSplit("../data/samples/books/test")).subarray(0, SCALE === "smoke" || usingReference ? 2048 : 16384);
  const t1 = performance.now();
  const progress = mb.liveTable({ title: "Scoring the books sample" }); // windows done / total, ETA
  const s = await mb.scoreText(model, text, { window: 2048, onProgress: progress.onProgress });
  console.log(\`\${s.bytes.toLocaleString("en")} bytes: \${s.bits_per_byte.toFixed(4)} bits per byte, word perplexity \${s.word_perplexity.toPrecision(4)} \` +
    \`(\${s.words} words), \${(s.bytes / ((performance.now() - t1) / 1000)).toFixed(0)} bytes/s\`);
  `,
  md`
  ## Compressed weights on the CPU

  The CPU stepper can hold its weight matrices as bfloat16 (2 bytes a weight) or int8 with one scale per 64
  weights (1.06 bytes): decoding reads every weight once per byte, so fewer bytes per weight decode faster
  (README, "CPU decoding beside llama.cpp"). \`mb.loadModel(dir, { weights: "int8" })\` makes a format the
  model's default for \`generate\` and \`scoreText\`; here each format scores the same text through the stepper,
  and its cost in bits per byte is the difference from float32 on the same path.
  `,
  code`
  const formats = [];
  for (const weights of ["f32", "bf16", "int8"] as const) {
    const t0 = performance.now();
    const r = await mb.scoreText(model, text, { window: 2048, weights });
    formats.push({ weights, bits_per_byte: r.bits_per_byte, bytes_per_s: Math.round(r.bytes / ((performance.now() - t0) / 1000)) });
  }
  console.table(formats.map((f) => ({ ...f, minus_f32: f.bits_per_byte - formats[0].bits_per_byte })));
  `,
  md`
  Which bytes are hard: bits of each byte of one sentence (the first byte has no context).
  `,
  code`
  const sentence = new TextEncoder().encode("It was the best of times, it was the worst of times, it was the age of wisdom.");
  const bits = await mb.perTokenBits(model, sentence);
  const chars = [...sentence.subarray(1)].map((b) => (b === 32 ? "␣" : String.fromCharCode(b)));
  const at = chars.map((_, i) => i + 1); // byte position in the sentence
  await mb.showFigure({
    data: [
      { type: "bar", x: at, y: Array.from(bits), marker: { color: "#1f77b4" }, customdata: chars, hovertemplate: "byte %{x} '%{customdata}': %{y:.2f} bits", name: "bits of the byte" },
      { type: "scatter", mode: "lines", x: [0.5, at.length + 0.5], y: [8, 8], line: { color: "#888", dash: "dash", width: 1 }, name: "uniform over 256 bytes (8 bits)" },
    ],
    layout: mb.layout({ title: \`Bits of each byte given the ones before it (\${usingReference ? "untrained reference model" : dir})\`,
      xTitle: "Byte of the sentence (its character)", yTitle: "-log2 p(byte | bytes before)", yUnit: "bits", width: 1000, height: 420, legend: "top",
      extra: { margin: { l: 70, r: 30, t: 100, b: 60 }, xaxis: { tickmode: "array", tickvals: at, ticktext: chars, tickangle: 0, tickfont: { size: 10 } } } }),
  });
  `,
  md`
  ## Generating

  The prompt is prefilled in one pass, then every byte costs one recurrent step (O(1) in the context length).
  With the reference model the greedy continuation is compared with the one \`mamba_ssm\` produced.
  `,
  code`
  if (usingReference) {
    const ref = await mb.referenceExpected();
    const out = await mb.generate(lm, ref.prompt, ref.greedy.length, { greedy: true });
    const same = out.every((b, i) => b === ref.greedy[i]);
    console.log(\`greedy continuation of the fixture's \${ref.prompt.length}-byte prompt: \${same ? "identical to" : "DIFFERENT from"} mamba_ssm's (\${out.length} bytes)\`);
  }
  const prompt = new TextEncoder().encode("CHAPTER I.\n\nIt was a cold morning in");
  const n = SCALE === "smoke" || usingReference ? 64 : 400;
  const text = mb.liveText({ prompt, title: "temperature 0.8, top-p 0.95, seed 0" }); // streamed as it comes
  const gen = await mb.generate(lm, prompt, n, { temperature: 0.8, topP: 0.95, seed: 0 }, text.onByte);
  const stream = await text.finish();
  `,
];
