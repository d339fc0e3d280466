/** Figures and tables of the scan and training benchmarks (bench/*.jsonl; notebook 02). */

import { layout } from "../display.ts";

import { type Rec, registerFigure } from "./registry.ts";
import { fmt, gpuName, latestBy, sig } from "./common.ts";
import { SCAN_IMPLS } from "../../ssm/types.ts"; // the list only: no TF.js behind it

// ---------------------------------------------------------------------------------------------------
// Scan benchmarks (notebook 02; lib/bench -> bench/scan.jsonl, bench/sweep/scan.jsonl, bench/gpu.jsonl)

const okBench = (r: Rec) => r.status === "ok" && typeof r.median_ms === "number";
const SCAN_COLORS: Record<string, string> = {
  fused: "#1f77b4",
  chunked: "#2ca02c",
  sequential: "#7f7f7f",
  parallel: "#ff7f0e",
};

async function readAnchor(dir: string, file: string): Promise<Rec | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(`${dir}/${file}`));
  } catch {
    return undefined;
  }
}

/** Ticks at the benchmarked lengths (powers of two) instead of plotly's 2-3-5 log ticks. */
const lengthTicks = (lengths: number[]) => {
  const v = [...new Set(lengths)].sort((a, b) => a - b);
  return { tickvals: v, ticktext: v.map((x) => x.toLocaleString("en")) };
};

registerFigure({
  name: "scan_time_vs_length",
  description:
    "Selective-scan time against sequence length, per implementation and pass (wasm), with the PyTorch peer",
  reads: ["bench/sweep/scan"],
  async build(records, ctx) {
    const byLength = (records["bench/sweep/scan"] ?? []).filter((r) =>
      okBench(r) && r.backend === "wasm" && r.shape.B === 1
    );
    if (!byLength.length) return undefined;
    const data: Rec[] = [];
    for (const impl of SCAN_IMPLS) {
      for (const pass of ["fwd", "fwd+bwd"]) {
        const pts = byLength.filter((r) => r.impl === impl && r.pass === pass).sort((a, b) =>
          a.shape.L - b.shape.L
        );
        if (pts.length) {
          data.push({
            x: pts.map((r) => r.shape.L),
            y: pts.map((r) => r.median_ms),
            name: `${impl} ${pass}`,
            mode: "lines+markers",
            line: { color: SCAN_COLORS[impl], dash: pass === "fwd" ? "dot" : "solid" },
          });
        }
      }
    }
    const anchor = await readAnchor(ctx.anchorsDir, "cpu-pytorch-2026-11-28.json");
    const peers = (anchor?.scan ?? []).filter((a: Rec) => a.b === 1 && a.d_inner === 512 && a.pscan_fwdbwd_s);
    if (peers.length) {
      data.push({
        x: peers.map((a: Rec) => a.length),
        y: peers.map((a: Rec) => a.pscan_fwdbwd_s * 1000),
        name: "PyTorch pscan fwd+bwd (peer, same CPU)",
        mode: "markers",
        marker: { symbol: "x", size: 11, color: "black" },
      });
    }
    const d = byLength[0].shape;
    return {
      figure: {
        data,
        layout: layout({
          title: `Scan time against length (batch 1, d_inner ${d.D}, d_state ${d.N}, wasm)`,
          xTitle: "Sequence length",
          xUnit: "bytes",
          yTitle: "Median time",
          yUnit: "ms",
          xType: "log",
          yType: "log",
          width: 900,
          height: 540,
          legend: "inside",
          inside: { data },
          extra: { xaxis: lengthTicks(byLength.map((r) => r.shape.L)) },
        }),
      },
    };
  },
});

