/** A plain-text table of scan benchmark records, with skip reasons and warnings as numbered notes. */
import type { ScanRecord } from "./scan_bench.ts";

const MB = 1024 * 1024;

function fixed(x: number | null | undefined, digits: number): string {
  return x === null || x === undefined ? "-" : x.toFixed(digits);
}

function megabytes(bytes: number | null): string {
  return bytes === null ? "-" : fixed(bytes / MB, bytes < 10 * MB ? 2 : 0);
}

function ms(x: number | null | undefined): string {
  if (x === null || x === undefined) return "-";
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

/** Right-aligns numbers, left-aligns text columns. */
function render(header: string[], rows: string[][], leftAligned: Set<number>): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]) =>
    cells.map((cell, c) => leftAligned.has(c) ? cell.padEnd(widths[c]) : cell.padStart(widths[c])).join("  ")
      .trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

export function scanTable(records: ScanRecord[]): string {
  const notes: string[] = [];
  const note = (text: string) => {
    notes.push(`[${notes.length + 1}] ${text}`);
    return `[${notes.length}]`;
  };
  const header = [
    "backend",
    "impl",
    "pass",
    "runs",
    "median ms",
    "min ms",
    "peer",
    "peer ms",
    "x vs peer",
    "GB/s",
    "peak tensor MB",
    "peak RSS MB",
    "note",
  ];
  const rows = records.map((r) => {
    const marks: string[] = [];
    if (r.status !== "ok") marks.push(`${r.status} ${note(r.reason ?? "")}`);
    for (const w of r.warnings) marks.push(note(`warning: ${w}`));
    for (const n of r.notes) marks.push(note(n));
    return [
      r.backend,
      r.impl,
      r.pass,
      `${r.runs}/${r.repeats}`,
      ms(r.median_ms),
      ms(r.min_ms),
      r.peer?.peer ?? "-",
      ms(r.peer?.ms),
      r.vs_peer === null ? "-" : r.vs_peer >= 0.1 ? r.vs_peer.toFixed(2) : r.vs_peer.toPrecision(2),
      r.bytes_per_s === null ? "-" : fixed(r.bytes_per_s / 1e9, 3),
      megabytes(r.peak_tensor_bytes),
      megabytes(r.peak_rss_bytes),
      marks.join(" "),
    ];
  });
  return render(header, rows, new Set([0, 1, 2, 6, 12])) + (notes.length ? "\n\n" + notes.join("\n") : "");
}
