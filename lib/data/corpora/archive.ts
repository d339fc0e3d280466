/**
 * Reading files out of archives without unpacking them to disk: npm tarballs (.tgz), Debian packages
 * (.deb, through `dpkg-deb --fsys-tarfile`) and tar streams nested inside them (linux-source's .tar.xz,
 * through `xz -dc`). Only the entries a caller selects are kept in memory; everything else streams past,
 * so a 300 MB package costs its decompression time, not its disk space.
 */
import { gunzipSync, inflateSync } from "node:zlib";

/** One regular file of a tar stream. */
export interface TarEntry {
  /** Path inside the archive without a leading "./". */
  path: string;
  size: number;
  data: Uint8Array;
}

/** Decides per path (and size) whether an entry's bytes are wanted. */
export type EntryFilter = (path: string, size: number) => boolean;

/**
 * A FIFO of byte chunks from which exact-length reads can be taken. Tar headers and file bodies straddle
 * the chunk boundaries of a pipe, so the parser asks for "exactly n bytes" or "skip n bytes".
 */
class ByteQueue {
  private chunks: Uint8Array[] = [];
  private head = 0; // read offset into chunks[0]
  private buffered = 0;
  private done = false;
  constructor(private reader: ReadableStreamDefaultReader<Uint8Array>) {}

  private async fill(n: number): Promise<boolean> {
    while (this.buffered < n && !this.done) {
      const { value, done } = await this.reader.read();
      if (done) this.done = true;
      else if (value.length) {
        this.chunks.push(value);
        this.buffered += value.length;
      }
    }
    return this.buffered >= n;
  }

  /** Exactly n bytes, or undefined at end of stream (a truncated stream throws). */
  async read(n: number): Promise<Uint8Array | undefined> {
    if (!(await this.fill(n))) {
      if (this.buffered === 0) return undefined;
      throw new Error(`truncated tar stream: wanted ${n} bytes, ${this.buffered} left`);
    }
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const c = this.chunks[0];
      const take = Math.min(n - at, c.length - this.head);
      out.set(c.subarray(this.head, this.head + take), at);
      at += take;
      this.head += take;
      if (this.head === c.length) {
        this.chunks.shift();
        this.head = 0;
      }
    }
    this.buffered -= n;
    return out;
  }

  /** Discards n bytes without copying them. */
  async skip(n: number): Promise<void> {
    let left = n;
    while (left > 0) {
      if (this.buffered === 0 && !(await this.fill(1))) {
        throw new Error(`truncated tar stream while skipping`);
      }
      const c = this.chunks[0];
      const take = Math.min(left, c.length - this.head);
      this.head += take;
      this.buffered -= take;
      left -= take;
      if (this.head === c.length) {
        this.chunks.shift();
        this.head = 0;
      }
    }
  }
}

const latin1 = new TextDecoder("latin1");
const utf8 = new TextDecoder();

function cString(b: Uint8Array, from: number, len: number): string {
  const s = b.subarray(from, from + len);
  const nul = s.indexOf(0);
  return utf8.decode(nul < 0 ? s : s.subarray(0, nul));
}

/** Tar numeric fields are octal text, or base-256 when the high bit is set (GNU, sizes >= 8 GiB). */
function tarNumber(b: Uint8Array, from: number, len: number): number {
  if (b[from] & 0x80) {
    let v = b[from] & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + b[from + i];
    return v;
  }
  const s = latin1.decode(b.subarray(from, from + len)).replace(/[\0 ]+/g, " ").trim();
  return s ? parseInt(s, 8) : 0;
}

/** pax extended header records: "len key=value\n". Only `path` and `size` matter here. */
function parsePax(data: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  const text = utf8.decode(data);
  let at = 0;
  while (at < text.length) {
    const sp = text.indexOf(" ", at);
    if (sp < 0) break;
    const len = parseInt(text.slice(at, sp), 10);
    if (!(len > 0)) break;
    // len counts bytes, but the records we use are ASCII keys with UTF-8 values: slice by line instead.
    const nl = text.indexOf("\n", sp);
    const rec = text.slice(sp + 1, nl < 0 ? text.length : nl);
    const eq = rec.indexOf("=");
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    at = nl < 0 ? text.length : nl + 1;
  }
  return out;
}

/**
 * Streams a tar archive and yields the regular files that `want` selects (ustar, GNU long names and pax
 * headers are understood; links, devices and directories are skipped).
 */
