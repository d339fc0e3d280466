/**
 * The sanity check's reference (lib/data/unigram.ts): the unigram entropy of bytes against hand-computed
 * values, and the recorded references (data/results/unigram.jsonl, lib/runs/unigram.ts) against the data
 * they were computed from, where that data is on this machine.
 */
import assert from "node:assert/strict";
import { unigramBitsPerByte } from "../lib/data/unigram.ts";
import { readRecords } from "../lib/results/store.ts";
import type { UnigramRecord } from "../lib/results/records.ts";
import { domainText } from "../lib/runs/experiment.ts";
import type { Domain } from "../lib/data/corpora/types.ts";
import { RESULTS_DIR } from "../lib/paths.ts";

Deno.test("unigram entropy: hand-computed distributions", () => {
  assert.equal(unigramBitsPerByte(new Uint8Array(100).fill(7)), 0);
  assert.equal(unigramBitsPerByte(Uint8Array.from([1, 2, 3, 4, 1, 2, 3, 4])), 2);
  // p = 1/2, 1/4, 1/4: 1.5 bits
  assert.ok(Math.abs(unigramBitsPerByte(Uint8Array.from([9, 9, 5, 6])) - 1.5) < 1e-12);
  assert.equal(unigramBitsPerByte(Uint8Array.from({ length: 256 }, (_, i) => i)), 8);
  assert.ok(Number.isNaN(unigramBitsPerByte(new Uint8Array(0))));
});

Deno.test("unigram records: each equals the entropy of the first bytes + 1 bytes of its split", async () => {
  const recs = await readRecords<UnigramRecord>("unigram", RESULTS_DIR);
  assert.ok(recs.length >= 1, "recorded references");
  let checked = 0;
  for (const u of recs) {
    let text: Uint8Array;
    try {
      text = (await domainText(u.domain as Domain, u.scale, u.split as "test")).test;
    } catch {
      continue; // that scale's data is not on this machine (the gpu corpora are built by the test command)
    }
    const want = unigramBitsPerByte(text.subarray(0, u.bytes + 1));
    assert.ok(Math.abs(u.unigram_bpb - want) < 1e-12, `${u.scale} ${u.domain} ${u.bytes}`);
    checked++;
  }
  assert.ok(checked >= 1, "at least the embedded samples' reference is checked");
});
