/** Figures and tables of the decoding benchmarks (bench/decode.jsonl; notebooks 06, 07). */
import { group } from "d3-array";

import { speculativeBounds } from "../../results/speculative.ts";
import { layout } from "../display.ts";

import { type Rec, type Records, registerFigure } from "./registry.ts";
import { colorOf, fmt, footnote, gpuName, latestBy, sig, signed, topTitle } from "./common.ts";

// ---------------------------------------------------------------------------------------------------
// Decoding (lib/bench/decode.ts -> bench/decode.jsonl)

/** Where a decoding record ran: "wasm, 2-core Xeon" / "webgpu, NVIDIA H200". */
const decodeWhere = (r: Rec) =>
  `${r.backend}, ${
    String(r.provenance?.device ?? r.device ?? "?").replace(
      /^Intel\(R\) Xeon\(R\) Processor \((\d+) cores\)$/,
      "$1-core Xeon",
    )
  }`;
/** "js": the fused stepper on the host CPU; "tf": tfjs ops on the backend. */
const STEPPER_TEXT: Record<string, string> = {
  js: "fused JS stepper (host CPU)",
  tf: "tfjs ops",
  engine: "native engine, on the GPU",
};
const decodeSeriesName = (r: Rec) =>
  `${r.model}${r.stepper ? ` (${STEPPER_TEXT[r.stepper] ?? r.stepper})` : ""} on ${decodeWhere(r)}`;

/** The latest context-sweep record per (device, backend, model, stepper, context). */
function contextRecords(records: Records): Rec[] {
  const recs = (records["bench/decode"] ?? []).filter((r) => r.context && r.model);
  const place = (r: Rec) => `${r.provenance?.device}|${r.backend}|${r.model}|${r.context}`;
  // a failure recorded without its stepper is superseded by any later measurement at the same place
  const lastMeasured = new Map<string, string>();
  for (const r of recs) {
    if (!r.skipped && (lastMeasured.get(place(r)) ?? "") < r.provenance?.time) {
      lastMeasured.set(place(r), r.provenance?.time);
    }
  }
  const superseded = (r: Rec) =>
    r.skipped && !r.stepper && (lastMeasured.get(place(r)) ?? "") > r.provenance?.time;
  return latestBy(recs.filter((r) => !superseded(r)), (r) => `${place(r)}|${r.stepper ?? ""}`)
    .sort((a, b) => decodeSeriesName(a).localeCompare(decodeSeriesName(b)) || a.context - b.context);
}

registerFigure({
  name: "decode",
  description:
    "Table: batch-1 decoding latency against context length (MambaByte, byte Transformer with KV cache, MegaByte), beside the PyTorch anchor",
  reads: ["bench/decode"],
  build(records) {
    const recs = contextRecords(records);
    if (!recs.length) return undefined;
    const anchor = recs.find((r) => r.anchor_bytes_per_s)?.anchor_bytes_per_s as number | undefined;
    const rows = recs.map((r) => [
      r.model,
      r.stepper ? STEPPER_TEXT[r.stepper] ?? r.stepper : r.model === "mambabyte" ? "—" : "tfjs ops",
      decodeWhere(r),
      r.context.toLocaleString("en"),
      r.skipped ? "—" : fmt(r.msPerByte, 2),
      r.skipped ? "—" : sig(r.bytesPerS),
      r.skipped || !anchor ? "—" : fmt(r.bytesPerS / anchor, 2),
      r.skipped ? String(r.skipped).slice(0, 90) : "",
    ]);
    return {
      table: {
        columns: [
          "model",
          "stepper",
          "backend, device",
          "context (bytes)",
          "ms / byte",
          "bytes/s",
          "x anchor",
          "note",
        ],
        rows,
        note:
          `lib/bench/decode.ts (data/results/bench/decode.jsonl): batch 1, d_model ${recs[0].d_model} x ${
            recs[0].n_layer
          } layers, random weights ` +
          `(speed does not depend on them); MambaByte reads the whole context, the attention models' caches hold random keys and values of that length. ` +
          `x anchor: bytes/s over PyTorch eager decoding of MambaByte of the same size on an H200 (${
            anchor ? sig(anchor) : "?"
          } bytes/s, data/anchors).`,
      },
    };
  },
});

