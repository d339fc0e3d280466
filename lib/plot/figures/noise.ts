/** Figures and tables of the noise-robustness experiment (noise.jsonl). */
import * as aq from "arquero";
import { mean } from "d3-array";
import { PAPER_NOISE, PAPER_PG19_WORD_PPL } from "../../results/paper.ts";
import { SCALES_LARGEST_FIRST } from "../../scales.ts";

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
  sig,
  signed,
  topTitle,
} from "./common.ts";

// ---------------------------------------------------------------------------------------------------
// Noise (lib/eval/noise.ts -> noise.jsonl)

/**
 * The scale the noise figures and the README's noise verdict read: `wanted`, else the largest scale whose
 * records compare MambaByte with the subword Mamba on some domain (the paper's comparison), else the largest
 * with any record. A scale where only some models are evaluated yet (a device's float16 copies coming back
 * one session at a time) then does not hide a smaller scale's whole comparison; its table still shows.
 */
export function noiseScale(all: Rec[], wanted?: string): string | undefined {
  if (wanted) return wanted;
  const compares = (scale: string) => {
    const at = all.filter((r) => r.scale === scale);
    return [...new Set(at.map((r) => r.domain))].some((d) => comparesOn(at, d));
  };
  return SCALES_LARGEST_FIRST.find(compares) ?? chooseScale(all);
}

/** Whether a scale's records on `domain` hold both models the paper compares under noise. */
const comparesOn = (recs: Rec[], domain: unknown) =>
  ["mambabyte", "mamba_subword"].every((k) => recs.some((r) => r.domain === domain && r.model_kind === k));

/**
 * The domain the noise table, figures and the README's verdict show (one scale's records): books (the PG19
 * stand-in) where it holds both compared models, else the first domain that does, else books where
 * recorded, else the first domain (the noise_domains table has every domain).
 */
export function noiseDomain(recs: Rec[]): string | undefined {
  const domains = [...new Set(recs.map((r) => r.domain as string))];
  const both = domains.filter((d) => comparesOn(recs, d));
  if (both.length) return both.includes("books") ? "books" : both[0];
  return domains.includes("books") ? "books" : domains[0];
}

/**
 * On one domain of one scale's records: the noise settings (clean left out, in the paper's order) where
 * MambaByte and the subword Mamba both have a word-perplexity ratio, those where MambaByte's is the smaller
 * (it grows less under that noise), and the ratio itself (a setting's latest record). The noise_domains
 * table and the README's verdict both count with it.
 */
export function noiseComparison(recs: Rec[], domain: string | undefined) {
  const ratio = (kind: string, s: { noise: string; p: number }) =>
    recs.findLast((r) => r.domain === domain && r.model_kind === kind && r.noise === s.noise && r.p === s.p)
      ?.ratio_word_perplexity as number | undefined;
  const settings = noiseSettings(recs.filter((r) => r.domain === domain)).filter((s) => s.noise !== "none");
  const both = settings.filter((s) =>
    ratio("mambabyte", s) !== undefined && ratio("mamba_subword", s) !== undefined
  );
  const smaller = both.filter((s) => ratio("mambabyte", s)! < ratio("mamba_subword", s)!);
  return { both, smaller, ratio };
}

const settingName = (r: Rec) => (r.noise === "none" ? "clean" : `${r.noise.replace("_", " ")} p=${r.p}`);

/**
 * The noise records of one scale and one domain: books (the paper's PG19 stand-in) where recorded, else
 * the first domain; the other domains are in the noise_domains table.
 */
