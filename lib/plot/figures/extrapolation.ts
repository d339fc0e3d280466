/** Figures and tables of the length-extrapolation experiment (extrapolation.jsonl). */
import * as aq from "arquero";
import { deviation, extent, group, mean } from "d3-array";

import { layout } from "../display.ts";

import { type Rec, type Records, registerFigure } from "./registry.ts";
import {
  chooseScale,
  colorOf,
  fmt,
  footnote,
  halfNote,
  latestBy,
  scaleNote,
  seedNote,
  signed,
  topTitle,
} from "./common.ts";
import { isMambaKind } from "../../models/lm.ts";
import { firstMessage } from "../../util/messages.ts";

// ---------------------------------------------------------------------------------------------------
// Extrapolation (lib/eval/extrapolation.ts -> extrapolation.jsonl)

const MODE_TEXT: Record<string, string> = { whole: "whole sequence", sliding: "sliding window of C" };

function extrapolationRecords(records: Records, wanted?: string): { scale: string; recs: Rec[] } | undefined {
  const all = records.extrapolation ?? [];
  const scale = chooseScale(all, wanted);
  if (!scale) return undefined;
  const recs = latestBy(
    all.filter((r) => r.scale === scale),
    (r) => `${r.model_dir}|${r.trained_context}|${r.multiple}|${r.mode}`,
  );
  return recs.length ? { scale, recs } : undefined;
}

/** One series per (model, mode): its label, colour, dash, and records sorted by multiple. */
function extrapolationSeries(recs: Rec[]) {
  const models = [...new Set(recs.map((r) => r.model_dir))];
  const byModelMode = group(recs, (r: Rec) => r.model_dir, (r: Rec) => r.mode) as Map<
    string,
    Map<string, Rec[]>
  >;
  return [...byModelMode].flatMap(([dir, byMode]) =>
    [...byMode].map(([mode, rs]) => {
      const r0 = rs[0];
      const recurrent = isMambaKind(r0.model_kind);
      const how = mode === "whole"
        ? (recurrent ? "whole sequence, recurrent" : "whole sequence, full attention")
        : MODE_TEXT[mode] ?? mode;
      return {
        name: `${r0.label}: ${how}`,
        label: String(r0.label),
        kind: r0.model_kind as string,
        color: colorOf(r0.model_kind, models.indexOf(dir)),
        dash: mode === "sliding" ? "dot" : "solid",
        trainedBytes: r0.trained_context_bytes as number,
        recs: [...rs].sort((a, b) => a.multiple - b.multiple),
      };
    })
  ).sort((a, b) => a.name.localeCompare(b.name));
}

/** The families the extrapolation experiment compares (lib/eval/extrapolation.ts EXTRAPOLATION_KINDS). */
const EXTRAPOLATION_FAMILIES: Record<string, string> = {
  mambabyte: "MambaByte",
  mamba_subword: "subword Mamba",
  transformer: "byte Transformer",
};

function skippedNote(recs: Rec[]): string {
  const kinds = new Set(recs.map((r) => r.model_kind));
  const absent = Object.keys(EXTRAPOLATION_FAMILIES).filter((k) => !kinds.has(k)).map((k) =>
    EXTRAPOLATION_FAMILIES[k]
  );
  const missing = absent.length
    ? `No record at this scale for: ${
      absent.join(", ")
    } (drawn at a smaller scale: deno task figures --scale gpu, or small).`
    : "";
  const skipped = recs.filter((r) => r.status !== "ok");
  if (!skipped.length) return missing;
  // one entry per model and mode, and for failures per first message (the lengths of one out-of-memory
  // pass differ only in how many buffers went invalid after it); a skip says its first length's reason
  const why = (r: Rec) =>
    r.status === "failed"
      ? "failed (the stage tries it again on its next pass): " +
        firstMessage(String(r.reason)).replace(/\.$/, "").toLowerCase()
      : String(r.reason).replace(/; the longest.*$/, "");
  const byWhy = group(skipped, (r: Rec) => `${r.label}|${r.mode}|${r.status === "failed" ? why(r) : ""}`);
  return "Not evaluated: " +
    [...(byWhy as Map<string, Rec[]>).values()].map((rs) =>
      `${rs[0].label} (${rs[0].mode}) at ${rs.map((r) => `${r.multiple}x`).join(", ")}: ${why(rs[0])}`
    ).join("; ") + "." + (missing ? " " + missing : "");
}

