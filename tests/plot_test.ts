// Figure rendering through headless Chromium: SVG and PNG output, atomic export, the notebook bundle.
// Needs Debian's chromium (`deno task setup --with-chromium`); without it these tests FAIL, they do not skip.

import assert from "node:assert/strict";
import {
  chromiumAvailable,
  closeRenderer,
  exportFigure,
  RenderError,
  renderFigure,
} from "../lib/plot/export.ts";
import { figureBundle, layout, PLOTLY_MIME, tableBundle } from "../lib/plot/display.ts";
import { legendInside } from "../lib/plot/legend.ts";
import { waitUntil, withDeadline } from "./deadline.ts";

const FIG = {
  data: [
    {
      x: [1, 2, 4, 8],
      y: new Float32Array([1.9, 1.4, 1.2, 1.1]),
      type: "scatter",
      name: "MambaByte-test-trace",
    },
    { x: [1, 2, 4, 8], y: [2.1, 1.7, 1.5, 1.45], type: "scatter", name: "Transformer-test-trace" },
  ],
  layout: layout({
    title: "Test figure title",
    xTitle: "Training bytes",
    xUnit: "GB",
    yTitle: "Loss",
    yUnit: "bits/byte",
  }),
};

/**
 * Minimal XML well-formedness check (no DOMParser in Deno): tags nest and close properly, one root <svg>.
 * Enough to catch a truncated or mangled document.
 */
function assertWellFormedSvg(svg: string): void {
  assert.match(svg, /^<svg[\s>]/, "SVG must start with <svg");
  assert.match(svg, /<\/svg>\s*$/, "SVG must end with </svg>");
  assert.match(svg, /xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  const stack: string[] = [];
  const body = svg.replace(/<!--[\s\S]*?-->/g, "").replace(/<!\[CDATA\[[\s\S]*?\]\]>/g, "");
  for (const m of body.matchAll(/<(\/?)([A-Za-z][\w:.-]*)((?:"[^"]*"|'[^']*'|[^'">])*?)(\/?)>/g)) {
    const [, closing, name, , selfClosing] = m;
    if (selfClosing) continue;
    if (closing) {
      const open = stack.pop();
      assert.equal(open, name, `</${name}> closes <${open}>`);
      if (stack.length === 0) assert.equal(name, "svg");
    } else {
      if (stack.length === 0) assert.equal(name, "svg", "single <svg> root");
      stack.push(name);
    }
  }
  assert.equal(stack.length, 0, `unclosed tags: ${stack.join(", ")}`);
}