function noiseRecords(
  records: Records,
  wanted?: string,
): { scale: string; recs: Rec[]; models: Rec[] } | undefined {
  const all = records.noise ?? [];
  const scale = noiseScale(all, wanted);
  if (!scale) return undefined;
  const atScale = latestBy(all.filter((r) => r.scale === scale), (r) => `${r.model_dir}|${r.noise}|${r.p}`);
  const domain = noiseDomain(atScale);
  const recs = atScale.filter((r) => r.domain === domain);
  if (!recs.length) return undefined;
  // one entry per model, in the order MambaByte, subword Mamba, others
  const order = (k: string) => (k === "mambabyte" ? 0 : k === "mamba_subword" ? 1 : 2);
  const models = latestBy(recs, (r) => r.model_dir).sort((a, b) =>
    order(a.model_kind) - order(b.model_kind) || String(a.label).localeCompare(b.label)
  );
  return { scale, recs, models };
}

/** Settings in the paper's order (clean first), as recorded. */
function noiseSettings(recs: Rec[]): { noise: string; p: number }[] {
  const keys = latestBy(recs, (r) => `${r.noise}|${r.p}`).map((r) => ({
    noise: r.noise as string,
    p: r.p as number,
  }));
  const rank = (s: { noise: string; p: number }) => {
    if (s.noise === "none") return -1;
    const i = PAPER_NOISE.findIndex((q) => q.noise === s.noise && (q.p === null || q.p === s.p));
    return i >= 0 ? i : 100;
  };
  return keys.sort((a, b) => rank(a) - rank(b) || a.p - b.p);
}

const paperNoise = (s: { noise: string; p: number }) =>
  PAPER_NOISE.find((q) => q.noise === s.noise && (q.p === null || q.p === s.p));

registerFigure({
  name: "noise",
  description:
    "Table: increase of bits per byte and word perplexity under each noise, per model, beside the paper's",
  reads: ["noise"],
  build(records, ctx) {
    const sel = noiseRecords(records, ctx.scale);
    if (!sel) return undefined;
    const { scale, recs, models } = sel;
    const settings = noiseSettings(recs);
    // long form (setting, column, cell), pivoted by arquero into one column per (model, quantity)
    const long = recs.flatMap((r) => {
      const setting = settingName(r);
      const bpb = r.noise === "none"
        ? fmt(r.bits_per_byte)
        : `${fmt(r.bits_per_byte)} (${signed(r.delta_bits_per_byte)})`;
      const ppl = r.noise === "none"
        ? sig(r.word_perplexity)
        : `${sig(r.word_perplexity)} (${r.delta_word_perplexity >= 0 ? "+" : ""}${
          sig(r.delta_word_perplexity)
        }, ×${sig(r.ratio_word_perplexity)})`;
      return [{ setting, col: `${r.label} bpb (Δ)`, cell: bpb }, {
        setting,
        col: `${r.label} word PPL (Δ, ×)`,
        cell: ppl,
      }];
    });
    const wide = new Map(
      (aq.from(long).groupby("setting").pivot("col", { cell: (d: Rec) => aq.op.any(d.cell) })
        .objects() as Rec[])
        .map((o) => [o.setting as string, o]),
    );
    const modelCols = models.flatMap((m) => [`${m.label} bpb (Δ)`, `${m.label} word PPL (Δ, ×)`]);
    const columns = ["noise", ...modelCols, "paper ΔPPL subword Mamba-1.03B", "paper ΔPPL MambaByte-972M"];
    const rows = settings.map((s) => {
      const name = settingName(s);
      const paper = paperNoise(s);
      return [
        name,
        ...modelCols.map((c) => (wide.get(name)?.[c] as string | undefined) ?? "—"),
        paper
          ? `+${paper.subword.toLocaleString("en")}`
          : s.noise === "none"
          ? `${PAPER_PG19_WORD_PPL.subword.test} (test)`
          : "—",
        paper
          ? `+${paper.mambabyte.toLocaleString("en")}`
          : s.noise === "none"
          ? `${PAPER_PG19_WORD_PPL.mambabyte.test} (test)`
          : "—",
      ];
    });
    const m0 = models[0];
    return {
      table: {
        columns,
        rows,
        note: `Noise robustness on ${m0.domain} (${scale} scale; ${
          fmt(mean(models.map((m) => m.words)), 0)
        } clean words, ${m0.clean?.bytes ?? "?"} bytes scored, noise seed ${m0.seed}). ` +
          `bpb: bits per byte of the noisy text; word PPL: exp(nats of the noisy text / words of the CLEAN text); Δ: noisy − clean, ×: noisy / clean. ` +
          `Paper columns: PG19 word-perplexity increase [S] (clean row: the paper's test perplexity). ${
            scaleNote(scale)
          }${halfNote(recs)}${seedNote(recs)}`,
      },
    };
  },
});

