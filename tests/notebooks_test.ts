// Every notebooks/*.ipynb executes at SCALE=smoke (a failing cell fails its test, naming the cell and the
// error), plus a self-test of the harness on generated notebooks. Needs Debian's jupyter-nbconvert and
// python3-nbclient (`deno task setup --with-notebooks`); without them these tests FAIL, they do not skip.
// Outputs go to a temporary folder, not figures/notebooks (that holds the reproduced report).

import assert from "node:assert/strict";
import { code, loadCells, md, notebookPathFor, notebookText, writeNotebook } from "../lib/notebook/build.ts";
import { listNotebooks, notebookPrerequisites, runNotebook } from "../lib/notebook/run.ts";
import { REPO_ROOT } from "../lib/paths.ts";
import { waitUntil, withDeadline } from "./deadline.ts";

const notebooks = await listNotebooks();

/** Run a notebook into a temporary output folder; throw with the notebook's name and error on failure. */
async function runSmoke(path: string) {
  const outDir = await Deno.makeTempDir({ prefix: "notebooks-test-" });
  try {
    const r = await runNotebook(path, { scale: "smoke", outDir, heartbeatS: 0 });
    return { r, outDir };
  } catch (e) {
    await Deno.remove(outDir, { recursive: true });
    throw e;
  }
}

type Output = { output_type: string; data?: Record<string, string | string[]> };
const joined = (v: string | string[] | undefined) => [v ?? ""].flat().join("");

/**
 * Run headless, notebook 01's live views leave only their last draw (nbclient applies each
 * update_display_data in place): the training cell one figure (plotly JSON + SVG) with the run's summary,
 * the generation cell one text output holding all 600 bytes.
 */
async function checkLiveOutputs(executed: string) {
  const cells = JSON.parse(await Deno.readTextFile(executed)).cells as {
    source: string[];
    outputs?: Output[];
  }[];
  const cellWith = (s: string) => cells.find((c) => joined(c.source).includes(s))!;
  const shown = (c: { outputs?: Output[] }) =>
    (c.outputs ?? []).filter((o) => o.output_type === "display_data");
  const training = shown(cellWith("mb.liveTraining("));
  assert.equal(training.length, 1, `training cell: ${training.length} displays`);
  assert.ok(training[0].data?.["application/vnd.plotly.v1+json"] && training[0].data?.["image/svg+xml"]);
  assert.match(
    joined(training[0].data?.["text/plain"]),
    /^MambaByte d32 x 2 \(smoke scale\): 60 steps; 61.4 kB seen; /,
  );
  const generation = shown(cellWith("mb.liveText("));
  assert.equal(generation.length, 1, `generation cell: ${generation.length} displays`);
  assert.match(joined(generation[0].data?.["text/html"]), /data-live="text" data-bytes="600"/);
}

Deno.test("notebook prerequisites: Debian's Jupyter and the Deno kernel (deno task setup --with-notebooks)", async () => {
  const problem = await notebookPrerequisites();
  assert.equal(problem, undefined, problem ?? "");
});

for (const nb of notebooks) {
  const name = nb.slice(nb.lastIndexOf("/") + 1);
  Deno.test(`notebook ${name} runs at SCALE=smoke`, async () => {
    const { r, outDir } = await runSmoke(nb);
    try {
      if (!r.ok) throw new Error(`${name} failed at SCALE=smoke: ${r.error}`);
      assert.ok(r.html && (await Deno.stat(r.html)).size > 0, "HTML rendered");
      if (name === "01_mamba_block.ipynb") await checkLiveOutputs(r.executed!);
    } finally {
      await Deno.remove(outDir, { recursive: true });
    }
  });
}

// Notebooks written as TypeScript sources (notebooks/src/NAME.ts) must match their generated .ipynb.
const sources: string[] = [];
try {
  for await (const e of Deno.readDir(`${REPO_ROOT}/notebooks/src`)) {
    if (e.isFile && e.name.endsWith(".ts")) sources.push(`${REPO_ROOT}/notebooks/src/${e.name}`);
  }
} catch (e) {
  if (!(e instanceof Deno.errors.NotFound)) throw e;
}
for (const src of sources.sort()) {
  const out = notebookPathFor(src);
  Deno.test(`${out.slice(REPO_ROOT.length + 1)} is generated from its source`, async () => {
    const want = notebookText(await loadCells(src));
    const have = await Deno.readTextFile(out).catch(() => "(missing)");
    assert.ok(
      have === want,
      `${out} is stale: run deno run -A lib/notebook/build.ts ${src.slice(REPO_ROOT.length + 1)}`,
    );
  });
}

