/**
 * What the data notebook shows: where the text comes from at a given scale (the tracked sample, or the
 * corpus built by `deno task data`), per-domain document / byte / word counts, and byte frequencies.
 */
import { DATA_DIR } from "../paths.ts";
import { countWords, listSplitFiles, readSplit } from "./bytes.ts";
import { readManifest } from "./corpora/manifest.ts";
import { type Domain, DOMAINS, type Manifest, type Split, SPLITS } from "./corpora/types.ts";

export interface DataLocation {
  kind: "sample" | "corpora";
  /** Folder holding <domain>/<split>/ and manifest.json. */
  dir: string;
  domains: Domain[];
  manifest?: Manifest;
  /** One sentence saying what is used and, when the corpus is missing, how to get it. */
  note: string;
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await Deno.stat(p)).isDirectory;
  } catch {
    return false;
  }
}

async function domainsIn(dir: string): Promise<Domain[]> {
  const out: Domain[] = [];
  for (const d of DOMAINS) if (await isDir(`${dir}/${d}/train`)) out.push(d);
  return out;
}

/**
 * The data to use at a scale: `smoke` always uses the tracked sample (no download, seconds); `small` and
 * `gpu` use data/corpora when its manifest exists, else fall back to the sample and say how to build it.
 * `dataDir` is the repository's data/ folder (notebooks run in notebooks/, so "../data").
 */
export async function dataLocation(scale: string, dataDir = DATA_DIR): Promise<DataLocation> {
  const sample = `${dataDir}/samples`;
  if (scale !== "smoke") {
    const corpora = `${dataDir}/corpora`;
    const manifest = await readManifest(corpora).catch(() => undefined);
    if (manifest) {
      const domains = (await domainsIn(corpora)).filter((d) => manifest.domains[d]);
      if (domains.length) {
        return {
          kind: "corpora",
          dir: corpora,
          domains,
          manifest,
          note: `scale ${scale}: the corpus in ${corpora} (built by deno task data)`,
        };
      }
    }
    return {
      kind: "sample",
      dir: sample,
      domains: await domainsIn(sample),
      manifest: await readManifest(sample).catch(() => undefined),
      note:
        `scale ${scale}: ${corpora} is missing, so the tracked sample is used; run \`deno task data\` (~650 MB of downloads, cached in data/corpora/.cache; building from the cache takes under a minute) for the full corpora`,
    };
  }
  return {
    kind: "sample",
    dir: sample,
    domains: await domainsIn(sample),
    manifest: await readManifest(sample).catch(() => undefined),
    note: `scale smoke: the tracked sample in ${sample} (no download)`,
  };
}

export interface DomainRow {
  domain: Domain;
  split: Split | "all";
  documents: number;
  bytes: number;
  words: number;
  bytes_per_word: number;
}

/** Documents, bytes and words per split of each domain (counted from the files). */
export async function domainSummary(loc: DataLocation): Promise<DomainRow[]> {
  const rows: DomainRow[] = [];
  for (const domain of loc.domains) {
    const all = { documents: 0, bytes: 0, words: 0 };
    for (const split of SPLITS) {
      const dir = `${loc.dir}/${domain}/${split}`;
      if (!(await isDir(dir))) continue;
      const files = await listSplitFiles(dir);
      let bytes = 0, words = 0;
      for (const f of files) {
        const b = await Deno.readFile(f);
        bytes += b.length;
        words += countWords(b);
      }
      rows.push({
        domain,
        split,
        documents: files.length,
        bytes,
        words,
        bytes_per_word: bytes / Math.max(1, words),
      });
      all.documents += files.length;
      all.bytes += bytes;
      all.words += words;
    }
    rows.push({ domain, split: "all", ...all, bytes_per_word: all.bytes / Math.max(1, all.words) });
  }
  return rows;
}

/** Counts of each byte value. */
export function byteHistogram(bytes: Uint8Array): Float64Array {
  const h = new Float64Array(256);
  for (let i = 0; i < bytes.length; i++) h[bytes[i]]++;
  return h;
}

/** A split of a domain as one byte array (documents joined as readSplit does). */
export function readDomainSplit(loc: DataLocation, domain: Domain, split: Split): Promise<Uint8Array> {
  return readSplit(`${loc.dir}/${domain}/${split}`);
}