registerFigure({
  name: "scan_time_vs_batch",
  description: "Fused scan time against batch size (length 1,024, wasm)",
  reads: ["bench/sweep/scan"],
  build(records) {
    const byBatch = (records["bench/sweep/scan"] ?? []).filter((r) =>
      okBench(r) && r.backend === "wasm" && r.impl === "fused" && r.shape.L === 1024
    )
      .sort((a, b) => a.shape.B - b.shape.B);
    if (!byBatch.length) return undefined;
    const data: Rec[] = ["fwd", "fwd+bwd"].map((pass) => {
      const pts = byBatch.filter((r) => r.pass === pass);
      return {
        x: pts.map((r) => r.shape.B),
        y: pts.map((r) => r.median_ms),
        name: `fused ${pass}`,
        mode: "lines+markers",
        line: { color: SCAN_COLORS.fused, dash: pass === "fwd" ? "dot" : "solid" },
      };
    });
    return {
      figure: {
        data,
        layout: layout({
          title: "Fused scan time against batch (length 1,024, wasm)",
          xTitle: "Batch",
          yTitle: "Median time",
          yUnit: "ms",
          width: 900,
          height: 540,
          legend: "inside",
          inside: { data },
        }),
      },
    };
  },
});

registerFigure({
  name: "scan_memory",
  description: "Peak tensor memory of scan forward + backward against length (wasm)",
  reads: ["bench/sweep/scan"],
  build(records) {
    const mem = (records["bench/sweep/scan"] ?? []).filter((r) =>
      okBench(r) && r.backend === "wasm" && r.shape.B === 1 && r.pass === "fwd+bwd" && r.peak_tensor_bytes
    );
    if (!mem.length) return undefined;
    const data: Rec[] = SCAN_IMPLS.flatMap((impl) => {
      const pts = mem.filter((r) => r.impl === impl).sort((a, b) => a.shape.L - b.shape.L);
      return pts.length
        ? [{
          x: pts.map((r) => r.shape.L),
          y: pts.map((r) => r.peak_tensor_bytes / 2 ** 20),
          name: impl,
          mode: "lines+markers",
          line: { color: SCAN_COLORS[impl] },
        }]
        : [];
    });
    return {
      figure: {
        data,
        layout: layout({
          title: "Peak tensor memory of scan forward + backward (batch 1, wasm)",
          xTitle: "Sequence length",
          xUnit: "bytes",
          yTitle: "Peak tensor memory",
          yUnit: "MiB",
          xType: "log",
          yType: "log",
          width: 900,
          height: 540,
          legend: "inside",
          inside: { data },
          extra: { xaxis: lengthTicks(mem.map((r) => r.shape.L)) },
        }),
      },
    };
  },
});

registerFigure({
  name: "scan_cpu",
  description: "Table: scan implementations at the benchmark shape on CPU, beside PyTorch's pscan",
  reads: ["bench/scan"],
  build(records) {
    const cpu = records["bench/scan"] ?? [];
    if (!cpu.length) return undefined;
    const rows = latestBy(cpu, (r) => `${r.backend}|${r.impl}|${r.pass}|${JSON.stringify(r.shape)}`).map((
      r,
    ) => [
      r.backend,
      r.impl,
      r.pass,
      `(${r.shape.B}, ${r.shape.D}, ${r.shape.N}, ${r.shape.L})`,
      okBench(r) ? fmt(r.median_ms, 1) : "—",
      okBench(r) && r.peer?.ms ? fmt(r.peer.ms / r.median_ms, 2) : "—",
      r.peak_tensor_bytes ? fmt(r.peak_tensor_bytes / 2 ** 20, 1) : "—",
      okBench(r) ? "ok" : `${r.status}: ${String(r.reason ?? "").slice(0, 80)}`,
    ]);
    return {
      table: {
        columns: [
          "backend",
          "impl",
          "pass",
          "shape (B, D, N, L)",
          "median ms",
          "speed-up vs PyTorch pscan",
          "peak tensors MiB",
          "status",
        ],
        rows,
        note:
          "deno task bench (data/results/bench/scan.jsonl) on a 2-core CPU; the peer is PyTorch 1.13 with mamba.py's pscan on the same machine (data/anchors). > 1: faster than the peer.",
      },
    };
  },
});

