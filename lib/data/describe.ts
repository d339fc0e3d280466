/**
 * What the data notebook shows: where the text comes from at a given scale (the tracked sample, or the
 * corpus built by `deno task data`), per-domain document / byte / word counts, and byte frequencies.
 */
import { DATA_DIR } from "../paths.ts";
import { InputError } from "../io/errors.ts";
import { countWords, joinDocuments, listSplitFiles, readDocuments } from "./bytes.ts";
import { sha256Bytes } from "./corpora/acquire.ts";
import { MANIFEST_FILE, readManifest } from "./corpora/manifest.ts";
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

/** Data folders whose fallback to the sample was already announced (once per process). */
const announced = new Set<string>();

/**
 * The data to use at a scale: `smoke` always uses the tracked sample (no download, seconds); `small` and
 * `gpu` use data/corpora when its manifest exists, else (no corpus was ever built) fall back to the sample
 * and say so on stderr, with how to build it. A corrupt manifest, or built domains without a manifest, are
 * errors naming the file: a damaged corpus never silently turns into the 1.3 MB sample.
 * `dataDir` is the repository's data/ folder (notebooks run in notebooks/, so "../data").
 */
export async function dataLocation(scale: string, dataDir = DATA_DIR): Promise<DataLocation> {
  const sample = `${dataDir}/samples`;
  if (scale !== "smoke") {
    const corpora = `${dataDir}/corpora`;
    const manifest = await readManifest(corpora);
    const built = await domainsIn(corpora);
    if (manifest) {
      const listed = Object.keys(manifest.domains) as Domain[];
      const domains = built.filter((d) => manifest.domains[d]);
      if (domains.length) {
        return {
          kind: "corpora",
          dir: corpora,
          domains,
          manifest,
          note: `scale ${scale}: the corpus in ${corpora} (built by deno task data)`,
        };
      }
      if (listed.length) {
        throw new InputError(
          `${corpora}/${MANIFEST_FILE}`,
          undefined,
          `${corpora}/${MANIFEST_FILE}: lists ${
            listed.join(", ")
          }, but none of their folders exist in ${corpora}; run \`deno task data\` to rebuild them`,
        );
      }
    } else if (built.length) {
      throw new InputError(
        `${corpora}/${MANIFEST_FILE}`,
        undefined,
        `${corpora}/${MANIFEST_FILE}: missing, but ${corpora} holds built domains (${
          built.join(", ")
        }); run \`deno task data\` to rebuild it (or remove ${corpora} to use the tracked sample)`,
      );
    }
    const note =
      `scale ${scale}: ${corpora} was never built, so the tracked sample (${sample}) is used; run \`deno task data\` (~650 MB of downloads, cached in data/corpora/.cache; building from the cache takes under a minute) for the full corpora`;
    if (!announced.has(dataDir)) {
      announced.add(dataDir);
      console.error(note);
    }
    return {
      kind: "sample",
      dir: sample,
      domains: await domainsIn(sample),
      manifest: await readManifest(sample),
      note,
    };
  }
  return {
    kind: "sample",
    dir: sample,
    domains: await domainsIn(sample),
    manifest: await readManifest(sample),
    note: `scale smoke: the tracked sample in ${sample} (no download)`,
  };
}

/** Files already checked against the manifest in this process, with the size, mtime and hash then seen. */
const checked = new Map<string, { size: number; mtime: number; sha256: string }>();

/**
 * A split of a domain as one byte array (documents joined as readSplit does), checked against the
 * location's manifest: every file must be listed, every listed file present, each with the recorded size
 * (compared on every read) and sha256 (computed once per file per process, and again when its size or
 * mtime changed). A difference is an `InputError` naming the file and saying how to check the corpus.
 */
export async function readCheckedSplit(loc: DataLocation, domain: Domain, split: Split): Promise<Uint8Array> {
  return joinDocuments((await readCheckedDocuments(loc, domain, split)).map((d) => d.bytes));
}

/**
 * The documents of a split (`readDocuments` order: what `readCheckedSplit` joins), each checked against the
 * manifest as `readCheckedSplit` says.
 */
export async function readCheckedDocuments(
  loc: DataLocation,
  domain: Domain,
  split: Split,
): Promise<{ path: string; bytes: Uint8Array }[]> {
  const dir = `${loc.dir}/${domain}/${split}`;
  if (!loc.manifest) return await readDocuments(dir);
  const manifestPath = `${loc.dir}/${MANIFEST_FILE}`;
  const fix = loc.kind === "corpora"
    ? "run `deno task data --check` (and `deno task data` to rebuild what changed)"
    : `restore the tracked sample (git checkout -- ${loc.dir})`;
  const bad = (file: string, problem: string) =>
    new InputError(file, undefined, `${file}: ${problem}; ${fix}`);
  const listed = new Map(
    loc.manifest.documents.filter((d) => d.domain === domain && d.split === split).map((d) => [
      `${loc.dir}/${d.path}`,
      d,
    ]),
  );
  const files = await listSplitFiles(dir);
  for (const f of files) {
    if (!listed.has(f)) throw bad(f, `not listed in ${manifestPath} (the corpus changed since it was built)`);
  }
  const present = new Set(files);
  for (const f of listed.keys()) if (!present.has(f)) throw bad(f, `listed in ${manifestPath} but missing`);
  const parts: { path: string; bytes: Uint8Array }[] = [];
  for (const f of files) {
    const doc = listed.get(f)!;
    const st = await Deno.stat(f);
    const bytes = st.size === doc.bytes ? await Deno.readFile(f) : undefined;
    if (!bytes || bytes.length !== doc.bytes) {
      throw bad(
        f,
        `${bytes?.length ?? st.size} bytes, but ${manifestPath} says ${doc.bytes} (modified or truncated)`,
      );
    }
    const mtime = st.mtime?.getTime() ?? -1;
    const seen = checked.get(f);
    if (!seen || seen.size !== st.size || seen.mtime !== mtime || seen.sha256 !== doc.sha256) {
      if (sha256Bytes(bytes) !== doc.sha256) {
        throw bad(f, `its sha256 differs from ${manifestPath} (modified)`);
      }
      checked.set(f, { size: st.size, mtime, sha256: doc.sha256 });
    }
    parts.push({ path: f, bytes });
  }
  return parts;
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

/** A split of a domain as one byte array (documents joined as readSplit does), checked (`readCheckedSplit`). */
export function readDomainSplit(loc: DataLocation, domain: Domain, split: Split): Promise<Uint8Array> {
  return readCheckedSplit(loc, domain, split);
}
