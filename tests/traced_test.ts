/**
 * Numbers traced: every number of the README's result tables (compute-matched, extrapolation, noise, training
 * throughput) and of the figures that plot them equals the record it comes from. The test finds each record itself, from the
 * row and column a number stands in (label, domain, scale, length, mode, noise), so a builder that shows a
 * number under the wrong model, domain, length or scale, or a README that was edited by hand, goes red.
 */
import assert from "node:assert/strict";
import { readRecords } from "../lib/results/store.ts";
import type { ExtrapolationRecord, NoiseRecord, RunRecord, UnigramRecord } from "../lib/results/records.ts";
import { isTopBudget, unigramOf } from "../lib/results/compute_matched.ts";
import { buildFigure, figureBuilder } from "../lib/plot/figures/mod.ts";
import { computeMatchedFigure } from "../lib/plot/figures/compute_matched.ts";
import { resultsSection } from "../lib/plot/readme.ts";
import { REPO_ROOT, RESULTS_DIR } from "../lib/paths.ts";

const runs = await readRecords<RunRecord>("runs", RESULTS_DIR);
const extrapolation = await readRecords<ExtrapolationRecord>("extrapolation", RESULTS_DIR);
const noise = await readRecords<NoiseRecord>("noise", RESULTS_DIR);
const readme = await Deno.readTextFile(`${REPO_ROOT}README.md`);
const results = readme.slice(readme.indexOf("<!-- results:begin"), readme.indexOf("<!-- results:end"));