registerFigure({
  name: "scan_gpu",
  description: "Table: fused WGSL scan on the H200 beside mamba_ssm's CUDA kernel",
  reads: ["bench/gpu"],
  build(records) {
    const gpu = (records["bench/gpu"] ?? []).filter((r) => r.bench === "scan");
    if (!gpu.length) return undefined;
    // per shape: every run of the latest record's commit and kernel settings (repeats in one process, or
    // calls in one session), as the median and the range, so one lucky or unlucky run does not decide
    const settings = (r: Rec) => JSON.stringify({ ...r.kernel_config, fwd_chunk: undefined });
    const median = (xs: number[]) => {
      const v = [...xs].sort((a, b) => a - b), m = v.length >> 1;
      return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
    };
    const cell = (xs: number[], peer: number | undefined) => {
      const ratio = peer ? fmt(median(xs) / peer, 2) : "—";
      return xs.length > 1 && peer
        ? `${ratio} (${fmt(Math.min(...xs) / peer, 2)}–${fmt(Math.max(...xs) / peer, 2)})`
        : ratio;
    };
    const rows = latestBy(gpu, (r) => JSON.stringify(r.shape)).map((last) => {
      const runs = gpu.filter((r) =>
        JSON.stringify(r.shape) === JSON.stringify(last.shape) &&
        r.provenance?.commit === last.provenance?.commit &&
        settings(r) === settings(last)
      );
      const fwd = runs.map((r) => r.fwd_ms as number), both = runs.map((r) => r.fwdbwd_ms as number);
      return [
        `(${last.shape.B}, ${last.shape.D}, ${last.shape.N}, ${last.shape.L})`,
        fmt(median(fwd), 2),
        fmt(last.peer?.cuda_fwd_ms, 2),
        cell(fwd, last.peer?.cuda_fwd_ms),
        fmt(median(both), 2),
        fmt(last.peer?.cuda_fwdbwd_ms, 2),
        cell(both, last.peer?.cuda_fwdbwd_ms),
        String(runs.length),
        String(last.provenance?.device ?? "?"),
      ];
    });
    return {
      table: {
        columns: [
          "shape (B, D, N, L)",
          "fwd ms",
          "CUDA fwd ms",
          "fwd / CUDA",
          "fwd+bwd ms",
          "CUDA fwd+bwd ms",
          "fwd+bwd / CUDA",
          "runs",
          "device",
        ],
        rows,
        note:
          "lib/bench/gpu.ts (data/results/bench/gpu.jsonl): WGSL kernels through Deno's WebGPU; the peer is mamba_ssm's CUDA kernel on the same GPU (measured in the same session when the records say peer_source \"same run\", else data/anchors). Times: the median of the runs of the latest commit and kernel settings; ratios: median (range). Ratio > 1: slower than CUDA.",
      },
    };
  },
});

