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
 * What kind of failure a recorded reason tells: its first message, without the "WebGPU errors: " head and
 * without the count summarizeErrors gave it (records written before summarizeErrors hold the full list, so
 * the first message is the same either way).
 */
export function firstMessage(reason: string): string {
  return reason.replace(/^WebGPU errors: /, "").split("; ")[0].replace(/ \(x\d+\)$/, "");
}
