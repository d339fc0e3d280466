/**
 * The tracked sample (data/samples, at most 2 MB in all): a few documents per domain and split taken from
 * the built corpus, so that tests and `smoke` runs need no download. Each sampled document keeps its corpus
 * split (train, validation or test), is byte-identical to the corpus file (or, where no whole document of a
 * split fits, is an excerpt: the corpus document's first bytes up to a paragraph break, marked as such), and
 * is listed in data/samples/manifest.json and in the generated data/samples/README.md with its source,
 * licence and sha256. Licence notices that must travel with the files are copied into data/samples/LICENSES/.
 *
 * The books sample's train and test files are the three pinned Gutenberg books that `reproduce` and the tests
 * have always used (SPLIT_PINS). Every other (domain, split) is filled round-robin over the domain's
 * sampleable sources, documents in seeded-hash order, each taken while it fits the split's byte budget.
 *
 *   deno task data --write-sample     # regenerates data/samples from data/corpora
 */
import { atomicWriteFile } from "../../io/atomic.ts";
import { countWords } from "../bytes.ts";
import { cachedArchivePath, sha256Bytes } from "./acquire.ts";
import { debEntries, tgzEntries } from "./archive.ts";
import { listFiles, readManifest, splitTotals, writeManifest } from "./manifest.ts";
import { SOURCES, SPLIT_PINS } from "./sources.ts";
import { seededHash } from "./split.ts";
import type { Domain, Manifest, ManifestDocument, SourceSpec, Split } from "./types.ts";
import { DOMAINS, SPLITS } from "./types.ts";

/** Bytes per split for each (domain, split) the pins do not fill. */
export type SampleBudget = Record<Split, number>;

/**
 * The default budget: up to 4 domains x 190 kB plus the books (327 kB train, 144 kB test, a 30 kB
 * validation excerpt); with the current corpus that is 1.17 MB of text, 1.31 MB with manifest, README
 * and licence notices (tests/data_test.ts checks the 2 MB limit).
 */
export const DEFAULT_SAMPLE_BUDGET: SampleBudget = { train: 120_000, validation: 30_000, test: 40_000 };

export interface SampleOptions {
  corpusDir: string;
  cacheDir: string;
  sampleDir: string;
  sources?: SourceSpec[];
  seed?: number;
  budget?: SampleBudget;
}

/** A document chosen for the sample; `excerptBytes` set: only its first so many bytes are taken. */
export interface SampleChoice {
  doc: ManifestDocument;
  excerptBytes?: number;
}

/** Largest whole document taken into the sample, per domain (small files give several documents per domain). */
const MAX_DOC: Record<Domain, number> = {
  books: Infinity,
  stories: 40_000,
  prose: 48_000,
  latex: 40_000,
  code: 24_000,
};