registerFigure({
  name: "train_speed",
  description:
    "Table: MambaByte training throughput (whole steps, AdamW included) on the CPU and the H200, beside PyTorch",
  reads: ["bench/train", "bench/gpu"],
  build(records) {
    const mamba = (r: Rec) => r.bench === "train" && (r.model ?? "mambabyte") === "mambabyte";
    const cpu = (records["bench/train"] ?? []).filter(mamba);
    const all = (records["bench/gpu"] ?? []).filter(mamba);
    // since the native engine, each GPU record names its engine and carries the peer of its own run; the
    // TF.js-only records before it (matrix-product variants of 2026-11/12) stay in the file, not in the table
    const gpu = all.some((r) => r.engine) ? all.filter((r) => r.engine) : all;
    const IMPL: Record<string, string> = {
      wgsl: "WGSL GEMM",
      "tfjs-b": "tfjs BatchMatMul, B transposed first",
      "tfjs-ab": "tfjs BatchMatMul, A and B transposed first",
    };
    const engine = (r: Rec) =>
      String(r.engine ?? "").startsWith("native (wasm")
        ? "native engine (WebAssembly kernels)"
        : String(r.engine ?? "").startsWith("native")
        ? "native engine (WGSL kernels)"
        : r.provenance?.backend !== "webgpu"
        ? "TF.js, WebAssembly GEMM"
        : r.matmul === undefined || r.matmul === "tf.matMul"
        ? "TF.js, tf.matMul"
        : `TF.js, ${IMPL[r.matmul.impl] ?? String(r.matmul.impl)}`;
    const recs = latestBy(
      [...cpu, ...gpu],
      (r) => `${r.provenance?.device}|${r.d_model}|${r.n_layer}|${r.batch}|${r.length}|${engine(r)}`,
    )
      .sort((a, b) =>
        String(a.provenance?.backend).localeCompare(String(b.provenance?.backend)) || a.d_model - b.d_model ||
        b.bytes_per_s - a.bytes_per_s
      );
    if (!recs.length) return undefined;
    const gb = (x: unknown) => (typeof x === "number" ? fmt(x, 1) : "—");
    const rows = recs.map((r) => {
      const peer = r.peer?.bytes_per_s ?? r.peer?.pytorch_pscan_bytes_per_s;
      const peerText = r.peer?.bytes_per_s
        ? "PyTorch + CUDA scan, H200"
        : r.peer?.pytorch_pscan_bytes_per_s
        ? "PyTorch + pscan, CPU"
        : "—";
      const when = String(r.peer_source ?? "").startsWith("same run") ? "same run" : "earlier run";
      return [
        `d ${r.d_model} x ${r.n_layer}, batch ${r.batch}, length ${r.length}`,
        `${r.provenance?.backend}, ${r.provenance?.device}`,
        engine(r),
        sig(r.bytes_per_s),
        gb(typeof r.gpu_bytes === "number" ? r.gpu_bytes / 1e9 : undefined),
        peer ? sig(peer) : "—",
        gb(r.peer?.peak_mem_GB),
        peer ? `${peerText} (${when})` : "—",
        peer ? fmt(r.bytes_per_s / peer, 2) : "—",
      ];
    });
    return {
      table: {
        columns: [
          "model and batch",
          "where",
          "engine",
          "bytes/s",
          "GPU GB",
          "peer bytes/s",
          "peer GB",
          "peer",
          "ratio",
        ],
        rows,
        note:
          "deno task bench --suite train (CPU, data/results/bench/train.jsonl) and lib/bench/gpu.ts (H200, " +
          "data/results/bench/gpu.jsonl): whole training steps on synthetic bytes through the trainer, the latest " +
          "record per setting. GPU GB: every buffer the native engine allocates; peer GB: PyTorch's peak. " +
          '"same run": the peer was measured by ../shared/anchors/peers/h200_peers.py in the same device ' +
          'session, minutes apart; "earlier run": an anchor file of another session (compare with care).',
      },
    };
  },
});

const FAMILY: Record<string, string> = {
  transformer: "byte Transformer",
  perceiver_ar: "PerceiverAR",
  megabyte: "MegaByte",
};