/**
 * Bytes per second against context for the series of one kind of machine: "gpu" (runs on the H200 machine,
 * backend webgpu: the engine's series, tfjs ops and the JS stepper on its host) or "cpu" (the wasm backend),
 * so that each figure's legend stays short.
 */
function decodeContextFigure(records: Records, machine: "gpu" | "cpu") {
  {
    const onGpu = (r: Rec) => r.backend === "webgpu";
    const recs = contextRecords(records).filter((r) => !r.skipped && onGpu(r) === (machine === "gpu"));
    if (!recs.length) return undefined;
    const anchor = recs.find((r) => r.anchor_bytes_per_s)?.anchor_bytes_per_s as number | undefined;
    // MambaByte on the native engine (lib/bench/decode_engine.ts) at the same size: its latest record per
    // context, as one more series beside the attention models' engine series
    const size = { d: recs[0].d_model, n: recs[0].n_layer };
    const mambaEngine = latestBy(
      (records["bench/decode_engine"] ?? []).filter((r) =>
        r.d_model === size.d && r.n_layer === size.n && r.batch === 1 && r.context && r.bytes_per_s
      ),
      (r) => `${r.device}|${r.context}`,
    ).map((r) => ({
      model: "mambabyte",
      stepper: "engine",
      backend: r.backend,
      device: r.device,
      provenance: r.provenance,
      context: r.context,
      bytesPerS: r.bytes_per_s,
    }));
    if (machine === "gpu") recs.push(...mambaEngine);
    const series = group(recs, decodeSeriesName) as Map<string, Rec[]>;
    // where every series ran on one machine, its legend names leave out the " on webgpu, NVIDIA H200" they
    // share (the title names the machine)
    const wheres = new Set([...series.values()].map((rs) => ` on ${decodeWhere(rs[0])}`));
    const shared = wheres.size === 1 ? [...wheres][0] : "";
    const data: Rec[] = [...series].map(([name, rs], i) => ({
      type: "scatter",
      mode: "lines+markers",
      name: shared && name.endsWith(shared) ? name.slice(0, -shared.length) : name,
      x: rs.map((r) => r.context),
      y: rs.map((r) => r.bytesPerS),
      line: {
        color: colorOf(rs[0].model, i),
        dash: rs[0].stepper === "js" || rs[0].stepper === "engine" ? "solid" : "dot",
        width: rs[0].stepper === "engine" ? 3 : 2,
      },
      marker: {
        size: rs[0].stepper === "engine" ? 10 : 7,
        symbol: rs[0].stepper === "engine" ? "diamond" : rs[0].backend === "webgpu" ? "square" : "circle",
      },
    }));
    const contexts = [...new Set(recs.map((r) => r.context as number))].sort((a, b) => a - b);
    if (anchor) {
      data.push({
        type: "scatter",
        mode: "lines",
        name: `anchor: PyTorch eager MambaByte, H200 (${sig(anchor)} bytes/s)`,
        x: [contexts[0], contexts.at(-1)],
        y: [anchor, anchor],
        line: { dash: "dash", color: "#888" },
      });
    }
    // the title alone above the plot; the legend inside it, where no series runs
    const top = topTitle(
      `Batch-1 decoding speed against context ${
        machine === "gpu" ? "on the H200 machine" : "on the CPU"
      } (d_model ${recs[0].d_model} x ${recs[0].n_layer} layers)`,
      [],
    );
    const foot = footnote(
      "MambaByte's state has a fixed size, so its cost per byte does not grow with the context; the Transformer's KV cache and MegaByte's global cache grow by " +
        "one position per byte (per patch). Solid: MambaByte's fused JS stepper, which runs on the host CPU whatever the backend, and (diamonds) each model on the native engine, its state or KV cache on the GPU (MambaByte's from lib/bench/decode_engine.ts); dotted: tfjs ops on the " +
        "backend (on the H200 through WebGPU each op is a kernel launch, which is what bounds them). " +
        (machine === "gpu"
          ? "Squares and diamonds: the H200 machine (the CPU's series: decode_context_cpu). "
          : "Circles: the wasm backend on the CPUs named (the H200 machine's series: decode_context). ") +
        "Random weights: speed does not depend on them. A missing point: the run failed or did not fit its time budget (see the table).",
    );
    return {
      figure: {
        data,
        layout: layout({
          xTitle: "Context",
          xUnit: "bytes",
          xType: "log",
          yTitle: "Bytes per second",
          yType: "log",
          width: 1000,
          height: 460 + top.margin + foot.margin,
          legend: "inside",
          inside: { data },
          extra: {
            title: top.title,
            margin: { l: 80, r: 30, t: top.margin, b: foot.margin },
            annotations: [foot.annotation],
            xaxis: {
              tickvals: contexts,
              ticktext: contexts.map((c) => c >= 1024 ? `${c / 1024}K` : String(c)),
            },
          },
        }),
      },
    };
  }
}

