/**
 * `deno task data`: builds the five domains' corpora in data/corpora (see pipeline.ts and sources.ts).
 *
 *   deno task data                       # acquire, clean, de-duplicate, split; a no-op when up to date
 *   deno task data --domain books        # only some domains (repeatable or comma-separated)
 *   deno task data --force               # rebuild even if up to date
 *   deno task data --verify-sources      # also download archives missing from the cache to compare hashes
 *   deno task data --check               # verify files against the manifest; build nothing
 *   deno task data --write-sample        # (after a build) regenerate the tracked sample in data/samples
 *   --out DIR (default data/corpora)  --cache DIR (default <out>/.cache)  --samples DIR (default data/samples)
 *
 * Exits 1 when a source fails (the message names it) or the check finds a problem.
 */
import { readManifest, verifyCorpus } from "./manifest.ts";
import { buildCorpora } from "./pipeline.ts";
import { writeSample } from "./sample.ts";
import { type Domain, DOMAINS } from "./types.ts";
import { CORPORA_DIR, SAMPLES_DIR } from "../../paths.ts";

interface Args {
  domains?: Domain[];
  force: boolean;
  verifySources: boolean;
  check: boolean;
  writeSample: boolean;
  out: string;
  cache?: string;
  samples: string;
}

const USAGE = `deno task data [options]
  builds the five domains' corpora (acquire, clean, de-duplicate, split; a no-op when up to date)
  --domain D        only these domains (repeatable or comma-separated; default all: ${DOMAINS.join(", ")})
  --force           rebuild even if up to date
  --verify-sources  also download archives missing from the cache to compare hashes
  --check           verify the files against the manifest; build nothing
  --write-sample    (after a build) regenerate the tracked sample in --samples
  --out DIR         where the corpora go (default data/corpora)
  --cache DIR       downloaded archives (default <out>/.cache)
  --samples DIR     the tracked sample (default data/samples)`;

/** A usage error: one line on stderr, exit 2. */
function usage(msg: string): never {
  console.error(`deno task data: ${msg} (deno task data --help lists the options)`);
  Deno.exit(2);
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    force: false,
    verifySources: false,
    check: false,
    writeSample: false,
    out: CORPORA_DIR,
    samples: SAMPLES_DIR,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => argv[++i] ?? usage(`${arg} needs a value`);
    if (arg === "--domain") {
      for (const d of value().split(",")) {
        if (!(DOMAINS as readonly string[]).includes(d)) {
          usage(`unknown domain ${d} (one of ${DOMAINS.join(", ")})`);
        }
        (a.domains ??= []).push(d as Domain);
      }
    } else if (arg === "--force") a.force = true;
    else if (arg === "--verify-sources") a.verifySources = true;
    else if (arg === "--check") a.check = true;
    else if (arg === "--write-sample") a.writeSample = true;
    else if (arg === "--out") a.out = value();
    else if (arg === "--cache") a.cache = value();
    else if (arg === "--samples") a.samples = value();
    else if (arg === "--help" || arg === "-h") {
      console.log(USAGE);
      Deno.exit(0);
    } else usage(`unknown argument ${arg}`);
  }
  return a;
}

/** Decimal megabytes (10^6 bytes), as in CORPORA.md. */
const fmtMB = (n: number) => (n / 1e6).toFixed(2);

async function main() {
  const args = parseArgs(Deno.args);
  const t0 = performance.now();
  if (args.check) {
    const m = await readManifest(args.out);
    if (!m) {
      console.error(`${args.out}/manifest.json does not exist: run deno task data`);
      Deno.exit(1);
    }
    const problems = await verifyCorpus(args.out, m, args.domains);
    for (const p of problems.slice(0, 20)) console.error(`${p.path}: ${p.problem}`);
    console.error(
      problems.length
        ? `${problems.length} problem(s)`
        : `ok: ${m.documents.length} documents match the manifest`,
    );
    Deno.exit(problems.length ? 1 : 0);
  }

  const result = await buildCorpora({
    outDir: args.out,
    cacheDir: args.cache,
    domains: args.domains,
    force: args.force,
    verifySources: args.verifySources,
  });
  const m = result.manifest;
  console.log("\ndomain   status      docs  train/val/test docs        MB   words       build s");
  for (const r of result.reports) {
    const d = m.domains[r.domain];
    const s = d?.splits;
    console.log(
      `${r.domain.padEnd(8)} ${r.status.padEnd(10)} ${String(d?.totals.documents ?? "-").padStart(5)}  ` +
        `${s ? `${s.train.documents}/${s.validation.documents}/${s.test.documents}` : "-"}`.padEnd(20) +
        `${d ? fmtMB(d.totals.bytes) : "-"}`.padStart(10) + `${String(d?.totals.words ?? "-")}`.padStart(10) +
        `${r.seconds.toFixed(1)}`.padStart(12),
    );
  }
  console.log(
    `wall time ${((performance.now() - t0) / 1000).toFixed(1)} s; manifest ${args.out}/manifest.json`,
  );
  if (result.failures.length) {
    console.error(`\n${result.failures.length} failure(s):`);
    for (const f of result.failures) console.error(`  ${f.message}`);
    Deno.exit(1);
  }
  if (args.writeSample) {
    const written = await writeSample({
      corpusDir: args.out,
      cacheDir: args.cache ?? `${args.out}/.cache`,
      sampleDir: args.samples,
    });
    console.log(
      `sample: ${written.files} files, ${
        fmtMB(written.bytes)
      } MB in ${args.samples} (README.md and manifest.json regenerated)`,
    );
  }
}

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    console.error(`deno task data: ${e instanceof Error ? e.message : e}`);
    Deno.exit(1);
  }
}
