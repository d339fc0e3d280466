/** A reproduction against the published records (lib/results/compare.ts), on records made up here. */
import assert from "node:assert/strict";
import { compareWithPublished, comparisonTable, entryOf } from "../lib/results/compare.ts";
import type { RunRecord } from "../lib/results/records.ts";

/** The fields compare.ts reads, for a run of the compute-matched plan at the small scale. */
function record(run: string, bpb: number, seed?: number): RunRecord {
  return {
    run,
    model: "mambabyte",
    domain: "books",
    scale: "small",
    labels: { plan: "compute-matched", label: run.split("/")[3], ...(seed === undefined ? {} : { seed }) },
    eval: { bits_per_byte: bpb },
  } as unknown as RunRecord;
}

Deno.test("compare: the verdict is the difference against twice the published seed spread", () => {
  const a = "compute-matched/small/books/a", b = "compute-matched/small/books/b";
  const published = [
    record(a, 2.0),
    record(`${a}_seed1`, 2.02, 1),
    record(`${a}_seed2`, 1.98, 2), // seed s.d. of a: 0.02 (sample standard deviation of 2.00, 2.02, 1.98)
    record(b, 3.0), // one seed only
  ];
  const rows = (local: RunRecord[]) => compareWithPublished(local, published, "small");
  const within = rows([record(a, 2.039)]);
  assert.equal(within.length, 1);
  assert.ok(Math.abs(within[0].seedSd! - 0.02) < 1e-12, String(within[0].seedSd));
  assert.equal(within[0].seeds, 3);
  assert.ok(Math.abs(within[0].delta! - 0.039) < 1e-12);
  assert.equal(within[0].verdict, "within seed noise");
  assert.equal(rows([record(a, 1.959)])[0].verdict, "differs"); // |-0.041| > 2 x 0.02
  assert.equal(rows([record(b, 3.5)])[0].verdict, "no seed spread");
  assert.equal(rows([record("compute-matched/small/books/c", 2.5)])[0].verdict, "not published");
  // a local run of an extra seed is compared with that seed's published record
  const seeded = rows([record(`${a}_seed1`, 2.02, 1)]);
  assert.equal(seeded[0].published, 2.02);
  assert.equal(seeded[0].verdict, "within seed noise");
  // other scales and other plans are not compared
  assert.equal(compareWithPublished([record(a, 2)], published, "gpu").length, 0);
});

Deno.test("compare: the table counts the verdicts and shows the published value beside this run's", () => {
  const a = "compute-matched/small/books/a";
  const published = [record(a, 2.0), record(`${a}_seed1`, 2.02, 1), record(`${a}_seed2`, 1.98, 2)];
  const t = comparisonTable(
    compareWithPublished([record(a, 2.1)], published, "small"),
    "small",
    "data/results",
  );
  assert.deepEqual(t.rows[0], ["a", "books", "2.1000", "2.0000", "+0.1000", "0.0200 (3)", "differs"]);
  assert.match(t.note!, /0 within seed noise, 1 differ, 0 without a published seed spread/);
  assert.equal(entryOf(`${a}_seed12`), a);
});
