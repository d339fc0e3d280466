/**
 * Error messages made readable where they are kept (records, tables): one failed WebGPU allocation
 * invalidates every buffer and bind group built on it after, and the list of errors in one record of an
 * out-of-memory engine ran to 9 KB (70 "not enough memory left", 120 "Buffer with '...' label is invalid").
 */

/** Distinct messages in the order first seen, each with its count ("a (x3); b"). */
export function summarizeErrors(errors: string[]): string {
  const counts = new Map<string, number>();
  for (const e of errors) counts.set(e, (counts.get(e) ?? 0) + 1);
  return [...counts].map(([e, n]) => n > 1 ? `${e} (x${n})` : e).join("; ");
}

/**
 * A recorded reason cut to its first `parts` distinct "; "-separated messages (counted as summarizeErrors
 * does), with how many more there were: for a table's note. Records written before summarizeErrors hold
 * the full list.
 */
export function briefReason(reason: string, parts = 2): string {
  const head = reason.match(/^[^:]*errors: /)?.[0] ?? "";
  const all = summarizeErrors(reason.slice(head.length).split("; ")).split("; ");
  const more = all.length - parts;
  return head + all.slice(0, parts).join("; ") +
    (more > 0 ? ` (+${more} other message${more > 1 ? "s" : ""})` : "");
}
