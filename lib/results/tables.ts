/** Tables as the README, the exported figures/*.md and the command line print them. */

export interface MarkdownTable {
  columns: string[];
  rows: string[][];
  /** Shown under the table (scale, units, caveats). */
  note?: string;
}

/** A markdown table as row objects (for showTable). */
export function tableObjects(t: MarkdownTable): Record<string, string>[] {
  return t.rows.map((r) => Object.fromEntries(t.columns.map((c, i) => [c, r[i]])));
}

export function tableMarkdown(t: MarkdownTable): string {
  const esc = (s: string) => s.replace(/\|/g, "\\|");
  const line = (cells: string[]) => `| ${cells.map(esc).join(" | ")} |`;
  return [
    line(t.columns),
    line(t.columns.map(() => "---")),
    ...t.rows.map(line),
    ...(t.note ? ["", t.note] : []),
  ].join("\n") + "\n";
}
