/**
 * Report pages share one stylesheet (lib/notebook/styles.ts): the head's styles move to a file named by the
 * SHA-256 of its text, the page links it, and a cell output's own <style> stays in the body.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { shareStyles } from "../lib/notebook/styles.ts";
import { FIGURES_DIR } from "../lib/paths.ts";

const page = `<!DOCTYPE html>
<html><head><meta charset="utf-8"/>
<title>t</title>
<script src="require.min.js"></script>
<style type="text/css">
  .a { color: red; }
</style>
<script>var x = 1;</script>
<style>@charset "UTF-8";
.b { color: blue; }</style>
</head>
<body><div class="output"><style scoped>.c { color: green; }</style><p>cell</p></div></body></html>
`;

Deno.test("shareStyles: the head's styles go to one stylesheet named by its hash; the body's stay", async () => {
  const { html, css } = await shareStyles(page);
  assert.ok(css);
  assert.equal(css.text, '@charset "UTF-8";\n.a { color: red; }\n\n.b { color: blue; }\n');
  const hex = createHash("sha256").update(css.text).digest("hex").slice(0, 12);
  assert.equal(css.name, `jupyter-${hex}.css`);
  const head = html.slice(0, html.indexOf("</head>"));
  assert.doesNotMatch(head, /<style/);
  // the link stands where the first block stood, before the scripts that followed it
  assert.ok(head.indexOf(`<link rel="stylesheet" href="${css.name}">`) > head.indexOf("require.min.js"));
  assert.ok(head.indexOf(`href="${css.name}"`) < head.indexOf("var x = 1"));
  assert.equal(head.split("<link").length, 2, "one link");
  assert.match(html, /<body><div class="output"><style scoped>\.c \{ color: green; \}<\/style><p>cell<\/p>/);
  // a page without styles in its head, or without a head, is left as it is
  const plain = "<html><head><title>x</title></head><body><style>.c{}</style></body></html>";
  assert.deepEqual(await shareStyles(plain), { html: plain });
  assert.deepEqual(await shareStyles("<p>no head</p>"), { html: "<p>no head</p>" });
  // one folder up: the same stylesheet, linked as ../NAME
  const up = await shareStyles(page, { up: true });
  assert.deepEqual(up.css, css);
  assert.equal(up.html, html.replace(`href="${css.name}"`, `href="../${css.name}"`));
});

Deno.test("committed notebook reports link the one shared stylesheet instead of carrying the theme", async () => {
  let pages = 0;
  const linked = new Set<string>();
  for await (const scale of Deno.readDir(`${FIGURES_DIR}/notebooks`)) {
    if (!scale.isDirectory) continue;
    const dir = `${FIGURES_DIR}/notebooks/${scale.name}`;
    for await (const e of Deno.readDir(dir)) {
      if (!e.name.endsWith(".html")) continue;
      const html = await Deno.readTextFile(`${dir}/${e.name}`);
      const head = html.slice(0, html.indexOf("</head>"));
      assert.doesNotMatch(head, /<style/, `${scale.name}/${e.name}: styles in its head`);
      // the runner's default folders (figures/notebooks/SCALE) share one stylesheet in figures/notebooks
      const href = /<link rel="stylesheet" href="\.\.\/(jupyter-[0-9a-f]{12}\.css)">/.exec(head)?.[1];
      assert.ok(href, `${scale.name}/${e.name}: no link to the shared stylesheet one folder up`);
      linked.add(href);
      const text = await Deno.readTextFile(`${FIGURES_DIR}/notebooks/${href}`);
      assert.equal(`jupyter-${createHash("sha256").update(text).digest("hex").slice(0, 12)}.css`, href);
      assert.match(text, /\.jp-Notebook/, `${href}: Jupyter's theme`);
      pages++;
    }
  }
  assert.ok(pages >= 1, "no report pages found");
  // and no stylesheet is left that no page links (one from an earlier nbconvert whose pages were redone)
  for (const e of Deno.readDirSync(`${FIGURES_DIR}/notebooks`)) {
    if (e.name.endsWith(".css")) assert.ok(linked.has(e.name), `${e.name}: linked by no report page`);
  }
});
