// Data: the tracked sample (hashes, split by document, the 2 MB limit, licences), the built corpus when
// present (hashes, splits, the sample taken from it), the byte-level BPE (lossless on every sample and corpus
// file and on random bytes, GPT-2's pre-split, the training subsample), the six noise transforms (property
// tests), resumable training windows, evaluation / sliding windows and word counts. No test downloads
// anything.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  ByteBatcher,
  countWords,
  evalWindows,
  listSplitFiles,
  readSplit,
  slidingWindows,
} from "../lib/data/bytes.ts";
import { ByteBPE, MAX_PIECE_BYTES, preSplit, subsample, trainBpe } from "../lib/data/bpe.ts";
import { readManifest, verifyCorpus } from "../lib/data/corpora/manifest.ts";
import { SOURCES } from "../lib/data/corpora/sources.ts";
import { DOMAINS, SPLITS } from "../lib/data/corpora/types.ts";
import { addNoise, charBoundaries, editDistance, NOISE_KINDS, type NoiseKind } from "../lib/data/noise.ts";
import { Rng } from "../lib/util/rng.ts";

const ROOT = new URL("../", import.meta.url).pathname.replace(/\/$/, "");
const SAMPLES = `${ROOT}/data/samples`;
const CORPORA = `${ROOT}/data/corpora`;
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const utf8 = new TextEncoder();

function randomBytes(rng: Rng, n: number): Uint8Array {
  return Uint8Array.from({ length: n }, () => rng.int(256));
}

/** Random text mixing ASCII, accented and CJK letters, digits, emoji, apostrophes and whitespace runs. */
function randomText(rng: Rng, n: number): string {
  const pieces = [
    "the",
    "The",
    " ",
    "  ",
    "\n",
    "\n\n",
    "\t",
    "'s",
    "'ll",
    "'",
    "don't",
    "42",
    "3.14",
    "é",
    "Ünïcode",
    "日本語",
    "😀",
    "—",
    "“quoted”",
    ",",
    ".",
    "!?",
    "\u00a0",
    "x",
    "_id",
    "{}",
    "\\begin",
    "٣",
    "½",
    " \n ",
  ];
  let s = "";
  while (s.length < n) s += pieces[rng.int(pieces.length)];
  return s;
}

