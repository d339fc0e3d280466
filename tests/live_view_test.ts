/**
 * The live views' parts that need no notebook (tests/live_test.ts runs them in one): text streamed at
 * UTF-8 character boundaries, the inline chart's geometry, the training view's plan and its progress lines
 * outside Jupyter; the trainer's validation entries and awaited onStep.
 */
import assert from "node:assert/strict";
import { LiveTable, LiveText, LiveTraining, svgLineChart } from "../lib/plot/live.ts";
import { initBackend } from "../lib/backend.ts";
import { createModel } from "../lib/models/registry.ts";
import { train } from "../lib/train/trainer.ts";
import { scoreText } from "../lib/eval/score.ts";
import { readSplit } from "../lib/data/bytes.ts";
import { stepLine, windowLine } from "../lib/util/progress.ts";

/** Runs `f` with console.error's lines collected (the views print their progress there outside Jupyter). */
async function stderrLines(f: () => Promise<void>): Promise<string[]> {
  const lines: string[] = [], original = console.error;
  console.error = (...a: unknown[]) => lines.push(a.map(String).join(" "));
  try {
    await f();
  } finally {
    console.error = original;
  }
  return lines;
}

Deno.test("live text: shows whole characters only, each once its last byte arrived", async () => {
  const s = "naïve 🐍 — 日本語 ok";
  // the reference: the text's prefix of complete code points, from the string's own code points
  const ends: number[] = [];
  let at = 0;
  for (const ch of s) ends.push(at += new TextEncoder().encode(ch).length);
  const bytes = new TextEncoder().encode(s);
  const live = new LiveText({}, null);
  const quiet = Deno.stdout.writeSync;
  Deno.stdout.writeSync = (p: Uint8Array) => p.length; // the stream goes to stdout outside Jupyter
  try {
    for (let i = 0; i < bytes.length; i++) {
      await live.onByte(bytes[i]);
      const whole = ends.filter((e) => e <= i + 1).length;
      assert.equal(live.text, [...s].slice(0, whole).join(""), `after byte ${i + 1}`);
    }
    const cut = new LiveText({}, null);
    for (const b of new TextEncoder().encode("é🐍").subarray(0, 4)) await cut.onByte(b); // 🐍 lacks its last byte
    assert.equal(cut.text, "é");
    const done = await cut.finish();
    assert.equal(done.text, "é\uFFFD", "an unfinished character becomes U+FFFD at the end");
    assert.equal(done.bytes, 4);
  } finally {
    Deno.stdout.writeSync = quiet;
  }
});

Deno.test("live chart: points in order, higher values drawn higher, long series thinned to the last point", () => {
  const pointsOf = (svg: string) =>
    [...svg.matchAll(/<polyline [^>]*points="([^"]+)"/g)].map((m) =>
      m[1].split(" ").map((p) => p.split(",").map(Number) as [number, number])
    );
  const x = [0, 1, 2, 3], y = [5, 4, 6, 1];
  const svg = svgLineChart([{ name: "a", x, y, color: "#000" }], { xTitle: "x", yTitle: "y", points: 4 });
  assert.match(svg, /data-points="4"/);
  const [line] = pointsOf(svg);
  assert.equal(line.length, 4);
  for (let i = 1; i < 4; i++) assert.ok(line[i][0] > line[i - 1][0], "x grows to the right");
  // screen y grows downwards: order of pixel heights is the reverse of the values'
  const byValue = [...y.keys()].sort((a, b) => y[a] - y[b]);
  const byPixel = [...y.keys()].sort((a, b) => line[b][1] - line[a][1]);
  assert.deepEqual(byPixel, byValue);
  const n = 5000, long = Array.from({ length: n }, (_, i) => i);
  const thin = pointsOf(svgLineChart([{ name: "b", x: long, y: long.map((v) => -v), color: "#000" }], {
    xTitle: "x",
    yTitle: "y",
    points: n,
  }))[0];
  assert.ok(thin.length <= 601 && thin.length >= 300, `${thin.length} points drawn`);
  const last = svgLineChart([{ name: "c", x: [0, n - 1], y: [0, -(n - 1)], color: "#000" }], {
    xTitle: "x",
    yTitle: "y",
    points: 2,
  });
  assert.deepEqual(thin.at(-1), pointsOf(last)[0].at(-1), "the last point is kept");
});

