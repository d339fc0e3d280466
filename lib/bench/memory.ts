/**
 * Process memory for benchmarks: the resident set now, and its peak over an interval. On Linux the peak
 * (VmHWM in /proc/self/status) can be reset to the current RSS by writing "5" to /proc/self/clear_refs,
 * which gives the peak of each run; elsewhere only the process-wide peak (or nothing) is available.
 */

export type PeakScope = "run" | "process" | "unavailable";

function readHwm(): number | undefined {
  try {
    const kb = Deno.readTextFileSync("/proc/self/status").match(/^VmHWM:\s+(\d+)\s+kB/m)?.[1];
    return kb === undefined ? undefined : Number(kb) * 1024;
  } catch {
    return undefined;
  }
}

let canReset: boolean | undefined;
function resetHwm(): boolean {
  if (canReset === false) return false;
  try {
    Deno.writeTextFileSync("/proc/self/clear_refs", "5");
    canReset = true;
  } catch {
    canReset = false;
  }
  return canReset;
}

export function rssBytes(): number {
  return Deno.memoryUsage().rss;
}

/** Starts a peak-RSS interval; `peak()` returns the highest RSS since (and how far back it reaches). */
export function rssPeakTracker(): { peak: () => { bytes: number | null; scope: PeakScope } } {
  const scope: PeakScope = resetHwm() ? "run" : readHwm() !== undefined ? "process" : "unavailable";
  return {
    peak: () => {
      const hwm = readHwm();
      return hwm === undefined
        ? { bytes: null, scope: "unavailable" }
        : { bytes: Math.max(hwm, rssBytes()), scope };
    },
  };
}
