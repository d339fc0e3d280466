/** One overall deadline per test (no heavy imports: any test file can use it). */

/**
 * Runs `work` under one generous overall deadline for a whole test (tests wait on events: a line, a file,
 * a process exit; none waits a fixed time). Rejects naming `what` if the deadline passes first; `signal`
 * is aborted then, so that loops waiting on an event stop.
 */
export async function withDeadline<T>(
  what: string,
  ms: number,
  work: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const abort = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      abort.abort();
      reject(new Error(`${what}: not done within the overall limit of ${ms / 1000} s`));
    }, ms);
  });
  try {
    return await Promise.race([work(abort.signal), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `ready` until it holds (an event seen through a file or a directory), or `signal` aborts. */
export async function waitUntil(ready: () => Promise<boolean>, signal: AbortSignal): Promise<void> {
  while (!(await ready())) {
    if (signal.aborted) throw new Error("aborted");
    await new Promise((r) => setTimeout(r, 50));
  }
}