/** The README's tables under headings starting with `heading`, by scale: header cells and rows of cells. */
function tables(heading: string): { scale: string; columns: string[]; rows: string[][]; note: string }[] {
  const out = [];
  for (const section of results.split(/^### /m).slice(1)) {
    if (!section.startsWith(heading)) continue;
    const scale = /`(\w+)` scale/.exec(section.split("\n")[0])?.[1];
    assert.ok(scale, `no scale in the heading "${section.split("\n")[0]}"`);
    const all = section.split("\n"), lines = all.filter((l) => l.startsWith("| "));
    const cells = (l: string) => l.slice(2, -2).split(" | ").map((c) => c.trim());
    // the note: the first line of text after the table
    const note = all.slice(all.lastIndexOf(lines.at(-1)!) + 1).find((l) => l.trim()) ?? "";
    out.push({ scale, columns: cells(lines[0]), rows: lines.slice(2).map(cells), note });
  }
  return out;
}

/** The latest record per key (a re-run replaces an earlier record, as the figures read them). */
function latest<T>(recs: T[], key: (r: T) => string): Map<string, T> {
  return new Map(recs.map((r) => [key(r), r]));
}

const label = (r: { labels?: Record<string, unknown>; model: string }) => String(r.labels?.label ?? r.model);
const first = (cell: string) => /^[−-]?\d+(\.\d+)?/.exec(cell)?.[0];
/** "499K", "1.79M", "5.95T" -> a number. */
const si = (s: string) =>
  Number(s.replace(/[KMGTP]$/, "")) * ({ K: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15 }[s.at(-1)!] ?? 1);

Deno.test("README compute-matched tables: every bits-per-byte, parameter, byte and FLOP count is its run's record", async () => {
  const unigram = await readRecords<UnigramRecord>("unigram", RESULTS_DIR);
  const found = tables("Compute-matched test bits-per-byte");
  assert.ok(found.length >= 2, "a compute-matched table per recorded scale");
  for (const t of found) {
    // the tables show each entry's top-budget runs, every seed's (a ladder's lower budgets and its sweeps
    // are not in them): a cell is the mean over the seeds, with their sample s.d. where there are several
    const byRun = latest(
      runs.filter((r) => r.scale === t.scale && r.labels?.plan === "compute-matched" && isTopBudget(r)),
      (r) => r.run,
    );
    const byKey = new Map<string, RunRecord[]>();
    for (const r of byRun.values()) {
      byKey.set(`${label(r)}|${r.domain}`, [...(byKey.get(`${label(r)}|${r.domain}`) ?? []), r]);
    }
    let checked = 0;
    for (const row of t.rows) {
      const model = row[0];
      for (const [i, col] of t.columns.entries()) {
        const domain = /^(\w+) bpb/.exec(col)?.[1];
        if (!domain) continue;
        const recs = byKey.get(`${model}|${domain}`);
        if (row[i].startsWith("—")) {
          // a model trained on some of the domains only (e.g. a torch job's run): its other cells are empty
          assert.ok(!recs, `${t.scale} ${model} ${domain}: a record, yet the cell is empty`);
          checked++;
          continue;
        }
        assert.ok(recs, `${t.scale}: no record for ${model} on ${domain}`);
        const values = recs.map((r) => r.eval.bits_per_byte);
        const mean = values.reduce((a, b) => a + b, 0) / values.length;
        assert.equal(first(row[i]), mean.toFixed(3), `${t.scale} ${model} ${domain}`);
        const spread = /± (\d+\.\d+), (\d+) seeds/.exec(row[i]);
        if (values.length > 1) {
          const sd = Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (values.length - 1));
          assert.ok(spread, `${t.scale} ${model} ${domain}: ${values.length} seeds, yet no spread shown`);
          assert.equal(spread[1], sd.toFixed(3), `${t.scale} ${model} ${domain}: seed s.d.`);
          assert.equal(Number(spread[2]), values.length, `${t.scale} ${model} ${domain}: seeds`);
        } else assert.equal(spread, null, `${t.scale} ${model} ${domain}: one run, yet a spread`);
        // the sanity flag: † exactly where the run is within a bit of its test bytes' unigram entropy
        const u = unigramOf(recs[0], unigram);
        assert.ok(u !== undefined, `${t.scale} ${model} ${domain}: a unigram entropy for its test bytes`);
        assert.equal(row[i].includes("†"), mean > u - 1, `${t.scale} ${model} ${domain}: †`);
        checked++;
      }
      // the model's size (largest run) and budget: the mean over the table's domains of each domain's mean
      // over its seeds (a domain with three seeds counts once)
      const mine = [...byKey.entries()].filter(([k]) => k.startsWith(`${model}|`)).map(([, rs]) => rs);
      const avg = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
      const mean = (f: (r: RunRecord) => number) => avg(mine.map((rs) => avg(rs.map(f))));
      const rec = {
        parameters: Math.max(...mine.flat().map((r) => r.parameters)),
        bytes_seen: mean((r) => r.bytes_seen),
        train_flops: mean((r) => r.train_flops),
      };
      for (
        const [col, value] of [["params", rec.parameters], ["bytes seen", rec.bytes_seen], [
          "train FLOPs",
          rec.train_flops,
        ]] as const
      ) {
        const shown = si(row[t.columns.indexOf(col)]);
        assert.ok(
          Math.abs(shown - value) <= 0.005 * value,
          `${t.scale} ${model} ${col}: ${shown} vs ${value}`,
        );
      }
    }
    // every bits-per-byte cell of the table was checked
    const domains = t.columns.filter((c) => /^\w+ bpb/.test(c)).length;
    assert.ok(domains >= 1 && checked === t.rows.length * domains, `${t.scale}: ${checked} numbers checked`);
    // the note counts the flagged cells among the table's filled ones
    const filled = t.rows.flatMap((r) =>
      r.filter((c, i) => /^\w+ bpb/.test(t.columns[i]) && !c.startsWith("—"))
    );
    assert.match(
      t.note,
      new RegExp(`† \\(${filled.filter((c) => c.includes("†")).length} of ${filled.length}\\)`),
    );
  }
});