export async function* tarEntries(
  stream: ReadableStream<Uint8Array>,
  want: EntryFilter,
): AsyncGenerator<TarEntry> {
  const q = new ByteQueue(stream.getReader());
  let longName: string | undefined;
  let pax: Record<string, string> = {};
  while (true) {
    const h = await q.read(512);
    if (!h) return;
    if (h.every((x) => x === 0)) return; // end-of-archive marker
    let path = cString(h, 0, 100);
    const magic = latin1.decode(h.subarray(257, 263));
    if (magic.startsWith("ustar")) {
      const prefix = cString(h, 345, 155);
      if (prefix && magic === "ustar\0") path = `${prefix}/${path}`; // POSIX ustar (GNU uses the field otherwise)
    }
    let size = tarNumber(h, 124, 12);
    const type = String.fromCharCode(h[156] || 48);
    const padded = Math.ceil(size / 512) * 512;
    if (type === "L" || type === "x" || type === "g") {
      const body = (await q.read(padded))!.subarray(0, size);
      if (type === "L") longName = cString(body, 0, body.length);
      else if (type === "x") pax = parsePax(body);
      continue;
    }
    if (longName !== undefined) path = longName;
    if (pax.path !== undefined) path = pax.path;
    if (pax.size !== undefined) size = Number(pax.size);
    longName = undefined;
    pax = {};
    path = path.replace(/^\.\//, "");
    const body = Math.ceil(size / 512) * 512;
    const regular = type === "0" || type === "7";
    if (regular && want(path, size)) {
      const data = (await q.read(body))!.subarray(0, size);
      yield { path, size, data };
    } else {
      await q.skip(body);
    }
  }
}

/** A file as a stream, gunzipped. */
export async function gunzipFileStream(path: string): Promise<ReadableStream<Uint8Array>> {
  const f = await Deno.open(path, { read: true });
  return f.readable.pipeThrough(new DecompressionStream("gzip"));
}

/** Entries of a .tgz / .tar.gz file. */
export async function* tgzEntries(path: string, want: EntryFilter): AsyncGenerator<TarEntry> {
  yield* tarEntries(await gunzipFileStream(path), want);
}

/**
 * Runs a command whose stdout is a tar stream and yields the selected entries. The command's stderr and
 * exit status are checked once the stream ends, so a failing `dpkg-deb` is an error, not an empty archive.
 */
export async function* commandTarEntries(
  cmd: string,
  args: string[],
  want: EntryFilter,
): AsyncGenerator<TarEntry> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped", stdin: "null" }).spawn();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(`${cmd} is not installed (needed to read ${args.at(-1)})`);
    }
    throw e;
  }
  const stderr = new Response(child.stderr).text();
  let finished = false;
  try {
    yield* tarEntries(child.stdout, want);
    finished = true;
  } finally {
    if (!finished) {
      // The consumer stopped early (or parsing failed): stop the producer too.
      try {
        child.kill("SIGTERM");
      } catch { /* already exited */ }
      await child.stdout.cancel().catch(() => {});
      await child.status;
      await stderr.catch(() => {});
    }
  }
  const status = await child.status;
  const err = (await stderr).trim();
  if (!status.success) {
    throw new Error(
      `${cmd} ${args.join(" ")} exited with ${status.code}${err ? `: ${err.slice(-500)}` : ""}`,
    );
  }
}

/** Entries of a Debian package's data archive (no installation; needs dpkg-deb, present on Debian). */
export function debEntries(debPath: string, want: EntryFilter): AsyncGenerator<TarEntry> {
  return commandTarEntries("dpkg-deb", ["--fsys-tarfile", debPath], want);
}

/**
 * Entries of a .tar.xz stored inside a .deb (linux-source ships its tree that way). Runs
 * `dpkg-deb --fsys-tarfile | tar -xO member | xz -dc` in a shell: xz is the fastest decoder available.
 */
export function debNestedTarXzEntries(
  debPath: string,
  member: string,
  want: EntryFilter,
): AsyncGenerator<TarEntry> {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const script = `set -o pipefail; dpkg-deb --fsys-tarfile ${q(debPath)} | tar -xOf - ${q(member)} | xz -dc`;
  return commandTarEntries("bash", ["-c", script], want);
}

/** gunzip of bytes in memory (.tex.gz inside a package). */
export function gunzipBytes(data: Uint8Array): Uint8Array {
  return new Uint8Array(gunzipSync(data));
}

/**
 * zlib (RFC 1950) inflate in memory (R's lazy-load databases, SWORD modules). node:zlib rather than
 * DecompressionStream: SWORD's blocks carry padding after the zlib stream, which the stream API rejects.
 */
export function inflateBytes(data: Uint8Array): Uint8Array {
  return new Uint8Array(inflateSync(data));
}
