/**
 * Picks how many threads a decoding step runs on, from the steps' own timings. On a quiet machine every
 * thread helps; when another process wants a core, a step's threads wait at each barrier for a thread the
 * OS has set aside, and one thread is faster (d256x4 beside one busy process, 2 cores: 431 bytes/s on 2
 * threads, about 3,100 on 1; llama.cpp's 2 threads fell to 33; scratch timing). A step's results do not
 * depend on its thread count, so switching changes only the speed.
 *
 * The tuner keeps a running mean of the step time for the count in use, and every PROBE_EVERY steps
 * runs PROBE_STEPS steps on the other count (1 if using more, else all), then keeps whichever was faster.
 */

/** Steps between probes of the other thread count (a probe of a slower count costs ~1% then). */
export const PROBE_EVERY = 512;
/** Steps a probe runs; the first is not timed (a sleeping worker wakes up in it). */
export const PROBE_STEPS = 6;

export class ThreadTuner {
  private current: number;
  private mean = 0;
  private steps = 0;
  private probe?: { ranks: number; left: number; total: number; timed: number };

  constructor(readonly most: number) {
    this.current = most;
  }

  /** The thread count the next step runs on. */
  next(): number {
    if (!this.probe && this.most > 1 && this.steps >= PROBE_EVERY) {
      this.probe = { ranks: this.current > 1 ? 1 : this.most, left: PROBE_STEPS, total: 0, timed: 0 };
    }
    return this.probe ? this.probe.ranks : this.current;
  }

  /** Records how long a step on `ranks` threads took (ms). */
  record(ranks: number, ms: number): void {
    const p = this.probe;
    if (p && ranks === p.ranks) {
      if (p.left < PROBE_STEPS) {
        p.total += ms;
        p.timed++;
      }
      if (--p.left > 0) return;
      // switch when the probe's mean beats the running mean by 10% (noise should not flip it back and forth)
      if (p.timed > 0 && p.total / p.timed < 0.9 * this.mean) {
        this.current = p.ranks;
        this.mean = p.total / p.timed;
      }
      this.probe = undefined;
      this.steps = 0;
      return;
    }
    if (ranks !== this.current) return;
    this.steps++;
    this.mean = this.steps === 1 ? ms : this.mean + (ms - this.mean) / Math.min(this.steps, 64);
  }

  /** The thread count in use (outside probes). */
  get ranks(): number {
    return this.current;
  }
}
