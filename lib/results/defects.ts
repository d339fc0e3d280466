/**
 * Defects found in the code after records were made: which records they touch (from the records' own
 * provenance), and what they mean. Tables and the README flag the records a defect touches instead of
 * silently keeping or dropping them; retraining replaces them.
 */

export interface Defect {
  /** What was wrong, and the commit that fixed it. */
  what: string;
  /** Whether a record (any table's) was made with the defect. */
  touches(record: { provenance?: Record<string, unknown> }): boolean;
}

export const DEFECTS: Defect[] = [
  {
    what: "on the webgpu backend the WGSL GEMM read operands that tfjs-webgpu stores as integers (the " +
      "one-hot ids in the embedding's gradient) as float bits, so the tied embedding's gradient lost its input " +
      "(lookup) part and kept only the head's (train3 on webgpu: relative error 0.71); fixed in commit 677583d " +
      "(2026-12-03), which tests/train_reference_test.ts on webgpu now guards",
    touches: (r) =>
      r.provenance?.backend === "webgpu" && String(r.provenance?.time ?? "") < "2026-12-03T21:55",
  },
];

/** The defects that touch a record. */
export function defectsOf(record: { provenance?: Record<string, unknown> }): Defect[] {
  return DEFECTS.filter((d) => d.touches(record));
}
