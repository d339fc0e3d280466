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
  const resultsDir = (Deno.env.get("MAMBABYTE_RESULTS") ?? "../data/results") + "/bench";
  const recs = (await mb.readRecords<any>("decode", resultsDir)).filter((r) => r.context && r.model);
  // the latest record per (device, model, stepper, context)
  const latest = new Map(recs.map((r) => [\`\${r.device}|\${r.model}|\${r.stepper ?? ""}|\${r.context}\`, r]));
  const rows = [...latest.values()].sort((a, b) => a.model.localeCompare(b.model) || (a.stepper ?? "").localeCompare(b.stepper ?? "") || a.context - b.context);
  const anchor = rows.find((r) => r.anchor_bytes_per_s)?.anchor_bytes_per_s;
  if (rows.length) {
    await mb.showTable(rows.map((r) => ({
      model: r.model, stepper: r.stepper ?? "", device: r.device, context: r.context,
      "ms / byte": r.skipped ? null : r.msPerByte, "bytes/s": r.skipped ? null : r.bytesPerS,
      "x anchor": r.skipped || !anchor ? null : r.bytesPerS / anchor, steps: r.steps ?? null, note: r.skipped ?? "",
    })), { digits: 3, caption: \`Batch-1 decoding, d_model 256 x 4 layers (anchor: PyTorch eager on an H200, \${anchor?.toFixed(0)} bytes/s)\` });
  } else console.log("no decode records yet: deno run -A lib/bench/decode.ts");
  `,
  md`
  ## Bytes per second against context
  `,
  code`
  if (rows.length) {
    const series = new Map<string, any[]>();
    for (const r of rows.filter((r) => !r.skipped)) {
      const key = \`\${r.model}\${r.stepper ? " (" + r.stepper + ")" : ""}, \${r.backend}\`;
      series.set(key, [...(series.get(key) ?? []), r]);
    }
    const ctxs = [...new Set(rows.map((r) => r.context))].sort((a, b) => a - b);
    await mb.showFigure({
      data: [
        ...[...series].map(([name, rs]) => ({ type: "scatter", mode: "lines+markers", name, x: rs.map((r) => r.context), y: rs.map((r) => r.bytesPerS) })),
        ...(anchor ? [{ type: "scatter", mode: "lines", name: "anchor: PyTorch eager, H200", x: [ctxs[0], ctxs[ctxs.length - 1]], y: [anchor, anchor], line: { dash: "dash", color: "#888" } }] : []),
      ],
      layout: mb.layout({ title: "Decoding speed against context (batch 1, d256 x 4)", xTitle: "context", xUnit: "bytes", yTitle: "bytes per second", xType: "log", yType: "log" }),
    });
    for (const [name, rs] of series) {
      if (rs.length > 1 && name.startsWith("mambabyte")) {
        const v = rs.map((r) => r.msPerByte);
        console.log(\`\${name}: per-byte cost from \${rs[0].context} to \${rs[rs.length - 1].context} bytes of context changes by \${((v[v.length - 1] / v[0] - 1) * 100).toFixed(1)}% (max/min \${(Math.max(...v) / Math.min(...v)).toFixed(3)})\`);
      }
    }
  }
  `,
  md`
  ## Samples

  From the trained \`small\` MambaByte checkpoint when it exists (else a tiny random model, labelled): greedy,
  then sampling at temperature 0.8 with top-p 0.9 (\`generate\` in \`lib/decode/sample.ts\`), bytes streamed
  as they come.
  `,
  code`
  await mb.initBackend({});
  const ckpt = "../data/checkpoints/runs/compute-matched/small/books/mambabyte/model";
  const trained = await Deno.stat(\`\${ckpt}/config.json\`).then(() => true, () => false);
  const model = trained
    ? mb.asMamba((await mb.loadTrained(ckpt)).model)
    : mb.initMambaLM(mb.parseMambaConfig({ d_model: 32, n_layer: 2, vocab_size: 256 }, "notebook"), 1);
  console.log(trained ? \`model: \${ckpt.slice(3)}\` : "model: TINY RANDOM (untrained) MambaByte: the text is noise");
  const prompt = new TextEncoder().encode("It was the best of times, it was the worst of times, ");
  const n = SCALE === "smoke" ? 120 : 400;
  for (const opts of [{ greedy: true }, { temperature: 0.8, topP: 0.9, seed: 1 }]) {
    const t0 = performance.now();
    const out = await mb.generate(model, prompt, n, opts);
    const s = (performance.now() - t0) / 1000;
    console.log(\`--- \${JSON.stringify(opts)}: \${n} bytes in \${s.toFixed(2)} s (\${(n / s).toFixed(0)} bytes/s, prefill included)\n\` + new TextDecoder().decode(prompt) + new TextDecoder().decode(out));
  }
  `,
];
