/**
 * Cleaning steps for the corpus sources, as pure functions of text so that they can be tested on
 * fixtures. Each cleaner does the least that makes a source read as plain text; the manifest records
 * which steps touched each document.
 */

const ENTITIES: Record<string, string> = {
  amp: "&",
  lt: "<",
  gt: ">",
  quot: '"',
  apos: "'",
  nbsp: "\u00a0",
  copy: "©",
  reg: "®",
  trade: "™",
  mdash: "—",
  ndash: "–",
  hellip: "…",
  lsquo: "‘",
  rsquo: "’",
  ldquo: "“",
  rdquo: "”",
  bull: "•",
  middot: "·",
  laquo: "«",
  raquo: "»",
  eacute: "é",
  egrave: "è",
  aacute: "á",
  agrave: "à",
  ouml: "ö",
  uuml: "ü",
  auml: "ä",
  szlig: "ß",
  pound: "£",
  euro: "€",
  cent: "¢",
  deg: "°",
  times: "×",
};

/** Decodes the XML/HTML character references and the few named entities that occur in text. */
export function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);/g, (m, e: string) => {
    if (e[0] === "#") {
      const cp = e[1] === "x" || e[1] === "X" ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return cp > 0 && cp < 0x110000 ? String.fromCodePoint(cp) : m;
    }
    return ENTITIES[e] ?? ENTITIES[e.toLowerCase()] ?? m;
  });
}

const utf8Fatal = new TextDecoder("utf-8", { fatal: true });
// WHATWG's "latin1" label is Windows-1252, a superset of ISO-8859-1 on the printable range: the two
// Gutenberg files that are not UTF-8 (CORPORA.md) decode the same either way.
const latin1 = new TextDecoder("latin1");

/** Bytes to text: UTF-8 when valid (a BOM is dropped), else read as Latin-1 and re-encoded later as UTF-8. */
export function decodeText(bytes: Uint8Array): { text: string; latin1: boolean } {
  try {
    return { text: utf8Fatal.decode(bytes), latin1: false };
  } catch {
    return { text: latin1.decode(bytes), latin1: true };
  }
}

/** A NUL byte means binary data (images, compiled test fixtures), not text. */
export function looksBinary(bytes: Uint8Array): boolean {
  return bytes.indexOf(0) >= 0;
}

/** CRLF and lone CR to LF. */
export function normalizeNewlines(text: string): string {
  return text.replace(/\r\n?/g, "\n");
}

/** Trailing spaces and tabs at line ends, and blank lines at the ends of the text. */
export function trimLines(text: string): string {
  return text.replace(/[ \t]+$/gm, "").replace(/^\n+/, "").replace(/\n*$/, "\n");
}

const GUTENBERG_END = [
  /^\*{3} ?END OF (THE|THIS) PROJECT GUTENBERG/im,
  /^End of (the )?Project Gutenberg/im,
  /^\*{3} ?START: FULL LICENSE/im,
];
const GUTENBERG_START = /^\*{3} ?START OF (THE|THIS) PROJECT GUTENBERG[^\n]*\n/im;

/**
 * Removes Project Gutenberg's licence boilerplate: everything from the first end-of-book marker on
 * ("End of Project Gutenberg's ...", "*** END OF THE PROJECT GUTENBERG EBOOK ...") and, when present,
 * everything up to the "*** START OF ..." line. Texts without markers are returned unchanged.
 */
export function stripGutenbergBoilerplate(text: string): { text: string; stripped: boolean } {
  let out = text, stripped = false;
  const start = GUTENBERG_START.exec(out);
  if (start) {
    out = out.slice(start.index + start[0].length);
    stripped = true;
  }
  let cut = out.length;
  for (const re of GUTENBERG_END) {
    const m = re.exec(out);
    if (m && m.index < cut) cut = m.index;
  }
  if (cut < out.length) {
    out = out.slice(0, cut).replace(/\s+$/, "\n");
    stripped = true;
  }
  return { text: out, stripped };
}

/** "[Emma by Jane Austen 1816]" on the first line of the NLTK Gutenberg selection. */
export function gutenbergTitle(text: string): string | undefined {
  const m = /^\s*\[([^\]\n]+)\]/.exec(text);
  return m ? m[1].trim() : undefined;
}