/** Test bytes scored at each length, per model ("MambaByte 8,192, ..."). */
function bytesNote(recs: Rec[]): string {
  const per = latestBy(recs.filter((r) => r.status === "ok"), (r) => r.model_dir);
  return per.map((r) => `${r.label} ${Number(r.bytes).toLocaleString("en")}`).join(", ");
}

registerFigure({
  name: "extrapolation_length",
  description:
    "Test bits per byte against evaluation length (multiples of the training context), and its change from 1x, per model and mode",
  reads: ["extrapolation"],
  build(records, ctx) {
    const sel = extrapolationRecords(records, ctx.scale);
    if (!sel) return undefined;
    const { scale, recs } = sel;
    const series = extrapolationSeries(recs);
    const data: Rec[] = [];
    for (const s of series) {
      const ok = s.recs.filter((r) => r.status === "ok");
      const base = ok.find((r) => r.multiple === 1)?.bits_per_byte;
      const common = {
        type: "scatter",
        mode: "lines+markers",
        legendgroup: s.name,
        line: { color: s.color, dash: s.dash, width: 2 },
        marker: { size: 7 },
      };
      data.push({
        ...common,
        name: `${s.name} (C = ${s.trainedBytes.toLocaleString("en")} bytes)`,
        x: ok.map((r) => r.multiple),
        y: ok.map((r) => r.bits_per_byte),
        // hover: how many sequences, and the spread of their bits per byte (the text varies; the lengths do not)
        customdata: ok.map((
          r,
        ) => [r.sequences, r.sequence_bpb?.length > 1 ? deviation(r.sequence_bpb as number[]) : 0]),
        hovertemplate:
          "%{x}x: %{y:.4f} bits/byte over %{customdata[0]} sequences (s.d. %{customdata[1]:.3f})",
      });
      if (base !== undefined) {
        data.push({
          ...common,
          showlegend: false,
          xaxis: "x",
          yaxis: "y2",
          x: ok.map((r) => r.multiple),
          y: ok.map((r) => r.bits_per_byte - base),
        });
      }
    }
    const multiples = [...new Set(recs.map((r) => r.multiple as number))].sort((a, b) => a - b);
    const top = topTitle(
      `Length extrapolation: test bits per byte against evaluation length (${
        recs[0].domain
      }, ${scale} scale)`,
      [],
    );
    const foot = footnote(
      `Every length scores the same test bytes (${
        bytesNote(recs)
      }); at k x C a sequence holds k x C tokens, read from its start. ` +
        `Bottom: change from 1x (same bytes, so differences are paired). ` +
        `Paper [S]: MambaByte trained at 8,192 bytes shows no significant degradation at 4x and longer; Transformers do not extrapolate beyond their training length. ` +
        `${scaleNote(scale)}${skippedNote(recs) ? "\n" + skippedNote(recs) : ""}`,
      70,
    );
    const axisStyle = {
      showgrid: true,
      gridcolor: "#e6e6e6",
      zeroline: false,
      showline: true,
      linecolor: "#444",
      ticks: "outside",
      automargin: true,
    };
    return {
      figure: {
        data,
        layout: layout({
          xTitle: "Evaluation length (multiple of the training context C)",
          xType: "log",
          yTitle: "Test bits per byte",
          width: 1000,
          height: 640 + foot.margin - 120,
          // the legend in the upper panel, where no series runs
          legend: "inside",
          inside: { data, yDomain: [0.42, 1] },
          extra: {
            title: top.title,
            showlegend: true,
            xaxis: { tickvals: multiples, ticktext: multiples.map((m) => `${m}x`), anchor: "y2" },
            yaxis: {
              domain: [0.42, 1],
              title: { text: "Test bits per byte (bits/byte)", font: { size: 14 } },
            },
            yaxis2: {
              ...axisStyle,
              domain: [0, 0.34],
              title: { text: "Change from 1x (bits/byte)", font: { size: 14 } },
              zeroline: true,
              zerolinecolor: "#888",
            },
            margin: { l: 80, r: 30, t: top.margin, b: foot.margin },
            shapes: [{
              type: "line",
              xref: "x",
              yref: "paper",
              x0: 1,
              x1: 1,
              y0: 0,
              y1: 1,
              line: { color: "#999", dash: "dash", width: 1 },
            }],
            annotations: [foot.annotation],
          },
        }),
      },
    };
  },
});