registerFigure({
  name: "decode_context",
  description:
    "Bytes per second of batch-1 decoding against context length on the H200 machine, per model and stepper",
  reads: ["bench/decode", "bench/decode_engine"],
  build: (records) => decodeContextFigure(records, "gpu"),
});

registerFigure({
  name: "decode_context_cpu",
  description:
    "Bytes per second of batch-1 decoding against context length on the CPU, per model, stepper and CPU",
  reads: ["bench/decode"],
  build: (records) => decodeContextFigure(records, "cpu"),
});

/** The latest speculative-benchmark record per setting, and the plain greedy baseline of each. */
function speculativeRecords(records: Records): { latest: Rec[]; plainOf: (r: Rec) => Rec | undefined } {
  const latest = latestBy(
    (records["bench/decode"] ?? []).filter((r) => ["plain", "speculative", "subword"].includes(r.mode)),
    (r) =>
      `${r.provenance?.device}|${r.backend}|${r.verifier}|${r.mode}|${r.stepper}|${r.verify ?? ""}|${
        r.beta ?? ""
      }|${r.bytes}`,
  );
  // the plain baseline of each (device, verifier): the one over the most bytes
  const plainOf = (r: Rec) =>
    latest.filter((p) =>
      p.mode === "plain" && p.provenance?.device === r.provenance?.device && p.verifier === r.verifier
    )
      .sort((a, b) => b.bytes - a.bytes)[0];
  return { latest, plainOf };
}