const NO_SPACE_BEFORE = new Set([",", ".", ";", ":", "?", "!", ")", "]", "}", "''", "'", "%", "n't"]);
const NO_SPACE_AFTER = new Set(["(", "[", "{", "``", "$"]);

/**
 * The Brown corpus, form C (`word/tag` tokens, one sentence per line, paragraphs starting with a tab),
 * to plain text: tags removed, headlines on their own line, tokens re-joined with English spacing rules, `` and '' turned into
 * double quotes, sentences of a paragraph joined on one line, paragraphs separated by a blank line.
 */
export function brownToText(tagged: string): string {
  const paragraphs: string[][] = [];
  let current: string[] | undefined;
  let afterHeadline = false;
  for (const line of normalizeNewlines(tagged).split("\n")) {
    if (!line.trim()) continue;
    const toks = line.trim().split(/\s+/);
    // Headlines (every tag ends in "-hl", e.g. "Thirty-three/cd-hl") stand on their own line.
    const headline = toks.every((t) => /-hl$/.test(t));
    if (line.startsWith("\t") || !current || headline || afterHeadline) {
      current = [];
      paragraphs.push(current);
    }
    afterHeadline = headline;
    for (const tok of toks) {
      const slash = tok.lastIndexOf("/");
      current.push(slash > 0 ? tok.slice(0, slash) : tok);
    }
  }
  return paragraphs.map(detokenize).filter((p) => p).join("\n\n") + "\n";
}