registerFigure({
  name: "noise_bpb",
  description: "Increase of test bits per byte under each noise, per model",
  reads: ["noise"],
  build(records, ctx) {
    const sel = noiseRecords(records, ctx.scale);
    if (!sel) return undefined;
    const { scale, recs, models } = sel;
    const settings = noiseSettings(recs).filter((s) => s.noise !== "none");
    const data = models.map((m, i) => {
      const mine = new Map(recs.filter((r) => r.model_dir === m.model_dir).map((r) => [settingName(r), r]));
      return {
        type: "bar",
        name: `${m.label} (clean: ${fmt(m.clean?.bits_per_byte)} bits/byte)`,
        marker: { color: colorOf(m.model_kind, i) },
        x: settings.map(settingName),
        y: settings.map((s) => mine.get(settingName(s))?.delta_bits_per_byte ?? null),
      };
    });
    const top = topTitle(
      `Increase of test bits per byte under synthetic noise (${models[0].domain}, ${scale} scale)`,
      [],
    );
    const foot = footnote(
      `Bits per byte of the noisy text (per byte of that text) minus that of the clean text; ${
        m0Bytes(models)
      } clean test bytes, the same noisy texts for every model. ` +
        `The paper reports word perplexity only (noise_word_ppl). ${scaleNote(scale)}`,
      130,
    );
    return {
      figure: {
        data,
        layout: layout({
          xTitle: "Noise and probability p",
          yTitle: "Bits per byte, noisy − clean",
          yUnit: "bits/byte",
          width: 1000,
          height: 520 + foot.margin - 100,
          legend: "inside",
          inside: { data },
          extra: {
            title: top.title,
            showlegend: true,
            barmode: "group",
            margin: { l: 80, r: 30, t: top.margin, b: foot.margin },
            annotations: [foot.annotation],
          },
        }),
      },
    };
  },
});

const m0Bytes = (models: Rec[]) => (models[0].clean?.bytes ?? 0).toLocaleString("en");

