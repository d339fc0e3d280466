/**
 * The sanity check's reference for runs recorded before their records carried it: the unigram entropy
 * (lib/data/unigram.ts) of the bytes each run scored, the first eval.bytes + 1 bytes of its domain's split
 * at its scale (the text whose eval.bytes next-byte predictions were scored), appended to
 * data/results/unigram.jsonl once per (scale, domain, split, bytes). Runs whose data is not on this machine
 * are named and left out.
 *
 *   deno run -A lib/runs/unigram.ts [--results DIR]
 */
import { unigramBitsPerByte } from "../data/unigram.ts";
import type { Domain } from "../data/corpora/types.ts";
import { RESULTS_DIR } from "../paths.ts";
import { appendRecord, readRecords } from "../results/store.ts";
import type { RunRecord, UnigramRecord } from "../results/records.ts";
import { domainText } from "./experiment.ts";

/** The unigram records the runs lack (computed from the data here), appended to `resultsDir`. */
export async function recordUnigram(resultsDir = RESULTS_DIR, say = console.error): Promise<UnigramRecord[]> {
  const runs = await readRecords<RunRecord>("runs", resultsDir);
  const have = new Set(
    (await readRecords<UnigramRecord>("unigram", resultsDir)).map((u) =>
      `${u.scale}|${u.domain}|${u.split}|${u.bytes}`
    ),
  );
  const out: UnigramRecord[] = [];
  for (const r of runs) {
    const key = `${r.scale}|${r.domain}|${r.eval.split}|${r.eval.bytes}`;
    if (r.eval.unigram_bpb !== undefined || have.has(key)) continue;
    have.add(key);
    let text: Uint8Array;
    try {
      text = (await domainText(r.domain as Domain, r.scale, r.eval.split as "test" | "validation")).test;
    } catch (e) {
      say(`unigram: ${r.run}: ${(e as Error).message}`);
      continue;
    }
    const u: UnigramRecord = {
      scale: r.scale,
      domain: r.domain,
      split: r.eval.split,
      data: r.data,
      bytes: r.eval.bytes,
      unigram_bpb: unigramBitsPerByte(text.subarray(0, r.eval.bytes + 1)),
    };
    await appendRecord("unigram", u as unknown as Record<string, unknown>, resultsDir);
    out.push(u);
    say(`unigram: ${key}: ${u.unigram_bpb.toFixed(4)} bits per byte`);
  }
  return out;
}

if (import.meta.main) {
  const i = Deno.args.indexOf("--results");
  const n = (await recordUnigram(i >= 0 ? Deno.args[i + 1] : RESULTS_DIR)).length;
  console.log(`${n} unigram records appended`);
}
