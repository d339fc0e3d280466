/**
 * `deno task bench [--suite scan,train,decode,gpu]`: the suites below in turn (default scan, train, decode;
 * see takeSuites). The scan suite is this file:
 * forward and forward+backward wall time of each selective-scan implementation on each
 * backend (default: batch 1, d_inner 512, d_state 16, length 2048 on wasm and cpu), one record per
 * (backend, impl, pass) in data/results/bench/scan.jsonl, each beside the peer figure measured on the same
 * shape (data/anchors/), then a table.
 *
 * Each (backend, impl, pass) runs in its own child process (this file with --child): memory figures are
 * not polluted by the previous measurement, and a crash (the wasm heap's 4 GiB limit) or a run far slower
 * than its estimate is contained: the child is killed when its budget is over and the pass recorded as
 * skipped, with how long the unfinished run had taken.
 * Time: each pass gets `--budget` seconds at most, and no more than an equal share of what is left of
 * `--total-budget`; a pass that would not fit is recorded as skipped with the estimate that says so.
 * Options: see `USAGE` in options.ts.
 */
import { type BackendName, initBackend } from "../backend.ts";
import { availableScanImpls, type ScanImpl } from "../ssm/mod.ts"; // mod.ts registers the fused kernels
import { readRecords } from "../results/store.ts";
import { type BenchOptions, childArgs, parseArgs, type Pass, USAGE } from "./options.ts";
import {
  type ChildState,
  runScanBench,
  type ScanRecord,
  STATE_PREFIX,
  writeUnrunRecords,
} from "./scan_bench.ts";
import { scanTable } from "./table.ts";
import { pathExists } from "../io/atomic.ts";
import { REPO_ROOT } from "../paths.ts";

async function implsFor(backend: BackendName, opts: BenchOptions): Promise<ScanImpl[]> {
  if (opts.impls) return opts.impls;
  await initBackend({ backend, quiet: true });
  return availableScanImpls();
}

/** Seconds past its budget after which a child is killed (its own checks end it in time otherwise). */
const GRACE_S = 20;

/**
 * Copies a child's stderr to ours line by line, except its "[bench-state]" lines, of which it keeps the
 * last; also keeps the last lines (an error message explains a crash).
 */
async function followStderr(
  stream: ReadableStream<Uint8Array>,
): Promise<{ tail: string[]; state?: ChildState }> {
  const tail: string[] = [];
  let state: ChildState | undefined;
  let partial = "";
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();
  const take = async (line: string) => {
    if (line.startsWith(STATE_PREFIX)) {
      state = JSON.parse(line.slice(STATE_PREFIX.length));
      return;
    }
    await Deno.stderr.write(encoder.encode(line + "\n"));
    tail.push(line);
    if (tail.length > 200) tail.shift();
  };
  for await (const chunk of stream) {
    const lines = (partial + decoder.decode(chunk, { stream: true })).split("\n");
    partial = lines.pop()!;
    for (const line of lines) await take(line);
  }
  if (partial) await take(partial);
  return { tail, state };
}

