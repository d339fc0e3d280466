/**
 * The corpus pipeline, stage by stage:
 *
 *   acquire (npm / apt into the cache) -> read + clean (per source) -> cap (deterministic selection)
 *   -> de-duplicate (across the domain's sources) -> split (by document, seeded) -> write + manifest
 *
 * A domain is rebuilt only when something changed: its recipe hash (sources, versions, caps, seed,
 * fractions, cleaning version), a cached archive's sha256, or a file that no longer matches the manifest.
 * Otherwise the run is a no-op for it. Every stage after `acquire` is a function of local data, so tests
 * run the whole pipeline on fixture archives (`kind: "local"`) without a network.
 */
import { countWords } from "../bytes.ts";
import {
  acquireArchive,
  archiveKey,
  cachedArchivePath,
  describeArchive,
  type Fetcher,
  sha256Bytes,
  sha256File,
  SourceError,
  systemFetcher,
} from "./acquire.ts";
import { findDuplicates } from "./dedupe.ts";
import { emptyManifest, readManifest, splitTotals, verifyCorpus, writeManifest } from "./manifest.ts";
import { CLEANING_VERSION, SOURCES, SPLIT_PINS } from "./sources.ts";
import { assignSplits, seededHash } from "./split.ts";
import type {
  AcquiredArchive,
  Domain,
  DroppedDocument,
  Manifest,
  ManifestDocument,
  ManifestSource,
  SourceDocument,
  SourceSpec,
  Split,
} from "./types.ts";
import { DOMAINS } from "./types.ts";

export const DEFAULT_SEED = 19;
export const DEFAULT_FRACTIONS = { validation: 0.05, test: 0.05 };

export interface BuildOptions {
  /** The corpus folder (data/corpora). */
  outDir: string;
  /** Archive cache (default `<outDir>/.cache`). */
  cacheDir?: string;
  /** Domains to build (default: all that have sources). */
  domains?: Domain[];
  /** The recipe (default SOURCES). */
  sources?: SourceSpec[];
  seed?: number;
  fractions?: { validation: number; test: number };
  pins?: Record<string, Split>;
  /** Rebuild even when up to date. */
  force?: boolean;
  /** Download archives missing from the cache to compare their hashes with the manifest. */
  verifySources?: boolean;
  /** Progress and report lines (default: stderr). */
  log?: (line: string) => void;
  /** Sources read at the same time (default 2). */
  concurrency?: number;
  /** How archives are downloaded (default: npm, apt-get and the network; tests pass a fake). */
  fetcher?: Fetcher;
  /**
   * Least time between two progress lines of one step (default 2000 ms); a download that gives no output
   * of its own (apt-get, npm) is reported as still running every 5 x this.
   */
  progressMs?: number;
}

export interface DomainReport {
  domain: Domain;
  status: "up-to-date" | "built" | "failed";
  /** Why it was (re)built, or why it failed. */
  reason: string;
  seconds: number;
  warnings: string[];
}

export interface BuildResult {
  manifest: Manifest;
  reports: DomainReport[];
  failures: SourceError[];
}

/** The recipe of one domain as hashed into the manifest. */
export function recipeOf(
  domain: Domain,
  sources: SourceSpec[],
  seed: number,
  fractions: object,
  pins: Record<string, Split>,
) {
  const own = sources.filter((s) => s.domain === domain);
  const ids = new Set(own.map((s) => s.id));
  return {
    cleaning_version: CLEANING_VERSION,
    domain,
    seed,
    fractions,
    pins: Object.fromEntries(Object.entries(pins).filter(([id]) => ids.has(id.split("/")[0])).sort()),
    sources: own.map((s) => ({
      id: s.id,
      archive: s.archive,
      license: s.license,
      capBytes: s.capBytes ?? null,
      params: s.params ?? null,
    })),
  };
}

export function recipeHash(...args: Parameters<typeof recipeOf>): string {
  return sha256Bytes(JSON.stringify(recipeOf(...args)));
}