registerFigure({
  name: "noise_word_ppl",
  description:
    "Increase of log word perplexity (extra nats per clean word) under each noise, per model, beside the paper's",
  reads: ["noise"],
  build(records, ctx) {
    const sel = noiseRecords(records, ctx.scale);
    if (!sel) return undefined;
    const { scale, recs, models } = sel;
    const settings = noiseSettings(recs).filter((s) => s.noise !== "none");
    const x = settings.map(settingName);
    // ln(noisy PPL / clean PPL) = (noisy nats - clean nats) / clean words: linear, and defined below 1x too
    const ours = (m: Rec, i: number) => {
      const mine = new Map(recs.filter((r) => r.model_dir === m.model_dir).map((r) => [settingName(r), r]));
      return {
        type: "bar",
        name: `${m.label} (ours; clean PPL ${sig(m.clean?.word_perplexity)})`,
        marker: { color: colorOf(m.model_kind, i) },
        x,
        y: settings.map((s) => {
          const r = mine.get(settingName(s));
          return r ? Math.log(r.ratio_word_perplexity) : null;
        }),
      };
    };
    // the paper's increases on the same scale: ln(1 + increase / clean test perplexity) (the split is not stated [U])
    const paper = (key: "subword" | "mambabyte", kind: string) => {
      const ref = PAPER_PG19_WORD_PPL[key];
      return {
        type: "bar",
        name: `paper: ${ref.model}, PG19 (clean PPL ${ref.test}, test)`,
        marker: {
          color: "white",
          line: { color: colorOf(kind), width: 2 },
          pattern: { shape: "/", fgcolor: colorOf(kind), solidity: 0.35 },
        },
        x,
        y: settings.map((s) => {
          const p = paperNoise(s);
          return p ? Math.log(1 + p[key] / ref.test) : null;
        }),
      };
    };
    // each model beside the paper's model of the same kind
    const data: Rec[] = [];
    models.forEach((m, i) => {
      data.push(ours(m, i));
      if (
        m.model_kind === "mambabyte" &&
        !data.some((d) => d.name.includes(PAPER_PG19_WORD_PPL.mambabyte.model))
      ) data.push(paper("mambabyte", "mambabyte"));
      if (
        m.model_kind === "mamba_subword" &&
        !data.some((d) => d.name.includes(PAPER_PG19_WORD_PPL.subword.model))
      ) data.push(paper("subword", "mamba_subword"));
    });
    const top = topTitle(
      `Word perplexity under synthetic noise: ln(noisy / clean) (${models[0].domain}, ${scale} scale)`,
      [],
    );
    const foot = footnote(
      `Word perplexity = exp(nats of the noisy text / words of the CLEAN text), so ln(noisy / clean) = extra nats per original word; below 0: the noisy text is cheaper ` +
        `to encode in total (dropping characters removes bytes to predict). Hatched: the paper's PG19 increases [S] on the same scale, ln(1 + increase / clean), ` +
        `taking the paper's clean test perplexity (which split its noise table used is not stated). ${
          scaleNote(scale)
        }`,
      130,
    );
    return {
      figure: {
        data,
        layout: layout({
          xTitle: "Noise and probability p",
          yTitle: "ln(word PPL noisy / clean)",
          yUnit: "nats per clean word",
          width: 1000,
          height: 560 + foot.margin - 100,
          legend: "inside",
          inside: { data, hlines: [0] },
          extra: {
            title: top.title,
            showlegend: true,
            barmode: "group",
            margin: { l: 80, r: 30, t: top.margin, b: foot.margin },
            yaxis: { zeroline: true, zerolinecolor: "#444" },
            annotations: [foot.annotation],
          },
        }),
      },
    };
  },
});

registerFigure({
  name: "noise_domains",
  description:
    "Table: on every domain evaluated, in how many noise settings MambaByte's word perplexity grows less than the subword Mamba's",
  reads: ["noise"],
  build(records, ctx) {
    const all = records.noise ?? [];
    const scale = noiseScale(all, ctx.scale);
    if (!scale) return undefined;
    const recs = latestBy(all.filter((r) => r.scale === scale), (r) => `${r.model_dir}|${r.noise}|${r.p}`);
    // the domains holding both compared models (a domain with MambaByte's records alone compares nothing)
    const domains = [...new Set(recs.map((r) => r.domain as string))].sort().filter((d) =>
      comparesOn(recs, d)
    );
    if (domains.length < 2) return undefined; // one domain: the noise table shows it whole
    const rows = domains.map((d) => {
      const { both, smaller, ratio } = noiseComparison(recs, d);
      const lnMean = (kind: string) => mean(both.map((s) => Math.log(ratio(kind, s)!)));
      return [
        d,
        `${smaller.length} of ${both.length}`,
        fmt(lnMean("mambabyte"), 2),
        fmt(lnMean("mamba_subword"), 2),
      ];
    });
    return {
      table: {
        columns: [
          "domain",
          "settings where MambaByte's perplexity grows less",
          "MambaByte mean ln(noisy / clean)",
          "subword Mamba mean ln(noisy / clean)",
        ],
        rows,
        note:
          `Word perplexity ratios (noisy / clean, per clean word) of each noise setting, ${scale} scale; ` +
          `the noise table shows ${noiseDomain(recs)} setting by setting.`,
      },
    };
  },
});
