/**
 * `deno task mutants`: the mutation check (the list and its rules: tests/mutants/mutants.ts).
 *
 *   deno task mutants [--only SUBSTRING[,SUBSTRING...]] [--no-baseline] [--keep]
 *
 * Copies the repository's files (tracked and untracked, not ignored) to a scratch directory, checks that
 * every mutant's search text occurs exactly once, runs each listed test unmutated (the baseline: they must
 * pass, or catching means nothing), then for each mutant: replaces the text, runs its build commands, runs
 * its tests in order until one fails, and restores the files. Prints a table (mutant, the test that caught
 * it, seconds); exits 1 if a mutant survives, breaks the type check, or the baseline fails.
 */
import { type Mutant, MUTANTS, type TestSpec } from "./mutants.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
/** One test run may take this long before it is stopped (a mutant may make a test loop forever). */
const RUN_LIMIT_MS = 20 * 60_000;

const args = Deno.args;
const flag = (name: string) => args.includes(name);
const only = args.includes("--only") ? args[args.indexOf("--only") + 1].split(",") : undefined;
const mutants = MUTANTS.filter((m) => !only || only.some((o) => m.name.includes(o)));
if (mutants.length === 0) {
  console.error(`mutants: no mutant matches --only ${only}`);
  Deno.exit(2);
}

// 1. every search text exactly once, in the repository as it is
const moved: string[] = [];
for (const m of mutants) {
  const text = await Deno.readTextFile(`${ROOT}${m.file}`).catch(() => undefined);
  const count = text === undefined ? -1 : text.split(m.search).length - 1;
  if (count !== 1) {
    moved.push(
      `  ${m.name}: ${m.file} ${count < 0 ? "does not exist" : `holds the search text ${count} times`}`,
    );
  }
}
if (moved.length) {
  console.error(
    `mutants: the list no longer matches the code (update tests/mutants/mutants.ts):\n${moved.join("\n")}`,
  );
  Deno.exit(1);
}

// 2. the scratch copy
const scratch = await Deno.makeTempDir({ prefix: "mambabyte-mutants-" });
const listed = await new Deno.Command("git", {
  args: ["ls-files", "-z", "--cached", "--others", "--exclude-standard"],
  cwd: ROOT,
  stdout: "piped",
}).output();
const files = new TextDecoder().decode(listed.stdout).split("\0").filter(Boolean);
for (const f of files) {
  const dst = `${scratch}/${f}`;
  await Deno.mkdir(dst.slice(0, dst.lastIndexOf("/")), { recursive: true });
  await Deno.copyFile(`${ROOT}${f}`, dst).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e; // listed but deleted in the working tree
  });
}
console.error(`mutants: ${mutants.length} mutants, scratch copy of ${files.length} files in ${scratch}`);

interface RunResult {
  failed: boolean;
  /** The first failing test's name, when the run failed in a test. */
  test?: string;
  /** The run did not get to its tests (type check, module load) or was stopped. */
  problem?: string;
  output: string;
}

const label = (t: TestSpec) =>
  `${t.file}${t.filter ? ` --filter ${JSON.stringify(t.filter)}` : ""}${
    t.backends ? ` (${t.backends})` : ""
  }`;

async function runTest(t: TestSpec): Promise<RunResult> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", `tests/${t.file}`, ...(t.filter ? ["--filter", t.filter] : [])],
    cwd: scratch,
    env: { NO_COLOR: "1", ...(t.backends ? { MAMBABYTE_TEST_BACKENDS: t.backends } : {}) },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), RUN_LIMIT_MS);
  const out = await child.output();
  clearTimeout(timer);
  const output = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (out.signal === "SIGKILL") return { failed: true, problem: "stopped after the run limit", output };
  if (out.code === 0) {
    // a filter that matches nothing passes silently: that would be no check at all
    if (/\b0 passed\b/.test(output)) return { failed: true, problem: "no test matched", output };
    return { failed: false, output };
  }
  const failures = output.slice(output.lastIndexOf("FAILURES"));
  const test = failures.match(/^(.+?) => \.\/tests\/\S+:\d+:\d+$/m)?.[1];
  if (test) return { failed: true, test, output };
  return {
    failed: true,
    problem: /Type checking failed|error: TS\d+/.test(output) ? "type check failed" : "no test failed",
    output,
  };
}

