/**
 * One stylesheet per report folder instead of one copy per page: nbconvert's HTML carries Jupyter's whole
 * theme (about 556 KB of CSS, the same in every page), which made the nine committed reports of a scale
 * weigh 6 MB, 85% of it repeated CSS. `shareStyles` moves the page head's <style> blocks into a file named
 * by its content (jupyter-<sha256, 12 hex>.css) beside the page and links it, so a page renders as before
 * from its folder (file:// included), and a page converted by another nbconvert version gets its own file
 * instead of restyling the others. Styles inside the body (a cell's own output) stay where they are.
 *
 *   deno run -A lib/notebook/styles.ts figures/notebooks/gpu/*.html   (pages converted before this existed)
 */
import { atomicWriteFile, parentDir } from "../io/atomic.ts";

/** The page with its head's styles replaced by one <link>, and the stylesheet's name and text. */
export async function shareStyles(
  html: string,
): Promise<{ html: string; css?: { name: string; text: string } }> {
  const headEnd = html.indexOf("</head>");
  if (headEnd < 0) return { html };
  const head = html.slice(0, headEnd);
  const blocks = [...head.matchAll(/<style[^>]*>([\s\S]*?)<\/style>\s*/g)];
  if (!blocks.length) return { html };
  // the blocks in page order, each kept apart by a newline, so the cascade is the page's own
  const text = blocks.map((m) => m[1].trim()).join("\n\n") + "\n";
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  const name = `jupyter-${[...digest.slice(0, 6)].map((b) => b.toString(16).padStart(2, "0")).join("")}.css`;
  let out = "", at = 0;
  for (const [i, m] of blocks.entries()) {
    out += head.slice(at, m.index) + (i === 0 ? `<link rel="stylesheet" href="${name}">\n` : "");
    at = m.index! + m[0].length;
  }
  return { html: out + head.slice(at) + html.slice(headEnd), css: { name, text } };
}

/** Rewrites an HTML page in place, its stylesheet written first beside it (both atomically). */
export async function shareStylesOf(path: string): Promise<string | undefined> {
  const { html, css } = await shareStyles(await Deno.readTextFile(path));
  if (!css) return undefined;
  await atomicWriteFile(`${parentDir(path)}/${css.name}`, css.text);
  await atomicWriteFile(path, html);
  return css.name;
}

if (import.meta.main) {
  if (!Deno.args.length) {
    console.error("usage: deno run -A lib/notebook/styles.ts PAGE.html ...");
    Deno.exit(2);
  }
  for (const page of Deno.args) {
    try {
      const name = await shareStylesOf(page);
      console.log(`${page}: ${name ? `styles in ${name}` : "no styles in its head (unchanged)"}`);
    } catch (e) {
      console.error(`${page}: ${e instanceof Error ? e.message : e}`);
      Deno.exit(1);
    }
  }
}
