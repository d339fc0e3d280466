/**
 * One stylesheet for many report pages instead of one copy per page: nbconvert's HTML carries Jupyter's whole
 * theme (about 556 KB of CSS, the same in every page), which made the nine committed reports of a scale
 * weigh 6 MB, 85% of it repeated CSS. `shareStyles` moves the page head's <style> blocks into a file named
 * by its content (jupyter-<sha256, 12 hex>.css) and links it: beside the page, or one folder up (`up`), where
 * the notebook runner keeps it for its default folders figures/notebooks/SCALE, so every scale's pages share
 * one file. A page renders as before from its place in the tree (file:// included), and a page converted by
 * another nbconvert version gets its own file instead of restyling the others. Styles inside the body (a
 * cell's own output) stay where they are.
 *
 *   deno run -A lib/notebook/styles.ts [--up] PAGE.html ...   (pages converted before this existed)
 */
import { atomicWriteFile, parentDir } from "../io/atomic.ts";
import { sha256Bytes } from "../data/corpora/acquire.ts";

/**
 * The stylesheet of a page's style blocks, in their order. A block's `@charset` rule counts only as the very
 * first bytes of a file (inside the theme it stood mid-file and was ignored), and the theme is not ASCII, so
 * the file says UTF-8 on its first line whatever the page's encoding.
 */
export function stylesheetText(blocks: string[]): string {
  const body = blocks.map((b) => b.replace(/@charset\s+"[^"]*";\s*/gi, "").trim()).join("\n\n");
  return `@charset "UTF-8";\n${body}\n`;
}

/** The page with its head's styles replaced by one <link>, and the stylesheet's name and text. */
export function shareStyles(
  html: string,
  o: { up?: boolean } = {},
): { html: string; css?: { name: string; text: string } } {
  const headEnd = html.indexOf("</head>");
  if (headEnd < 0) return { html };
  const head = html.slice(0, headEnd);
  const blocks = [...head.matchAll(/<style[^>]*>([\s\S]*?)<\/style>\s*/g)];
  if (!blocks.length) return { html };
  // the blocks in page order, each kept apart by a newline, so the cascade is the page's own
  const text = stylesheetText(blocks.map((m) => m[1]));
  const name = `jupyter-${sha256Bytes(text).slice(0, 12)}.css`;
  let out = "", at = 0;
  for (const [i, m] of blocks.entries()) {
    out += head.slice(at, m.index) +
      (i === 0 ? `<link rel="stylesheet" href="${o.up ? "../" : ""}${name}">\n` : "");
    at = m.index! + m[0].length;
  }
  return { html: out + head.slice(at) + html.slice(headEnd), css: { name, text } };
}

/**
 * Rewrites an HTML page in place, its stylesheet written first (both atomically) into `cssDir` (default: the
 * page's folder); `up` links it one folder up, where the caller will put it. Returns the stylesheet's name.
 */
export async function shareStylesOf(
  path: string,
  o: { up?: boolean; cssDir?: string } = {},
): Promise<string | undefined> {
  const { html, css } = shareStyles(await Deno.readTextFile(path), o);
  if (!css) return undefined;
  const dir = o.cssDir ?? (o.up ? parentDir(parentDir(path)) : parentDir(path));
  await atomicWriteFile(`${dir}/${css.name}`, css.text);
  await atomicWriteFile(path, html);
  return css.name;
}

if (import.meta.main) {
  const up = Deno.args.includes("--up"), pages = Deno.args.filter((a) => a !== "--up");
  if (!pages.length) {
    console.error("usage: deno run -A lib/notebook/styles.ts [--up] PAGE.html ...");
    Deno.exit(2);
  }
  for (const page of pages) {
    try {
      const name = await shareStylesOf(page, { up });
      console.log(`${page}: ${name ? `styles in ${name}` : "no styles in its head (unchanged)"}`);
    } catch (e) {
      console.error(`${page}: ${e instanceof Error ? e.message : e}`);
      Deno.exit(1);
    }
  }
}