Deno.test("live training outside Jupyter: the trainer's progress lines; a missing plan is one clear error", async () => {
  await initBackend({ backend: "cpu", quiet: true });
  const data = (await readSplit("data/samples/books/train")).subarray(0, 64 * 1024);
  const validation = (await readSplit("data/samples/books/validation")).subarray(0, 2048);
  const model = createModel("mambabyte", { d_model: 16, n_layer: 1 }, 0);
  const cfg = { steps: 6, batch: 2, length: 32, lr: 1e-3, warmup: 1, seed: 0 };
  const live = new LiveTraining({ ...cfg, logEvery: 2 }, null);
  const scored: number[] = [];
  const lines = await stderrLines(async () => {
    const run = await live.watch(train(model, data, {
      ...cfg,
      onStep: live.onStep,
      validate: {
        every: 3,
        score: async (m) => {
          const bpb = (await scoreText(m, validation, { window: 256 })).bits_per_byte;
          scored.push(bpb);
          return bpb;
        },
      },
    }));
    // validation at steps 3 and 6 (every 3, and the last), in the log entries of those steps only
    assert.deepEqual(run.log.map((e) => e.val_bits_per_byte === undefined ? 0 : e.step), [0, 0, 3, 0, 0, 6]);
    assert.deepEqual(run.log.flatMap((e) => e.val_bits_per_byte ?? []), scored);
    // the last validation is the trained model's score (the model was not changed after it)
    assert.equal((await scoreText(model, validation, { window: 256 })).bits_per_byte, scored[1]);
  });
  // steps 2, 4, 6 printed as the trainer prints them, then the summary
  assert.equal(lines.length, 4, lines.join("\n"));
  for (const [i, l] of lines.slice(0, 3).entries()) {
    const e = live.entries[2 * i + 1];
    assert.equal(l.replace(/ETA \S+|done/, ""), stepLine(e, 6, 0).replace(/ETA \S+|done/, ""));
  }
  assert.match(lines[2], /val bpb [\d.]+ .*done$/);
  assert.match(lines[3], /^6 steps; 384 B seen; last training loss [\d.]+ bits\/byte, validation [\d.]+/);
  const noPlan = new LiveTraining({ title: "x" }, null);
  await assert.rejects(
    () => noPlan.onStep(live.entries[0]),
    /liveTraining: no plan \(give steps, batch and length/,
  );
  assert.throws(
    () => noPlan.plan({ steps: 0, batch: 1, length: 1 }),
    /steps must be a positive integer \(got 0\)/,
  );
});

Deno.test("live table outside Jupyter: a progress line with windows done / total, then the table", async () => {
  const table = new LiveTable({ title: "scores", total: 2, unit: "settings" }, null);
  const printed: string[] = [];
  const log = console.log;
  console.log = (s: string) => printed.push(s);
  try {
    const lines = await stderrLines(async () => {
      await table.onRow({ noise: "none", bpb: 1.5 });
      await table.onRow({ noise: "drop", bpb: 2.25 });
      await table.finish();
    });
    assert.match(lines[0], /^scores: 1\/2 settings \(50%\) · elapsed \d+s · ETA \d+s$/);
    assert.match(lines.at(-1)!, /^scores: 2\/2 settings \(100%\) · elapsed \d+s$/);
  } finally {
    console.log = log;
  }
  assert.equal(
    printed[0].replace(/in \d+s/, "in Ns"),
    "scores: 2 rows in Ns\nnoise   bpb\n-----  ----\nnone    1.5\ndrop   2.25",
  );
  // the command line's scoring line, shared
  assert.equal(
    windowLine("score", { windows: 1, totalWindows: 4, tokens: 250, totalTokens: 1000 }, 1000, 2),
    "score: 1/4 windows (25.0%), 125 B/s, ETA 6s",
  );
});
