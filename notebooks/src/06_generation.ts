import { code, md } from "../../lib/notebook/build.ts";

export default [
  md`
  # 06 · Generation: the cost of one more byte against the context length

  MambaByte's state is fixed-size (per layer a conv window of 4 inputs and an SSM state of d_inner x 16), so
  the cost of generating a byte does not depend on how much came before it. A Transformer's KV cache grows by
  one position per byte, and each step attends over all of it; MegaByte's global model attends over one
  position per patch, its local model within the patch.

  \`lib/bench/decode.ts\` measures per-byte latency at batch 1 at contexts of 1K, 4K, 16K and 64K bytes for
  all three at d_model 256 and 4 layers (MambaByte's context is really read; the attention models' caches are
  filled with random keys and values of the right size, since a step's cost depends on the size only). For
  MambaByte two steppers: **js**, the whole step fused into one loop nest over typed arrays
  (\`lib/decode/stepper.ts\`, the default on cpu/wasm), and **tf**, \`step\` in \`lib/models/mamba.ts\` as
  tfjs ops. The anchor: PyTorch eager decoding of the same MambaByte on an H200, about 350 bytes/s
  (\`data/anchors/h200-pytorch-train-decode-2026-11-28.json\`).
  `,
  code`
  import * as mb from "../lib/mod.ts";
  const SCALE = mb.currentScale();
  const resultsDir = mb.RESULTS_DIR; // benchmark records: always the published ones
  await mb.figures.showRegistered("decode", { resultsDir });
  `,
  md`
  ## Bytes per second against context
  `,
  code`
  await mb.figures.showRegistered("decode_context", { resultsDir });
  await mb.figures.showRegistered("decode_context_cpu", { resultsDir });
  `,
  md`
  ## Samples

  From the largest trained MambaByte there is (\`mb.findTrainedModel\`: the large scale's, committed in float16
  under data/models, else a local run's, another seed's where seed 0's is absent; a tiny random model,
  labelled, where there is none): greedy,
  then sampling at temperature 0.8 with top-p 0.9 (\`generate\` in \`lib/decode/sample.ts\`), the text
  streamed into the cell as it is produced (\`mb.liveText\`).
  `,
  code`
  await mb.initBackend({});
  const found = await mb.findTrainedModel("mambabyte"); // committed large-scale model, else a local run's
  const model = found
    ? mb.asMamba(await mb.loadModel(found.dir))
    : mb.mamba.initMambaLM(mb.parseMambaConfig({ d_model: 32, n_layer: 2, vocab_size: 256 }, "notebook"), 1);
  console.log(found ? \`model: \${found.label}\` : "model: TINY RANDOM (untrained) MambaByte: the text is noise");
  const prompt = new TextEncoder().encode("It was the best of times, it was the worst of times, ");
  const n = SCALE === "smoke" ? 120 : 400;
  for (const opts of [{ greedy: true }, { temperature: 0.8, topP: 0.9, seed: 1 }]) {
    const text = mb.liveText({ prompt, title: JSON.stringify(opts) }); // streamed as it comes; bytes/s from the first byte
    const out = await mb.generate(model, prompt, n, opts, text.onByte);
    await text.finish();
  }
  `,
];