Deno.test("README extrapolation tables: every bits per byte is the record of that model, mode and length", () => {
  const found = tables("Length extrapolation");
  assert.ok(found.length >= 1);
  const modeOf: Record<string, string> = { "whole sequence": "whole", "sliding window of C": "sliding" };
  for (const t of found) {
    const byKey = latest(
      extrapolation.filter((r) => r.scale === t.scale),
      (r) => `${r.label}|${r.mode}|${r.multiple}`,
    );
    for (const row of t.rows) {
      const [model, modeText] = row;
      for (const [i, col] of t.columns.entries()) {
        const multiple = /^(\d+)x bpb$/.exec(col)?.[1];
        if (!multiple) continue;
        const rec = byKey.get(`${model}|${modeOf[modeText]}|${multiple}`);
        if (row[i] === "—") {
          assert.ok(
            !rec || rec.status !== "ok",
            `${t.scale} ${model} ${modeText} ${multiple}x: recorded but not shown`,
          );
        } else {
          assert.ok(
            rec?.status === "ok",
            `${t.scale} ${model} ${modeText} ${multiple}x: shown but not recorded`,
          );
          assert.equal(row[i], rec.bits_per_byte.toFixed(3), `${t.scale} ${model} ${modeText} ${multiple}x`);
        }
      }
    }
  }
});