const tail = (s: string) => s.trimEnd().split("\n").slice(-25).join("\n");

// 3. the baseline: each distinct test run passes on the unmutated copy
if (!flag("--no-baseline")) {
  const specs = new Map<string, TestSpec>();
  for (const m of mutants) for (const t of m.tests) specs.set(label(t), t);
  for (const [name, t] of specs) {
    const t0 = performance.now();
    const r = await runTest(t);
    const s = ((performance.now() - t0) / 1000).toFixed(0);
    if (r.failed) {
      console.error(`mutants: baseline ${name} does not pass (${r.problem ?? r.test}):\n${tail(r.output)}`);
      Deno.exit(1);
    }
    console.error(`baseline ok (${s} s): ${name}`);
  }
}

// 4. the mutants
interface Row {
  mutant: Mutant;
  caught?: string;
  problem?: string;
  seconds: number;
}
const rows: Row[] = [];
for (const m of mutants) {
  const t0 = performance.now();
  const path = `${scratch}/${m.file}`;
  const original = await Deno.readTextFile(path);
  // what the build commands may rewrite, restored afterwards (the .wat kernels' committed bytes)
  const generated = m.build ? ["lib/kernels/wasm/bytes.ts"] : [];
  const saved = await Promise.all(generated.map((f) => Deno.readFile(`${scratch}/${f}`)));
  const row: Row = { mutant: m, seconds: 0 };
  try {
    await Deno.writeTextFile(path, original.replace(m.search, () => m.replace));
    for (const argv of m.build ?? []) {
      const cmd = argv[0] === "deno" ? Deno.execPath() : argv[0];
      const b = await new Deno.Command(cmd, {
        args: argv.slice(1),
        cwd: scratch,
        stdout: "piped",
        stderr: "piped",
      })
        .output();
      if (b.code !== 0) {
        row.problem = `build failed: ${argv.join(" ")}: ${tail(new TextDecoder().decode(b.stderr))}`;
        break;
      }
    }
    if (!row.problem) {
      for (const t of m.tests) {
        const r = await runTest(t);
        if (r.test) {
          row.caught = `${t.file}: ${r.test}`;
          break;
        }
        if (r.problem) {
          row.problem = `${label(t)}: ${r.problem}\n${tail(r.output)}`;
          break;
        }
      }
    }
  } finally {
    await Deno.writeTextFile(path, original);
    await Promise.all(generated.map((f, i) => Deno.writeFile(`${scratch}/${f}`, saved[i])));
  }
  row.seconds = (performance.now() - t0) / 1000;
  rows.push(row);
  const verdict = row.caught
    ? `caught by ${row.caught}`
    : row.problem
    ? `PROBLEM: ${row.problem}`
    : "SURVIVED";
  console.error(`[${rows.length}/${mutants.length}] ${m.name}: ${verdict} (${row.seconds.toFixed(0)} s)`);
}

// 5. the table
const cell = (s: string) => s.replace(/\|/g, "\\|").replace(/\n/g, " ");
console.log("| mutant | caught by | seconds |");
console.log("| --- | --- | ---: |");
for (const r of rows) {
  const by = r.caught ?? (r.problem ? `**not run: ${r.problem.split("\n")[0]}**` : "**SURVIVED**");
  console.log(`| ${cell(r.mutant.name)} (\`${r.mutant.file}\`) | ${cell(by)} | ${r.seconds.toFixed(0)} |`);
}
const bad = rows.filter((r) => !r.caught);
console.log(
  `\n${rows.length - bad.length} of ${rows.length} mutants caught` +
    (bad.length ? `; not caught: ${bad.map((r) => r.mutant.name).join("; ")}` : ""),
);
if (!flag("--keep")) await Deno.remove(scratch, { recursive: true });
else console.error(`mutants: scratch copy kept in ${scratch}`);
Deno.exit(bad.length ? 1 : 0);
