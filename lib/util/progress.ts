/**
 * The words of progress reports, shared by the command line (stderr lines), the trainer's log lines and
 * the notebooks' live views (lib/plot/live.ts), so a run reads the same wherever it is watched.
 */

/** Seconds as "42s", "3m07s" or "1h05m" ("?" when unknown). */
export function formatSeconds(s: number): string {
  if (!Number.isFinite(s) || s < 0) return "?";
  const t = Math.round(s);
  const h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60), sec = t % 60;
  return h ? `${h}h${String(m).padStart(2, "0")}m` : m ? `${m}m${String(sec).padStart(2, "0")}s` : `${sec}s`;
}

/** A byte count (or rate) as "812 B", "3.4 kB", "1.2 MB". */
export function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${n.toFixed(0)} B`;
}

/** Seconds left for work `done` of `total` after `elapsedS` seconds, at the rate so far (NaN before any). */
export function secondsLeft(done: number, total: number, elapsedS: number): number {
  return done > 0 ? elapsedS * (total - done) / done : NaN;
}

/** What a training progress line reports (lib/train/trainer.ts TrainLogEntry has these fields). */
export interface StepReport {
  step: number;
  loss: number;
  bits_per_byte: number;
  lr: number;
  bytes_per_s: number;
  /** bits per byte of the validation text, at the steps where it was measured */
  val_bits_per_byte?: number;
}

/** One training progress line: step / total, loss, bits per byte (and validation's), lr, bytes/s, ETA. */
export function stepLine(e: StepReport, totalSteps: number, etaS: number): string {
  const val = e.val_bits_per_byte !== undefined ? `  val bpb ${e.val_bits_per_byte.toFixed(3)}` : "";
  return `step ${String(e.step).padStart(6)}/${totalSteps}  loss ${e.loss.toFixed(4)}  ` +
    `bpb ${e.bits_per_byte.toFixed(3)}${val}  lr ${e.lr.toExponential(2)}  ` +
    `${Math.round(e.bytes_per_s)} bytes/s  ${e.step === totalSteps ? "done" : `ETA ${formatSeconds(etaS)}`}`;
}

/** Progress through windows of a text (lib/eval/score.ts ScoreProgress has these fields). */
export interface WindowProgress {
  windows: number;
  totalWindows: number;
  tokens: number;
  totalTokens: number;
}

/** One scoring progress line: windows done / total, percent, bytes/s, and the time left (or taken). */
export function windowLine(label: string, p: WindowProgress, textBytes: number, elapsedS: number): string {
  const frac = p.tokens / p.totalTokens;
  const rate = elapsedS > 0 ? (frac * textBytes) / elapsedS : 0;
  return `${label}: ${p.windows}/${p.totalWindows} windows (${(100 * frac).toFixed(1)}%), ` +
    `${formatBytes(rate)}/s, ${
      p.windows === p.totalWindows
        ? `done in ${formatSeconds(elapsedS)}`
        : `ETA ${formatSeconds(secondsLeft(frac, 1, elapsedS))}`
    }`;
}