registerFigure({
  name: "train_speed_baselines",
  description:
    "Table: the byte baselines' training throughput on the native GPU engine (H200, H100), beside PyTorch's byte Transformer measured in the same run",
  reads: ["bench/gpu"],
  build(records) {
    const recs = latestBy(
      (records["bench/gpu"] ?? []).filter((r) =>
        r.bench === "train" && FAMILY[r.model] && String(r.engine ?? "").startsWith("native (webgpu") &&
        !String(r.engine).includes("software")
      ),
      (r) => `${r.provenance?.device}|${r.model}|${r.d_model}|${r.n_layer}|${r.batch}|${r.length}`,
    ).sort((a, b) =>
      a.d_model - b.d_model || Object.keys(FAMILY).indexOf(a.model) - Object.keys(FAMILY).indexOf(b.model)
    );
    if (!recs.length) return undefined;
    const rows = recs.map((r) => {
      const peer = String(r.peer_source ?? "").startsWith("same run") ? r.peer?.bytes_per_s : undefined;
      return [
        FAMILY[r.model],
        `d ${r.d_model} x ${r.n_layer}, batch ${r.batch}, length ${r.length}`,
        gpuName(r),
        String(r.provenance?.commit ?? "").slice(0, 7),
        sig(r.bytes_per_s),
        fmt(r.step_s * 1000, 0),
        typeof r.gpu_bytes === "number" ? fmt(r.gpu_bytes / 1e9, 1) : "—",
        peer ? sig(peer) : "—",
        peer ? fmt(r.bytes_per_s / peer, 2) : "—",
      ];
    });
    return {
      table: {
        columns: [
          "model",
          "shape",
          "GPU",
          "commit",
          "bytes/s",
          "ms/step",
          "GPU GB",
          "PyTorch bytes/s",
          "ratio",
        ],
        rows,
        note:
          "lib/bench/gpu.ts --models transformer,perceiver_ar,megabyte --engines native --peers (data/results/" +
          "bench/gpu.jsonl): whole training steps through the trainer on the native engine (lib/engine/" +
          "transformer.ts; attention: the tiled WGSL kernels at heads of 64, the thread-per-row ones for MegaByte's " +
          "local model, one head of 2/3 d), synthetic bytes, the latest record per shape. Each " +
          "family's config at the shape's width and depth (lib/models/mod.ts baselineConfig: heads of 64; " +
          "MegaByte's global model d x L with patches of 8 and a local model of 2/3 d; PerceiverAR's 256 latents). " +
          "PyTorch: ../shared/anchors/peers/h200_peers.py train_transformer (pre-LN, RoPE, SDPA causal, GELU MLP, " +
          "tied head, fp32 AdamW) in the same device session; PerceiverAR and MegaByte have no PyTorch peer here. " +
          "The latest record per card: a ratio holds for the card it was measured on (the peer's speed differs " +
          "by card too).",
      },
    };
  },
});

registerFigure({
  name: "extrapolation_engine_speed",
  description:
    "Table: seconds per evaluation length of the extrapolation sweep (1x-64x of the trained context) of the byte baselines on the native engine (H200)",
  reads: ["bench/extrapolation_engine"],
  build(records) {
    const recs = latestBy(
      (records["bench/extrapolation_engine"] ?? []).filter((r) => !String(r.scored_by).includes("software")),
      (r) =>
        `${r.provenance?.device}|${r.model}|${r.config?.d_model ?? r.config?.d_global}|${r.trained_context}`,
    );
    if (!recs.length) return undefined;
    const multiples = [...new Set(recs.flatMap((r) => r.lengths.map((x: Rec) => x.multiple)))].sort((a, b) =>
      a - b
    );
    const rows = recs.map((r) => [
      FAMILY[r.model] ?? r.model,
      `d ${r.config?.d_model ?? r.config?.d_global}, C ${r.trained_context}`,
      String(r.provenance?.commit ?? "").slice(0, 7),
      ...multiples.map((m) => {
        const x = r.lengths.find((y: Rec) => y.multiple === m);
        return !x ? "—" : x.status === "ok" ? fmt(x.wall_s, 1) : x.status;
      }),
      fmt(r.total_s, 0),
    ]);
    return {
      table: {
        columns: ["model", "size", "commit", ...multiples.map((m) => `${m}x s`), "sweep s"],
        rows,
        note:
          "lib/bench/extrapolation_engine.ts (data/results/bench/extrapolation_engine.jsonl): the extrapolation " +
          "(lib/eval/extrapolation.ts, whole sequences) scored on the engine (lib/eval/engine_scorer.ts), each " +
          "length scoring the same 524,288 bytes of the books test split, random parameters (speed only; the " +
          "stage scores trained runs the same way). Seconds per length include building that length's engine; " +
          "sweep: the whole run, one process.",
      },
    };
  },
});