/**
 * Position bins of one (model, mode) pooled over every evaluation length: in both modes the prediction at
 * position p of a sequence depends only on the bytes before it (and on where the windows start, which is the
 * sequence start), not on the sequence's length, so every length contributes samples of the same quantity.
 */
function pooledBins(recs: Rec[]): { lo: number; hi: number; bytes: number; bits_per_byte: number }[] {
  const bins = new Map<number, { lo: number; hi: number; bytes: number; nats: number }>();
  for (const r of recs.filter((r) => r.status === "ok")) {
    for (const b of r.position_bins as Rec[]) {
      const have = bins.get(b.bin);
      if (have) {
        Object.assign(have, {
          lo: Math.min(have.lo, b.lo),
          hi: Math.max(have.hi, b.hi),
          bytes: have.bytes + b.bytes,
          nats: have.nats + b.nats,
        });
      } else bins.set(b.bin, { lo: b.lo, hi: b.hi, bytes: b.bytes, nats: b.nats });
    }
  }
  return [...bins.entries()].sort((a, b) => a[0] - b[0]).map(([, b]) => ({
    ...b,
    bits_per_byte: b.nats / b.bytes / Math.LN2,
  }));
}

registerFigure({
  name: "extrapolation_position",
  description:
    "Test bits per byte against byte position (pooled over evaluation lengths), per model and mode",
  reads: ["extrapolation"],
  build(records, ctx) {
    const sel = extrapolationRecords(records, ctx.scale);
    if (!sel) return undefined;
    const { scale, recs } = sel;
    const series = extrapolationSeries(recs).filter((s) => s.recs.some((r) => r.status === "ok"));
    if (!series.length) return undefined;
    const data = series.map((s) => {
      const bins = pooledBins(s.recs);
      const longest = s.recs.filter((r) => r.status === "ok").at(-1)!;
      return {
        type: "scatter",
        mode: "lines+markers",
        name: `${s.name}, to ${longest.multiple}x C (C = ${s.trainedBytes.toLocaleString("en")} bytes)`,
        x: bins.map((b) => Math.sqrt(b.lo * b.hi)),
        y: bins.map((b) => b.bits_per_byte),
        customdata: bins.map((b) => [b.lo, b.hi, b.bytes]),
        hovertemplate: "bytes %{customdata[0]}-%{customdata[1]}: %{y:.3f} bits/byte (%{customdata[2]} bytes)",
        line: { color: s.color, dash: s.dash, width: 2 },
        marker: { size: 5 },
      };
    });
    // each model's training context, a vertical line in its colour, labelled once per distinct context
    const contexts = latestBy(
      series.map((s) => ({ x: s.trainedBytes, color: s.color, label: s.label })),
      (c) => `${c.x}|${c.label}`,
    );
    const top = topTitle(`Loss against byte position (${recs[0].domain}, ${scale} scale)`, []);
    const foot = footnote(
      `Each point: bits per byte of the predictions at byte positions in one bin (two bins per doubling), pooled over all evaluation lengths ` +
        `(the prediction at a position does not depend on how long the sequence is). Dashed lines: each model's training context C; ` +
        `right of its line a model predicts from more context than it was trained on. Points at the largest positions come from the longest sequences only, so from few bytes. ` +
        `Paper [S]: no significant degradation for MambaByte past its training length; Transformers do not extrapolate. ${
          scaleNote(scale)
        }`,
      70,
    );
    const [yMin, yMax] = extent(data.flatMap((d) => d.y).filter(Number.isFinite) as number[]) as [
      number,
      number,
    ];
    const yMean = mean(data.flatMap((d) => d.y).filter(Number.isFinite) as number[]) ?? yMax;
    const yRange: [number, number] = [Math.max(0, yMin - 0.3), Math.min(yMax, yMean * 2) + 0.3];
    return {
      figure: {
        data,
        layout: layout({
          xTitle: "Byte position in the test sequence (bytes of context before the predicted byte)",
          xType: "log",
          yTitle: "Test bits per byte",
          yUnit: "bits/byte",
          width: 1000,
          height: 560 + foot.margin - 100,
          legend: "inside",
          inside: {
            data,
            yRange,
            labels: contexts.map((c, i) => ({
              x: c.x,
              top: 1 - 0.06 * i,
              chars: `C = ${c.x} (${c.label})`.length,
            })),
          },
          extra: {
            title: top.title,
            showlegend: true,
            margin: { l: 80, r: 30, t: top.margin, b: foot.margin },
            xaxis: { exponentformat: "none" },
            // the first positions (almost no context) can sit far above the rest: keep the bulk readable
            yaxis: { range: yRange },
            shapes: contexts.map((c) => ({
              type: "line",
              xref: "x",
              yref: "paper",
              x0: c.x,
              x1: c.x,
              y0: 0,
              y1: 1,
              line: { color: c.color, dash: "dash", width: 1 },
            })),
            annotations: [
              ...contexts.map((c, i) => ({
                x: Math.log10(c.x),
                y: 1 - 0.06 * i,
                xref: "x",
                yref: "paper",
                text: `C = ${c.x} (${c.label})`,
                showarrow: false,
                xanchor: "left",
                xshift: 4,
                yanchor: "top",
                font: { size: 11, color: c.color },
                bgcolor: "rgba(255,255,255,0.8)",
              })),
              foot.annotation,
            ],
          },
        }),
      },
    };
  },
});

