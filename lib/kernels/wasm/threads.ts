/**
 * A gang of worker threads that run WebAssembly kernels on shared memories: the training kernels' pool
 * (pool.ts, one memory) and the decoding stepper (lib/decode/stepper.ts, one gang per stepper over its
 * memories, each product of a step split by rows) both run their threads through it.
 *
 * Every thread (the caller and each worker) instantiates the kernel modules on every memory it is given,
 * so a job names a memory, a kernel and up to ARGS integer arguments (byte addresses, counts). The control
 * words live in a SharedArrayBuffer of their own, not in the memories, so any number of memories, each up
 * to the full 2 GiB, can be served. `run` hands job k > 0 to worker k - 1, runs job 0 itself, and returns
 * when all are done.
 *
 * Waiting: a worker that finished a job spins for SPIN_MS on its sequence word before it sleeps in
 * Atomics.wait, and the caller spins likewise on a worker's done word: a decoding step posts hundreds of
 * jobs of tens of microseconds, so a futex wake per job (tens of microseconds on a busy machine) would
 * cost as much as the work, while an unbounded spin (as llama.cpp's threads do) collapses when another
 * process competes for the cores. Workers are unref'd (they never keep a process alive); `close` ends them.
 */
import { Worker } from "node:worker_threads";

/** Integer arguments a job can pass to its kernel. */
export const ARGS = 11;
/** Control words per worker: seq, memory, fn, ARGS arguments, done, error (one 64-byte cache line). */
const WORDS = 16;
const SEQ = 0, MEM = 1, FN = 2, ARG0 = 3, DONE = 14, ERROR = 15;
/** How long a thread spins for the next job or a worker's completion before it sleeps. */
const SPIN_MS = 0.2;
/**
 * A job not done after this long means its worker died (an out-of-memory error kills a worker without
 * reaching its error word): the caller stops waiting and says so. Decoding's jobs take milliseconds.
 */
const JOB_TIMEOUT_MS = 120_000;

/** A kernel a job can run: [index of the module, name of its export]. */
export type KernelName = readonly [module: number, name: string];
type Kernel = (...args: number[]) => void;

/** Threads alive in all gangs (tests check that `close` ends them). */
let liveWorkers = 0;
export function liveKernelThreads(): number {
  return liveWorkers;
}

// The worker's program: instantiate every module on every memory, then run jobs as they are posted.
const WORKER_SOURCE = `
const { workerData } = require("node:worker_threads");
const { modules, memories, kernels, control, base } = workerData;
const fns = memories.map((memory) => {
  const inst = modules.map((m) => new WebAssembly.Instance(m, { env: { memory } }).exports);
  return kernels.map(([m, name]) => inst[m][name]);
});
const w = new Int32Array(control);
let seq = 0;
Atomics.store(w, base + ${DONE}, 0);
Atomics.notify(w, base + ${DONE});
for (;;) {
  const until = performance.now() + ${SPIN_MS};
  while (Atomics.load(w, base) === seq && performance.now() < until);
  if (Atomics.load(w, base) === seq) Atomics.wait(w, base, seq);
  seq = Atomics.load(w, base);
  let error = 0;
  try {
    const a = base + ${ARG0};
    fns[w[base + ${MEM}]][w[base + ${FN}]](w[a], w[a + 1], w[a + 2], w[a + 3], w[a + 4], w[a + 5], w[a + 6],
      w[a + 7], w[a + 8], w[a + 9], w[a + 10]);
  } catch (e) {
    error = 1;
  }
  Atomics.store(w, base + ${ERROR}, error);
  Atomics.store(w, base + ${DONE}, seq);
  Atomics.notify(w, base + ${DONE});
}
`;

export class KernelThreads {
  /** The caller's own instances: local[memory][kernel]. */
  private local: Kernel[][];
  private control: Int32Array;
  private workers: { worker: Worker; base: number; seq: number }[] = [];
  /** Why workers could not start (then every job list runs on the calling thread), or undefined. */
  failure?: string;
  /** Set by `close`: every job list runs on the calling thread from then on. */
  private closed = false;

  /**
   * `threads`: the most threads a job list may use (the caller included); workers start on first use.
   */
  constructor(
    private modules: WebAssembly.Module[],
    private memories: WebAssembly.Memory[],
    private kernels: readonly KernelName[],
    readonly threads: number,
  ) {
    if (!Number.isInteger(threads) || threads < 1) throw new Error(`threads must be >= 1, got ${threads}`);
    this.local = memories.map((memory) => {
      const inst = modules.map((m) => new WebAssembly.Instance(m, { env: { memory } }).exports);
      return kernels.map(([m, name]) => inst[m][name] as unknown as Kernel);
    });
    this.control = new Int32Array(new SharedArrayBuffer(WORDS * 4 * Math.max(1, threads - 1)));
  }

