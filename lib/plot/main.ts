/**
 * `deno task figures`: every figure and table exported from data/results (figures/), and the README's
 * results section regenerated from the same records.
 *
 *   deno task figures [--results DIR] [--out DIR] [--scale S] [--only a,b] [--list] [--no-readme]
 */
import { REPO_ROOT, RESULTS_DIR } from "../paths.ts";
import { exportFigures, figureBuilders } from "./figures/mod.ts";
import { updateReadme } from "./readme.ts";
import { helpOrUnknown } from "../util/usage.ts";

const USAGE = `deno task figures [options]
  every figure and table exported from the records (SVG, PNG, markdown; figures/index.md), and the README's
  results section regenerated from the same records
  --results DIR   the records to read (default data/results)
  --out DIR       where figures go (default figures/; with --out, the README is left alone)
  --scale S       smoke, small or gpu (default: each figure's largest recorded scale)
  --only a,b      only these figures (names: --list); the README is left alone
  --list          list the figures (name, description, records read) and exit
  --no-readme     do not regenerate the README's results section`;

if (import.meta.main) {
  const args = Deno.args;
  helpOrUnknown(args, USAGE, "deno task figures");
  const flag = (name: string) => {
    const i = args.indexOf(`--${name}`);
    if (i >= 0 && (i + 1 >= args.length || args[i + 1].startsWith("--"))) {
      console.error(`--${name} needs a value`);
      Deno.exit(2);
    }
    return i >= 0 ? args[i + 1] : undefined;
  };
  if (args.includes("--list")) {
    for (const b of figureBuilders()) {
      console.log(`${b.name.padEnd(24)} ${b.description} [${b.reads.join(", ")}]`);
    }
    Deno.exit(0);
  }
  const t0 = performance.now();
  const report = await exportFigures({
    resultsDir: flag("results"),
    outDir: flag("out"),
    scale: flag("scale"),
    only: flag("only")?.split(","),
  });
  console.log(
    `${report.written.length} figures/tables written, ${report.skipped.length} skipped (nothing to draw), ` +
      `${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  if (!flag("out") && !flag("only") && !args.includes("--no-readme")) {
    // the README's results section is regenerated from the same records
    await updateReadme(`${REPO_ROOT}README.md`, flag("results") ?? RESULTS_DIR);
    console.log("README.md results section regenerated");
  }
}