registerFigure({
  name: "extrapolation",
  description: "Table: test bits per byte per evaluation length (multiples of C), per model and mode",
  reads: ["extrapolation"],
  build(records, ctx) {
    const sel = extrapolationRecords(records, ctx.scale);
    if (!sel) return undefined;
    const { scale, recs } = sel;
    const multiples = [...new Set(recs.map((r) => r.multiple as number))].sort((a, b) => a - b);
    const t = aq.from(recs.map((r) => ({
      model: r.label,
      kind: r.model_kind,
      mode: MODE_TEXT[r.mode] ?? r.mode,
      C: r.trained_context_bytes,
      multiple: `${r.multiple}x`,
      bpb: r.status === "ok" ? r.bits_per_byte : null,
    })));
    const wide = t.groupby("model", "kind", "mode", "C").pivot("multiple", {
      bpb: (d: Rec) => aq.op.any(d.bpb),
    })
      .orderby("model", "mode").objects() as Rec[];
    const cols = multiples.map((m) => `${m}x`);
    const rows = wide.map((w) => {
      const vals = cols.map((c) => w[c] as number | null);
      const ok = vals.map((v, i) => [v, multiples[i]] as const).filter(([v]) =>
        v !== null && v !== undefined
      );
      const change = ok.length > 1 ? ok.at(-1)![0]! - ok[0][0]! : NaN;
      return [
        String(w.model),
        String(w.mode),
        String(w.C),
        ...vals.map((v) => fmt(v)),
        ok.length > 1 ? `${signed(change)} (${ok.at(-1)![1]}x)` : "—",
      ];
    });
    return {
      table: {
        columns: ["model", "mode", "C (bytes)", ...cols.map((c) => `${c} bpb`), "longest − 1x"],
        rows,
        note:
          `Test bits per byte at evaluation lengths that are multiples of the training context C (${
            recs[0].domain
          }, ${scale} scale); ` +
          `every length scores the same test bytes (${bytesNote(recs)}). — = not evaluated. ${
            skippedNote(recs)
          } ${scaleNote(scale)}${halfNote(recs)}${seedNote(recs)}`,
      },
    };
  },
});