/** The sample file name: the corpus relpath flattened ("net/http/cookie.go" -> "net-http-cookie.go"). */
function flatName(doc: ManifestDocument): string {
  return doc.id.slice(doc.source.length + 1).replace(/\//g, "-");
}

/**
 * Chooses the sample's documents from a corpus manifest. Per (domain, split): the pinned books, else
 * whole documents round-robin over the sampleable sources within the budget; if not even one whole
 * document fits, the smallest eligible document is excerpted to the budget.
 */
export function chooseSample(
  m: Manifest,
  sources: SourceSpec[],
  seed = 0,
  budget: SampleBudget = DEFAULT_SAMPLE_BUDGET,
): SampleChoice[] {
  const chosen: SampleChoice[] = [];
  for (const domain of DOMAINS.filter((d) => sources.some((s) => s.domain === d && s.sampleable))) {
    for (const split of SPLITS) {
      // Pinned documents of this domain and split (their id starts with the id of one of its sources).
      const pinned = Object.entries(SPLIT_PINS).filter(([id, s]) =>
        s === split && sources.some((src) => src.domain === domain && id.startsWith(`${src.id}/`))
      );
      if (pinned.length) {
        for (const [id] of pinned) {
          const d = m.documents.find((x) => x.domain === domain && x.id === id);
          if (!d) throw new Error(`the corpus has no ${domain} document ${id} (pinned for the sample)`);
          if (d.split !== split) throw new Error(`${id} is in ${d.split}, pinned to ${split}`);
          chosen.push({ doc: d });
        }
        continue;
      }
      const eligible = (s: SourceSpec) =>
        m.documents.filter((d) =>
          d.domain === domain && d.source === s.id && d.split === split &&
          (!s.sampleFilter || s.sampleFilter({ relpath: d.id.slice(s.id.length + 1), license: d.license }))
        );
      const bySource = new Map<string, ManifestDocument[]>();
      for (const s of sources.filter((s) => s.domain === domain && s.sampleable)) {
        const docs = eligible(s).filter((d) => d.bytes <= MAX_DOC[domain])
          .sort((a, b) => seededHash(seed, a.id) - seededHash(seed, b.id) || (a.id < b.id ? -1 : 1));
        if (docs.length) bySource.set(s.id, docs);
      }
      let left = budget[split];
      const names = new Set<string>();
      const before = chosen.length;
      // Round-robin: each source in turn takes its next document that still fits.
      let progress = true;
      while (progress) {
        progress = false;
        for (const docs of bySource.values()) {
          const i = docs.findIndex((d) => d.bytes <= left && !names.has(flatName(d)));
          if (i < 0) continue;
          const [d] = docs.splice(i, 1);
          chosen.push({ doc: d });
          names.add(flatName(d));
          left -= d.bytes;
          progress = true;
        }
      }
      if (chosen.length > before) continue;
      // Nothing whole fits (the books' only validation document is a 900 kB book): excerpt the smallest.
      const all = sources.filter((s) => s.domain === domain && s.sampleable).flatMap(eligible)
        .sort((a, b) => a.bytes - b.bytes || (a.id < b.id ? -1 : 1));
      if (!all.length) {
        throw new Error(`no sampleable ${domain} document in the ${split} split of the corpus`);
      }
      chosen.push({ doc: all[0], excerptBytes: budget[split] });
    }
  }
  return chosen;
}

/**
 * The first bytes of a document, at most `max`, ending after a paragraph break ("\n\n") so that the
 * excerpt is whole paragraphs (and whole UTF-8 characters). A document with no break early enough is
 * cut after its last line break within `max` instead.
 */
export function excerptOf(bytes: Uint8Array, max: number): Uint8Array {
  if (bytes.length <= max) return bytes;
  for (let i = max - 1; i > 0; i--) {
    if (bytes[i] === 10 && bytes[i - 1] === 10) return bytes.subarray(0, i + 1);
  }
  for (let i = max - 1; i >= 0; i--) if (bytes[i] === 10) return bytes.subarray(0, i + 1);
  throw new Error(`no line break in the first ${max} bytes: cannot excerpt`);
}

/** Keeps the parts of a Debian machine-readable copyright file that cover `paths` (see SourceSpec). */
export function dep5Excerpt(text: string, paths: string[]): string {
  const paragraphs = text.split(/\n\s*\n/).map((p) => p.replace(/^\n+|\n+$/g, "")).filter(Boolean);
  const field = (p: string, name: string) => {
    const m = new RegExp(`^${name}:([^\\n]*(?:\\n[ \\t][^\\n]*)*)`, "m").exec(p);
    return m ? m[1] : undefined;
  };
  const glob = (g: string) =>
    new RegExp(`^${g.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`);
  const stanzas = paragraphs.filter((p) => field(p, "Files") !== undefined).map((p) => ({
    p,
    globs: field(p, "Files")!.trim().split(/\s+/).map(glob),
    license: (field(p, "License") ?? "").split("\n")[0].trim(),
  }));
  const used = new Set<number>();
  for (const path of paths) {
    let last = -1; // DEP-5: the last matching stanza wins
    stanzas.forEach((s, i) => {
      if (s.globs.some((g) => g.test(path))) last = i;
    });
    if (last >= 0) used.add(last);
  }
  const keep = [...used].sort((a, b) => a - b).map((i) => stanzas[i]);
  const names = new Set(
    keep.flatMap((s) => s.license.split(/\s+(?:or|and)\s+/i).map((n) => n.trim().toLowerCase())),
  );
  const texts = paragraphs.filter((p) =>
    field(p, "Files") === undefined && /^License:/.test(p) &&
    names.has((field(p, "License") ?? "").split("\n")[0].trim().toLowerCase())
  );
  const header = paragraphs[0].startsWith("Format:") ? [paragraphs[0]] : [];
  return [...header, ...keep.map((s) => s.p), ...texts].join("\n\n") + "\n";
}

/** Reads one member of a cached archive. */
async function archiveMember(
  source: SourceSpec,
  cacheDir: string,
  path: RegExp,
): Promise<Uint8Array | undefined> {
  const file = await cachedArchivePath(source.archive, cacheDir);
  if (!file) throw new Error(`the archive of ${source.id} is not in ${cacheDir}: run deno task data first`);
  const entries = source.archive.kind === "deb"
    ? debEntries(file, (p) => path.test(p))
    : tgzEntries(file, (p) => path.test(p));
  let found: Uint8Array | undefined;
  for await (const e of entries) found ??= e.data;
  return found;
}

function mdEscape(s: string): string {
  return s.replace(/\|/g, "\\|").replace(/\n/g, " ");
}

/** Writes the sample, its manifest, README and licence notices. Returns what was written. */
export async function writeSample(opts: SampleOptions): Promise<{ files: number; bytes: number }> {
  const m = await readManifest(opts.corpusDir);
  if (!m) throw new Error(`${opts.corpusDir}/manifest.json does not exist: run deno task data first`);
  const missing = DOMAINS.filter((d) => !m.domains[d]);
  if (missing.length) {
    throw new Error(`the corpus lacks domain(s) ${missing.join(", ")}: run deno task data first`);
  }
  const sources = opts.sources ?? SOURCES;
  const chosen = chooseSample(m, sources, opts.seed ?? 0, opts.budget);

  const docs: ManifestDocument[] = [];
  const written = new Set<string>();
  let bytes = 0;
  for (const { doc: d, excerptBytes } of chosen) {
    const full = await Deno.readFile(`${opts.corpusDir}/${d.path}`);
    if (sha256Bytes(full) !== d.sha256) {
      throw new Error(`${d.path} does not match the corpus manifest: rebuild with deno task data`);
    }
    const data = excerptBytes === undefined ? full : excerptOf(full, excerptBytes);
    const name = flatName(d);
    const path = `${d.domain}/${d.split}/${name}`;
    await atomicWriteFile(`${opts.sampleDir}/${path}`, data, { createParents: true });
    written.add(path);
    bytes += data.length;
    const entry: ManifestDocument = { ...d, id: name, path, corpus_id: d.id };
    if (data.length < full.length) {
      Object.assign(entry, {
        bytes: data.length,
        words: countWords(data),
        sha256: sha256Bytes(data),
        excerpt_of: { bytes: d.bytes, sha256: d.sha256 },
      });
    }
    docs.push(entry);
  }
  // Remove files of earlier samples that are no longer chosen.
  for (const domain of DOMAINS) {
    for (const split of SPLITS) {
      for (const f of await listFiles(`${opts.sampleDir}/${domain}/${split}`)) {
        if (!written.has(`${domain}/${split}/${f}`)) {
          await Deno.remove(`${opts.sampleDir}/${domain}/${split}/${f}`);
        }
      }
    }
  }

  // Licence notices that must accompany the files.
  const notices: { source: string; file: string }[] = [];
  for (const s of sources) {
    const mine = docs.filter((d) => d.source === s.id);
    if (!mine.length || !s.licenseFile) continue;
    const member = await archiveMember(s, opts.cacheDir, s.licenseFile.path);
    if (!member) throw new Error(`${s.id}: licence file ${s.licenseFile.path} not found in its archive`);
    let text = new TextDecoder().decode(member);
    if (s.licenseFile.dep5) {
      text = dep5Excerpt(
        text,
        mine.map((d) => s.licenseFile!.dep5!.upstreamPrefix + d.corpus_id!.slice(s.id.length + 1)),
      );
    }
    const file = `LICENSES/${s.id}.txt`;
    await atomicWriteFile(`${opts.sampleDir}/${file}`, text, { createParents: true });
    notices.push({ source: s.id, file });
    bytes += new TextEncoder().encode(text).length;
  }
  for (const f of await listFiles(`${opts.sampleDir}/LICENSES`)) {
    if (!notices.some((n) => n.file === `LICENSES/${f}`)) {
      await Deno.remove(`${opts.sampleDir}/LICENSES/${f}`);
    }
  }

  // The sample's own manifest, in the corpus manifest's format (paths relative to data/samples).
  const sm: Manifest = {
    format: "mambabyte-corpora",
    version: 1,
    domains: {},
    sources: [],
    documents: docs,
    dropped: [],
  };
  for (const domain of DOMAINS) {
    const mine = docs.filter((d) => d.domain === domain);
    const { totals, splits } = splitTotals(mine);
    const full = m.domains[domain]!;
    sm.domains[domain] = {
      ...full,
      sources: [...new Set(mine.map((d) => d.source))],
      totals,
      splits: splits as Record<Split, typeof totals>,
      build_seconds: 0,
      warnings: [],
    };
  }
  sm.sources = m.sources.filter((s) => docs.some((d) => d.domain === s.domain && d.source === s.id))
    .map((s) => {
      const mine = docs.filter((d) => d.domain === s.domain && d.source === s.id);
      return { ...s, documents: mine.length, bytes: mine.reduce((n, d) => n + d.bytes, 0) };
    });
  await writeManifest(opts.sampleDir, sm);
  await atomicWriteFile(`${opts.sampleDir}/README.md`, sampleReadme(sm, notices), { createParents: true });
  return { files: docs.length, bytes };
}

/** The README of the sample, generated from its manifest. */
export function sampleReadme(sm: Manifest, notices: { source: string; file: string }[]): string {
  const total = sm.documents.reduce((n, d) => n + d.bytes, 0);
  const lines = [
    "# Bundled sample text",
    "",
    "Generated by `deno task data --write-sample` from the corpus that `deno task data` builds; do not edit by hand.",
    "A small, tracked sample so that tests, `smoke` runs and the default `reproduce` need no download: documents",
    "of each domain in their corpus split (split by document: no text of an evaluation document is in a training",
    "file), byte-identical to the corpus files; a file marked as an excerpt is the first bytes of its corpus",
    "document, cut after a paragraph, where no whole document of that split is small enough. `manifest.json`",
    "lists the same in machine-readable form; tests/data_test.ts checks the sha256 of every file.",
    "",
    "Only texts whose licence allows redistributing single files are sampled (public domain, the Brown corpus's",
    "permission, PDDL/CC0, BSD, MIT/Apache-2.0); the notices those licences require are in LICENSES/. LaTeX files",
    "are taken from public-domain TeX Live packages only: the LPPL treats distributing part of a Work as a",
    "modification, and GPL text stays out.",
    "",
    `${sm.documents.length} files, ${total} bytes of text in all.`,
    "",
  ];
  const rank = (d: ManifestDocument) => SPLITS.indexOf(d.split);
  for (const domain of DOMAINS) {
    const mine = sm.documents.filter((d) => d.domain === domain);
    if (!mine.length) continue;
    lines.push(`## ${domain}`, "");
    lines.push(
      "| split | file | source | licence | cleaning | bytes | sha256 |",
      "|---|---|---|---|---|---|---|",
    );
    for (const d of [...mine].sort((a, b) => rank(a) - rank(b) || (a.id < b.id ? -1 : 1))) {
      const src = `${d.archive} ${d.package}@${d.version}, ${d.origin}`;
      const size = d.excerpt_of
        ? `${d.bytes} (excerpt: the first ${d.bytes} of ${d.excerpt_of.bytes})`
        : `${d.bytes}`;
      lines.push(
        `| ${d.split} | ${mdEscape(d.id)} | ${mdEscape(src)} | ${mdEscape(d.license)} | ${
          d.cleaning.join(", ") || "none"
        } | ${size} | \`${d.sha256}\` |`,
      );
    }
    lines.push("");
  }
  if (notices.length) {
    lines.push("## Licence notices", "");
    for (const n of notices) lines.push(`- ${n.source}: [${n.file}](${n.file})`);
    lines.push("");
  }
  return lines.join("\n");
}