Deno.test("notebook harness: SCALE reaches the kernel, figures carry a static image, failures name the cell", async () => {
  // Generated notebooks live under data/tmp (git-ignored) so that the kernel finds the repository's deno.json
  // from the notebook's folder upward.
  await Deno.mkdir(`${REPO_ROOT}/data/tmp`, { recursive: true });
  const dir = await Deno.makeTempDir({ dir: `${REPO_ROOT}/data/tmp`, prefix: "harness-" });
  const display = new URL("../lib/plot/display.ts", import.meta.url).href;
  try {
    const good = `${dir}/good.ipynb`;
    await writeNotebook(good, [
      md`# Harness self-test`,
      code`import { layout, showFigure, showTable } from "${display}";
console.log("SCALE=" + Deno.env.get("SCALE"));`,
      code`await showFigure({
  data: [{ x: [0, 1, 2], y: [3, 1, 2], type: "scatter", name: "harness-trace" }],
  layout: layout({ title: "Harness", xTitle: "Step", yTitle: "Loss", yUnit: "nats" }),
});
await showTable([{ a: 1, b: 2.5 }]);`,
    ]);
    const { r, outDir } = await runSmoke(good);
    try {
      assert.ok(r.ok, r.error ?? "");
      const executed = JSON.parse(await Deno.readTextFile(r.executed!));
      const outputs = executed.cells.flatMap((c: { outputs?: unknown[] }) => c.outputs ?? []);
      const text = (v: string | string[] | undefined) => (Array.isArray(v) ? v.join("") : v ?? "");
      assert.ok(
        outputs.some((o: { text?: string[] }) => text(o.text).includes("SCALE=smoke")),
        "SCALE=smoke",
      );
      const fig = outputs.find((o: { data?: Record<string, unknown> }) =>
        o.data?.["application/vnd.plotly.v1+json"]
      );
      assert.ok(fig, "a plotly output");
      assert.match(text(fig.data["image/svg+xml"]), /^<svg[\s\S]*>Loss \(nats\)<[\s\S]*<\/svg>$/);
      assert.ok(
        outputs.some((o: { data?: Record<string, unknown> }) =>
          o.data?.["text/html"]?.toString().includes("<table>")
        ),
        `a table output; outputs: ${
          JSON.stringify(
            outputs.map((
              o: any,
            ) => [o.output_type, Object.keys(o.data ?? {}), String(o.text ?? "").slice(0, 200)]),
          )
        }`,
      );
      // The static HTML shows the figure as an image (inline SVG would be emptied by nbconvert's sanitizer).
      const html = await Deno.readTextFile(r.html!);
      assert.match(html, /<img src="data:image\/svg\+xml;base64,/);
      assert.match(html, /<title>good<\/title>/);
      // the outputs, and the stamp of the inputs that lets an unchanged notebook skip its next run
      // and Jupyter's theme in one stylesheet of the folder that the page links (lib/notebook/styles.ts)
      const css = /<link rel="stylesheet" href="(jupyter-[0-9a-f]{12}\.css)">/.exec(html)?.[1];
      assert.ok(css, "the page links its folder's stylesheet");
      assert.doesNotMatch(html.slice(0, html.indexOf("</head>")), /<style/);
      assert.deepEqual([...Deno.readDirSync(outDir)].map((e) => e.name).sort(), [
        ".inputs-good.txt",
        "good.html",
        "good.ipynb",
        css,
      ]);
    } finally {
      await Deno.remove(outDir, { recursive: true });
    }

    const bad = `${dir}/bad.ipynb`;
    await writeNotebook(bad, [
      md`# Fails in cell 3`,
      code`const x = 1;`,
      code`throw new Error("harness-boom-" + Deno.env.get("SCALE"));`,
      code`console.log("not reached");`,
    ]);
    const failed = await runSmoke(bad);
    try {
      assert.equal(failed.r.ok, false);
      assert.match(failed.r.error!, /^cell 3 failed:/);
      assert.match(failed.r.error!, /harness-boom-smoke/);
      assert.deepEqual([...Deno.readDirSync(failed.outDir)], [], "a failed run writes no output");
    } finally {
      await Deno.remove(failed.outDir, { recursive: true });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("notebook outputs: a cell that displays much, then a table, keeps every output (Deno's kernel may end a cell before publishing its queued displays)", async () => {
  // Deno's kernel queues displays and sends idle when the cell's code returns; nbclient drops what comes
  // after idle. Without lib/plot/jupyter_flush.ts, 8 to 16 of these 25 outputs arrived, never the table.
  await Deno.mkdir(`${REPO_ROOT}/data/tmp`, { recursive: true });
  const dir = await Deno.makeTempDir({ dir: `${REPO_ROOT}/data/tmp`, prefix: "outputs-" });
  const display = new URL("../lib/plot/display.ts", import.meta.url).href;
  try {
    const nb = `${dir}/many.ipynb`;
    await writeNotebook(nb, [
      code`import { showTable } from "${display}";
const big = "x".repeat(1_000_000);
for (let i = 0; i < 24; i++) await Deno.jupyter.display({ "text/plain": big + i }, { raw: true });
await showTable([{ last: "the-table" }]);`,
    ]);
    const { r, outDir } = await runSmoke(nb);
    try {
      assert.ok(r.ok, r.error ?? "");
      const [cell] = JSON.parse(await Deno.readTextFile(r.executed!)).cells;
      const outputs = cell.outputs as { data?: Record<string, string | string[]> }[];
      const texts = outputs.map((o) => [o.data?.["text/plain"] ?? ""].flat().join("").slice(-12));
      assert.equal(outputs.length, 25, `outputs: ${JSON.stringify(texts)}`);
      assert.match(String(outputs[24].data?.["text/html"]), /the-table/);
    } finally {
      await Deno.remove(outDir, { recursive: true });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("notebook runner: an unchanged notebook is not executed again; a changed input runs it; --force too", async () => {
  await Deno.mkdir(`${REPO_ROOT}/data/tmp`, { recursive: true });
  const dir = await Deno.makeTempDir({ dir: `${REPO_ROOT}/data/tmp`, prefix: "unchanged-" });
  const results = `${dir}/results`;
  await Deno.mkdir(results);
  const nb = `${dir}/stamp.ipynb`;
  await writeNotebook(nb, [code`console.log("ran at " + performance.timeOrigin);`]);
  const opts = {
    scale: "smoke" as const,
    outDir: `${dir}/out`,
    heartbeatS: 0,
    env: { MAMBABYTE_RESULTS: results },
  };
  const ranAt = async () =>
    JSON.stringify(JSON.parse(await Deno.readTextFile(`${dir}/out/stamp.ipynb`)).cells[0].outputs);
  try {
    const first = await runNotebook(nb, opts);
    assert.ok(first.ok && !first.unchanged, first.error ?? "");
    const out1 = await ranAt();
    const second = await runNotebook(nb, opts);
    assert.ok(second.ok && second.unchanged, "the second run with the same inputs is skipped");
    assert.equal(await ranAt(), out1, "and its outputs are the first run's");
    // a record appears in the results directory the notebook reads: it runs again
    await Deno.writeTextFile(`${results}/runs.jsonl`, `{"run":"x"}\n`);
    const third = await runNotebook(nb, opts);
    assert.ok(third.ok && !third.unchanged, "a new record is a changed input");
    assert.notEqual(await ranAt(), out1);
    const forced = await runNotebook(nb, { ...opts, force: true });
    assert.ok(forced.ok && !forced.unchanged, "--force runs it");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("notebook runner: Ctrl-C stops the notebook running now, says so and exits 130", async () => {
  await Deno.mkdir(`${REPO_ROOT}/data/tmp`, { recursive: true });
  const dir = await Deno.makeTempDir({ dir: `${REPO_ROOT}/data/tmp`, prefix: "interrupt-" });
  const nb = `${dir}/slow.ipynb`;
  // the cell announces itself through a file, then waits far longer than the test
  await writeNotebook(nb, [code`await Deno.writeTextFile("${dir}/started", "1");
await new Promise((r) => setTimeout(r, 600_000));`]);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${REPO_ROOT}/lib/notebook/run.ts`, "--out", `${dir}/out`, nb],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  try {
    await withDeadline("Ctrl-C during a notebook", 10 * 60_000, async (signal) => {
      // wait for the cell to start (an event: the file)
      await waitUntil(() => Deno.stat(`${dir}/started`).then(() => true, () => false), signal);
      child.kill("SIGINT");
      const out = await child.output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 130, stderr);
      assert.match(stderr, /notebooks: interrupted during slow\.ipynb \(0 finished and kept\)/);
    });
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
    await Deno.remove(dir, { recursive: true });
  }
});