/** Makes a relative path safe as a file path: no "..", no hidden segments, plain characters. */
export function safeRelpath(rel: string): string {
  return rel.split("/").filter((s) => s && s !== "." && s !== "..").map((s) => {
    const clean = s.replace(/[^A-Za-z0-9._+-]/g, "_");
    return clean.startsWith(".") ? `_${clean.slice(1)}` : clean;
  }).join("/");
}

/** A logger that prefixes elapsed time. */
function timedLogger(log: (line: string) => void) {
  const t0 = performance.now();
  return (line: string) => log(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${line}`);
}

/** Rate-limited progress for one source (a line at most every `everyMs`). */
function progressFor(log: (line: string) => void, label: string, everyMs: number) {
  let last = -Infinity;
  return (message: string) => {
    const now = performance.now();
    if (now - last < everyMs) return;
    last = now;
    log(`${label}: ${message}`);
  };
}

interface DocWithMeta extends SourceDocument {
  id: string;
  source: SourceSpec;
  archive: AcquiredArchive;
  bytes: Uint8Array;
}

/**
 * Keeps a source's documents within its byte cap: documents in the order of a seeded hash of their id,
 * each taken if it still fits. The choice depends only on the seed and the documents, not on archive
 * order, and spreads over the whole tree instead of taking its alphabetical beginning.
 */
export function capSelection<T extends { id: string; bytes: Uint8Array }>(
  docs: T[],
  cap: number | undefined,
  seed: number,
): T[] {
  if (cap === undefined) return docs;
  const order = [...docs].sort((a, b) =>
    seededHash(seed, a.id) - seededHash(seed, b.id) || (a.id < b.id ? -1 : 1)
  );
  const out: T[] = [];
  let total = 0;
  for (const d of order) {
    if (total + d.bytes.length > cap) continue;
    out.push(d);
    total += d.bytes.length;
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** Why a domain needs building, or undefined when it is up to date. */
async function staleReason(
  domain: Domain,
  m: Manifest | undefined,
  hash: string,
  opts: Required<Pick<BuildOptions, "outDir" | "cacheDir">>,
  sources: SourceSpec[],
): Promise<string | undefined> {
  const entry = m?.domains[domain];
  if (!m || !entry) return "not built yet";
  if (entry.recipe_sha256 !== hash) return "its recipe changed (sources, versions, caps, seed or cleaning)";
  for (const s of sources) {
    const rec = m.sources.find((r) => r.domain === domain && r.id === s.id);
    if (!rec) return `source ${s.id} is not in the manifest`;
    const cached = await cachedArchivePath(s.archive, opts.cacheDir);
    if (cached) {
      const sha = await sha256File(cached);
      if (sha !== rec.sha256) {
        return `source ${s.id} changed: ${cached} has sha256 ${sha.slice(0, 12)}…, the manifest ${
          rec.sha256.slice(0, 12)
        }…`;
      }
    }
  }
  const problems = await verifyCorpus(opts.outDir, m, [domain]);
  if (problems.length) {
    return `${problems.length} file(s) differ from the manifest (first: ${problems[0].path}: ${
      problems[0].problem
    })`;
  }
  return undefined;
}

/** Builds (or confirms) the corpus. Never throws for a failing source: it is reported in `failures`. */
export async function buildCorpora(options: BuildOptions): Promise<BuildResult> {
  const outDir = options.outDir;
  const cacheDir = options.cacheDir ?? `${outDir}/.cache`;
  const sources = options.sources ?? SOURCES;
  const seed = options.seed ?? DEFAULT_SEED;
  const fractions = options.fractions ?? DEFAULT_FRACTIONS;
  const pins = options.pins ?? SPLIT_PINS;
  const log = timedLogger(options.log ?? ((l) => console.error(l)));
  const domains = options.domains ?? DOMAINS.filter((d) => sources.some((s) => s.domain === d));

  await Deno.mkdir(outDir, { recursive: true });
  const manifest = (await readManifest(outDir)) ?? emptyManifest();
  const previous = structuredClone(manifest);
  const reports: DomainReport[] = [];
  const failures: SourceError[] = [];
  const archives = new Map<string, Promise<AcquiredArchive>>(); // shared by sources that read the same archive
  const concurrency = options.concurrency ?? 2;
  const fetcher = options.fetcher ?? systemFetcher;
  const progressMs = options.progressMs ?? 2000;

  for (const domain of domains) {
    const t0 = performance.now();
    const own = sources.filter((s) => s.domain === domain);
    if (!own.length) throw new Error(`no sources for domain ${domain}`);
    const hash = recipeHash(domain, sources, seed, fractions, pins);
    let reason = options.force
      ? "--force"
      : await staleReason(domain, previous, hash, { outDir, cacheDir }, own);
    if (!reason && options.verifySources) {
      for (const s of own) {
        const a = await acquireArchive(s.archive, cacheDir, s.id, (w) => log(`${domain}: ${w}`), fetcher)
          .catch((e) => e);
        if (a instanceof Error) {
          reason = `could not verify ${s.id}: ${a.message}`;
          break;
        }
        const rec = previous.sources.find((r) => r.domain === domain && r.id === s.id);
        if (rec && rec.sha256 !== a.sha256) {
          reason = `source ${s.id} changed: sha256 ${rec.sha256.slice(0, 12)}… -> ${a.sha256.slice(0, 12)}…`;
          break;
        }
      }
    }
    if (!reason) {
      log(
        `${domain}: up to date (${manifest.domains[domain]!.totals.documents} documents, ${
          mb(manifest.domains[domain]!.totals.bytes)
        })`,
      );
      reports.push({ domain, status: "up-to-date", reason: "manifest matches", seconds: 0, warnings: [] });
      continue;
    }
    log(`${domain}: building (${reason})`);
    const warnings: string[] = [];
    try {
      await buildDomain(domain, own, {
        outDir,
        cacheDir,
        seed,
        fractions,
        pins,
        hash,
        log,
        warnings,
        archives,
        manifest,
        t0,
        concurrency,
        fetcher,
        progressMs,
      });
      reports.push({ domain, status: "built", reason, seconds: (performance.now() - t0) / 1000, warnings });
      await writeManifest(outDir, manifest);
    } catch (e) {
      const err = e instanceof SourceError
        ? e
        : new SourceError(`${domain} domain`, e instanceof Error ? e.message : String(e), { cause: e });
      failures.push(err);
      log(`${domain}: FAILED: ${err.message}`);
      reports.push({
        domain,
        status: "failed",
        reason: err.message,
        seconds: (performance.now() - t0) / 1000,
        warnings,
      });
    }
  }
  return { manifest, reports, failures };
}

/** Decimal megabytes (10^6 bytes), the unit of CORPORA.md and of the issue's size goals. */
const mb = (n: number) => `${(n / 1e6).toFixed(2)} MB`;

interface DomainContext {
  outDir: string;
  cacheDir: string;
  seed: number;
  fractions: { validation: number; test: number };
  pins: Record<string, Split>;
  hash: string;
  log: (line: string) => void;
  warnings: string[];
  archives: Map<string, Promise<AcquiredArchive>>;
  manifest: Manifest;
  t0: number;
  concurrency: number;
  fetcher: Fetcher;
  progressMs: number;
}

/** Maps with at most `n` calls in flight; results in input order; the first error wins. */
export async function mapPool<T, R>(items: T[], n: number, f: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await f(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(n, items.length)) }, worker));
  return out;
}

async function buildDomain(domain: Domain, own: SourceSpec[], c: DomainContext): Promise<void> {
  const enc = new TextEncoder();
  const docs: DocWithMeta[] = [];
  const perSource = new Map<string, { candidates: number; archive: AcquiredArchive }>();

  // Sources are read two at a time: the work is mostly xz decompression in child processes, so two
  // cores halve the wall time of the TeX Live and code domains. Results are combined in recipe order.
  const results = await mapPool(own, c.concurrency, async (s) => {
    const label = `${domain}: ${s.id}`;
    const warn = (w: string) => {
      c.warnings.push(`${s.id}: ${w}`);
      c.log(`${label}: warning: ${w}`);
    };
    const key = archiveKey(s.archive);
    let pending = c.archives.get(key);
    if (!pending) {
      c.log(`${label}: acquiring ${describeArchive(s.archive)}`);
      pending = acquireArchive(s.archive, c.cacheDir, s.id, warn, c.fetcher);
      c.archives.set(key, pending);
      // npm and apt-get print nothing while they download (their output is captured): say that it runs.
      const tAcquire = performance.now();
      const beat = setInterval(
        () =>
          c.log(
            `${label}: still acquiring ${describeArchive(s.archive)} (${
              ((performance.now() - tAcquire) / 1000).toFixed(0)
            } s)`,
          ),
        5 * c.progressMs,
      );
      let a: AcquiredArchive;
      try {
        a = await pending;
      } finally {
        clearInterval(beat);
      }
      c.log(
        `${label}: ${a.downloaded ? "downloaded" : "cached"} ${a.path.split("/").pop()} (${mb(a.bytes)})`,
      );
    }
    const archive = await pending;
    let read: SourceDocument[];
    const tRead = performance.now();
    try {
      read = await s.read(archive, { progress: progressFor(c.log, `${label}: reading`, c.progressMs), warn });
    } catch (e) {
      throw new SourceError(
        `${s.id} (${describeArchive(s.archive)})`,
        `reading ${archive.path}: ${e instanceof Error ? e.message : e}`,
        { cause: e },
      );
    }
    const seen = new Set<string>();
    const mine: DocWithMeta[] = [];
    for (const d of read) {
      let rel = safeRelpath(d.relpath);
      for (let n = 2; seen.has(rel); n++) rel = `${safeRelpath(d.relpath)}~${n}`;
      seen.add(rel);
      if (!d.text.trim()) continue;
      mine.push({ ...d, relpath: rel, id: `${s.id}/${rel}`, source: s, archive, bytes: enc.encode(d.text) });
    }
    const kept = capSelection(mine, s.capBytes, c.seed);
    const total = kept.reduce((n, d) => n + d.bytes.length, 0);
    c.log(
      `${label}: ${kept.length} documents, ${mb(total)}${
        s.capBytes ? ` (of ${mine.length} candidates, cap ${mb(s.capBytes)})` : ""
      } in ${((performance.now() - tRead) / 1000).toFixed(1)}s`,
    );
    return { kept, candidates: mine.length, archive };
  });
  own.forEach((s, i) => {
    perSource.set(s.id, { candidates: results[i].candidates, archive: results[i].archive });
    docs.push(...results[i].kept);
  });

  // De-duplicate across the domain's sources (recipe order = priority).
  const priority = new Map(own.map((s, i) => [s.id, i]));
  const drops = findDuplicates(
    docs.map((d) => ({ id: d.id, text: d.text, priority: priority.get(d.source.id)!, work: d.work })),
  );
  const dropped = new Set(drops.map((d) => d.id));
  for (const d of drops.slice(0, 8)) {
    c.log(`${domain}: dropped ${d.id}: ${d.reason} of ${d.duplicate_of}${d.detail ? ` (${d.detail})` : ""}`);
  }
  if (drops.length > 8) {
    const counts = new Map<string, number>();
    for (const d of drops) counts.set(d.reason, (counts.get(d.reason) ?? 0) + 1);
    c.log(
      `${domain}: dropped ${drops.length} duplicates in all (${
        [...counts].map(([r, n]) => `${n} ${r}`).join(", ")
      }; listed in the manifest)`,
    );
  }
  const final = docs.filter((d) => !dropped.has(d.id));

  // Split by document.
  const splits = assignSplits(final.map((d) => ({ id: d.id, bytes: d.bytes.length, group: d.group })), {
    seed: c.seed,
    fractions: c.fractions,
    pins: c.pins,
  });

  // Write into a staging folder, then swap it in, so an interrupted run never leaves a half-written domain.
  const staging = `${c.outDir}/.staging-${domain}`;
  await Deno.remove(staging, { recursive: true }).catch(() => {});
  const entries: ManifestDocument[] = [];
  let written = 0;
  const progress = progressFor(c.log, `${domain}: writing`, c.progressMs);
  for (const d of final) {
    const split = splits.get(d.id)!;
    const path = `${domain}/${split}/${d.id}`;
    const file = `${staging}/${split}/${d.id}`;
    await Deno.mkdir(file.slice(0, file.lastIndexOf("/")), { recursive: true });
    await Deno.writeFile(file, d.bytes);
    written++;
    progress(`${written}/${final.length} files`);
    const spec = d.archive.spec;
    entries.push({
      id: d.id,
      domain,
      source: d.source.id,
      package: spec.name,
      version: d.archive.version,
      archive: spec.kind,
      license: d.license ?? d.source.license,
      split,
      path,
      bytes: d.bytes.length,
      words: countWords(d.bytes),
      sha256: sha256Bytes(d.bytes),
      origin: d.origin,
      cleaning: d.cleaning,
      ...(d.title ? { title: d.title } : {}),
      ...(d.group ? { group: d.group } : {}),
    });
  }
  const target = `${c.outDir}/${domain}`;
  await Deno.remove(target, { recursive: true }).catch(() => {});
  await Deno.mkdir(staging, { recursive: true });
  await Deno.rename(staging, target);

  // Update the manifest's entries of this domain.
  const m = c.manifest;
  m.documents = m.documents.filter((d) => d.domain !== domain).concat(entries);
  m.dropped = m.dropped.filter((d) => d.domain !== domain).concat(
    drops.map((d): DroppedDocument => ({
      id: d.id,
      domain,
      reason: d.reason,
      duplicate_of: d.duplicate_of,
      ...(d.detail ? { detail: d.detail } : {}),
    })),
  );
  m.sources = m.sources.filter((s) => s.domain !== domain).concat(own.map((s): ManifestSource => {
    const info = perSource.get(s.id)!;
    const mine = entries.filter((e) => e.source === s.id);
    return {
      id: s.id,
      domain,
      archive: s.archive.kind,
      package: s.archive.name,
      pinned_version: s.archive.version,
      version: info.archive.version,
      file: info.archive.path.split("/").pop()!,
      sha256: info.archive.sha256,
      archive_bytes: info.archive.bytes,
      license: s.license,
      description: s.description,
      candidates: info.candidates,
      documents: mine.length,
      bytes: mine.reduce((n, e) => n + e.bytes, 0),
      ...(s.capBytes ? { cap_bytes: s.capBytes } : {}),
    };
  }));
  const { totals, splits: perSplit } = splitTotals(entries);
  m.domains[domain] = {
    recipe_sha256: c.hash,
    seed: c.seed,
    fractions: c.fractions,
    sources: own.map((s) => s.id),
    totals,
    splits: perSplit as Record<Split, typeof totals>,
    build_seconds: Math.round((performance.now() - c.t0) / 100) / 10,
    warnings: c.warnings,
  };
  const sp = perSplit;
  c.log(
    `${domain}: ${totals.documents} documents, ${mb(totals.bytes)}, ${totals.words} words ` +
      `(train ${sp.train.documents} / validation ${sp.validation.documents} / test ${sp.test.documents} documents; ` +
      `${mb(sp.train.bytes)} / ${mb(sp.validation.bytes)} / ${mb(sp.test.bytes)})`,
  );
}