function isValidUtf8(b: Uint8Array): boolean {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(b);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------------------
// The tracked sample

Deno.test("sample: every file matches manifest.json (size, sha256) and nothing unlisted sits in a split", async () => {
  const m = await readManifest(SAMPLES);
  assert.ok(m, "data/samples/manifest.json exists (regenerate with deno task data --write-sample)");
  const problems = await verifyCorpus(SAMPLES, m);
  assert.deepEqual(problems, []);
  assert.deepEqual(Object.keys(m.domains).sort(), [...DOMAINS].sort(), "all five domains are sampled");
});

Deno.test("sample: README.md lists every file with its sha256, as generated from the manifest", async () => {
  const m = (await readManifest(SAMPLES))!;
  const readme = await Deno.readTextFile(`${SAMPLES}/README.md`);
  for (const d of m.documents) {
    const bytes = await Deno.readFile(`${SAMPLES}/${d.path}`);
    const row = readme.split("\n").find((l) => l.startsWith(`| ${d.split} | ${d.id} |`));
    assert.ok(row, `README row for ${d.path}`);
    assert.ok(row.includes(`\`${sha256(bytes)}\``), `README sha256 of ${d.path}`);
    assert.ok(row.includes(d.license), `README licence of ${d.path}`);
  }
});

Deno.test("sample: split by document; train, validation and test in every domain", async () => {
  const m = (await readManifest(SAMPLES))!;
  const seen = new Map<string, string>();
  for (const d of m.documents) {
    const key = `${d.domain}/${d.corpus_id}`;
    assert.ok(!seen.has(key), `${key} is in two splits (${seen.get(key)}, ${d.split})`);
    seen.set(key, d.split);
  }
  for (const domain of DOMAINS) {
    for (const split of SPLITS) {
      const files = await listSplitFiles(`${SAMPLES}/${domain}/${split}`);
      assert.ok(files.length > 0, `${domain}/${split} has files`);
    }
  }
});

Deno.test("sample: at most 2 MB in all (every file under data/samples, manifest, README and licences included)", () => {
  let total = 0;
  const walk = (dir: string) => {
    for (const e of Deno.readDirSync(dir)) {
      if (e.isDirectory) walk(`${dir}/${e.name}`);
      else total += Deno.statSync(`${dir}/${e.name}`).size;
    }
  };
  walk(SAMPLES);
  assert.ok(total <= 2_000_000, `the sample holds ${total} bytes (limit 2 MB)`);
});

/** Globs and licence of each `Files:` stanza of a Debian machine-readable copyright file, and its licence texts. */
function parseDep5(text: string) {
  const paragraphs = text.split(/\n\s*\n/);
  const field = (p: string, name: string) =>
    new RegExp(`^${name}:([^\\n]*(?:\\n[ \\t][^\\n]*)*)`, "m").exec(p)?.[1];
  const toRegex = (g: string) =>
    new RegExp(`^${g.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`);
  return {
    stanzas: paragraphs.filter((p) => field(p, "Files")).map((p) => ({
      globs: field(p, "Files")!.trim().split(/\s+/).map(toRegex),
      license: field(p, "License")!.split("\n")[0].trim(),
    })),
    texts: new Set(
      paragraphs.filter((p) => !field(p, "Files") && field(p, "License")?.includes("\n")).map((p) =>
        field(p, "License")!.split("\n")[0].trim()
      ),
    ),
  };
}

Deno.test("sample: every file carries its licence (manifest, README, notices in LICENSES/); only redistributable licences", async () => {
  const m = (await readManifest(SAMPLES))!;
  const readme = await Deno.readTextFile(`${SAMPLES}/README.md`);
  for (const d of m.documents) {
    assert.ok(d.license.trim().length > 0, `${d.path} has no licence in manifest.json`);
    assert.ok(!/GPL/.test(d.license), `${d.path} has licence ${d.license}`);
    if (d.domain === "latex") {
      assert.match(d.license, /^pd \(/, `${d.path}: LaTeX files in the sample must be public domain`);
    }
    const spec = SOURCES.find((s) => s.id === d.source);
    assert.ok(spec?.sampleable, `${d.path}: source ${d.source} is not sampleable`);
    assert.ok(
      !spec.sampleFilter ||
        spec.sampleFilter({ relpath: d.corpus_id!.slice(d.source.length + 1), license: d.license }),
      `${d.path} fails its source's sample filter`,
    );
    if (!spec.licenseFile) continue;
    // The notice the licence asks for travels with the file, and the README points at it.
    const notice = `LICENSES/${spec.id}.txt`;
    const text = await Deno.readTextFile(`${SAMPLES}/${notice}`);
    assert.ok(readme.includes(`](${notice})`), `README links ${notice}`);
    if (spec.licenseFile.dep5) {
      // A Debian copyright excerpt: a stanza covers the file, and the text of each licence it names is there.
      const { stanzas, texts } = parseDep5(text);
      const upstream = spec.licenseFile.dep5.upstreamPrefix + d.corpus_id!.slice(d.source.length + 1);
      const covering = stanzas.filter((st) => st.globs.some((g) => g.test(upstream))).at(-1);
      assert.ok(covering, `${notice} has no Files stanza for ${upstream}`);
      const names = covering.license.split(/\s+(?:or|and)\s+/i);
      assert.ok(
        names.some((n) => texts.has(n)),
        `${notice}: no licence text for ${covering.license} (${upstream})`,
      );
    }
  }
  // No orphan notice.
  for (const f of Deno.readDirSync(`${SAMPLES}/LICENSES`)) {
    assert.ok(
      m.documents.some((d) => `${d.source}.txt` === f.name),
      `LICENSES/${f.name} belongs to no sampled file`,
    );
  }
});

Deno.test("sample: the books files that reproduce and the tests use are where they always were", async () => {
  const train = await readSplit(`${SAMPLES}/books/train`);
  const test = await readSplit(`${SAMPLES}/books/test`);
  assert.equal(test.length, 144395); // carroll-alice.txt
  assert.equal(train.length, 243901 + 82992 + 2); // bryant-stories + burgess-busterbrown, joined by "\n\n"
});

const corpus = await readManifest(CORPORA).catch(() => undefined);
Deno.test({
  name: "corpus (data/corpora, when built): files match the manifest; no document in two splits",
  ignore: !corpus,
  async fn() {
    const problems = await verifyCorpus(CORPORA, corpus!);
    assert.deepEqual(problems.slice(0, 5), []);
    const splitOf = new Map<string, string>();
    for (const d of corpus!.documents) {
      const key = `${d.domain}/${d.id}`;
      assert.ok(!splitOf.has(key), `${key} listed twice`);
      splitOf.set(key, d.split);
    }
    for (const x of corpus!.dropped) {
      assert.ok(!splitOf.has(`${x.domain}/${x.id}`), `dropped ${x.id} is still in the corpus`);
    }
  },
});

Deno.test({
  name:
    "corpus (when built): each sample file is its corpus document (or that document's first bytes), in the same split",
  ignore: !corpus,
  async fn() {
    const sample = (await readManifest(SAMPLES))!;
    for (const d of sample.documents) {
      const c = corpus!.documents.find((x) => x.domain === d.domain && x.id === d.corpus_id);
      assert.ok(c, `${d.path}: ${d.corpus_id} is not in the corpus`);
      assert.equal(d.split, c.split, `${d.path} is in ${d.split}, its corpus document in ${c.split}`);
      if (!d.excerpt_of) {
        assert.equal(d.sha256, c.sha256, `${d.path} differs from ${c.path}`);
        continue;
      }
      assert.equal(d.excerpt_of.sha256, c.sha256);
      const [part, full] = await Promise.all([
        Deno.readFile(`${SAMPLES}/${d.path}`),
        Deno.readFile(`${CORPORA}/${c.path}`),
      ]);
      assert.ok(
        part.length < full.length && full.subarray(0, part.length).every((b, i) => b === part[i]),
        `${d.path} is a prefix of ${c.path}`,
      );
    }
  },
});

// ---------------------------------------------------------------------------------------------------------
// Byte-level BPE

const GPT2_PATTERN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

function pieces(b: Uint8Array): [number, number][] {
  const out: [number, number][] = [];
  preSplit(b, (s, e) => out.push([s, e]));
  return out;
}

Deno.test("bpe: the pre-split is GPT-2's regex on valid UTF-8 and tiles any byte sequence", () => {
  const rng = new Rng(7);
  for (let t = 0; t < 200; t++) {
    const text = randomText(rng, rng.int(300));
    const b = utf8.encode(text);
    const got = pieces(b).map(([s, e]) => new TextDecoder().decode(b.subarray(s, e)));
    assert.deepEqual(got, text.match(GPT2_PATTERN) ?? [], JSON.stringify(text));
  }
  for (let t = 0; t < 100; t++) {
    const b = randomBytes(rng, rng.int(2000));
    let at = 0;
    for (const [s, e] of pieces(b)) {
      assert.equal(s, at);
      assert.ok(e > s && e - s <= MAX_PIECE_BYTES);
      at = e;
    }
    assert.equal(at, b.length);
  }
});

// One tokenizer trained on the sample's training text, shared by the round-trip tests.
const sampleTrain = await Promise.all(DOMAINS.map((d) => readSplit(`${SAMPLES}/${d}/train`)));
const bpe = trainBpe(sampleTrain, { vocabSize: 1024 });

Deno.test("bpe: trains the requested vocabulary, compresses text, and every token's bytes are its merge", () => {
  assert.equal(bpe.vocabSize, 1024);
  for (let id = 256; id < bpe.vocabSize; id++) {
    const [a, b] = bpe.merges[id - 256];
    assert.deepEqual(bpe.tokenBytes(id), Uint8Array.from([...bpe.tokenBytes(a), ...bpe.tokenBytes(b)]));
  }
  const alice = utf8.encode("Alice was beginning to get very tired of sitting by her sister on the bank.");
  assert.ok(bpe.bytesPerToken(alice) > 2.5, `bytes/token ${bpe.bytesPerToken(alice)}`);
});

Deno.test("bpe: round trip is exact on every tracked sample file", async () => {
  const m = (await readManifest(SAMPLES))!;
  for (const d of m.documents) {
    const b = await Deno.readFile(`${SAMPLES}/${d.path}`);
    const ids = bpe.encode(b);
    assert.ok(ids.every((x) => x >= 0 && x < bpe.vocabSize));
    assert.deepEqual(bpe.decode(ids), b, d.path);
  }
});

Deno.test("bpe: round trip is exact on random bytes, invalid UTF-8 and edge cases", () => {
  const rng = new Rng(11);
  const cases: Uint8Array[] = [
    new Uint8Array(),
    Uint8Array.of(0),
    Uint8Array.of(0xff, 0xfe, 0x80, 0xc0, 0xed, 0xa0, 0x80, 0xf4, 0x90),
    utf8.encode("é").subarray(0, 1),
    new Uint8Array(5000).fill(61), // one run longer than MAX_PIECE_BYTES
    utf8.encode(" ".repeat(700) + "x"),
  ];
  for (let t = 0; t < 50; t++) cases.push(randomBytes(rng, rng.int(4000)));
  for (let t = 0; t < 50; t++) cases.push(utf8.encode(randomText(rng, rng.int(2000))));
  for (const c of cases) assert.deepEqual(bpe.decode(bpe.encode(c)), c);
});

Deno.test({
  name: "bpe: round trip is exact on every file of the built corpus (data/corpora, when built)",
  ignore: !corpus,
  async fn() {
    for (const d of corpus!.documents) {
      const b = await Deno.readFile(`${CORPORA}/${d.path}`);
      const back = bpe.decode(bpe.encode(b));
      assert.ok(back.length === b.length && back.every((x, i) => x === b[i]), d.path);
    }
  },
});

Deno.test("bpe: training subsample is evenly spaced slices, bounded, within documents, whole when small", () => {
  const rng = new Rng(5);
  const docs = Array.from({ length: 300 }, () => randomBytes(rng, 100 + rng.int(5000)));
  const total = docs.reduce((n, d) => n + d.length, 0);
  assert.deepEqual(subsample(docs, total), docs, "nothing dropped when the text fits");
  const parts = subsample(docs, 40_000, 4096);
  const sizes = parts.reduce((n, p) => n + p.length, 0);
  assert.equal(sizes, Math.floor(40_000 / 4096) * 4096, "count x slice bytes in all");
  for (const p of parts) {
    assert.ok(docs.some((d) => d.buffer === p.buffer), "every part lies inside one document");
  }
  const one = randomBytes(rng, 200_000);
  const slices = subsample(one, 50_000, 10_000);
  assert.equal(slices.length, 5);
  assert.equal(slices[0].byteOffset, 0);
  assert.equal(slices[4].byteOffset + slices[4].length, one.length, "the last slice ends at the end");
});

Deno.test("bpe: JSON save/load gives the same tokenizer; bad files are rejected with a reason", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await bpe.save(`${dir}/bpe.json`);
    const back = await ByteBPE.load(`${dir}/bpe.json`);
    const text = sampleTrain[1].subarray(0, 20000);
    assert.deepEqual(back.encode(text), bpe.encode(text));
    assert.throws(() => ByteBPE.fromJSON({ ...bpe.toJSON(), merges: [[5, 300]] }, "x.json"), /unknown token/);
    assert.throws(() => ByteBPE.fromJSON({ format: "other" } as never, "x.json"), /x\.json: not a/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bpe: training is deterministic and stops early when no pair repeats", () => {
  const a = trainBpe(sampleTrain[0].subarray(0, 50000), { vocabSize: 400 });
  const b = trainBpe(sampleTrain[0].subarray(0, 50000), { vocabSize: 400 });
  assert.deepEqual(a.merges, b.merges);
  const tiny = trainBpe(utf8.encode("abcd"), { vocabSize: 1000 });
  assert.equal(tiny.vocabSize, 256);
});

// ---------------------------------------------------------------------------------------------------------
// Noise

const upper = (x: number) => (x >= 97 && x <= 122 ? x - 32 : x);
const lower = (x: number) => (x >= 65 && x <= 90 ? x + 32 : x);

/** Is `small` a subsequence of `big`? */
function isSubsequence(small: Uint8Array, big: Uint8Array): boolean {
  let j = 0;
  for (let i = 0; i < big.length && j < small.length; i++) if (big[i] === small[j]) j++;
  return j === small.length;
}

function noiseInputs(seed: number): Uint8Array[] {
  const rng = new Rng(seed);
  const out: Uint8Array[] = [new Uint8Array(), utf8.encode("a"), utf8.encode("The cat sat on the mat.")];
  for (let t = 0; t < 15; t++) out.push(utf8.encode(randomText(rng, 1 + rng.int(800))));
  for (let t = 0; t < 5; t++) out.push(randomBytes(rng, 1 + rng.int(800)));
  return out;
}

const sortedBytes = (b: Uint8Array) => Array.from(b).sort((x, y) => x - y);
const withoutSpaces = (b: Uint8Array) => Uint8Array.from(Array.from(b).filter((x) => x !== 32));

Deno.test("noise: p = 0 is the identity; the same seed gives the same output; valid UTF-8 stays valid", () => {
  for (const kind of NOISE_KINDS) {
    for (const x of noiseInputs(1)) {
      assert.deepEqual(addNoise(x, kind, 0, 3), x, kind);
      assert.deepEqual(addNoise(x, kind, 0.3, 5), addNoise(x, kind, 0.3, 5), kind);
      if (isValidUtf8(x)) assert.ok(isValidUtf8(addNoise(x, kind, 0.5, 9)), `${kind} broke UTF-8`);
    }
    const long = utf8.encode(randomText(new Rng(2), 3000));
    assert.notDeepEqual(addNoise(long, kind, 0.3, 1), addNoise(long, kind, 0.3, 2), `${kind}: seeds differ`);
  }
});

Deno.test("noise: drop only deletes (a subsequence, about p of the characters)", () => {
  for (const x of noiseInputs(2)) {
    for (const p of [0.05, 0.3, 1]) {
      const y = addNoise(x, "drop", p, 4);
      assert.ok(isSubsequence(y, x));
      if (p === 1) assert.equal(y.length, 0);
    }
  }
  const long = utf8.encode("abcdefghij".repeat(2000));
  const frac = 1 - addNoise(long, "drop", 0.3, 1).length / long.length;
  assert.ok(Math.abs(frac - 0.3) < 0.02, `dropped ${frac}`);
});

/** The characters of b (as strings of their bytes, so invalid bytes compare too), run-length encoded. */
function charRuns(b: Uint8Array): [string, number][] {
  const cb = charBoundaries(b);
  const runs: [string, number][] = [];
  for (let i = 0; i + 1 < cb.length; i++) {
    const c = Array.from(b.subarray(cb[i], cb[i + 1])).join(",");
    if (runs.length && runs[runs.length - 1][0] === c) runs[runs.length - 1][1]++;
    else runs.push([c, 1]);
  }
  return runs;
}

Deno.test("noise: repeat only duplicates characters (each run of a character grows by at most its length)", () => {
  for (const x of noiseInputs(3)) {
    const y = addNoise(x, "repeat", 0.3, 4);
    assert.ok(isSubsequence(x, y) && y.length <= 2 * x.length);
    // On valid UTF-8, y is x with some characters written twice: the same runs of characters, each 1 to 2
    // times as long. (Stray bytes can join a repeated neighbour into a new character, so not on any bytes.)
    if (isValidUtf8(x)) {
      const rx = charRuns(x), ry = charRuns(y);
      assert.deepEqual(ry.map((r) => r[0]), rx.map((r) => r[0]));
      assert.ok(ry.every((r, i) => r[1] >= rx[i][1] && r[1] <= 2 * rx[i][1]));
    }
    assert.equal(addNoise(x, "repeat", 1, 4).length, 2 * x.length);
  }
  const long = utf8.encode("abcdefghij".repeat(2000));
  const frac = addNoise(long, "repeat", 0.3, 1).length / long.length - 1;
  assert.ok(Math.abs(frac - 0.3) < 0.02, `repeated ${frac}`);
});

/** Is y obtained from x by swapping disjoint pairs of neighbouring characters? */
function isAdjacentSwaps(x: Uint8Array, y: Uint8Array): boolean {
  const cb = charBoundaries(x);
  const ch = (i: number) => x.subarray(cb[i], cb[i + 1]);
  const at = (off: number, c: Uint8Array) => c.every((b, k) => y[off + k] === b);
  let off = 0;
  for (let i = 0; i < cb.length - 1;) {
    if (at(off, ch(i))) {
      off += ch(i).length;
      i++;
    } else if (i + 2 < cb.length && at(off, ch(i + 1)) && at(off + ch(i + 1).length, ch(i))) {
      off += ch(i).length + ch(i + 1).length;
      i += 2;
    } else return false;
  }
  return off === y.length;
}

Deno.test("noise: swap keeps the byte multiset and moves each character at most one place", () => {
  for (const x of noiseInputs(4)) {
    for (const p of [0.05, 0.3, 1]) {
      const y = addNoise(x, "swap", p, 6);
      assert.deepEqual(sortedBytes(y), sortedBytes(x));
      if (isValidUtf8(x)) {
        assert.ok(isAdjacentSwaps(x, y), "y is x with disjoint swaps of neighbouring characters");
      }
    }
  }
  assert.equal(new TextDecoder().decode(addNoise(utf8.encode("abcdef"), "swap", 1, 0)), "badcfe");
});

Deno.test("noise: uppercase and random case change only the case of ASCII letters", () => {
  for (const x of noiseInputs(5)) {
    const u = addNoise(x, "uppercase", 0.3, 1);
    assert.equal(u.length, x.length);
    assert.ok(u.every((b, i) => b === x[i] || b === upper(x[i])));
    assert.deepEqual(addNoise(x, "uppercase", 1, 1), x.map(upper));
    const r = addNoise(x, "random_case", 1, 1);
    assert.equal(r.length, x.length);
    assert.ok(r.every((b, i) => lower(b) === lower(x[i])));
  }
  // The rates: uppercase hits about p of the letters; random case at p = 1 makes about half upper case.
  const letters = utf8.encode("the quick brown fox jumps over the lazy dog ".repeat(500));
  const upperShare = (b: Uint8Array) =>
    b.filter((c) => c >= 65 && c <= 90).length / letters.filter((c) => c !== 32).length;
  assert.ok(Math.abs(upperShare(addNoise(letters, "uppercase", 0.3, 2)) - 0.3) < 0.02);
  assert.ok(Math.abs(upperShare(addNoise(letters, "random_case", 1, 2)) - 0.5) < 0.02);
});

Deno.test("noise: antspeak upper-cases and puts one space between characters, nothing else", () => {
  const t = new TextDecoder();
  assert.equal(t.decode(addNoise(utf8.encode("The cat"), "antspeak", 1, 0)), "T H E   C A T");
  assert.equal(t.decode(addNoise(utf8.encode("né"), "antspeak", 1, 0)), "N é");
  for (const x of noiseInputs(6)) {
    // p = 1: every character upper-cased, one space between each two (spaces of the input included).
    const full = addNoise(x, "antspeak", 1, 0);
    const cb = charBoundaries(x);
    const spaced: number[] = [];
    for (let i = 0; i + 1 < cb.length; i++) {
      if (i > 0) spaced.push(32);
      spaced.push(...x.subarray(cb[i], cb[i + 1]).map(upper));
    }
    assert.deepEqual(full, Uint8Array.from(spaced));
    for (const p of [0.3, 1]) {
      const y = addNoise(x, "antspeak", p, 2);
      assert.deepEqual(
        withoutSpaces(y).map(lower),
        withoutSpaces(x).map(lower),
        "only case and spacing change",
      );
      assert.ok(
        withoutSpaces(y).every((b, i) => b === withoutSpaces(x)[i] || b === upper(withoutSpaces(x)[i])),
      );
    }
  }
});

Deno.test("noise: edit distance", () => {
  const d = (a: string, b: string) => editDistance(utf8.encode(a), utf8.encode(b));
  assert.deepEqual([d("", ""), d("abc", ""), d("kitten", "sitting"), d("abcdef", "badcfe")], [0, 3, 3, 4]);
});

Deno.test("noise: unknown kinds and bad probabilities are rejected", () => {
  assert.throws(() => addNoise(utf8.encode("x"), "shout" as NoiseKind, 0.1, 0), /unknown noise kind shout/);
  assert.throws(() => addNoise(utf8.encode("x"), "drop", 1.5, 0), /probability/);
});

// ---------------------------------------------------------------------------------------------------------
// Byte windows

Deno.test("bytes: ByteBatcher resumes from a position exactly (seek, constructor, state/restore)", () => {
  const data = randomBytes(new Rng(1), 5000);
  const a = new ByteBatcher(data, 3, 16, 42);
  const stream = Array.from({ length: 10 }, () => a.next());
  assert.equal(a.position, 10);
  const b = new ByteBatcher(data, 3, 16, 42, 6);
  assert.deepEqual(b.next(), stream[6]);
  b.seek(2);
  assert.deepEqual(b.next(), stream[2]);
  b.seek(9);
  assert.deepEqual(b.next(), stream[9]);
  const c = new ByteBatcher(data, 3, 16, 42);
  c.next();
  const saved = c.state();
  const d = new ByteBatcher(data, 3, 16, 0);
  d.restore(saved, 1);
  assert.deepEqual(d.next(), stream[1]);
  assert.equal(d.position, 2);
});

Deno.test("bytes: sliding windows score every byte after the first exactly once, with the context asked for", () => {
  const data = randomBytes(new Rng(3), 1000);
  for (const [length, context] of [[64, 0], [64, 16], [64, 63], [7, 3], [2000, 100]]) {
    const scored = new Uint8Array(data.length);
    let windows = 0;
    for (const w of slidingWindows(data, length, context)) {
      windows++;
      assert.ok(w.bytes.length <= length + 1);
      assert.deepEqual(Array.from(w.bytes), Array.from(data.subarray(w.start, w.start + w.bytes.length)));
      for (let k = w.skip; k < w.bytes.length - 1; k++) {
        const target = w.start + k + 1;
        scored[target]++;
        if (w.start > 0) {
          assert.ok(target - w.start >= context, "at least `context` bytes before a scored byte");
        }
      }
    }
    assert.equal(scored[0], 0);
    assert.ok(scored.subarray(1).every((x) => x === 1), `length ${length} context ${context}`);
    if (context === 0) assert.equal(windows, [...evalWindows(data, length)].length);
  }
  assert.throws(() => slidingWindows(data, 8, 8).next(), /context < length/);
});

Deno.test("bytes: training windows are contiguous slices of the data; every start offset can be drawn", () => {
  const data = Uint8Array.from({ length: 40 }, (_, i) => i); // byte value = offset, so a window names its start
  const length = 8, batch = 4;
  const b = new ByteBatcher(data, batch, length, 7);
  const starts = new Set<number>();
  for (let t = 0; t < 200; t++) {
    const x = b.next();
    assert.equal(x.length, batch * (length + 1));
    for (let i = 0; i < batch; i++) {
      const row = x.subarray(i * (length + 1), (i + 1) * (length + 1));
      assert.ok(row.every((v, j) => v === row[0] + j), "one contiguous window");
      assert.ok(row[0] + length < data.length, "inside the data");
      starts.add(row[0]);
    }
  }
  assert.equal(starts.size, data.length - length, "offsets 0 .. n - length - 1 all occur");
  assert.throws(() => new ByteBatcher(data.subarray(0, 8), 1, 8), /fewer than one window of 9/);
});

Deno.test("bytes: evaluation windows tile the data; every byte after the first is a target once", () => {
  const data = randomBytes(new Rng(4), 1001);
  for (const length of [1, 7, 100, 1000, 5000]) {
    const windows = [...evalWindows(data, length)];
    const targets: number[] = [];
    let start = 0;
    for (const w of windows) {
      assert.ok(w.length >= 2 && w.length <= length + 1);
      assert.deepEqual(
        Array.from(w),
        Array.from(data.subarray(start, start + w.length)),
        "contiguous, in order",
      );
      for (let k = 1; k < w.length; k++) targets.push(start + k);
      start += length;
    }
    assert.deepEqual(targets, Array.from({ length: data.length - 1 }, (_, i) => i + 1), `length ${length}`);
  }
  assert.equal([...evalWindows(Uint8Array.of(5), 4)].length, 0, "one byte has nothing to predict");
});

Deno.test("bytes: words are runs of non-whitespace (space, tab, LF, CR, VT, FF)", () => {
  const w = (s: string) => countWords(utf8.encode(s));
  assert.deepEqual(
    [
      w(""),
      w("   "),
      w("one"),
      w(" two  words\n"),
      w("a\tb\rc\vd\fe\nf"),
      w("naïve café — ok"),
      w("x\u00a0y"),
    ],
    [0, 0, 1, 2, 6, 4, 1],
  );
  assert.equal(countWords(Uint8Array.of(0xff, 32, 0x80)), 2, "any non-whitespace byte is part of a word");
});
