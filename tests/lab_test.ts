/**
 * `deno task lab`: the notebook server starts with the Deno kernel on localhost, and a notebook opened
 * through it in headless Chromium runs a cell that imports lib/mod.ts and shows its output.
 */
import assert from "node:assert/strict";
import { startLab } from "../lib/notebook/lab.ts";
import { closeRenderer, withPage } from "../lib/plot/export.ts";
import { code, writeNotebook } from "../lib/notebook/build.ts";
import { REPO_ROOT, repoRelative } from "../lib/paths.ts";
import { withDeadline } from "./deadline.ts";

Deno.test("lab: a notebook opened in Chromium through the server runs a cell importing lib/mod.ts", async () => {
  // The notebook lives under data/tmp (ignored), so its kernel finds the repository's deno.json upward.
  await Deno.mkdir(`${REPO_ROOT}data/tmp`, { recursive: true });
  const dir = await Deno.makeTempDir({ dir: `${REPO_ROOT}data/tmp`, prefix: "lab-" });
  const notebook = `${dir}/lab-check.ipynb`;
  await writeNotebook(notebook, [
    code`import * as mb from "../../../lib/mod.ts";
console.log("lab-ok", Object.keys(mb.SCALES).join(","), typeof mb.selectiveScan);`,
  ]);
  const lab = await startLab({ port: 0 });
  try {
    // puppeteer's own waits are unbounded (timeout 0): the test has one overall deadline
    const output = await withDeadline(
      "the lab notebook runs its cell",
      10 * 60_000,
      () =>
        withPage(async (page) => {
          await page.goto(lab.notebookUrl(repoRelative(notebook)), { waitUntil: "load" });
          // the page's Jupyter object exists once the notebook loaded; the kernel reports ready when connected
          await page.waitForFunction(
            () => (globalThis as any).Jupyter?.notebook?.kernel?.is_connected?.() === true,
            { timeout: 0 },
          );
          await page.evaluate(() => (globalThis as any).Jupyter.notebook.execute_cells([0]));
          await page.waitForFunction(
            () =>
              (globalThis as any).document.querySelector(".output_area")?.textContent?.includes("lab-ok") ===
                true,
            { timeout: 0 },
          );
          return await page.evaluate(() =>
            String((globalThis as any).document.querySelector(".output_area").textContent)
          );
        }),
    );
    assert.match(output, /lab-ok smoke,small,gpu,large function/);
  } finally {
    await lab.stop();
    await closeRenderer();
    await Deno.remove(dir, { recursive: true });
  }
});
