import { code, md } from "../../lib/notebook/build.ts";

export default [
  md`
  # 01 · The Mamba block

  MambaByte is the Mamba language model (Gu & Dao, 2023) trained on raw bytes: the vocabulary is the 256
  byte values. This notebook looks inside one Mamba block:

  1. the shape of every tensor through the block, and the parameter counts of the paper's model sizes;
  2. the selective scan computed three ways (sequential recurrence, work-efficient parallel scan, chunked
     scan), which agree;
  3. a small MambaByte trained on the bundled books sample, and its loss on each byte of a sentence.

  Every cell calls \`lib/\`; the scale (\`smoke\`, \`small\`, \`gpu\`) comes from the \`SCALE\` environment
  variable.
  `,
  code`
  import * as mb from "../lib/mod.ts";
  const SCALE = mb.currentScale();
  const backend = await mb.initBackend({ quiet: true });
  console.log(\`scale: \${SCALE}; backend: \${backend.backend} on \${backend.device}\`);
  `,
  md`
  ## 1. Tensor shapes and parameter counts

  The shapes of one block of MambaByte-353M (d_model 1024, so d_inner 2048, dt_rank 64, d_state 16) on
  one sequence of 8,192 bytes, the paper's training context. The state h (b, l, d_inner, d_state) is what a
  fused scan kernel never writes to memory.
  `,
  code`
  const cfg353 = mb.mambaByteConfig(1024, 53);
  await mb.showTable(mb.mixerShapeTable(cfg353, 1, 8192), { caption: "One Mamba block of MambaByte-353M, batch 1, 8,192 bytes" });
  `,
  md`
  Parameter counts of the paper's sizes computed from the configurations (mamba_ssm's parameterisation:
  tied embedding, vocabulary padded to a multiple of 8), beside the names the paper gives them. The 1.6B
  size is from secondary sources ([S] in docs/PAPER.md).
  `,
  code`
  const sizes = [
    { model: "MambaByte-353M", d_model: 1024, n_layer: 53, paper: "353M" },
    { model: "MambaByte-972M", d_model: 1792, n_layer: 48, paper: "972M" },
    { model: "MambaByte-1.6B [S]", d_model: 2304, n_layer: 48, paper: "1.6B" },
  ];
  await mb.showTable(sizes.map((s) => {
    const parts = mb.parameterBreakdown(mb.mambaByteConfig(s.d_model, s.n_layer));
    const perLayer = (parts.total - parts["backbone.embedding"] - parts["backbone.norm_f"]) / s.n_layer;
    return { ...s, "computed": \`\${(parts.total / 1e6).toFixed(1)}M\`, "per layer": \`\${(perLayer / 1e6).toFixed(2)}M\` };
  }));
  `,
  md`
  ## 2. Three ways to compute the selective scan

  h_t = exp(Δ_t A) h_{t-1} + Δ_t B_t x_t, y_t = ⟨h_t, C_t⟩ + D x_t, gated by silu(z_t). The sequential
  recurrence is the ground truth; the parallel (Blelloch) scan has O(log l) depth; the chunked scan runs
  chunks in sequence and solves each chunk in closed form. On random inputs they agree to float32 rounding.
  `,
  code`
  const { tf } = mb;
  const [b, d, n, l] = [1, 4, 16, 300];
  const rnd = (shape: number[], seed: number, lo = -1, hi = 1) => tf.randomUniform(shape, lo, hi, "float32", seed);
  const u = rnd([b, d, l], 1), delta = rnd([b, d, l], 2, -3, 0), B = rnd([b, n, l], 3), C = rnd([b, n, l], 4), z = rnd([b, d, l], 5);
  const A = tf.neg(tf.exp(tf.log(tf.range(1, n + 1).tile([d]).reshape([d, n])))); // S4D-real: A = -(1..N)
  const D = tf.ones([d]);
  const ys: Record<string, Float32Array> = {};
  const opBuilt = mb.SCAN_IMPLS.filter((impl) => impl !== "fused"); // the implementations written with TF.js ops
  for (const impl of opBuilt) {
    const { y } = mb.selectiveScan(u, delta, A, B, C, D, z, undefined, { deltaSoftplus: true, impl });
    ys[impl] = (await y.data()) as Float32Array;
  }
  const maxDiff = (a: Float32Array, r: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - r[i])), 0);
  await mb.showTable(opBuilt.filter((impl) => impl !== "sequential").map((impl) => ({ impl, "max |y - y_sequential|": maxDiff(ys[impl], ys.sequential) })), { digits: 9 });
  `,
  code`
  const steps = Array.from({ length: l }, (_, t) => t);
  await mb.showFigure({
    data: [
      { x: steps, y: Array.from(ys.sequential.subarray(0, l)), name: "sequential recurrence", mode: "lines", line: { width: 4, color: "#bbbbbb" } },
      { x: steps, y: Array.from(ys.parallel.subarray(0, l)), name: "parallel scan", mode: "lines", line: { width: 1.5, color: "#1f77b4" } },
      { x: steps, y: Array.from(ys.chunked.subarray(0, l)), name: "chunked scan", mode: "lines", line: { width: 1, dash: "dot", color: "#d62728" } },
    ],
    layout: mb.layout({ title: "Selective scan output, channel 0: the three implementations overlap", xTitle: "Time step t", yTitle: "y_t" }),
  });
  `,
  md`
  ## 3. A small MambaByte and its loss on each byte

  A small MambaByte trained here on the bundled books sample (two children's books from Project
  Gutenberg); its size and steps depend on the scale, so at \`smoke\` it has barely learned anything. The
  chart below draws itself while the cell runs: the training loss after every step and the validation
  split's loss a few times, against the bytes seen.

  To stop early, interrupt the kernel (Kernel → Interrupt): training stops after the step under way,
  writes a checkpoint in the run's folder and the cell reports where. Running the cell again continues
  from that checkpoint (\`resume: true\`); once the run is finished, running it again loads the trained model
  instead of training anew (delete the folder printed below to start over).
  `,
  code`
  const plan = { smoke: { d: 32, layers: 2, steps: 60 }, small: { d: 64, layers: 2, steps: 400 }, gpu: { d: 128, layers: 4, steps: 1500 } }[SCALE];
  const train = await mb.readSplit("../data/samples/books/train");
  const validation = (await mb.readSplit("../data/samples/books/validation")).subarray(0, 16 * 1024);
  const model = mb.createModel("mambabyte", { d_model: plan.d, n_layer: plan.layers }, 0);
  const cfg = { steps: plan.steps, batch: 8, length: 128, lr: 3e-3, warmup: 10, seed: 0 };
  const runDir = \`\${mb.runsDir()}/notebooks/01_mamba_block/\${SCALE}\`;
  const live = mb.liveTraining({ ...cfg, title: \`MambaByte d\${plan.d} x \${plan.layers} (\${SCALE} scale)\` });
  const run = await live.watch(mb.train(model, train, {
    ...cfg, runDir, resume: true, checkpointEvery: Math.ceil(plan.steps / 10), onStep: live.onStep,
    validate: { every: Math.ceil(plan.steps / 6), score: async (m) => (await mb.scoreText(m, validation, { window: 512 })).bits_per_byte },
  }));
  const resumed = run.resumed_from === plan.steps ? " (trained before: loaded from its checkpoint)" : run.resumed_from ? \` (continued from step \${run.resumed_from})\` : "";
  console.log(\`run folder: \${runDir}\${resumed}\`);
  `,
  code`
  const sentence = new TextEncoder().encode("Alice was beginning to get very tired of sitting by her sister on the bank.");
  const bits = await mb.perTokenBits(model, sentence);
  const chars = Array.from(sentence.subarray(1), (c) => c === 32 ? "␣" : String.fromCharCode(c));
  await mb.showFigure({
    data: [{ type: "bar", x: chars.map((_, i) => i), y: Array.from(bits), marker: { color: "#1f77b4" }, hovertext: chars }],
    layout: mb.layout({
      title: \`Per-byte loss of a \${SCALE}-scale MambaByte (mean \${(bits.reduce((a, b) => a + b, 0) / bits.length).toFixed(2)} bits/byte)\`,
      xTitle: "Predicted byte", yTitle: "Loss", yUnit: "bits", legend: "none",
      extra: { xaxis: { tickmode: "array", tickvals: chars.map((_, i) => i), ticktext: chars, tickangle: 0, tickfont: { size: 9 } } },
    }),
  });
  `,
  md`
  ## 4. What it writes

  Bytes sampled from the model just trained (temperature 0.8), after a prompt from the books; the text
  appears as it is generated (a character made of several bytes shows once its last byte arrives). At
  \`smoke\` scale the model has learned little more than which bytes are common.
  `,
  code`
  const prompt = new TextEncoder().encode("Alice was beginning to ");
  const text = mb.liveText({ prompt, title: "sampled at temperature 0.8" });
  const sampled = await mb.generate(mb.asMamba(model), prompt, 600, { temperature: 0.8, seed: 0 }, text.onByte);
  const stream = await text.finish();
  `,
];