/** "gpu/books" from a verifier path data/checkpoints/runs/compute-matched/gpu/books/mambabyte/model. */
const verifierModels = (r: Rec) =>
  String(r.verifier).replace(/^.*compute-matched\//, "").replace(/\/mambabyte\/model$/, "");

registerFigure({
  name: "speculative",
  description:
    "Table: speculative decoding (subword Mamba drafter, MambaByte verifier) against plain MambaByte and the drafter alone",
  reads: ["bench/decode"],
  build(records) {
    const { latest, plainOf } = speculativeRecords(records);
    if (!latest.length) return undefined;
    const rows = latest.map((r) => {
      const plain = plainOf(r);
      return [
        verifierModels(r),
        decodeWhere(r),
        r.mode,
        r.mode === "speculative"
          ? `${r.verify === "pass" ? "one pass" : "per-byte steps"}, m ${r.draftTokens}, β ${r.beta}`
          : STEPPER_TEXT[r.stepper] ?? r.stepper,
        String(r.bytes),
        r.mode === "speculative" ? `${fmt(r.acceptanceRate, 2)} (${r.accepted}/${r.drafted})` : "—",
        r.mode === "speculative" ? `${r.verifierPasses} / ${r.verifierSteps}` : "—",
        sig(r.bytesPerS),
        plain && r !== plain ? fmt(r.bytesPerS / plain.bytesPerS, 2) : "—",
        r.identicalToGreedy === undefined ? "—" : r.identicalToGreedy ? "yes" : "NO",
      ];
    });
    return {
      table: {
        columns: [
          "models (scale/domain)",
          "backend, device",
          "mode",
          "how",
          "bytes",
          "acceptance",
          "verifier passes / steps",
          "bytes/s",
          "x plain",
          "= greedy",
        ],
        rows,
        note:
          "lib/bench/decode.ts --verifier --drafter (data/results/bench/decode.jsonl), greedy decoding after the same prompt, on trained MambaByte and subword " +
          "Mamba models of this project. Acceptance: drafted bytes accepted (within the verifier's top β). x plain: bytes/s over plain greedy MambaByte on " +
          "the same device. = greedy: β = 1 output byte-identical to plain greedy decoding. The paper reports 2.6x for speculative over plain MambaByte " +
          "decoding with a parallel verification pass as cheap as a step (CUDA); here the fused verification pass still costs most of the bytes' steps " +
          "on the CPU (see the bound below), and each tfjs op on the H200 is a kernel launch.",
      },
    };
  },
});

registerFigure({
  name: "speculative_bound",
  description:
    "Table: what bounds speculative decoding with the fused JS stepper: verifier step and pass costs per byte, drafter step cost, best speed-up at full acceptance",
  reads: ["bench/decode"],
  build(records) {
    const bounds = speculativeBounds(records["bench/decode"] ?? []);
    if (!bounds.length) return undefined;
    const costs = bounds.map((b) => b.cost);
    const rows = bounds.map(({ cost: r, bytesPerToken, bound }) => [
      verifierModels(r),
      decodeWhere(r),
      fmt(r.verifier_step_ms_per_byte * 1000, 0),
      fmt(r.verifier_pass_ms_per_byte * 1000, 0),
      fmt(r.pass_over_step, 2),
      fmt(r.drafter_step_ms * 1000, 0),
      fmt(bytesPerToken, 2),
      fmt(bound, 2),
    ]);
    return {
      table: {
        columns: [
          "models (scale/domain)",
          "backend, device",
          "verifier step µs/byte",
          `fused pass µs/byte (${costs[0].draft_bytes} bytes)`,
          "pass / step",
          "drafter µs/token",
          "bytes/token",
          "best speed-up (all accepted)",
        ],
        rows,
        note:
          "lib/bench/decode.ts (mode verify_cost, data/results/bench/decode.jsonl): the JS stepper's kernels timed alone, without the decoding " +
          "loop's bookkeeping. Best speed-up = step x b / (drafter + pass x b), b bytes per token: a round in which every drafted byte is accepted, " +
          "against stepping the same bytes. On a CPU the matrix-vector products are compute-bound, so a pass saves only the repeated weight " +
          "reads; the paper's 2.6x needs a pass that costs about one step (a GPU) and a drafter much cheaper than the verifier.",
      },
    };
  },
});

registerFigure({
  name: "speculative_speedup",
  description:
    "Speculative decoding: bytes/s over plain greedy MambaByte per setting and device, with the acceptance rate",
  reads: ["bench/decode"],
  build(records) {
    const { latest, plainOf } = speculativeRecords(records);
    const shown = latest.filter((r) => r.mode !== "plain" && plainOf(r));
    if (!shown.length) return undefined;
    const setting = (r: Rec) =>
      r.mode === "speculative"
        ? `speculative, ${r.verify === "pass" ? "one pass" : "steps"}, β ${r.beta}`
        : "subword Mamba alone";
    const series = (r: Rec) => `${decodeWhere(r)}; ${verifierModels(r)} models`;
    const data: Rec[] = [...(group(shown, series) as Map<string, Rec[]>)].map(([where, rs], i) => ({
      type: "bar",
      name: where,
      x: rs.map(setting),
      y: rs.map((r) => r.bytesPerS / plainOf(r)!.bytesPerS),
      text: rs.map((r) => r.mode === "speculative" ? `${Math.round(r.acceptanceRate * 100)}% accepted` : ""),
      textposition: "outside",
      marker: { color: ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd"][i % 4] },
    }));
    const top = topTitle("Speculative decoding: speed over plain greedy MambaByte", []);
    const foot = footnote(
      "Bars: bytes/s over plain greedy MambaByte decoding with the same verifier on the same device (1 = no gain; dotted line: the paper's 2.6x). Labels: " +
        "drafted bytes accepted. Drafter: this project's subword Mamba, 3 tokens per round; β: top-β acceptance (β = 1 equals greedy decoding byte for byte). " +
        "A gain needs a verification pass that costs far less than the bytes' steps: true of mamba_ssm's CUDA kernels, not of the fused CPU stepper " +
        "(a pass costs about as much) nor of tfjs on WebGPU (each op a kernel launch).",
    );
    return {
      figure: {
        data,
        layout: layout({
          yTitle: "Speed-up over plain MambaByte (x)",
          width: 1000,
          height: 520 + foot.margin - 60,
          legend: "inside",
          inside: { data, hlines: [1, 2.6] },
          extra: {
            title: top.title,
            barmode: "group",
            margin: { l: 80, r: 30, t: top.margin, b: foot.margin },
            annotations: [foot.annotation],
            shapes: [
              { type: "line", xref: "paper", x0: 0, x1: 1, y0: 1, y1: 1, line: { color: "#444", width: 1 } },
              {
                type: "line",
                xref: "paper",
                x0: 0,
                x1: 1,
                y0: 2.6,
                y1: 2.6,
                line: { color: "#888", dash: "dot", width: 1 },
              },
            ],
          },
        }),
      },
    };
  },
});

// ---------------------------------------------------------------------------------------------------
// Decoding on the native engine (lib/bench/decode_engine.ts, lib/bench/speculative_engine.ts)

registerFigure({
  name: "decode_engine",
  description:
    "Table: greedy decoding on the native engine (WebGPU), batch 1, beside mamba_ssm's step as a CUDA graph measured in the same session",
  reads: ["bench/decode_engine"],
  build(records) {
    // the latest record with a same-session peer per shape and context, default settings only
    const recs = (records["bench/decode_engine"] ?? []).filter((r) =>
      r.peer?.cuda_graph_bytes_per_s && r.batch === 1 && (r.split_norm ?? "auto") === "auto" &&
      (r.fused_conv ?? "auto") === "auto" &&
      (r.gemv === undefined || (r.gemv.minGroups === 512 && r.gemv.unroll === 4 &&
        // a pass through the removed rows kernel (on by default on hardware adapters until it was measured)
        (r.gemv.rowsKernel === undefined || r.gemv.rowsKernel === false)))
    );
    const key = (r: Rec) => `${gpuName(r)}|${r.d_model}|${r.n_layer}|${r.context}`;
    // the spread between sessions: the ratios of the last three records of a shape and context that share
    // the latest one's design (its dispatches per byte)
    const spread = (r: Rec) => {
      const ratios = recs.filter((x) => key(x) === key(r) && x.dispatches_per_step === r.dispatches_per_step)
        .slice(-3).map((x) => x.bytes_per_s / x.peer.cuda_graph_bytes_per_s);
      return ratios.length > 1 ? `${fmt(Math.min(...ratios), 2)}-${fmt(Math.max(...ratios), 2)}` : "—";
    };
    const rows = latestBy(recs, key)
      .sort((a, b) => gpuName(b).localeCompare(gpuName(a)) || a.d_model - b.d_model || a.context - b.context)
      .map((r) => [
        `d ${r.d_model} x ${r.n_layer}`,
        gpuName(r),
        r.context.toLocaleString("en"),
        sig(r.bytes_per_s),
        fmt(r.ms_per_step, 3),
        sig(r.peer.cuda_graph_bytes_per_s),
        fmt(r.bytes_per_s / r.peer.cuda_graph_bytes_per_s, 2),
        spread(r),
        fmt(r.pass8_over_step, 2),
        // and against the generation path's ms per byte: the queued single-step time was host-bound in one
        // call (4.9 ms against 2.7), which made the recorded ratio read 0.78
        r.pass8_ms !== undefined ? fmt(r.pass8_ms / r.ms_per_step, 2) : "—",
        String(r.dispatches_per_step),
        String(r.provenance?.commit ?? "?"),
      ]);
    if (!rows.length) return undefined;
    return {
      table: {
        columns: [
          "shape (random weights)",
          "GPU",
          "context (bytes)",
          "bytes/s",
          "ms / byte",
          "mamba_ssm CUDA graph bytes/s",
          "ratio",
          "ratio, last 3 sessions",
          "pass of 8 / queued step",
          "pass of 8 / ms per byte",
          "dispatches / byte",
          "commit",
        ],
        rows,
        note:
          "lib/bench/decode_engine.ts --peers (data/results/bench/decode_engine.jsonl): greedy decoding, 64 steps per submission, ids chosen and fed back on the GPU; the peer is ../shared/anchors/peers/h200_peers.py decode (mamba_ssm's batch-1 step replayed as a CUDA graph, fp32) in the same device session. Ratio, last 3 sessions: the lowest and highest ratio of the last three sessions' records of that card, shape and context with the same dispatches per byte (the design). Pass of 8: one verification pass over 8 bytes (50 queued back to back), against one step timed the same way, and against the ms per byte of the greedy run (64 steps a submission). At the 972M shape both should agree; when they do not, the queued step was host-bound (one H100 call: 4.9 ms against 2.7). At d 256 x 4 a pass pays a submission that the greedy run shares among 64 steps, so only the first compares. The latest record per card: ratios hold for the card they were measured on.",
      },
    };
  },
});

registerFigure({
  name: "speculative_engine",
  description:
    "Table: speculative decoding on the native engine: the round's costs and the speed-up they allow, and the measured speed-up with trained models",
  reads: ["bench/speculative_engine"],
  build(records) {
    const recs = records["bench/speculative_engine"] ?? [];
    const costs = latestBy(
      recs.filter((r) => r.kind === "costs"),
      (r) => JSON.stringify([gpuName(r), r.verifier, r.drafter, r.draft_tokens]),
    ).sort((a, b) => b.verifier.d_model - a.verifier.d_model || gpuName(b).localeCompare(gpuName(a)));
    const trained = latestBy(
      recs.filter((r) => r.kind === "trained"),
      (r) => JSON.stringify([gpuName(r), r.verifier, r.drafter, r.draft_tokens, r.beta]),
    );
    if (!costs.length && !trained.length) return undefined;
    const shape = (c: Rec) =>
      `d ${c.d_model} x ${c.n_layer}${c.vocab && c.vocab !== 256 ? ` (V ${c.vocab})` : ""}`;
    const rows = [
      ...costs.map((r) => [
        "costs (random weights)",
        `${shape(r.verifier)}; ${shape(r.drafter)}`,
        `m ${r.draft_tokens}`,
        sig(r.greedy_bytes_per_s),
        `${fmt(r.verifier_step_ms, 2)} / ${fmt(r.verifier_pass8_ms, 2)} / ${fmt(r.drafter_step_ms, 2)} / ${
          fmt(r.round_ms, 2)
        }`,
        "—",
        "—",
        `≤ ${fmt(r.speedup_bound, 2)}`,
        gpuName(r),
        String(r.provenance?.commit ?? "?"),
      ]),
      ...trained.map((r) => [
        "trained, gpu-scale books",
        `${shape(r.verifier_config)}; ${shape(r.drafter_config)}`,
        `m ${r.draft_tokens}, β ${r.beta}, ${r.bytes.toLocaleString("en")} bytes`,
        sig(r.greedy_bytes_per_s),
        "—",
        `${fmt(r.acceptance, 2)} (${fmt(r.bytes_per_round, 1)} bytes/round)`,
        sig(r.speculative_bytes_per_s),
        `${fmt(r.speedup, 2)}${
          r.beta === 1 ? (r.identical_to_greedy ? ", = greedy" : ", DIFFERS from greedy") : ""
        }`,
        gpuName(r),
        String(r.provenance?.commit ?? "?"),
      ]),
    ];
    return {
      table: {
        columns: [
          "what",
          "verifier; drafter",
          "drafting",
          "greedy bytes/s",
          "ms: step / pass of 8 / drafter step / round",
          "acceptance",
          "speculative bytes/s",
          "speed-up",
          "GPU",
          "commit",
        ],
        rows,
        note:
          "lib/bench/speculative_engine.ts (data/results/bench/speculative_engine.jsonl), one GPU (the latest record per card): whole rounds on the device (lib/engine/speculative.ts), bytes read back 16 rounds at a time. Costs: the verifier's step and 8-byte pass, a drafter step and a whole round, queued back to back; a round emits at most 9 bytes, so the speed-up over greedy decoding is at most 9 x (greedy ms per byte) / (round ms), every draft accepted. The paper's setting is the 972M verifier (d 1792 x 48) with a 110M drafter (here d 768 x 24 with a 50,280-token head); its reported speed-up is 2.6x. Trained: the project's gpu-scale books MambaByte and subword Mamba (data/results/bench/speculative_models.jsonl), decoding after the same prompt; speed-up: over greedy decoding on the engine in the same run.",
      },
    };
  },
});

// ---------------------------------------------------------------------------------------------------
// CPU decoding beside llama.cpp (lib/bench/llama.ts)

registerFigure({
  name: "llama_cpu",
  description:
    "Table: CPU decoding and prefill of the project's stepper beside llama.cpp, same weights, same run",
  reads: ["bench/llama"],
  build(records) {
    const recs = latestBy(records["bench/llama"] ?? [], (r: Rec) => `${r.d_model}|${r.n_layer}`)
      .sort((a, b) => a.d_model - b.d_model);
    if (!recs.length) return undefined;
    const llama = (r: Rec, k: string) =>
      Object.keys(r.llama_cpp).sort().map((t) => sig(r.llama_cpp[t][k])).join(" / ");
    // the compressed formats of the same run: decode bytes/s (x the run's float32)
    const compressed = (r: Rec, f: string) => {
      const c = r.project_formats?.[f];
      return c ? `${sig(c.decode_bytes_per_s)} (${fmt(c.decode_over_f32, 2)}x)` : "—";
    };
    const rows = recs.map((r) => [
      `d ${r.d_model} x ${r.n_layer}`,
      `${r.prompt_bytes.toLocaleString("en")} + ${r.generated_bytes}`,
      sig(r.project.decode_bytes_per_s),
      llama(r, "decode_bytes_per_s"),
      fmt(r.decode_ratio_to_best_llama, 2),
      compressed(r, "bf16"),
      compressed(r, "int8"),
      sig(r.project.prefill_bytes_per_s),
      llama(r, "prefill_bytes_per_s"),
      fmt(r.prefill_ratio_to_best_llama, 2),
      [
        r.project.decode_weight_gb_per_s,
        r.memory_read_gb_per_s,
        r.memory_copy_gb_per_s,
      ].map((v) => (v ? fmt(v, 1) : "—")).join(" / "),
      r.project.path,
      `${r.provenance?.device ?? "?"}, ${r.provenance?.commit ?? "?"}`,
    ]);
    return {
      table: {
        columns: [
          "shape (random weights)",
          "prompt + generated bytes",
          "decode bytes/s (f32)",
          "llama.cpp decode, 1 / 2 threads",
          "decode ratio",
          "bf16 decode (x f32)",
          "int8 decode (x f32)",
          "prefill bytes/s (f32)",
          "llama.cpp prefill, 1 / 2 threads",
          "prefill ratio",
          "GB/s: f32 weights read decoding / memory read, project's threads / memory copy",
          "project's path",
          "machine, commit",
        ],
        rows,
        note:
          "lib/bench/llama.ts (data/results/bench/llama.jsonl): the project's CPU stepper (lib/decode/stepper.ts) and llama.cpp (node-llama-cpp's prebuilt Linux x64 library through tests/reference/llama_logits.c, no JavaScript in its loop) on the same random weights in GGUF (export --format gguf's mapping), interleaved, medians of the repetitions. Ratios: the project's float32 over the better llama.cpp figure. bf16 and int8: the project's stepper with its weight matrices in bfloat16 or in int8 (one scale per 64 weights), in the same run. Weights read while decoding: every float32 weight once per generated byte, times decode bytes/s; memory read: the project's threads summing 512 MiB in WebAssembly in the same run (the most a step that reads every weight once can reach, where the weights do not fit the caches; — in records before it); memory copy: one thread copying 512 MiB in the same run (bytes copied per second; each is read once and written once).",
      },
    };
  },
});

// ---------------------------------------------------------------------------------------------------
// The CPU stepper's compressed weights against float32 (eval --weights)

registerFigure({
  name: "eval_weights",
  description: "Table: bits per byte of the CPU stepper's bf16 and int8 weights against float32, same text",
  reads: ["eval_weights"],
  build(records) {
    const recs = latestBy(
      records["eval_weights"] ?? [],
      (r: Rec) => `${r.model_dir}|${r.domain}|${r.split}|${r.bytes}|${r.weights}`,
    );
    if (!recs.length) return undefined;
    const rows = recs.map((r) => [
      `${r.model} (${r.parameters.toLocaleString("en")} parameters): ${r.model_dir}`,
      `${r.domain} ${r.split}, ${r.bytes.toLocaleString("en")} bytes (${r.data})`,
      r.weights,
      fmt(r.f32_bits_per_byte, 4),
      fmt(r.bits_per_byte, 4),
      signed(r.bits_per_byte_minus_f32, 5),
      `${r.provenance?.device ?? "?"}, ${r.provenance?.commit ?? "?"}`,
    ]);
    return {
      table: {
        columns: ["model", "text", "weights", "f32 bits/byte", "bits/byte", "minus f32", "machine, commit"],
        rows,
        note:
          "eval --weights (data/results/eval_weights.jsonl): the text scored by the CPU stepper (lib/decode/stepper.ts) with its weight matrices in the format, and in float32 on the same path, in the same run. bf16: bfloat16, rounded to nearest even; int8: one float32 scale per row and block of 64 weights, the input rounded to int16. Models: checkpoint directories trained here (not committed; data/checkpoints), small-scale, not the paper's.",
      },
    };
  },
});
