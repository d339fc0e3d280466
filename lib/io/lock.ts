/**
 * Advisory locks on directories (a training run's directory): one process at a time may use it.
 *
 * The lock is a file (`run.lock`) holding the owner's pid, host, start time and a random token. It is
 * created atomically: written completely under a temporary name, then hard-linked to its final name, which
 * fails when the name exists, so a reader never sees a half-written lock and two processes never both
 * create it. A lock whose pid is dead on this host (or whose pid now belongs to a process started after
 * the lock was taken) is stale and is replaced. Checking and replacing happen under an flock of the
 * directory itself, so two processes cannot both judge one stale lock and both take over.
 *
 * Advisory: every process of the lab takes it (the trainer, `train`, `reproduce`); nothing stops a tool
 * that does not ask.
 */
import { describeFsError, FileWriteError, InputError } from "./errors.ts";

export const LOCK_FILE = "run.lock";

export interface LockInfo {
  pid: number;
  host: string;
  /** ISO time the lock was taken. */
  started: string;
  /** Random: tells this lock from a later one of a re-used pid. */
  token: string;
  /** What holds it (e.g. the command line). */
  command?: string;
}

/** Another live process holds the lock. */
export class LockHeldError extends InputError {
  constructor(readonly dir: string, readonly holder: LockInfo) {
    super(
      `${dir}/${LOCK_FILE}`,
      undefined,
      `${dir} is in use by process ${holder.pid} on ${holder.host} (since ${holder.started}); ` +
        `wait for it to finish or stop it: two processes cannot share a run directory`,
    );
    this.name = "LockHeldError";
  }
}

export interface DirLock {
  readonly dir: string;
  readonly path: string;
  readonly info: LockInfo;
  /** Removes the lock file if it is still this lock's (idempotent). */
  release(): Promise<void>;
}

function randomHex(bytes: number): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (x) => x.toString(16).padStart(2, "0"))
    .join("");
}

/** The start time of a process (ms since the epoch) on Linux; undefined elsewhere or when unknown. */
function processStart(pid: number): number | undefined {
  if (Deno.build.os !== "linux") return undefined;
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // fields after the command (which may hold spaces) start after the last ")"; starttime is field 22
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[19]);
    const btime = Number(/^btime (\d+)$/m.exec(Deno.readTextFileSync("/proc/stat"))?.[1]);
    if (!Number.isFinite(ticks) || !Number.isFinite(btime)) return undefined;
    return (btime + ticks / 100) * 1000; // USER_HZ is 100 on Linux
  } catch {
    return undefined;
  }
}

/** Whether the holder of `info` may still be running (true when it cannot be told: another host). */
export function holderAlive(info: LockInfo): boolean {
  if (info.host !== Deno.hostname()) return true;
  try {
    Deno.kill(info.pid, 0 as unknown as Deno.Signal);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false; // ESRCH: no such process
    // EPERM: alive, another user's
  }
  // a pid re-used by a process that started after the lock was taken does not hold it
  const start = processStart(info.pid);
  if (start !== undefined && start > Date.parse(info.started) + 2000) return false;
  return true;
}

/** Whether a process of this host with this pid is alive (for files named by their owner's pid). */
export function pidAlive(pid: number): boolean {
  if (pid === Deno.pid) return true;
  try {
    Deno.kill(pid, 0 as unknown as Deno.Signal);
    return true;
  } catch (e) {
    return !(e instanceof Deno.errors.NotFound);
  }
}

async function readLock(path: string): Promise<LockInfo | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw new InputError(path, undefined, `${path}: cannot read the lock file: ${describeFsError(e)}`);
  }
  try {
    const info = JSON.parse(text) as LockInfo;
    if (Number.isInteger(info.pid) && typeof info.host === "string" && typeof info.token === "string") {
      return info;
    }
  } catch { /* reported below */ }
  throw new InputError(
    path,
    undefined,
    `${path}: not a lock file of this lab; remove it if no process is using ${
      path.slice(0, -LOCK_FILE.length - 1)
    }`,
  );
}

/** Creates the lock file atomically; false when it exists. */
async function createLock(path: string, info: LockInfo): Promise<boolean> {
  const tmp = `${path}.tmp-${Deno.pid}-${randomHex(4)}`;
  try {
    await Deno.writeTextFile(tmp, JSON.stringify(info) + "\n", { createNew: true });
  } catch (e) {
    throw new FileWriteError(path, `${path}: cannot create the lock file: ${describeFsError(e)}`, {
      cause: e,
    });
  }
  try {
    await Deno.link(tmp, path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) return false;
    throw new FileWriteError(path, `${path}: cannot create the lock file: ${describeFsError(e)}`, {
      cause: e,
    });
  } finally {
    await Deno.remove(tmp).catch(() => {});
  }
}

/**
 * Takes the lock of `dir` (which must exist), or throws `LockHeldError` naming the live holder. Release it
 * with `release()` (a process that dies leaves a stale lock, which the next taker replaces).
 */
export async function acquireDirLock(dir: string, command?: string): Promise<DirLock> {
  const path = `${dir}/${LOCK_FILE}`;
  const info: LockInfo = {
    pid: Deno.pid,
    host: Deno.hostname(),
    started: new Date().toISOString(),
    token: randomHex(8),
    ...(command ? { command } : {}),
  };
  // serialise check-and-replace with other lab processes (best effort: not every platform can lock a
  // directory; the atomic link alone still keeps two creators apart)
  let guard: Deno.FsFile | undefined;
  try {
    guard = await Deno.open(dir, { read: true });
    await guard.lock(true);
  } catch {
    guard?.close();
    guard = undefined;
  }
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      if (await createLock(path, info)) {
        return {
          dir,
          path,
          info,
          release: async () => {
            const now = await readLock(path).catch(() => undefined);
            if (now?.token === info.token) await Deno.remove(path).catch(() => {});
          },
        };
      }
      const holder = await readLock(path);
      if (!holder) continue; // released in the meantime
      if (holderAlive(holder)) throw new LockHeldError(dir, holder);
      // stale: its process is gone
      try {
        await Deno.remove(path);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) {
          throw new FileWriteError(
            path,
            `${path}: cannot remove the stale lock of process ${holder.pid}: ${describeFsError(e)}`,
            { cause: e },
          );
        }
      }
    }
    throw new InputError(path, undefined, `${path}: could not take the lock (it keeps changing)`);
  } finally {
    if (guard) {
      try {
        await guard.unlock();
      } finally {
        guard.close();
      }
    }
  }
}
