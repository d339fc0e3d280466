/**
 * What bounds speculative decoding, from the decode benchmark's records (lib/bench/decode.ts): one piece of
 * arithmetic shared by the `speculative_bound` table and the README's "Against the paper" line.
 */
// deno-lint-ignore no-explicit-any
type Rec = Record<string, any>;

export interface SpeculativeBound {
  /** The latest `verify_cost` record of a (device, verifier). */
  cost: Rec;
  /** Bytes per drafted token, from the drafter-alone (`subword`) record of the same device and models. */
  bytesPerToken: number;
  /**
   * The best speed-up over stepping: a round in which every drafted byte is accepted costs m drafter steps
   * and one pass over their m b bytes, against m b steps: step b / (drafter + pass b).
   */
  bound: number;
}

export function speculativeBounds(decode: Rec[]): SpeculativeBound[] {
  const latest = new Map<string, Rec>(); // records are in append order: the last one of a key wins
  for (const r of decode) {
    if (r.mode === "verify_cost") latest.set(`${r.provenance?.device}|${r.verifier}`, r);
  }
  return [...latest.values()].map((cost) => {
    const sub = decode.filter((x) =>
      x.mode === "subword" && x.verifier === cost.verifier && x.drafter === cost.drafter &&
      x.provenance?.device === cost.provenance?.device
    ).at(-1);
    const bytesPerToken = sub ? sub.bytes / sub.tokens : NaN;
    const bound = cost.verifier_step_ms_per_byte * bytesPerToken /
      (cost.drafter_step_ms + cost.verifier_pass_ms_per_byte * bytesPerToken);
    return { cost, bytesPerToken, bound };
  });
}
