/**
 * Command-line options of `deno task bench` (lib/bench/main.ts), shared by the parent process and the
 * per-(backend, implementation) child processes it spawns.
 */
import type { BackendName } from "../backend.ts";
import { SCAN_IMPLS, type ScanImpl } from "../ssm/mod.ts";
import { RESULTS_DIR } from "../paths.ts";

export const DEFAULT_OUT = `${RESULTS_DIR}bench`;

export type Pass = "fwd" | "fwd+bwd";
export const PASSES: readonly Pass[] = ["fwd", "fwd+bwd"];

/** (batch, d_inner, d_state, length), the names of the anchors' h200 file. */
export interface Shape {
  B: number;
  D: number;
  N: number;
  L: number;
}

/** Issue 2's benchmark shape: batch 1, d_inner 512, d_state 16, length 2048. */
export const FULL_SHAPE: Shape = { B: 1, D: 512, N: 16, L: 2048 };
/** `--quick`: a tiny shape (length not a multiple of the chunk size) that runs in seconds; for tests. */
export const QUICK_SHAPE: Shape = { B: 1, D: 8, N: 4, L: 40 };

export interface BenchOptions {
  backends: BackendName[];
  /** undefined: every implementation available on the backend (`availableScanImpls`). */
  impls?: ScanImpl[];
  passes: Pass[];
  shape: Shape;
  /** Timed runs after the warm-up (fewer when the time budget runs out). */
  repeats: number;
  /** Time budget in seconds for each (backend, impl, pass): probes, warm-up and timed runs together. */
  budgetS: number;
  /** Seconds for the whole benchmark: each (backend, impl, pass) gets at most an equal share of what is left. */
  totalBudgetS: number;
  /** The longest probe run; a full run's time is extrapolated from probes up to this length. */
  probeLength: number;
  quick: boolean;
  /** Directory of scan.jsonl. */
  out: string;
  /** Groups the records of one `deno task bench` invocation. */
  runId: string;
  /** Internal: this process is a child measuring one backend and one implementation. */
  child?: { backend: BackendName; impl: ScanImpl };
}

const USAGE = `deno task bench [SUITE...] [--suite scan,train,decode,gpu,llama] [--peer llama.cpp] [options]
  --suite LIST      benchmarks to run (default scan,train,decode; --quick: scan): scan (below),
                    train (lib/bench/train.ts: MambaByte training steps, wasm), decode
                    (lib/bench/decode.ts: per-byte latency against context; speculative decoding on the
                    small-scale books models when trained), gpu (lib/bench/gpu.ts, webgpu), llama
                    (lib/bench/llama.ts: CPU decoding and prefill beside llama.cpp, same weights, same run;
                    deno task setup --with-llama first); suites may also be named bare
  --peer llama.cpp  adds the llama suite (deno task bench decode --peer llama.cpp)
  options of the scan suite:
  --backends LIST   comma-separated backends (default wasm,cpu; webgpu works too)
  --impls LIST      scan implementations (default: all available on each backend)
  --passes LIST     fwd, fwd+bwd (default both)
  --shape B,D,N,L   batch, d_inner, d_state, length (default 1,512,16,2048)
  --repeats K       timed runs after one warm-up (default 3)
  --budget S        seconds allowed per (backend, impl, pass) (default 120); a pass whose estimate
                    exceeds it is recorded as skipped, with the reason
  --total-budget S  seconds for everything (default 540): each (backend, impl, pass) gets at most an
                    equal share of the time left
  --probe-length P  longest probe run that estimates a full run's time (default 256, at least 4)
  --quick           tiny shape ${Object.values(QUICK_SHAPE).join(",")}, 2 repeats (for tests)
  --out DIR         where scan.jsonl goes (default data/results/bench)
  internal (the child processes the scan suite spawns): --child --backend NAME --impl NAME --run-id ID`;

function list<T extends string>(value: string, allowed: readonly string[], what: string): T[] {
  const items = value.split(",").map((s) => s.trim()).filter(Boolean);
  for (const item of items) {
    if (!allowed.includes(item)) {
      throw new Error(`unknown ${what} "${item}"; expected one of ${allowed.join(", ")}`);
    }
  }
  if (items.length === 0) throw new Error(`empty ${what} list`);
  return items as T[];
}

