import { code, md } from "../../lib/notebook/build.ts";

export default [
  md`
  # 02 · Selective-scan implementations side by side

  The scan is MambaByte's hot path. This notebook compares the implementations from **recorded benchmark
  runs only** (\`deno task bench\`, \`lib/bench/gpu.ts\`; records in \`data/results/bench/\`, each with its
  commit, backend and device): the three op-built scans (\`sequential\`, \`parallel\`, \`chunked\`, built
  from TF.js ops, differentiated by autodiff) and the fused op (\`SelectiveScan\` with a hand-written
  backward that recomputes instead of storing the (b, l, d, n) states).

  Peer figures come from \`data/anchors/\`: PyTorch with mamba.py's pscan on the same 2-core CPU, and
  mamba_ssm's CUDA kernel on an H200. Passes a benchmark skipped (too slow for its time budget) or that
  failed (out of memory) are listed with the reason, not plotted.
  `,
  code`
  import * as mb from "../lib/mod.ts";
  const SCALE = mb.currentScale();
  const ok = (r: any) => r.status === "ok" && typeof r.median_ms === "number";
  const cpu = await mb.readRecords<any>("scan", "../data/results/bench");
  const sweep = await mb.readRecords<any>("scan", "../data/results/bench/sweep");
  const gpu = await mb.readRecords<any>("gpu", "../data/results/bench");
  console.log(\`scale \${SCALE}: \${cpu.length} CPU records, \${sweep.length} sweep records, \${gpu.length} GPU records\`);
  `,
  md`
  ## At the benchmark shape (batch 1, d_inner 512, d_state 16, length 2,048), CPU
  `,
  code`
  await mb.showTable(cpu.map((r) => ({
    backend: r.backend, impl: r.impl, pass: r.pass,
    "median ms": ok(r) ? r.median_ms : null,
    "x PyTorch pscan": ok(r) && r.peer?.ms ? r.peer.ms / r.median_ms : null,
    "peak tensors MB": r.peak_tensor_bytes ? r.peak_tensor_bytes / 2 ** 20 : null,
    status: ok(r) ? "ok" : \`\${r.status}: \${(r.reason ?? "").slice(0, 90)}\`,
    commit: r.provenance?.commit,
  })), { digits: 3, caption: "deno task bench (data/results/bench/scan.jsonl)" });
  `,
  md`
  ## Time against length and batch (wasm backend)
  `,
  code`
  const colors: Record<string, string> = { fused: "#1f77b4", chunked: "#2ca02c", sequential: "#7f7f7f", parallel: "#ff7f0e" };
  const byLength = sweep.filter((r) => ok(r) && r.backend === "wasm" && r.shape.B === 1);
  const traces = [];
  for (const impl of mb.SCAN_IMPLS) {
    for (const pass of ["fwd", "fwd+bwd"]) {
      const pts = byLength.filter((r) => r.impl === impl && r.pass === pass).sort((a, b) => a.shape.L - b.shape.L);
      if (!pts.length) continue;
      traces.push({ x: pts.map((r) => r.shape.L), y: pts.map((r) => r.median_ms), name: \`\${impl} \${pass}\`, mode: "lines+markers",
        line: { color: colors[impl], dash: pass === "fwd" ? "dot" : "solid" } });
    }
  }
  const anchors = JSON.parse(await Deno.readTextFile("../data/anchors/cpu-pytorch-2026-11-28.json")).scan
    .filter((a: any) => a.b === 1 && a.d_inner === 512);
  traces.push({ x: anchors.map((a: any) => a.length), y: anchors.map((a: any) => a.pscan_fwdbwd_s * 1000), name: "PyTorch pscan fwd+bwd (peer)",
    mode: "markers", marker: { symbol: "x", size: 11, color: "black" } });
  await mb.showFigure({ data: traces, layout: mb.layout({ title: "Scan time against length (batch 1, d_inner 512, d_state 16, wasm)",
    xTitle: "Sequence length", xUnit: "bytes", yTitle: "Median time", yUnit: "ms", xType: "log", yType: "log" }) });
  `,
  code`
  const byBatch = sweep.filter((r) => ok(r) && r.backend === "wasm" && r.impl === "fused" && r.shape.L === 1024).sort((a, b) => a.shape.B - b.shape.B);
  await mb.showFigure({
    data: ["fwd", "fwd+bwd"].map((pass) => {
      const pts = byBatch.filter((r) => r.pass === pass);
      return { x: pts.map((r) => r.shape.B), y: pts.map((r) => r.median_ms), name: \`fused \${pass}\`, mode: "lines+markers" };
    }),
    layout: mb.layout({ title: "Fused scan time against batch (length 1,024, wasm)", xTitle: "Batch", yTitle: "Median time", yUnit: "ms" }),
  });
  `,
  code`
  const mem = sweep.filter((r) => ok(r) && r.backend === "wasm" && r.shape.B === 1 && r.pass === "fwd+bwd" && r.peak_tensor_bytes);
  await mb.showFigure({
    data: ["fused", "chunked", "sequential"].map((impl) => {
      const pts = mem.filter((r) => r.impl === impl).sort((a, b) => a.shape.L - b.shape.L);
      return { x: pts.map((r) => r.shape.L), y: pts.map((r) => r.peak_tensor_bytes / 2 ** 20), name: impl, mode: "lines+markers", line: { color: colors[impl] } };
    }),
    layout: mb.layout({ title: "Peak tensor memory of forward + backward (wasm)", xTitle: "Sequence length", xUnit: "bytes",
      yTitle: "Peak tensor memory", yUnit: "MiB", xType: "log", yType: "log" }),
  });
  const missing = sweep.filter((r) => !ok(r));
  if (missing.length) {
    await mb.showTable(missing.map((r) => ({ impl: r.impl, pass: r.pass, L: r.shape.L, B: r.shape.B, status: r.status, reason: (r.reason ?? "").slice(0, 110) })),
      { caption: "Passes not measured in the sweep" });
  }
  `,
  md`
  ## On the H200 (webgpu, WGSL kernels) beside mamba_ssm's CUDA kernel
  `,
  code`
  await mb.showTable(gpu.filter((r) => r.bench === "scan").map((r) => ({
    shape: \`(\${r.shape.B}, \${r.shape.D}, \${r.shape.N}, \${r.shape.L})\`,
    "fwd ms": r.fwd_ms, "CUDA fwd ms": r.peer?.cuda_fwd_ms, "fwd / CUDA": r.peer ? r.fwd_ms / r.peer.cuda_fwd_ms : null,
    "fwd+bwd ms": r.fwdbwd_ms, "CUDA fwd+bwd ms": r.peer?.cuda_fwdbwd_ms, "fwd+bwd / CUDA": r.peer ? r.fwdbwd_ms / r.peer.cuda_fwdbwd_ms : null,
    "fwd GB/s": r.fwd_GBps, device: r.provenance?.device, commit: r.provenance?.commit,
  })), { digits: 3, caption: "lib/bench/gpu.ts (data/results/bench/gpu.jsonl); ratio > 1 means slower than CUDA" });
  `,
  md`
  The same runs summarised per shape: the median and range over the runs of the latest commit (every run
  above is kept, with its commit).
  `,
  code`
  await mb.figures.showRegistered("scan_gpu", { resultsDir: "../data/results" });
  `,
  md`
  ## Whole training steps: the native engine and TF.js

  MambaByte training throughput (AdamW step included) through the trainer, on this CPU and on the H200: the
  native engine (lib/engine: explicit WGSL forward and backward kernels, one submission per step) and the
  TF.js reference path, beside PyTorch with mamba_ssm's CUDA scan measured in the same device session.
  \`train(model, data, { engine: "native" })\` (or \`--engine native\` on the command line) trains on the
  engine; on a real GPU it is the default for Mamba models.
  `,
  code`
  await mb.figures.showRegistered("train_speed", { resultsDir: "../data/results" });
  `,
  md`
  ## The byte baselines on the engine

  The byte Transformer, PerceiverAR and MegaByte train on the same engine (lib/engine/transformer.ts), with
  attention as tiled WGSL kernels that never store the scores. The byte Transformer is set beside PyTorch's
  (scaled_dot_product_attention, fp32) measured in the same device session; at these sizes attention is
  most of the engine's step.
  `,
  code`
  await mb.figures.showRegistered("train_speed_baselines", { resultsDir: "../data/results" });
  `,
];