Deno.test("README noise tables: every bits per byte and its increase is the record of that model and noise", () => {
  const found = tables("Robustness to synthetic noise");
  assert.ok(found.length >= 1);
  for (const t of found) {
    // the domain the table's note names (a scale may have records on several)
    const domain = /^Noise robustness on (\w+) \(/.exec(t.note)?.[1];
    assert.ok(domain, `no domain in the note "${t.note}"`);
    const byKey = latest(
      noise.filter((r) => r.scale === t.scale && r.domain === domain),
      (r) => `${r.label}|${r.noise}|${r.p}`,
    );
    for (const row of t.rows) {
      const [kind, p] = row[0] === "clean" ? ["none", "0"] : row[0].split(" p=");
      for (const [i, col] of t.columns.entries()) {
        const model = /^(.+) bpb \(Δ\)$/.exec(col)?.[1];
        if (!model) continue;
        const rec = byKey.get(`${model}|${kind.replace(" ", "_")}|${Number(p)}`);
        assert.ok(rec, `${t.scale}: no noise record for ${model}, ${row[0]}`);
        assert.equal(first(row[i]), rec.bits_per_byte.toFixed(3), `${t.scale} ${model} ${row[0]}`);
        if (kind !== "none") {
          const delta = /\(([+−-]\d+\.\d+)\)/.exec(row[i])?.[1]?.replace("−", "-");
          assert.equal(
            Number(delta).toFixed(3),
            rec.delta_bits_per_byte.toFixed(3),
            `${t.scale} ${model} ${row[0]} Δ`,
          );
        }
      }
    }
  }
});

Deno.test("figures: a domain's compute-matched figure takes the largest scale where that domain compares two models", async () => {
  const at = (scale: string, model: string) =>
    runs.find((r) =>
      r.scale === scale && r.domain === "books" && r.model === model && r.labels?.seed === undefined &&
      isTopBudget(r)
    )!;
  // books' runs standing in for another domain's: two models at the gpu scale, one at the large
  const asCode = (r: RunRecord) => ({ ...r, domain: "code" });
  const gpu = [asCode(at("gpu", "mambabyte")), asCode(at("gpu", "transformer"))];
  const scaleOf = async (rs: RunRecord[]) => {
    const built = await figureBuilder("compute_matched_code").build({ runs: rs, unigram: [] }, {
      anchorsDir: "",
    });
    return /\((\w+) scale\)/.exec(JSON.stringify((built as { figure: unknown }).figure))?.[1];
  };
  assert.equal(await scaleOf([...gpu, asCode(at("large", "mambabyte"))]), "gpu");
  assert.equal(
    await scaleOf([...gpu, asCode(at("large", "mambabyte")), asCode(at("large", "transformer"))]),
    "large",
  );
  // no scale compares: the largest with a run
  assert.equal(await scaleOf([gpu[0], asCode(at("large", "mambabyte"))]), "large");
});

Deno.test("README: every compute-matched figure it links exists and shows the scale its link and heading name", async () => {
  const md = await resultsSection(RESULTS_DIR);
  const links = [
    ...md.matchAll(
      /!\[bits per byte against training FLOPs, (\w+), (\w+) scale[^\]]*\]\(figures\/(compute_matched_\w+)\.png\)/g,
    ),
  ];
  // each domain's figure at the largest scale whose top-budget compute-matched runs on it hold two models or
  // more (reckoned here from the records: e.g. code stayed at the gpu scale while MambaByte was its only
  // large-scale run), and a link for every domain with such runs
  const comparing = (domain: string) =>
    ["large", "gpu", "small", "smoke"].find((sc) =>
      new Set(
        runs.filter((r) =>
          r.domain === domain && r.scale === sc && r.labels?.plan === "compute-matched" &&
          r.labels?.sweep === undefined && ((r.labels?.budget as number | undefined) ?? 1) === 1
        ).map((r) => r.model),
      ).size >= 2
    );
  const expected = [...new Set(runs.map((r) => r.domain))].flatMap((d) => {
    const sc = comparing(d);
    return sc ? [`${d} ${sc}`] : [];
  });
  assert.ok(expected.length >= 2, "the published records compare models on two domains or more");
  for (const e of expected) {
    assert.ok(links.some(([, d, sc]) => `${d} ${sc}` === e), `a figure of ${e} (its comparing scale)`);
  }
  for (const [, domain, scale, name] of links) {
    if (!name.endsWith("_variants")) {
      assert.equal(scale, comparing(domain), `${name}: its domain's comparing scale`);
    }
    const built = await buildFigure(name, { resultsDir: RESULTS_DIR });
    assert.ok(built && "figure" in built, `${name} is linked but has nothing to draw`);
    assert.match(JSON.stringify(built.figure.layout), new RegExp(`${domain} \\(${scale} scale\\)`), name);
    // under its scale's heading
    const at = md.indexOf(`](figures/${name}.png)`);
    const heading =
      [...md.slice(0, at).matchAll(/### Compute-matched test bits-per-byte, ([^\n]+)/g)].at(-1)?.[1] ?? "";
    assert.match(heading, new RegExp(scale), `${name} under "${heading}"`);
  }
});

Deno.test("figures: a run's validation curve is drawn in its model's colour, dotted, with the bytes it scores named", () => {
  const base = runs.find((r) => r.scale === "large" && r.domain === "books" && r.model === "mamba_subword")!;
  const withCurve: RunRecord = {
    ...base,
    val_curve: [[100, 1e13, 3.1], [200, 2e13, 2.9], [300, 3e13, 3.0]],
    val_curve_bytes: 65536,
  };
  const fig = computeMatchedFigure([withCurve], "books", "large");
  const data = fig.data as {
    name: string;
    x: number[];
    y: number[];
    line?: { color: string; dash: string };
  }[];
  const val = data.find((t) => t.name.endsWith(" (validation)"))!;
  const train = data.find((t) => t.name.endsWith(" (train)"))!;
  assert.deepEqual([val.x, val.y], [[1e13, 2e13, 3e13], [3.1, 2.9, 3.0]]);
  assert.equal(val.line!.color, train.line!.color);
  assert.equal(val.line!.dash, "longdash");
  assert.match(JSON.stringify(fig.layout), /open circles: validation \(its first 64 KB\)/);
  // without a curve, neither the trace nor the words
  const plain = computeMatchedFigure([base], "books", "large");
  assert.ok(!(plain.data as { name: string }[]).some((t) => t.name.endsWith(" (validation)")));
  assert.doesNotMatch(JSON.stringify(plain.layout), /validation/);
});

Deno.test("figures: the compute-matched markers and curves and the noise bars are their records' values", async () => {
  for (const domain of ["books", "code"]) {
    const built = await buildFigure(`compute_matched_${domain}`, { resultsDir: RESULTS_DIR });
    assert.ok(built && "figure" in built, `compute_matched_${domain}`);
    // the single-budget variants (equal bytes, context 8192) in a second figure, beside their families
    const variants = await buildFigure(`compute_matched_${domain}_variants`, { resultsDir: RESULTS_DIR });
    const traces = [built, ...(variants && "figure" in variants ? [variants] : [])].flatMap((b) => {
      const data = (b as { figure: { data: unknown[] } }).figure.data as { mode: string; name: string }[];
      const names = data.filter((t) => t.mode === "markers").map((t) => t.name);
      assert.ok(names.length <= 8, `${domain}: ${names.length} legend entries in one figure`);
      assert.equal(new Set(names).size, names.length, `${domain}: a run shown twice in one figure`);
      return data;
    });
    const scale = /\((\w+) scale\)/.exec(JSON.stringify(built.figure.layout))?.[1];
    const byLabel = latest(
      runs.filter((r) =>
        r.scale === scale && r.domain === domain && r.labels?.plan === "compute-matched" &&
        r.labels?.seed === undefined && isTopBudget(r)
      ),
      label,
    );
    const marked = new Set<string>();
    for (
      const trace of traces as {
        mode: string;
        name: string;
        x: number[];
        y: number[];
        customdata?: number[];
      }[]
    ) {
      const name = trace.name.replace(/: \d+\.\d+( †)?$/, "").replace(/ \((train|validation)\)$/, "");
      const rec = byLabel.get(name);
      assert.ok(rec, `${domain}: a trace named "${trace.name}" has no record`);
      if (trace.mode === "markers") {
        // the marker carries its run's FLOPs; its x is spread a few percent from them (equal-FLOPs runs)
        assert.deepEqual(
          [trace.customdata, trace.y],
          [[rec.train_flops], [rec.eval.bits_per_byte]],
          trace.name,
        );
        assert.ok(Math.abs(trace.x[0] / rec.train_flops - 1) < 0.12, `${trace.name}: x near its FLOPs`);
        marked.add(name);
      } else if (trace.name.endsWith(" (validation)")) {
        assert.deepEqual([trace.x, trace.y], [
          rec.val_curve!.map((c) => c[1]),
          rec.val_curve!.map((c) => c[2]),
        ]);
      } else {
        assert.deepEqual(trace.x, rec.curve.map((c) => c[1]), `${trace.name}: curve FLOPs`);
        assert.deepEqual(trace.y, rec.curve.map((c) => c[2]), `${trace.name}: curve bits per byte`);
      }
    }
    assert.deepEqual(
      [...marked].sort(),
      [...byLabel.keys()].sort(),
      `${domain}: a test marker for every run`,
    );
    // each variant stands beside its family's principal entry (the entry named as the family)
    if (variants && "figure" in variants) {
      const shown = (variants.figure.data as { mode: string; name: string }[]).filter((t) =>
        t.mode === "markers"
      )
        .map((t) => byLabel.get(t.name.replace(/: \d+\.\d+( †)?$/, ""))!);
      for (const v of shown) {
        assert.ok(
          shown.some((r) => r.model === v.model && (r.labels?.entry ?? r.model) === r.model),
          `${domain}: ${v.run} without its family's principal entry`,
        );
      }
    }
  }
  const bars = await buildFigure("noise_bpb", { resultsDir: RESULTS_DIR });
  assert.ok(bars && "figure" in bars);
  // the figure names its domain and scale ("(books, large scale)"): every domain's records may be at that scale
  const [, domain, scale] = /\((\w+), (\w+) scale\)/.exec(JSON.stringify(bars.figure.layout)) ?? [];
  for (const trace of bars.figure.data as { name: string; x: string[]; y: (number | null)[] }[]) {
    const model = trace.name.replace(/ \(clean: .*$/, "");
    trace.x.forEach((setting, i) => {
      const [kind, p] = setting.split(" p=");
      const rec = noise.findLast((r) =>
        r.scale === scale && r.domain === domain && r.label === model && r.noise === kind.replace(" ", "_") &&
        r.p === Number(p)
      );
      assert.ok(rec, `noise_bpb: ${model} ${setting} has no record`);
      assert.equal(trace.y[i], rec.delta_bits_per_byte, `noise_bpb: ${model} ${setting}`);
    });
  }
});

Deno.test("README: a compute-matched table whose runs a known defect touches carries the caution", async () => {
  const { DEFECTS } = await import("../lib/results/defects.ts");
  for (const t of results.split(/^### /m).slice(1).filter((s) => s.startsWith("Compute-matched"))) {
    const scale = /`(\w+)` scale/.exec(t)![1];
    const mine = [
      ...latest(
        runs.filter((r) =>
          r.scale === scale && r.labels?.plan === "compute-matched" && r.labels?.seed === undefined
        ),
        (r) => r.run,
      ).values(),
    ];
    for (const d of DEFECTS) {
      const n = mine.filter((r) =>
        d.touches(r as unknown as { provenance?: Record<string, unknown> })
      ).length;
      assert.equal(
        t.includes(`**Caution:** ${n} of these ${mine.length} runs`),
        n > 0,
        `${scale}: ${n} touched`,
      );
    }
  }
});

Deno.test("README training throughput: every row's bytes/s, memory, peer and ratio are its bench record's", async () => {
  const { col, rows } = readmeTable("Training throughput");
  // deno-lint-ignore no-explicit-any
  type Rec = Record<string, any>;
  const bench = [
    ...(await readRecords<Rec>("train", `${RESULTS_DIR}bench`)),
    ...(await readRecords<Rec>("gpu", `${RESULTS_DIR}bench`)),
  ].filter((r) => r.bench === "train" && (r.model ?? "mambabyte") === "mambabyte");
  const sig3 = (x: number) => Number(x.toPrecision(3));
  const parse = (cell: string) => Number(cell.replace(/,/g, ""));
  let checked = 0;
  for (const row of rows) {
    const [, d, n, b, l] = /^d (\d+) x (\d+), batch (\d+), length (\d+)$/.exec(row[col("model and batch")])!
      .map(Number);
    const where = row[col("where")], engine = row[col("engine")];
    const native = engine.startsWith("native");
    // the latest record of that shape, device and engine (records are in time order)
    const rec = bench.filter((r) =>
      r.d_model === d && r.n_layer === n && r.batch === b && r.length === l &&
      `${r.provenance?.backend}, ${r.provenance?.device}` === where &&
      String(r.engine ?? "").startsWith("native") === native
    ).at(-1);
    assert.ok(rec, `a record for ${row.join(" | ")}`);
    assert.equal(parse(row[col("bytes/s")]), sig3(rec.bytes_per_s), `bytes/s of ${row.join(" | ")}`);
    const peer = rec.peer?.bytes_per_s ?? rec.peer?.pytorch_pscan_bytes_per_s;
    if (peer) {
      assert.equal(parse(row[col("peer bytes/s")]), sig3(peer), `peer of ${row.join(" | ")}`);
      assert.equal(row[col("ratio")], (rec.bytes_per_s / peer).toFixed(2), `ratio of ${row.join(" | ")}`);
      const same = String(rec.peer_source ?? "").startsWith("same run");
      assert.match(row[col("peer")], same ? /\(same run\)$/ : /\(earlier run\)$/);
    }
    if (typeof rec.gpu_bytes === "number") {
      assert.equal(row[col("GPU GB")], (rec.gpu_bytes / 1e9).toFixed(1), `GPU GB of ${row.join(" | ")}`);
    }
    checked++;
  }
  assert.ok(checked >= 3, `${checked} rows checked`);
});

/** A README results table under the heading starting with `heading`: its column index and rows of cells. */
Deno.test("README byte baselines on the GPU engine: every row's bytes/s, ms/step, peer and ratio are its record's", async () => {
  const { col, rows } = readmeTable("Training the byte baselines on the GPU engine");
  // deno-lint-ignore no-explicit-any
  const bench = (await readRecords<Record<string, any>>("gpu", `${RESULTS_DIR}bench`)).filter((r) =>
    r.bench === "train" && r.model !== "mambabyte" && r.model !== undefined
  );
  const family: Record<string, string> = {
    "byte Transformer": "transformer",
    PerceiverAR: "perceiver_ar",
    MegaByte: "megabyte",
  };
  const sig3 = (x: number) => Number(x.toPrecision(3));
  const parse = (cell: string) => Number(cell.replace(/,/g, ""));
  assert.ok(rows.length >= 3, "rows");
  for (const row of rows) {
    const [, d, n, b, l] = /^d (\d+) x (\d+), batch (\d+), length (\d+)$/.exec(row[col("shape")])!.map(
      Number,
    );
    const rec = bench.filter((r) =>
      r.model === family[row[col("model")]] && r.d_model === d && r.n_layer === n && r.batch === b &&
      r.length === l && String(r.provenance?.commit).startsWith(row[col("commit")])
    ).at(-1);
    assert.ok(rec, `a record for ${row.join(" | ")}`);
    assert.equal(parse(row[col("bytes/s")]), sig3(rec.bytes_per_s), `bytes/s of ${row.join(" | ")}`);
    assert.equal(row[col("ms/step")], (rec.step_s * 1000).toFixed(0), `ms/step of ${row.join(" | ")}`);
    if (rec.peer?.bytes_per_s) {
      assert.equal(
        parse(row[col("PyTorch bytes/s")]),
        sig3(rec.peer.bytes_per_s),
        `peer of ${row.join(" | ")}`,
      );
      assert.equal(row[col("ratio")], (rec.bytes_per_s / rec.peer.bytes_per_s).toFixed(2));
    } else assert.equal(row[col("ratio")], "—");
  }
});

Deno.test("README extrapolation on the GPU engine: every length's seconds are its record's", async () => {
  const { col, rows } = readmeTable("Extrapolation of the byte baselines on the GPU engine");
  // deno-lint-ignore no-explicit-any
  const recs = await readRecords<Record<string, any>>("extrapolation_engine", `${RESULTS_DIR}bench`);
  assert.ok(rows.length >= 1, "rows");
  for (const row of rows) {
    const rec = recs.filter((r) => String(r.provenance?.commit).startsWith(row[col("commit")])).find((r) =>
      row[col("model")] === (r.model === "transformer" ? "byte Transformer" : "MegaByte")
    );
    assert.ok(rec, `a record for ${row.join(" | ")}`);
    for (const x of rec.lengths) {
      assert.equal(row[col(`${x.multiple}x s`)], x.wall_s.toFixed(1), `${x.multiple}x of ${row.join(" | ")}`);
    }
    assert.equal(row[col("sweep s")], rec.total_s.toFixed(0));
  }
});

function readmeTable(heading: string) {
  const section = results.split(/^### /m).find((s) => s.startsWith(heading));
  assert.ok(section, `the README has a "${heading}" table`);
  const lines = section.split("\n").filter((l) => l.startsWith("| "));
  const cells = (l: string) => l.slice(2, -2).split(" | ").map((c) => c.trim());
  const columns = cells(lines[0]);
  const col = (name: string) => {
    const i = columns.indexOf(name);
    assert.ok(i >= 0, `column ${name}`);
    return i;
  };
  return { col, rows: lines.slice(2).map(cells) };
}

Deno.test("README decoding on the GPU engine: every row's bytes/s, peer and ratio are its record's, of its commit", async () => {
  const { col, rows } = readmeTable("Decoding on the GPU engine");
  // deno-lint-ignore no-explicit-any
  const recs = await readRecords<Record<string, any>>("decode_engine", `${RESULTS_DIR}bench`);
  const parse = (cell: string) => Number(cell.replace(/,/g, ""));
  const sig3 = (x: number) => Number(x.toPrecision(3));
  for (const row of rows) {
    const [, d, n] = /^d (\d+) x (\d+)$/.exec(row[col("shape (random weights)")])!.map(Number);
    const rec = recs.filter((r) =>
      r.d_model === d && r.n_layer === n && r.context === parse(row[col("context (bytes)")]) &&
      r.provenance?.commit === row[col("commit")] && r.peer
    ).at(-1);
    assert.ok(rec, `a record for ${row.join(" | ")}`);
    assert.equal(parse(row[col("bytes/s")]), sig3(rec.bytes_per_s), `bytes/s of ${row.join(" | ")}`);
    assert.equal(parse(row[col("mamba_ssm CUDA graph bytes/s")]), sig3(rec.peer.cuda_graph_bytes_per_s));
    assert.equal(row[col("ratio")], (rec.bytes_per_s / rec.peer.cuda_graph_bytes_per_s).toFixed(2));
    assert.ok(String(rec.peer_source).startsWith("same run"), "the peer was measured in the same session");
  }
  assert.ok(rows.length >= 2, `${rows.length} rows`);
});

Deno.test("README speculative decoding on the GPU engine: costs, bounds and speed-ups are their records'", async () => {
  const { col, rows } = readmeTable("Speculative decoding on the GPU engine");
  // deno-lint-ignore no-explicit-any
  const recs = await readRecords<Record<string, any>>("speculative_engine", `${RESULTS_DIR}bench`);
  let costs = 0, trained = 0;
  for (const row of rows) {
    const mine = recs.filter((r) => r.provenance?.commit === row[col("commit")]);
    if (row[col("what")].startsWith("costs")) {
      const [, dv] = /^d (\d+) x/.exec(row[col("verifier; drafter")])!.map(Number);
      const rec = mine.filter((r) =>
        r.kind === "costs" && r.verifier.d_model === dv &&
        String(r.provenance?.device).includes(row[col("GPU")])
      ).at(-1);
      assert.ok(rec, `a record for ${row.join(" | ")}`);
      assert.equal(row[col("speed-up")], `≤ ${rec.speedup_bound.toFixed(2)}`);
      assert.equal(
        row[col("ms: step / pass of 8 / drafter step / round")].split(" / ").at(-1),
        rec.round_ms.toFixed(2),
      );
      costs++;
    } else {
      const beta = Number(/β (\d+)/.exec(row[col("drafting")])![1]);
      const rec = mine.filter((r) => r.kind === "trained" && r.beta === beta).at(-1);
      assert.ok(rec, `a record for ${row.join(" | ")}`);
      assert.ok(row[col("speed-up")].startsWith(rec.speedup.toFixed(2)), `speed-up of ${row.join(" | ")}`);
      assert.ok(row[col("acceptance")].startsWith(rec.acceptance.toFixed(2)));
      if (beta === 1) assert.match(row[col("speed-up")], rec.identical_to_greedy ? /= greedy/ : /DIFFERS/);
      trained++;
    }
  }
  assert.ok(costs >= 1 && trained >= 1, `${costs} cost rows, ${trained} trained rows`);
});

Deno.test("README setup table: each entry's runs, seeds, parameters and steps are its records'", () => {
  const found = tables("How the runs were trained");
  assert.equal(found.length, 1, "one setup table (the largest scale)");
  const [t] = found;
  const col = (name: string) => t.columns.indexOf(name);
  // every seed and domain, the latest record of each top-budget run
  const all = [
    ...latest(
      runs.filter((r) =>
        r.scale === t.scale && r.labels?.plan === "compute-matched" && r.labels?.sweep === undefined &&
        (r.labels?.budget ?? 1) === 1
      ),
      (r) => r.run,
    ).values(),
  ];
  const setupRows = t.rows.filter((row) => row.length === t.columns.length && col("entry") === 0);
  // a row for every entry with a top-budget run
  assert.equal(setupRows.length, new Set(all.map(label)).size, `${setupRows.length} entries`);
  for (const row of setupRows) {
    const mine = all.filter((r) => label(r) === row[0]);
    assert.ok(mine.length, `records for ${row[0]}`);
    assert.equal(row[col("runs")], String(mine.length), `${row[0]} runs`);
    assert.equal(row[col("seeds")], String(new Set(mine.map((r) => r.seed)).size), `${row[0]} seeds`);
    const steps = mine.map((r) => r.steps), lo = Math.min(...steps), hi = Math.max(...steps);
    assert.equal(row[col("steps")], lo === hi ? String(lo) : `${lo}-${hi}`, `${row[0]} steps`);
    assert.equal(
      row[col("parameters")].split("-")[0],
      Math.min(...mine.map((r) => r.parameters)).toLocaleString("en"),
    );
  }
});