/** PNG signature and IHDR size (bytes 16-23, big-endian). */
function pngSize(png: Uint8Array): { width: number; height: number } {
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  assert.deepEqual([...png.subarray(0, 8)], sig, "PNG signature");
  assert.equal(new TextDecoder().decode(png.subarray(12, 16)), "IHDR");
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

async function chromiumTempDirs(): Promise<string[]> {
  const tmp = Deno.env.get("TMPDIR") || "/tmp";
  // this process's browsers only (other processes may render at the same time)
  return (await listDir(tmp)).filter((n) => n.startsWith(`mambabyte-chromium-${Deno.pid}-`));
}

Deno.test("Chromium is installed (deno task setup --with-chromium)", async () => {
  const a = await chromiumAvailable();
  assert.ok(a.ok, a.reason ?? "");
});

Deno.test("figures render to SVG and PNG through one headless Chromium and export atomically", async (t) => {
  const before = await chromiumTempDirs();
  const out = await Deno.makeTempDir({ prefix: "plot-test-" });
  try {
    await t.step("SVG: well-formed, with title, axis titles (units) and trace names", async () => {
      const svg = await renderFigure(FIG, { format: "svg", width: 640, height: 400 });
      assertWellFormedSvg(svg);
      for (
        const text of [
          "Test figure title",
          "Training bytes (GB)",
          "Loss (bits/byte)",
          "MambaByte-test-trace",
          "Transformer-test-trace",
        ]
      ) {
        assert.ok(svg.includes(text), `SVG lacks "${text}"`);
      }
      // The SVG keeps its CSS size (plotly would scale width/height by `scale`).
      assert.match(svg, /^<svg[^>]* width="640" height="400"/);
    });

    await t.step("PNG: signature and pixel size = CSS size x scale", async () => {
      const png = await renderFigure(FIG, { format: "png", width: 640, height: 400, scale: 2 });
      assert.deepEqual(pngSize(png), { width: 1280, height: 800 });
      assert.ok(png.length > 10_000, `a plot with text should not be ${png.length} bytes`);
      const one = await renderFigure(FIG, { format: "png", width: 300, height: 200, scale: 1 });
      assert.deepEqual(pngSize(one), { width: 300, height: 200 });
    });

    await t.step("concurrent renders share the browser", async () => {
      const svgs = await Promise.all([1, 2, 3].map(() => renderFigure(FIG)));
      for (const s of svgs) assertWellFormedSvg(s);
      // Counted as new temporary folders: other processes' browsers may come and go meanwhile.
      const ours = (await chromiumTempDirs()).filter((d) => !before.includes(d));
      assert.equal(ours.length, 1, "exactly one browser for all figures");
    });

    await t.step("exportFigure writes NAME.svg and NAME.png, leaving no temporary file", async () => {
      const paths = await exportFigure(FIG, "test_export", { dir: `${out}/figs`, width: 500, height: 300 });
      assert.deepEqual(paths, { svg: `${out}/figs/test_export.svg`, png: `${out}/figs/test_export.png` });
      assert.deepEqual(await listDir(`${out}/figs`), ["test_export.png", "test_export.svg"]);
      assertWellFormedSvg(await Deno.readTextFile(paths.svg!));
      assert.deepEqual(pngSize(await Deno.readFile(paths.png!)), { width: 1000, height: 600 });
      // Overwrite in place: still exactly the two files.
      await exportFigure(FIG, "test_export", { dir: `${out}/figs`, formats: ["svg"] });
      assert.deepEqual(await listDir(`${out}/figs`), ["test_export.png", "test_export.svg"]);
    });

    await t.step("bad input fails clearly and writes nothing", async () => {
      await assert.rejects(() => exportFigure(FIG, "../escape", { dir: `${out}/bad` }), RenderError);
      await assert.rejects(() => exportFigure(FIG, "x.svg", { dir: `${out}/bad` }), /plain file stem/);
      await assert.rejects(() => renderFigure({ layout: {} } as never), /data/);
      await assert.rejects(() => renderFigure(FIG, { format: "gif" as never }), /unknown image format/);
      await assert.rejects(() => Deno.stat(`${out}/bad`), Deno.errors.NotFound);
    });

    await t.step("notebook bundle: plotly JSON + SVG + <img> for static HTML + text", async () => {
      const b = await figureBundle(FIG);
      const plotly = b[PLOTLY_MIME] as { data: { y: number[] }[] };
      assert.ok(Array.isArray(plotly.data[0].y), "typed arrays become plain arrays in the plotly JSON");
      assert.equal(plotly.data[0].y.length, 4);
      assertWellFormedSvg(b["image/svg+xml"] as string);
      assert.match(b["text/html"] as string, /^<img src="data:image\/svg\+xml;base64,/);
      assert.equal(b["text/plain"], "<Figure: Test figure title>");
    });
  } finally {
    await closeRenderer();
    await Deno.remove(out, { recursive: true });
  }
  // closeRenderer waits a little for the wrapper's clean-up; on a loaded machine it may take longer: wait
  // for the event (the folder gone), under one overall deadline
  const left = () => chromiumTempDirs().then((ds) => ds.filter((d) => !before.includes(d)));
  await withDeadline(
    "closeRenderer removes the browser's temporary folder",
    5 * 60_000,
    (signal) => waitUntil(async () => (await left()).length === 0, signal),
  ).catch(async (e) => assert.fail(`${e.message}; left: ${await left()}`));
});

Deno.test("without Chromium, the notebook bundle says why and still carries the plotly JSON", async () => {
  const saved = Deno.env.get("CHROMIUM_PATH");
  Deno.env.set("CHROMIUM_PATH", "/nonexistent/chromium");
  try {
    const b = await figureBundle(FIG);
    assert.ok(b[PLOTLY_MIME]);
    assert.equal(b["image/svg+xml"], undefined);
    assert.match(b["text/plain"] as string, /no static image: no Chromium at \/nonexistent\/chromium/);
  } finally {
    if (saved === undefined) Deno.env.delete("CHROMIUM_PATH");
    else Deno.env.set("CHROMIUM_PATH", saved);
  }
});

Deno.test("tables render as HTML and aligned text", () => {
  const b = tableBundle(
    [{ model: "MambaByte", bpb: 1.23456, note: "<b>" }, { model: "Transformer", bpb: 2 }],
    {
      caption: "Test",
    },
  );
  assert.match(b["text/html"], /<caption>Test<\/caption>/);
  assert.match(b["text/html"], /<td style="text-align:right">1\.235<\/td>/);
  assert.match(b["text/html"], /&lt;b&gt;/, "cell text is escaped");
  assert.equal(
    b["text/plain"],
    [
      "Test",
      "model          bpb  note",
      "-----------  -----  ----",
      "MambaByte    1.235  <b>",
      "Transformer      2",
    ].join("\n"),
  );
  const many = tableBundle(Array.from({ length: 60 }, (_, i) => ({ i })), { maxRows: 5 });
  assert.match(many["text/plain"], /\(5 of 60 rows shown\)$/);
});

Deno.test("legendInside: the legend goes where no series runs (corners first), else the y range grows to make room", () => {
  const frame = { width: 1000, height: 500, margin: { l: 80, r: 30, t: 60, b: 60 } };
  const line = (name: string, x: number[], y: number[]) => ({
    type: "scatter",
    mode: "lines+markers",
    name,
    x,
    y,
  });
  const x = [1, 2, 3, 4, 5];
  // series low in the plot: the top right corner is free
  let p = legendInside([
    line("a", x, [0, 0.1, 0.2, 0.1, 0]),
    line("b", x, [0.1, 0, 0.1, 0.2, 0.1]),
    line("t", x, [10, 1, 1, 1, 1]),
  ], frame);
  assert.deepEqual([p.legend.xanchor, p.legend.y, p.yRange], ["right", 0.99, undefined]);
  // a series rising to the top right: the top left
  p = legendInside([line("a", x, [0, 0, 0, 5, 10])], frame);
  assert.deepEqual([p.legend.xanchor, p.legend.y], ["left", 0.99]);
  // series across the whole top: a bottom corner
  p = legendInside([line("a", x, [10, 10, 10, 10, 10]), line("b", x, [0, 9, 9, 9, 9])], frame);
  assert.equal(p.legend.xanchor, "right");
  assert.ok((p.legend.y as number) < 0.5, `${p.legend.y}`);
  // grouped traces: plotly's 10 px between groups makes six entries too tall for the free top half (the
  // range grows); with the figure's tracegroupgap of 0 (groupGap) they fit the top right corner
  const grouped: Record<string, unknown>[] = Array.from({ length: 5 }, (_, i) => ({
    ...line(`model ${i}: 2.345`, x, [1, 1, 1, 1, 1]),
    legendgroup: `g${i}`,
  }));
  grouped.push({ ...line("t", [1, 5], [2, 0]), legendgroup: "t" });
  assert.ok(legendInside(grouped, frame).yRange);
  p = legendInside(grouped, { ...frame, groupGap: 0 });
  assert.deepEqual([p.legend.xanchor, p.legend.y, p.yRange], ["right", 0.99, undefined]);
  assert.equal(p.legend.tracegroupgap, 0, "the legend drawn has the gap its box was reckoned with");
  // a horizontal reference line is avoided like a series: free top right without it, below it with it
  const flat = [line("a", x, [0, 0, 0, 0, 0]), line("t", [1], [10])];
  assert.equal(legendInside(flat, frame).legend.y, 0.99);
  p = legendInside(flat, { ...frame, hlines: [9.5] });
  assert.ok((p.legend.y as number) < 0.9 && p.yRange === undefined, `${p.legend.y} ${p.yRange}`);
  // nowhere free: the top of the range grows so that the data end below the legend's box
  const everywhere = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((v, i) =>
    line(`s${i}`, x, x.map((k) => (v + k) % 11))
  );
  p = legendInside(everywhere, frame);
  const [lo, hi] = p.yRange!;
  // eleven short names make one row: the data's top (10) ends below that row, and the range grew past it
  assert.equal(p.legend.orientation, "h");
  assert.ok(hi > 11 && (10 - lo) / (hi - lo) < 0.95 - 31 / 380, `${lo}..${hi}`);
  assert.deepEqual([p.legend.xanchor, p.legend.yanchor, p.legend.y], ["right", "top", 0.99]);
  // bars: tall groups on the left, short ones on the right (labels above bars count too)
  const bars = ["a", "b"].map((name, i) => ({
    type: "bar",
    name,
    x: ["p", "q", "r", "s"],
    y: [9 + i, 8, 1, 1],
  }));
  p = legendInside(bars, frame);
  assert.deepEqual([p.legend.xanchor, p.legend.y], ["right", 0.99]);
  // bars on a log axis stand on the panel's bottom: with the top blocked, no bottom corner is free
  const logBars = ["a", "b"].map((name) => ({
    type: "bar",
    name,
    x: ["p", "q", "r", "s"],
    y: [1000, 1000, 100, 100],
  }));
  p = legendInside(logBars, { ...frame, yType: "log", hlines: [900] });
  assert.ok((p.legend.y as number) > 0.3 && p.yRange === undefined, `${p.legend.y}`);
  // a legend taller than its panel is placed nowhere inside it, and no range grows for it
  const many = Array.from({ length: 30 }, (_, i) => line(`series ${i}`, x, [0, 1, 2, 3, 4]));
  p = legendInside(many, { ...frame, yDomain: [0.8, 1] });
  assert.deepEqual([p.legend.x, p.yRange], [undefined, undefined]);
  // a panel's legend goes in its own share of the height
  p = legendInside([line("a", x, [0, 0, 0, 0, 0])], { ...frame, yDomain: [0.4, 1] });
  assert.ok(Math.abs((p.legend.y as number) - (0.4 + 0.99 * 0.6)) < 1e-12);
  // sixteen long names: too tall as one column above the series, so two columns of rows
  const wide = Array.from(
    { length: 16 },
    (_, i) => line(`a rather long series name, number ${i} of sixteen`, x, [0, 0, 0, 0, 0]),
  );
  p = legendInside(wide, frame);
  assert.equal(p.legend.orientation, "h");
  assert.ok((p.legend.entrywidth as number) > 200);
});

// PNG recompression (lib/plot/png.ts), checked with a PNG built here and a bit-by-bit CRC-32 (not zlib's)
const crcBitwise = (bytes: Uint8Array) => {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
};
const pngFrom = (chunks: [string, Uint8Array][]) => {
  const parts = [Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])];
  for (const [type, data] of chunks) {
    const body = new Uint8Array([...new TextEncoder().encode(type), ...data]);
    const len = new Uint8Array(4), crc = new Uint8Array(4);
    new DataView(len.buffer).setUint32(0, data.length);
    new DataView(crc.buffer).setUint32(0, crcBitwise(body));
    parts.push(len, body, crc);
  }
  return new Uint8Array(parts.flatMap((p) => [...p]));
};
const chunksOf = (png: Uint8Array) => {
  const v = new DataView(png.buffer, png.byteOffset, png.byteLength), out = [];
  for (let pos = 8; pos < png.length;) {
    const n = v.getUint32(pos), body = png.subarray(pos + 4, pos + 8 + n);
    out.push({
      type: new TextDecoder().decode(body.subarray(0, 4)),
      data: body.subarray(4),
      crc: v.getUint32(pos + 8 + n),
      body,
    });
    pos += 12 + n;
  }
  return out;
};