function errorLine(tail: string[], backend: BackendName): string {
  const error = tail.findLast((l) => /^error: |Error|Aborted/.test(l.trim()) && !l.trim().startsWith("at "));
  let why = error ? `: ${error.trim().replace(/^error: /, "")}` : "";
  if (backend === "wasm" && /Aborted\(|out of memory|OOM|memory access out of bounds/i.test(why)) {
    why += " (the wasm heap is limited to 4 GiB: most likely out of memory there)";
  }
  return why;
}

/**
 * Runs one (backend, impl, pass) in a child process. If the child is still running when its budget (plus
 * a grace period) is over, it is killed and the pass recorded as skipped, with how long the unfinished run
 * had taken; if it dies, the pass is recorded as failed, with the phase and the error.
 */
async function runChild(
  opts: BenchOptions,
  backend: BackendName,
  impl: ScanImpl,
  pass: Pass,
  budgetS: number,
) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${REPO_ROOT}lib/bench/main.ts`, ...childArgs(opts, backend, impl, pass, budgetS)],
    cwd: REPO_ROOT,
    stdout: "inherit",
    stderr: "piped",
  }).spawn();
  let killedAt: number | undefined;
  const timer = setTimeout(() => {
    killedAt = Date.now();
    child.kill("SIGKILL");
  }, (budgetS + GRACE_S) * 1000);
  const [status, { tail, state }] = await Promise.all([child.status, followStderr(child.stderr)]);
  clearTimeout(timer);
  if (status.success) return;
  const written = (await readRecords<ScanRecord>("scan", opts.out))
    .some((r) => r.run_id === opts.runId && r.backend === backend && r.impl === impl && r.pass === pass);
  if (written) return;
  const known: Partial<ScanRecord> = state ? { ...state.record } : {};
  const cellOpts = { ...opts, budgetS: Number(budgetS.toFixed(3)) };
  let why: string;
  if (killedAt !== undefined) {
    const ranMs = state ? killedAt - state.since : NaN;
    if (state) known.unfinished = { phase: state.phase, ms_at_least: Math.round(ranMs) };
    const estimate = state?.record.estimate_ms
      ? ` (estimate: ${(state.record.estimate_ms / 1000).toFixed(1)} s)`
      : "";
    why = state
      ? `the ${state.phase} was still running after ${(ranMs / 1000).toFixed(1)} s${estimate} when the ` +
        `${cellOpts.budgetS} s budget ran out: killed`
      : `still starting when the ${cellOpts.budgetS} s budget ran out: killed`;
  } else {
    why =
      `the benchmark process died (exit code ${status.code}${status.signal ? `, ${status.signal}` : ""})` +
      (state ? ` during the ${state.phase}` : "") + errorLine(tail, backend);
  }
  console.error(`  ${backend} ${impl} ${pass}: ${why}`);
  await writeUnrunRecords(
    cellOpts,
    backend,
    impl,
    [pass],
    killedAt !== undefined ? "skipped" : "failed",
    why,
    known,
  );
}

/** The benchmark suites of `deno task bench`; `scan` is this file, the others their own scripts. */
export const SUITES = ["scan", "train", "decode", "gpu", "llama"] as const;
type Suite = typeof SUITES[number];

/**
 * Takes `--suite LIST` out of the arguments. Default: scan, train and decode (the CPU benchmarks of issues
 * 3 and 6); `--quick` (tests) runs the scan suite only; `gpu` (it needs a GPU) and `llama` (CPU decoding
 * beside llama.cpp: deno task setup --with-llama first) are asked for by name. Suites may also be named
 * bare (`deno task bench decode`); `--peer llama.cpp` adds the llama suite (the decode benchmark beside
 * llama.cpp, same run, same weights).
 */
function takeSuites(args: string[]): { suites: Suite[]; rest: string[] } {
  const rest = [...args];
  const i = rest.findIndex((a) => a === "--suite" || a.startsWith("--suite="));
  let value: string | undefined;
  if (i >= 0) value = rest[i].includes("=") ? rest.splice(i, 1)[0].split("=")[1] : rest.splice(i, 2)[1];
  // --peer first: its value ("llama.cpp") must not be read as a bare suite name
  let peerSuite = false;
  const p = rest.findIndex((a) => a === "--peer" || a.startsWith("--peer="));
  if (p >= 0) {
    const peer = rest[p].includes("=") ? rest.splice(p, 1)[0].split("=")[1] : rest.splice(p, 2)[1];
    if (peer !== "llama.cpp") {
      throw new Error(`--peer: the CPU decoding peer is "llama.cpp" (got "${peer}")`);
    }
    peerSuite = true;
  }
  const bare = rest.filter((a) => (SUITES as readonly string[]).includes(a));
  if (bare.length) {
    for (const b of bare) rest.splice(rest.indexOf(b), 1);
    value = [...(value ? [value] : []), ...bare].join(",");
  }
  if (peerSuite) value = [...(value ? value.split(",") : []), "llama"].join(",");
  if (value === undefined) {
    return { suites: rest.includes("--quick") ? ["scan"] : ["scan", "train", "decode"], rest };
  }
  const suites = value.split(",").map((x) => x.trim()).filter(Boolean);
  for (const x of suites) {
    if (!(SUITES as readonly string[]).includes(x)) {
      throw new Error(`unknown suite "${x}"; expected some of ${SUITES.join(", ")}`);
    }
  }
  if (!suites.length) throw new Error(`--suite: expected some of ${SUITES.join(", ")}`);
  return { suites: suites as Suite[], rest };
}

/** The command of a suite other than `scan` (each records to data/results/bench/SUITE.jsonl). */
async function suiteCommand(suite: Exclude<Suite, "scan">): Promise<string[]> {
  if (suite === "train") return [`${REPO_ROOT}lib/bench/train.ts`, "--backend", "wasm"];
  if (suite === "gpu") return [`${REPO_ROOT}lib/bench/gpu.ts`];
  if (suite === "llama") return [`${REPO_ROOT}lib/bench/llama.ts`];
  // speculative decoding needs trained models: the small-scale books runs, when trained here
  const runs = `${REPO_ROOT}data/checkpoints/runs/compute-matched/small/books`;
  const trained = await pathExists(`${runs}/mamba_subword/model/tokenizer.json`) &&
    await pathExists(`${runs}/mambabyte/model/config.json`);
  return [
    `${REPO_ROOT}lib/bench/decode.ts`,
    ...(trained ? ["--verifier", `${runs}/mambabyte/model`, "--drafter", `${runs}/mamba_subword/model`] : []),
  ];
}

async function main(): Promise<void> {
  const { suites, rest } = takeSuites(Deno.args);
  const opts = parseArgs(rest);
  if (opts === "help") {
    console.log(USAGE);
    return;
  }
  if (opts.child) {
    await runScanBench(opts);
    return;
  }
  if (suites.includes("scan")) await scanSuite(opts);
  for (const suite of suites) {
    if (suite === "scan") continue;
    const args = await suiteCommand(suite);
    console.error(
      `\n== bench suite ${suite}: deno run -A ${args.map((a) => a.replace(REPO_ROOT, "")).join(" ")}`,
    );
    const { code } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", ...args],
      cwd: REPO_ROOT,
      stdout: "inherit",
      stderr: "inherit",
    }).spawn().status;
    if (code !== 0) throw new Error(`the ${suite} suite failed (exit ${code}); its output is above`);
  }
}

/** The scan suite: every (backend, implementation, pass) in its own child process. */
async function scanSuite(opts: BenchOptions): Promise<void> {
  const { B, D, N, L } = opts.shape;
  const t0 = performance.now();
  console.error(
    `scan benchmark: batch ${B}, d_inner ${D}, d_state ${N}, length ${L}; backends ` +
      `${opts.backends.join(", ")}; 1 warm-up + ${opts.repeats} runs; budget ${opts.budgetS} s per ` +
      `(backend, impl, pass), ${opts.totalBudgetS} s in all; records -> ${opts.out}/scan.jsonl (run ${opts.runId})`,
  );
  const cells: { backend: BackendName; impl: ScanImpl; pass: Pass }[] = [];
  for (const backend of opts.backends) {
    for (const impl of await implsFor(backend, opts)) {
      for (const pass of opts.passes) cells.push({ backend, impl, pass });
    }
  }
  for (const [i, { backend, impl, pass }] of cells.entries()) {
    const left = opts.totalBudgetS - (performance.now() - t0) / 1000;
    const budgetS = Number(Math.max(0.001, Math.min(opts.budgetS, left / (cells.length - i))).toPrecision(3));
    const t = performance.now();
    await runChild(opts, backend, impl, pass, budgetS);
    console.error(
      `  (${backend} ${impl} ${pass}: ${((performance.now() - t) / 1000).toFixed(1)} s of a ` +
        `${budgetS.toFixed(0)} s budget)`,
    );
  }
  const records = (await readRecords<ScanRecord>("scan", opts.out)).filter((r) => r.run_id === opts.runId);
  console.log(
    `\nSelective scan, batch ${B}, d_inner ${D}, d_state ${N}, length ${L} (float32; delta softplus, ` +
      `D, z). x vs peer = peer ms / ours (> 1: faster than the peer); GB/s = minimum bytes the pass must move / median.`,
  );
  console.log(scanTable(records));
  console.log(
    `\n${records.length} records in ${opts.out}/scan.jsonl; total ${
      ((performance.now() - t0) / 1000).toFixed(1)
    } s`,
  );
}

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    console.error(`bench: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
