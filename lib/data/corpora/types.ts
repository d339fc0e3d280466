/** Shared types of the corpus pipeline (recipe, documents, manifest). */

/** The five domains of the paper, with the stand-ins of CORPORA.md. */
export const DOMAINS = ["books", "stories", "prose", "latex", "code"] as const;
export type Domain = typeof DOMAINS[number];

/** What each domain stands in for, for reports and the notebook. */
export const DOMAIN_NOTES: Record<Domain, string> = {
  books: "PG19 stand-in: Project Gutenberg books (NLTK selection, janeaustenr, World English Bible)",
  stories: "Stories stand-in: Brown corpus fiction and e-mail bodies (SpamAssassin ham)",
  prose: "Books3 stand-in (a fifth book-like domain): State of the Union addresses and Brown non-fiction",
  latex: "ArXiv stand-in: LaTeX sources of TeX Live package documentation",
  code: "GitHub-code stand-in: Go and Rust standard libraries/compilers and Linux kernel C",
};

export const SPLITS = ["train", "validation", "test"] as const;
export type Split = typeof SPLITS[number];

/** Where a source's archive comes from. `local` points at a file already on disk (tests, fixtures). */
export type ArchiveSpec =
  | { kind: "npm"; name: string; version: string }
  | { kind: "deb"; name: string; version: string }
  | { kind: "local"; name: string; version: string; path: string };

/** An archive in the cache, ready to read. */
export interface AcquiredArchive {
  spec: ArchiveSpec;
  path: string;
  sha256: string;
  bytes: number;
  /** The version actually obtained (a Debian version can differ from the pinned one; see acquire.ts). */
  version: string;
  /** Whether this run downloaded it (false: it was in the cache). */
  downloaded: boolean;
}

/** A cleaned document produced by a source reader, before de-duplication and splitting. */
export interface SourceDocument {
  /** Path of the document below its source's folder, e.g. "austen-emma.txt" or "net/http/server.go". */
  relpath: string;
  /** The cleaned text (written as UTF-8). */
  text: string;
  /** Where it came from inside the archive. */
  origin: string;
  /** Cleaning steps applied, in order (e.g. "latin1->utf8", "gutenberg-boilerplate"). */
  cleaning: string[];
  title?: string;
  /** The same work in another edition is a duplicate (e.g. "austen/emma"). */
  work?: string;
  /** Documents of one group always land in the same split (e.g. two Bible translations). */
  group?: string;
  /** Overrides the source's licence for this document (texlive docs carry per-package licences). */
  license?: string;
}

/** Reporting hooks a reader may use for long loops. */
export interface ReadContext {
  /** A progress line (rate-limited by the caller). */
  progress(message: string): void;
  /** A warning that ends up in the report. */
  warn(message: string): void;
}

/** One source of one domain: an archive, the files to take from it, and how to clean them. */
export interface SourceSpec {
  /** Unique slug, also the folder of its documents: data/corpora/<domain>/<split>/<id>/<relpath>. */
  id: string;
  domain: Domain;
  archive: ArchiveSpec;
  /** Licence of the texts (a document may override it). */
  license: string;
  description: string;
  /** Deterministic selection cap on cleaned bytes (documents ordered by a seeded hash of their path). */
  capBytes?: number;
  /** Whether documents of this source may go into the tracked sample (licence allows and they are small). */
  sampleable?: boolean;
  /** Which of its documents may go into the sample (e.g. only files under the package's main licence). */
  sampleFilter?: (doc: { relpath: string; license: string }) => boolean;
  /**
   * The archive member that holds the licence notice to ship with sampled documents. With `dep5` it is a
   * Debian machine-readable copyright file and only the stanzas that cover the sampled files (their path
   * in the upstream tree is `upstreamPrefix + relpath`) and the licence texts those name are kept.
   */
  licenseFile?: { path: RegExp; dep5?: { upstreamPrefix: string } };
  /** Parameters that change the output; part of the recipe hash together with CLEANING_VERSION. */
  params?: Record<string, unknown>;
  read(archive: AcquiredArchive, ctx: ReadContext): Promise<SourceDocument[]>;
}

export interface ManifestDocument {
  /** `<source>/<relpath>`, unique within the domain. */
  id: string;
  domain: Domain;
  source: string;
  package: string;
  version: string;
  archive: "npm" | "deb" | "local";
  license: string;
  split: Split;
  /** Relative to the corpus folder: `<domain>/<split>/<source>/<relpath>`. */
  path: string;
  bytes: number;
  words: number;
  sha256: string;
  origin: string;
  cleaning: string[];
  title?: string;
  group?: string;
  /** In the tracked sample's manifest: the document's id in the full corpus. */
  corpus_id?: string;
  /**
   * In the tracked sample's manifest, for an excerpt: the file is the first `bytes` bytes of the corpus
   * document `corpus_id`, whose full size and sha256 are these.
   */
  excerpt_of?: { bytes: number; sha256: string };
}

export interface ManifestSource {
  id: string;
  domain: Domain;
  archive: "npm" | "deb" | "local";
  package: string;
  /** The version the pipeline asked for, and the one it got (they differ only for a Debian fallback). */
  pinned_version: string;
  version: string;
  file: string;
  sha256: string;
  archive_bytes: number;
  license: string;
  description: string;
  /** Cleaned documents the reader produced, how many survived the cap and de-duplication. */
  candidates: number;
  documents: number;
  bytes: number;
  cap_bytes?: number;
}

export interface DroppedDocument {
  id: string;
  domain: Domain;
  reason: "same-work" | "exact-duplicate" | "near-duplicate" | "cap";
  duplicate_of?: string;
  detail?: string;
}

export interface SplitTotals {
  documents: number;
  bytes: number;
  words: number;
}

export interface ManifestDomain {
  /** sha256 of the domain's recipe (sources, versions, caps, seed, fractions, CLEANING_VERSION). */
  recipe_sha256: string;
  seed: number;
  fractions: { validation: number; test: number };
  sources: string[];
  totals: SplitTotals;
  splits: Record<Split, SplitTotals>;
  /** Seconds the last build of this domain took. */
  build_seconds: number;
  warnings: string[];
}

export interface Manifest {
  format: "mambabyte-corpora";
  version: 1;
  domains: Partial<Record<Domain, ManifestDomain>>;
  sources: ManifestSource[];
  documents: ManifestDocument[];
  dropped: DroppedDocument[];
}