  /** Threads a job list may use now: `threads`, or 1 once workers have failed to start. */
  get usable(): number {
    return this.failure || this.closed ? 1 : this.threads;
  }

  /** Worker threads running now (started on demand). */
  get workerCount(): number {
    return this.workers.length;
  }

  /**
   * Starts workers up to `count` (at most threads - 1; `run` does it itself); false (and one thread from
   * then on) if they cannot.
   */
  start(count: number): boolean {
    if (count > this.threads - 1) throw new Error(`${count + 1} threads asked of a gang of ${this.threads}`);
    if (this.failure || this.closed) return false;
    const w = this.control;
    while (this.workers.length < count) {
      const base = WORDS * this.workers.length;
      Atomics.store(w, base + SEQ, 0);
      Atomics.store(w, base + DONE, -1); // the worker writes 0 once it is ready
      let worker: Worker;
      try {
        worker = new Worker(WORKER_SOURCE, {
          eval: true,
          workerData: {
            modules: this.modules,
            memories: this.memories,
            kernels: this.kernels,
            control: w.buffer,
            base,
          },
        });
        worker.unref();
        worker.on("error", () => {}); // a failure shows up as the timeout below or in the error word
      } catch (err) {
        this.failure = `could not start a worker thread: ${(err as Error).message}`;
        return false;
      }
      liveWorkers++;
      this.workers.push({ worker, base, seq: 0 });
      const deadline = performance.now() + 30_000;
      while (Atomics.load(w, base + DONE) !== 0) {
        if (performance.now() > deadline) {
          this.failure = "a kernel worker thread did not start within 30 s";
          this.close();
          return false;
        }
        Atomics.wait(w, base + DONE, -1, 100);
      }
    }
    return true;
  }

  /**
   * Runs kernel `fn` on memory `mem` once per argument list: the first here, the others on workers; returns
   * when all are done. At most `usable` lists; a trap in any of them is rethrown here.
   */
  run(mem: number, fn: number, jobs: number[][]): void {
    const kernel = this.local[mem][fn];
    if (jobs.length > 1 && !this.start(jobs.length - 1)) {
      for (const args of jobs) kernel(...args);
      return;
    }
    const w = this.control;
    for (let k = 1; k < jobs.length; k++) {
      const slot = this.workers[k - 1], b = slot.base;
      w[b + MEM] = mem;
      w[b + FN] = fn;
      w.set(jobs[k], b + ARG0);
      slot.seq = (slot.seq + 1) | 0;
      Atomics.store(w, b + SEQ, slot.seq);
      Atomics.notify(w, b + SEQ);
    }
    let failure: unknown;
    try {
      kernel(...jobs[0]);
    } catch (err) {
      failure = err;
    }
    for (let k = 1; k < jobs.length; k++) {
      const slot = this.workers[k - 1], b = slot.base;
      const until = performance.now() + SPIN_MS;
      while (Atomics.load(w, b + DONE) !== slot.seq && performance.now() < until);
      let v: number;
      const deadline = performance.now() + JOB_TIMEOUT_MS;
      while ((v = Atomics.load(w, b + DONE)) !== slot.seq) {
        if (performance.now() > deadline) {
          this.failure = `a kernel worker thread did not finish a job within ${JOB_TIMEOUT_MS / 1000} s`;
          this.close();
          throw new Error(`${this.failure}: it died (out of memory?); one thread from now on`);
        }
        Atomics.wait(w, b + DONE, v, 1000);
      }
      if (w[b + ERROR] !== 0) failure ??= new Error("a WebAssembly kernel failed in a worker thread");
    }
    if (failure) throw failure;
  }

  /** Ends the workers: job lists run on the calling thread from then on. */
  close(): void {
    this.closed = true;
    for (const s of this.workers) s.worker.terminate();
    liveWorkers -= this.workers.length;
    this.workers = [];
  }
}

/** Splits [0, n) into at most `parts` contiguous ranges of near-equal size, each a multiple of `align`. */
export function splitAligned(n: number, parts: number, align = 1): [number, number][] {
  const units = Math.ceil(n / align), p = Math.max(1, Math.min(parts, units));
  return Array.from({ length: p }, (_, k) => {
    const a = Math.min(n, Math.floor(units * k / p) * align),
      b = Math.min(n, Math.floor(units * (k + 1) / p) * align);
    return [a, b] as [number, number];
  }).filter(([a, b]) => b > a);
}
