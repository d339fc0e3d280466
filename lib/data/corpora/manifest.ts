/**
 * The corpus manifest (data/corpora/manifest.json): per document its domain, source package and version,
 * licence, split, bytes, words and sha256; per source the archive's sha256; per domain the recipe hash
 * that decides whether a re-run has anything to do. Reading, writing (atomically) and verifying it.
 */
import { atomicWriteFile } from "../../io/atomic.ts";
import { describeFsError, InputError } from "../../io/errors.ts";
import { sha256Bytes } from "./acquire.ts";
import {
  type Domain,
  DOMAINS,
  type Manifest,
  type ManifestDocument,
  SPLITS,
  type SplitTotals,
} from "./types.ts";

export const MANIFEST_FILE = "manifest.json";

export function emptyManifest(): Manifest {
  return { format: "mambabyte-corpora", version: 1, domains: {}, sources: [], documents: [], dropped: [] };
}

/**
 * The manifest of a corpus folder, or undefined when there is none. A malformed or unreadable file is an
 * `InputError` naming it.
 */
export async function readManifest(dir: string): Promise<Manifest | undefined> {
  const path = `${dir}/${MANIFEST_FILE}`;
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw new InputError(path, undefined, `${path}: cannot read the manifest: ${describeFsError(e)}`);
  }
  let m: Manifest;
  try {
    m = JSON.parse(text);
  } catch (e) {
    throw new InputError(
      path,
      undefined,
      `${path}: not valid JSON (${
        e instanceof Error ? e.message : e
      }); remove it and run \`deno task data\` to rebuild the corpus`,
    );
  }
  if (
    !m || typeof m !== "object" || m.format !== "mambabyte-corpora" || m.version !== 1 ||
    !Array.isArray(m.documents) || typeof m.domains !== "object" || !m.domains
  ) {
    throw new InputError(
      path,
      undefined,
      `${path}: not a version-1 mambabyte-corpora manifest; remove it and run \`deno task data\` to rebuild the corpus`,
    );
  }
  return m;
}

/** Sorts everything so that the same corpus always serialises to the same bytes. */
export function canonicalManifest(m: Manifest): Manifest {
  const dOrder = (d: Domain) => DOMAINS.indexOf(d);
  const byDomainId = <T extends { domain: Domain; id: string }>(a: T, b: T) =>
    dOrder(a.domain) - dOrder(b.domain) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  const domains: Manifest["domains"] = {};
  for (const d of DOMAINS) if (m.domains[d]) domains[d] = m.domains[d];
  return {
    format: "mambabyte-corpora",
    version: 1,
    domains,
    sources: [...m.sources].sort(byDomainId),
    documents: [...m.documents].sort(byDomainId),
    dropped: [...m.dropped].sort(byDomainId),
  };
}

export async function writeManifest(dir: string, m: Manifest): Promise<void> {
  await atomicWriteFile(`${dir}/${MANIFEST_FILE}`, JSON.stringify(canonicalManifest(m), null, 1) + "\n", {
    createParents: true,
  });
}

/** Totals per split and overall for a list of documents. */
export function splitTotals(
  docs: ManifestDocument[],
): { totals: SplitTotals; splits: Record<string, SplitTotals> } {
  const zero = (): SplitTotals => ({ documents: 0, bytes: 0, words: 0 });
  const totals = zero();
  const splits = Object.fromEntries(SPLITS.map((s) => [s, zero()])) as Record<string, SplitTotals>;
  for (const d of docs) {
    for (const t of [totals, splits[d.split]]) {
      t.documents++;
      t.bytes += d.bytes;
      t.words += d.words;
    }
  }
  return { totals, splits };
}

export interface VerifyProblem {
  path: string;
  problem: string;
}

/**
 * Checks the manifest's documents against the files: each exists with the recorded size and sha256, no
 * document is listed twice or in two splits, and (with `strict`) no unlisted file sits in a split folder.
 */
export async function verifyCorpus(
  dir: string,
  m: Manifest,
  domains?: Domain[],
  strict = true,
): Promise<VerifyProblem[]> {
  const problems: VerifyProblem[] = [];
  const want = new Set(domains ?? DOMAINS);
  const docs = m.documents.filter((d) => want.has(d.domain));
  const ids = new Map<string, string>();
  for (const d of docs) {
    const key = `${d.domain}/${d.id}`;
    if (ids.has(key)) {
      problems.push({
        path: d.path,
        problem: `document ${key} listed twice (${ids.get(key)} and ${d.split})`,
      });
    }
    ids.set(key, d.split);
    if (d.path !== `${d.domain}/${d.split}/${d.id}`) {
      problems.push({
        path: d.path,
        problem: `path does not match domain/split/id (${d.domain}/${d.split}/${d.id})`,
      });
    }
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(`${dir}/${d.path}`);
    } catch {
      problems.push({ path: d.path, problem: "missing" });
      continue;
    }
    if (bytes.length !== d.bytes) {
      problems.push({ path: d.path, problem: `size ${bytes.length}, manifest says ${d.bytes}` });
    } else if (sha256Bytes(bytes) !== d.sha256) {
      problems.push({ path: d.path, problem: "sha256 differs from the manifest" });
    }
  }
  if (strict) {
    const listed = new Set(docs.map((d) => d.path));
    for (const domain of want) {
      if (!m.domains[domain]) continue;
      for (const split of SPLITS) {
        for (const f of await listFiles(`${dir}/${domain}/${split}`)) {
          const rel = `${domain}/${split}/${f}`;
          if (!listed.has(rel)) problems.push({ path: rel, problem: "file not in the manifest" });
        }
      }
    }
  }
  return problems;
}

/** Files below a folder, relative to it, sorted (hidden entries skipped, as readSplit does). */
export async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, rel: string) => {
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(d)];
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.name.startsWith(".")) continue;
      if (e.isDirectory) await walk(`${d}/${e.name}`, `${rel}${e.name}/`);
      else if (e.isFile) out.push(`${rel}${e.name}`);
    }
  };
  await walk(dir, "");
  return out.sort();
}