function detokenize(tokens: string[]): string {
  let out = "";
  let glue = true; // no space before the next token
  for (const t of tokens) {
    if (!glue && !NO_SPACE_BEFORE.has(t)) out += " ";
    out += t === "``" || t === "''" ? '"' : t;
    glue = NO_SPACE_AFTER.has(t);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// E-mail (SpamAssassin public corpus): headers cut, MIME parts decoded, HTML stripped

interface MimePart {
  headers: Map<string, string>;
  body: string; // raw body as Latin-1 text (one char per byte), decoded later according to its headers
}

function parseHeaders(block: string): Map<string, string> {
  const headers = new Map<string, string>();
  let last = "";
  for (const line of block.split("\n")) {
    if (/^[ \t]/.test(line) && last) {
      headers.set(last, headers.get(last) + " " + line.trim());
      continue;
    }
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    last = line.slice(0, colon).trim().toLowerCase();
    headers.set(last, line.slice(colon + 1).trim());
  }
  return headers;
}

function splitMessage(raw: string): MimePart {
  const m = /\n\n/.exec(raw);
  if (!m) return { headers: new Map(), body: raw };
  return { headers: parseHeaders(raw.slice(0, m.index)), body: raw.slice(m.index + 2) };
}

function headerParam(value: string | undefined, name: string): string | undefined {
  if (!value) return undefined;
  const m = new RegExp(`${name}\\s*=\\s*("([^"]*)"|[^;\\s]+)`, "i").exec(value);
  return m ? (m[2] ?? m[1]) : undefined;
}

/** Quoted-printable to bytes (soft line breaks removed, =XX decoded). */
export function decodeQuotedPrintable(s: string): Uint8Array {
  const t = s.replace(/=\n/g, "");
  const out: number[] = [];
  for (let i = 0; i < t.length; i++) {
    const c = t.charCodeAt(i);
    if (c === 61 /* = */ && /^[0-9A-Fa-f]{2}$/.test(t.slice(i + 1, i + 3))) {
      out.push(parseInt(t.slice(i + 1, i + 3), 16));
      i += 2;
    } else out.push(c & 0xff);
  }
  return Uint8Array.from(out);
}

function latin1Bytes(s: string): Uint8Array {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i) & 0xff;
  return b;
}

function decodeBase64(s: string): Uint8Array {
  const clean = s.replace(/[^A-Za-z0-9+/]/g, "");
  try {
    const bin = atob(clean.slice(0, clean.length - (clean.length % 4)));
    return latin1Bytes(bin);
  } catch {
    return new Uint8Array();
  }
}

function decodeCharset(bytes: Uint8Array, charset: string | undefined): string {
  if (charset) {
    try {
      return new TextDecoder(charset.toLowerCase()).decode(bytes);
    } catch { /* unknown label: fall through */ }
  }
  return decodeText(bytes).text;
}

/** Text of one MIME part (recursing into multiparts), or undefined for attachments and non-text parts. */
function partText(part: MimePart, depth = 0): { text: string; html: boolean } | undefined {
  const type = (part.headers.get("content-type") ?? "text/plain").toLowerCase();
  if (type.startsWith("multipart/") && depth < 8) {
    const boundary = headerParam(part.headers.get("content-type"), "boundary");
    if (!boundary) return { text: part.body, html: false };
    const pieces = part.body.split(`--${boundary}`).slice(1);
    const texts: { text: string; html: boolean }[] = [];
    for (const piece of pieces) {
      if (piece.startsWith("--")) break; // closing delimiter
      const sub = partText(splitMessage(piece.replace(/^[ \t]*\n/, "")), depth + 1);
      if (sub && sub.text.trim()) texts.push(sub);
    }
    if (type.startsWith("multipart/alternative")) {
      return texts.find((t) => !t.html) ?? texts[0];
    }
    if (!texts.length) return undefined;
    return { text: texts.map((t) => (t.html ? htmlToText(t.text) : t.text)).join("\n\n"), html: false };
  }
  if (!type.startsWith("text/") && !type.startsWith("message/")) return undefined;
  const disposition = part.headers.get("content-disposition") ?? "";
  if (/attachment/i.test(disposition) && !/^text\/plain/.test(type)) return undefined;
  const encoding = (part.headers.get("content-transfer-encoding") ?? "").toLowerCase();
  const bytes = encoding.includes("quoted-printable")
    ? decodeQuotedPrintable(part.body)
    : encoding.includes("base64")
    ? decodeBase64(part.body)
    : latin1Bytes(part.body);
  const text = normalizeNewlines(
    decodeCharset(bytes, headerParam(part.headers.get("content-type"), "charset")),
  );
  const html = type.startsWith("text/html") || /<(html|body|table|font|p|div)\b/i.test(text.slice(0, 2000));
  return { text, html };
}

/**
 * The readable body of a raw e-mail: headers cut at the first blank line; MIME multiparts reduced to their
 * text parts (text/plain preferred in multipart/alternative; attachments dropped); quoted-printable and
 * base64 decoded; the declared charset honoured; HTML turned into text. Undefined when nothing is left.
 */
export function emailToText(raw: Uint8Array): string | undefined {
  const msg = splitMessage(normalizeNewlines(new TextDecoder("latin1").decode(raw)));
  const part = partText(msg);
  if (!part) return undefined;
  const text = trimLines((part.html ? htmlToText(part.text) : part.text).replace(/\n{3,}/g, "\n\n"));
  return text.trim() ? text : undefined;
}

/**
 * HTML to text: scripts, styles and comments removed; block-level tags become line breaks; other tags
 * dropped; entities decoded; runs of spaces collapsed.
 */
export function htmlToText(html: string): string {
  let s = html.replace(/<!--[\s\S]*?-->/g, "");
  s = s.replace(/<(script|style|head|title)\b[\s\S]*?<\/\1\s*>/gi, "");
  s = s.replace(/<(br|hr)\b[^>]*>/gi, "\n");
  s = s.replace(/<\/?(p|div|tr|table|li|ul|ol|h[1-6]|blockquote|pre|center)\b[^>]*>/gi, "\n");
  s = s.replace(/<\/?(td|th)\b[^>]*>/gi, " ");
  s = s.replace(/<[^>]*>/g, "");
  s = decodeEntities(s).replace(/\u00a0/g, " ");
  s = s.replace(/[ \t]+/g, " ").replace(/ *\n */g, "\n").replace(/\n{3,}/g, "\n\n");
  return s.trim() + "\n";
}

/**
 * The key used to find exact duplicates across sources: letters and digits only, lower-cased, so that
 * differences in line wrapping, punctuation and case do not hide a copy.
 */
export function normalizeForHash(text: string): string {
  return text.toLowerCase().replace(/[^\p{L}\p{N}]+/gu, "");
}
