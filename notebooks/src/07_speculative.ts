import { code, md } from "../../lib/notebook/build.ts";

export default [
  md`
  # 07 · Speculative decoding with subword drafting

  The paper's claim [P]: drafting with a small subword Mamba and verifying with MambaByte gives a **2.6x**
  speed-up over plain MambaByte decoding, about the speed of the subword model itself (settings [S]: a
  110M drafter, 3 subwords per round, top-3 acceptance). The loop (\`lib/decode/speculative.ts\`):

  1. the subword Mamba drafts m tokens from its own recurrent state; their **bytes** are the draft;
  2. MambaByte reads all drafted bytes in **one** parallel pass resumed from its cached state;
  3. a drafted byte is accepted while it is in MambaByte's top-β (β = 1: exactly the greedy output, tested
     in \`tests/decode_test.ts\` for random and deliberately wrong drafters);
  4. at the first rejection MambaByte emits its own byte, its state rolled to the last accepted byte by a
     pass over only the accepted bytes, and decodes byte by byte until a whitespace byte; then the drafter
     re-reads the text since its last sync point and drafts again.

  Records: \`data/results/bench/decode.jsonl\`, written by
  \`deno run -A lib/bench/decode.ts --verifier DIR --drafter DIR\` (modes plain, speculative, subword).
  `,
  code`
  import * as mb from "../lib/mod.ts";
  const SCALE = mb.currentScale();
  const resultsDir = mb.RESULTS_DIR; // benchmark records: always the published ones
  await mb.figures.showRegistered("speculative", { resultsDir });
  `,
  md`
  ## Speed-up and acceptance
  `,
  code`
  await mb.figures.showRegistered("speculative_speedup", { resultsDir });
  `,
  md`
  ## What bounds the speed-up here

  Speculative decoding gains only when verifying a draft in one pass costs much less than stepping through
  its bytes, and drafting costs much less than verifying. The costs of the fused JS stepper, timed alone
  (mode \`verify_cost\` of the decode benchmark), and the best speed-up they allow when every drafted
  byte is accepted:
  `,
  code`
  await mb.figures.showRegistered("speculative_bound", { resultsDir });
  `,
  md`
  ## On the GPU engine

  On an H200 both models run on the native engine and whole rounds stay on the GPU (\`lib/engine/speculative.ts\`):
  the drafter's tokens, the verifier's one pass over their bytes, the acceptance and both roll-backs are
  kernels, and the host only reads the emitted bytes, 16 rounds at a time (a read-back costs about 11 ms
  through Deno's WebGPU, whatever the work). First greedy decoding on the engine beside mamba_ssm's step
  replayed as a CUDA graph, then the round's costs at the paper's shapes (the speed-up they allow when every
  draft is accepted) and the speed-up measured with this project's trained gpu-scale books models, all from
  \`data/results/bench\`.
  `,
  code`
  await mb.figures.showRegistered("decode_engine", { resultsDir });
  await mb.figures.showRegistered("speculative_engine", { resultsDir });
  `,
  md`
  ## The generated text, coloured by origin

  Green: drafted bytes MambaByte accepted; red: bytes MambaByte produced itself (corrections and byte-by-byte
  decoding); grey: the prompt. With the largest trained pair there is (\`mb.findTrainedModel\`), else tiny random
  models (labelled as such: their text is noise, only the mechanics show).
  `,
  code`
  await mb.initBackend({});
  // the largest scale with a trained pair: committed large-scale models, else a local run's (the drafter: the
  // subword Mamba of the equal-bytes pair, small enough to commit, or the compute-matched one)
  const pair = await mb.findTrainedPair("mambabyte", ["mamba_subword_equal_bytes", "mamba_subword"]);
  let verifier: mb.MambaLM, drafter: mb.MambaLM, tokenizer: mb.ByteBPE, label: string;
  if (pair) {
    const [found, foundDrafter] = pair;
    verifier = mb.asMamba(await mb.loadModel(found.dir));
    const d = await mb.loadModel(foundDrafter.dir); // its tokenizer.json comes along
    drafter = mb.asMamba(d);
    tokenizer = d.tokenizer!;
    label = \`trained: \${found.label}; drafter \${foundDrafter.label}\`;
  } else {
    const text = new TextEncoder().encode("The quick brown fox jumps over the lazy dog. ".repeat(40));
    tokenizer = mb.trainBpe(text, { vocabSize: 300 });
    const cfg = (v: number) => mb.parseMambaConfig({ d_model: 32, n_layer: 2, vocab_size: v }, "notebook");
    verifier = mb.mamba.initMambaLM(cfg(256), 1);
    drafter = mb.mamba.initMambaLM(cfg(tokenizer.vocabSize), 2);
    label = "TINY RANDOM (untrained) models: the text is noise";
  }
  const prompt = new TextEncoder().encode("It was the best of times, it was the worst of times, ");
  const n = SCALE === "smoke" ? 120 : 400;
  const plain = await mb.greedyDecode(verifier, prompt, n);
  const shown: any[] = [{ mode: "plain greedy", "bytes/s": n / plain.seconds }];
  for (const beta of [1, 3]) {
    console.log(\`\${label}: speculative, m = 3, beta = \${beta}\`);
    const text = mb.liveText({ prompt, title: \`speculative β=\${beta}\` }); // streamed; counts accepted draft bytes
    const r = await mb.speculativeDecode(verifier, drafter, tokenizer, prompt, n, { draftTokens: 3, beta, onByte: text.onByte });
    await text.finish();
    await (Deno as any).jupyter?.display({ "text/html": mb.originHtml(prompt, r.bytes, r.accepted), "text/plain": new TextDecoder().decode(r.bytes) }, { raw: true });
    shown.push({
      mode: \`speculative β=\${beta}\`, "bytes/s": r.stats.bytesPerSecond, acceptance: r.stats.acceptanceRate, drafted: r.stats.drafted,
      accepted: r.stats.accepted, corrected: r.stats.corrected, "verifier passes": r.stats.verifierPasses,
      "identical to greedy": r.bytes.every((b, i) => b === plain.bytes[i]),
    });
  }
  await mb.showTable(shown, { digits: 3, caption: \`This run (\${label}, \${n} bytes)\` });
  `,
  md`
  **Reading the numbers.** Two ways to verify a draft (\`verify\`): **pass**, the paper's scheme, one parallel
  pass over all drafted bytes (plus one over the accepted bytes to roll back after a rejection), and
  **steps**, the fused JS stepper byte by byte, stopping at the first rejection (the default on cpu/wasm).
  On a GPU a step is latency-bound and a pass over m bytes costs about one step, which is where the paper's
  2.6x comes from. On this CPU a step's cost is its arithmetic (the SIMD stepper, about 1 ms per byte at
  d256 x 4) while a tfjs pass pays dispatch for dozens of ops, so "pass" loses and "steps" can at best save
  the drafting it wastes. The acceptance rate depends on how well the two models agree: the \`small\`
  checkpoints are trained for minutes on a few hundred KB (about 2.6 bits per byte); greedy MambaByte falls
  into a loop ("shall the shall the") that the drafter never predicts, so almost every byte is MambaByte's
  own and speculative decoding is slower than plain decoding here. β = 3 (the paper's setting) accepts
  drafted bytes within the top 3, leaving exact greedy decoding; with these models it accepts no more.
  `,
];