Deno.test("png: recompressPng keeps every other chunk and the image data's bytes, in fewer bytes; bad files are one error", async () => {
  const { recompressPng } = await import("../lib/plot/png.ts");
  const { deflateSync, inflateSync } = await import("node:zlib");
  const w = 64, h = 32;
  const raw = new Uint8Array(h * (1 + 4 * w)); // each row: filter byte 0, then RGBA
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < 4 * w; x++) raw[y * (1 + 4 * w) + 1 + x] = (x * 7 + y * 3) & 0xff;
  }
  const ihdr = new Uint8Array(13);
  new DataView(ihdr.buffer).setUint32(0, w);
  new DataView(ihdr.buffer).setUint32(4, h);
  ihdr.set([8, 6, 0, 0, 0], 8);
  const z = new Uint8Array(deflateSync(raw, { level: 1 }));
  const text = new TextEncoder().encode("Software\0test");
  // the image data split over two IDAT chunks, as encoders may write it
  const png = pngFrom([["IHDR", ihdr], ["tEXt", text], ["IDAT", z.subarray(0, 100)], [
    "IDAT",
    z.subarray(100),
  ], ["IEND", new Uint8Array()]]);
  const out = recompressPng(png);
  assert.deepEqual([...out.subarray(0, 8)], [...png.subarray(0, 8)], "signature");
  const chunks = chunksOf(out);
  assert.deepEqual(chunks.map((c) => c.type), ["IHDR", "tEXt", "IDAT", "IEND"]);
  for (const c of chunks) assert.equal(c.crc, crcBitwise(c.body), `${c.type} CRC`);
  assert.equal(chunks[3].crc, 0xae426082, "IEND's CRC, a constant of the format");
  assert.deepEqual([...chunks[0].data], [...ihdr]);
  assert.deepEqual([...chunks[1].data], [...text]);
  assert.deepEqual([...new Uint8Array(inflateSync(chunks[2].data))], [...raw], "the same scanlines");
  assert.ok(out.length < png.length, `${out.length} < ${png.length} bytes`);
  assert.throws(() => recompressPng(png.subarray(0, 120)), /PNG: chunk IDAT runs past the end/);
  assert.throws(() => recompressPng(new Uint8Array(20)), /not a PNG/);
});
