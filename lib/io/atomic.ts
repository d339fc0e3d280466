/**
 * Atomic file writes: the destination either keeps its old content or gets the complete new content,
 * never a partial file. We write to a temporary file in the SAME directory (rename is only atomic within
 * one file system), flush it to disk, then rename it over the destination. Any failure removes the
 * temporary file, so a crash-free failure leaves nothing behind.
 */
import { describeFsError, FileWriteError, InputError } from "./errors.ts";

export interface AtomicWriteOptions {
  /** Create missing parent directories first (default false: a missing directory is an error). */
  createParents?: boolean;
  /** Permission bits of the new file (default: 0o644, subject to the umask). */
  mode?: number;
}

/** Writes `data` (bytes, or a string as UTF-8) to `path` atomically. */
export async function atomicWriteFile(
  path: string,
  data: Uint8Array | string,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  await withAtomicFile(path, (file) => writeAll(file, bytes), options);
}

/**
 * Opens a fresh temporary file next to `path`, lets `write` fill it (for outputs too big to build in
 * memory first), then syncs and renames it to `path`. If `write` throws, the temporary file is removed and
 * the error is re-thrown unchanged when it is already an `InputError`, else wrapped in a `FileWriteError`.
 */
export async function withAtomicFile(
  path: string,
  write: (file: Deno.FsFile) => Promise<void>,
  options: AtomicWriteOptions = {},
): Promise<void> {
  if (options.createParents) {
    const dir = parentDir(path);
    try {
      await Deno.mkdir(dir, { recursive: true });
    } catch (err) {
      throw new FileWriteError(path, `${path}: cannot create directory ${dir}: ${describeFsError(err)}`, {
        cause: err,
      });
    }
  }
  const tmp = `${path}.tmp-${randomSuffix()}`;
  let file: Deno.FsFile;
  try {
    // createNew: never clobber a file we did not create (e.g. a concurrent writer's temp file).
    file = await Deno.open(tmp, { write: true, createNew: true, mode: options.mode ?? 0o644 });
  } catch (err) {
    throw new FileWriteError(path, `${path}: cannot write: ${describeFsError(err)}`, { cause: err });
  }
  let closed = false;
  try {
    await write(file);
    // Flush data before the rename, otherwise a power loss could leave the renamed file empty.
    await file.sync();
    file.close();
    closed = true;
    await Deno.rename(tmp, path);
  } catch (err) {
    if (!closed) {
      try {
        file.close();
      } catch { /* already closed by `write` */ }
    }
    await Deno.remove(tmp).catch(() => {});
    if (err instanceof InputError) throw err;
    throw new FileWriteError(path, `${path}: cannot write: ${describeFsError(err)}`, { cause: err });
  }
  await syncDirectory(parentDir(path));
}

/** Writes every byte of `bytes` (FsFile.write may write fewer bytes than asked). */
export async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    done += await file.write(bytes.subarray(done));
  }
}

/** The directory part of a path ("." when there is none). */
export function parentDir(path: string): string {
  const i = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  if (i < 0) return ".";
  if (i === 0) return "/";
  return path.slice(0, i);
}

function randomSuffix(): string {
  const b = crypto.getRandomValues(new Uint8Array(6));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/**
 * Makes the rename itself durable (POSIX keeps directory entries in the directory's own data). Best
 * effort: some platforms (Windows) cannot open a directory, and the write already succeeded.
 */
async function syncDirectory(dir: string): Promise<void> {
  try {
    const d = await Deno.open(dir, { read: true });
    try {
      await d.sync();
    } finally {
      d.close();
    }
  } catch { /* not supported here: the data is written, only durability of the rename is weaker */ }
}

/**
 * Checks that files can be created and removed in the existing directory `dir` (by creating and removing
 * a probe file), so that a long job fails before it starts rather than when it saves. Throws a
 * `FileWriteError` naming the directory (and `hint`, what to do) otherwise.
 */
export async function checkWritableDir(dir: string, what: string, hint?: string): Promise<void> {
  const probe = `${dir}/.write-probe-${Deno.pid}-${randomSuffix()}`;
  try {
    (await Deno.open(probe, { write: true, createNew: true })).close();
    await Deno.remove(probe);
  } catch (err) {
    await Deno.remove(probe).catch(() => {});
    throw new FileWriteError(
      dir,
      `${dir}: cannot write in the ${what}: ${describeFsError(err)}${hint ? `; ${hint}` : ""}`,
      { cause: err },
    );
  }
}

/** True when something exists at `path` (a file, directory or link). */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}