function positive(value: string, what: string, integer = true): number {
  const x = Number(value);
  if (!Number.isFinite(x) || x <= 0 || (integer && !Number.isInteger(x))) {
    throw new Error(`${what} must be a positive ${integer ? "integer" : "number"}, got "${value}"`);
  }
  return x;
}

export function parseShape(value: string): Shape {
  const parts = value.split(",").map((s) => positive(s, "--shape entry"));
  if (parts.length !== 4) throw new Error(`--shape wants B,D,N,L (four integers), got "${value}"`);
  const [B, D, N, L] = parts;
  return { B, D, N, L };
}

/** Parses argv; throws with the usage text on a bad option. */
export function parseArgs(args: string[]): BenchOptions | "help" {
  const flags = new Map<string, string>();
  const booleans = new Set(["--quick", "--help", "-h", "--child"]);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const eq = arg.indexOf("=");
    if (arg.startsWith("--") && eq > 0) flags.set(arg.slice(0, eq), arg.slice(eq + 1));
    else if (booleans.has(arg)) flags.set(arg, "true");
    else if (arg.startsWith("-") && i + 1 < args.length) flags.set(arg, args[++i]);
    else throw new Error(`unexpected argument "${arg}" (deno task bench --help lists the options)`);
  }
  if (flags.has("--help") || flags.has("-h")) return "help";
  const known = new Set([
    "--backends",
    "--impls",
    "--passes",
    "--shape",
    "--repeats",
    "--budget",
    "--total-budget",
    "--probe-length",
    "--quick",
    "--out",
    "--run-id",
    "--child",
    "--backend",
    "--impl",
  ]);
  for (const key of flags.keys()) {
    if (!known.has(key)) throw new Error(`unknown option ${key} (deno task bench --help lists the options)`);
  }

  const quick = flags.has("--quick");
  const backendNames = ["wasm", "cpu", "webgpu", "tensorflow"];
  const opts: BenchOptions = {
    backends: list(flags.get("--backends") ?? "wasm,cpu", backendNames, "backend"),
    impls: flags.has("--impls")
      ? list(flags.get("--impls")!, [...SCAN_IMPLS], "scan implementation")
      : undefined,
    passes: list(flags.get("--passes") ?? PASSES.join(","), PASSES, "pass"),
    shape: flags.has("--shape") ? parseShape(flags.get("--shape")!) : quick ? QUICK_SHAPE : FULL_SHAPE,
    repeats: flags.has("--repeats") ? positive(flags.get("--repeats")!, "--repeats") : quick ? 2 : 3,
    budgetS: flags.has("--budget") ? positive(flags.get("--budget")!, "--budget", false) : 120,
    totalBudgetS: flags.has("--total-budget")
      ? positive(flags.get("--total-budget")!, "--total-budget", false)
      : 540,
    probeLength: Math.max(
      4,
      flags.has("--probe-length") ? positive(flags.get("--probe-length")!, "--probe-length") : 256,
    ),
    quick,
    out: flags.get("--out") ?? DEFAULT_OUT,
    runId: flags.get("--run-id") ?? new Date().toISOString(),
  };
  if (flags.has("--child")) {
    const backend = list<BackendName>(flags.get("--backend") ?? "", backendNames, "backend");
    const impl = list<ScanImpl>(flags.get("--impl") ?? "", [...SCAN_IMPLS], "scan implementation");
    opts.child = { backend: backend[0], impl: impl[0] };
  }
  return opts;
}

/** The argv of a child process that measures one pass of one implementation on one backend. */
export function childArgs(
  opts: BenchOptions,
  backend: BackendName,
  impl: ScanImpl,
  pass: Pass,
  budgetS: number,
): string[] {
  const { B, D, N, L } = opts.shape;
  return [
    "--child",
    "--backend",
    backend,
    "--impl",
    impl,
    "--passes",
    pass,
    "--shape",
    `${B},${D},${N},${L}`,
    "--repeats",
    String(opts.repeats),
    "--budget",
    String(Number(budgetS.toFixed(3))),
    "--probe-length",
    String(opts.probeLength),
    "--out",
    opts.out,
    "--run-id",
    opts.runId,
    ...(opts.quick ? ["--quick"] : []),
  ];
}

export { USAGE };
